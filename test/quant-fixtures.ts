// Shared by the PTQ, QAT and compare tests: a synthetic MNIST-shaped task (which quadrant holds a bright
// square) and a LeNet-5 trained on it in a second, so that no test depends on files outside the repository.

import { Tensor, Random, tidy, noGrad } from '../src/index.js';
import { buildModel } from '../src/zoo/index.js';
import { train, type Batch, type TrainData } from '../src/train/trainer.js';
import type { ModelSource } from '../src/quant/quantized.js';
import type { Split } from '../src/data/index.js';

/** N images 1x28x28 (u8) of the quadrant task: label = quadrant of a bright 6x6 square on noise. */
export function quadrantSplit(count: number, seed: number): Split {
  const r = new Random(seed);
  const images = new Uint8Array(count * 784), labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = r.int(4);
    labels[i] = label;
    const oy = (label >> 1) * 14 + r.int(8), ox = (label & 1) * 14 + r.int(8);
    for (let k = 0; k < 784; k++) images[i * 784 + k] = r.int(60);
    for (let dy = 0; dy < 6; dy++) for (let dx = 0; dx < 6; dx++) images[i * 784 + (oy + dy) * 28 + ox + dx] = 200 + r.int(56);
  }
  return { images, labels, count, channels: 1, height: 28, width: 28 };
}

export const QUADRANT_STATS = { mean: [0.16], std: [0.2] };

/** Batches of a split, normalized, optionally shuffled by epoch. */
export function* splitBatches(split: Split, batchSize: number, shuffleSeed?: number, epoch = 0): Generator<Batch> {
  const order = shuffleSeed === undefined ? Int32Array.from({ length: split.count }, (_, i) => i) : new Random(shuffleSeed * 1000 + epoch).permutation(split.count);
  const [mean, std] = [QUADRANT_STATS.mean[0], QUADRANT_STATS.std[0]];
  for (let s = 0; s < split.count; s += batchSize) {
    const idx = order.subarray(s, s + batchSize);
    const x = new Float32Array(idx.length * 784), y = new Int32Array(idx.length);
    idx.forEach((j, i) => {
      for (let k = 0; k < 784; k++) x[i * 784 + k] = (split.images[j * 784 + k] / 255 - mean) / std;
      y[i] = split.labels[j];
    });
    yield { x: Tensor.from(x, [idx.length, 1, 28, 28]), y: Tensor.from(y) };
  }
}

export function quadrantData(trainCount: number, testCount: number, seed = 11): TrainData & { train: Split; test: Split } {
  const trainSplit = quadrantSplit(trainCount, seed), testSplit = quadrantSplit(testCount, seed + 1);
  return {
    train: trainSplit, test: testSplit, trainCount,
    trainBatches: (epoch) => splitBatches(trainSplit, 32, seed, epoch),
    testBatches: () => splitBatches(testSplit, 100),
  };
}

/** A LeNet-5 (4 classes) trained on the quadrant task. */
export function trainedLenet(data: TrainData, epochs = 2): ModelSource {
  const { model, config } = buildModel('lenet5', { classes: 4 }, 1);
  train(model, { epochs, batchSize: 32, optimizer: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4, schedule: 'cosine', warmupEpochs: 0, seed: 5 },
    data, { modelInfo: { name: 'lenet5', config: { ...config } }, progress: false, log: () => {} });
  model.eval();
  return { name: 'lenet5', config, model, metadata: { preprocess: { mean: QUADRANT_STATS.mean, std: QUADRANT_STATS.std } } };
}

/** The model's outputs for a batch, as numbers. */
export function outputs(model: { forward(x: Tensor): Tensor; eval(): unknown }, x: Tensor): Float32Array {
  model.eval();
  return tidy(() => noGrad(() => model.forward(x).toFloat32Array()));
}

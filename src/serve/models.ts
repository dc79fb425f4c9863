// The playground's models: each zoo model in four datatypes, quantized by lowbit itself and written as
// packed runtime files (runtime/file.ts) that the page runs with the WebAssembly kernels.
//
// int8 is post-training quantized (calibration on training images). Ternary and binary lose most of their
// accuracy without fine-tuning, so by default they get one short pass of quantization-aware training over a
// subset of the training images; `quick` uses post-training quantization for all (seconds; tests).
// Results are cached by the content of the source weights and the recipe, so only the first run is slow.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { batches, evaluationBatchSize, cacheDir, loadDataset, type Dataset } from '../data/index.js';
import { LowbitError } from '../errors.js';
import { checkClasses, subsetSplit } from '../quant/compare.js';
import { quantizePostTraining } from '../quant/ptq.js';
import { quantizeAwareTraining } from '../quant/qat.js';
import { disposeQuantized, type QuantizedModel } from '../quant/quantized.js';
import { exportPacked } from '../runtime/index.js';
import { RUNTIME_FORMAT } from '../runtime/file.js';
import { WEIGHTS_DIR, loadModel } from '../zoo/index.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { evalPacked } from '../cli/runtime.js';

export interface PlaygroundModelInfo {
  /** Zoo name: <repo>/models/<id>.lowbit */
  id: string;
  title: string;
  dataset: 'mnist' | 'cifar10';
  /** draw: a canvas for a digit; pick: test images to choose from. */
  input: 'draw' | 'pick';
  /** The command that trains the weights, for the "missing" message. */
  train: string;
  /** Training images of the one fine-tuning pass of ternary and binary (about 20 s per datatype for LeNet-5 on 2 cores). */
  fineTuneImages: number;
}

export const PLAYGROUND_MODELS: readonly PlaygroundModelInfo[] = [
  { id: 'lenet5-mnist', title: 'LeNet-5 on MNIST', dataset: 'mnist', input: 'draw', train: 'lowbit train --model lenet5 --dataset mnist --epochs 15 --seed 1 --out models/lenet5-mnist.lowbit', fineTuneImages: 20000 },
  { id: 'resnet20-cifar10', title: 'ResNet-20 on CIFAR-10', dataset: 'cifar10', input: 'pick', train: 'scripts/train-zoo.sh (ResNet-20: lowbit train --model resnet20 --dataset cifar10 --epochs 40 --seed 1, then a 30-epoch warm restart from it with --init)', fineTuneImages: 10000 },
];

export interface Variant {
  key: string;
  label: string;
  spec: string;
  /** Fine-tune (QAT) unless quick: datatypes below 8 bits. */
  fineTune: boolean;
}

export const VARIANTS: readonly Variant[] = [
  { key: 'fp32', label: 'FP32', spec: 'fp32', fineTune: false },
  { key: 'int8', label: 'int8', spec: 'int8', fineTune: false },
  { key: 'ternary', label: 'ternary (TWN weights, int8 activations)', spec: 'w=twn,a=int8', fineTune: true },
  { key: 'binary', label: 'binary (XNOR-Net)', spec: 'xnor', fineTune: true },
];

const CALIB_SAMPLES = 512;
const SEED = 0;
/** Bump when the recipe changes, so cached files are made again. */
const RECIPE_VERSION = 2;

export interface BuiltVariant extends Variant {
  /** Packed runtime file in the cache. */
  path: string;
  mode: 'ptq' | 'qat';
  /** Top-1 accuracy of the packed file on the whole test split, run by the runtime. */
  accuracy: number;
}

export function weightsPath(m: PlaygroundModelInfo, weightsDir = WEIGHTS_DIR): string {
  return join(weightsDir, `${m.id}.lowbit`);
}

/**
 * The packed files of one model's variants, made (or taken from the cache). The weights must exist.
 * Needs the kernels initialized (init()).
 */
export async function buildVariants(m: PlaygroundModelInfo, opts: { quick?: boolean; weightsDir?: string; log?: (s: string) => void } = {}): Promise<BuiltVariant[]> {
  const log = opts.log ?? (() => {});
  const weights = weightsPath(m, opts.weightsDir);
  const hash = createHash('sha256').update(readFileSync(weights)).digest('hex').slice(0, 16);
  const dir = join(cacheDir(), 'playground');
  mkdirSync(dir, { recursive: true });
  const planned = VARIANTS.map((v) => {
    const mode: 'ptq' | 'qat' = v.fineTune && !opts.quick ? 'qat' : 'ptq';
    const key = createHash('sha256').update(JSON.stringify([hash, v.spec, mode, RECIPE_VERSION, RUNTIME_FORMAT, CALIB_SAMPLES, m.fineTuneImages, SEED])).digest('hex').slice(0, 16);
    return { ...v, mode, path: join(dir, `${m.id}-${v.key}-${key}.lowbit`) };
  });
  const todo = planned.filter((v) => !existsSync(v.path));
  if (todo.length > 0) await makeVariants(m, weights, todo, dir, log);
  const built: BuiltVariant[] = [];
  for (const v of planned) {
    // the accuracy is cached beside the file (the whole test split takes a few seconds per datatype)
    const sidecar = `${v.path}.json`;
    if (!existsSync(sidecar)) {
      log(`playground: measuring ${m.id} ${v.spec} on the ${m.dataset} test split (first run only)`);
      writeFileAtomic(sidecar, JSON.stringify(await evalPacked(v.path, m.dataset)));
    }
    built.push({ ...v, accuracy: (JSON.parse(readFileSync(sidecar, 'utf8')) as { accuracy: number }).accuracy });
  }
  return built;
}

async function makeVariants(m: PlaygroundModelInfo, weights: string, todo: (Variant & { mode: 'ptq' | 'qat'; path: string })[], dir: string, log: (s: string) => void): Promise<void> {
  const source = loadModel(weights);
  let ds: Dataset;
  try {
    ds = await loadDataset(m.dataset);
    checkClasses(source, ds);
  } catch (e) {
    source.model.dispose();
    throw e;
  }
  const pre = source.metadata.preprocess as { mean: number[]; std: number[] } | undefined;
  const normalize = pre ? { mean: pre.mean, std: pre.std } : ds.stats;
  try {
    for (const v of todo) {
      const started = Date.now();
      const calibSplit = subsetSplit(ds.train, CALIB_SAMPLES, SEED + 3);
      const calibration = batches(calibSplit, { batchSize: Math.min(256, calibSplit.count), normalize });
      let q: QuantizedModel;
      if (v.mode === 'qat') {
        log(`playground: fine-tuning ${m.id} as ${v.spec} on ${m.fineTuneImages} training images (first run only; cached in ${dir})`);
        const train = subsetSplit(ds.train, m.fineTuneImages, SEED + 5);
        q = quantizeAwareTraining(source, {
          spec: v.spec, epochs: 1, seed: SEED, calibration,
          data: {
            trainCount: train.count,
            trainBatches: (epoch) => batches(train, { batchSize: 64, shuffle: true, seed: SEED, epoch, normalize }),
            testBatches: () => batches(subsetSplit(ds.test, 1000, SEED + 4), { batchSize: evaluationBatchSize(ds.test), normalize }),
          },
        });
      } else {
        q = quantizePostTraining(source, { spec: v.spec, calibration, seed: SEED });
      }
      try {
        exportPacked(q, v.path);
      } finally {
        disposeQuantized(q);
      }
      log(`playground: ${m.id} ${v.spec} (${v.mode.toUpperCase()}) ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
  } finally {
    source.model.dispose();
  }
}

/** A few test images of each class (raw u8 CHW), for the "pick an image" models. */
export async function sampleImages(m: PlaygroundModelInfo, perClass: number): Promise<{ images: Uint8Array; labels: number[]; classes: string[]; channels: number; height: number; width: number }> {
  const ds = await loadDataset(m.dataset);
  const { test } = ds;
  const size = test.channels * test.height * test.width;
  const picked: number[] = [];
  const taken = new Map<number, number>();
  for (let i = 0; i < test.count && picked.length < perClass * ds.classes.length; i++) {
    const c = test.labels[i];
    if ((taken.get(c) ?? 0) < perClass) {
      taken.set(c, (taken.get(c) ?? 0) + 1);
      picked.push(i);
    }
  }
  if (picked.length === 0) throw new LowbitError(`${m.dataset} has no test images to pick from`);
  const images = new Uint8Array(picked.length * size);
  picked.forEach((k, i) => images.set(test.images.subarray(k * size, (k + 1) * size), i * size));
  return { images, labels: picked.map((k) => test.labels[k]), classes: ds.classes, channels: test.channels, height: test.height, width: test.width };
}

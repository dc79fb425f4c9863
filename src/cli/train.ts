// `lowbit train` and `lowbit eval`: train a zoo model on a dataset (checkpointed, resumable) and measure
// a model's top-1 accuracy on a test split.

import { checkModelArgument } from './model-arg.js';
import { existsSync, rmSync } from 'node:fs';
import { hostname, cpus } from 'node:os';
import { loadDataset, batches, evaluationBatchSize, CIFAR_AUGMENT, type Dataset } from '../data/index.js';
import { LowbitError, UsageError } from '../errors.js';
import { getBackend } from '../tensor/backend.js';
import { evaluate, train, type TrainConfig, type TrainData } from '../train/trainer.js';
import { buildModel, loadModel, saveModel, zooEntry, type ModelConfig } from '../zoo/index.js';
import { weightsDigest } from '../quant/compare.js';
import type { Module } from '../nn/index.js';
import { loadAnyModel } from '../quant/load.js';
import { disposeQuantized, type QuantizedModel } from '../quant/quantized.js';

export interface TrainCliOptions {
  model: string;
  dataset: string;
  epochs?: number;
  seed: number;
  out?: string;
  batchSize?: number;
  optimizer?: TrainConfig['optimizer'];
  lr?: number;
  momentum?: number;
  weightDecay?: number;
  schedule?: TrainConfig['schedule'];
  warmup?: number;
  augment?: boolean;
  resume?: boolean;
  width?: number;
  /** Start from this model's weights (a .lowbit file or zoo:<name> of the same architecture) instead of a random init. */
  init?: string;
}

/** Recipes by input kind: what the papers use, shortened to what 2 cores can run. */
function defaultsFor(dataset: Dataset): Partial<TrainConfig> & { epochs: number; augment: boolean } {
  const color = dataset.train.channels === 3;
  return color
    ? { epochs: 30, batchSize: 128, optimizer: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: 'cosine', warmupEpochs: 1, augment: true }
    : { epochs: 10, batchSize: 64, optimizer: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4, schedule: 'cosine', warmupEpochs: 0, augment: false };
}

export function trainData(ds: Dataset, batchSize: number, seed: number, augment: boolean): TrainData {
  return {
    trainCount: ds.train.count,
    trainBatches: (epoch) => batches(ds.train, { batchSize, shuffle: true, seed, epoch, augment: augment ? CIFAR_AUGMENT : undefined, normalize: ds.stats }),
    testBatches: () => batches(ds.test, { batchSize: evaluationBatchSize(ds.test), normalize: ds.stats }),
  };
}

export async function runTrain(o: TrainCliOptions, argv: string[], log: (s: string) => void): Promise<void> {
  const entry = zooEntry(o.model);
  const ds = await loadDataset(o.dataset);
  const d = defaultsFor(ds);
  const config: TrainConfig = {
    epochs: o.epochs ?? d.epochs,
    batchSize: o.batchSize ?? d.batchSize!,
    optimizer: o.optimizer ?? d.optimizer!,
    lr: o.lr ?? d.lr!,
    momentum: o.momentum ?? d.momentum!,
    nesterov: d.nesterov!,
    weightDecay: o.weightDecay ?? d.weightDecay!,
    schedule: o.schedule ?? d.schedule!,
    warmupEpochs: o.warmup ?? d.warmupEpochs!,
    seed: o.seed,
  };
  const augment = o.augment ?? d.augment;
  const modelConfig: Partial<ModelConfig> = { inChannels: ds.train.channels, inputSize: ds.train.height, classes: ds.classes.length };
  if (ds.train.height !== ds.train.width) throw new LowbitError(`${o.dataset}: images are ${ds.train.height}x${ds.train.width}; the zoo models take square inputs`);
  const start = o.init ? initialWeights(o.init, entry.name) : undefined;
  if (start?.config.width !== undefined) modelConfig.width = start.config.width;
  if (o.width) modelConfig.width = o.width;
  const out = o.out ?? `${entry.name}-${ds.name}.lowbit`;
  const checkpoint = `${out}.ckpt`;
  if (o.resume && !existsSync(checkpoint)) log(`no checkpoint at ${checkpoint}; starting from ${o.init ?? 'scratch'}`);
  const { model, config: fullConfig } = buildModel(entry.name, modelConfig, o.seed);
  if (start) {
    try {
      model.loadStateDict(start.model.stateDict());
    } catch (e) {
      model.dispose();
      throw new LowbitError(`--init ${o.init}: ${(e as Error).message.replace(/^lowbit: /, '')} (is it trained for another dataset or width?)`);
    } finally {
      start.model.dispose();
    }
  }
  log(`training ${entry.name} (${model.parameterCount().toLocaleString('en-US')} parameters) on ${ds.name}: ${ds.train.count} train / ${ds.test.count} test images, ` +
    `${config.epochs} epochs, ${config.optimizer} lr ${config.lr}, batch ${config.batchSize}, seed ${o.seed}, ${getBackend().name} kernels x${getBackend().threads} threads`);
  const started = Date.now();
  const history = train(model, config, trainData(ds, config.batchSize, o.seed, augment), {
    checkpointPath: checkpoint,
    resume: o.resume,
    modelInfo: { name: entry.name, config: { ...fullConfig } },
    log,
  });
  const final = evaluate(model, batches(ds.test, { batchSize: evaluationBatchSize(ds.test), normalize: ds.stats }));
  saveModel(out, entry.name, fullConfig, model, {
    dataset: ds.name,
    classes: ds.classes,
    preprocess: { scale: 1 / 255, mean: ds.stats.mean, std: ds.stats.std },
    training: { ...config, augment, command: `lowbit ${argv.join(' ')}`, history, ...(start ? { init: start.provenance } : {}) },
    testAccuracy: final.accuracy,
    testSamples: final.samples,
    wallSeconds: (Date.now() - started) / 1000,
    machine: { host: hostname(), cpu: cpus()[0]?.model, cores: cpus().length, node: process.version },
  });
  rmSync(checkpoint, { force: true });
  log(`test accuracy ${(100 * final.accuracy).toFixed(2)}% on ${final.samples} images; saved ${out}`);
  model.dispose();
}

/**
 * The model --init starts from (a warm restart, or fine-tuning on other data of the same shape), and what the new
 * model's metadata records of it: where it came from, its weights' digest and how it was trained.
 */
function initialWeights(spec: string, architecture: string): { model: Module; config: ModelConfig; provenance: Record<string, unknown> } {
  if (!existsSync(spec)) checkModelArgument(spec);
  const loaded = loadModel(spec);
  if (loaded.name !== architecture) {
    loaded.model.dispose();
    throw new LowbitError(`--init ${spec} is a ${loaded.name} model; --model says ${architecture}`);
  }
  const m = loaded.metadata;
  const provenance = { model: spec, weights_sha256: weightsDigest(loaded.model), dataset: m.dataset, testAccuracy: m.testAccuracy, wallSeconds: m.wallSeconds, training: m.training };
  return { model: loaded.model, config: loaded.config, provenance };
}

export interface EvalResult {
  accuracy: number;
  samples: number;
  ms_per_image: number;
}

export async function runEval(o: { model: string; dataset: string }): Promise<EvalResult> {
  const { isRuntimeFile } = await import('../runtime/index.js');
  if (isRuntimeFile(o.model)) return (await import('./runtime.js')).evalPacked(o.model, o.dataset); // the integer runtime
  let model: Module, metadata: Record<string, unknown>, config: ModelConfig;
  let quantized: QuantizedModel | null = null;
  if (!existsSync(o.model)) checkModelArgument(o.model);
  // A quantized model file (lowbit quantize) evaluates with its fake quantizers installed.
  ({ model, metadata, config, quantized } = loadAnyModel(o.model));
  const ds = await loadDataset(o.dataset);
  if (ds.test.channels !== config.inChannels || ds.test.height !== config.inputSize) {
    throw new LowbitError(`${o.model} takes ${config.inChannels}x${config.inputSize}x${config.inputSize} inputs, ${o.dataset} has ${ds.test.channels}x${ds.test.height}x${ds.test.width}`);
  }
  const pre = metadata.preprocess as { mean: number[]; std: number[] } | undefined;
  const r = evaluate(model, batches(ds.test, { batchSize: evaluationBatchSize(ds.test), normalize: pre ?? ds.stats }));
  if (quantized) disposeQuantized(quantized);
  else model.dispose();
  return { accuracy: r.accuracy, samples: r.samples, ms_per_image: r.msPerImage };
}

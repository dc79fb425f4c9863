// Quantization-aware training: fine-tune the float model (or train from scratch where the paper does) with
// fake quantizers in every conv and linear layer (fakequant.ts), so that the weights adapt to their datatype.
//
//   straight-through estimators   each quantizer's fakeQuantize carries its paper's backward rule (identity,
//                                 hardtanh window, XNOR-Net's chain rule through alpha, TTQ's scale gradients...)
//   latent weights                the optimizer updates float weights; the forward pass sees q(W). BinaryConnect
//                                 and BNN clip them to [-1, 1] after each update (conventions.ts)
//   TTQ                           W^p and W^n per layer are trained with the weights (Zhu et al. 2017, eq. 7)
//   k-means                       the codebook is fine-tuned with fixed assignments (Han et al. 2016, eq. 3)
//   INQ                           Zhou et al. 2017: the window comes from the pre-trained weights; at each step
//                                 of INQ_SCHEDULE (50 %, 75 %, 87.5 %, 100 %) the largest remaining weights are
//                                 quantized and frozen, the others retrained; frozen weights are restored after
//                                 every update (weight decay and momentum must not move them)
//   DoReFa g<k>                   the gradient flowing back through each layer's output is quantized (eq. 12)
//   fixed point, stochastic       Gupta et al. 2015: the stored weights themselves are fixed point: after each
//                                 update they are rounded stochastically back to the grid (no float master copy),
//                                 and activations are rounded stochastically in training (nearest in evaluation);
//                                 trained from scratch as in the paper
//   activation ranges             calibrated on a few batches before training; for 8 bits and more then
//                                 exponential moving averages of each batch's range (Jacob et al. 2018, sec.
//                                 3.1), frozen for evaluation; below 8 bits the least-squared-error range is
//                                 kept (defaultQatMethod)
//
// Training reuses the trainer (src/train/trainer.ts) with its afterStep hook and extra parameters.

import { snapBiasToInt32Grid } from './ptq.js';
import { noGrad } from '../autograd/graph.js';
import { tidy } from '../tensor/engine.js';
import { clipLatentWeights } from './binary.js';
import { FixedPointQuantizer } from './fixed.js';
import { TtqQuantizer, type TtqParams } from './ternary.js';
import { InqQuantizer, INQ_SCHEDULE, inqFreeze, inqPartition, type InqParams } from './log2.js';
import { existsSync } from 'node:fs';
import { train, type Batch, type EpochStats, type TrainConfig, type TrainData, type TrainOptions } from '../train/trainer.js';
import { LowbitError, UsageError } from '../errors.js';
import type { SeedStream } from './rounding.js';
import type { Tensor } from '../tensor/tensor.js';
import { clipsLatentWeights, trainsFromScratch, type FirstLastPolicy } from './conventions.js';
import type { FakeQuantLayer } from './fakequant.js';
import { traceModel } from './graph.js';
import type { CalibrationMethod } from './observers.js';
import { attachQuantizers, checkInputShape, cloneModel, freshModel, type ModelSource, type QuantizedModel } from './quantized.js';
import { parseSpec, type QuantSpec } from './spec.js';
import type { Module } from '../nn/index.js';

export interface QatOptions {
  spec: string | QuantSpec;
  data: TrainData;
  /** Fine-tuning epochs (training epochs from scratch). INQ spreads them over its retraining steps. */
  epochs: number;
  /** Batches for the initial activation ranges (a few suffice); default: the first 4 training batches. */
  calibration?: Iterable<Batch>;
  method?: CalibrationMethod;
  /** Default: the paper's choice (conventions.ts: Gupta's fixed point trains from scratch). */
  fromScratch?: boolean;
  firstLast?: FirstLastPolicy;
  seed?: number;
  /** Optimizer settings over the recipe's. */
  train?: Partial<TrainConfig>;
  inqSchedule?: readonly number[];
  log?: (line: string) => void;
  progress?: boolean;
  /** Checkpoint after every epoch here (INQ's later retraining steps: <path>.<step>); see qatCheckpoints(). */
  checkpointPath?: string;
  /** Continue from the checkpoints if they exist: ends with the same weights as an uninterrupted run. */
  resume?: boolean;
}

/** The checkpoint files a QAT run with this path may write (INQ writes one per retraining step). */
export function qatCheckpoints(path: string): string[] {
  return [path, ...INQ_SCHEDULE.map((_, i) => `${path}.${i + 1}`)];
}

/**
 * What a QAT checkpoint keeps beside the weights and optimizer (trainer.ts): each layer's quantizer tensors
 * (TTQ scales, codebooks, INQ masks), its binary input batch norm, its moving-average range and the
 * quantizers' random streams. Restored in place: the optimizer holds the trained tensors.
 */
function layerCheckpointState(layers: FakeQuantLayer[]): NonNullable<TrainOptions['checkpointState']> {
  const quantizers = (l: FakeQuantLayer) => [l.weight, l.activation, l.gradient].map((q) => (q as { seeds?: SeedStream } | null)?.seeds ?? null);
  const tensorsOf = (l: FakeQuantLayer, i: number) => {
    const out = new Map<string, Tensor>();
    l.paramTensors().forEach((t, k) => out.set(`qat.${i}.param.${k}`, t));
    if (l.inputNorm) for (const [k, t] of l.inputNorm.stateDict()) out.set(`qat.${i}.inputNorm.${k}`, t);
    return out;
  };
  return {
    save(tensors) {
      return layers.map((l, i) => {
        for (const [k, t] of tensorsOf(l, i)) tensors.set(k, t);
        return { ema: l.ema?.state ?? null, seeds: quantizers(l).map((s) => s?.state ?? null) };
      });
    },
    restore(tensors, saved) {
      const states = saved as { ema: { min: number[]; max: number[]; batches: number } | null; seeds: ([number, number] | null)[] }[];
      if (!Array.isArray(states) || states.length !== layers.length) throw new LowbitError(`the checkpoint has quantization state for ${Array.isArray(states) ? states.length : 0} layers, the model ${layers.length}`);
      layers.forEach((l, i) => {
        for (const [k, t] of tensorsOf(l, i)) {
          const src = tensors.get(k);
          if (!src || src.size !== t.size) throw new LowbitError(`the checkpoint lacks ${k}`);
          t.assign(src);
        }
        if (l.ema && states[i].ema) l.ema.state = states[i].ema!;
        quantizers(l).forEach((stream, k) => { if (stream && states[i].seeds?.[k]) stream.state = states[i].seeds[k]!; });
        l.invalidate();
      });
    },
  };
}

/**
 * Whether QAT fine-tuning draws random crops and flips: as the float model was trained (`lowbit train` records it
 * in the model's metadata), else as `lowbit train` would train on these images (on for color, off for gray).
 * Without it a CIFAR-10 ResNet-20 fine-tuned for 10-20 epochs fits its training set instead of the datatype.
 */
export function fineTuneAugment(source: Pick<ModelSource, 'metadata'>, channels: number): boolean {
  const recorded = (source.metadata?.training as { augment?: unknown } | undefined)?.augment;
  return typeof recorded === 'boolean' ? recorded : channels === 3;
}

/**
 * The training recipe of a spec: Adam for the binary techniques (BinaryConnect, BNN and XNOR-Net are trained
 * with Adam in their papers) and for TTQ and k-means (see below), SGD with momentum and a cosine schedule
 * otherwise; from scratch the float recipe of `lowbit train`.
 */
export function qatRecipe(spec: QuantSpec, epochs: number, fromScratch: boolean, seed: number, batchSize: number): TrainConfig {
  const w = spec.global.weight?.spec ?? '';
  // TTQ's scales and k-means' centroids get gradients summed over thousands of weights (Zhu et al. eq. 7, Han et
  // al. eq. 3): with SGD at a weight's learning rate they diverge; Adam's normalized steps keep them stable.
  const binary = /^(binary|bnn|xnor|bwn|ttq|kmeans)/.test(w) || /^dorefa:w1$/.test(w);
  const base = { epochs, batchSize, seed, schedule: 'cosine' as const, warmupEpochs: 0, nesterov: true, momentum: 0.9 };
  if (fromScratch) return { ...base, optimizer: 'sgd', lr: 0.05, weightDecay: 5e-4 };
  // Binary activations (BNN, XNOR-Net) start Adam at 3e-3, as the BNN authors' code does (BinaryNet, MNIST and
  // CIFAR-10: LR_start = 0.003): sign(W) and the sign thresholds only move when a step crosses zero, and at 1e-3
  // LeNet-5 underfits (docs/results/lenet5-mnist: xnor, 3 epochs: lr 3e-4 97.83%, 1e-3 97.93, 3e-3 98.40, 1e-2 98.20).
  if (binaryActivations(spec)) return { ...base, optimizer: 'adam', lr: 3e-3, weightDecay: 0 };
  if (binary) return { ...base, optimizer: 'adam', lr: 1e-3, weightDecay: 0 };
  return { ...base, optimizer: 'sgd', lr: 0.01, weightDecay: 0 };
}

/** True if the spec binarizes layer inputs (bnn, xnor, a=bnn, a=xnor). */
function binaryActivations(spec: QuantSpec): boolean {
  return /^(bnn|xnor)$/.test(spec.global.activation?.spec ?? '');
}

function* take<T>(it: Iterable<T>, n: number): Generator<T> {
  if (n <= 0) return;
  let i = 0;
  for (const v of it) {
    yield v;
    if (++i >= n) return;
  }
}

/**
 * Initial activation ranges in QAT: min-max for 8 bits and more (then tracked by moving averages, as Jacob et
 * al.); below 8 bits min-max ranges waste most levels on rare outliers, so the range of least squared error
 * is chosen (mse) and kept through training (learned clipping, PACT/LSQ, is not part of the survey).
 */
export function defaultQatMethod(l: FakeQuantLayer): CalibrationMethod {
  return l.activation && l.activation.bits < 8 ? 'mse' : 'minmax';
}

/** Calibrate the activation ranges of `layers` on batches through the (float-computing) model. */
export function calibrateLayers(model: Module, layers: FakeQuantLayer[], batches: Iterable<Batch>, method: CalibrationMethod | undefined, inputLayer?: string): number {
  const wasTraining = model.training;
  model.eval();
  for (const l of layers) l.startCalibration(l.name === inputLayer ? 'minmax' : method ?? defaultQatMethod(l));
  let samples = 0;
  for (const b of batches) {
    try {
      noGrad(() => tidy(() => { model.forward(b.x); }));
      samples += b.x.shape[0];
    } finally {
      b.x.dispose();
      b.y.dispose();
    }
  }
  for (const l of layers) if (l.inputMeanBatches > 0) l.finishCalibration();
  for (const l of layers) l.mode = 'quantize';
  model.train(wasTraining);
  return samples;
}

/** Quantization-aware training. The source model is not changed. */
export function quantizeAwareTraining(src: ModelSource, opts: QatOptions): QuantizedModel {
  const spec = typeof opts.spec === 'string' ? parseSpec(opts.spec) : opts.spec;
  if (!(Number.isInteger(opts.epochs) && opts.epochs >= 1)) throw new UsageError(`QAT needs a whole number of epochs >= 1, got ${opts.epochs}`);
  const seed = opts.seed ?? 0;
  const fromScratch = opts.fromScratch ?? trainsFromScratch(spec);
  const log = opts.log ?? (() => {});
  const probe = take(opts.data.trainBatches(0), 1).next();
  if (probe.done) throw new UsageError('QAT: the training data is empty');
  const sample = probe.value;
  const model = fromScratch ? freshModel(src, seed) : cloneModel(src);
  let layers: FakeQuantLayer[] = [];
  try {
    checkInputShape(src, sample.x, 'the training data');
    const trace = traceModel(model, sample.x);
    sample.x.dispose();
    sample.y.dispose();
    const attached = attachQuantizers(trace, spec, { seed, firstLast: opts.firstLast });
    layers = attached.layers;
    for (const l of layers) {
      l.initPersistentParams();
      l.install();
    }
    const calibSamples = calibrateLayers(model, layers, opts.calibration ?? take(opts.data.trainBatches(0), 4), opts.method, trace.layers[0]?.name);
    for (const l of layers) if (l.activation && l.activation.bits >= 8) l.enableMovingAverage();

    const recipe = { ...qatRecipe(attached.effective, opts.epochs, fromScratch, seed, 64), ...opts.train };
    const clip = layers.filter((l) => clipsLatentWeights(l.scheme.weight));
    const storedFixed = layers.filter((l) => l.weight instanceof FixedPointQuantizer && l.weight.rounding === 'stochastic');
    const inq = layers.filter((l) => l.weight instanceof InqQuantizer);
    // Gupta et al.: the stored weights are fixed-point numbers from the start.
    const roundStored = () => noGrad(() => {
      for (const l of storedFixed) tidy(() => { l.layer.weight.assign(l.weight!.fakeQuantize(l.layer.weight)); });
    });
    roundStored();
    const ttqScales = layers.filter((l) => l.weight instanceof TtqQuantizer).flatMap((l) => {
      const p = l.weightParams as TtqParams;
      return [p.wp, p.wn];
    });
    const afterStep = () => {
      for (const l of clip) clipLatentWeights(l.layer.weight, -l.gain, l.gain);
      // W^p, W^n > 0 (Zhu et al. 2017, sec. 3)
      for (const t of ttqScales) clipLatentWeights(t, 1e-8, Infinity);
      roundStored();
      for (const l of inq) inqFreeze(l.layer.weight, l.weightParams as InqParams);
    };
    const extraParameters = layers.flatMap((l) => l.trainables());
    const history: EpochStats[] = [];
    // the checkpoint also keeps the history of the phases before it
    const layerState = layerCheckpointState(layers);
    const checkpointState: NonNullable<TrainOptions['checkpointState']> = {
      save: (tensors) => ({ layers: layerState.save(tensors), history: [...history] }),
      restore: (tensors, saved) => {
        const s = saved as { layers: unknown; history: EpochStats[] };
        layerState.restore(tensors, s?.layers);
        if (Array.isArray(s.history)) history.splice(0, history.length, ...s.history);
      },
    };
    // Each training phase (one, or one per INQ retraining step) has its own checkpoint file. Resuming skips
    // the phases before the last one that has a checkpoint (it holds their result) and continues that one.
    const files = opts.checkpointPath ? qatCheckpoints(opts.checkpointPath) : [];
    const resumeFrom = opts.resume ? files.reduce((last, f, i) => (existsSync(f) ? i : last), -1) : -1;
    let phase = 0;
    const run = (epochs: number, label: string) => {
      const p = phase++;
      if (p < resumeFrom) return;
      log(`QAT ${attached.effective.text}${label}: ${epochs} epoch(s), ${recipe.optimizer} lr ${recipe.lr}${fromScratch ? ', from scratch' : ''}`);
      history.push(...train(model, { ...recipe, epochs }, opts.data, {
        modelInfo: { name: src.name, config: { ...src.config } }, extraParameters, afterStep, log, progress: opts.progress ?? false,
        checkpointPath: files[p], resume: p === resumeFrom, checkpointState,
      }));
    };
    if (inq.length) {
      const schedule = opts.inqSchedule ?? INQ_SCHEDULE;
      const retrainSteps = schedule.filter((s) => s < 1).length;
      const perStep = Math.max(1, Math.round(opts.epochs / Math.max(1, retrainSteps)));
      for (const fraction of schedule) {
        for (const l of inq) inqStep(l, fraction);
        if (fraction < 1) run(perStep, ` (INQ ${fraction * 100} % frozen)`);
      }
      for (const l of inq) {
        const p = l.weightParams as InqParams;
        p.mask?.dispose();
        l.weightParams = { n1: p.n1, n2: p.n2, mask: null };
        inqFreeze(l.layer.weight, l.weightParams as InqParams);
      }
    } else {
      run(opts.epochs, '');
    }
    // Evaluation parameters: from the trained weights, and the moving-average activation ranges.
    for (const l of layers) {
      l.freezeWeightParams();
      if (l.ema && l.ema.batches > 0) l.setActivationRange(l.ema.range());
      snapBiasToInt32Grid(l); // as PTQ: an int32 bias of step s_x s_w (Jacob et al. 2018)
    }
    model.eval();
    return {
      name: src.name, config: src.config, model, spec: attached.spec, effective: attached.effective, mode: 'qat',
      layers, info: trace.layers, folded: [], addedBias: [],
      details: { seed, epochs: opts.epochs, fromScratch, recipe, calibrationSamples: calibSamples, history },
      sourceMetadata: src.metadata ?? {},
    };
  } catch (e) {
    for (const l of layers) l.dispose();
    model.dispose();
    if (!sample.x.isDisposed) {
      sample.x.dispose();
      sample.y.dispose();
    }
    throw e;
  }
}

/** One INQ step: extend the frozen partition to `fraction` of the weights and write q(W) into it. */
function inqStep(l: FakeQuantLayer, fraction: number): void {
  const p = l.weightParams as InqParams;
  const mask = inqPartition(l.layer.weight, fraction, p.mask);
  p.mask?.dispose();
  l.weightParams = { n1: p.n1, n2: p.n2, mask };
  inqFreeze(l.layer.weight, l.weightParams as InqParams);
  l.invalidate();
}


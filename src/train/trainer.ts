// The training loop: mini-batch SGD/Adam/AdaMax with a learning-rate schedule, a progress bar per epoch,
// an atomic checkpoint after every epoch, and resumption that ends with bit-identical weights.
//
// Why resumption is exact: the batch order and augmentation depend only on (seed, epoch), dropout draws
// from a generator whose state is in the checkpoint, the kernels are deterministic for a given thread
// count, and the checkpoint holds the weights, buffers and optimizer state after a whole epoch.

import { existsSync } from 'node:fs';
import cliProgress from 'cli-progress';
import * as ops from '../autograd/index.js';
import { LowbitError } from '../errors.js';
import { loadModelFile, saveModelFile } from '../formats/lowbit.js';
import { Dropout, type Module } from '../nn/index.js';
import { engine, tidy } from '../tensor/engine.js';
import { Random } from '../tensor/random.js';
import { Tensor } from '../tensor/tensor.js';
import { AdaMax, Adam, SGD, type Optimizer } from './optim.js';
import { checkEvaluationBatch } from './numerics.js';
import { learningRate, type ScheduleConfig } from './schedule.js';

export interface Batch {
  x: Tensor;
  y: Tensor;
}

/** Where batches come from: the order of an epoch must depend only on the epoch number (and a seed). */
export interface TrainData {
  trainCount: number;
  trainBatches(epoch: number): Iterable<Batch>;
  testBatches(): Iterable<Batch>;
}

export interface TrainConfig {
  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adam' | 'adamax';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: ScheduleConfig['kind'];
  warmupEpochs: number;
  milestones?: number[];
  seed: number;
}

export interface EpochStats {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  testAccuracy: number;
  lr: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface TrainOptions {
  /** Written after every epoch (temp file + rename). */
  checkpointPath?: string;
  /** Continue from checkpointPath if it exists. */
  resume?: boolean;
  /** Extra tensors/metadata the caller wants in the checkpoint header (e.g. the model name and config). */
  modelInfo: { name: string; config: Record<string, unknown> };
  log?: (line: string) => void;
  /** Show a progress bar (default: when stderr is a terminal). */
  progress?: boolean;
  /** Stop after this many epochs in this call (tests use it to simulate an interruption). */
  stopAfterEpochs?: number;
  /**
   * Tensors trained beside the model's parameters (quantization-aware training: TTQ's scales, k-means
   * codebooks). Checkpoints keep them, by position: give them in the same order when resuming.
   */
  extraParameters?: Tensor[];
  /**
   * Other state a checkpoint must keep for an exact resume (QAT: moving-average ranges, quantizers' random
   * streams). save() adds tensors (names of its own) and returns JSON; restore() gets both back.
   */
  checkpointState?: {
    save(tensors: Map<string, Tensor>): unknown;
    restore(tensors: Map<string, Tensor>, saved: unknown): void;
  };
  /** Called after every optimizer step (QAT: latent-weight clipping, stochastic rounding of stored weights). */
  afterStep?: () => void;
}

export function makeOptimizer(c: TrainConfig, params: Tensor[]): Optimizer {
  switch (c.optimizer) {
    case 'sgd': return new SGD(params, c.lr, { momentum: c.momentum, nesterov: c.nesterov, weightDecay: c.weightDecay });
    case 'adam': return new Adam(params, c.lr, { weightDecay: c.weightDecay });
    case 'adamax': return new AdaMax(params, c.lr, { weightDecay: c.weightDecay });
  }
}

/** Top-1 accuracy and mean loss over batches (evaluation mode, no gradients). */
export function evaluate(model: Module, batches: Iterable<Batch>): { accuracy: number; loss: number; samples: number; msPerImage: number } {
  model.eval();
  let correct = 0, samples = 0, lossSum = 0;
  const start = performance.now();
  let batch = 0;
  ops.noGrad(() => {
    for (const { x, y } of batches) {
      tidy(() => {
        const logits = model.forward(x);
        checkEvaluationBatch(model, x, logits, batch++);
        lossSum += ops.crossEntropy(logits, y).item() * y.size;
        correct += countCorrect(logits, y);
        samples += y.size;
      });
      x.dispose();
      y.dispose();
    }
  });
  const ms = performance.now() - start;
  return { accuracy: samples ? correct / samples : 0, loss: samples ? lossSum / samples : 0, samples, msPerImage: samples ? ms / samples : 0 };
}

function countCorrect(logits: Tensor, y: Tensor): number {
  const pred = ops.argmax(logits, 1).view(), labels = y.view();
  let c = 0;
  for (let i = 0; i < labels.length; i++) if (pred[i] === labels[i]) c++;
  return c;
}

const STATE_PREFIX = 'model.', OPTIM_PREFIX = 'optim.', EXTRA_PREFIX = 'extra.';

function saveCheckpoint(path: string, model: Module, opt: Optimizer, rng: Random, epochDone: number, config: TrainConfig, history: EpochStats[], opts: TrainOptions): void {
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of model.stateDict()) tensors.set(STATE_PREFIX + k, t);
  for (const [k, t] of opt.state()) tensors.set(OPTIM_PREFIX + k, t);
  (opts.extraParameters ?? []).forEach((t, i) => tensors.set(`${EXTRA_PREFIX}${i}`, t));
  const extra = opts.checkpointState?.save(tensors) ?? null;
  saveModelFile(path, opts.modelInfo, tensors, { checkpoint: { epochDone, config, rng: rng.getState(), history, extra } });
}

/** Train `model` in place. Returns the per-epoch history (including epochs done before a resume). */
export function train(model: Module, config: TrainConfig, data: TrainData, opts: TrainOptions): EpochStats[] {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const opt = makeOptimizer(config, [...model.parameters(), ...(opts.extraParameters ?? [])]);
  // Dropout masks come from this generator, whose state the checkpoint keeps.
  const rng = new Random(config.seed ^ 0x6c6f7762);
  for (const [, m] of model.namedModules()) if (m instanceof Dropout) m.rng = rng;
  let history: EpochStats[] = [];
  let startEpoch = 0;

  if (opts.resume && opts.checkpointPath && existsSync(opts.checkpointPath)) {
    const ck = loadModelFile(opts.checkpointPath);
    const meta = ck.metadata.checkpoint as { epochDone: number; config: TrainConfig; rng: number[]; history: EpochStats[]; extra?: unknown } | undefined;
    const fail = (why: string) => {
      for (const t of ck.tensors.values()) t.dispose();
      return new LowbitError(`${opts.checkpointPath} ${why}; remove it or choose another --out`);
    };
    if (!meta || typeof meta !== 'object') throw fail('is not a training checkpoint');
    if (!Number.isInteger(meta.epochDone) || meta.epochDone < 0 || meta.epochDone > config.epochs || !Array.isArray(meta.history) || !Array.isArray(meta.rng)) {
      throw fail('is damaged (epoch, history or random state)');
    }
    if (JSON.stringify(meta.config) !== JSON.stringify(config)) {
      for (const t of ck.tensors.values()) t.dispose();
      throw new LowbitError(`${opts.checkpointPath} was written with different training settings; rerun with the same options or without --resume`);
    }
    const modelState = new Map<string, Tensor>(), optimState = new Map<string, Tensor>();
    for (const [k, t] of ck.tensors) {
      if (k.startsWith(STATE_PREFIX)) modelState.set(k.slice(STATE_PREFIX.length), t);
      else if (k.startsWith(OPTIM_PREFIX)) optimState.set(k.slice(OPTIM_PREFIX.length), t);
    }
    try {
      model.loadStateDict(modelState);
      opt.loadState(optimState);
      (opts.extraParameters ?? []).forEach((t, i) => {
        const saved = ck.tensors.get(`${EXTRA_PREFIX}${i}`);
        if (!saved || saved.size !== t.size) throw new LowbitError(`${opts.checkpointPath} lacks trained tensor ${EXTRA_PREFIX}${i}`);
        t.assign(saved);
      });
      opts.checkpointState?.restore(ck.tensors, meta.extra);
      rng.setState(meta.rng);
    } catch (e) {
      throw new LowbitError(`${opts.checkpointPath} does not fit this training run (${(e as Error).message.replace(/^lowbit: /, '')}); remove it or rerun without --resume`);
    } finally {
      for (const t of ck.tensors.values()) t.dispose();
    }
    startEpoch = meta.epochDone;
    history = meta.history;
    log(`resuming after epoch ${startEpoch} of ${config.epochs} from ${opts.checkpointPath}`);
  }

  const schedule: ScheduleConfig = { kind: config.schedule, baseLr: config.lr, epochs: config.epochs, warmupEpochs: config.warmupEpochs, milestones: config.milestones };
  const stepsPerEpoch = Math.ceil(data.trainCount / config.batchSize);
  const showBar = opts.progress ?? !!process.stderr.isTTY;
  const lastEpoch = Math.min(config.epochs, startEpoch + (opts.stopAfterEpochs ?? Infinity));

  for (let epoch = startEpoch; epoch < lastEpoch; epoch++) {
    model.train();
    const bar = showBar
      ? new cliProgress.SingleBar(
          { format: `epoch ${epoch + 1}/${config.epochs} [{bar}] {percentage}% | loss {loss} | acc {acc} | {ips} img/s | ETA {eta_formatted}`, hideCursor: true, stream: process.stderr },
          cliProgress.Presets.shades_classic,
        )
      : null;
    bar?.start(stepsPerEpoch, 0, { loss: '-', acc: '-', ips: '-' });
    const start = performance.now();
    let seen = 0, correct = 0, lossSum = 0, step = 0;
    let lr = config.lr;
    // training steps may use the faster, inexact-on-integers Winograd F(4x4, 3x3) (src/kernels/wasm/index.ts)
    const kernels = engine.kernels as { winogradF4?: boolean };
    const f4Before = kernels.winogradF4;
    if (f4Before !== undefined) kernels.winogradF4 = true;
    try {
      for (const { x, y } of data.trainBatches(epoch)) {
        lr = learningRate(schedule, epoch + step / stepsPerEpoch);
        opt.lr = lr;
        tidy(() => {
          const logits = model.forward(x);
          const loss = ops.crossEntropy(logits, y);
          ops.backward(loss);
          const l = loss.item();
          if (!Number.isFinite(l)) {
            throw new LowbitError(`training diverged at epoch ${epoch + 1}, step ${step + 1} (loss ${l}); lower the learning rate (now ${lr})`);
          }
          lossSum += l * y.size;
          correct += countCorrect(logits, y);
        });
        opt.step();
        opt.zeroGrad();
        opts.afterStep?.();
        seen += y.size;
        step++;
        x.dispose();
        y.dispose();
        const secs = (performance.now() - start) / 1000;
        bar?.update(step, { loss: (lossSum / seen).toFixed(4), acc: (correct / seen).toFixed(4), ips: (seen / secs).toFixed(0) });
      }
    } finally {
      if (f4Before !== undefined) kernels.winogradF4 = f4Before;
    }
    bar?.stop();
    const seconds = (performance.now() - start) / 1000;
    const test = evaluate(model, data.testBatches());
    const stats: EpochStats = {
      epoch: epoch + 1, loss: lossSum / Math.max(seen, 1), trainAccuracy: correct / Math.max(seen, 1),
      testAccuracy: test.accuracy, lr, seconds, imagesPerSecond: seen / seconds,
    };
    history.push(stats);
    log(`epoch ${stats.epoch}/${config.epochs}: loss ${stats.loss.toFixed(4)}, train acc ${(100 * stats.trainAccuracy).toFixed(2)}%, test acc ${(100 * stats.testAccuracy).toFixed(2)}% (${test.samples} images), ${stats.imagesPerSecond.toFixed(0)} img/s, ${seconds.toFixed(1)} s`);
    if (opts.checkpointPath) saveCheckpoint(opts.checkpointPath, model, opt, rng, epoch + 1, config, history, opts);
  }
  // The optimizer's state (momentum, Adam's moments) lives in kept tensors: free it, or every call leaks it.
  for (const t of opt.state().values()) t.dispose();
  return history;
}

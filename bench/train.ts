/**
 * lowbit's side of `lowbit bench train`: training images/s of the zoo's LeNet-5 (batch 64, 1x28x28) and
 * ResNet-20 (batch 128, 3x32x32). The step timed is the trainer's own (src/train/trainer.ts `train()`:
 * forward, cross-entropy, backward, loss read back, SGD with Nesterov momentum and weight decay, zeroGrad)
 * with the configuration `lowbit train` uses for gray and color inputs, run on random normalized images
 * and random labels in [0, classes). Step times are the intervals between the trainer's afterStep calls
 * (so they include handing over the next batch, as in real training, but no data loading or augmentation);
 * images/s = batch / median step time.
 */
import { performance } from 'node:perf_hooks';
import { engine } from '../src/tensor/engine.js';
import { Tensor } from '../src/tensor/tensor.js';
import { Random } from '../src/tensor/random.js';
import { buildModel } from '../src/zoo/index.js';
import { train, type Batch, type TrainConfig } from '../src/train/trainer.js';
import type { Kernels } from '../src/kernels/types.js';
import type { WasmKernels } from '../src/kernels/wasm/index.js';

export const TRAIN_MODELS = {
  lenet5: { name: 'train-lenet5', batch: 64, shape: [1, 28, 28], classes: 10 },
  resnet20: { name: 'train-resnet20', batch: 128, shape: [3, 32, 32], classes: 10 },
} as const;
export type TrainModel = keyof typeof TRAIN_MODELS;

export interface TrainRow {
  name: string;
  impl: string;
  threads: number;
  batch: number;
  images_per_s: number;
  /** Median milliseconds of one step, and how many steps were timed. */
  ms: number;
  steps: number;
  note?: string;
}

/** How many steps to run: `warmup` untimed, then `runs` timed, or more until `seconds` of timed steps have passed. */
export interface StepPlan {
  warmup: number;
  runs: number;
  seconds?: number;
  /**
   * Keep warming up (untimed steps) until this many seconds have passed (lowbit and PyTorch). V8 first runs
   * WebAssembly from its baseline compiler (Liftoff) and swaps in optimized code from background threads:
   * after one warm-up step LeNet-5's timed steps still ran partly on baseline code (34 ms/step, against 21
   * after 10 warm-up steps, same machine and minute).
   */
  warmupSeconds?: number;
}

/** Untimed steps to run before timing: `warmup`, or more until `warmupSeconds` have passed since the first step began. */
function warmedUp(plan: StepPlan, stepsDone: number, startMs: number): boolean {
  return stepsDone >= plan.warmup && performance.now() - startMs >= (plan.warmupSeconds ?? 0) * 1000;
}

/** `lowbit train`'s optimizer settings (src/cli/train.ts, defaultsFor): MNIST-like and CIFAR-like inputs. */
export function trainConfig(model: TrainModel): TrainConfig {
  const color = TRAIN_MODELS[model].shape[0] === 3;
  return {
    epochs: 1, batchSize: TRAIN_MODELS[model].batch, optimizer: 'sgd', lr: color ? 0.1 : 0.05, momentum: 0.9, nesterov: true,
    weightDecay: 5e-4, schedule: 'cosine', warmupEpochs: color ? 1 : 0, seed: 0,
  };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Random inputs of the model's shape (standard normal, as normalized images) and labels; host arrays, reused every step. */
export function randomBatch(model: TrainModel, batch: number = TRAIN_MODELS[model].batch, seed = 1): { x: Float32Array; y: Int32Array } {
  const m = TRAIN_MODELS[model];
  const r = new Random(seed);
  const x = Float32Array.from({ length: batch * m.shape[0] * m.shape[1] * m.shape[2] }, () => r.normal());
  const y = Int32Array.from({ length: batch }, () => r.int(m.classes));
  return { x, y };
}

export interface LowbitTrainResult {
  row: TrainRow;
  /** Mean training loss over all steps run, and how many parameters the steps changed (of how many). */
  loss: number;
  changedParameters: number;
  parameters: number;
}

/** Train the zoo model for warmup + timed steps with the trainer's step, at `threads` kernel threads. */
export function benchLowbitTrain(model: TrainModel, threads: number, plan: StepPlan): LowbitTrainResult {
  const kernels = engine.kernels as WasmKernels;
  if (kernels.name !== 'wasm') throw new Error('lowbit: bench train needs the wasm backend');
  kernels.setThreads(threads);
  const m = TRAIN_MODELS[model];
  const { model: net } = buildModel(model, { inChannels: m.shape[0], inputSize: m.shape[1], classes: m.classes }, 0);
  const { x, y } = randomBatch(model);
  const before = net.parameters().map((p) => Float32Array.from(p.view()));
  const marks: number[] = [];
  let warmSteps = -1; // untimed steps, once warm
  let timedStart = 0;
  const done = () => {
    if (warmSteps < 0) return false;
    const timed = marks.length - 1 - warmSteps;
    if (timed < Math.max(1, plan.runs)) return false;
    return plan.seconds === undefined || performance.now() - timedStart >= plan.seconds * 1000;
  };
  // The trainer disposes every batch after its step: hand it fresh tensors of the same host data.
  function* batches(): Iterable<Batch> {
    marks.push(performance.now());
    while (!done()) yield { x: Tensor.from(x, [m.batch, ...m.shape]), y: Tensor.from(y, [m.batch], 'i32') };
  }
  try {
    const history = train(net, trainConfig(model), { trainCount: m.batch * (plan.warmup + plan.runs), trainBatches: batches, testBatches: () => [] }, {
      modelInfo: { name: model, config: {} },
      progress: false,
      log: () => {},
      afterStep: () => {
        marks.push(performance.now());
        if (warmSteps < 0 && warmedUp(plan, marks.length - 1, marks[0])) {
          warmSteps = marks.length - 1;
          timedStart = marks[marks.length - 1];
        }
      },
    });
    const steps = marks.slice(warmSteps).map((t, i, a) => (i ? t - a[i - 1] : NaN)).slice(1);
    const ms = median(steps);
    const after = net.parameters();
    const changed = after.filter((p, i) => p.view().some((v, j) => v !== before[i][j])).length;
    return {
      row: {
        name: m.name, impl: 'lowbit', threads, batch: m.batch, images_per_s: (1000 * m.batch) / ms, ms, steps: steps.length,
        note: `trainer step (sgd nesterov, wd 5e-4), ${kernels.features.relaxedSimd ? 'relaxed SIMD' : 'SIMD'}`,
      },
      loss: history[0].loss,
      changedParameters: changed,
      parameters: after.length,
    };
  } finally {
    net.dispose();
  }
}

export interface KernelProfileRow {
  kernel: string;
  calls: number;
  msPerStep: number;
  share: number;
}

/**
 * Where one training step spends its time: every kernel call timed (engine.kernels wrapped for the
 * duration), per step, plus the rest (JavaScript: autograd tape, allocation, optimizer bookkeeping).
 */
export function profileLowbitTrain(model: TrainModel, threads: number, plan: StepPlan): { rows: KernelProfileRow[]; msPerStep: number } {
  const real = engine.kernels;
  const totals = new Map<string, { calls: number; ms: number }>();
  let recording = false;
  const wrapped = new Proxy(real, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      return (...args: unknown[]) => {
        if (!recording) return v.apply(target, args);
        const t0 = performance.now();
        try {
          return v.apply(target, args);
        } finally {
          const e = totals.get(prop) ?? { calls: 0, ms: 0 };
          e.calls++;
          e.ms += performance.now() - t0;
          totals.set(prop, e);
        }
      };
    },
  }) as Kernels;
  // The trainer's step again, timed as a whole; the kernels' share recorded only for the timed steps.
  let step = 0, timedSteps = 0;
  engine.kernels = wrapped;
  let wall = 0, timed = 0;
  try {
    const m = TRAIN_MODELS[model];
    const { model: net } = buildModel(model, { inChannels: m.shape[0], inputSize: m.shape[1], classes: m.classes }, 0);
    (real as WasmKernels).setThreads(threads);
    const { x, y } = randomBatch(model);
    let t0 = 0;
    const start = performance.now();
    function* batches(): Iterable<Batch> {
      for (; timedSteps < plan.runs; ) {
        if (!recording && warmedUp(plan, step, start)) { recording = true; t0 = performance.now(); }
        if (recording) timedSteps++;
        yield { x: Tensor.from(x, [m.batch, ...m.shape]), y: Tensor.from(y, [m.batch], 'i32') };
      }
    }
    try {
      train(net, trainConfig(model), { trainCount: m.batch * (plan.warmup + plan.runs), trainBatches: batches, testBatches: () => [] }, {
        modelInfo: { name: model, config: {} }, progress: false, log: () => {},
        afterStep: () => { step++; if (recording) { timed++; wall = performance.now() - t0; } },
      });
    } finally {
      net.dispose();
    }
  } finally {
    engine.kernels = real;
    recording = false;
  }
  const msPerStep = wall / Math.max(1, timed);
  const rows = [...totals].map(([kernel, e]) => ({ kernel, calls: e.calls / timed, msPerStep: e.ms / timed, share: e.ms / timed / msPerStep }));
  rows.sort((a, b) => b.msPerStep - a.msPerStep);
  const inKernels = rows.reduce((s, r) => s + r.msPerStep, 0);
  rows.push({ kernel: '(outside kernels: JS autograd, allocation, optimizer loop)', calls: 0, msPerStep: msPerStep - inKernels, share: (msPerStep - inKernels) / msPerStep });
  return { rows, msPerStep };
}

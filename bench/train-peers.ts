/**
 * The peers of `lowbit bench train`, same models, batches and step as bench/train.ts:
 * - tfjs-cpu: @tensorflow/tfjs-core ops on @tensorflow/tfjs-backend-cpu (the only tfjs backend that trains
 *   convolutions in Node here), in this process. Same layers and shapes, in tfjs's native NHWC layout
 *   (HWIO filters); batch norm in training mode (batch statistics via tf.moments, running statistics
 *   updated); one step = tf.variableGrads (forward + softmax cross-entropy + backward) + weight decay
 *   5e-4 added to the gradients (as PyTorch and lowbit do) + tf.train.momentum(lr, 0.9, Nesterov) +
 *   the loss read back. tfjs-backend-cpu is plain single-threaded JavaScript: one row, threads 1.
 * - pytorch: bench/pytorch_train.py with the system /usr/bin/python3 and Debian's python3-torch, one
 *   process per (model, threads), torch.set_num_threads(threads). Skipped with a note when torch is absent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type * as TfNs from '@tensorflow/tfjs-core';
import { median, randomBatch, TRAIN_MODELS, trainConfig, type StepPlan, type TrainModel, type TrainRow } from './train.js';

type Tf = typeof TfNs;
type Var = TfNs.Variable;
type T4 = TfNs.Tensor4D;

let tfPromise: Promise<Tf> | null = null;
/** tfjs-core with the CPU backend active. */
export function loadTfjsCpu(): Promise<Tf> {
  tfPromise ??= (async () => {
    const tf = (await import('@tensorflow/tfjs-core')) as Tf;
    await import('@tensorflow/tfjs-backend-cpu');
    // tfjs-core alone registers no gradient functions (its register_all_gradients is ESM that Node cannot
    // load); the @tensorflow/tfjs bundle registers them all in the same (deduplicated) tfjs-core.
    await import('@tensorflow/tfjs');
    if (!(await tf.setBackend('cpu'))) throw new Error('tfjs: the cpu backend did not initialize');
    await tf.ready();
    return tf;
  })();
  return tfPromise;
}

/** A tfjs model: its forward pass (training mode) over variables it owns. */
interface TfModel {
  forward(x: T4): TfNs.Tensor2D;
  variables: Var[];
  dispose(): void;
}

function tfModel(tf: Tf, name: TrainModel): TfModel {
  const vars: Var[] = [];
  const buffers: Var[] = [];
  // He-normal weights: any finite init times the same; this one keeps the loss sane.
  const weight = (shape: number[], fanIn: number) => {
    const v = tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), 'float32', vars.length + 1));
    vars.push(v);
    return v;
  };
  const constant = (shape: number[], value: number, trainable = true) => {
    const v = tf.variable(tf.fill(shape, value), trainable);
    (trainable ? vars : buffers).push(v);
    return v;
  };
  const conv = (k: number, inC: number, outC: number) => weight([k, k, inC, outC], k * k * inC);
  const bn = (c: number) => {
    const gamma = constant([c], 1), beta = constant([c], 0);
    const mean = constant([c], 0, false), variance = constant([c], 1, false);
    return (x: T4): T4 => {
      const m = tf.moments(x, [0, 1, 2]);
      // running statistics as lowbit's BatchNorm keeps them (momentum 0.1; not on the gradient's path)
      mean.assign(tf.add(tf.mul(mean, 0.9), tf.mul(m.mean, 0.1)));
      variance.assign(tf.add(tf.mul(variance, 0.9), tf.mul(m.variance, 0.1)));
      return tf.batchNorm(x, m.mean, m.variance, beta, gamma, 1e-5) as T4;
    };
  };
  const linear = (inF: number, outF: number) => {
    const w = weight([inF, outF], inF), b = constant([outF], 0);
    return (x: TfNs.Tensor2D) => tf.add(tf.matMul(x, w), b) as TfNs.Tensor2D;
  };
  const done = (forward: (x: T4) => TfNs.Tensor2D): TfModel => ({ forward, variables: vars, dispose: () => [...vars, ...buffers].forEach((v) => v.dispose()) });

  if (name === 'lenet5') {
    const w1 = conv(5, 1, 6), b1 = constant([6], 0), w2 = conv(5, 6, 16), b2 = constant([16], 0);
    const fc1 = linear(400, 120), fc2 = linear(120, 84), fc3 = linear(84, 10);
    return done((x) => {
      let h = tf.maxPool(tf.relu(tf.add(tf.conv2d(x, w1 as TfNs.Tensor4D, 1, 2), b1)) as T4, 2, 2, 'valid');
      h = tf.maxPool(tf.relu(tf.add(tf.conv2d(h, w2 as TfNs.Tensor4D, 1, 'valid'), b2)) as T4, 2, 2, 'valid');
      return fc3(tf.relu(fc2(tf.relu(fc1(tf.reshape(h, [h.shape[0], 400]))))));
    });
  }
  // ResNet-20: conv3x3(16)-BN-ReLU, 3 stages of 3 basic blocks, 1x1 conv + BN shortcuts where the shape changes.
  const stem = conv(3, 3, 16), stemBn = bn(16);
  const blocks: ((x: T4) => T4)[] = [];
  let inC = 16;
  for (let stage = 0; stage < 3; stage++) {
    const outC = 16 * 2 ** stage;
    for (let b = 0; b < 3; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const c1 = conv(3, inC, outC), n1 = bn(outC), c2 = conv(3, outC, outC), n2 = bn(outC);
      const sc = stride !== 1 || inC !== outC ? { w: conv(1, inC, outC), n: bn(outC) } : null;
      blocks.push((x) => {
        const h = n2(tf.conv2d(tf.relu(n1(tf.conv2d(x, c1 as T4, stride, 1))), c2 as T4, 1, 1));
        const skip = sc ? sc.n(tf.conv2d(x, sc.w as T4, stride, 'valid')) : x;
        return tf.relu(tf.add(h, skip)) as T4;
      });
      inC = outC;
    }
  }
  const fc = linear(64, 10);
  return done((x) => {
    let h = tf.relu(stemBn(tf.conv2d(x, stem as T4, 1, 1)));
    for (const block of blocks) h = block(h);
    return fc(tf.mean(h, [1, 2]) as TfNs.Tensor2D);
  });
}

export interface PeerTrainResult {
  row: TrainRow;
  loss: number;
}

const SLOW_STEP_MS = 10_000;
/**
 * tfjs-cpu's batch for ResNet-20 unless the full batch is asked for: one step at batch 128 takes about an
 * hour here (~25 s per image). Its kernels loop image by image (no gain from larger batches: measured 0.042
 * images/s at batch 4 and 0.041 at batch 8), so images/s carries over; the row states the batch it ran.
 */
export const TFJS_RESNET20_BATCH = 4;

/** tfjs-cpu: train the same model on the same random batch (transposed to NHWC) for warmup + timed steps. */
export async function benchTfjsCpuTrain(name: TrainModel, plan: StepPlan, batch: number = TRAIN_MODELS[name].batch): Promise<PeerTrainResult> {
  const tf = await loadTfjsCpu();
  const m = TRAIN_MODELS[name];
  const cfg = trainConfig(name);
  const host = randomBatch(name, batch);
  const model = tfModel(tf, name);
  const x = tf.transpose(tf.tensor4d(host.x, [batch, m.shape[0], m.shape[1], m.shape[2]]), [0, 2, 3, 1]) as T4;
  const labels = tf.oneHot(tf.tensor1d(host.y, 'int32'), m.classes);
  const opt = tf.train.momentum(cfg.lr, cfg.momentum, cfg.nesterov);
  const step = () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(labels, model.forward(x)) as TfNs.Scalar, model.variables);
      for (const v of model.variables) grads[v.name] = tf.add(grads[v.name], tf.mul(v, cfg.weightDecay));
      opt.applyGradients(grads as TfNs.NamedTensorMap as Record<string, Var>);
      return value.dataSync()[0];
    });
  try {
    // Steps of tens of seconds (tfjs-cpu's conv backward loops): one warm-up and one timed step are enough.
    let slow = false;
    for (let i = 0; i < plan.warmup && !slow; i++) {
      const t0 = performance.now();
      step();
      slow = performance.now() - t0 > SLOW_STEP_MS;
    }
    const times: number[] = [], losses: number[] = [];
    const start = performance.now();
    while (times.length < (slow ? 1 : Math.max(1, plan.runs)) || (!slow && plan.seconds !== undefined && performance.now() - start < plan.seconds * 1000)) {
      const t0 = performance.now();
      losses.push(step());
      times.push(performance.now() - t0);
      slow ||= times[times.length - 1] > SLOW_STEP_MS;
    }
    const ms = median(times);
    return {
      row: { name: m.name, impl: 'tfjs-cpu', threads: 1, batch, images_per_s: (1000 * batch) / ms, ms, steps: times.length, note: `tfjs ${tf.version_core} cpu backend (single-threaded JS), NHWC` },
      loss: losses.reduce((a, b) => a + b, 0) / losses.length,
    };
  } finally {
    opt.dispose();
    model.dispose();
    x.dispose();
    labels.dispose();
  }
}

export const SYSTEM_PYTHON = '/usr/bin/python3';
const PYTORCH_SCRIPT = fileURLToPath(new URL('../../bench/pytorch_train.py', import.meta.url));

/** Why PyTorch cannot run here, or null when the system python3 imports torch. */
export function pytorchUnavailable(): string | null {
  if (!existsSync(SYSTEM_PYTHON)) return `${SYSTEM_PYTHON} not found`;
  const r = spawnSync(SYSTEM_PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.status !== 0) return `${SYSTEM_PYTHON} cannot import torch (install Debian's python3-torch and libopenblas0-openmp)`;
  return null;
}

/** PyTorch on the CPU: bench/pytorch_train.py in a child process (the caller checks pytorchUnavailable()). */
export function benchPytorchTrain(name: TrainModel, threads: number, plan: StepPlan): PeerTrainResult {
  const m = TRAIN_MODELS[name];
  const args = [PYTORCH_SCRIPT, '--model', name, '--batch', String(m.batch), '--threads', String(threads), '--warmup', String(plan.warmup),
    '--warmup-seconds', String(plan.warmupSeconds ?? 0), '--runs', String(plan.runs)];
  if (plan.seconds !== undefined) args.push('--seconds', String(plan.seconds));
  // OMP_NUM_THREADS would cap set_num_threads; leave the thread count to the script.
  const env = { ...process.env };
  delete env.OMP_NUM_THREADS;
  const r = spawnSync(SYSTEM_PYTHON, args, { encoding: 'utf8', env, maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`pytorch_train.py ${name} ${threads}T failed (exit ${r.status}): ${(r.stderr || r.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as { images_per_s: number; ms: number; steps: number; loss: number; torch: string; threads: number };
  return {
    row: { name: m.name, impl: 'pytorch', threads: out.threads, batch: m.batch, images_per_s: out.images_per_s, ms: out.ms, steps: out.steps, note: `torch ${out.torch} (Debian, system python3), NCHW` },
    loss: out.loss,
  };
}

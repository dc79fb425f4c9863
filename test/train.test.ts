// The trainer: schedules, checkpoint every epoch, and a resumed run that ends bit-identical to an
// uninterrupted one.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, shutdown, Tensor, Random } from '../src/index.js';
import { buildModel } from '../src/zoo/index.js';
import { train, type TrainConfig, type TrainData, type Batch } from '../src/train/trainer.js';
import { learningRate } from '../src/train/schedule.js';
import { engine } from '../src/tensor/engine.js';
import type { WasmKernels } from '../src/kernels/wasm/index.js';

// Training-sized work runs on the WebAssembly kernels (the reference kernels are checked in autograd.test.ts).
before(async () => {
  await init({ threads: 2 });
});
after(async () => {
  await shutdown();
});

/** A deterministic synthetic MNIST-shaped task: the class is which quadrant holds a bright square. */
function quadrantData(count: number, seed: number): TrainData {
  const r = new Random(seed);
  const images = new Float32Array(count * 28 * 28), labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = r.int(4);
    labels[i] = label;
    const oy = (label >> 1) * 14 + r.int(8), ox = (label & 1) * 14 + r.int(8);
    for (let k = 0; k < 784; k++) images[i * 784 + k] = 0.2 * r.normal();
    for (let dy = 0; dy < 5; dy++) for (let dx = 0; dx < 5; dx++) images[i * 784 + (oy + dy) * 28 + ox + dx] += 1;
  }
  function* batches(order: Int32Array, size: number): Iterable<Batch> {
    for (let s = 0; s < order.length; s += size) {
      const idx = order.subarray(s, s + size);
      const x = new Float32Array(idx.length * 784), y = new Int32Array(idx.length);
      idx.forEach((j, i) => { x.set(images.subarray(j * 784, (j + 1) * 784), i * 784); y[i] = labels[j]; });
      yield { x: Tensor.from(x, [idx.length, 1, 28, 28]), y: Tensor.from(y) };
    }
  }
  const testOrder = Int32Array.from({ length: Math.min(count, 200) }, (_, i) => i);
  return {
    trainCount: count,
    trainBatches: (epoch) => batches(new Random(seed * 1000 + epoch).permutation(count), 32),
    testBatches: () => batches(testOrder, 100),
  };
}

const config: TrainConfig = {
  epochs: 3, batchSize: 32, optimizer: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4,
  schedule: 'cosine', warmupEpochs: 0.5, seed: 5,
};

describe('schedules', () => {
  it('warm-up, step and cosine', () => {
    assert.equal(learningRate({ kind: 'constant', baseLr: 0.1, epochs: 10, warmupEpochs: 2 }, 0), 0.1 * 0.1);
    assert.ok(Math.abs(learningRate({ kind: 'constant', baseLr: 0.1, epochs: 10, warmupEpochs: 2 }, 1) - 0.1 * 0.55) < 1e-12);
    assert.equal(learningRate({ kind: 'step', baseLr: 0.1, epochs: 10, milestones: [5, 8], gamma: 0.1 }, 8), 0.1 * 0.1 * 0.1);
    assert.equal(learningRate({ kind: 'cosine', baseLr: 0.1, epochs: 10 }, 0), 0.1);
    assert.ok(Math.abs(learningRate({ kind: 'cosine', baseLr: 0.1, epochs: 10 }, 5) - 0.05) < 1e-12);
    assert.ok(learningRate({ kind: 'cosine', baseLr: 0.1, epochs: 10 }, 10) < 1e-12);
  });
});

describe('trainer', () => {
  it('learns, checkpoints every epoch, and resumes bit-identically', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-train-'));
    const info = { name: 'lenet5', config: {} };
    try {
      const data = quadrantData(768, 11);
      const a = buildModel('lenet5', {}, 1).model;
      const history = train(a, config, data, { modelInfo: info, checkpointPath: join(dir, 'a.lowbit'), progress: false, log: () => {} });
      assert.equal(history.length, 3);
      assert.ok(history[2].testAccuracy > 0.9, `test accuracy ${history[2].testAccuracy}`);
      assert.ok(history[2].loss < history[0].loss);

      // Interrupted after one epoch, then resumed in a fresh model object.
      const ck = join(dir, 'b.lowbit');
      const b1 = buildModel('lenet5', {}, 1).model;
      train(b1, config, data, { modelInfo: info, checkpointPath: ck, progress: false, stopAfterEpochs: 1, log: () => {} });
      assert.ok(existsSync(ck));
      const b2 = buildModel('lenet5', {}, 99).model; // different init: everything must come from the checkpoint
      const resumed = train(b2, config, data, { modelInfo: info, checkpointPath: ck, resume: true, progress: false, log: () => {} });
      assert.equal(resumed.length, 3);
      for (const [name, t] of a.stateDict()) {
        assert.deepEqual(b2.stateDict().get(name)!.toArray(), t.toArray(), `${name} differs after resume`);
      }
      for (const m of [a, b1, b2]) m.dispose();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('runs its steps with Winograd F(4x4, 3x3) on, and evaluation (and everything after) with it off', () => {
    const kernels = engine.kernels as WasmKernels;
    assert.equal(kernels.winogradF4, false, 'off by default: not exact on integer values');
    const seen: boolean[] = [];
    const m = buildModel('lenet5', {}, 1).model;
    train(m, { ...config, epochs: 1 }, quadrantData(128, 3), {
      modelInfo: { name: 'lenet5', config: {} }, progress: false, log: () => {}, afterStep: () => { seen.push(kernels.winogradF4); },
    });
    m.dispose();
    assert.ok(seen.length > 0 && seen.every((on) => on), 'on during the steps');
    assert.equal(kernels.winogradF4, false, 'off again after training');
  });

  it('refuses to resume with different settings', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-train-'));
    try {
      const data = quadrantData(64, 3);
      const m = buildModel('lenet5', {}, 1).model;
      const ck = join(dir, 'c.lowbit');
      const info = { name: 'lenet5', config: {} };
      train(m, { ...config, epochs: 1 }, data, { modelInfo: info, checkpointPath: ck, progress: false, log: () => {} });
      assert.throws(() => train(m, { ...config, epochs: 1, lr: 0.5 }, data, { modelInfo: info, checkpointPath: ck, resume: true, progress: false, log: () => {} }),
        /different training settings/);
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

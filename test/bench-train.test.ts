// `lowbit bench train` in a tiny configuration: LeNet-5, one timed step. Checks that the rows are well
// formed, that lowbit's step (the trainer's) really trains (every parameter tensor changes, finite loss),
// that the tfjs-cpu and PyTorch peers (PyTorch only when the system python3 has torch) run the same
// model, and how the target ratios are computed. Nothing here asserts a timing.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, shutdown } from '../src/tensor/backend.js';
import { benchLowbitTrain, TRAIN_MODELS, type TrainRow } from '../bench/train.js';
import { benchPytorchTrain, benchTfjsCpuTrain, pytorchUnavailable } from '../bench/train-peers.js';
import { runBenchTrain, trainTargetRatios } from '../src/cli/bench.js';
import { UsageError } from '../src/errors.js';

before(async () => {
  await init({ threads: 2 });
});
after(async () => {
  await shutdown();
});

function assertRow(r: TrainRow, name: string, impl: string, threads: number, batch: number): void {
  assert.deepEqual({ name: r.name, impl: r.impl, threads: r.threads, batch: r.batch }, { name, impl, threads, batch });
  assert.ok(Number.isFinite(r.images_per_s) && r.images_per_s > 0, `images_per_s ${r.images_per_s}`);
  assert.ok(Number.isFinite(r.ms) && r.ms > 0, `ms ${r.ms}`);
  // images/s is the batch over the median step time
  assert.ok(Math.abs(r.images_per_s - (1000 * r.batch) / r.ms) < 1e-6 * r.images_per_s);
}

describe('bench train', () => {
  it('lowbit: the trainer step on LeNet-5 (batch 64) changes every parameter, with a finite loss', () => {
    for (const threads of [1, 2]) {
      const r = benchLowbitTrain('lenet5', threads, { warmup: 1, runs: 1 });
      assertRow(r.row, 'train-lenet5', 'lowbit', threads, 64);
      assert.equal(r.row.steps, 1);
      assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
      assert.equal(r.parameters, 10); // 5 layers x (weight, bias)
      assert.equal(r.changedParameters, r.parameters, 'some parameter tensors did not change');
    }
  });

  it('lowbit: a warm-up by time runs untimed steps first, then times the steps asked for', () => {
    const start = performance.now();
    const r = benchLowbitTrain('lenet5', 1, { warmup: 0, runs: 2, warmupSeconds: 0.3 });
    assert.ok(performance.now() - start >= 300, 'the warm-up took less than warmupSeconds');
    assertRow(r.row, 'train-lenet5', 'lowbit', 1, 64);
    assert.equal(r.row.steps, 2);
  });

  it('tfjs-cpu: the same LeNet-5 trains (at batch 4 here: its steps take seconds at 64)', async () => {
    const r = await benchTfjsCpuTrain('lenet5', { warmup: 0, runs: 1 }, 4);
    assertRow(r.row, 'train-lenet5', 'tfjs-cpu', 1, 4);
    assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
  });

  it('pytorch: the same LeNet-5 trains with the system python3 (skipped without torch)', (t) => {
    const why = pytorchUnavailable();
    if (why) return t.skip(why);
    const r = benchPytorchTrain('lenet5', 1, { warmup: 0, runs: 2 });
    assertRow(r.row, 'train-lenet5', 'pytorch', 1, 64);
    assert.equal(r.row.steps, 2);
    assert.ok(Number.isFinite(r.loss) && r.loss > 0, `loss ${r.loss}`);
  });

  it('runBenchTrain writes the rows as JSON; --only filters models and impls', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-bench-train-'));
    try {
      const json = join(dir, 'train.json');
      const rows = await runBenchTrain({ json, runs: 1, warmup: 0, threads: [1], only: ['lenet5', 'lowbit'], peers: true }, () => {});
      assert.deepEqual(rows.map((r) => [r.name, r.impl, r.threads]), [['train-lenet5', 'lowbit', 1]]);
      const file = JSON.parse(readFileSync(json, 'utf8')) as { rows: TrainRow[]; targets: unknown[] };
      assert.deepEqual(file.rows.map((r) => r.images_per_s), rows.map((r) => r.images_per_s));
      assert.deepEqual(file.targets, []); // no peer, no ratio
      await assert.rejects(runBenchTrain({ runs: 1, warmup: 0, threads: [1], only: ['lenet'], peers: true }, () => {}), UsageError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('target ratios: lowbit images/s over tfjs-cpu (goal 10) and over PyTorch at the same thread count (goal 0.5)', () => {
    const row = (impl: string, threads: number, ips: number): TrainRow => ({ name: 'train-resnet20', impl, threads, batch: TRAIN_MODELS.resnet20.batch, images_per_s: ips, ms: 1, steps: 1 });
    const targets = trainTargetRatios([row('lowbit', 1, 100), row('lowbit', 2, 180), row('tfjs-cpu', 1, 4), row('pytorch', 1, 300), row('pytorch', 2, 400)]);
    assert.deepEqual(targets.map((t) => [t.ratio, t.goal]), [[25, 10], [100 / 300, 0.5], [45, 10], [180 / 400, 0.5]]);
    assert.match(targets[3].target, /lowbit 2T vs pytorch 2T/);
  });
});

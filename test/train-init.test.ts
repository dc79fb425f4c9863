// `lowbit train --init`: training starts from a trained model's weights (a warm restart), records where they came
// from, and refuses a model of another architecture. LeNet-5 on 256 MNIST digits, so that each run takes seconds.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init } from '../src/index.js';
import { writeTinyMnist } from './tiny-mnist.js';
import { decodeModelFile } from '../src/formats/lowbit.js';
import { loadModel } from '../src/zoo/index.js';
import { weightsDigest } from '../src/quant/compare.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'lowbit-init-'));
const data = join(root, 'digits');
const env = { ...process.env, LOWBIT_CACHE: join(root, 'cache') };

before(async () => {
  await init({ backend: 'ref' });
  writeTinyMnist(data, 256, 64);
});
after(() => rmSync(root, { recursive: true, force: true }));

function lowbit(...args: string[]): { code: number | null; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  return { code: r.status, err: r.stderr };
}

/** Largest absolute difference between the parameters (not the batch-norm statistics) of two model files. */
function parameterDistance(a: string, b: string): number {
  const ma = loadModel(a).model, mb = loadModel(b).model;
  const pb = new Map(mb.namedParameters());
  let worst = 0;
  for (const [name, t] of ma.namedParameters()) {
    const x = t.toArray(), y = pb.get(name)!.toArray();
    for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]));
  }
  ma.dispose();
  mb.dispose();
  return worst;
}

test('lowbit train --init continues from the given weights and records them', { timeout: 300_000 }, () => {
  const first = join(root, 'first.lowbit'), warm = join(root, 'warm.lowbit'), cold = join(root, 'cold.lowbit');
  const common = ['--model', 'lenet5', '--dataset', data, '--epochs', '1', '--batch-size', '32', '--threads', '1'];
  assert.equal(lowbit('train', ...common, '--seed', '3', '--out', first).code, 0);
  // a learning rate so small that one epoch barely moves the weights: where it starts is where it ends
  const tiny = ['--lr', '1e-9', '--seed', '4'];
  let r = lowbit('train', ...common, ...tiny, '--init', first, '--out', warm);
  assert.equal(r.code, 0, r.err);
  assert.equal(lowbit('train', ...common, ...tiny, '--out', cold).code, 0);
  assert.ok(parameterDistance(first, warm) < 1e-6, `--init: the weights moved by ${parameterDistance(first, warm)}`);
  assert.ok(parameterDistance(first, cold) > 1e-2, 'without --init the run starts from other (random) weights');

  const meta = decodeModelFile(readFileSync(warm)).metadata as { training: { init: { model: string; weights_sha256: string; training: { seed: number } } } };
  const source = loadModel(first);
  assert.equal(meta.training.init.model, first);
  assert.equal(meta.training.init.weights_sha256, weightsDigest(source.model));
  assert.equal(meta.training.init.training.seed, 3, 'the first run\'s recipe is kept');
  source.model.dispose();

  r = lowbit('train', '--model', 'mlp', '--dataset', data, '--epochs', '1', '--init', first, '--out', join(root, 'x.lowbit'));
  assert.equal(r.code, 1);
  assert.match(r.err, /--init .*first\.lowbit is a lenet5 model; --model says mlp/);
  r = lowbit('train', ...common, '--init', join(root, 'missing.lowbit'), '--out', join(root, 'y.lowbit'));
  assert.equal(r.code, 1);
  assert.match(r.err, /missing\.lowbit/);
});

// Crash safety: `lowbit train`, `lowbit quantize --qat` and `lowbit compare` are killed (SIGKILL) at a random
// moment and rerun with --resume; they must end with the same weights and results as an uninterrupted run
// with the same seed, and no output file may ever be half-written. Tiny configuration: LeNet-5 on 384
// MNIST digits, so that each run takes seconds.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { init } from '../src/index.js';
import { writeTinyMnist } from './tiny-mnist.js';
import { decodeModelFile } from '../src/formats/lowbit.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'lowbit-crash-'));
const data = join(root, 'digits');
const env = { ...process.env, LOWBIT_CACHE: join(root, 'cache') };
// A reproducible "random" moment per test: seeded, printed, overridable.
const SEED = Number(process.env.LOWBIT_CRASH_SEED ?? Date.now() % 100000);

function lcg(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

before(async () => {
  await init({ backend: 'ref' });
  // A small MNIST: 384 training and 128 test digits, as IDX files (a dataset path lowbit reads like MNIST).
  writeTinyMnist(data, 384, 128);
});
after(() => rmSync(root, { recursive: true, force: true }));

function run(args: string[]): { ms: number; stderr: string; stdout: string } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, `lowbit ${args.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { ms: Date.now() - t0, stderr: r.stderr, stdout: r.stdout };
}

/**
 * Start the command; once `trigger` exists (its first checkpoint or finished row, so that the resume has
 * something to resume from) wait `ms` more and SIGKILL it. Resolves when it is gone: true if killed.
 */
function runAndKill(args: string[], trigger: string, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: 'ignore' });
    let killed = false;
    const poll = setInterval(() => {
      if (!existsSync(trigger)) return;
      clearInterval(poll);
      setTimeout(() => { killed = child.kill('SIGKILL'); }, ms);
    }, 20);
    child.on('exit', (_code, signal) => {
      clearInterval(poll);
      resolve(killed && signal === 'SIGKILL');
    });
  });
}

/** Every lowbit file in `dir` (outputs and checkpoints) decodes whole: nothing half-written. */
function assertNoHalfWrittenFiles(dir: string): void {
  for (const f of readdirSync(dir)) {
    if (f.startsWith('.') && f.endsWith('.tmp')) continue; // the temporary file of an interrupted atomic write
    const path = join(dir, f);
    if (/\.lowbit|\.ckpt/.test(f)) assert.doesNotThrow(() => decodeModelFile(readFileSync(path), path), `${path} is damaged after the kill`);
    if (f.endsWith('.json')) assert.doesNotThrow(() => JSON.parse(readFileSync(path, 'utf8')), `${path} is not whole JSON after the kill`);
  }
}

/** The tensors of a model file, as bytes by name (metadata holds times and commands, which differ). */
function tensorBytes(path: string): Map<string, string> {
  const file = decodeModelFile(readFileSync(path), path);
  const out = new Map<string, string>();
  for (const [name, t] of file.tensors) {
    const v = t.view();
    out.set(name, Buffer.from(v.buffer, v.byteOffset, t.byteLength).toString('base64'));
    t.dispose();
  }
  return out;
}

/**
 * Run `args` uninterrupted into `refDir`; then in `dir` run it again, SIGKILL it at a random moment after
 * `trigger(dir)` appears, check that no file is half-written, resume it with --resume and compare the
 * outputs with `same`.
 */
async function killAndResume(name: string, args: (dir: string) => string[], trigger: (dir: string) => string, same: (refDir: string, dir: string) => void, t: { diagnostic(s: string): void }, onKilled?: (dir: string) => void): Promise<void> {
  const refDir = join(root, `${name}-ref`), dir = join(root, `${name}-killed`);
  mkdirSync(refDir, { recursive: true });
  mkdirSync(dir, { recursive: true });
  const ref = run(args(refDir));
  const rand = lcg(SEED + name.length);
  const at = Math.round(0.25 * ref.ms * rand());
  const killed = await runAndKill(args(dir), trigger(dir), at);
  t.diagnostic(`${name}: uninterrupted ${ref.ms} ms; killed ${at} ms after ${trigger(dir).slice(root.length)} appeared: ${killed ? 'killed' : 'had finished first'} (LOWBIT_CRASH_SEED=${SEED})`);
  assert.ok(killed, `${name}: the run finished before the kill; the test needs a longer run`);
  assertNoHalfWrittenFiles(dir);
  onKilled?.(dir);
  const resumed = run([...args(dir), '--resume']);
  t.diagnostic(`${name}: resumed run ${resumed.ms} ms`);
  assertNoHalfWrittenFiles(dir);
  same(refDir, dir);
}

test('crash: lowbit train killed at a random moment resumes to the same weights, bit for bit', { timeout: 600_000 }, async (t) => {
  const args = (dir: string) => ['train', '--model', 'lenet5', '--dataset', data, '--epochs', '6', '--batch-size', '32', '--seed', '3', '--threads', '1', '--out', join(dir, 'm.lowbit')];
  await killAndResume('train', args, (dir) => join(dir, 'm.lowbit.ckpt'), (refDir, dir) => {
    assert.ok(!existsSync(join(dir, 'm.lowbit.ckpt')), 'the checkpoint is removed after a completed run');
    assert.deepEqual(tensorBytes(join(dir, 'm.lowbit')), tensorBytes(join(refDir, 'm.lowbit')));
    const history = (p: string) => (decodeModelFile(readFileSync(p)).metadata.training as { history: { loss: number; testAccuracy: number }[] }).history.map((h) => [h.loss, h.testAccuracy]);
    assert.deepEqual(history(join(dir, 'm.lowbit')), history(join(refDir, 'm.lowbit')));
  }, t);
});

test('crash: lowbit quantize --qat killed at a random moment resumes to the same quantized model', { timeout: 600_000 }, async (t) => {
  const model = join(root, 'train-ref', 'm.lowbit');
  if (!existsSync(model)) run(['train', '--model', 'lenet5', '--dataset', data, '--epochs', '1', '--seed', '3', '--threads', '1', '--out', model]);
  // stochastic fixed point: the quantizers' random streams must be in the checkpoint too
  for (const spec of ['fixed:8.4:stochastic', 'w=ttq,a=int8']) {
    const tag = `qat-${spec.replace(/[^a-z0-9]/gi, '')}`;
    const args = (dir: string) => ['quantize', '--model', model, '--spec', spec, '--qat', '--epochs', '5', '--dataset', data, '--calib-samples', '64', '--seed', '5', '--threads', '1', '--out', join(dir, 'q.lowbit')];
    await killAndResume(tag, args, (dir) => join(dir, 'q.lowbit.ckpt'), (refDir, dir) => {
      assert.ok(!existsSync(join(dir, 'q.lowbit.ckpt')), 'the checkpoint is removed after a completed run');
      assert.deepEqual(tensorBytes(join(dir, 'q.lowbit')), tensorBytes(join(refDir, 'q.lowbit')), `${spec}: the weights differ from the uninterrupted run`);
      const meta = (p: string) => {
        const q = decodeModelFile(readFileSync(p)).metadata.quantization as { layers: unknown; details: { history: { loss: number; testAccuracy: number }[] } };
        return { layers: q.layers, history: q.details.history.map((h) => [h.loss, h.testAccuracy]) };
      };
      assert.deepEqual(meta(join(dir, 'q.lowbit')), meta(join(refDir, 'q.lowbit')), `${spec}: quantizer state or history differs`);
    }, t);
  }
});

test('crash: lowbit compare killed at a random moment keeps its finished rows and resumes to the same results', { timeout: 600_000 }, async (t) => {
  const model = join(root, 'train-ref', 'm.lowbit');
  if (!existsSync(model)) run(['train', '--model', 'lenet5', '--dataset', data, '--epochs', '1', '--seed', '3', '--threads', '1', '--out', model]);
  // twn fine-tunes 10 epochs, checkpointing each: the kill comes soon after its first checkpoint, so the resumed
  // run usually continues that row from it (it must end exactly as the uninterrupted row)
  const args = (dir: string) => ['compare', '--model', model, '--dataset', data, '--specs', 'int8,fixed:8.4,twn', '--quick', '--epochs', '1', '--scratch-epochs', '1', '--low-bit-epochs', '10', '--seed', '2', '--threads', '1', '--out', join(dir, 'out')];
  const twnCheckpoint = (dir: string) => join(dir, 'out', 'checkpoints', 'twn.ckpt');
  type Row = Record<string, unknown> & { spec: string };
  const rows = (dir: string) => (JSON.parse(readFileSync(join(dir, 'out', 'results.json'), 'utf8')) as { rows: Row[] }).rows;
  // measured times differ between runs, and a row whose QAT continued from its checkpoint says so; nothing else may
  const TIMING = /ms|seconds|latency|time|resumed/i;
  const results = (dir: string) => rows(dir).map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING.test(k))));
  let finishedBeforeKill: Row[] = [];
  let midRow = false;
  await killAndResume('compare', args, twnCheckpoint, (refDir, dir) => {
    assert.deepEqual(results(dir), results(refDir));
    // rows finished before the kill are kept as they were (their measured times too), not run again
    const kept = new Map(rows(dir).map((r) => [r.spec, r]));
    for (const r of finishedBeforeKill) assert.deepEqual(kept.get(r.spec), r, `row ${r.spec} was not kept`);
    // every row done: no QAT row checkpoint is left behind
    assert.ok(!existsSync(join(dir, 'out', 'checkpoints')));
    // a row continued from its checkpoint says so
    assert.equal(rows(dir).find((r) => r.spec === 'twn')!.resumed === true, midRow);
  }, t, (dir) => {
    finishedBeforeKill = rows(dir);
    midRow = existsSync(twnCheckpoint(dir)) && !finishedBeforeKill.some((r) => r.spec === 'twn');
    t.diagnostic(`compare: ${finishedBeforeKill.length} rows were finished before the kill${midRow ? ', twn was killed part way and resumes from its checkpoint' : ''}`);
  });
});

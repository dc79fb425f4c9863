// Expected failures end in one clear line with exit code 1 (2 for bad usage), a stack trace only with
// --verbose; NaN/Inf in weights or inputs is reported with the layer's (or tensor's, or batch's) name
// instead of turning into a silent 10% accuracy.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engine, init, Tensor } from '../src/index.js';
import { LowbitError } from '../src/errors.js';
import { writeTinyMnist } from './tiny-mnist.js';
import { decodeModelFile, encodeModelFile } from '../src/formats/lowbit.js';
import { exportOnnx } from '../src/formats/onnx/export.js';
import { importOnnx } from '../src/formats/onnx/import.js';
import { onnx } from '../src/formats/onnx/read.js';
import { evaluate } from '../src/train/trainer.js';
import { buildModel, loadModel, modelHeader } from '../src/zoo/index.js';
import type { LayerSpec } from '../src/runtime/layers.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'lowbit-robust-'));
const data = join(root, 'digits');
const env = { ...process.env, LOWBIT_CACHE: join(root, 'cache') };

before(async () => {
  await init({ backend: 'ref' });
  writeTinyMnist(data, 64, 64);
});
after(() => rmSync(root, { recursive: true, force: true }));

function lowbit(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8' });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

/** A LeNet-5 file with `edit` applied to its state (and metadata) before saving. */
function lenetFile(name: string, edit: (state: Map<string, Tensor>, metadata: Record<string, unknown>) => void): string {
  const { model, config } = buildModel('lenet5', {}, 1);
  const metadata: Record<string, unknown> = { dataset: 'mnist', preprocess: { scale: 1 / 255, mean: [0.13], std: [0.31] } };
  const state = model.stateDict();
  edit(state, metadata);
  const path = join(root, name);
  writeFileSync(path, encodeModelFile(modelHeader('lenet5', config, model), state, metadata));
  model.dispose();
  return path;
}

const setElement = (t: Tensor, i: number, v: number) => { (t.view() as Float32Array)[i] = v; };

test('errors: an expected failure is one line on stderr, exit 1, with a stack trace only under --verbose', () => {
  const damaged = join(root, 'damaged.lowbit');
  writeFileSync(damaged, Buffer.from('LOWBIT\0\x01garbage'));
  const r = lowbit('eval', '--model', damaged, '--dataset', data);
  assert.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^lowbit: .*damaged\.lowbit.*(re-export|re-download)/);
  const v = lowbit('eval', '--model', damaged, '--dataset', data, '--verbose');
  assert.equal(v.code, 1);
  assert.match(v.stderr, /\n\s+at /, 'a stack trace with --verbose');
});

test('errors: bad usage (unknown option, malformed spec, bad number) exits with code 2 and says what is wrong', () => {
  const unknown = lowbit('eval', '--model', 'zoo:lenet5-mnist', '--dataset', data, '--frobnicate');
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--frobnicate/);
  const spec = lowbit('quantize', '--model', 'zoo:lenet5-mnist', '--spec', 'minifloat:e9', '--calib', data, '--out', join(root, 'q.lowbit'));
  assert.equal(spec.code, 2, spec.stderr);
  assert.match(spec.stderr, /^lowbit: .*minifloat.*Valid forms/);
  assert.equal(spec.stderr.trim().split('\n').length, 1);
  const number = lowbit('train', '--model', 'lenet5', '--dataset', data, '--epochs', '-3');
  assert.equal(number.code, 2);
  assert.match(number.stderr, /--epochs must be a positive integer, got "-3"/);
});

test('numerics: a NaN weight in a model file is refused at load, naming the tensor', () => {
  let name = '';
  const path = lenetFile('nan-weight.lowbit', (state) => {
    [name] = [...state].filter(([, t]) => t.rank === 4)[1]; // the second conv layer's weight
    setElement(state.get(name)!, 5, NaN);
  });
  const message = new RegExp(`tensor ${name.replace('.', '\\.')} holds 1 NaN/Inf value \\(first at element 5, NaN\\)`);
  assert.throws(() => loadModel(path), (e: Error) => e instanceof LowbitError && message.test(e.message));
  const r = lowbit('eval', '--model', path, '--dataset', data);
  assert.equal(r.code, 1);
  assert.match(r.stderr, message);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('numerics: NaN in the input and NaN made inside the model are reported by batch and by layer, not as 10% accuracy', () => {
  const { model } = buildModel('lenet5', {}, 1);
  const x = Tensor.from(Float32Array.from({ length: 4 * 784 }, (_, i) => (i % 7) / 7), [4, 1, 28, 28]);
  const y = Tensor.from(Int32Array.from([0, 1, 2, 3]), [4], 'i32');
  const batch = () => [{ x: Tensor.from(x.toFloat32Array(), [...x.shape]), y: Tensor.from(y.view() as Int32Array, [4], 'i32') }];
  // a finite model on finite input evaluates
  assert.equal(evaluate(model, batch()).samples, 4);
  // NaN in the input: the batch is named
  const bad = batch();
  setElement(bad[0].x, 100, NaN);
  assert.throws(() => evaluate(model, bad), /input batch 1 .* holds 1 NaN\/Inf value/);
  // an infinite weight makes NaN/Inf inside the model from finite input: the layer is named
  const [layer, fc] = model.namedModules().filter(([n, m]) => n !== '' && m.namedChildren().length === 0 && m.stateDict().get('weight')?.rank === 2).at(-1)!;
  setElement((fc as unknown as { weight: Tensor }).weight, 0, Infinity);
  assert.throws(() => evaluate(model, batch()), new RegExp(`finite: layer ${layer.replace('.', '\\.')} produced it first`));
  model.dispose();
  x.dispose();
  y.dispose();
});

test('numerics: damaged preprocessing statistics (a null or negative std) fail lowbit eval, not a silent accuracy', () => {
  for (const std of [[null], [-0.31]]) {
    const path = lenetFile('std.lowbit', (_s, metadata) => { metadata.preprocess = { scale: 1 / 255, mean: [0.13], std }; });
    const r = lowbit('eval', '--model', path, '--dataset', data);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /^lowbit: normalization statistics .* not finite numbers with std >= 0; the model's preprocessing metadata is damaged/);
  }
});

test('numerics: a NaN initializer in an ONNX model is refused at import, naming the layer', () => {
  const { model, config } = buildModel('lenet5', {}, 1);
  const bytes = exportOnnx({ name: 'lenet5', config, model, metadata: { preprocess: { scale: 1 / 255, mean: [0.13], std: [0.31] } } }, 'onnx');
  model.dispose();
  const m = onnx.ModelProto.decode(bytes);
  const size = (t: { dims?: unknown[] | null }) => (t.dims ?? []).reduce((p: number, d) => p * Number(d), 1);
  const init = m.graph!.initializer!.filter((t) => (t.dims ?? []).length === 4).sort((a, b) => size(b) - size(a))[0]; // the largest conv weight
  if (init.rawData?.length) {
    const raw = Buffer.from(init.rawData);
    raw.writeFloatLE(Infinity, 8);
    init.rawData = raw;
  } else {
    init.floatData![2] = Infinity;
  }
  const broken = onnx.ModelProto.encode(m).finish();
  assert.throws(() => importOnnx(broken, { what: 'm.onnx' }), /m\.onnx: layer \S+ weights holds 1 NaN\/Inf value \(first at element 2, Infinity\)/);
});

/**
 * A LeNet-5 quantized with `spec` (PTQ on one batch), its packed runtime file written after `edit` changed
 * the layer descriptions (the damage a test wants in the file).
 */
async function damagedPackedLenet(spec: string, edit: (specs: Map<string, LayerSpec>) => void, opts: { firstLast?: 'quantize' } = {}): Promise<Uint8Array> {
  const { encodeRuntimeModel } = await import('../src/runtime/file.js');
  const { describeModel } = await import('../src/runtime/index.js');
  const { normsOf } = await import('../src/runtime/plan.js');
  const { quantizePostTraining } = await import('../src/quant/ptq.js');
  const { disposeQuantized } = await import('../src/quant/quantized.js');
  const { model, config } = buildModel('lenet5', {}, 1);
  const calib = [{ x: Tensor.from(Float32Array.from({ length: 8 * 784 }, (_, i) => Math.sin(i)), [8, 1, 28, 28]), y: Tensor.from(new Int32Array(8), [8], 'i32') }];
  const q = quantizePostTraining({ name: 'lenet5', config, model, metadata: {} }, { spec, calibration: calib, ...opts });
  const { graph, specs } = describeModel(q.model, q.layers, [1, 1, 28, 28]);
  edit(specs);
  const bytes = encodeRuntimeModel(graph, specs, normsOf(q.model), {});
  for (const s of specs.values()) for (const t of s.quantTensors.values()) t.dispose();
  disposeQuantized(q);
  model.dispose();
  return bytes;
}

test('numerics: a NaN scale in a packed runtime file is refused, naming the layer', async () => {
  const { decodeRuntimeModel } = await import('../src/runtime/file.js');
  let layer = '';
  const bytes = await damagedPackedLenet('int8', (specs) => {
    const [name, spec] = [...specs].find(([, s]) => s.weights)!;
    layer = name;
    spec.weights!.scale[0] = NaN;
  }, { firstLast: 'quantize' });
  assert.throws(() => decodeRuntimeModel(bytes, 'p.lowbit'), new RegExp(`p\\.lowbit: layer ${layer} scales holds 1 NaN/Inf value`));
  // the container itself stays readable: the check is per layer
  assert.doesNotThrow(() => { for (const t of decodeModelFile(bytes).tensors.values()) t.dispose(); });
});

test('memory: a packed runtime file whose layer cannot be rebuilt frees every tensor it made', async () => {
  const { decodeRuntimeModel, compileRuntimeModel } = await import('../src/runtime/file.js');
  let layer = '';
  const bytes = await damagedPackedLenet('xnor', (specs) => {
    // a later layer loses its input batch norm's statistics: the earlier layers are built when it fails
    const [name, spec] = [...specs].filter(([, s]) => [...s.quantTensors.keys()].some((k) => k.includes('inputNorm'))).at(-1)!;
    layer = name;
    const key = [...spec.quantTensors.keys()].find((k) => k.includes('inputNorm'))!;
    spec.quantTensors.get(key)!.dispose();
    spec.quantTensors.delete(key);
  });
  const before = engine.memory.bytesInUse;
  assert.throws(() => compileRuntimeModel(decodeRuntimeModel(bytes, 'p.lowbit'), 'p.lowbit'), (e: Error) => e instanceof LowbitError && e.message.includes(layer));
  assert.equal(engine.memory.bytesInUse, before);
});

test('memory: a packed file whose scales overflow the fixed-point requantization names the layer and frees everything', async () => {
  const { decodeRuntimeModel, compileRuntimeModel } = await import('../src/runtime/file.js');
  let layer = '';
  // the first layer requantizes into the second's codes: a huge weight scale has no fixed-point multiplier
  const bytes = await damagedPackedLenet('int8', (specs) => {
    const [name, spec] = [...specs][0];
    layer = name;
    spec.weights!.scale[0] = 1e30;
  }, { firstLast: 'quantize' });
  const before = engine.memory.bytesInUse;
  assert.throws(() => compileRuntimeModel(decodeRuntimeModel(bytes, 'p.lowbit'), 'p.lowbit'),
    (e: Error) => e instanceof LowbitError && e.message.startsWith(`p.lowbit: layer ${layer}, output channel 0: requantization multiplier`));
  assert.equal(engine.memory.bytesInUse, before);
});

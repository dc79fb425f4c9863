// `lowbit compare` and `lowbit quantize`: rows, failures, results.json and report.html written atomically,
// --resume, the hardware cost model, and the commands end to end on a small synthetic IDX dataset.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { init, shutdown } from '../src/index.js';
import { saveModel } from '../src/zoo/index.js';
import { encodeIdx } from '../src/formats/idx.js';
import type { Dataset, Split } from '../src/data/index.js';
import { runCompare, compareSettings, describeSpec, modelFileNames, qatEpochs, type CompareResults } from '../src/quant/compare.js';
import { runtimeLatency, compareHtml, compareTable } from '../src/cli/compare.js';
import { opEnergy, opArea, macCost, modelCost, parameterBytes, accumulatorBits, fitExponent } from '../src/quant/cost.js';
import { parseSpec } from '../src/quant/spec.js';
import type { ModelSource } from '../src/quant/quantized.js';
import type { LayerInfo } from '../src/quant/graph.js';
import { quadrantData, quadrantSplit, trainedLenet, QUADRANT_STATS } from './quant-fixtures.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

let data: ReturnType<typeof quadrantData>;
let src: ModelSource;
let tmp: string;

function dataset(train: Split, test: Split): Dataset {
  return { name: 'quadrants', classes: ['0', '1', '2', '3'], train, test, stats: QUADRANT_STATS, source: 'synthetic' };
}

before(async () => {
  await init();
  data = quadrantData(512, 300);
  src = trainedLenet(data);
  tmp = mkdtempSync(join(tmpdir(), 'lowbit-compare-'));
});
after(async () => {
  src.model.dispose();
  rmSync(tmp, { recursive: true, force: true });
  await shutdown();
});

const settings = compareSettings(true, { testSamples: 300, trainSamples: 256, calibSamples: 64 });

describe('compare', () => {
  let results: CompareResults;
  let layers: readonly LayerInfo[] = [];
  const out = () => join(tmp, 'run');
  const opts = (specs: string[], extra: Partial<Parameters<typeof runCompare>[0]> = {}) => ({
    source: src, modelName: 'm.lowbit', dataset: dataset(data.train, data.test), specs, quick: true, seed: 1, outDir: out(),
    command: 'lowbit compare --quick', settings, normalize: QUADRANT_STATS,
    onWrite: (r: CompareResults, l: readonly LayerInfo[]) => { layers = l; writeFileSync(join(out(), 'report.html'), compareHtml(r, l)); },
    ...extra,
  });

  it('one row per spec; a failing row keeps its reason and the others go on', () => {
    results = runCompare(opts(['fp32', 'int8', 'int8;conv9=fp32', 'twn'], { latency: runtimeLatency(src) }));
    assert.deepEqual(Object.keys(results), ['model', 'weights_sha256', 'dataset', 'command', 'seed', 'seconds', 'machine', 'rows']);
    assert.match(results.weights_sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual(results.rows.map((r) => r.spec), ['fp32', 'int8', 'int8;conv9=fp32', 'twn']);
    const [fp, int8, bad, twn] = results.rows;
    assert.deepEqual(Object.keys(int8), ['spec', 'accuracy', 'delta', 'weight_bits', 'act_bits', 'bytes', 'compression', 'bops', 'energy_uj', 'latency_ms', 'kernels', 'seconds', 'layers', 'histogram']);
    assert.deepEqual(Object.keys(fp), ['spec', 'accuracy', 'delta', 'weight_bits', 'act_bits', 'bytes', 'compression', 'bops', 'energy_uj', 'latency_ms', 'kernels', 'seconds'],
      'fp32 quantizes nothing: no per-layer statistics');
    // latency on the integer runtime, with the kernel families that ran (LeNet-5: 2 conv + 3 linear layers)
    assert.equal(fp.kernels, '5 float');
    assert.equal(int8.kernels, '5 int8');
    assert.equal(twn.kernels, '5 float', 'TWN keeps float activations: float kernels with ternary weights');
    assert.ok(int8.latency_ms! > 0 && fp.latency_ms! > 0);
    assert.equal(fp.delta, 0);
    assert.equal(fp.compression, 1);
    assert.ok(fp.accuracy! > 0.8);
    assert.ok(Math.abs(int8.accuracy! - fp.accuracy!) <= 0.02);
    assert.ok(int8.compression! > 3.5 && int8.compression! < 4.1, `int8 compression ${int8.compression}`);
    assert.equal(int8.bops, fp.bops! / 16);
    assert.ok(int8.energy_uj! < fp.energy_uj!);
    assert.match(bad.error!, /"conv9" match no layer/);
    assert.equal(bad.accuracy, null);
    assert.equal(twn.weight_bits, 2);
    assert.equal(twn.act_bits, 32);
    assert.ok(twn.compression! > 10);
    // on disk: the same JSON, the report, and no temporary files
    assert.deepEqual(JSON.parse(readFileSync(join(out(), 'results.json'), 'utf8')), results);
    assert.deepEqual(readdirSync(out()).sort(), ['report.html', 'results.json']);
    const html = readFileSync(join(out(), 'report.html'), 'utf8');
    assert.match(html, /<div class="chart" id="chart-histogram">/);
    assert.match(html, /<td>twn<\/td>/);
    assert.match(html, /failed: .*conv9/);
    assert.match(html, /lowbit compare --quick/);
    // per-layer weight SQNR: int8 keeps > 30 dB in every layer it quantizes, ternary much less
    assert.deepEqual(int8.layers!.map((l) => l.name), layers.map((l) => l.name));
    for (const l of int8.layers!) assert.ok(l.sqnr_db! > 30, `int8 ${l.name}: ${l.sqnr_db} dB`);
    assert.deepEqual(twn.layers!.map((l) => l.name), layers.map((l) => l.name), 'TWN quantizes every layer, as its paper does');
    for (const l of twn.layers!) {
      const i8 = int8.layers!.find((x) => x.name === l.name)!;
      assert.ok(l.sqnr_db! < i8.sqnr_db! - 10, `twn ${l.name}: ${l.sqnr_db} dB vs int8 ${i8.sqnr_db} dB`);
    }
    // the histogram of the largest conv layer: shared edges, every weight counted once before and once after
    const conv = layers.filter((l) => l.kind === 'conv').reduce((m, l) => (l.params > m.params ? l : m));
    for (const r of [int8, twn]) {
      const h = r.histogram!;
      assert.equal(h.layer, conv.name);
      assert.equal(h.edges.length, 61);
      assert.equal(h.float.length, 60);
      assert.equal(h.quantized.length, 60);
      for (let i = 1; i < h.edges.length; i++) assert.ok(h.edges[i] > h.edges[i - 1]);
      assert.equal(h.float.reduce((a, b) => a + b), conv.params);
      assert.equal(h.quantized.reduce((a, b) => a + b), conv.params);
    }
    assert.ok(twn.histogram!.quantized.filter((c) => c > 0).length <= 3, 'ternary weights take three values');
    assert.ok(int8.histogram!.quantized.filter((c) => c > 0).length > 20);
    const table = compareTable(results, layers);
    assert.match(table, /int8\s+│ PTQ/);
    assert.match(table, /twn\s+│ QAT/);
    assert.match(table, /activations stay float, as in the paper/);
  });

  it('rows of an earlier version without per-layer statistics resume and still make a report', () => {
    const path = join(out(), 'results.json');
    const saved = readFileSync(path, 'utf8');
    try {
      const old = JSON.parse(saved) as CompareResults;
      for (const r of old.rows) { delete r.layers; delete r.histogram; }
      writeFileSync(path, JSON.stringify(old));
      let html = '';
      const again = runCompare(opts(['fp32', 'int8'], { resume: true, onWrite: (r: CompareResults, l: readonly LayerInfo[]) => { html = compareHtml(r, l); } }));
      assert.equal(again.rows[1].layers, undefined);
      assert.match(html, /no per-layer weight statistics/);
      assert.match(html, /id="chart-size"/);
    } finally {
      writeFileSync(path, saved);
    }
  });

  it('--resume keeps finished rows, reruns failed ones, and refuses another comparison\'s file', () => {
    const lines: string[] = [];
    const written: string[][] = [];
    const again = runCompare(opts(['fp32', 'int8', 'int8;conv9=fp32', 'twn', 'dfp:8'], {
      resume: true, log: (s) => lines.push(s), onWrite: (r: CompareResults) => written.push(r.rows.map((x) => x.spec)),
    }));
    // the finished rows are on disk from the first write on
    assert.deepEqual(written[0], ['fp32', 'int8', 'int8;conv9=fp32', 'twn']);
    assert.equal(lines.filter((l) => /done in an earlier run/.test(l)).length, 3);
    assert.deepEqual(again.rows[1], results.rows[1]);
    assert.deepEqual(again.rows[3], results.rows[3]);
    assert.ok(again.rows[2].error);
    assert.equal(again.rows[4].spec, 'dfp:8');
    assert.throws(() => runCompare(opts(['int8'], { resume: true, seed: 2 })), /written by another comparison/);
    // the same model name with other weights (retrained): its rows are not reused
    const w = src.model.parameters()[0], saved = w.toFloat32Array();
    w.view()[0] += 1;
    try {
      assert.throws(() => runCompare(opts(['int8'], { resume: true })), /other weights of m\.lowbit \(the model was retrained/);
    } finally {
      w.view().set(saved);
    }
    assert.throws(() => runCompare(opts(['int8'], { histLayer: 'nope' })), /--hist-layer nope is not a conv or linear layer/);
  });

  it('malformed specs are usage errors before any work', () => {
    assert.throws(() => runCompare(opts(['int8', 'int99'])), /int99/);
    assert.throws(() => runCompare(opts(['int8', 'int8'])), /more than once/);
  });
});

describe('model files of the rows', () => {
  it('are named after the spec, safe for a shell, and unique', () => {
    const f = modelFileNames(['int8:per-channel', 'w=int4,a=int8', 'a=int8;conv1=fp32', 'a=int8;conv1:fp32', 'fixed:16.8:stochastic', '..']);
    assert.deepEqual([...f.values()], [
      'models/int8-per-channel.lowbit', 'models/w=int4,a=int8.lowbit', 'models/a=int8-conv1=fp32.lowbit', 'models/a=int8-conv1-fp32.lowbit',
      'models/fixed-16.8-stochastic.lowbit', 'models/row.lowbit',
    ]);
    assert.deepEqual([...modelFileNames(['a;b', 'a:b', 'a-b']).values()], ['models/a-b.lowbit', 'models/a-b-2.lowbit', 'models/a-b-3.lowbit']);
  });
});

describe('QAT epochs per row', () => {
  const lenetLayers = [
    { name: 'conv1', kind: 'conv', macs: 117600, fanIn: 25 }, { name: 'conv2', kind: 'conv', macs: 240000, fanIn: 150 },
    { name: 'fc', kind: 'linear', macs: 4000, fanIn: 400 },
  ] as unknown as LayerInfo[];
  const epochsOf = (spec: string, st = compareSettings(false)) => qatEpochs(describeSpec(spec, lenetLayers), st);

  it('binary activations (bnn, xnor, a=xnor) train twice the low-bit epochs; binary or ternary weights the low-bit epochs', () => {
    const st = compareSettings(false);
    assert.equal(st.lowBitEpochs, 10);
    assert.equal(st.binaryActivationEpochs, 20);
    for (const s of ['bnn', 'xnor', 'w=fp32,a=xnor']) assert.equal(epochsOf(s), 20, s);
    for (const s of ['binary', 'bwn', 'twn', 'ttq', 'dorefa:w1a2']) assert.equal(epochsOf(s), 10, s);
    assert.equal(epochsOf('int4'), 3);
    assert.equal(epochsOf('fixed:16.8:stochastic'), 5);
  });

  it('the binary-activation epochs follow --low-bit-epochs unless given, and --quick keeps one epoch', () => {
    assert.equal(compareSettings(false, { lowBitEpochs: 4 }).binaryActivationEpochs, 8);
    assert.equal(compareSettings(false, { lowBitEpochs: 4, binaryActivationEpochs: 5 }).binaryActivationEpochs, 5);
    assert.equal(epochsOf('xnor', compareSettings(false, { binaryActivationEpochs: 7 })), 7);
    assert.equal(compareSettings(true).binaryActivationEpochs, 1);
    assert.equal(epochsOf('bnn', compareSettings(true)), 1);
  });
});

describe('hardware cost model', () => {
  it("reproduces Horowitz's table at its widths and fits power laws between them", () => {
    assert.equal(opEnergy('intMult', 8), 0.2);
    assert.ok(Math.abs(opEnergy('intMult', 32) - 3.1) < 1e-12);
    assert.ok(Math.abs(opEnergy('intAdd', 32) - 0.1) < 1e-12);
    assert.ok(Math.abs(opEnergy('floatMult', 16) - 1.1) < 1e-12);
    assert.ok(Math.abs(opArea('floatAdd', 32) - 4184) < 1e-9);
    assert.ok(Math.abs(opArea('intMult', 8) - 282) < 1e-9);
    assert.ok(Math.abs(fitExponent('intMult', 'energy') - 1.98) < 0.01);
    assert.ok(Math.abs(fitExponent('intAdd', 'energy') - 0.87) < 0.01);
    assert.equal(accumulatorBits(8, 8, 400), 25);
    assert.equal(accumulatorBits(16, 16, 400), 32);
  });

  it('orders the MACs: XNOR-popcount < int4 < int8 < fp8 < fp32; +-1 weights with float inputs are an fp32 add', () => {
    const int = (b: number) => ({ cls: 'int' as const, bits: b });
    const fp = (b: number) => ({ cls: 'float' as const, bits: b });
    const sign = { cls: 'sign' as const, bits: 1 };
    const e = [macCost(sign, sign, 400), macCost(int(4), int(4), 400), macCost(int(8), int(8), 400), macCost(fp(8), fp(8), 400), macCost(fp(32), fp(32), 400)].map((m) => m.energy);
    for (let i = 1; i < e.length; i++) assert.ok(e[i] > e[i - 1], `MAC energies not increasing: ${e}`);
    assert.ok(Math.abs(macCost(fp(32), fp(32), 400).energy - 4.6) < 1e-9);
    assert.ok(Math.abs(macCost(sign, fp(32), 400).energy - 0.9) < 1e-9);
    assert.ok(Math.abs(macCost({ cls: 'ternary', bits: 2 }, fp(32), 400, 0.5).energy - 0.45) < 1e-9);
  });

  it('packed size: bits per weight, scales, biases; fp32 layers at 4 bytes', () => {
    const scheme = parseSpec('int4:per-channel').forLayer('x');
    assert.equal(parameterBytes(scheme, 10), 4 * 10 + 4 + 4);
    const layer = { name: 'x', macs: 1000, params: 1000, outChannels: 10, fanIn: 100, biases: 10, inputElements: 100, outputElements: 10 };
    const q = modelCost([{ ...layer, scheme }]);
    assert.equal(q.bytes, 500 + 48 + 40);
    assert.equal(q.fp32Bytes, 4 * 1010);
    assert.equal(q.bops, 1000 * 16);
    const f = modelCost([{ ...layer, scheme: parseSpec('fp32').forLayer('x') }]);
    assert.equal(f.bytes, 4040);
    assert.equal(f.compression, 1);
    assert.equal(f.energy.weightMemory, 'SRAM 8 KB');
  });
});

/** Write a split as MNIST-style IDX files. */
function writeIdx(dir: string, train: Split, test: Split): void {
  mkdirSync(dir, { recursive: true });
  for (const [prefix, s] of [['train', train], ['t10k', test]] as const) {
    writeFileSync(join(dir, `${prefix}-images-idx3-ubyte`), encodeIdx({ dtype: 'u8', dims: [s.count, s.height, s.width], data: s.images }));
    writeFileSync(join(dir, `${prefix}-labels-idx1-ubyte`), encodeIdx({ dtype: 'u8', dims: [s.count], data: Uint8Array.from(s.labels) }));
  }
}

function lowbit(...args: string[]) {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, LOWBIT_CACHE: join(tmp, 'cache') } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('lowbit quantize and lowbit compare', () => {
  let model: string, ds: string;
  before(() => {
    model = join(tmp, 'm.lowbit');
    saveModel(model, 'lenet5', src.config, src.model, { preprocess: { mean: QUADRANT_STATS.mean, std: QUADRANT_STATS.std } });
    ds = join(tmp, 'quadrants');
    writeIdx(ds, data.train, data.test);
  });

  it('quantize writes a model that eval reproduces exactly', () => {
    const q = join(tmp, 'q.lowbit');
    const r = lowbit('quantize', '--model', model, '--spec', 'int8:per-channel', '--calib', ds, '--calib-samples', '64', '--method', 'percentile', '--out', q, '--json');
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out);
    assert.equal(res.mode, 'ptq');
    const e = lowbit('eval', '--model', q, '--dataset', ds, '--json');
    assert.equal(e.code, 0, e.err);
    assert.equal(JSON.parse(e.out).accuracy, res.accuracy);
    const again = lowbit('compare', '--model', q, '--dataset', ds, '--out', join(tmp, 'x'));
    assert.equal(again.code, 2);
    assert.match(again.err, /already quantized; give the float model/);
  });

  it('quantize --qat fine-tunes and saves a model that eval reproduces', () => {
    const q = join(tmp, 'qat.lowbit');
    const r = lowbit('quantize', '--model', model, '--spec', 'ttq', '--qat', '--epochs', '1', '--dataset', ds, '--out', q, '--json');
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out);
    assert.equal(res.mode, 'qat');
    assert.equal(res.effective_spec, 'ttq;0=fp32;11=fp32');
    const e = lowbit('eval', '--model', q, '--dataset', ds, '--json');
    assert.equal(JSON.parse(e.out).accuracy, res.accuracy);
    const bad = lowbit('quantize', '--model', model, '--spec', 'int8', '--from-scratch', '--calib', ds, '--out', q);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--from-scratch trains the model: use it with --qat/);
  });

  it('compare --quick writes results.json and report.html and prints the table', () => {
    const dir = join(tmp, 'cli-run');
    const r = lowbit('compare', '--model', model, '--dataset', ds, '--specs', 'fp32,int8', '--specs', 'w=twn,a=int8', '--quick', '--no-models', '--out', dir);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /w=twn,a=int8/);
    const res = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8')) as CompareResults;
    assert.deepEqual(res.rows.map((x) => x.spec), ['fp32', 'int8', 'w=twn,a=int8']);
    assert.ok(existsSync(join(dir, 'report.html')));
    assert.match(res.command, /--quick/);
    assert.ok(!existsSync(join(dir, 'models')) && res.rows.every((x) => x.model_file === undefined), '--no-models keeps no model');
  });

  it('compare --jobs 2 makes the rows of one process, and --resume skips them', () => {
    const args = ['--model', model, '--dataset', ds, '--specs', 'int8,int4', '--specs', 'w=twn,a=int8', '--mixed', '0.25', '--quick'];
    const one = join(tmp, 'jobs-1'), two = join(tmp, 'jobs-2');
    // Each of the 2 jobs runs on 1 thread of the 2, as the single process does here: the same arithmetic.
    let r = lowbit('compare', ...args, '--threads', '1', '--out', one);
    assert.equal(r.code, 0, r.err);
    r = lowbit('compare', ...args, '--jobs', '2', '--threads', '2', '--out', two);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /4 rows in 2 processes at a time, 1 kernel thread each/);
    assert.match(r.err, /^\[int4\] .*int4: QAT/m);
    // results.json and the report follow the rows as the jobs finish them
    assert.match(r.err, /^\[[^\]]+\] done: 1 of 4 rows in results.json and report.html$/m);
    assert.match(r.err, /^\[[^\]]+\] done: 4 of 4 rows in results.json and report.html$/m);
    const a = JSON.parse(readFileSync(join(one, 'results.json'), 'utf8')) as CompareResults;
    const b = JSON.parse(readFileSync(join(two, 'results.json'), 'utf8')) as CompareResults;
    const same = (x: CompareResults) => x.rows.map((row) => ({ spec: row.spec, accuracy: row.accuracy, bytes: row.bytes, bops: row.bops, layers: row.layers, mixed: row.mixed, error: row.error }));
    assert.deepEqual(same(b), same(a));
    assert.deepEqual(b.rows.map((x) => x.spec), ['int8', 'int4', 'w=twn,a=int8', 'auto:greedy:0.25']);
    assert.match(b.command, /--jobs 2/);
    assert.match(readFileSync(join(two, 'report.html'), 'utf8'), /<a href="models\/int4.lowbit"[^>]*>int4<\/a>/, 'the report links each row to its model');
    assert.ok(!existsSync(join(two, 'jobs')), 'the jobs\' folders are removed once their rows are in results.json');
    // each row's model is kept, and it is the model the row measured
    assert.deepEqual(b.rows.map((x) => x.model_file), ['models/int8.lowbit', 'models/int4.lowbit', 'models/w=twn,a=int8.lowbit', 'models/auto-greedy-0.25.lowbit']);
    for (const [dir, res] of [[one, a], [two, b]] as const) {
      for (const row of res.rows) {
        const e = lowbit('eval', '--model', join(dir, row.model_file!), '--dataset', ds, '--json');
        assert.equal(e.code, 0, e.err);
        assert.equal(JSON.parse(e.out).accuracy, row.accuracy, row.spec);
      }
    }
    r = lowbit('compare', ...args, '--jobs', '2', '--threads', '2', '--out', two, '--resume');
    assert.equal(r.code, 0, r.err);
    assert.doesNotMatch(r.err, /processes at a time/);
    assert.match(r.err, /int4: done in an earlier run/);
    const c = JSON.parse(readFileSync(join(two, 'results.json'), 'utf8')) as CompareResults;
    assert.deepEqual(same(c), same(b));
  });

  it('bad input: clear errors and exit codes', () => {
    let r = lowbit('quantize', '--model', model, '--spec', 'int8', '--calib', ds, '--calib-samples', '0', '--out', join(tmp, 'z.lowbit'));
    assert.equal(r.code, 2);
    assert.match(r.err, /--calib-samples must be a positive integer, got "0"/);
    r = lowbit('quantize', '--model', model, '--spec', 'int99', '--calib', ds, '--out', join(tmp, 'z.lowbit'));
    assert.equal(r.code, 2);
    assert.match(r.err, /int99.*Valid forms/);
    // with --jobs, a wrong --hist-layer is refused before any job starts
    const histOut = join(tmp, 'hist-jobs');
    r = lowbit('compare', '--model', model, '--dataset', ds, '--specs', 'int8,int4', '--quick', '--jobs', '2', '--hist-layer', 'nope', '--out', histOut);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /--hist-layer nope is not a conv or linear layer/);
    assert.doesNotMatch(r.err, /processes at a time/);
    assert.ok(!existsSync(join(histOut, 'results.json')), 'no results.json');
    const small = join(tmp, 'small');
    // a dataset of another image size
    const tiny = (s: Split): Split => ({ ...s, height: 14, width: 14, images: s.images.slice(0, s.count * 196) });
    writeIdx(small, tiny(quadrantSplit(8, 1)), tiny(quadrantSplit(8, 2)));
    r = lowbit('quantize', '--model', model, '--spec', 'int8', '--calib', small, '--out', join(tmp, 'z.lowbit'));
    assert.equal(r.code, 1);
    assert.match(r.err, /has inputs of shape \[1, 14, 14\], but lenet5 takes \[1, 28, 28\]/);
    assert.equal(r.err.trim().split('\n').length, 1, r.err);
    assert.ok(!existsSync(join(tmp, 'z.lowbit')));
    r = lowbit('compare', '--model', model, '--dataset', ds, '--specs', 'int8,bogus', '--out', join(tmp, 'bad'));
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown datatype "bogus"/);
    for (const cmd of ['quantize', 'compare']) {
      const h = lowbit(cmd, '--help');
      assert.equal(h.code, 0);
      assert.match(h.out, /Usage: lowbit/);
    }
  });
});

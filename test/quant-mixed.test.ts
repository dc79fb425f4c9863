// Mixed precision (issue 9): Lin et al.'s closed-form bit allocation, the greedy allocator, the exact size model,
// the per-layer float-vs-quantized diff, one-layer-at-a-time sensitivity, spec files, compare's mixed rows and
// the report's charts. On a LeNet-5 trained in a second on a synthetic task (quant-fixtures.ts).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { init, shutdown } from '../src/index.js';
import { LowbitError, UsageError } from '../src/errors.js';
import { linContinuousBits, linAllocate, fitNoiseModel } from '../src/quant/lin-allocation.js';
import {
  greedyAllocate, sizeFunction, allocateMixedPrecision, mixedSpecText, specFileText, specArgument, parseBits, type MixedAllocation,
} from '../src/quant/mixed-precision.js';
import { layerDiff, layerSensitivity, weightNoiseTable, singleLayerSpec } from '../src/quant/sensitivity.js';
import { quantizePostTraining } from '../src/quant/ptq.js';
import { cloneModel, disposeQuantized, type ModelSource } from '../src/quant/quantized.js';
import { Tensor } from '../src/tensor/tensor.js';
import { tidy } from '../src/tensor/engine.js';
import * as ops from '../src/autograd/index.js';
import { costInputs, costOf, runCompare, compareSettings } from '../src/quant/compare.js';
import { traceModel } from '../src/quant/graph.js';
import { evaluate } from '../src/train/trainer.js';
import { parseSpec } from '../src/quant/spec.js';
import { compareCharts } from '../src/report/charts.js';
import { compareHtml } from '../src/report/compare-report.js';
import { specFilePath } from '../src/cli/quantize.js';
import type { Dataset } from '../src/data/index.js';
import { quadrantData, trainedLenet, splitBatches, QUADRANT_STATS } from './quant-fixtures.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

let data: ReturnType<typeof quadrantData>;
let src: ModelSource;
let tmp: string;

before(async () => {
  await init();
  data = quadrantData(512, 300);
  src = trainedLenet(data);
  tmp = mkdtempSync(join(tmpdir(), 'lowbit-mixed-'));
});
after(async () => {
  src.model.dispose();
  rmSync(tmp, { recursive: true, force: true });
  await shutdown();
});

const calibration = () => splitBatches({ ...data.train, count: 128 }, 64);
const names = () => traceModel(src.model, splitBatches({ ...data.test, count: 2 }, 2).next().value!.x).layers;

describe('Lin et al. closed form', () => {
  it('worked example: 4x the parameters -> 1 bit less at kappa = 10 log10 4; the budget is met exactly', () => {
    // rho = (1000, 4000), s = 1: beta_1 - beta_2 = 10 log10(4000 / 1000) / kappa = 1; B = 1000 beta_1 + 4000 beta_2 = 21000
    // -> beta_2 = 4, beta_1 = 5 (by hand: c = (21000 + 1000 log4 1000 + 4000 log4 4000) / 5000 = 9.98289)
    const beta = linContinuousBits([{ name: 'a', params: 1000 }, { name: 'b', params: 4000 }], 21000, 10 * Math.log10(4));
    assert.ok(Math.abs(beta[0] - 5) < 1e-9 && Math.abs(beta[1] - 4) < 1e-9, `beta ${beta}`);
  });

  it('the paper\'s relation beta_i - beta_j = 10 log10(rho_j / rho_i) / kappa for equal sensitivities, and s_i shifts it', () => {
    const layers = [{ name: 'a', params: 150 }, { name: 'b', params: 2400 }, { name: 'c', params: 48000 }];
    const kappa = 6.02;
    const beta = linContinuousBits(layers, 4 * 50550, kappa);
    for (const [i, j] of [[0, 1], [1, 2], [0, 2]]) {
      assert.ok(Math.abs(beta[i] - beta[j] - (10 * Math.log10(layers[j].params / layers[i].params)) / kappa) < 1e-9);
    }
    assert.ok(Math.abs(layers.reduce((s, l, i) => s + l.params * beta[i], 0) - 4 * 50550) < 1e-6, 'sum rho beta = B');
    // a layer 10x more sensitive gets 10 / kappa = 1.66 bits more relative to the others
    const sensitive = linContinuousBits(layers.map((l, i) => ({ ...l, sensitivity: i === 2 ? 10 : 1 })), 4 * 50550, kappa);
    assert.ok(Math.abs((sensitive[2] - sensitive[0]) - (beta[2] - beta[0]) - 10 / kappa) < 1e-9);
  });

  const layers = [{ name: 'a', params: 1000 }, { name: 'b', params: 4000 }, { name: 'c', params: 250 }];
  const size = (bits: readonly number[]) => 100 + Math.ceil(layers.reduce((s, l, i) => s + l.params * bits[i], 0) / 8);
  const opts = (budgetBytes: number) => ({ kappa: 6.02, bits: [2, 3, 4, 5, 6, 7, 8], size, budgetBytes });

  it('integer bits: never over the budget, every layer monotone in the budget, a clear error below the minimum', () => {
    let previous: number[] | null = null;
    for (let budget = size([2, 2, 2]); budget <= size([8, 8, 8]) + 50; budget += 37) {
      const a = linAllocate(layers, opts(budget));
      assert.ok(a.bytes <= budget, `budget ${budget}: ${a.bytes} bytes`);
      assert.equal(a.bytes, size(a.bits));
      assert.ok(a.bits.every((b) => b >= 2 && b <= 8));
      if (previous) assert.ok(a.bits.every((b, i) => b >= previous![i]), `${previous} -> ${a.bits} at ${budget}`);
      previous = a.bits;
    }
    assert.deepEqual(previous, [8, 8, 8]);
    assert.throws(() => linAllocate(layers, opts(size([2, 2, 2]) - 1)), (e: Error) => e instanceof LowbitError && /below the smallest allocation/.test(e.message));
  });

  it('the integer allocation follows the closed form: more bits to the layers with fewer parameters', () => {
    const a = linAllocate(layers, opts(size([4, 4, 4])));
    assert.ok(a.bits[2] >= a.bits[0] && a.bits[0] >= a.bits[1], `${a.bits}`);
  });

  it('fits kappa and s_i from measured noise', () => {
    const bits = [2, 3, 4, 5, 6, 7, 8], s = [0.5, 3, 20];
    const noise = s.map((si) => bits.map((b) => si * 10 ** (-6.5 * b / 10)));
    const fit = fitNoiseModel(bits, noise);
    assert.ok(Math.abs(fit.kappa - 6.5) < 1e-9, `kappa ${fit.kappa}`);
    fit.sensitivity.forEach((v, i) => assert.ok(Math.abs(v / s[i] - 1) < 1e-9, `s ${v} vs ${s[i]}`));
    assert.throws(() => fitNoiseModel(bits, [bits.map(() => 1)]), LowbitError);
  });
});

describe('greedy allocator', () => {
  // two layers of 1000 weights; layer 0 is 100x more sensitive than layer 1
  const bits = [2, 4, 8];
  const noise = [[1e-1, 1e-2, 1e-4], [1e-3, 1e-4, 1e-6]];
  const size = (b: readonly number[]) => Math.ceil((1000 * b[0] + 1000 * b[1]) / 8);

  it('takes bits from the insensitive layer first and never exceeds the budget', () => {
    assert.deepEqual(greedyAllocate(noise, bits, size, size([8, 8])), [8, 8]);
    assert.deepEqual(greedyAllocate(noise, bits, size, size([8, 4])), [8, 4]);
    assert.deepEqual(greedyAllocate(noise, bits, size, size([8, 2])), [8, 2]);
    assert.deepEqual(greedyAllocate(noise, bits, size, size([4, 2])), [4, 2]);
    for (let budget = size([2, 2]); budget <= size([8, 8]); budget += 25) {
      assert.ok(size(greedyAllocate(noise, bits, size, budget)) <= budget);
    }
    assert.throws(() => greedyAllocate(noise, bits, size, size([2, 2]) - 1), /below the smallest allocation/);
  });

  it('spends what the last step freed: a budget between two steps fills the next step up that fits', () => {
    // [8, 8] -> the cheapest step down is layer 1 to 4 bits (500 bytes saved). With room for [8, 4] + 300 bytes the
    // greedy descent continues to [8, 2] (its noise cost per byte is smaller than layer 0's), then gives 250 bytes
    // back: [8, 4] fits again.
    assert.deepEqual(greedyAllocate(noise, bits, size, size([8, 4]) + 100), [8, 4]);
  });

  it('predicted noise falls as the budget grows', () => {
    let last = Infinity;
    for (let budget = size([2, 2]); budget <= size([8, 8]); budget += 50) {
      const b = greedyAllocate(noise, bits, size, budget);
      const total = b.reduce((s, v, i) => s + noise[i][bits.indexOf(v)], 0);
      assert.ok(total <= last, `budget ${budget}: ${total} > ${last}`);
      last = total;
    }
  });
});

describe('size model and automatic allocation on a trained LeNet-5', () => {
  it('the size function equals the packed size of the PTQ model of the spec, byte for byte', () => {
    const info = names();
    const bits = [6, 3, 2, 5, 8];
    const spec = mixedSpecText(info.map((l) => l.name), bits);
    const q = quantizePostTraining(src, { spec, calibration: calibration(), firstLast: 'quantize' });
    try {
      const size = sizeFunction(costInputs(src, q.info, q));
      assert.equal(size(bits), costOf(src, q.info, q).bytes);
      assert.ok(size([8, 8, 8, 8, 8]) > size(bits));
    } finally {
      disposeQuantized(q);
    }
  });

  it('weight noise table: output noise falls with more bits for every layer', () => {
    const x = calibration().next().value!;
    try {
      const t = weightNoiseTable(src, x.x, [2, 4, 8]);
      assert.equal(t.layers.length, 5);
      for (const row of t.noise) assert.ok(row[0] > row[1] && row[1] > row[2] && row[2] > 0, `${row}`);
      for (const row of t.weightSqnr) assert.ok(row[2] - row[1] > 18 && row[2] - row[1] < 30, `4 more bits ~ 24 dB: ${row}`);
    } finally {
      x.x.dispose();
      x.y.dispose();
    }
  });

  const results = new Map<string, MixedAllocation>();
  for (const allocator of ['greedy', 'lin'] as const) {
    it(`${allocator}: the spec fits the budget exactly as quantized, and more budget never gives fewer bits on average`, () => {
      let lastMean = 0;
      for (const budget of [0.1, 0.18]) {
        const a = allocateMixedPrecision(src, calibration, { budget, allocator, samples: 32 });
        results.set(`${allocator}:${budget}`, a);
        assert.ok(a.bytes <= a.budget_bytes && a.budget_bytes === Math.floor(budget * a.fp32_bytes));
        const q = quantizePostTraining(src, { spec: a.spec, calibration: calibration(), firstLast: 'quantize' });
        try {
          assert.equal(costOf(src, q.info, q).bytes, a.bytes, 'the allocation\'s size is the quantized model\'s');
        } finally {
          disposeQuantized(q);
        }
        assert.ok(a.mean_weight_bits >= lastMean, `${budget}: ${a.mean_weight_bits} < ${lastMean}`);
        lastMean = a.mean_weight_bits;
        if (allocator === 'lin') assert.ok(a.kappa! > 3 && a.kappa! < 12, `kappa ${a.kappa}`);
      }
      assert.throws(() => allocateMixedPrecision(src, calibration, { budget: 0.01, allocator }), /below the smallest allocation/);
      assert.throws(() => allocateMixedPrecision(src, calibration, { budget: 1.5, allocator }), UsageError);
    });
  }

  it('budgets share one measurement of the same weights; other weights are measured again', () => {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    allocateMixedPrecision(src, calibration, { budget: 0.1, allocator: 'lin', samples: 32 });
    const a = allocateMixedPrecision(src, calibration, { budget: 0.18, allocator: 'greedy', samples: 32, log });
    assert.deepEqual(a, results.get('greedy:0.18'), 'same allocation');
    assert.match(lines[0], /measured for the previous budget is reused/);
    const other: ModelSource = { ...src, model: cloneModel(src) };
    try {
      const w = other.model.parameters()[0];
      tidy(() => { w.assign(ops.mul(w, Tensor.scalar(-0.5))); });
      const b = allocateMixedPrecision(other, calibration, { budget: 0.18, allocator: 'greedy', samples: 32, log });
      assert.match(lines[2], /measuring the output noise of each layer's weights at 2, 3, 4, 5, 6, 7, 8 bits on 32 images/);
      assert.notDeepEqual(b.layers.map((l) => l.noise), a.layers.map((l) => l.noise));
    } finally {
      other.model.dispose();
    }
    assert.deepEqual(allocateMixedPrecision(src, calibration, { budget: 0.18, allocator: 'greedy', samples: 32 }), a);
  });

  it('the spec file round-trips: written with comments, read back as the same spec', () => {
    const a = results.get('greedy:0.18')!;
    const path = join(tmp, 'm.spec');
    writeFileSync(path, specFileText(a, 'm.lowbit'));
    assert.equal(specArgument(path), a.spec);
    assert.equal(parseSpec(specArgument(path)).text, a.spec);
    assert.equal(specArgument('int8'), 'int8', 'a spec string is passed through');
    assert.throws(() => specArgument(join(tmp, 'missing.spec')), UsageError);
    assert.equal(specFilePath('out/q.lowbit'), 'out/q.spec');
    assert.deepEqual(parseBits('2-5'), [2, 3, 4, 5]);
    assert.deepEqual(parseBits('8,2,4'), [2, 4, 8]);
    assert.throws(() => parseBits('1-8'), UsageError);
  });
});

describe('per-layer analysis', () => {
  it('float-vs-quantized diff: weight, activation and output SQNR per layer; more bits, less error', () => {
    const run = (spec: string) => {
      const q = quantizePostTraining(src, { spec, calibration: calibration(), firstLast: 'quantize' });
      try {
        return layerDiff(q, splitBatches({ ...data.test, count: 100 }, 50));
      } finally {
        disposeQuantized(q);
      }
    };
    const d8 = run('int8'), d4 = run('int4');
    assert.equal(d8.samples, 100);
    assert.equal(d8.layers.length, 5);
    for (let i = 0; i < 5; i++) {
      const [a, b] = [d8.layers[i], d4.layers[i]];
      assert.equal(a.scheme, 'w=int8,a=int8');
      assert.ok(a.weight_sqnr_db! > b.weight_sqnr_db! + 15, `${a.layer}: weights ${a.weight_sqnr_db} vs ${b.weight_sqnr_db}`);
      assert.ok(a.activation_sqnr_db! > b.activation_sqnr_db! + 15, `${a.layer}: inputs ${a.activation_sqnr_db} vs ${b.activation_sqnr_db}`);
      assert.ok(a.output_sqnr_db! > b.output_sqnr_db!, `${a.layer}: outputs`);
      assert.ok(a.output_rel_l2 < b.output_rel_l2 && a.output_rel_l2 > 0);
    }
    assert.ok(d8.top1_agreement >= 0.98, `int8 agrees with float on ${d8.top1_agreement}`);
    // only the last layer quantized: the layers before it compute exactly what the float model does
    const last = run(`${d8.layers[4].layer}=int4`);
    for (const l of last.layers.slice(0, 4)) {
      assert.equal(l.output_sqnr_db, null, `${l.layer} has no error`);
      assert.equal(l.output_rel_l2, 0);
      assert.equal(l.scheme, 'w=fp32,a=fp32');
    }
    assert.ok(last.layers[4].output_sqnr_db! > 0 && last.logits_sqnr_db === last.layers[4].output_sqnr_db);
  });

  it('sensitivity: one row per layer, its delta is its accuracy minus the float accuracy', () => {
    const info = names();
    const s = layerSensitivity(src, info, { datatype: 'w=int2', calibration, test: () => splitBatches({ ...data.test, count: 200 }, 100) });
    assert.equal(s.samples, 200);
    assert.deepEqual(s.layers.map((l) => l.spec), info.map((l) => `${l.name}:w=int2`));
    for (const l of s.layers) assert.ok(Math.abs(l.delta - (l.accuracy - s.float_accuracy)) < 1e-6);
    // the row is that spec's PTQ model evaluated on the same images
    const q = quantizePostTraining(src, { spec: s.layers[1].spec, calibration: calibration(), firstLast: 'quantize' });
    try {
      assert.equal(evaluate(q.model, splitBatches({ ...data.test, count: 200 }, 100)).accuracy, s.layers[1].accuracy);
    } finally {
      disposeQuantized(q);
    }
    assert.equal(singleLayerSpec('fc', 'int4'), 'fc=int4');
  });
});

describe('compare with mixed-precision rows, and the report', () => {
  it('adds auto rows within their budget, marked in the size chart; the sensitivity chart when measured', () => {
    const ds: Dataset = { name: 'quadrants', classes: ['0', '1', '2', '3'], train: data.train, test: data.test, stats: QUADRANT_STATS, source: 'synthetic' };
    const out = join(tmp, 'cmp');
    const r = runCompare({
      source: src, modelName: 'm.lowbit', dataset: ds, specs: ['fp32', 'w=int8,a=int8'], quick: true, seed: 1, outDir: out, command: 'lowbit compare',
      settings: compareSettings(true, { testSamples: 200, trainSamples: 128, calibSamples: 64 }), normalize: QUADRANT_STATS,
      mixed: { budgets: [0.2], allocators: ['greedy', 'lin'] }, sensitivity: 'int4',
    });
    assert.deepEqual(r.rows.map((x) => x.spec), ['fp32', 'w=int8,a=int8', 'auto:greedy:0.2', 'auto:lin:0.2']);
    const fp32Bytes = r.rows[0].bytes!;
    for (const row of r.rows.slice(2)) {
      assert.equal(row.error, undefined);
      assert.ok(row.bytes! <= 0.2 * fp32Bytes, `${row.spec}: ${row.bytes} bytes`);
      assert.ok(row.accuracy! > 0.5);
      assert.deepEqual(Object.keys(row.mixed!.bits), r.sensitivity!.layers.map((l) => l.layer));
      assert.equal(row.mixed!.how, Math.min(...Object.values(row.mixed!.bits)) < 8 ? 'QAT' : 'PTQ');
    }
    assert.equal(r.sensitivity!.layers.length, 5);
    const charts = compareCharts(r.rows, r.sensitivity);
    const size = charts.size as { data: { values: { spec: string; mixed: boolean }[] }; layer: { transform?: { filter: string }[] }[] };
    assert.deepEqual(size.data.values.filter((v) => v.mixed).map((v) => v.spec), ['auto:greedy:0.2', 'auto:lin:0.2']);
    assert.ok(size.layer.some((l) => l.transform?.[0].filter === 'datum.mixed'), 'mixed rows get their own mark');
    assert.deepEqual((charts.sensitivity!.data as { values: { layer: string }[] }).values.map((v) => v.layer), r.sensitivity!.layers.map((l) => l.layer));
    assert.equal(compareCharts(r.rows).sensitivity, undefined, 'no sensitivity chart without the measurement');
    const html = compareHtml(r);
    assert.ok(html.includes('<div class="chart" id="chart-sensitivity"></div>'));
  });
});

describe('lowbit quantize --spec auto usage', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' });
  it('--spec auto needs --budget; the mixed-precision options need --spec auto', () => {
    const a = cli('quantize', '--model', 'zoo:lenet5-mnist', '--spec', 'auto', '--out', join(tmp, 'x.lowbit'));
    assert.equal(a.status, 2, a.stderr);
    assert.match(a.stderr, /--spec auto needs --budget/);
    const b = cli('quantize', '--model', 'zoo:lenet5-mnist', '--spec', 'int8', '--budget', '0.25', '--out', join(tmp, 'x.lowbit'));
    assert.equal(b.status, 2, b.stderr);
    assert.match(b.stderr, /use them with --spec auto/);
  });
});

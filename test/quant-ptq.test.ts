// Post-training quantization: batch-norm folding, calibration observers, PTQ of every 8-bit-and-above
// datatype, bias correction, the quantized model file, and the bad-input errors.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor, tidy, noGrad, init, shutdown, Random } from '../src/index.js';
import * as ops from '../src/autograd/index.js';
import { BatchNorm, Flatten, Sequential, ReLU } from '../src/nn/index.js';
import { buildModel } from '../src/zoo/index.js';
import { evaluate } from '../src/train/trainer.js';
import { LowbitError, UsageError } from '../src/errors.js';
import { foldBatchNorm, findFoldPairs, relativeDifference } from '../src/quant/fold.js';
import { traceModel } from '../src/quant/graph.js';
import {
  MinMaxObserver, MovingAverageMinMaxObserver, HistogramObserver, HISTOGRAM_BINS, entropyThreshold, percentileThreshold, createObserver,
} from '../src/quant/observers.js';
import { quantizePostTraining } from '../src/quant/ptq.js';
import { attachQuantizers, cloneModel, disposeQuantized, type ModelSource } from '../src/quant/quantized.js';
import { saveQuantizedModel, loadQuantizedModel } from '../src/quant/load.js';
import { effectiveSpec } from '../src/quant/conventions.js';
import { parseSpec } from '../src/quant/spec.js';
import { quadrantData, trainedLenet, splitBatches, outputs } from './quant-fixtures.js';
import { randomTensor, rng } from './helpers.js';

const rand = rng(505);

/** Give every batch norm non-trivial statistics and affine parameters, so folding has something to do. */
function randomizeBatchNorms(model: { namedModules(): [string, unknown][] }, seed: number): void {
  const r = new Random(seed);
  for (const [, m] of model.namedModules()) {
    if (!(m instanceof BatchNorm)) continue;
    const c = m.channels;
    const v = (lo: number, hi: number) => Float32Array.from({ length: c }, () => lo + (hi - lo) * r.uniform());
    m.gamma.assign(Tensor.from(v(0.5, 1.5)));
    m.beta.assign(Tensor.from(v(-0.3, 0.3)));
    m.runningMean.assign(Tensor.from(v(-0.2, 0.2)));
    m.runningVar.assign(Tensor.from(v(0.3, 2)));
  }
}

let data: ReturnType<typeof quadrantData>;
let src: ModelSource;

before(async () => {
  await init();
  data = quadrantData(512, 400);
  src = trainedLenet(data);
});
after(async () => {
  src.model.dispose();
  await shutdown();
});

const calib = (n = 128) => splitBatches({ ...data.train, count: n }, 64);
const testAccuracy = (m: { forward(x: Tensor): Tensor } & Parameters<typeof evaluate>[0]) => evaluate(m, data.testBatches()).accuracy;

describe('batch-norm folding', () => {
  for (const [name, config] of [['resnet20', { width: 4, inputSize: 8 }], ['mobilenet-mini', { width: 4, inputSize: 8 }], ['mlp', { width: 16 }], ['vgg-small', { width: 4, inputSize: 8 }]] as const) {
    it(`${name}: every BN folds into its layer and the output is unchanged`, () => tidy(() => {
      const { model, config: full } = buildModel(name, config, 3);
      randomizeBatchNorms(model, 9);
      const x = randomTensor([2, full.inChannels, full.inputSize, full.inputSize], rand);
      const copy = cloneModel({ name, config: full, model });
      const before = outputs(model, x);
      const { pairs, difference } = foldBatchNorm(copy, x);
      const bns = model.namedModules().filter(([, m]) => m instanceof BatchNorm).length;
      assert.equal(pairs.length, bns, `${pairs.length} of ${bns} batch norms folded`);
      assert.ok(difference <= 1e-4, `relative difference ${difference}`);
      assert.ok(relativeDifference(before, outputs(copy, x)) <= 1e-4);
      // the original is untouched; the folded BNs are identities
      assert.deepEqual(Array.from(outputs(model, x)), Array.from(before));
      for (const p of pairs) {
        const bn = copy.namedModules().find(([n]) => n === p.batchNorm)![1] as BatchNorm;
        assert.deepEqual(Array.from(bn.gamma.toArray()), new Array(bn.channels).fill(1));
      }
      model.dispose();
      copy.dispose();
    }));
  }

  it('ResNet-20 pairs: conv1/bn1, each block conv1/bn1, conv2/bn2 and the shortcut', () => tidy(() => {
    const { model, config } = buildModel('resnet20', { width: 4, inputSize: 8 }, 1);
    const pairs = findFoldPairs(traceModel(model, Tensor.zeros([1, 3, config.inputSize, config.inputSize])));
    const names = pairs.map((p) => `${p.layer}>${p.batchNorm}`);
    assert.ok(names.includes('conv1>bn1'));
    assert.ok(names.includes('layer1.0.conv2>layer1.0.bn2'));
    assert.ok(names.includes('layer2.0.shortcut.0>layer2.0.shortcut.1'));
    assert.equal(pairs.length, 21);
    model.dispose();
  }));
});

describe('observers', () => {
  it('min-max per tensor and per channel; moving averages', () => tidy(() => {
    const o = new MinMaxObserver();
    o.observe(Tensor.from([1, -2, 3]));
    o.observe(Tensor.from([0.5, 4]));
    assert.deepEqual(o.range(), { min: [-2], max: [4], axis: null });
    const pc = new MinMaxObserver(1);
    pc.observe(Tensor.from([[1, -1], [3, 2]]));
    assert.deepEqual(pc.range(), { min: [1, -1], max: [3, 2], axis: 1 });
    const ma = new MovingAverageMinMaxObserver(null, 0.5);
    ma.observe(Tensor.from([0, 4]));
    ma.observe(Tensor.from([-2, 2]));
    assert.deepEqual(ma.range(), { min: [-1], max: [3], axis: null });
    assert.throws(() => new MinMaxObserver().range(), /no data was observed/);
  }));

  it('histogram: doubling keeps every count; percentile and entropy clip a long tail, mse minimizes error', () => tidy(() => {
    const h = new HistogramObserver('percentile', 99);
    // 9900 values in [0, 1), 100 outliers up to 20
    const body = Float32Array.from({ length: 9900 }, (_, i) => (i % 100) / 100);
    const tail = Float32Array.from({ length: 100 }, (_, i) => 1 + (19 * i) / 99);
    h.observe(Tensor.from(body));
    h.observe(Tensor.from(tail));
    assert.equal(h.counts.reduce((s, c) => s + c, 0), 10000);
    assert.ok(h.upper >= 20);
    const t = h.threshold();
    assert.ok(t >= 0.98 && t <= 1.05, `99th percentile threshold ${t}`);
    assert.equal(percentileThreshold(Float64Array.from([1, 1, 1, 1]), 1, 50), 2);
    const e = entropyThreshold(h.counts, h.binWidth, 127);
    assert.ok(e > 0.9 && e < 20, `entropy threshold ${e}`);
    const m = new HistogramObserver('mse');
    m.observe(Tensor.from(body));
    m.observe(Tensor.from(tail));
    const r = m.range({ levels: 7 });
    assert.ok(r.max[0] < 20 && r.max[0] > 0.9, `mse threshold ${r.max[0]}`);
    assert.equal(HISTOGRAM_BINS, 2048);
    assert.throws(() => createObserver('entropy', 1), UsageError);
  }));
});

describe('post-training quantization', () => {
  it('int8 keeps the float accuracy and stays close to the float outputs', () => tidy(() => {
    const fp = testAccuracy(src.model);
    assert.ok(fp > 0.9, `float accuracy ${fp}`);
    const q = quantizePostTraining(src, { spec: 'int8', calibration: calib() });
    const acc = testAccuracy(q.model);
    assert.ok(acc >= fp - 0.01, `int8 ${acc} vs fp32 ${fp}`);
    const x = splitBatches(data.test, 50).next().value!.x;
    assert.ok(relativeDifference(outputs(src.model, x), outputs(q.model, x)) < 0.05);
    assert.equal(q.layers.length, 5);
    assert.equal(q.mode, 'ptq');
    disposeQuantized(q);
  }));

  it('int8 biases lie on the int32 grid of step s_x s_w[c] (Jacob et al. 2018); other datatypes keep theirs', () => tidy(() => {
    for (const spec of ['int8', 'int8:per-channel']) {
      const q = quantizePostTraining(src, { spec, calibration: calib(64) });
      let checked = 0;
      for (const l of q.layers) {
        const sx = (l.activationParams as { scale: number[] }).scale[0], sw = (l.weightParams as { scale: number[] }).scale;
        l.layer.bias!.toFloat32Array().forEach((b, c) => {
          const k = b / Math.fround(sx * sw[sw.length === 1 ? 0 : c]);
          assert.ok(Math.abs(k - Math.round(k)) < 1e-3, `${spec} ${l.name}[${c}]: bias ${b} is ${k} steps`);
          checked++;
        });
      }
      assert.ok(checked > 20, `${checked} biases checked`);
      disposeQuantized(q);
    }
    const q = quantizePostTraining(src, { spec: 'minifloat:e4m3', calibration: calib(64) });
    const steps = q.layers.flatMap((l) => Array.from(l.layer.bias!.toFloat32Array(), (b) => b / 1e-4));
    assert.ok(steps.some((k) => Math.abs(k - Math.round(k)) > 1e-3), 'a minifloat model\'s biases are not snapped');
    disposeQuantized(q);
  }));

  it('runs every PTQ datatype and every calibration method', () => tidy(() => {
    const fp = testAccuracy(src.model);
    for (const spec of ['int8', 'int8:per-channel', 'uint8', 'dfp:8', 'minifloat:e4m3', 'fixed:16.8', 'fp16', 'w=int4,a=int8', 'int8;0=fp32;11=fp32', 'w=twn,a=int8', 'kmeans:16']) {
      const q = quantizePostTraining(src, { spec, calibration: calib(64) });
      const acc = testAccuracy(q.model);
      assert.ok(acc >= fp - 0.1, `${spec}: ${acc} vs ${fp}`);
      disposeQuantized(q);
    }
    for (const method of ['minmax', 'moving-average', 'percentile', 'entropy', 'mse'] as const) {
      const q = quantizePostTraining(src, { spec: 'int8', method, calibration: calib(64) });
      assert.ok(testAccuracy(q.model) >= fp - 0.05, method);
      assert.equal(q.details.method, method);
      disposeQuantized(q);
    }
  }));

  it('per-channel weights are at least as close to the float weights as per-tensor ones', () => tidy(() => {
    const err = (spec: string) => {
      const q = quantizePostTraining(src, { spec: `w=${spec}`, calibration: calib(32), biasCorrection: false });
      const l = q.layers.find((x) => x.name === '7')!;
      const e = ops.mean(ops.square(ops.sub(l.evalWeight(), l.layer.weight))).item();
      disposeQuantized(q);
      return e;
    };
    assert.ok(err('int4:per-channel') <= err('int4'));
  }));

  it('bias correction removes the mean output shift that quantized weights cause', () => tidy(() => noGrad(() => {
    const shift = (correct: boolean) => {
      const q = quantizePostTraining(src, { spec: 'w=int3', calibration: calib(256), biasCorrection: correct });
      // mean over the calibration data of (quantized - float) logits per class
      let sum = new Float32Array(4), n = 0;
      for (const b of calib(256)) {
        const d = ops.sub(q.model.forward(b.x), src.model.forward(b.x));
        const m = ops.sum(d, 0).toFloat32Array();
        sum = sum.map((s, i) => s + m[i]);
        n += b.x.shape[0];
        b.x.dispose();
        b.y.dispose();
      }
      disposeQuantized(q);
      return Math.max(...Array.from(sum, (s) => Math.abs(s / n)));
    };
    const without = shift(false), withCorrection = shift(true);
    assert.ok(withCorrection < without, `mean logit shift ${withCorrection} with correction, ${without} without`);
  })));

  it('the quantized model file reproduces the outputs bit for bit', () => tidy(() => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-ptq-'));
    try {
      const x = splitBatches(data.test, 40).next().value!.x;
      for (const spec of ['int8:per-channel', 'kmeans:16', 'dfp:8', 'w=twn,a=uint8']) {
        const q = quantizePostTraining(src, { spec, method: 'percentile', calibration: calib(64) });
        const file = join(dir, 'q.lowbit');
        saveQuantizedModel(file, q);
        const loaded = loadQuantizedModel(file);
        assert.equal(loaded.effective.text, q.effective.text);
        assert.deepEqual(Array.from(outputs(loaded.model, x)), Array.from(outputs(q.model, x)), spec);
        disposeQuantized(q);
        disposeQuantized(loaded);
      }
    } finally {
      rmSync(dir, { recursive: true });
    }
  }));

  it('the first and last layers follow the papers, and can be configured', () => {
    const layers = ['0', '3', '7', '9', '11'];
    assert.equal(effectiveSpec(parseSpec('bnn'), layers).text, 'bnn;0=fp32;11=fp32');
    assert.equal(effectiveSpec(parseSpec('dorefa:w2a2'), layers).text, 'dorefa:w2a2;0=fp32;11=fp32');
    assert.equal(effectiveSpec(parseSpec('twn'), layers).text, 'twn');
    assert.equal(effectiveSpec(parseSpec('int8'), layers, 'fp32').text, 'int8;0=fp32;11=fp32');
    assert.equal(effectiveSpec(parseSpec('bnn'), layers, 'quantize').text, 'bnn');
    assert.equal(effectiveSpec(parseSpec('bnn;0:w=int8,a=fp32'), layers).text, 'bnn;0:w=int8,a=fp32;11=fp32');
    assert.equal(effectiveSpec(parseSpec('log2:4'), layers).text, 'log2:4;0:a=log2:4:signed');
  });
});

describe('PTQ errors name the input or the layer', () => {
  it('calibration data of another shape', () => tidy(() => {
    const wrong = { x: Tensor.zeros([2, 3, 32, 32]), y: Tensor.from(new Int32Array([0, 1])) };
    assert.throws(() => quantizePostTraining(src, { spec: 'int8', calibration: [wrong] }),
      (e: Error) => e instanceof LowbitError && /calibration data has inputs of shape \[3, 32, 32\], but lenet5 takes \[1, 28, 28\]/.test(e.message));
  }));
  it('zero calibration samples', () => {
    assert.throws(() => quantizePostTraining(src, { spec: 'int8', calibration: [] }), (e: Error) => e instanceof UsageError && /at least one sample/.test(e.message));
  });
  it('an override that names no layer, and per-channel activations with a histogram method', () => tidy(() => {
    assert.throws(() => quantizePostTraining(src, { spec: 'int8;conv9=fp32', calibration: calib(32) }), /"conv9" match no layer of the model; its layers are: 0, 3, 7, 9, 11/);
    assert.throws(() => quantizePostTraining(src, { spec: 'a=int8:per-channel', method: 'entropy', calibration: calib(32) }), /per-channel activations need --method minmax/);
    const q = quantizePostTraining(src, { spec: 'a=int8:per-channel', calibration: calib(32) });
    disposeQuantized(q);
  }));
  it('a model with no quantizable layer', () => tidy(() => {
    const m = new Sequential(Flatten(), ReLU());
    assert.throws(() => attachQuantizers(traceModel(m, Tensor.zeros([1, 1, 4, 4])), 'int8', {}), /has no quantizable layer \(Conv2d or Linear\)/);
  }));
  it('a weight no datatype can represent names its layer', () => tidy(() => {
    const bad = cloneModel(src);
    const w = bad.namedParameters().find(([n]) => n === '7.weight')![1];
    (w.view() as Float32Array)[3] = NaN;
    assert.throws(() => quantizePostTraining({ ...src, model: bad }, { spec: 'int8', calibration: calib(32) }), /layer 7 \(weight\): .*contains NaN/);
    bad.dispose();
  }));
});

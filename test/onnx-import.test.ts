// ONNX import: float CNNs written by another tool (bench/onnx-networks.ts, built with onnx-proto) and a
// PyTorch-style export (dynamic batch, BatchNormalization, Shape -> Gather -> Concat -> Reshape, Softmax)
// give onnxruntime-node's outputs; imported models save and reload as .lowbit files, train, and quantize
// (PTQ); bad files are clear errors.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { Tensor, tidy, noGrad, init, shutdown, backward, engine, keep } from '../src/index.js';
import { forwardPeak } from './helpers.js';
import * as ops from '../src/autograd/index.js';
import { Conv2d, GraphModule, Linear, BatchNorm } from '../src/nn/index.js';
import { importOnnx } from '../src/formats/onnx/import.js';
import { LowbitError } from '../src/errors.js';
import { loadModel, saveModel } from '../src/zoo/index.js';
import { quantizePostTraining } from '../src/quant/ptq.js';
import { disposeQuantized } from '../src/quant/quantized.js';
import { compileModel, compileQuantized } from '../src/runtime/index.js';
import { floatNetworkModel, networkSpec } from '../bench/onnx-networks.js';
import { exportOnnx } from '../src/formats/onnx/export.js';
import { batches, loadDataset } from '../src/data/index.js';
import { pseudoRandom } from '../bench/onnx-builders.js';

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT, INT64 = onnx.TensorProto.DataType.INT64;

async function runOrt(bytes: Uint8Array, feeds: Record<string, { data: Float32Array; dims: number[] }>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3, graphOptimizationLevel: 'all' });
  const inputs: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries(feeds)) inputs[k] = new ort.Tensor('float32', v.data, v.dims);
  const res = await session.run(inputs);
  return res[session.outputNames[0]].data as Float32Array;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

function lowbitRun(m: GraphModule, data: Float32Array, dims: number[]): Float32Array {
  return noGrad(() => tidy(() => m.forward(Tensor.from(data, dims)).toFloat32Array()));
}

const f32 = (name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto => ({ name, dims, dataType: FLOAT, floatData: Array.from(values) });
const i64 = (name: string, values: number[]): OnnxTypes.ITensorProto => ({ name, dims: [values.length], dataType: INT64, int64Data: values });
const vi = (name: string, dims: (number | string)[]): OnnxTypes.IValueInfoProto => ({
  name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
});
const attrInt = (name: string, i: number) => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
const attrInts = (name: string, ints: number[]) => ({ name, type: onnx.AttributeProto.AttributeType.INTS, ints });
const attrFloat = (name: string, f: number) => ({ name, type: onnx.AttributeProto.AttributeType.FLOAT, f });

function encode(graph: OnnxTypes.IGraphProto, opset = 17): Uint8Array {
  return onnx.ModelProto.encode({ irVersion: 8, producerName: 'lowbit-test', opsetImport: [{ domain: '', version: opset }], graph }).finish();
}

/** What torch.onnx.export writes for conv-bn-relu-pool-flatten(view(N, -1))-fc-softmax with a dynamic batch. */
function torchStyleModel(): Uint8Array {
  const r = (n: number, seed: number, scale = 0.5) => pseudoRandom(n, seed).map((v) => v * scale);
  return encode({
    name: 'torch-style',
    input: [vi('input', ['batch_size', 2, 8, 8])],
    output: [vi('probs', ['batch_size', 5])],
    initializer: [
      f32('conv.weight', [4, 2, 3, 3], r(72, 1)), f32('conv.bias', [4], r(4, 2)),
      f32('bn.weight', [4], r(4, 3).map((v) => 1 + v)), f32('bn.bias', [4], r(4, 4)),
      f32('bn.running_mean', [4], r(4, 5)), f32('bn.running_var', [4], r(4, 6).map((v) => 1 + Math.abs(v))),
      f32('fc.weight', [5, 64], r(320, 7, 0.2)), f32('fc.bias', [5], r(5, 8)),
      i64('minus_one', [-1]), { name: 'zero', dims: [], dataType: INT64, int64Data: [0] },
    ],
    node: [
      { name: '/conv/Conv', opType: 'Conv', input: ['input', 'conv.weight', 'conv.bias'], output: ['c'], attribute: [attrInts('pads', [1, 1, 1, 1]), attrInts('kernel_shape', [3, 3])] },
      { name: '/bn/BatchNormalization', opType: 'BatchNormalization', input: ['c', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var'], output: ['b'], attribute: [attrFloat('epsilon', 1e-5)] },
      { name: '/relu/Relu', opType: 'Relu', input: ['b'], output: ['r'] },
      { name: '/pool/MaxPool', opType: 'MaxPool', input: ['r'], output: ['p'], attribute: [attrInts('kernel_shape', [2, 2]), attrInts('strides', [2, 2])] },
      { name: '/Shape', opType: 'Shape', input: ['p'], output: ['shape'] },
      { name: '/Gather', opType: 'Gather', input: ['shape', 'zero'], output: ['n'], attribute: [attrInt('axis', 0)] },
      { name: '/Unsqueeze', opType: 'Unsqueeze', input: ['n', 'zero'], output: ['n1'] },
      { name: '/Concat', opType: 'Concat', input: ['n1', 'minus_one'], output: ['target'], attribute: [attrInt('axis', 0)] },
      { name: '/Reshape', opType: 'Reshape', input: ['p', 'target'], output: ['flat'] },
      { name: '/fc/Gemm', opType: 'Gemm', input: ['flat', 'fc.weight', 'fc.bias'], output: ['logits'], attribute: [attrInt('transB', 1)] },
      { name: '/Softmax', opType: 'Softmax', input: ['logits'], output: ['probs'], attribute: [attrInt('axis', 1)] },
    ],
  });
}

let dir = '';
before(async () => {
  await init();
  dir = mkdtempSync(join(tmpdir(), 'lowbit-onnx-import-'));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await shutdown();
});

describe('ONNX import: matches onnxruntime-node', () => {
  for (const name of ['lenet5', 'resnet20'] as const) {
    it(`${name} (bench/onnx-networks.ts): max |lowbit - onnxruntime| < 1e-4 on random inputs, any batch size`, async () => {
      const spec = networkSpec(name);
      const model = floatNetworkModel(spec);
      const imported = importOnnx(model.bytes);
      const m = imported.module;
      assert.deepEqual(imported.inputShape, spec.input.dims);
      assert.deepEqual(imported.outputShape, spec.output.dims);
      // Convs and the fc are real layers (quantizable, trainable).
      const layers = m.namedModules().map(([, l]) => l);
      assert.ok(layers.filter((l) => l instanceof Conv2d).length >= (name === 'lenet5' ? 2 : 19));
      assert.ok(layers.some((l) => l instanceof Linear));
      const dims = spec.input.dims;
      const per = dims.slice(1).reduce((a, b) => a * b, 1);
      const batch = 3;
      const xs = pseudoRandom(per * batch, 99);
      const ours = lowbitRun(m, xs, [batch, ...dims.slice(1)]);
      const classes = spec.output.dims[1];
      for (let b = 0; b < batch; b++) {
        const theirs = await runOrt(model.bytes, { [spec.input.name]: { data: xs.slice(b * per, (b + 1) * per), dims } });
        const d = maxAbsDiff(ours.subarray(b * classes, (b + 1) * classes), theirs);
        assert.ok(d < 1e-4, `${name} image ${b}: max |diff| ${d}`);
      }
      m.dispose();
    });
  }

  it('an imported graph without a tape frees each value after its last reader: same outputs, a fraction of the memory', () => {
    const m = importOnnx(floatNetworkModel(networkSpec('resnet20')).bytes).module;
    const x = keep(Tensor.from(pseudoRandom(8 * 3 * 32 * 32, 7), [8, 3, 32, 32]));
    const kept = forwardPeak(m, x, true), freed = forwardPeak(m, x, false);
    assert.deepEqual(freed.out, kept.out);
    // measured 0.10 (1.0 when every value was kept to the end of the pass)
    assert.ok(freed.peak < 0.5 * kept.peak, `${freed.peak} B without a tape vs ${kept.peak} B with one`);
    x.dispose();
    m.dispose();
  });

  it('a PyTorch-style export (dynamic batch, BatchNormalization, Shape/Gather/Concat/Reshape, Softmax)', async () => {
    const bytes = torchStyleModel();
    const imported = importOnnx(bytes);
    assert.deepEqual(imported.inputShape, [1, 2, 8, 8]); // the dynamic batch is traced as 1
    const m = imported.module;
    assert.ok(m.namedModules().some(([n, l]) => l instanceof BatchNorm && n === 'bn_BatchNormalization'), m.namedModules().map(([n]) => n).join(','));
    const x = pseudoRandom(4 * 128, 5);
    const ours = lowbitRun(m, x, [4, 2, 8, 8]);
    const theirs = await runOrt(bytes, { input: { data: x, dims: [4, 2, 8, 8] } });
    const d = maxAbsDiff(ours, theirs);
    assert.ok(d < 1e-5, `max |diff| ${d}: ${ours.slice(0, 5)} vs ${theirs.slice(0, 5)}`);
    m.dispose();
  });
});

describe('ONNX import: per-channel Mul/Div/Add/Sub after a layer fold into it', () => {
  /**
   * What Caffe converters (Scale layers) and Keras exports write: a bias-less Conv followed by a per-channel
   * Mul and Add, MatMul + Add for a dense layer, and a Div by a scalar; one Mul that must stay (its conv
   * output also feeds a residual add) and one whose constant varies over space, not channels.
   */
  function scaleShiftModel(): Uint8Array {
    const r = (n: number, seed: number, scale = 0.5) => pseudoRandom(n, seed).map((v) => v * scale);
    return encode({
      name: 'scale-shift', input: [vi('x', [2, 3, 6, 6])], output: [vi('y', [2, 5])],
      initializer: [
        f32('w1', [4, 3, 3, 3], r(108, 51)), f32('gamma', [1, 4, 1, 1], r(4, 52).map((v) => 1 + v)), f32('beta', [4, 1, 1], r(4, 53)),
        f32('w2', [4, 4, 1, 1], r(16, 54)), f32('b2', [4], r(4, 55)), f32('s2', [1, 4, 1, 1], r(4, 56)),
        f32('spatial', [1, 1, 6, 6], r(36, 57)), f32('wf', [144, 5], r(720, 58, 0.1)), f32('bf', [5], r(5, 59)), f32('two', [], Float32Array.from([2])),
      ],
      node: [
        { name: 'conv1', opType: 'Conv', input: ['x', 'w1'], output: ['c1'], attribute: [attrInts('pads', [1, 1, 1, 1])] },
        { name: 'scale1', opType: 'Mul', input: ['gamma', 'c1'], output: ['m1'] },
        { name: 'shift1', opType: 'Add', input: ['m1', 'beta'], output: ['a1'] },
        { name: 'relu1', opType: 'Relu', input: ['a1'], output: ['r1'] },
        { name: 'conv2', opType: 'Conv', input: ['r1', 'w2', 'b2'], output: ['c2'] },
        { name: 'scale2', opType: 'Mul', input: ['c2', 's2'], output: ['m2'] },
        { name: 'residual', opType: 'Add', input: ['m2', 'c2'], output: ['res'] },
        { name: 'space', opType: 'Mul', input: ['res', 'spatial'], output: ['sp'] },
        { name: 'flat', opType: 'Flatten', input: ['sp'], output: ['f'] },
        { name: 'dense', opType: 'MatMul', input: ['f', 'wf'], output: ['d'] },
        { name: 'dense_bias', opType: 'Add', input: ['d', 'bf'], output: ['db'] },
        { name: 'halve', opType: 'Div', input: ['db', 'two'], output: ['y'] },
      ],
    });
  }

  it('the folded graph equals onnxruntime, keeps only the ops that cannot fold, and saves and loads', async () => {
    const bytes = scaleShiftModel();
    const onnxPath = join(dir, 'scale-shift.onnx');
    writeFileSync(onnxPath, bytes);
    const src = loadModel(onnxPath);
    const m = src.model as GraphModule;
    // scale1, shift1, dense_bias and halve folded; scale2 (c2 has two readers), residual and space stay
    assert.deepEqual(m.graph.ops.map((o) => o.op), ['layer', 'relu', 'layer', 'mul', 'add', 'mul', 'flatten', 'layer']);
    const conv1 = m.layer('conv1') as Conv2d, dense = m.layer('dense') as Linear;
    assert.ok(conv1.bias && dense.bias, 'the folded Add gave the bias-less layers a bias');
    assert.deepEqual(m.graph.layers.map((l) => l.kind !== 'batchNorm' && l.bias), [true, true, true]);
    const x = pseudoRandom(2 * 108, 60);
    const ours = lowbitRun(m, x, [2, 3, 6, 6]);
    const theirs = await runOrt(bytes, { x: { data: x, dims: [2, 3, 6, 6] } });
    assert.ok(maxAbsDiff(ours, theirs) < 1e-5, `max |diff| ${maxAbsDiff(ours, theirs)}`);
    const path = join(dir, 'scale-shift.lowbit');
    saveModel(path, src.name, src.config, m, src.metadata);
    const back = loadModel(path);
    assert.deepEqual(lowbitRun(back.model as GraphModule, x, [2, 3, 6, 6]), ours);
    back.model.dispose();
    m.dispose();
  });
});

describe('ONNX import: ConvTranspose and 1-D convolutions match onnxruntime-node', () => {
  const r = (n: number, seed: number, scale = 0.5) => pseudoRandom(n, seed).map((v) => v * scale);

  /** A small decoder: conv (stride 2) -> relu -> grouped ConvTranspose (pads, output_padding, bias) -> relu -> ConvTranspose to output_shape. */
  function decoderModel(): Uint8Array {
    return encode({
      name: 'decoder',
      input: [vi('x', ['N', 3, 7, 6])],
      output: [vi('y', ['N', 1, 17, 12])],
      initializer: [
        f32('enc.weight', [4, 3, 3, 3], r(108, 11)), f32('enc.bias', [4], r(4, 12)),
        f32('up1.weight', [4, 3, 3, 3], r(108, 13)), f32('up1.bias', [6], r(6, 14)),
        f32('up2.weight', [6, 1, 2, 3], r(36, 15)),
      ],
      node: [
        { name: '/enc/Conv', opType: 'Conv', input: ['x', 'enc.weight', 'enc.bias'], output: ['e'], attribute: [attrInts('pads', [1, 1, 1, 1]), attrInts('strides', [2, 2])] },
        { name: '/relu1', opType: 'Relu', input: ['e'], output: ['e1'] },
        // [N,4,4,3] -> groups 2, stride 2, dilation [1,2]: [N,6,8,6]
        { name: '/up1/ConvTranspose', opType: 'ConvTranspose', input: ['e1', 'up1.weight', 'up1.bias'], output: ['u'],
          attribute: [attrInt('group', 2), attrInts('strides', [2, 2]), attrInts('dilations', [1, 2]), attrInts('pads', [1, 2, 1, 1]), attrInts('output_padding', [1, 0])] },
        { name: '/relu2', opType: 'Relu', input: ['u'], output: ['u1'] },
        // output_shape one row past the kernels' reach in H (16), one column cropped in W (13)
        { name: '/up2/ConvTranspose', opType: 'ConvTranspose', input: ['u1', 'up2.weight'], output: ['y'],
          attribute: [attrInts('strides', [2, 2]), attrInts('output_shape', [17, 12])] },
      ],
    });
  }

  /** A 1-D signal model: grouped, strided, dilated Conv -> MaxPool -> ConvTranspose -> AveragePool. */
  function signalModel(): Uint8Array {
    return encode({
      name: 'signal',
      input: [vi('x', ['N', 2, 20])],
      output: [vi('y', ['N', 3, 9])],
      initializer: [
        f32('c.weight', [4, 1, 3], r(12, 21)), f32('c.bias', [4], r(4, 22)),
        f32('t.weight', [4, 3, 3], r(36, 23)), f32('t.bias', [3], r(3, 24)),
      ],
      node: [
        // [N,2,20] -> (20 + 3 - 5) / 2 + 1 = 10
        { name: '/c/Conv', opType: 'Conv', input: ['x', 'c.weight', 'c.bias'], output: ['c'],
          attribute: [attrInt('group', 2), attrInts('strides', [2]), attrInts('dilations', [2]), attrInts('pads', [1, 2])] },
        { name: '/pool', opType: 'MaxPool', input: ['c'], output: ['p'], attribute: [attrInts('kernel_shape', [2]), attrInts('strides', [2])] },
        // [N,4,5] -> SAME_UPPER: 5 * stride = 10 (total padding 1, at the end)
        { name: '/t/ConvTranspose', opType: 'ConvTranspose', input: ['p', 't.weight', 't.bias'], output: ['t'],
          attribute: [attrInts('strides', [2]), { name: 'auto_pad', type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode('SAME_UPPER') }] },
        { name: '/avg', opType: 'AveragePool', input: ['t'], output: ['y'], attribute: [attrInts('kernel_shape', [2]), attrInts('strides', [1])] },
      ],
    });
  }

  for (const [name, make, dims] of [['decoder (2-D ConvTranspose)', decoderModel, [2, 3, 7, 6]], ['1-D signal (Conv, pools, ConvTranspose)', signalModel, [3, 2, 20]]] as const) {
    it(`${name}: max |lowbit - onnxruntime| < 1e-5, batch ${dims[0]}`, async () => {
      const bytes = make();
      const imported = importOnnx(bytes);
      const m = imported.module;
      const x = pseudoRandom(dims.reduce((a, b) => a * b, 1), 31);
      const ours = lowbitRun(m, x, [...dims]);
      const theirs = await runOrt(bytes, { x: { data: x, dims: [...dims] } });
      const d = maxAbsDiff(ours, theirs);
      assert.ok(d < 1e-5, `max |diff| ${d}: ${ours.slice(0, 5)} vs ${theirs.slice(0, 5)}`);
      assert.ok(theirs.some((v) => Math.abs(v) > 0.1), 'the outputs are not all near zero');
      // the constant-weight convolutions are Conv2d layers (1-D ones with a 1 x k kernel)
      assert.ok(m.namedModules().some(([, l]) => l instanceof Conv2d));
      m.dispose();
    });
  }

  it('a classifier with a ConvTranspose runs in the runtime and exports (float and QDQ) for onnxruntime', async () => {
    // [N,1,8,8] -> Conv stride 2 -> Relu -> ConvTranspose stride 2 (bias) -> Relu -> GlobalAveragePool -> Flatten -> Gemm
    const bytes = encode({
      name: 'upsampling-classifier',
      input: [vi('x', ['N', 1, 8, 8])], output: [vi('y', ['N', 3])],
      initializer: [
        f32('c.weight', [4, 1, 3, 3], r(36, 41)), f32('c.bias', [4], r(4, 42)),
        f32('t.weight', [4, 5, 3, 3], r(180, 43)), f32('t.bias', [5], r(5, 44)),
        f32('fc.weight', [3, 5], r(15, 45, 2)), f32('fc.bias', [3], r(3, 46)),
      ],
      node: [
        { name: '/c/Conv', opType: 'Conv', input: ['x', 'c.weight', 'c.bias'], output: ['c'], attribute: [attrInts('pads', [1, 1, 1, 1]), attrInts('strides', [2, 2])] },
        { name: '/r1', opType: 'Relu', input: ['c'], output: ['c1'] },
        { name: '/t/ConvTranspose', opType: 'ConvTranspose', input: ['c1', 't.weight', 't.bias'], output: ['t'],
          attribute: [attrInts('strides', [2, 2]), attrInts('pads', [1, 1, 1, 1]), attrInts('output_padding', [1, 1])] },
        { name: '/r2', opType: 'Relu', input: ['t'], output: ['t1'] },
        { name: '/gap', opType: 'GlobalAveragePool', input: ['t1'], output: ['g'] },
        { name: '/flat', opType: 'Flatten', input: ['g'], output: ['f'] },
        { name: '/fc/Gemm', opType: 'Gemm', input: ['f', 'fc.weight', 'fc.bias'], output: ['y'], attribute: [attrInt('transB', 1)] },
      ],
    });
    const path = join(dir, 'upsampling-classifier.onnx');
    writeFileSync(path, bytes);
    const src = loadModel(path);
    const N = 4, dims = [N, 1, 8, 8];
    const data = pseudoRandom(N * 64, 47);
    const reference = await runOrt(bytes, { x: { data, dims } });
    const x = Tensor.from(data, dims);
    const calib = { x: Tensor.from(data, dims), y: Tensor.zeros([N], 'i32') }; // PTQ frees its batches
    const float = compileModel(src.model, [], [1, 1, 8, 8]);
    const q = quantizePostTraining(src, { spec: 'int8', calibration: [calib] });
    const plan = compileQuantized(q);
    try {
      // float: the runtime plan and the exported model against onnxruntime on the original file
      assert.ok(maxAbsDiff(tidy(() => float.run(x).toFloat32Array()), reference) < 1e-5);
      assert.ok(maxAbsDiff(await runOrt(exportOnnx(src, 'onnx'), { input: { data, dims } }), reference) < 1e-5);
      // int8 conv and linear layers around the float ConvTranspose: the runtime matches the simulation, and
      // onnxruntime runs the QDQ export to within a few output steps
      const simulated = noGrad(() => tidy(() => q.model.forward(x).toFloat32Array()));
      const ours = tidy(() => plan.run(x).toFloat32Array());
      assert.ok(maxAbsDiff(ours, simulated) < 1e-4, `runtime vs simulation ${maxAbsDiff(ours, simulated)}`);
      const range = Math.max(...ours.map(Math.abs));
      assert.ok(maxAbsDiff(await runOrt(exportOnnx(q, 'onnx-qdq'), { input: { data, dims } }), ours) < 0.05 * range);
      assert.match(plan.summary().map((l) => `${l.name} ${l.family}`).join(', '), /int8/);
    } finally {
      float.dispose();
      plan.dispose();
      disposeQuantized(q);
      src.model.dispose();
      x.dispose();
    }
  });

  it('weights computed at run time (graph inputs): 1-D Conv and ConvTranspose become conv / convTranspose ops', async () => {
    const bytes = encode({
      name: 'runtime-weights', input: [vi('x', [2, 4, 9]), vi('cw', [6, 2, 3]), vi('tw', [6, 2, 4])], output: [vi('y', [2, 4, 24])],
      node: [
        { name: 'c1d', opType: 'Conv', input: ['x', 'cw'], output: ['c'], attribute: [attrInt('group', 2), attrInts('pads', [2, 1]), attrInts('dilations', [2])] },
        { name: 't1d', opType: 'ConvTranspose', input: ['c', 'tw'], output: ['y'], attribute: [attrInt('group', 2), attrInts('strides', [3]), attrInts('pads', [1, 2]), attrInts('output_padding', [2])] },
      ],
    });
    const m = importOnnx(bytes).module;
    assert.ok(!m.namedModules().some(([, l]) => l instanceof Conv2d), 'no layer: the weights are not constant');
    const feeds = { x: { data: pseudoRandom(72, 51), dims: [2, 4, 9] }, cw: { data: pseudoRandom(36, 52), dims: [6, 2, 3] }, tw: { data: pseudoRandom(48, 53), dims: [6, 2, 4] } };
    const ours = noGrad(() => tidy(() => m.run(Object.values(feeds).map((f) => Tensor.from(f.data, f.dims)))[0].toFloat32Array()));
    const theirs = await runOrt(bytes, feeds);
    const d = maxAbsDiff(ours, theirs);
    assert.ok(d < 1e-5, `max |diff| ${d}`);
    m.dispose();
  });

  it('gradients flow through an imported ConvTranspose to the conv layer before it', () => {
    const m = importOnnx(decoderModel()).module;
    m.train();
    const conv = m.namedModules().map(([, l]) => l).find((l): l is Conv2d => l instanceof Conv2d)!;
    tidy(() => {
      backward(ops.sum(ops.square(m.forward(Tensor.from(pseudoRandom(2 * 3 * 7 * 6, 32), [2, 3, 7, 6])))));
      const g = conv.weight.grad!.toFloat32Array();
      assert.ok(g.some((v) => v !== 0) && g.every(Number.isFinite));
    });
    m.dispose();
  });

  it('a classifier with a ConvTranspose saves, reloads and quantizes (the conv to int8, the ConvTranspose stays float); the integer runtime refuses it clearly', () => {
    const bytes = encode({
      name: 'up-classifier', input: [vi('x', ['N', 1, 8, 8])], output: [vi('y', ['N', 4])],
      initializer: [f32('cw', [3, 1, 3, 3], r(27, 41)), f32('tw', [3, 4, 2, 2], r(48, 42)), f32('tb', [4], r(4, 43))],
      node: [
        { name: 'down', opType: 'Conv', input: ['x', 'cw'], output: ['a'], attribute: [attrInts('strides', [2, 2])] },
        { name: 'relu', opType: 'Relu', input: ['a'], output: ['b'] },
        { name: 'up', opType: 'ConvTranspose', input: ['b', 'tw', 'tb'], output: ['u'], attribute: [attrInts('strides', [2, 2])] },
        { name: 'gap', opType: 'GlobalAveragePool', input: ['u'], output: ['p'] },
        { name: 'flat', opType: 'Flatten', input: ['p'], output: ['y'] },
      ],
    });
    const onnxPath = join(dir, 'up-classifier.onnx');
    writeFileSync(onnxPath, bytes);
    const src = loadModel(onnxPath);
    const x = pseudoRandom(2 * 64, 44).map((v) => (v + 1) / 2);
    const yf = lowbitRun(src.model as GraphModule, x, [2, 1, 8, 8]);
    const path = join(dir, 'up-classifier.lowbit');
    saveModel(path, src.name, src.config, src.model, src.metadata);
    const back = loadModel(path);
    assert.deepEqual(lowbitRun(back.model as GraphModule, x, [2, 1, 8, 8]), yf);
    back.model.dispose();
    const calibration = [{ x: Tensor.from(pseudoRandom(8 * 64, 45).map((v) => (v + 1) / 2), [8, 1, 8, 8]), y: Tensor.zeros([8], 'i32'), index: 0, indices: new Int32Array(8) }];
    const q = quantizePostTraining(src, { spec: 'int8', calibration });
    assert.equal(q.layers.length, 1, 'only the Conv is a quantizable layer');
    const yq = noGrad(() => tidy(() => q.model.forward(Tensor.from(x, [2, 1, 8, 8])).toFloat32Array()));
    const d = maxAbsDiff(yq, yf);
    assert.ok(d > 0 && d < 0.05 * Math.max(...yf.map(Math.abs)), `int8 vs float: max |diff| ${d}`);
    // the runtime runs the ConvTranspose in float between the integer layers
    const plan = compileQuantized(q);
    assert.ok(maxAbsDiff(tidy(() => plan.run(Tensor.from(x, [2, 1, 8, 8])).toFloat32Array()), yq) < 1e-4);
    plan.dispose();
    disposeQuantized(q);
    src.model.dispose();
  });

  it('3-D convolutions, and a ConvTranspose whose pads crop the whole output, are refused with an error naming the node', () => {
    const bytes = encode({
      name: 'conv3d', input: [vi('x', [1, 1, 3, 4, 5])], output: [vi('y', [1, 1, 3, 4, 5])],
      initializer: [f32('w', [1, 1, 1, 1, 1], Float32Array.from([2]))],
      node: [{ name: 'volume_conv', opType: 'Conv', input: ['x', 'w'], output: ['y'] }],
    });
    assert.throws(() => importOnnx(bytes), (e: Error) => e instanceof LowbitError && /volume_conv/.test(e.message) && /not 3-D/.test(e.message));
    const cropped = encode({
      name: 'cropped', input: [vi('x', [1, 1, 2, 2])], output: [vi('y', [1, 1, 1, 1])],
      initializer: [f32('w', [1, 1, 1, 1], Float32Array.from([2]))],
      node: [{ name: 'all_cropped', opType: 'ConvTranspose', input: ['x', 'w'], output: ['y'], attribute: [attrInts('pads', [1, 1, 1, 1])] }],
    });
    assert.throws(() => importOnnx(cropped), (e: Error) => e instanceof LowbitError && /all_cropped/.test(e.message) && /crop the whole output/.test(e.message));
  });
});

describe('ONNX import: imported models are lowbit models', () => {
  it('save as .lowbit and load back (graph description + state dict), same outputs; loadModel reads .onnx', () => {
    const spec = networkSpec('lenet5');
    const onnxPath = join(dir, 'lenet5.onnx');
    writeFileSync(onnxPath, floatNetworkModel(spec).bytes);
    const src = loadModel(onnxPath);
    assert.equal(src.name, 'onnx');
    assert.deepEqual({ ...src.config }, { inChannels: 1, inputSize: 28, classes: 10 });
    const path = join(dir, 'lenet5-imported.lowbit');
    saveModel(path, src.name, src.config, src.model, src.metadata);
    const back = loadModel(path);
    assert.equal(back.name, 'graph');
    assert.deepEqual(back.config, src.config);
    assert.ok(back.model instanceof GraphModule);
    assert.deepEqual([...back.model.stateDict().keys()], [...src.model.stateDict().keys()]);
    const x = pseudoRandom(2 * 784, 3);
    assert.deepEqual(lowbitRun(back.model as GraphModule, x, [2, 1, 28, 28]), lowbitRun(src.model as GraphModule, x, [2, 1, 28, 28]));
    src.model.dispose();
    back.model.dispose();
  });

  it('a leading (x - mean) / std moves into metadata.preprocess; outputs unchanged on normalized input', () => {
    const w = pseudoRandom(2 * 3 * 9, 12);
    const bytes = encode({
      input: [vi('x', ['N', 3, 6, 6])], output: [vi('y', ['N', 8])],
      initializer: [
        f32('mean', [1, 3, 1, 1], Float32Array.from([0.4, 0.5, 0.6])), f32('std', [1, 3, 1, 1], Float32Array.from([0.2, 0.25, 0.3])),
        f32('w', [2, 3, 3, 3], w), i64('shape', [0, -1]),
      ],
      node: [
        { opType: 'Sub', input: ['x', 'mean'], output: ['xm'] },
        { opType: 'Div', input: ['xm', 'std'], output: ['xn'] },
        { name: 'conv', opType: 'Conv', input: ['xn', 'w'], output: ['c'] },
        { opType: 'Reshape', input: ['c', 'shape'], output: ['y'] },
      ],
    });
    const path = join(dir, 'normalized.onnx');
    writeFileSync(path, bytes);
    const loaded = loadModel(path);
    assert.deepEqual(loaded.metadata.preprocess, { mean: [0.4, 0.5, 0.6].map(Math.fround), std: [0.2, 0.25, 0.3].map(Math.fround) });
    assert.deepEqual([...loaded.model.stateDict().keys()], ['conv.weight']);
    const raw = importOnnx(bytes).module;
    const x = pseudoRandom(2 * 108, 8).map((v) => (v + 1) / 2);
    const xn = x.map((v, i) => { const c = Math.floor(i / 36) % 3; return (v - [0.4, 0.5, 0.6][c]) / [0.2, 0.25, 0.3][c]; });
    const d = maxAbsDiff(lowbitRun(loaded.model as GraphModule, xn, [2, 3, 6, 6]), lowbitRun(raw, x, [2, 3, 6, 6]));
    assert.ok(d < 1e-5, `max |diff| ${d}`);
    raw.dispose();
    loaded.model.dispose();
  });

  it('trains: gradients reach every conv and linear weight, and an SGD step lowers the loss', () => {
    const m = importOnnx(torchStyleModel()).module;
    m.train();
    const x = Tensor.from(pseudoRandom(8 * 128, 21), [8, 2, 8, 8]);
    const labels = Tensor.from(Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2]), [8], 'i32');
    const lossOf = () => tidy(() => ops.crossEntropy(ops.log(m.forward(x)), labels).item());
    const before = noGrad(lossOf);
    tidy(() => {
      const loss = ops.crossEntropy(ops.log(m.forward(x)), labels);
      backward(loss);
    });
    for (const [name, p] of m.namedParameters()) {
      assert.ok(p.grad, `${name} has no gradient`);
      noGrad(() => tidy(() => { p.assign(ops.sub(p, ops.mulScalar(p.grad!, 0.1))); }));
      p.grad.dispose();
      p.grad = null;
    }
    const afterLoss = noGrad(lossOf);
    assert.ok(afterLoss < before, `loss ${before} -> ${afterLoss}`);
    x.dispose(); labels.dispose(); m.dispose();
  });

  it('quantizes post-training (int8) like a zoo model', () => {
    const spec = networkSpec('lenet5');
    const onnxPath = join(dir, 'lenet5-ptq.onnx');
    writeFileSync(onnxPath, floatNetworkModel(spec).bytes);
    const src = loadModel(onnxPath);
    const calibration = [0, 1].map((i) => ({
      x: Tensor.from(pseudoRandom(16 * 784, 40 + i).map((v) => (v + 1) / 2), [16, 1, 28, 28]),
      y: Tensor.zeros([16], 'i32'), index: i, indices: new Int32Array(16),
    }));
    const q = quantizePostTraining(src, { spec: 'int8', calibration });
    assert.ok(q.layers.length >= 4, `${q.layers.length} quantized layers`);
    const x = pseudoRandom(4 * 784, 77).map((v) => (v + 1) / 2);
    const yf = lowbitRun(src.model as GraphModule, x, [4, 1, 28, 28]);
    const yq = noGrad(() => tidy(() => q.model.forward(Tensor.from(x, [4, 1, 28, 28])).toFloat32Array()));
    const scale = Math.max(...yf.map(Math.abs));
    const d = maxAbsDiff(yq, yf);
    assert.ok(d > 0 && d < 0.1 * scale, `int8 vs float: max |diff| ${d}, max |y| ${scale}`);
    disposeQuantized(q);
    src.model.dispose();
  });
});

describe('ONNX import: already-quantized (QDQ) models', () => {
  it('int8 PTQ LeNet-5 exported as onnx-qdq imports back: logits match onnxruntime on 200 MNIST images', async (t) => {
    const mnist = await loadDataset('mnist');
    const lenet = loadModel('zoo:lenet5-mnist');
    const pre = lenet.metadata!.preprocess as { mean: number[]; std: number[] };
    const calibration = [batches(mnist.train, { batchSize: 256, normalize: pre }).next().value!];
    const q = quantizePostTraining(lenet, { spec: 'int8', calibration });
    try {
      const bytes = exportOnnx(q, 'onnx-qdq');
      const imported = importOnnx(bytes, { what: 'lenet5-int8-qdq.onnx' });
      const m = imported.module;
      const kinds = m.graph.ops.map((o) => o.op);
      t.diagnostic(`imported ops: ${kinds.join(' ')}`);
      assert.ok(kinds.filter((k) => k === 'fakeQuant').length >= 5, 'QuantizeLinear -> DequantizeLinear pairs become fakeQuant ops');
      assert.ok(!kinds.includes('quantize') && !kinds.includes('dequantize'), 'no lone quantize / dequantize ops remain (weights and biases fold)');
      assert.equal(m.graph.layers.filter((l) => l.kind === 'conv').length, 2);
      assert.equal(m.graph.layers.filter((l) => l.kind === 'linear').length, 3);
      const n = 200, start = 1000, s = mnist.test, per = s.channels * s.height * s.width;
      const raw = Float32Array.from(s.images.subarray(start * per, (start + n) * per), (v) => v / 255);
      const dims = [n, 1, 28, 28];
      const yo = await runOrt(bytes, { input: { data: raw, dims } });
      const yl = lowbitRun(m, raw, dims);
      let lo = Infinity, hi = -Infinity;
      for (const v of yo) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      const d = maxAbsDiff(yl, yo);
      const top1 = (v: Float32Array, i: number) => { let k = 0; for (let c = 1; c < 10; c++) if (v[i * 10 + c] > v[i * 10 + k]) k = c; return k; };
      let agree = 0;
      for (let i = 0; i < n; i++) if (top1(yl, i) === top1(yo, i)) agree++;
      t.diagnostic(`max |lowbit - onnxruntime| ${d.toExponential(3)} (logit range ${(hi - lo).toFixed(3)}); top-1 agreement ${agree}/${n}`);
      assert.ok(d <= 1e-3 * (hi - lo), `max |diff| ${d} > 1e-3 of the logit range ${hi - lo}`);
      assert.ok(agree >= 199, `top-1 agreement ${agree}/${n}`);
      // a lowbit model: saves as .lowbit (scales and zero points are buffers) and reloads with the same outputs
      const onnxPath = join(dir, 'lenet5-int8-qdq.onnx');
      writeFileSync(onnxPath, bytes);
      const src = loadModel(onnxPath);
      const path = join(dir, 'lenet5-int8-qdq.lowbit');
      saveModel(path, src.name, src.config, src.model, src.metadata);
      const back = loadModel(path);
      const x = raw.subarray(0, 4 * 784);
      assert.deepEqual(lowbitRun(back.model as GraphModule, x, [4, 1, 28, 28]), lowbitRun(src.model as GraphModule, x, [4, 1, 28, 28]));
      src.model.dispose();
      back.model.dispose();
      m.dispose();
    } finally {
      disposeQuantized(q);
      lenet.model.dispose();
    }
  });
});

describe('ONNX import: quantized ops with constant weights', () => {
  const U8 = onnx.TensorProto.DataType.UINT8, I8 = onnx.TensorProto.DataType.INT8, I32 = onnx.TensorProto.DataType.INT32;
  const ints = (name: string, dims: number[], dataType: number, values: number[]): OnnxTypes.ITensorProto => ({ name, dims, dataType, int32Data: values });
  const scalar = (name: string, v: number) => f32(name, [], Float32Array.of(v));
  const codes = (n: number, seed: number, lo: number, hi: number) => Array.from(pseudoRandom(n, seed), (v) => Math.round(lo + ((v + 1) / 2) * (hi - lo)));

  it('QLinearConv (per-channel int8 weights, int32 bias) and per-axis QuantizeLinear -> DequantizeLinear: a Conv2d layer, onnxruntime\'s codes', async () => {
    const bytes = encode({
      name: 'qconv',
      input: [vi('x', [1, 2, 6, 6])],
      output: [vi('y', [1, 3, 6, 6]), vi('z', [1, 2, 6, 6])],
      initializer: [
        scalar('xs', 0.02), ints('xzp', [], U8, [128]),
        ints('w', [3, 2, 3, 3], I8, codes(54, 5, -127, 127)), f32('ws', [3], Float32Array.of(0.01, 0.02, 0.005)), ints('wzp', [3], I8, [0, 0, 0]),
        scalar('ys', 0.05), ints('yzp', [], U8, [100]), ints('b', [3], I32, [-300, 120, 4000]),
        f32('cs', [2], Float32Array.of(0.03, 0.01)), ints('czp', [2], I8, [-3, 7]),
      ],
      node: [
        { opType: 'QuantizeLinear', input: ['x', 'xs', 'xzp'], output: ['xq'] },
        { opType: 'QLinearConv', input: ['xq', 'xs', 'xzp', 'w', 'ws', 'wzp', 'ys', 'yzp', 'b'], output: ['yq'], attribute: [attrInts('pads', [1, 1, 1, 1])] },
        { opType: 'DequantizeLinear', input: ['yq', 'ys', 'yzp'], output: ['y'] },
        { opType: 'QuantizeLinear', input: ['x', 'cs', 'czp'], output: ['c'], attribute: [attrInt('axis', 1)] },
        { opType: 'DequantizeLinear', input: ['c', 'cs', 'czp'], output: ['z'], attribute: [attrInt('axis', 1)] },
      ],
    });
    const m = importOnnx(bytes).module;
    assert.equal(m.graph.layers.filter((l) => l.kind === 'conv').length, 1);
    assert.ok(m.graph.ops.some((o) => o.op === 'fakeQuant'));
    const x = pseudoRandom(72, 9).map((v) => 2 * v);
    const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], logSeverityLevel: 3 });
    const res = await session.run({ x: new ort.Tensor('float32', x, [1, 2, 6, 6]) });
    const [y, z] = noGrad(() => tidy(() => m.run([Tensor.from(x, [1, 2, 6, 6])]).map((t) => t.toFloat32Array())));
    assert.deepEqual(Array.from(z), Array.from(res.z.data as Float32Array));
    // onnxruntime requantizes an integer accumulator; the float simulation may round a tie the other way: one code at most
    const yo = res.y.data as Float32Array;
    assert.ok(maxAbsDiff(y, yo) <= 0.05 + 1e-6, `max |diff| ${maxAbsDiff(y, yo)}`);
    assert.ok(y.filter((v, i) => v === yo[i]).length >= 0.95 * y.length);
    m.dispose();
  });

  it('MatMulInteger with a constant B becomes a Linear layer; exact integer sums', async () => {
    const A = codes(8, 3, 0, 255), B = codes(12, 4, -128, 127);
    const bytes = encode({
      name: 'mmi',
      input: [{ name: 'a', type: { tensorType: { elemType: U8, shape: { dim: [{ dimValue: 2 }, { dimValue: 4 }] } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: I32, shape: { dim: [{ dimValue: 2 }, { dimValue: 3 }] } } } }],
      initializer: [ints('B', [4, 3], I8, B), ints('azp', [], U8, [130]), ints('bzp', [3], I8, [1, -2, 0])],
      node: [{ opType: 'MatMulInteger', input: ['a', 'B', 'azp', 'bzp'], output: ['y'] }],
    });
    const m = importOnnx(bytes).module;
    assert.equal(m.graph.layers.filter((l) => l.kind === 'linear').length, 1);
    const y = noGrad(() => tidy(() => m.run([Tensor.from(Uint8Array.from(A), [2, 4], 'u8')])[0].toFloat32Array()));
    const bzp = [1, -2, 0];
    const want: number[] = [];
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) {
      let acc = 0;
      for (let k = 0; k < 4; k++) acc += (A[i * 4 + k] - 130) * (B[k * 3 + j] - bzp[j]);
      want.push(acc);
    }
    assert.deepEqual(Array.from(y), want);
    m.dispose();
  });

  it('out-of-scope variants are clear errors: blocked quantization, 16-bit codes', () => {
    const blocked = encode({
      name: 'blocked', input: [vi('x', [2, 4])], output: [vi('y', [2, 4])],
      initializer: [f32('s', [2, 2], Float32Array.of(1, 2, 3, 4))],
      node: [
        { opType: 'QuantizeLinear', input: ['x', 's'], output: ['q'], attribute: [attrInt('axis', 1), attrInt('block_size', 2)] },
        { opType: 'DequantizeLinear', input: ['q', 's'], output: ['y'], attribute: [attrInt('axis', 1), attrInt('block_size', 2)] },
      ],
    }, 21);
    assert.throws(() => importOnnx(blocked), (e: Error) => e instanceof LowbitError && /block_size/.test(e.message));
    const wide = encode({
      name: 'wide', input: [vi('x', [2, 4])], output: [vi('y', [2, 4])],
      initializer: [scalar('s', 0.1), ints('zp', [], onnx.TensorProto.DataType.UINT16, [5])],
      node: [
        { opType: 'QuantizeLinear', input: ['x', 's', 'zp'], output: ['q'] },
        { opType: 'DequantizeLinear', input: ['q', 's', 'zp'], output: ['y'] },
      ],
    });
    assert.throws(() => importOnnx(wide), (e: Error) => e instanceof LowbitError && /UINT16/.test(e.message));
  });
});

describe('ONNX import: bad input is a clear LowbitError', () => {
  const expectError = (fn: () => unknown, pattern: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof LowbitError && pattern.test((e as Error).message) || assert.fail(`got ${(e as Error).message}`));

  it('not ONNX, truncated', () => {
    expectError(() => importOnnx(new TextEncoder().encode('hello, this is not a model at all\n')), /not an ONNX model/);
    const good = floatNetworkModel(networkSpec('lenet5')).bytes;
    expectError(() => importOnnx(good.subarray(0, Math.floor(good.length / 2))), /truncated|not an ONNX model/);
  });

  it('unsupported ops: lists op types and node names, points to the supported list', () => {
    const bytes = encode({
      input: [vi('x', [1, 3, 4, 4])], output: [vi('z', [1, 3, 8, 8])],
      node: [
        { name: 'erf_1', opType: 'Erf', input: ['x'], output: ['y'] },
        { name: 'up', opType: 'Resize', input: ['y'], output: ['z'] },
      ],
    });
    expectError(() => importOnnx(bytes), /Erf \(erf_1\).*Resize \(up\).*onnx-ops/);
  });

  it('a dynamic dimension that must be static names the input and the flag; --input-shape fixes it', () => {
    const bytes = encode({ input: [vi('image', ['N', 3, 'H', 'W'])], output: [vi('y', ['N', 3, 'H', 'W'])], node: [{ opType: 'Relu', input: ['image'], output: ['y'] }] });
    expectError(() => importOnnx(bytes), /input image has a dynamic dimension 2 \(H\).*--input-shape/);
    const ok = importOnnx(bytes, { inputShape: [1, 3, 5, 5] });
    assert.deepEqual(ok.outputShape, [1, 3, 5, 5]);
    ok.module.dispose();
  });

  it('a node missing required inputs is named; control characters in names are escaped (one line)', () => {
    const bn = encode({
      input: [vi('x', [1, 3, 4, 4])], output: [vi('y', [1, 3, 4, 4])],
      node: [{ name: 'bn_1', opType: 'BatchNormalization', input: ['x', 's', 'b'], output: ['y'] }],
    });
    expectError(() => importOnnx(bn), /node bn_1 \(BatchNormalization\) has 3 input\(s\) and 1 output\(s\); BatchNormalization needs 5 input\(s\)/);
    const odd = encode({ input: [vi('x', [1, 3])], output: [vi('y', [1, 3])], node: [{ name: 'n', opType: 'Frob\nnicate\u001b[31m', input: ['x'], output: ['y'] }] });
    expectError(() => importOnnx(odd), /^[^\n\u001b]*Frob\\u000anicate\\u001b\[31m \(n\)[^\n]*$/);
  });

  it('a declared input too large to trace, or with a negative dimension, is refused before allocating', () => {
    const relu = (dims: number[]) => encode({ input: [vi('x', dims)], output: [vi('y', dims)], node: [{ opType: 'Relu', input: ['x'], output: ['y'] }] });
    const before = engine.memory.bytesInUse;
    expectError(() => importOnnx(relu([1, 3, 65536, 65536])), /input x has shape \[1, ?3, ?65536, ?65536\].*at most 16777216 elements.*--input-shape/);
    expectError(() => importOnnx(relu([1, 3, 4, 4]), { inputShape: [1, -3, 4, 4] }), /input x has shape .*integers >= 0/);
    assert.equal(engine.memory.bytesInUse, before);
    const ok = importOnnx(relu([1, 3, 65536, 65536]), { inputShape: [1, 3, 8, 8] });
    assert.deepEqual(ok.outputShape, [1, 3, 8, 8]);
    ok.module.dispose();
  });

  it('external data whose file is missing; an initializer whose size does not match its shape', () => {
    const external = encode({
      input: [vi('x', [1, 4])], output: [vi('y', [1, 4])],
      initializer: [{ name: 'w', dims: [4], dataType: FLOAT, dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'weights.bin' }] }],
      node: [{ opType: 'Add', input: ['x', 'w'], output: ['y'] }],
    });
    const path = join(dir, 'external.onnx');
    writeFileSync(path, external);
    expectError(() => importOnnx(path), /external file weights\.bin, which is missing/);
    // With the file present it loads.
    writeFileSync(join(dir, 'weights.bin'), Buffer.from(Float32Array.from([1, 2, 3, 4]).buffer));
    const ok = importOnnx(path);
    assert.deepEqual(Array.from(lowbitRun(ok.module, new Float32Array(4), [1, 4])), [1, 2, 3, 4]);
    ok.module.dispose();

    const bad = encode({
      input: [vi('x', [1, 4])], output: [vi('y', [1, 4])],
      initializer: [{ name: 'w', dims: [4], dataType: FLOAT, rawData: new Uint8Array(12) }],
      node: [{ opType: 'Add', input: ['x', 'w'], output: ['y'] }],
    });
    expectError(() => importOnnx(bad), /initializer w.*needs 16 bytes.*holds 12/);
  });
});

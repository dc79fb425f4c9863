// The peer side of `lowbit bench runtime`: the ONNX networks of bench/onnx-networks.ts (float and int8
// QDQ) build, run in onnxruntime-node with the right output shapes and finite values, the int8 conv
// layer agrees with the float one within a few quantization steps, and measureRuntimePeers produces
// well-formed rows. Nothing here asserts a timing.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  NETWORK_NAMES,
  conv3x3Layer,
  floatNetworkModel,
  int8NetworkModel,
  networkMacs,
  networkSpec,
  uint8Params,
  type NetworkName,
} from '../bench/onnx-networks.js';
import { calibrateNetwork, measureRuntimePeers, networkInput, runOrtNode, runtimeNetworkMacs } from '../bench/runtime-peers.js';
import { naiveConv } from '../bench/peers.js';

const CLASSES: Record<NetworkName, number[]> = {
  'conv3x3-64-56': [1, 64, 56, 56],
  lenet5: [1, 10],
  resnet20: [1, 10],
  resnet18: [1, 1000],
};

function stats(v: Float32Array): { finite: boolean; std: number; maxAbs: number } {
  let s = 0, s2 = 0, m = 0, finite = true;
  for (const x of v) {
    if (!Number.isFinite(x)) finite = false;
    s += x;
    s2 += x * x;
    m = Math.max(m, Math.abs(x));
  }
  const mean = s / v.length;
  return { finite, std: Math.sqrt(Math.max(0, s2 / v.length - mean * mean)), maxAbs: m };
}

describe('bench runtime peers: ONNX networks', () => {
  it('counts the MACs of every network (convs + fc)', () => {
    // conv layer: 64 out x 56 x 56 positions x 64 in x 9 taps
    assert.equal(networkMacs('conv3x3-64-56'), 64 * 56 * 56 * 64 * 9);
    // LeNet-5: conv1 6x28x28x25, conv2 16x10x10x150, fc 400x120 + 120x84 + 84x10
    assert.equal(networkMacs('lenet5'), 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10);
    // The published figures: ResNet-20 ~41 M, ResNet-18 1.81 G.
    assert.ok(Math.abs(networkMacs('resnet20') - 40.8e6) < 0.1e6, `resnet20 ${networkMacs('resnet20')}`);
    assert.ok(Math.abs(networkMacs('resnet18') - 1.814e9) < 0.002e9, `resnet18 ${networkMacs('resnet18')}`);
    const all = runtimeNetworkMacs();
    for (const n of NETWORK_NAMES) assert.equal(all[n], networkSpec(n).macs);
  });

  for (const name of NETWORK_NAMES) {
    it(`${name}: float and int8 graphs run in onnxruntime-node with output ${JSON.stringify(CLASSES[name])}`, async () => {
      const spec = networkSpec(name);
      assert.deepEqual(spec.output.dims, CLASSES[name]);
      const x = networkInput(spec);
      const yf = (await runOrtNode(floatNetworkModel(spec), x)).Y!;
      const size = CLASSES[name].reduce((a, b) => a * b, 1);
      assert.equal(yf.length, size);
      const sf = stats(yf);
      assert.ok(sf.finite, 'float output has non-finite values');
      assert.ok(sf.std > 1e-3 && sf.maxAbs < 100, `float output degenerate or exploding: std ${sf.std}, max ${sf.maxAbs}`);

      const ranges = await calibrateNetwork(spec, x);
      const yq = (await runOrtNode(int8NetworkModel(spec, ranges), x)).Y!;
      assert.equal(yq.length, size);
      assert.ok(stats(yq).finite, 'int8 output has non-finite values');
      // Whole networks accumulate quantization error; still within a few % of the output range.
      let maxErr = 0;
      for (let i = 0; i < size; i++) maxErr = Math.max(maxErr, Math.abs(yq[i]! - yf[i]!));
      assert.ok(maxErr < 0.05 * sf.maxAbs, `int8 vs float max |err| ${maxErr} vs max |y| ${sf.maxAbs}`);
    });
  }

  it('int8 QDQ conv layer is within a few quantization steps of the float conv', async () => {
    const spec = conv3x3Layer();
    const x = networkInput(spec);
    const conv = spec.layers[0]!;
    assert.equal(conv.op, 'conv');
    // The float ONNX conv is the conv we mean (layout, padding): compare it with a naive JS conv.
    const yf = (await runOrtNode(floatNetworkModel(spec), x)).Y!;
    const ref = naiveConv(x, conv.op === 'conv' ? conv.w : new Float32Array(0), { batch: 1, inC: 64, h: 56, w: 56, outC: 64, kh: 3, kw: 3, pad: 1 });
    let refErr = 0;
    for (let i = 0; i < ref.length; i++) refErr = Math.max(refErr, Math.abs(yf[i]! - ref[i]!));
    assert.ok(refErr < 1e-3, `float ONNX conv vs naive conv: max |err| ${refErr}`);

    const ranges = await calibrateNetwork(spec, x);
    const { scale: step } = uint8Params(ranges.Y!);
    const yq = (await runOrtNode(int8NetworkModel(spec, ranges), x)).Y!;
    assert.equal(yq.length, yf.length);
    let maxErr = 0, sumErr = 0;
    for (let i = 0; i < yf.length; i++) {
      const e = Math.abs(yq[i]! - yf[i]!);
      maxErr = Math.max(maxErr, e);
      sumErr += e;
    }
    const meanErr = sumErr / yf.length;
    // Output rounding alone is <= 0.5 step; input (uint8) and weight (int8) rounding add a little.
    assert.ok(maxErr <= 2.5 * step, `max |int8 - float| = ${maxErr} = ${(maxErr / step).toFixed(2)} steps`);
    assert.ok(meanErr <= 0.5 * step, `mean |int8 - float| = ${meanErr} = ${(meanErr / step).toFixed(2)} steps`);
    // ... and it really is quantized (values on the output grid, not a float passthrough).
    assert.ok(meanErr > 0.05 * step, `int8 output suspiciously exact: mean error ${(meanErr / step).toFixed(3)} steps`);
  });

  it('measureRuntimePeers returns one well-formed row per (network, dtype, impl, threads)', async () => {
    const rows = await measureRuntimePeers({ threads: [1], runs: 1, warmup: 0, minWarmupMs: 0, soakMs: 0, only: ['lenet5', 'int4'] });
    assert.deepEqual(
      rows.map((r) => `${r.name} ${r.dtype} ${r.impl} ${r.threads}`),
      ['lenet5 fp32 onnxruntime-node 1', 'lenet5 fp32 onnxruntime-web 1', 'lenet5 int8 onnxruntime-node 1', 'lenet5 int8 onnxruntime-web 1'],
    );
    for (const r of rows) {
      assert.ok(Number.isFinite(r.ms) && r.ms > 0, `${r.impl} ${r.dtype}: ms ${r.ms} (${r.note ?? ''})`);
      assert.ok(Math.abs(r.gops - (2 * networkMacs('lenet5')) / (r.ms * 1e6)) < 1e-9 * r.gops);
    }
  });
});

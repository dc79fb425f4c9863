// Every differentiable op's gradient against central finite differences, run once on the reference
// kernels and once on the WebAssembly kernels (2 threads).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as lb from '../src/index.js';
import { Tensor } from '../src/index.js';
import { gradcheck, randomTensor, rng } from './helpers.js';

const rand = rng(2026);
/** Random values kept away from 0 (and so from the kinks of relu, abs, sign...). */
function awayFromZero(shape: number[], lo = 0.2, hi = 1.5): Tensor {
  const t = randomTensor(shape, rand, lo, hi);
  const v = t.view() as Float32Array;
  for (let i = 0; i < v.length; i++) if (rand() < 0.5) v[i] = -v[i];
  return t;
}

before(async () => {
  await lb.init({ threads: 2 });
});
after(async () => {
  await lb.shutdown();
});

for (const backend of ['ref', 'wasm'] as const) {
describe(`${backend} kernels`, () => {
  before(() => lb.setBackend(backend));
  describe('unary ops', () => {
    const cases: [string, (x: Tensor) => Tensor, () => Tensor][] = [
      ['neg', lb.neg, () => randomTensor([3, 4], rand)],
      ['abs', lb.abs, () => awayFromZero([3, 4])],
      ['exp', lb.exp, () => randomTensor([3, 4], rand)],
      ['log', lb.log, () => randomTensor([3, 4], rand, 0.5, 2)],
      ['sqrt', lb.sqrt, () => randomTensor([3, 4], rand, 0.5, 2)],
      ['square', lb.square, () => randomTensor([3, 4], rand)],
      ['reciprocal', lb.reciprocal, () => randomTensor([3, 4], rand, 0.5, 2)],
      ['relu', lb.relu, () => awayFromZero([3, 4])],
      ['relu6', lb.relu6, () => awayFromZero([3, 4], 0.2, 5.5)],
      ['hardtanh', lb.hardtanh, () => randomTensor([3, 4], rand, -0.9, 0.9)],
      ['sigmoid', lb.sigmoid, () => randomTensor([3, 4], rand, -3, 3)],
      ['tanh', lb.tanh, () => randomTensor([3, 4], rand, -2, 2)],
      ['clamp', (x) => lb.clamp(x, -0.5, 0.5), () => randomTensor([3, 4], rand, -0.45, 0.45)],
      ['leakyRelu', (x) => lb.leakyRelu(x, 0.1), () => awayFromZero([3, 4])],
      ['mulScalar', (x) => lb.mulScalar(x, -2.5), () => randomTensor([3, 4], rand)],
      ['addScalar', (x) => lb.addScalar(x, 3), () => randomTensor([3, 4], rand)],
    ];
    for (const [name, f, make] of cases) {
      it(`${name}: gradient matches finite differences`, () => lb.tidy(() => gradcheck(f, [make()])));
    }

    it('forward values match their definitions', () => lb.tidy(() => {
      const x = Tensor.from([-7, -1.5, -0.5, 0, 0.5, 2.5, 7]);
      assert.deepEqual([...lb.relu(x).toArray()], [0, 0, 0, 0, 0.5, 2.5, 7]);
      assert.deepEqual([...lb.relu6(x).toArray()], [0, 0, 0, 0, 0.5, 2.5, 6]);
      assert.deepEqual([...lb.hardtanh(x).toArray()], [-1, -1, -0.5, 0, 0.5, 1, 1]);
      assert.deepEqual([...lb.sign(x).toArray()], [-1, -1, -1, 0, 1, 1, 1]);
      // round half to even
      assert.deepEqual([...lb.round(x).toArray()], [-7, -2, -0, 0, 0, 2, 7]);
      assert.deepEqual([...lb.step(x, 0).toArray()], [0, 0, 0, 0, 1, 1, 1]);
    }));

    it('sign, round, floor and step have zero gradient (STEs are explicit)', () => lb.tidy(() => {
      const x = randomTensor([5], rand);
      x.requiresGrad = true;
      lb.backward(lb.sum(lb.add(lb.add(lb.sign(x), lb.round(x)), lb.add(lb.floor(x), lb.step(x)))));
      assert.deepEqual([...x.grad!.toArray()], [0, 0, 0, 0, 0]);
    }));
  });

  describe('binary ops with broadcasting', () => {
    const pairs: [number[], number[]][] = [[[2, 3], [2, 3]], [[2, 3], [3]], [[4, 1, 3], [1, 5, 1]], [[2, 3, 4], []], [[1], [3, 2]]];
    for (const [sa, sb] of pairs) {
      for (const [name, f] of [['add', lb.add], ['sub', lb.sub], ['mul', lb.mul]] as const) {
        it(`${name} ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`, () => lb.tidy(() => gradcheck(f, [randomTensor(sa, rand), randomTensor(sb, rand)])));
      }
      for (const [name, f] of [['maximum', lb.maximum], ['minimum', lb.minimum]] as const) {
        // |a - b| >= 0.05 everywhere, so no finite-difference step crosses the kink.
        it(`${name} ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`, () => lb.tidy(() => gradcheck(f, [awayFromZero(sa, 0.1, 1), randomTensor(sb, rand, -0.05, 0.05)])));
      }
      it(`div ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`, () => lb.tidy(() => gradcheck(lb.div, [randomTensor(sa, rand), randomTensor(sb, rand, 0.5, 2)])));
      it(`pow ${JSON.stringify(sa)} x ${JSON.stringify(sb)}`, () => lb.tidy(() => gradcheck(lb.pow, [randomTensor(sa, rand, 0.5, 2), randomTensor(sb, rand, -2, 2)])));
    }

    it('broadcast values are right', () => lb.tidy(() => {
      const a = Tensor.from([[1, 2, 3], [4, 5, 6]]);
      const b = Tensor.from([10, 20, 30]);
      assert.deepEqual([...lb.add(a, b).toArray()], [11, 22, 33, 14, 25, 36]);
      const col = Tensor.from([[1], [2]]);
      assert.deepEqual([...lb.mul(a, col).toArray()], [1, 2, 3, 8, 10, 12]);
    }));

    it('mismatched shapes throw naming the op and both shapes', () => lb.tidy(() => {
      assert.throws(() => lb.add(Tensor.zeros([2, 3]), Tensor.zeros([4, 3])), /add: shapes \[2,3\] and \[4,3\] do not broadcast/);
      assert.throws(() => lb.matmul(Tensor.zeros([2, 3]), Tensor.zeros([2, 3])), /matmul: shapes \[2,3\] and \[2,3\]/);
      assert.throws(() => lb.add(Tensor.zeros([2], 'i32'), Tensor.zeros([2])), /add needs f32 tensors, got i32\[2\]/);
    }));
  });

  describe('reductions', () => {
    it('sum over every axis set', () => lb.tidy(() => {
      for (const axes of [undefined, 0, 1, 2, [0, 2], [1, 2], -1]) {
        gradcheck((x) => lb.sum(x, axes as number[]), [randomTensor([2, 3, 4], rand)]);
        gradcheck((x) => lb.sum(x, axes as number[], true), [randomTensor([2, 3, 4], rand)]);
      }
    }));
    it('mean', () => lb.tidy(() => {
      gradcheck((x) => lb.mean(x, [0, 2]), [randomTensor([2, 3, 4], rand)]);
      gradcheck((x) => lb.mean(x), [randomTensor([5, 3], rand)]);
    }));
    it('max and min', () => lb.tidy(() => {
      gradcheck((x) => lb.max(x, 1), [randomTensor([3, 5], rand)]);
      gradcheck((x) => lb.min(x, [0, 1]), [randomTensor([3, 5], rand)]);
    }));
    it('values and argmax', () => lb.tidy(() => {
      const x = Tensor.from([[1, 5, 2], [7, 0, 7]]);
      assert.deepEqual([...lb.sum(x, 1).toArray()], [8, 14]);
      assert.deepEqual([...lb.max(x, 0).toArray()], [7, 5, 7]);
      assert.deepEqual([...lb.mean(x).toArray()], [22 / 6].map(Math.fround));
      assert.deepEqual([...lb.argmax(x, 1).toArray()], [1, 0]);
      assert.deepEqual(lb.sum(x, 1, true).shape, [2, 1]);
    }));
  });

  describe('shape ops', () => {
    it('reshape, flatten', () => lb.tidy(() => {
      gradcheck((x) => lb.mul(lb.reshape(x, [4, -1]), lb.reshape(x, [4, 3])), [randomTensor([2, 6], rand)]);
      assert.deepEqual(lb.flatten(Tensor.zeros([2, 3, 4, 5])).shape, [2, 60]);
      assert.throws(() => lb.reshape(Tensor.zeros([2, 3]), [4, 2]), /cannot view \[2,3\]/);
    }));
    it('permute and transpose', () => lb.tidy(() => {
      gradcheck((x) => lb.permute(x, [2, 0, 1]), [randomTensor([2, 3, 4], rand)]);
      const t = lb.transpose(Tensor.from([[1, 2, 3], [4, 5, 6]]));
      assert.deepEqual(t.shape, [3, 2]);
      assert.deepEqual([...t.toArray()], [1, 4, 2, 5, 3, 6]);
    }));
    it('slice', () => lb.tidy(() => {
      gradcheck((x) => lb.slice(x, [1, 0, 2], [3, 2, 4]), [randomTensor([3, 3, 5], rand)]);
      assert.deepEqual([...lb.slice(Tensor.from([0, 1, 2, 3, 4]), [-3], [5]).toArray()], [2, 3, 4]);
    }));
    it('concat', () => lb.tidy(() => {
      gradcheck((a, b) => lb.concat([a, b], 1), [randomTensor([2, 3, 2], rand), randomTensor([2, 1, 2], rand)]);
      assert.deepEqual([...lb.concat([Tensor.from([[1, 2]]), Tensor.from([[3, 4]])], 0).toArray()], [1, 2, 3, 4]);
      assert.throws(() => lb.concat([Tensor.zeros([2, 3]), Tensor.zeros([3, 3])], 1), /concat along axis 1/);
    }));
    it('pad', () => lb.tidy(() => {
      gradcheck((x) => lb.pad(x, [[0, 0], [1, 2], [2, 1]], 0.5), [randomTensor([2, 2, 3], rand)]);
      assert.deepEqual([...lb.pad(Tensor.from([1, 2]), [[1, 2]], 9).toArray()], [9, 1, 2, 9, 9]);
    }));
    it('broadcastTo', () => lb.tidy(() => {
      gradcheck((x) => lb.broadcastTo(x, [3, 2, 4]), [randomTensor([2, 1], rand)]);
    }));
    it('works for integer tensors too', () => lb.tidy(() => {
      const i = Tensor.from(new Int32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
      assert.deepEqual([...lb.transpose(i).toArray()], [1, 4, 2, 5, 3, 6]);
      const u = Tensor.from(new Uint8Array([1, 2, 3, 4]), [2, 2]);
      assert.deepEqual([...lb.concat([u, u], 1).toArray()], [1, 2, 1, 2, 3, 4, 3, 4]);
    }));
  });

  describe('matmul and linear', () => {
    it('matmul gradient (2-D and batched)', () => lb.tidy(() => {
      gradcheck(lb.matmul, [randomTensor([3, 5], rand), randomTensor([5, 4], rand)]);
      gradcheck(lb.matmul, [randomTensor([2, 3, 5], rand), randomTensor([2, 5, 2], rand)]);
    }));
    it('linear gradient with and without bias', () => lb.tidy(() => {
      gradcheck(lb.linear, [randomTensor([4, 6], rand), randomTensor([3, 6], rand), randomTensor([3], rand)]);
      gradcheck((x, w) => lb.linear(x, w), [randomTensor([4, 6], rand), randomTensor([3, 6], rand)]);
    }));
    it('matmul values', () => lb.tidy(() => {
      const c = lb.matmul(Tensor.from([[1, 2], [3, 4]]), Tensor.from([[5, 6], [7, 8]]));
      assert.deepEqual([...c.toArray()], [19, 22, 43, 50]);
    }));
  });

  describe('conv2d', () => {
    const configs: [string, number[], number[], lb.Conv2dOptions][] = [
      ['plain 3x3', [2, 3, 6, 5], [4, 3, 3, 3], {}],
      ['padding 1', [1, 2, 5, 5], [3, 2, 3, 3], { padding: 1 }],
      ['stride 2, asymmetric pad', [1, 2, 7, 6], [2, 2, 3, 3], { stride: 2, padding: [1, 0, 2, 1] }],
      ['dilation 2', [1, 2, 7, 7], [2, 2, 3, 3], { dilation: 2, padding: 2 }],
      ['groups 2', [2, 4, 5, 5], [6, 2, 3, 3], { groups: 2, padding: 1 }],
      ['depthwise', [1, 3, 5, 5], [3, 1, 3, 3], { groups: 3, padding: 1 }],
      ['1x1', [2, 3, 4, 4], [5, 3, 1, 1], {}],
    ];
    for (const [name, xs, ws, opts] of configs) {
      it(`${name}: gradients of input, weight and bias`, () => lb.tidy(() => {
        gradcheck((x, w, b) => lb.conv2d(x, w, b, opts), [randomTensor(xs, rand), randomTensor(ws, rand), randomTensor([ws[0]], rand)]);
      }));
    }
    it('a known value', () => lb.tidy(() => {
      // 3x3 ones input, 2x2 ones kernel, padding 0 -> every output is 4, plus bias 1.
      const y = lb.conv2d(Tensor.ones([1, 1, 3, 3]), Tensor.ones([1, 1, 2, 2]), Tensor.from([1]));
      assert.deepEqual(y.shape, [1, 1, 2, 2]);
      assert.deepEqual([...y.toArray()], [5, 5, 5, 5]);
    }));
    it('bad geometry throws a clear error', () => lb.tidy(() => {
      assert.throws(() => lb.conv2d(Tensor.zeros([1, 3, 5, 5]), Tensor.zeros([4, 2, 3, 3])), /input channels must equal/);
      assert.throws(() => lb.conv2d(Tensor.zeros([1, 1, 2, 2]), Tensor.zeros([1, 1, 3, 3])), /larger than the padded input/);
    }));
  });

  describe('convTranspose2d', () => {
    const configs: [string, number[], number[], lb.ConvTranspose2dOptions][] = [
      ['plain 3x3', [2, 3, 4, 3], [3, 2, 3, 3], {}],
      ['stride 2, padding 1, output padding 1', [1, 2, 3, 4], [2, 3, 3, 3], { stride: 2, padding: 1, outputPadding: 1 }],
      ['stride [3,2], asymmetric pad', [1, 1, 3, 3], [1, 2, 3, 3], { stride: [3, 2], padding: [1, 0, 2, 1] }],
      ['dilation 2', [1, 2, 3, 3], [2, 2, 2, 2], { dilation: 2 }],
      ['groups 2', [2, 4, 3, 3], [4, 3, 3, 3], { groups: 2, stride: 2 }],
      ['output padding past the kernel reach', [1, 1, 2, 2], [1, 1, 1, 1], { stride: 3, outputPadding: 2 }],
      ['3x3, 8 -> 8 channels (the fast kernel paths)', [1, 8, 4, 4], [8, 8, 3, 3], { padding: 1 }],
    ];
    for (const [name, xs, ws, opts] of configs) {
      it(`${name}: gradients of input, weight and bias`, () => lb.tidy(() => {
        const groups = opts.groups ?? 1;
        gradcheck((x, w, b) => lb.convTranspose2d(x, w, b, opts), [randomTensor(xs, rand), randomTensor(ws, rand), randomTensor([ws[1] * groups], rand)]);
      }));
    }
    // The definition, scattering each input pixel through the kernel; on shapes that take the kernels' fast
    // paths (Winograd 3x3 stride 1 with >= 8 channels, col2im for stride > 1).
    function scatterReference(x: Tensor, w: Tensor, b: Tensor, o: { stride: number; pad: number; dilation: number; groups: number; outPad: number }): { data: Float32Array; shape: number[] } {
      const [N, C, H, W] = x.shape, [, Mg, K] = w.shape;
      const M = Mg * o.groups, Cg = C / o.groups;
      const OH = o.stride * (H - 1) + o.outPad + o.dilation * (K - 1) + 1 - 2 * o.pad, OW = o.stride * (W - 1) + o.outPad + o.dilation * (K - 1) + 1 - 2 * o.pad;
      const xv = x.toFloat32Array(), wv = w.toFloat32Array(), bv = b.toFloat32Array();
      const y = new Float32Array(N * M * OH * OW);
      for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) y.fill(bv[m], (n * M + m) * OH * OW, (n * M + m + 1) * OH * OW);
      for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let i = 0; i < H; i++) for (let j = 0; j < W; j++) {
        const g = Math.floor(c / Cg);
        for (let m = 0; m < Mg; m++) for (let ki = 0; ki < K; ki++) for (let kj = 0; kj < K; kj++) {
          const oy = i * o.stride - o.pad + ki * o.dilation, ox = j * o.stride - o.pad + kj * o.dilation;
          if (oy < 0 || oy >= OH || ox < 0 || ox >= OW) continue;
          y[((n * M + g * Mg + m) * OH + oy) * OW + ox] += xv[((n * C + c) * H + i) * W + j] * wv[((c * Mg + m) * K + ki) * K + kj];
        }
      }
      return { data: y, shape: [N, M, OH, OW] };
    }
    const refCases = [
      { name: '3x3 stride 1, 8 -> 8 channels', xs: [2, 8, 6, 5], k: 3, mPerGroup: 8, o: { stride: 1, pad: 1, dilation: 1, groups: 1, outPad: 0 } },
      { name: '3x3 stride 2, output padding 1, 8 -> 12 channels', xs: [1, 8, 4, 5], k: 3, mPerGroup: 12, o: { stride: 2, pad: 1, dilation: 1, groups: 1, outPad: 1 } },
      { name: '2x2 stride 3, dilation 2, groups 4, output padding 2', xs: [2, 8, 3, 3], k: 2, mPerGroup: 2, o: { stride: 3, pad: 0, dilation: 2, groups: 4, outPad: 2 } },
    ];
    for (const { name, xs, k, mPerGroup, o } of refCases) {
      it(`${name}: matches the scatter definition`, () => lb.tidy(() => {
        const x = randomTensor(xs, rand), w = randomTensor([xs[1], mPerGroup, k, k], rand), b = randomTensor([mPerGroup * o.groups], rand);
        const y = lb.convTranspose2d(x, w, b, { stride: o.stride, padding: o.pad, dilation: o.dilation, groups: o.groups, outputPadding: o.outPad });
        const want = scatterReference(x, w, b, o);
        assert.deepEqual(y.shape, want.shape);
        const got = y.toFloat32Array();
        for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want.data[i]) <= 1e-4, `element ${i}: ${got[i]} vs ${want.data[i]}`);
      }));
    }
    it('is the adjoint of conv2d: <convT(x), y> = <x, conv2d(y)>', () => lb.tidy(() => {
      const opts = { stride: 2, padding: [1, 0, 0, 1] as [number, number, number, number], dilation: 2 };
      const w = randomTensor([3, 2, 3, 2], rand), x = randomTensor([2, 3, 4, 5], rand);
      const t = lb.convTranspose2d(x, w, null, opts);
      const y = randomTensor([...t.shape], rand);
      const c = lb.conv2d(y, w, null, opts);
      assert.deepEqual(c.shape, x.shape);
      const lhs = lb.sum(lb.mul(t, y)).item(), rhs = lb.sum(lb.mul(x, c)).item();
      assert.ok(Math.abs(lhs - rhs) <= 1e-4 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
    }));
    it('a known value: stride 2 scatters each input pixel into its own 2x2 block, output padding adds a zero row', () => lb.tidy(() => {
      const y = lb.convTranspose2d(Tensor.from([1, 2, 3, 4], [1, 1, 2, 2]), Tensor.ones([1, 1, 2, 2]), Tensor.from([0.5]), { stride: 2, outputPadding: [1, 0] });
      assert.deepEqual(y.shape, [1, 1, 5, 4]);
      assert.deepEqual([...y.toArray()], [1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5, 0.5, 0.5, 0.5, 0.5]);
    }));
    it('bad geometry throws a clear error', () => lb.tidy(() => {
      assert.throws(() => lb.convTranspose2d(Tensor.zeros([1, 3, 5, 5]), Tensor.zeros([2, 2, 3, 3])), /weight.shape\[0\] must equal/);
      assert.throws(() => lb.convTranspose2d(Tensor.zeros([1, 1, 2, 2]), Tensor.zeros([1, 1, 1, 1]), null, { padding: 1 }), /crops the whole output/);
    }));
  });

  describe('pooling', () => {
    it('max pool gradient (with padding and stride)', () => lb.tidy(() => {
      // Distinct values so that no window has a tie within the finite-difference step.
      const x = Tensor.from(Float32Array.from({ length: 2 * 2 * 5 * 5 }, (_, i) => ((i * 37) % 100) / 10), [2, 2, 5, 5]);
      gradcheck((t) => lb.maxPool2d(t, { kernel: 2 }), [x], { eps: 1e-2 });
      gradcheck((t) => lb.maxPool2d(t, { kernel: 3, stride: 2, padding: 1 }), [x], { eps: 1e-2 });
    }));
    it('avg pool gradient, both padding conventions', () => lb.tidy(() => {
      gradcheck((t) => lb.avgPool2d(t, { kernel: 3, stride: 2, padding: 1, countIncludePad: true }), [randomTensor([1, 2, 5, 6], rand)]);
      gradcheck((t) => lb.avgPool2d(t, { kernel: 3, stride: 2, padding: 1, countIncludePad: false }), [randomTensor([1, 2, 5, 6], rand)]);
    }));
    it('global average pool gradient', () => lb.tidy(() => gradcheck(lb.globalAvgPool2d, [randomTensor([2, 3, 4, 5], rand)])));
    it('values', () => lb.tidy(() => {
      const x = Tensor.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], [1, 1, 4, 4]);
      assert.deepEqual([...lb.maxPool2d(x, { kernel: 2 }).toArray()], [6, 8, 14, 16]);
      assert.deepEqual([...lb.avgPool2d(x, { kernel: 2 }).toArray()], [3.5, 5.5, 11.5, 13.5]);
      // pad 1, 2x2 window at the corner holds only x[0] = 1: count_include_pad divides by 4, otherwise by 1.
      assert.equal(lb.avgPool2d(x, { kernel: 2, padding: 1, countIncludePad: true }).toArray()[0], 0.25);
      assert.equal(lb.avgPool2d(x, { kernel: 2, padding: 1 }).toArray()[0], 1);
      assert.deepEqual(lb.maxPool2d(x, { kernel: 3, stride: 2, ceilMode: true }).shape, [1, 1, 2, 2]);
      assert.deepEqual([...lb.globalAvgPool2d(x).toArray()], [8.5]);
    }));
  });

  describe('batch norm', () => {
    function params(c: number) {
      return {
        gamma: randomTensor([c], rand, 0.5, 1.5), beta: randomTensor([c], rand),
        runningMean: Tensor.zeros([c]), runningVar: Tensor.ones([c]),
      };
    }
    it('training-mode gradient w.r.t. input, gamma, beta', () => lb.tidy(() => {
      const p = params(3);
      gradcheck((x, g, b) => lb.batchNorm(x, { ...p, gamma: g, beta: b }, { training: true }),
        [randomTensor([4, 3, 2, 3], rand, -2, 3), p.gamma, p.beta], { rtol: 3e-2, atol: 3e-3 });
    }));
    it('training-mode gradient on odd shapes, [N, C] input, and data far from zero', () => lb.tidy(() => {
      for (const [shape, lo, hi] of [[[3, 5, 3, 7], -2, 3], [[6, 4], -1, 1], [[2, 3, 5, 5], 100, 103]] as const) {
        const p = params(shape[1]);
        gradcheck((x, g, b) => lb.batchNorm(x, { ...p, gamma: g, beta: b }, { training: true }),
          [randomTensor([...shape], rand, lo, hi), p.gamma, p.beta], { rtol: 3e-2, atol: 3e-3 });
      }
    }));
    it('eval-mode gradient', () => lb.tidy(() => {
      const p = params(3);
      (p.runningMean.view() as Float32Array).set([0.1, -0.2, 0.3]);
      (p.runningVar.view() as Float32Array).set([0.5, 2, 1.5]);
      gradcheck((x, g, b) => lb.batchNorm(x, { ...p, gamma: g, beta: b }, { training: false }), [randomTensor([2, 3, 2, 2], rand), p.gamma, p.beta]);
    }));
    it('normalizes the batch and updates the running statistics (PyTorch convention)', () => lb.tidy(() => {
      const x = Tensor.from([1, 2, 3, 4, 10, 20, 30, 40], [2, 2, 2, 1]); // channel 0: 1,2,10,20; channel 1: 3,4,30,40
      const p = { gamma: Tensor.ones([2]), beta: Tensor.zeros([2]), runningMean: Tensor.zeros([2]), runningVar: Tensor.ones([2]) };
      const y = lb.batchNorm(x, p, { training: true, momentum: 0.1, eps: 0 }).toArray();
      const c0 = [1, 2, 10, 20], m0 = 8.25, v0 = c0.reduce((s, v) => s + (v - m0) ** 2, 0) / 4;
      assert.ok(Math.abs(y[0] - (1 - m0) / Math.sqrt(v0)) < 1e-5);
      assert.ok(Math.abs(p.runningMean.toArray()[0] - 0.1 * m0) < 1e-5);
      assert.ok(Math.abs(p.runningVar.toArray()[0] - (0.9 + 0.1 * v0 * 4 / 3)) < 1e-4);
    }));
  });

  describe('softmax, cross-entropy, dropout', () => {
    it('softmax and log-softmax gradients', () => lb.tidy(() => {
      gradcheck(lb.softmax, [randomTensor([3, 5], rand, -2, 2)]);
      gradcheck(lb.logSoftmax, [randomTensor([3, 5], rand, -2, 2)]);
    }));
    it('cross-entropy gradient and value', () => lb.tidy(() => {
      const labels = Tensor.from(new Int32Array([0, 3, 1]));
      gradcheck((z) => lb.crossEntropy(z, labels), [randomTensor([3, 4], rand, -2, 2)]);
      const uniform = lb.crossEntropy(Tensor.zeros([2, 10]), Tensor.from(new Int32Array([1, 7])));
      assert.ok(Math.abs(uniform.item() - Math.log(10)) < 1e-6);
      assert.throws(() => lb.crossEntropy(Tensor.zeros([1, 3]), Tensor.from(new Int32Array([3]))), /label 3 at row 0 is outside \[0, 3\)/);
    }));
    it('dropout: gradient, reproducible mask, expected scale', () => lb.tidy(() => {
      gradcheck((x) => lb.dropout(x, 0.3, true, 42), [randomTensor([4, 8], rand)]);
      const x = Tensor.ones([10000]);
      const a = lb.dropout(x, 0.25, true, 5).toArray(), b = lb.dropout(x, 0.25, true, 5).toArray();
      assert.deepEqual(a, b);
      const kept = a.filter((v) => v !== 0);
      assert.ok(Math.abs(kept.length / 10000 - 0.75) < 0.02, `kept fraction ${kept.length / 10000}`);
      assert.ok(kept.every((v) => Math.abs(v - 4 / 3) < 1e-6));
      assert.equal(lb.dropout(x, 0.25, false, 5), x);
    }));
  });

  describe('autograd machinery', () => {
    it('accumulates gradients of a tensor used several times', () => lb.tidy(() => {
      const x = Tensor.from([1, 2, 3]);
      gradcheck((t) => lb.add(lb.mul(t, t), lb.add(t, lb.exp(t))), [x]);
    }));
    it('shared gradient buffers are not corrupted by in-place accumulation', () => lb.tidy(() => {
      // y = a + b; L = sum(y) + sum(a): add hands the same gradient to a and b, a then gets a second one.
      const a = Tensor.from([1, 2]), b = Tensor.from([3, 4]);
      a.requiresGrad = b.requiresGrad = true;
      lb.backward(lb.add(lb.sum(lb.add(a, b)), lb.sum(a)));
      assert.deepEqual([...a.grad!.toArray()], [2, 2]);
      assert.deepEqual([...b.grad!.toArray()], [1, 1]);
    }));
    it('customGrad: a straight-through estimator', () => lb.tidy(() => {
      // forward sign(x), backward the identity inside |x| <= 1 (BNN's STE)
      const ste = (x: Tensor) => lb.customGrad('signSTE', [x], () => lb.sign(x), (g) => [lb.mul(g, lb.step(lb.neg(lb.abs(x)), -1))]);
      const x = Tensor.from([-2, -0.5, 0.3, 1.5]);
      x.requiresGrad = true;
      const y = ste(x);
      assert.deepEqual([...y.toArray()], [-1, -1, 1, 1]);
      lb.backward(lb.sum(y));
      assert.deepEqual([...x.grad!.toArray()], [0, 1, 1, 0]);
    }));
    it('noGrad records nothing; backward of a constant is an error', () => lb.tidy(() => {
      const x = Tensor.from([1, 2]);
      x.requiresGrad = true;
      const y = lb.noGrad(() => lb.mul(x, x));
      assert.equal(y.node, null);
      assert.throws(() => lb.backward(lb.sum(y)), /does not depend on any tensor with requiresGrad/);
    }));
    it('checkNumerics names the op that produced NaN or Inf', () => lb.tidy(() => {
      lb.engine.options.checkNumerics = true;
      try {
        assert.throws(() => lb.log(Tensor.from([1, 0])), /log produced NaN or Inf/);
        assert.doesNotThrow(() => lb.log(Tensor.from([1, 2])));
      } finally {
        lb.engine.options.checkNumerics = false;
      }
    }));
  });

  describe('memory', () => {
    it('tidy frees intermediates and keeps the result', () => {
      const before = lb.engine.memory.bytesInUse;
      const kept = lb.tidy(() => {
        const a = Tensor.ones([1000]);
        const b = lb.mul(a, a);
        return lb.add(b, a);
      });
      assert.equal(kept.toArray()[0], 2);
      assert.ok(lb.engine.memory.bytesInUse - before <= 4096, 'only the result stays allocated');
      kept.dispose();
      assert.equal(lb.engine.memory.bytesInUse, before);
    });
    it('a disposed tensor cannot be used', () => {
      const t = Tensor.ones([3]);
      t.dispose();
      assert.throws(() => lb.relu(t), /used after dispose/);
    });
    it('asking for more than WebAssembly can give fails with a clear error', () => {
      assert.throws(() => Tensor.empty([70000, 70000]), /cannot allocate .* GiB in WebAssembly memory/);
    });
    it('tensors placed above 2 GiB of WebAssembly memory read, write and compute correctly', () => {
      // pointers >= 2^31 once broke every JS-side view (a signed ptr >> 2 counted from the end of memory):
      // a large evaluation batch silently corrupted quantized weights
      const filler = Tensor.empty([Math.ceil((2.1 * 2 ** 30) / 4)]);
      try {
        const values = Float32Array.from({ length: 2304 }, (_, i) => Math.sin(i));
        const x = Tensor.from(values, [16, 144]);
        assert.ok(x.ptr >= 2 ** 31, `placed at ${x.ptr}`);
        assert.deepEqual(x.toFloat32Array(), values);
        const y = lb.noGrad(() => lb.mulScalar(lb.div(x, Tensor.scalar(0.5)), 0.25));
        assert.deepEqual(y.toFloat32Array(), values.map((v) => Math.fround(Math.fround(v / 0.5) * 0.25)));
        x.dispose();
        y.dispose();
      } finally {
        filler.dispose();
      }
    });
  });
});
}

// Layers, the seeded generator, optimizers, and a small CNN that must learn a real (synthetic) task
// end to end through every piece of the engine.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as lb from '../src/index.js';
import { init, shutdown, Tensor, nn, optim, Random } from '../src/index.js';

// Training-sized work runs on the WebAssembly kernels (the reference kernels are checked in autograd.test.ts).
before(async () => {
  await init({ threads: 2 });
});
after(async () => {
  await shutdown();
});

describe('Random', () => {
  it('same seed, same sequence; different seed, different sequence', () => {
    const a = new Random(1), b = new Random(1), c = new Random(2);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextUint32()));
    assert.notDeepEqual(xs, Array.from({ length: 5 }, () => c.nextUint32()));
  });
  it('uniform and normal have the right moments', () => {
    const r = new Random(3);
    const n = 20000;
    let su = 0, sn = 0, sn2 = 0;
    for (let i = 0; i < n; i++) {
      su += r.uniform();
      const z = r.normal();
      sn += z;
      sn2 += z * z;
    }
    assert.ok(Math.abs(su / n - 0.5) < 0.01);
    assert.ok(Math.abs(sn / n) < 0.03);
    assert.ok(Math.abs(sn2 / n - 1) < 0.05);
  });
  it('permutation is a permutation', () => {
    const p = [...new Random(4).permutation(100)].sort((x, y) => x - y);
    assert.deepEqual(p, Array.from({ length: 100 }, (_, i) => i));
  });
});

function smallCnn(seed: number) {
  const r = new Random(seed);
  return new nn.Sequential(
    new nn.Conv2d(1, 4, 3, r, { padding: 1, bias: false }),
    new nn.BatchNorm(4),
    nn.ReLU(),
    nn.MaxPool2d({ kernel: 2 }),
    new nn.Conv2d(4, 8, 3, r, { padding: 1 }),
    nn.ReLU(),
    nn.GlobalAvgPool2d(),
    new nn.Dropout(0.1, r),
    new nn.Linear(8, 2, r),
  );
}

describe('layers', () => {
  it('named parameters, state dict and shapes', () => {
    const m = smallCnn(1);
    const names = m.namedParameters().map(([n]) => n);
    assert.deepEqual(names, ['0.weight', '1.weight', '1.bias', '4.weight', '4.bias', '8.weight', '8.bias']);
    assert.ok(m.stateDict().has('1.running_mean'));
    assert.equal(m.parameterCount(), 36 + 4 + 4 + 288 + 8 + 16 + 2);
    const y = lb.tidy(() => m.eval().forward(Tensor.zeros([3, 1, 8, 8])).shape);
    assert.deepEqual(y, [3, 2]);
    m.dispose();
  });
  it('the same seed gives the same weights bit for bit', () => {
    const a = smallCnn(9), b = smallCnn(9), c = smallCnn(10);
    for (const [name, t] of a.stateDict()) assert.deepEqual(t.toArray(), b.stateDict().get(name)!.toArray(), name);
    assert.notDeepEqual(a.stateDict().get('0.weight')!.toArray(), c.stateDict().get('0.weight')!.toArray());
    const d = smallCnn(11);
    d.loadStateDict(a.stateDict());
    assert.deepEqual(d.stateDict().get('4.weight')!.toArray(), a.stateDict().get('4.weight')!.toArray());
    for (const m of [a, b, c, d]) m.dispose();
  });
  it('PyTorch default init bound 1/sqrt(fan_in)', () => {
    const conv = new nn.Conv2d(16, 8, 3, new Random(5));
    const w = conv.weight.toArray();
    const bound = 1 / Math.sqrt(16 * 9);
    assert.ok(w.every((v) => Math.abs(v) <= bound));
    assert.ok(Math.max(...w) > 0.9 * bound);
    conv.dispose();
  });
});

describe('optimizers', () => {
  function oneStep(make: (p: Tensor[]) => optim.Optimizer, steps = 1): number[] {
    const p = lb.keep(Tensor.from([1, -2]));
    p.requiresGrad = true;
    const opt = make([p]);
    for (let i = 0; i < steps; i++) {
      lb.tidy(() => lb.backward(lb.sum(lb.mul(p, Tensor.from([0.5, 3])))));
      opt.step();
      opt.zeroGrad();
    }
    const out = [...p.toArray()];
    p.dispose();
    return out;
  }
  const close = (a: number[], b: number[]) => a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) < 1e-5, `${a} vs ${b}`));
  it('SGD, momentum, Nesterov, weight decay', () => {
    close(oneStep((p) => new optim.SGD(p, 0.1)), [1 - 0.05, -2 - 0.3]);
    // two steps with momentum 0.9: v1 = g, v2 = 1.9 g -> p = p0 - 0.1 * 2.9 g
    close(oneStep((p) => new optim.SGD(p, 0.1, { momentum: 0.9 }), 2), [1 - 0.29 * 0.5, -2 - 0.29 * 3]);
    // Nesterov first step: g + mu v = 1.9 g
    close(oneStep((p) => new optim.SGD(p, 0.1, { momentum: 0.9, nesterov: true })), [1 - 0.19 * 0.5, -2 - 0.19 * 3]);
    // weight decay 0.1: g = [0.5 + 0.1, 3 - 0.2]
    close(oneStep((p) => new optim.SGD(p, 0.1, { weightDecay: 0.1 })), [1 - 0.06, -2 - 0.28]);
  });
  it('Adam and AdaMax first step is lr * sign(g)', () => {
    close(oneStep((p) => new optim.Adam(p, 0.01)), [0.99, -2.01]);
    close(oneStep((p) => new optim.AdaMax(p, 0.01)), [0.99, -2.01]);
  });
});

describe('training end to end', () => {
  it('a small CNN learns which half of the image holds a blob', () => {
    // 8x8 images, a 2x2 bright blob at a random place; label = blob in the right half. Noise added.
    const data = new Random(100);
    function batch(n: number): [Tensor, Tensor] {
      const x = new Float32Array(n * 64), y = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const r = data.int(7), c = data.int(7);
        y[i] = c >= 4 ? 1 : c <= 2 ? 0 : data.int(2);
        const cc = y[i] === 1 ? 4 + data.int(3) : data.int(3);
        for (let k = 0; k < 64; k++) x[i * 64 + k] = 0.1 * data.normal();
        for (const [dr, dc] of [[0, 0], [0, 1], [1, 0], [1, 1]]) x[i * 64 + (r + dr) * 8 + cc + dc] += 1;
      }
      return [Tensor.from(x, [n, 1, 8, 8]), Tensor.from(y)];
    }
    const model = smallCnn(7);
    const opt = new optim.Adam(model.parameters(), 0.02);
    let first = 0, last = 0;
    for (let step = 0; step < 150; step++) {
      const loss = lb.tidy(() => {
        const [x, y] = batch(32);
        const l = lb.crossEntropy(model.train().forward(x), y);
        lb.backward(l);
        return l.item();
      });
      opt.step();
      opt.zeroGrad();
      if (step === 0) first = loss;
      last = loss;
    }
    const accuracy = lb.tidy(() => {
      const [x, y] = batch(500);
      const pred = lb.argmax(model.eval().forward(x), 1).toArray();
      const labels = y.toArray();
      return pred.filter((p, i) => p === labels[i]).length / 500;
    });
    assert.ok(last < first / 3, `loss went from ${first} to ${last}`);
    assert.ok(accuracy > 0.95, `accuracy ${accuracy}`);
    model.dispose();
  });
});

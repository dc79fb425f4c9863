// Rounding modes: ties to even, stochastic rounding (Gupta et al. 2015) unbiased and reproducible, floor,
// saturation, and the seed streams of stochastic quantizers.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../src/index.js';
import { roundNearest, roundStochastic, roundFloor, roundWith, saturate, roundHalfEven, SeedStream } from '../src/quant/index.js';
import { floorLog2, ceilLog2, floorLog2Tensor } from '../src/quant/index.js';

describe('rounding modes', () => {
  it('nearest rounds ties to even', () => tidy(() => {
    const x = Tensor.from([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999997, 1.2, -1.7]);
    assert.deepEqual([...roundNearest(x).toArray()], [-2, -2, -0, 0, 2, 2, 4, 0, 1, -2]);
    assert.deepEqual([-2.5, 0.5, 1.5, 2.5].map(roundHalfEven), [-2, 0, 2, 2]);
  }));

  it('floor and saturate', () => tidy(() => {
    const x = Tensor.from([-1.5, -0.2, 0, 0.9, 7.7]);
    assert.deepEqual([...roundFloor(x).toArray()], [-2, -1, 0, 0, 7]);
    assert.deepEqual([...saturate(x, -1, 1).toArray()], [-1, -0.20000000298023224, 0, 0.8999999761581421, 1]);
    assert.deepEqual([...roundWith('floor', x).toArray()], [-2, -1, 0, 0, 7]);
  }));

  it('stochastic rounding goes to a neighbour, with P(up) = frac, unbiased over 1e5 seeded samples', () => tidy(() => {
    const n = 100_000;
    for (const v of [0.3, -1.7, 2.25, 5.0, -0.01]) {
      const x = Tensor.full([n], v);
      const r = roundStochastic(x, 1234).toFloat32Array();
      const lo = Math.floor(Math.fround(v));
      let up = 0, sum = 0;
      for (const q of r) {
        assert.ok(q === lo || q === lo + 1, `${q} is not a neighbour of ${v}`);
        if (q === lo + 1) up++;
        sum += q;
      }
      const frac = Math.fround(v) - lo;
      // binomial: sd of the mean <= 0.5 / sqrt(n); allow 5 sd
      const tol = 5 * Math.sqrt(frac * (1 - frac) / n) + 1e-6;
      assert.ok(Math.abs(up / n - frac) <= tol, `P(up) for ${v}: ${up / n} vs ${frac}`);
      assert.ok(Math.abs(sum / n - Math.fround(v)) <= tol, `mean for ${v}: ${sum / n}`);
    }
  }));

  it('stochastic rounding keeps integers and is reproducible from its seed', () => tidy(() => {
    const x = Tensor.from([-3, 0, 4, 1e6]);
    assert.deepEqual([...roundStochastic(x, 9).toArray()], [-3, 0, 4, 1e6]);
    const y = Tensor.from(Float32Array.from({ length: 1000 }, (_, i) => i / 7));
    assert.deepEqual(roundStochastic(y, 5).toArray(), roundStochastic(y, 5).toArray());
    assert.notDeepEqual(roundStochastic(y, 5).toArray(), roundStochastic(y, 6).toArray());
  }));

  it('seed streams are reproducible and resumable', () => {
    const a = new SeedStream(42), b = new SeedStream(42);
    const first = [a.next(), a.next(), a.next()];
    assert.deepEqual([b.next(), b.next(), b.next()], first);
    assert.equal(new Set(first).size, 3);
    const saved = a.state;
    const next = a.next();
    const c = new SeedStream(0);
    c.state = saved;
    assert.equal(c.next(), next);
    c.reset(42);
    assert.equal(c.next(), first[0]);
  });

  it('floor/ceil of log2 are exact at powers of two, also as a tensor op', () => tidy(() => {
    for (let k = -140; k <= 127; k++) {
      const v = 2 ** k;
      assert.equal(floorLog2(v), k);
      assert.equal(ceilLog2(v), k);
      if (k > -126) assert.equal(floorLog2(Math.fround(v * 1.5)), k);
    }
    const xs = [1, 2, 3, 4, 7.999, 8, 0.125, 0.1, 1e-40, 3e38, 0];
    const got = floorLog2Tensor(Tensor.from(xs)).toFloat32Array();
    xs.forEach((v, i) => assert.equal(got[i], v === 0 ? -Infinity : floorLog2(Math.fround(v)), `floorLog2(${v})`));
  }));
});

// Test helpers: a seeded generator, random tensors and a finite-difference gradient check.

import assert from 'node:assert/strict';
import { Tensor, tidy, backward, noGrad, mul, sum, engine } from '../src/index.js';
import { rng } from './rng.js';

export { rng };


export function randomArray(n: number, rand: () => number, lo = -1, hi = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rand();
  return a;
}

export function randomTensor(shape: number[], rand: () => number, lo = -1, hi = 1): Tensor {
  return Tensor.from(randomArray(shape.reduce((p, d) => p * d, 1), rand, lo, hi), shape);
}

/** Max |a-b| / (atol + rtol*|b|) <= 1, element by element, with the first offender in the message. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5, atol = 1e-6, what = ''): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what}: element ${i}: got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/**
 * Check the analytic gradient of f with respect to each input against central finite differences of
 * L = sum(f(inputs) * w) for a fixed random w. Values in f32, differences accumulated in f64.
 */
export function gradcheck(
  f: (...xs: Tensor[]) => Tensor,
  inputs: Tensor[],
  opts: { eps?: number; rtol?: number; atol?: number; seed?: number; maxChecks?: number; check?: boolean[] } = {},
): void {
  const eps = opts.eps ?? 1e-2, rtol = opts.rtol ?? 2e-2, atol = opts.atol ?? 2e-3;
  const rand = rng(opts.seed ?? 7);
  const check = opts.check ?? inputs.map(() => true);
  tidy(() => {
    inputs.forEach((t, i) => { t.requiresGrad = check[i]; t.grad?.dispose(); t.grad = null; });
    const out = f(...inputs);
    const w = randomTensor([...out.shape], rand);
    const wv = w.toFloat32Array();
    backward(sum(mul(out, w)));
    const lossAt = () => noGrad(() => tidy(() => {
      const o = f(...inputs).toFloat32Array();
      let s = 0;
      for (let j = 0; j < o.length; j++) s += o[j] * wv[j];
      return s;
    }));
    inputs.forEach((t, i) => {
      if (!check[i]) return;
      assert.ok(t.grad, `input ${i} received no gradient`);
      const analytic = t.grad!.toFloat32Array();
      const v = t.view() as Float32Array;
      const n = v.length;
      const picks = n <= (opts.maxChecks ?? 64) ? [...Array(n).keys()] : Array.from({ length: opts.maxChecks ?? 64 }, () => Math.floor(rand() * n));
      for (const j of picks) {
        const orig = v[j];
        (t.view() as Float32Array)[j] = orig + eps;
        const up = lossAt();
        (t.view() as Float32Array)[j] = orig - eps;
        const down = lossAt();
        (t.view() as Float32Array)[j] = orig;
        const numeric = (up - down) / (2 * eps);
        if (!(Math.abs(analytic[j] - numeric) <= atol + rtol * Math.abs(numeric))) {
          assert.fail(`input ${i} element ${j}: analytic ${analytic[j]} vs finite difference ${numeric}`);
        }
      }
      t.grad!.dispose();
      t.grad = null;
      t.requiresGrad = false;
    });
  });
}

/**
 * A model's outputs for x and the engine memory its forward pass peaked at, with or without a tape (with one,
 * every intermediate is kept for backward: the most a forward pass can hold).
 */
export function forwardPeak(model: { forward(x: Tensor): Tensor }, x: Tensor, tape: boolean): { out: Float32Array; peak: number } {
  const before = engine.memory.bytesInUse;
  engine.memory.resetPeak();
  const out = tidy(() => (tape ? model.forward(x) : noGrad(() => model.forward(x))).toFloat32Array());
  return { out, peak: engine.memory.peakBytesInUse - before };
}

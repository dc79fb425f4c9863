// The seeded generator all of lowbit's randomness flows from (weight init, shuffling, augmentation,
// dropout seeds): the same seed gives the same numbers, bit for bit, on every platform.

import { Tensor, type Shape } from './tensor.js';

/** xoshiro128** (Blackman & Vigna): 128-bit state, 32-bit outputs, splitmix32-seeded. */
export class Random {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    let x = seed >>> 0;
    for (let i = 0; i < 4; i++) {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
  }

  /** The generator's state, to checkpoint and later resume the same sequence. */
  getState(): number[] {
    return [...this.s];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.some((v) => !Number.isInteger(v) || v < 0 || v > 0xffffffff)) {
      throw new RangeError('lowbit: a Random state is 4 unsigned 32-bit integers');
    }
    this.s.set(state);
  }

  /** Next 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform in [0, 1) with 32 bits of resolution. */
  uniform(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    const u = 1 - this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Fisher-Yates shuffle of 0..n-1. */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    return p;
  }

  /** A tensor of uniform values in [lo, hi). */
  uniformTensor(shape: Shape, lo: number, hi: number): Tensor {
    const t = Tensor.empty(shape);
    const v = t.view() as Float32Array;
    for (let i = 0; i < v.length; i++) v[i] = lo + (hi - lo) * this.uniform();
    return t;
  }

  /** A tensor of normal values with the given standard deviation. */
  normalTensor(shape: Shape, std: number): Tensor {
    const t = Tensor.empty(shape);
    const v = t.view() as Float32Array;
    for (let i = 0; i < v.length; i++) v[i] = std * this.normal();
    return t;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

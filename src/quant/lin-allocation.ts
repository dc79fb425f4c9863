// SQNR-optimal bit allocation under a model-size budget: Lin, Talathi & Annapureddy, "Fixed Point
// Quantization of Deep Convolutional Networks", ICML 2016 (arXiv:1511.06393), sections 3-5.
//
// The paper's model, in its notation:
//   - a uniform quantizer of beta bits has SQNR gamma(dB) = kappa beta (sec. 3: kappa, the "quantization
//     efficiency", is ~6 dB per bit for a uniform input, less for Gaussian-like weights)
//   - quantization noise of the layers adds up at the output: 1/gamma_output = sum_i 1/gamma_i (sec. 4, in linear
//     scale: noise-to-signal ratios add), each term gamma_i = 10^(kappa beta_i / 10)
//   - the optimization (sec. 5): minimize the model size sum_i rho_i beta_i (rho_i = parameters of layer i)
//     subject to sum_i exp(-alpha beta_i) = C, alpha = kappa ln(10) / 10. The Lagrangian gives
//     rho_i = lambda alpha exp(-alpha beta_i) for every i, hence the closed form
//
//         beta_i - beta_j = 10 log10(rho_j / rho_i) / kappa
//
//     (a layer with 4x the parameters gets 10 log10(4) / 6.02 = 1 bit less).
//
// lowbit solves the dual problem the CLI asks (best output SQNR for a given size, the same stationarity
// condition) and generalizes the paper's equal-propagation assumption with a measured per-layer
// noise sensitivity s_i (the output noise-to-signal ratio with layer i alone at beta bits is
// s_i 10^(-kappa beta / 10); s_i = 1 for every layer is the paper's model):
//
//     minimize  sum_i s_i 10^(-kappa beta_i / 10)   subject to   sum_i rho_i beta_i = B
//  => beta_i = c + (10 / kappa) log10(s_i / rho_i),  c = (B - sum_i rho_i (10/kappa) log10(s_i/rho_i)) / sum_i rho_i
//
// which reduces to the paper's equation for equal s_i. Bits are then clamped to [bmin, bmax] and rounded to
// integers: b_i(c) = clamp(round(beta_i(c))), with c the largest value whose integer bits fit the budget
// (found by bisection). Every b_i(c) is non-decreasing in c, so the allocation is monotone in the budget.
//
// The caveat the paper states too: the additive-noise model is an approximation; lowbit measures s_i and
// kappa on the model (sensitivity.ts) rather than assuming them.

import { LowbitError } from '../errors.js';

export interface LinLayer {
  name: string;
  /** rho_i: the layer's parameters (weights). */
  params: number;
  /** s_i: output noise-to-signal per unit of 10^(-kappa beta / 10); 1 = the paper's assumption. */
  sensitivity?: number;
}

/** The unclamped continuous optimum beta_i for a weight-bit budget B (bits summed over every weight). */
export function linContinuousBits(layers: readonly LinLayer[], budgetBits: number, kappa: number): number[] {
  if (!(kappa > 0)) throw new LowbitError(`Lin et al. allocation: kappa (dB per bit) must be > 0, got ${kappa}`);
  const offset = layers.map((l) => (10 / kappa) * Math.log10((l.sensitivity ?? 1) / l.params));
  const total = layers.reduce((s, l) => s + l.params, 0);
  const c = (budgetBits - layers.reduce((s, l, i) => s + l.params * offset[i], 0)) / total;
  return offset.map((o) => c + o);
}

export interface LinOptions {
  kappa: number;
  /** Allowed integer bit widths, ascending (e.g. 2..8). */
  bits: readonly number[];
  /** Size in bytes of an allocation (the exact packed size); must grow with every b_i. */
  size: (bits: readonly number[]) => number;
  /** Largest allowed size in bytes. */
  budgetBytes: number;
}

export interface LinAllocation {
  bits: number[];
  /** The continuous beta_i at the chosen c (before clamping and rounding). */
  continuous: number[];
  bytes: number;
}

/** Integer bits from the closed form, the largest allocation along beta(c) that fits the budget. */
export function linAllocate(layers: readonly LinLayer[], o: LinOptions): LinAllocation {
  const bmin = o.bits[0], bmax = o.bits[o.bits.length - 1];
  const offset = layers.map((l) => (10 / o.kappa) * Math.log10((l.sensitivity ?? 1) / l.params));
  const snap = (v: number) => {
    const r = Math.min(bmax, Math.max(bmin, Math.round(v)));
    // the nearest allowed width at or below r (the list may have gaps, e.g. 2, 4, 8)
    let best = bmin;
    for (const b of o.bits) if (b <= r) best = b;
    return best;
  };
  const at = (c: number) => offset.map((off) => snap(c + off));
  const fits = (c: number) => o.size(at(c)) <= o.budgetBytes;
  let lo = bmin - Math.max(...offset) - 1, hi = bmax - Math.min(...offset) + 1;
  if (!fits(lo)) {
    throw new LowbitError(`budget of ${o.budgetBytes} bytes is below the smallest allocation (every layer at ${bmin} bits: ${o.size(layers.map(() => bmin))} bytes)`);
  }
  if (fits(hi)) lo = hi;
  for (let i = 0; i < 60 && hi - lo > 1e-9; i++) {
    const mid = (lo + hi) / 2;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  const bits = at(lo);
  return { bits, continuous: offset.map((off) => lo + off), bytes: o.size(bits) };
}

/**
 * kappa and s_i from measurements: noise[i][k] = output noise-to-signal ratio with layer i alone at bits[k].
 * Fits log10 noise = log10 s_i - kappa b / 10 with one slope kappa for every layer (least squares).
 */
export function fitNoiseModel(bits: readonly number[], noise: readonly (readonly number[])[]): { kappa: number; sensitivity: number[] } {
  // y_ik = 10 log10 noise_ik = 10 log10 s_i - kappa b_k; common slope, per-layer intercepts (centered regression)
  let num = 0, den = 0;
  const rows = noise.map((row) => row.map((v, k) => ({ b: bits[k], y: 10 * Math.log10(Math.max(v, 1e-30)) })));
  for (const r of rows) {
    const mb = r.reduce((s, p) => s + p.b, 0) / r.length, my = r.reduce((s, p) => s + p.y, 0) / r.length;
    for (const p of r) {
      num += (p.b - mb) * (p.y - my);
      den += (p.b - mb) ** 2;
    }
  }
  const kappa = den > 0 ? -num / den : NaN;
  if (!(kappa > 0)) throw new LowbitError('Lin et al. allocation: the measured output noise does not fall with more bits; cannot fit kappa');
  const sensitivity = rows.map((r) => 10 ** (r.reduce((s, p) => s + (p.y + kappa * p.b), 0) / r.length / 10));
  return { kappa, sensitivity };
}

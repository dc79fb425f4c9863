// Per-channel statistics for input normalization: x' = (x/255 - mean[c]) / std[c].

import { LowbitError } from '../errors.js';
import type { ChannelStats, Split } from './types.js';

/**
 * Commonly used values (computed on the original train splits, population std over all pixels). lowbit's
 * loaders also compute the exact values of the data actually loaded (Dataset.stats); the JPEG copy of
 * CIFAR-10 differs from these in the third decimal.
 */
export const STANDARD_STATS: Readonly<Record<string, ChannelStats>> = {
  mnist: { mean: [0.1307], std: [0.3081] },
  'fashion-mnist': { mean: [0.286], std: [0.353] },
  cifar10: { mean: [0.4914, 0.4822, 0.4465], std: [0.247, 0.2435, 0.2616] },
};

/** Exact per-channel mean and population standard deviation of a split, in [0, 1] pixel units. */
export function channelStats(split: Split): ChannelStats {
  const { channels: C, height: H, width: W, count: N, images } = split;
  const plane = H * W;
  // A histogram per channel makes the sums exact and the loop a single increment per pixel.
  const hist = new Float64Array(C * 256);
  const counts = new Uint32Array(256);
  for (let c = 0; c < C; c++) {
    counts.fill(0);
    for (let i = 0; i < N; i++) {
      const base = (i * C + c) * plane;
      for (let p = base, end = base + plane; p < end; p++) counts[images[p]]++;
      // Flush before a Uint32 count could overflow (2^32 / plane images).
      if ((i & 0xfff) === 0xfff) {
        for (let v = 0; v < 256; v++) hist[c * 256 + v] += counts[v];
        counts.fill(0);
      }
    }
    for (let v = 0; v < 256; v++) hist[c * 256 + v] += counts[v];
  }
  const mean: number[] = [], std: number[] = [];
  for (let c = 0; c < C; c++) {
    let n = 0, s = 0, s2 = 0;
    for (let v = 0; v < 256; v++) {
      const k = hist[c * 256 + v], x = v / 255;
      n += k;
      s += k * x;
      s2 += k * x * x;
    }
    const m = n > 0 ? s / n : 0;
    mean.push(m);
    std.push(n > 0 ? Math.sqrt(Math.max(s2 / n - m * m, 0)) : 0);
  }
  return { mean, std };
}

/**
 * Lookup table u8 -> normalized f32 for each channel: lut[c*256 + v] = (v/255 - mean[c]) / std[c].
 * Without stats, plain scaling to [0, 1].
 */
export function normalizationTable(channels: number, stats?: ChannelStats): Float32Array {
  // The statistics often come from a model file's metadata: damaged ones are an error, not silently 0 or 1.
  if (stats && (!Array.isArray(stats.mean) || !Array.isArray(stats.std) || stats.mean.length !== channels || stats.std.length !== channels)) {
    throw new LowbitError(`normalization statistics for ${stats.mean?.length} channels, the images have ${channels}; use a model trained on images like these`);
  }
  if (stats && [...stats.mean, ...stats.std].some((v) => typeof v !== 'number' || !Number.isFinite(v)) || stats?.std.some((v) => v < 0)) {
    throw new LowbitError(`normalization statistics mean ${JSON.stringify(stats!.mean)}, std ${JSON.stringify(stats!.std)} are not finite numbers with std >= 0; the model's preprocessing metadata is damaged, re-export the model`);
  }
  const lut = new Float32Array(channels * 256);
  for (let c = 0; c < channels; c++) {
    const m = stats ? stats.mean[c] : 0, s = stats && stats.std[c] > 0 ? stats.std[c] : 1;
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - m) / s;
  }
  return lut;
}

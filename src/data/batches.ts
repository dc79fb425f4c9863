// Epochs of mini-batches: seeded shuffling, random crop with zero padding, horizontal flip, normalization,
// into Tensors x f32 [B,C,H,W] and y i32 [B].
//
// Every random choice depends only on (seed, epoch) for the order and (seed, epoch, batch) for the
// augmentation, never on how many batches were drawn before: training resumed at batch k of an epoch sees
// exactly the batches an uninterrupted run would. The per-batch work is one pass over the output through a
// u8 -> f32 lookup table; nothing is allocated per image or pixel.

import { Tensor } from '../tensor/tensor.js';
import { Random } from '../tensor/random.js';
import { mixSeed } from './seed.js';
import { normalizationTable } from './stats.js';
import type { ChannelStats, Split } from './types.js';

export interface Augment {
  /** Mirror left-right with probability 1/2. */
  flip?: boolean;
  /** Pad each side with zero pixels, then crop the original size at a random offset (0 = no crop). */
  pad?: number;
}

/** CIFAR's standard training augmentation (He et al. 2016): pad 4, random 32x32 crop, random flip. */
export const CIFAR_AUGMENT: Augment = { flip: true, pad: 4 };

export interface BatchOptions {
  batchSize: number;
  /** Shuffle the order (seeded by seed and epoch). Default false. */
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  /** Random augmentation; `true` means CIFAR_AUGMENT. Default none. */
  augment?: Augment | boolean;
  /** Per-channel mean/std (pixels in [0, 1]); without it, x = pixel / 255. */
  normalize?: ChannelStats;
  /** Skip a last batch smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Start at this batch of the epoch (to resume mid-epoch). Default 0. */
  startBatch?: number;
}

export interface Batch {
  /** f32 [B, C, H, W], normalized. The caller owns it: dispose it (or create batches inside tidy()). */
  x: Tensor;
  /** i32 [B] class indices. Owned by the caller, as x. */
  y: Tensor;
  /** Which batch of the epoch this is. */
  index: number;
  /** Indices into the split of the images in this batch. */
  indices: Int32Array;
}

export interface SampleTransform {
  flip: Uint8Array;
  dy: Int32Array;
  dx: Int32Array;
}

/** The order of an epoch: 0..count-1, or a permutation seeded by (seed, epoch). */
export function epochOrder(count: number, opts: { shuffle?: boolean; seed?: number; epoch?: number } = {}): Int32Array {
  if (!opts.shuffle) return Int32Array.from({ length: count }, (_, i) => i);
  return new Random(mixSeed(opts.seed ?? 0, opts.epoch ?? 0, 0x0de5)).permutation(count);
}

/** Pixels of one evaluation batch: 500 images of 32x32x3 (MNIST and CIFAR-10 evaluate 500 at a time). */
const EVALUATION_BATCH_PIXELS = 500 * 3 * 32 * 32;

/**
 * How many images to evaluate at once: 500 up to CIFAR-10's size, fewer for larger images (224x224x3: 10) so
 * that a forward pass's activations stay far below WebAssembly's 4 GiB.
 */
export function evaluationBatchSize(split: Pick<Split, 'channels' | 'height' | 'width'>): number {
  return Math.max(1, Math.min(500, Math.floor(EVALUATION_BATCH_PIXELS / (split.channels * split.height * split.width))));
}

export function batchCount(count: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

function resolveAugment(a: Augment | boolean | undefined): Required<Augment> {
  if (a === true) return { flip: CIFAR_AUGMENT.flip!, pad: CIFAR_AUGMENT.pad! };
  if (!a) return { flip: false, pad: 0 };
  return { flip: a.flip ?? false, pad: a.pad ?? 0 };
}

/** The random flips and crop offsets (each in [0, 2*pad]) of batch `index` of an epoch. */
export function batchTransforms(n: number, augment: Augment | boolean | undefined, seed: number, epoch: number, index: number): SampleTransform {
  const a = resolveAugment(augment);
  const t = { flip: new Uint8Array(n), dy: new Int32Array(n).fill(a.pad), dx: new Int32Array(n).fill(a.pad) };
  if (!a.flip && a.pad === 0) return t;
  const r = new Random(mixSeed(seed, epoch, index, 0xa06));
  for (let i = 0; i < n; i++) {
    // Always draw all three, so that the crop offsets do not depend on whether flipping is on.
    const flip = r.uniform() < 0.5, dy = r.int(2 * a.pad + 1), dx = r.int(2 * a.pad + 1);
    t.flip[i] = a.flip && flip ? 1 : 0;
    t.dy[i] = dy;
    t.dx[i] = dx;
  }
  return t;
}

/**
 * Write one image, cropped from its zero-padded version at (dy, dx) and optionally mirrored, through the
 * lookup table: out(c, y, x) = lut[c*256 + img(c, y+dy-pad, x'+dx-pad)] with x' = W-1-x when flipped;
 * pixels outside the image read as 0.
 */
export function transformImage(
  img: Uint8Array, src: number, C: number, H: number, W: number,
  pad: number, dy: number, dx: number, flip: boolean,
  lut: Float32Array, out: Float32Array, dst: number,
): void {
  const oy = dy - pad, ox = dx - pad;
  for (let c = 0; c < C; c++) {
    const l = c * 256, zero = lut[l];
    const plane = src + c * H * W;
    for (let y = 0; y < H; y++) {
      const sy = y + oy, row = dst + (c * H + y) * W;
      if (sy < 0 || sy >= H) {
        out.fill(zero, row, row + W);
        continue;
      }
      const line = plane + sy * W;
      // Columns whose source lies inside the image: sx = x + ox (or W-1-x + ox when flipped) in [0, W).
      const lo = Math.min(W, flip ? Math.max(0, ox) : Math.max(0, -ox)), hi = flip ? Math.min(W, W + ox) : Math.min(W, W - ox);
      if (lo > 0) out.fill(zero, row, row + lo);
      if (hi < W) out.fill(zero, row + Math.max(hi, 0), row + W);
      if (flip) {
        for (let x = lo, sx = line + W - 1 - lo + ox; x < hi; x++, sx--) out[row + x] = lut[l + img[sx]];
      } else {
        for (let x = lo, sx = line + lo + ox; x < hi; x++, sx++) out[row + x] = lut[l + img[sx]];
      }
    }
  }
}

/** The batches of one epoch. Each batch's tensors belong to the caller. */
export function* batches(split: Split, opts: BatchOptions): Generator<Batch> {
  const { batchSize } = opts;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) throw new RangeError(`batchSize must be a positive integer, got ${batchSize}`);
  const seed = opts.seed ?? 0, epoch = opts.epoch ?? 0;
  const { count, channels: C, height: H, width: W, images, labels } = split;
  const pad = resolveAugment(opts.augment).pad;
  const order = epochOrder(count, opts);
  const lut = normalizationTable(C, opts.normalize);
  const size = C * H * W;
  const total = batchCount(count, batchSize, opts.dropLast);
  for (let b = opts.startBatch ?? 0; b < total; b++) {
    const begin = b * batchSize, n = Math.min(batchSize, count - begin);
    const indices = order.subarray(begin, begin + n);
    const t = batchTransforms(n, opts.augment, seed, epoch, b);
    const x = Tensor.empty([n, C, H, W], 'f32');
    const y = Tensor.empty([n], 'i32');
    // Views are taken after both allocations: allocating can grow (and detach) the engine's memory.
    const xv = x.view() as Float32Array, yv = y.view() as Int32Array;
    for (let i = 0; i < n; i++) {
      const k = indices[i];
      transformImage(images, k * size, C, H, W, pad, t.dy[i], t.dx[i], t.flip[i] === 1, lut, xv, i * size);
      yv[i] = labels[k];
    }
    yield { x, y, index: b, indices };
  }
}

const identity = new Map<number, Float32Array>();
function identityTable(C: number): Float32Array {
  let t = identity.get(C);
  if (!t) {
    t = new Float32Array(C * 256);
    for (let i = 0; i < t.length; i++) t[i] = i & 255;
    identity.set(C, t);
  }
  return t;
}

/** One CHW u8 image mirrored and/or cropped from its zero-padded version (the batches' transform, in u8). */
export function augmentImage(img: Uint8Array, C: number, H: number, W: number, t: { flip?: boolean; pad?: number; dy?: number; dx?: number }): Uint8Array {
  const pad = t.pad ?? 0;
  const f = new Float32Array(C * H * W);
  transformImage(img, 0, C, H, W, pad, t.dy ?? pad, t.dx ?? pad, t.flip ?? false, identityTable(C), f, 0);
  return Uint8Array.from(f);
}

// JPEG and PNG images -> CHW u8 at a model's input size.
//
// Decoding is done by the libraries (jpeg-js, pngjs); this file checks the declared size first (a
// 100000x100000 PNG would otherwise allocate 40 GB), converts to RGB or gray, and resizes: bilinear with
// half-pixel centres when enlarging (as PIL / torchvision), exact area averaging when shrinking (each
// output pixel is the mean of the source area it covers). Resizing is separable, per axis.

import { decode as decodeJpeg } from 'jpeg-js';
import { PNG } from 'pngjs';
import { readFileSync } from 'node:fs';
import { LowbitError } from '../errors.js';

/** A decoded image: rows of pixels, `channels` interleaved bytes per pixel (HWC). */
export interface RawImage {
  width: number;
  height: number;
  channels: 1 | 3;
  data: Uint8Array;
}

export type ImageFit = 'stretch' | 'cover';

/** What an image becomes: CHW u8 of this size. `cover` crops the centre to the target's aspect ratio first. */
export interface ImageTarget {
  channels: 1 | 3;
  height: number;
  width: number;
  fit?: ImageFit;
}

/** Images larger than this are refused before decoding (both libraries would allocate width*height*4). */
export const MAX_IMAGE_PIXELS = 64 * 1024 * 1024;

export type ImageKind = 'jpeg' | 'png';

export function detectImageKind(bytes: Uint8Array): ImageKind | null {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47 &&
      bytes[4] === 0x0d && bytes[5] === 0x0a && bytes[6] === 0x1a && bytes[7] === 0x0a) return 'png';
  return null;
}

function failure(source: string, what: string): LowbitError {
  return new LowbitError(`${source}: ${what}; replace or delete the file (expected a valid JPEG or PNG image)`);
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Decode a JPEG or PNG (detected by magic bytes) to RGB, or gray when the file is gray. */
export function decodeImage(bytes: Uint8Array, source = 'image'): RawImage {
  const kind = detectImageKind(bytes);
  if (kind === 'jpeg') return decodeJpegImage(bytes, source);
  if (kind === 'png') return decodePngImage(bytes, source);
  throw failure(source, 'not a JPEG or PNG file (unknown magic bytes)');
}

function decodeJpegImage(bytes: Uint8Array, source: string): RawImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = decodeJpeg(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: MAX_IMAGE_PIXELS / 1e6,
      maxMemoryUsageInMB: 1024,
    });
  } catch (e) {
    throw failure(source, `damaged JPEG (${reason(e)})`);
  }
  if (!(img.width > 0 && img.height > 0) || img.data.length !== img.width * img.height * 3) {
    throw failure(source, `damaged JPEG (decoded to ${img.width}x${img.height})`);
  }
  return { width: img.width, height: img.height, channels: 3, data: img.data };
}

function decodePngImage(bytes: Uint8Array, source: string): RawImage {
  // IHDR must be the first chunk: length 13, then width and height (big-endian).
  if (bytes.length < 33 || String.fromCharCode(bytes[12], bytes[13], bytes[14], bytes[15]) !== 'IHDR') {
    throw failure(source, 'damaged PNG (no IHDR chunk)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const width = view.getUint32(16, false), height = view.getUint32(20, false);
  if (width === 0 || height === 0 || width * height > MAX_IMAGE_PIXELS) {
    throw failure(source, `PNG declares ${width}x${height} pixels (at most ${MAX_IMAGE_PIXELS} allowed)`);
  }
  // The pixel data is deflated, and deflate expands at most ~1032:1: a header declaring more raw bytes than
  // that is a lie, refused before pngjs allocates width*height*4 bytes for it.
  const samples = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[bytes[25]] ?? 4;
  const rawBytes = height * (1 + Math.ceil((width * samples * bytes[24]) / 8));
  if (rawBytes > bytes.length * 1032 + 4096) {
    throw failure(source, `PNG declares ${width}x${height} pixels, more than its ${bytes.length} bytes can hold`);
  }
  let png: PNG & { colorType?: number };
  try {
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    png = PNG.sync.read(buf);
  } catch (e) {
    throw failure(source, `damaged PNG (${reason(e)})`);
  }
  if (png.width !== width || png.height !== height || png.data.length !== width * height * 4) {
    throw failure(source, `damaged PNG (decoded ${png.data.length} bytes for ${width}x${height})`);
  }
  // pngjs always returns 8-bit RGBA (palette expanded, 16-bit and 1/2/4-bit rescaled). Gray stays gray;
  // alpha is dropped, as PIL's convert('RGB') does.
  const gray = png.colorType === 0 || png.colorType === 4;
  const channels = gray ? 1 : 3;
  const n = width * height;
  const rgba = png.data;
  const data = new Uint8Array(n * channels);
  if (gray) {
    for (let i = 0; i < n; i++) data[i] = rgba[4 * i];
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 3) {
      data[j] = rgba[4 * i];
      data[j + 1] = rgba[4 * i + 1];
      data[j + 2] = rgba[4 * i + 2];
    }
  }
  return { width, height, channels, data };
}

/** One axis of a resampling: output pixel o is sum_k weight[o*taps+k] * src[index[o*taps+k]]. */
interface AxisWeights {
  taps: number;
  index: Int32Array;
  weight: Float32Array;
}

/**
 * Weights mapping source pixels [start, start+length) of an axis of `size` pixels onto `out` pixels:
 * bilinear when enlarging (or same size), area average when shrinking.
 */
function axisWeights(size: number, start: number, length: number, out: number): AxisWeights {
  const scale = length / out;
  if (scale <= 1) {
    const index = new Int32Array(out * 2), weight = new Float32Array(out * 2);
    for (let o = 0; o < out; o++) {
      const x = Math.min(Math.max(start + (o + 0.5) * scale - 0.5, 0), size - 1);
      const i0 = Math.floor(x), i1 = Math.min(i0 + 1, size - 1), f = x - i0;
      index[2 * o] = i0;
      index[2 * o + 1] = i1;
      weight[2 * o] = 1 - f;
      weight[2 * o + 1] = f;
    }
    return { taps: 2, index, weight };
  }
  const taps = Math.ceil(scale) + 1;
  const index = new Int32Array(out * taps), weight = new Float32Array(out * taps);
  for (let o = 0; o < out; o++) {
    const lo = start + o * scale, hi = lo + scale;
    const first = Math.floor(lo);
    for (let k = 0; k < taps; k++) {
      const i = first + k;
      const overlap = Math.max(0, Math.min(hi, i + 1) - Math.max(lo, i));
      index[o * taps + k] = Math.min(Math.max(i, 0), size - 1);
      weight[o * taps + k] = overlap / scale;
    }
  }
  return { taps, index, weight };
}

/** Resizes one u8 plane (inH x inW) into another (target height x width), reusing its weights and scratch. */
export type PlaneResizer = (src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number) => void;

export function planeResizer(inH: number, inW: number, target: ImageTarget): PlaneResizer {
  const { height: H, width: W } = target;
  // The source window: the whole image, or its centre at the target's aspect ratio.
  let x0 = 0, y0 = 0, ww = inW, wh = inH;
  if (target.fit === 'cover') {
    if (inW * H > inH * W) {
      ww = (inH * W) / H;
      x0 = (inW - ww) / 2;
    } else {
      wh = (inW * H) / W;
      y0 = (inH - wh) / 2;
    }
  }
  if (ww === W && wh === H && x0 === 0 && y0 === 0) {
    return (src, so, dst, dO) => dst.set(src.subarray(so, so + H * W), dO);
  }
  const ax = axisWeights(inW, x0, ww, W), ay = axisWeights(inH, y0, wh, H);
  const xi = ax.index, xw = ax.weight, xt = ax.taps, yi = ay.index, yw = ay.weight, yt = ay.taps;
  const rows = new Float32Array(inH * W);
  return (src, so, dst, dO) => {
    // Horizontal pass: inH rows of W, then vertical pass into the output plane.
    for (let y = 0; y < inH; y++) {
      const line = so + y * inW, r = y * W;
      for (let x = 0; x < W; x++) {
        let s = 0;
        for (let t = x * xt, end = t + xt; t < end; t++) s += xw[t] * src[line + xi[t]];
        rows[r + x] = s;
      }
    }
    for (let y = 0; y < H; y++) {
      const o = dO + y * W;
      for (let x = 0; x < W; x++) {
        let s = 0;
        for (let t = y * yt, end = t + yt; t < end; t++) s += yw[t] * rows[yi[t] * W + x];
        dst[o + x] = s <= 0 ? 0 : s >= 255 ? 255 : (s + 0.5) | 0;
      }
    }
  };
}

/** Converts CHW u8 images of one shape into another (size and channels), reusing weights and scratch. */
export type ChwConverter = (src: Uint8Array, srcOffset: number, dst: Uint8Array, dstOffset: number) => void;

export function chwConverter(channels: 1 | 3, height: number, width: number, target: ImageTarget): ChwConverter {
  const resize = planeResizer(height, width, target);
  const n = height * width, m = target.height * target.width;
  if (channels === target.channels) {
    return (src, so, dst, dO) => {
      for (let c = 0; c < channels; c++) resize(src, so + c * n, dst, dO + c * m);
    };
  }
  if (channels === 1) {
    // Gray to RGB: resize once, replicate.
    return (src, so, dst, dO) => {
      resize(src, so, dst, dO);
      dst.copyWithin(dO + m, dO, dO + m);
      dst.copyWithin(dO + 2 * m, dO, dO + m);
    };
  }
  const luma = new Uint8Array(n);
  return (src, so, dst, dO) => {
    for (let i = 0; i < n; i++) luma[i] = grayOf(src[so + i], src[so + n + i], src[so + 2 * n + i]);
    resize(luma, 0, dst, dO);
  };
}

/** ITU-R 601 luma, rounded, as PIL's convert('L'). */
function grayOf(r: number, g: number, b: number): number {
  return Math.floor((r * 299 + g * 587 + b * 114 + 500) / 1000);
}

/**
 * Convert a decoded image to CHW u8 of the target size and channels, written into `out` at `offset`
 * (a new array when `out` is omitted).
 */
export function imageToCHW(img: RawImage, target: ImageTarget, out?: Uint8Array, offset = 0): Uint8Array {
  const { width: W, height: H, channels: C } = target;
  const dst = out ?? new Uint8Array(C * H * W);
  if (dst.length < offset + C * H * W) throw new RangeError('imageToCHW: output too small');
  const planes = toPlanes(img, C);
  const resize = planeResizer(img.height, img.width, target);
  const n = img.width * img.height;
  for (let c = 0; c < C; c++) resize(planes, c * n, dst, offset + c * H * W);
  return dst;
}

/** HWC with the image's channels -> CHW with `channels`. */
function toPlanes(img: RawImage, channels: 1 | 3): Uint8Array {
  const n = img.width * img.height, src = img.data;
  const planes = new Uint8Array(channels * n);
  if (img.channels === channels) {
    if (channels === 1) planes.set(src.subarray(0, n));
    else for (let i = 0; i < n; i++) {
      planes[i] = src[3 * i];
      planes[n + i] = src[3 * i + 1];
      planes[2 * n + i] = src[3 * i + 2];
    }
  } else if (channels === 1) {
    for (let i = 0; i < n; i++) planes[i] = grayOf(src[3 * i], src[3 * i + 1], src[3 * i + 2]);
  } else {
    planes.set(src.subarray(0, n), 0);
    planes.set(src.subarray(0, n), n);
    planes.set(src.subarray(0, n), 2 * n);
  }
  return planes;
}

/** Resize one CHW u8 image (and convert its channels when the target's differ). */
export function resizeCHW(src: Uint8Array, channels: 1 | 3, height: number, width: number, target: ImageTarget, out?: Uint8Array, offset = 0): Uint8Array {
  const dst = out ?? new Uint8Array(target.channels * target.height * target.width);
  chwConverter(channels, height, width, target)(src, 0, dst, offset);
  return dst;
}

/** Decode bytes and convert: the whole path from a file's contents to a model input. */
export function decodeImageToCHW(bytes: Uint8Array, source: string, target: ImageTarget, out?: Uint8Array, offset = 0): Uint8Array {
  return imageToCHW(decodeImage(bytes, source), target, out, offset);
}

/** Read an image file and convert it into `out` at `offset` (errors name the file). */
export function readImageFile(path: string, target: ImageTarget, out?: Uint8Array, offset = 0): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new LowbitError(`${path}: cannot read (${reason(e)}); check the path and permissions`);
  }
  return decodeImageToCHW(bytes, path, target, out, offset);
}

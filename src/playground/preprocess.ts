// A drawing made to look like an MNIST digit (LeCun et al.: "the images were centered in a 28x28 image by
// computing the center of mass of the pixels"; each digit was first size-normalized to fit a 20x20 box,
// preserving its aspect ratio, with anti-aliasing). Without this a digit drawn small or off-centre on a
// large canvas is a different picture from every training image, and every model gets it wrong.
// Plain TypeScript with no DOM: the page passes canvas pixels, the tests pass arrays.

/** Ink at or below this (0..255) counts as background when finding the digit's bounding box. */
const INK_THRESHOLD = 16;

/**
 * Weights of area-averaging resampling along one axis: out[t] = sum_s w[t * srcLen + s] * in[s], where w is
 * the overlap of source pixel s with target pixel t (both as intervals), normalized to sum to 1. Works for
 * shrinking (anti-aliased) and enlarging alike.
 */
function areaWeights(srcLen: number, dstLen: number): Float32Array {
  const w = new Float32Array(dstLen * srcLen);
  const scale = srcLen / dstLen; // source pixels per target pixel
  for (let t = 0; t < dstLen; t++) {
    const lo = t * scale, hi = (t + 1) * scale;
    for (let s = Math.floor(lo); s < Math.min(srcLen, Math.ceil(hi)); s++) {
      w[t * srcLen + s] = (Math.min(hi, s + 1) - Math.max(lo, s)) / scale;
    }
  }
  return w;
}

/**
 * The 28x28 MNIST input (ink 0..255, white digit on black) of a drawing given as ink per pixel (row-major,
 * width x height), or null if nothing is drawn. Steps: bounding box of the ink; resample it so that its
 * longer side is 20 pixels (aspect kept); paste it into 28x28 so that its centre of mass is the centre.
 */
export function mnistFromInk(ink: ArrayLike<number>, width: number, height: number): Float32Array | null {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (ink[y * width + x] > INK_THRESHOLD) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
  const s = 20 / Math.max(bw, bh);
  const tw = Math.max(1, Math.round(bw * s)), th = Math.max(1, Math.round(bh * s));
  // Separable area resampling: rows first (bh x tw), then columns (th x tw).
  const wx = areaWeights(bw, tw), wy = areaWeights(bh, th);
  const rows = new Float32Array(bh * tw);
  for (let y = 0; y < bh; y++) {
    const src = (y0 + y) * width + x0;
    for (let t = 0; t < tw; t++) {
      let acc = 0;
      for (let x = 0; x < bw; x++) acc += wx[t * bw + x] * ink[src + x];
      rows[y * tw + t] = acc;
    }
  }
  const box = new Float32Array(th * tw);
  for (let t = 0; t < th; t++) {
    for (let x = 0; x < tw; x++) {
      let acc = 0;
      for (let y = 0; y < bh; y++) acc += wy[t * bh + y] * rows[y * tw + x];
      box[t * tw + x] = acc;
    }
  }
  // Centre of mass of the box, then the offset that puts it at the centre of the 28x28 field (13.5, 13.5).
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < th; y++) for (let x = 0; x < tw; x++) {
    const v = box[y * tw + x];
    mass += v; mx += v * x; my += v * y;
  }
  const ox = Math.round(13.5 - mx / mass), oy = Math.round(13.5 - my / mass);
  const out = new Float32Array(28 * 28);
  for (let y = 0; y < th; y++) {
    const ty = y + oy;
    if (ty < 0 || ty >= 28) continue;
    for (let x = 0; x < tw; x++) {
      const tx = x + ox;
      if (tx >= 0 && tx < 28) out[ty * 28 + tx] = Math.min(255, box[y * tw + x]);
    }
  }
  return out;
}

/** Pixels (0..255, CHW) normalized as the model was trained: (p / 255 - mean[c]) / std[c]. */
export function normalizePixels(pixels: ArrayLike<number>, channels: number, pre: { mean: number[]; std: number[] } | undefined): Float32Array {
  const out = new Float32Array(pixels.length);
  const plane = pixels.length / channels;
  for (let c = 0; c < channels; c++) {
    const m = pre?.mean[c] ?? 0, s = pre && pre.std[c] > 0 ? pre.std[c] : 1;
    for (let i = c * plane; i < (c + 1) * plane; i++) out[i] = (pixels[i] / 255 - m) / s;
  }
  return out;
}

/** Softmax of logits (probabilities for display). */
export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

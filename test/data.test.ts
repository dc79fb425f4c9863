// Datasets: the real MNIST and Fashion-MNIST, image folders built from real CIFAR-10 JPEGs (and a PNG), the
// .tar.gz path with its extraction and binary cache, errors on bad input, normalization statistics, and
// the batch iterator (seeded order, augmentation, resuming mid-epoch).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { create as createTar } from 'tar';
import { LowbitError } from '../src/errors.js';
import { decodeImage, decodeImageToCHW } from '../src/formats/image.js';
import {
  loadDataset, loadCachedDataset, parseDatasetSpec, readArchiveEntries, readDatasetCache, decodeImageFiles, listImageFolder,
  channelStats, normalizationTable, STANDARD_STATS, batches, batchCount, evaluationBatchSize, epochOrder, batchTransforms, augmentImage,
  defaultCifar10Source, FASHION_MNIST_CLASSES, type Dataset, type Split, type ProgressEvent,
} from '../src/data/index.js';
import { rng } from './helpers.js';

const FASHION = '/usr/share/datasets/fashion-mnist';
const target32 = { channels: 3 as const, height: 32, width: 32 };

async function rejectsWith(p: Promise<unknown> | (() => unknown), pattern: RegExp): Promise<void> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    assert.ok(e instanceof LowbitError, `expected a LowbitError, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    assert.match(e.message, pattern);
    return;
  }
  assert.fail(`expected a LowbitError matching ${pattern}`);
}

function checkSplit(s: Split, count: number, c: number, h: number, w: number, classes: number): void {
  assert.equal(s.count, count);
  assert.deepEqual([s.channels, s.height, s.width], [c, h, w]);
  assert.equal(s.images.length, count * c * h * w);
  assert.equal(s.labels.length, count);
  let max = 0;
  for (const l of s.labels) max = Math.max(max, l);
  assert.equal(max, classes - 1);
}

describe('MNIST and Fashion-MNIST', () => {
  it('mnist: 60000/10000 28x28 images, known first labels, standard statistics', async () => {
    const ds = await loadDataset('mnist');
    assert.equal(ds.name, 'mnist');
    assert.equal(ds.classes.length, 10);
    checkSplit(ds.train, 60000, 1, 28, 28, 10);
    checkSplit(ds.test, 10000, 1, 28, 28, 10);
    assert.equal(ds.train.labels[0], 5);
    assert.equal(ds.test.labels[0], 7);
    assert.ok(Math.abs(ds.stats.mean[0] - STANDARD_STATS.mnist.mean[0]) < 1e-3);
    assert.ok(Math.abs(ds.stats.std[0] - STANDARD_STATS.mnist.std[0]) < 1e-3);
  });

  it('fashion-mnist by name, by folder and by name:folder (gzip IDX from the Debian package)', async () => {
    for (const spec of ['fashion-mnist', FASHION, `fashion-mnist:${FASHION}`]) {
      const ds = await loadDataset(spec);
      assert.equal(ds.name, 'fashion-mnist');
      assert.deepEqual(ds.classes, FASHION_MNIST_CLASSES);
      checkSplit(ds.train, 60000, 1, 28, 28, 10);
      checkSplit(ds.test, 10000, 1, 28, 28, 10);
      assert.equal(ds.train.labels[0], 9);
      assert.equal(ds.test.labels[0], 9);
      assert.ok(Math.abs(ds.stats.mean[0] - STANDARD_STATS['fashion-mnist'].mean[0]) < 1e-3);
    }
  });

  it('resizes and converts on request (mnist at 32x32, 3 channels)', async () => {
    const ds = await loadDataset('mnist', { size: 32, channels: 3 });
    checkSplit(ds.test, 10000, 3, 32, 32, 10);
    // Gray replicated to three equal planes.
    const img = ds.test.images.subarray(0, 3 * 1024);
    assert.deepEqual(img.subarray(0, 1024), img.subarray(1024, 2048));
  });

  it('parses dataset specs', () => {
    assert.deepEqual(parseDatasetSpec('cifar10'), { name: 'cifar10' });
    assert.deepEqual(parseDatasetSpec('cifar10:/x/y'), { name: 'cifar10', path: '/x/y' });
    assert.deepEqual(parseDatasetSpec('/data/flowers'), { path: '/data/flowers' });
    assert.deepEqual(parseDatasetSpec('c:/data'), { path: 'c:/data' });
  });

  it('unknown names and missing paths are clear errors', async () => {
    await rejectsWith(loadDataset('imagenet'), /neither a known name nor an existing path.*mnist, fashion-mnist, cifar10/);
    await rejectsWith(loadDataset('fashion-mnist:/nonexistent'), /\/nonexistent: no IDX dataset/);
    await rejectsWith(loadDataset('cifar10:/nonexistent.tar.gz'), /CIFAR-10 not found at \/nonexistent.tar.gz/);
  });
});

describe('CIFAR-10 (JPEG copy), only when already decoded into the cache', () => {
  // A first decode takes tens of seconds, so the suite only checks a cached copy (made by a first load,
  // e.g. `node dist/src/data/load-check.js cifar10`).
  const cached = loadCachedDataset('cifar10');
  it('50000/10000 32x32 RGB images, the ten classes in order, balanced labels', { skip: cached ? false : 'not cached' }, async () => {
    const ds = cached!;
    assert.equal(ds.name, 'cifar10');
    assert.deepEqual(ds.classes, ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    checkSplit(ds.train, 50000, 3, 32, 32, 10);
    checkSplit(ds.test, 10000, 3, 32, 32, 10);
    const perClass = new Array(10).fill(0);
    for (const l of ds.test.labels) perClass[l]++;
    assert.deepEqual(perClass, new Array(10).fill(1000));
    STANDARD_STATS.cifar10.mean.forEach((m, c) => assert.ok(Math.abs(ds.stats.mean[c] - m) < 0.01));
    // loadDataset returns the same cached data.
    const again = await loadDataset('cifar10');
    assert.equal(again.fromCache, true);
    assert.deepEqual(again.test.images.subarray(0, 3072), ds.test.images.subarray(0, 3072));
  });
});

describe('image folders (real CIFAR-10 JPEGs and a PNG)', () => {
  let tmp: string, root: string, cache: string, pngPixels: Uint8Array;
  const classes = ['cat', 'ship'];

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'lowbit-data-'));
    root = join(tmp, 'pets');
    cache = join(tmp, 'cache');
    // 20 train and 5 test images for each of two classes, out of the shared archive.
    const wanted = /^cifar10\/(train|test)\/(cat|ship)\/00[01]\d\.jpg$/;
    const entries = await readArchiveEntries(defaultCifar10Source(), (p) => wanted.test(p));
    for (const [p, bytes] of entries) {
      const [, split, cls, file] = p.split('/');
      if (split === 'test' && Number(file.slice(0, 4)) >= 5) continue;
      mkdirSync(join(root, split, cls), { recursive: true });
      writeFileSync(join(root, split, cls, file), bytes);
    }
    // Plus a lossless PNG of another real image, encoded with pngjs.
    const src = decodeImage(entries.get('cifar10/test/cat/0019.jpg')!, 'cat/0019.jpg');
    const png = new PNG({ width: 32, height: 32 });
    for (let i = 0; i < 1024; i++) png.data.set([src.data[3 * i], src.data[3 * i + 1], src.data[3 * i + 2], 255], 4 * i);
    writeFileSync(join(root, 'train', 'cat', 'extra.png'), PNG.sync.write(png, { colorType: 2 }));
    pngPixels = decodeImageToCHW(entries.get('cifar10/test/cat/0019.jpg')!, 'x', target32);
  });
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('loads <root>/{train,test}/<class>/ with labels in class-folder order, then from the cache', async () => {
    const ds = await loadDataset(root, { cacheDir: cache, workers: 0 });
    assert.equal(ds.name, 'pets');
    assert.deepEqual(ds.classes, classes);
    checkSplit(ds.train, 41, 3, 32, 32, 2);
    checkSplit(ds.test, 10, 3, 32, 32, 2);
    assert.equal(ds.fromCache, undefined);
    // Files in code-point order: cat/0000.jpg .. cat/0019.jpg, cat/extra.png, ship/0000.jpg ..
    assert.deepEqual(Array.from(ds.train.labels), [...Array(21).fill(0), ...Array(20).fill(1)]);
    const first = decodeImageToCHW(readFileSync(join(root, 'train', 'cat', '0000.jpg')), 'x', target32);
    assert.deepEqual(ds.train.images.subarray(0, 3072), first);
    assert.deepEqual(ds.train.images.subarray(20 * 3072, 21 * 3072), pngPixels);
    const again = await loadDataset(root, { cacheDir: cache });
    assert.equal(again.fromCache, true);
    assert.deepEqual(again.train.images, ds.train.images);
    assert.deepEqual(Array.from(again.test.labels), Array.from(ds.test.labels));
    assert.deepEqual(again.stats, ds.stats);
    assert.deepEqual(again.classes, classes);
  });

  it('decodes the same bytes on worker threads as on the calling thread, and reports progress', async () => {
    const { train } = listImageFolder(root);
    const events: ProgressEvent[] = [];
    const onWorkers = await decodeImageFiles(train.files, target32, { workers: 2, progress: { update: (e) => events.push(e), stop() {} } });
    const inline = await decodeImageFiles(train.files, target32, { workers: 0 });
    assert.deepEqual(onWorkers, inline);
    assert.ok(events.length > 0);
    assert.deepEqual(events.at(-1), { phase: 'decode', done: 41, total: 41, unit: 'images' });
  });

  it('resizes to the requested size and channels (a separate cache entry)', async () => {
    const ds = await loadDataset(root, { cacheDir: cache, size: [16, 24], channels: 1 });
    checkSplit(ds.train, 41, 1, 16, 24, 2);
    assert.equal(ds.fromCache, undefined);
    assert.equal(ds.stats.mean.length, 1);
    assert.equal(readdirSync(join(cache, 'datasets')).length, 2);
  });

  it('<root>/<class>/ holds out a deterministic, stratified test split', async () => {
    const flat = join(tmp, 'flat');
    cpSync(join(root, 'train'), flat, { recursive: true });
    const a = listImageFolder(flat), b = listImageFolder(flat), c = listImageFolder(flat, { splitSeed: 1 });
    assert.equal(a.layout, 'classes');
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.test.files, c.test.files);
    // round(21 * 0.2) = 4 cats and round(20 * 0.2) = 4 ships held out; the splits are disjoint and complete.
    assert.equal(a.test.files.length, 8);
    assert.equal(a.train.files.length, 33);
    assert.deepEqual([...a.test.labels].filter((l) => l === 0).length, 4);
    const all = [...a.train.files, ...a.test.files].sort();
    assert.equal(new Set(all).size, 41);
    const ds = await loadDataset(flat, { cache: false, testFraction: 0.5 });
    assert.equal(ds.test.count, 21);
  });

  it('loads a .tar.gz: extracted once into the cache, then decoded from the binary cache', async () => {
    const archive = join(tmp, 'pets-archive.tgz');
    await createTar({ gzip: true, file: archive, cwd: tmp }, ['pets']);
    const cacheB = join(tmp, 'cache-tgz');
    const ds = await loadDataset(archive, { cacheDir: cacheB });
    assert.equal(ds.name, 'pets');
    const folder = await loadDataset(root, { cache: false });
    assert.deepEqual(ds.train.images, folder.train.images);
    assert.deepEqual(Array.from(ds.test.labels), Array.from(folder.test.labels));
    const extracted = readdirSync(join(cacheB, 'extracted'));
    assert.equal(extracted.length, 1);
    assert.ok(existsSync(join(cacheB, 'extracted', extracted[0], '.lowbit-complete')));
    // The second load needs neither the extraction nor any decoding.
    rmSync(join(cacheB, 'extracted'), { recursive: true });
    const cached = await loadDataset(archive, { cacheDir: cacheB });
    assert.equal(cached.fromCache, true);
    assert.deepEqual(cached.train.images, ds.train.images);
    assert.ok(!existsSync(join(cacheB, 'extracted')));
  });

  it('LOWBIT_CACHE moves the cache; LOWBIT_CIFAR10 moves the cifar10 source', async () => {
    const saved = { cache: process.env.LOWBIT_CACHE, cifar: process.env.LOWBIT_CIFAR10 };
    try {
      process.env.LOWBIT_CACHE = join(tmp, 'env-cache');
      await loadDataset(root);
      assert.equal(readdirSync(join(tmp, 'env-cache', 'datasets')).length, 1);
      process.env.LOWBIT_CIFAR10 = join(tmp, 'nowhere.tar.gz');
      await rejectsWith(loadDataset('cifar10'), /CIFAR-10 not found at .*nowhere\.tar\.gz.*LOWBIT_CIFAR10/);
      // A folder whose classes are not CIFAR-10's is refused under that name.
      process.env.LOWBIT_CIFAR10 = root;
      await rejectsWith(loadDataset('cifar10'), /classes cat, ship are not CIFAR-10's/);
    } finally {
      for (const [k, v] of [['LOWBIT_CACHE', saved.cache], ['LOWBIT_CIFAR10', saved.cifar]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });

  it('a damaged cache file is detected and replaced', async () => {
    const cacheC = join(tmp, 'cache-bad');
    await loadDataset(root, { cacheDir: cacheC });
    const file = join(cacheC, 'datasets', readdirSync(join(cacheC, 'datasets'))[0]);
    const good = readFileSync(file);
    const key = (JSON.parse(good.subarray(16, 16 + good.readUInt32LE(8)).toString()) as { key: string }).key;
    assert.equal(readDatasetCache(file, key)?.train.count, 41);
    assert.equal(readDatasetCache(file, 'another key'), null);
    const flipped = Buffer.from(good);
    flipped[good.length - 5000] ^= 1;
    writeFileSync(file, flipped);
    await rejectsWith(() => readDatasetCache(file, key), /damaged dataset cache \(checksum mismatch\)/);
    writeFileSync(file, good.subarray(0, good.length - 1));
    await rejectsWith(() => readDatasetCache(file, key), /damaged dataset cache/);
    writeFileSync(file, good.subarray(0, 30));
    await rejectsWith(() => readDatasetCache(file, key), /damaged dataset cache/);
    // Any bit flip is detected, or harmless (in the alignment gaps between sections).
    writeFileSync(file, good);
    const intact = readDatasetCache(file, key)!;
    const r = rng(9);
    for (let k = 0; k < 300; k++) {
      const b = Buffer.from(good);
      b[Math.floor(r() * (k % 2 ? 400 : b.length))] ^= 1 << Math.floor(r() * 8);
      writeFileSync(file, b);
      try {
        const got = readDatasetCache(file, key);
        assert.ok(got, 'a flipped file was taken for another key');
        assert.deepEqual(got.train.images, intact.train.images);
        assert.deepEqual(got.test.labels, intact.test.labels);
      } catch (e) {
        assert.ok(e instanceof LowbitError, String(e));
      }
    }
    const reloaded = await loadDataset(root, { cacheDir: cacheC });
    assert.equal(reloaded.fromCache, undefined);
    assert.deepEqual(readFileSync(file), good);
  });

  it('bad folders are clear errors naming the place', async () => {
    const bad = join(tmp, 'bad');
    mkdirSync(bad);
    await rejectsWith(loadDataset(bad), /bad: no dataset found/);
    writeFileSync(join(bad, 'a.jpg'), readFileSync(join(root, 'train', 'cat', '0000.jpg')));
    await rejectsWith(loadDataset(bad, { cache: false }), /no class folders.*holds 1 images directly/);
    mkdirSync(join(bad, 'cat'));
    writeFileSync(join(bad, 'cat', 'a.jpg'), readFileSync(join(root, 'train', 'cat', '0000.jpg')));
    await rejectsWith(loadDataset(bad, { cache: false }), /only one class folder \(cat\)/);
    mkdirSync(join(bad, 'dog'));
    await rejectsWith(loadDataset(bad, { cache: false }), /bad\/dog: class folder without \.jpg\/\.jpeg\/\.png images/);
    const corrupt = readFileSync(join(root, 'train', 'ship', '0000.jpg')).subarray(0, 200);
    writeFileSync(join(bad, 'dog', 'broken.jpg'), corrupt);
    await rejectsWith(loadDataset(bad, { cache: false }), /dog\/broken\.jpg: damaged JPEG/);
    // Errors raised on a worker thread arrive as the same LowbitError.
    const files = [...Array(3)].map(() => join(bad, 'cat', 'a.jpg')).concat(join(bad, 'dog', 'broken.jpg'));
    await rejectsWith(decodeImageFiles(files, target32, { workers: 2 }), /broken\.jpg: damaged JPEG/);
    const half = join(tmp, 'half');
    mkdirSync(join(half, 'train', 'cat'), { recursive: true });
    await rejectsWith(loadDataset(half), /has train\/ but no test\//);
    const notTar = join(tmp, 'x.tar.gz');
    writeFileSync(notTar, 'not an archive');
    await rejectsWith(loadDataset(notTar, { cacheDir: join(tmp, 'cache-x') }), /x\.tar\.gz: cannot extract/);
  });
});

/** A small split of random images for the batching tests. */
function randomSplit(count: number, C: number, H: number, W: number, seed: number): Split {
  const r = rng(seed);
  return {
    images: Uint8Array.from({ length: count * C * H * W }, () => Math.floor(r() * 256)),
    labels: Uint8Array.from({ length: count }, (_, i) => i % 10),
    count, channels: C, height: H, width: W,
  };
}

function collect(split: Split, opts: Parameters<typeof batches>[1]): { x: Float32Array[]; y: Int32Array[]; idx: Int32Array[] } {
  const out = { x: [] as Float32Array[], y: [] as Int32Array[], idx: [] as Int32Array[] };
  for (const b of batches(split, opts)) {
    out.x.push(b.x.toArray() as Float32Array);
    out.y.push(b.y.toArray() as Int32Array);
    out.idx.push(b.indices.slice());
    b.x.dispose();
    b.y.dispose();
  }
  return out;
}

describe('normalization, augmentation, batching', () => {
  const split = randomSplit(103, 3, 8, 6, 1);

  it('channel statistics are the exact per-channel mean and population std', () => {
    const s = channelStats(split);
    const plane = 48;
    for (let c = 0; c < 3; c++) {
      const v: number[] = [];
      for (let i = 0; i < split.count; i++) for (let p = 0; p < plane; p++) v.push(split.images[(i * 3 + c) * plane + p] / 255);
      const m = v.reduce((a, b) => a + b, 0) / v.length;
      const sd = Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length);
      assert.ok(Math.abs(s.mean[c] - m) < 1e-12 && Math.abs(s.std[c] - sd) < 1e-12);
    }
  });

  it('batches hold normalized CHW f32 and i32 labels; normalized data has mean 0 and std 1', () => {
    const stats = channelStats(split);
    const { x, y, idx } = collect(split, { batchSize: 32, normalize: stats });
    assert.deepEqual(x.map((a) => a.length), [32, 32, 32, 7].map((n) => n * 144));
    assert.deepEqual(Array.from(idx[0].subarray(0, 3)), [0, 1, 2]);
    const lut = normalizationTable(3, stats);
    assert.equal(x[0][0], lut[split.images[0]]);
    assert.equal(x[1][48 + 5], lut[256 + split.images[32 * 144 + 48 + 5]]);
    assert.ok(Math.abs(x[0][0] - (split.images[0] / 255 - stats.mean[0]) / stats.std[0]) < 1e-6);
    assert.deepEqual(Array.from(y[3]), Array.from(split.labels.subarray(96)).map(Number));
    for (let c = 0; c < 3; c++) {
      let n = 0, s = 0, s2 = 0;
      x.forEach((a) => {
        for (let i = 0; i < a.length / 144; i++) for (let p = 0; p < 48; p++) {
          const v = a[i * 144 + c * 48 + p];
          n++;
          s += v;
          s2 += v * v;
        }
      });
      assert.ok(Math.abs(s / n) < 1e-5 && Math.abs(s2 / n - 1) < 1e-4, `channel ${c}: mean ${s / n}, var ${s2 / n}`);
    }
    // dropLast drops the partial batch; without stats, x is pixel / 255.
    assert.equal(batchCount(103, 32, true), 3);
    const plain = collect(split, { batchSize: 50, dropLast: true });
    assert.equal(plain.x.length, 2);
    assert.ok(Math.abs(plain.x[1][7] - split.images[50 * 144 + 7] / 255) < 1e-7);
  });

  it('evaluation batches: 500 images up to CIFAR-10\'s size, fewer for larger images, at least 1', () => {
    const size = (channels: number, height: number, width = height) => evaluationBatchSize({ channels, height, width });
    assert.equal(size(1, 28), 500);
    assert.equal(size(3, 32), 500);
    assert.equal(size(3, 64), 125);
    assert.equal(size(3, 224), 10);
    assert.equal(size(3, 4000, 3000), 1);
  });

  it('the shuffled order depends only on (seed, epoch)', () => {
    const a = epochOrder(1000, { shuffle: true, seed: 3, epoch: 2 });
    assert.deepEqual(a, epochOrder(1000, { shuffle: true, seed: 3, epoch: 2 }));
    assert.notDeepEqual(a, epochOrder(1000, { shuffle: true, seed: 3, epoch: 3 }));
    assert.notDeepEqual(a, epochOrder(1000, { shuffle: true, seed: 4, epoch: 2 }));
    assert.deepEqual([...a].sort((p, q) => p - q), Array.from({ length: 1000 }, (_, i) => i));
    assert.deepEqual(epochOrder(5), Int32Array.from([0, 1, 2, 3, 4]));
  });

  it('resuming at batch k yields exactly the batches of an uninterrupted epoch, augmentation included', () => {
    const opts = { batchSize: 16, shuffle: true, seed: 11, epoch: 4, augment: { flip: true, pad: 2 } };
    const full = collect(split, opts);
    const resumed = collect(split, { ...opts, startBatch: 3 });
    assert.equal(resumed.x.length, full.x.length - 3);
    resumed.x.forEach((x, i) => assert.deepEqual(x, full.x[i + 3]));
    resumed.y.forEach((y, i) => assert.deepEqual(y, full.y[i + 3]));
    const again = collect(split, opts);
    assert.deepEqual(again.x, full.x);
    const nextEpoch = collect(split, { ...opts, epoch: 5 });
    assert.notDeepEqual(nextEpoch.idx, full.idx);
  });

  it('augmented batches are the flips and padded crops given by batchTransforms', () => {
    const augment = { flip: true, pad: 3 };
    const b = batches(split, { batchSize: 20, shuffle: true, seed: 5, epoch: 1, augment }).next().value!;
    const x = b.x.toArray() as Float32Array;
    const t = batchTransforms(20, augment, 5, 1, 0);
    assert.ok(t.flip.some((f) => f === 1) && t.flip.some((f) => f === 0));
    assert.ok(t.dx.every((d) => d >= 0 && d <= 6));
    for (let i = 0; i < 20; i++) {
      const k = b.indices[i];
      const img = split.images.subarray(k * 144, (k + 1) * 144);
      const want = augmentImage(img, 3, 8, 6, { flip: t.flip[i] === 1, pad: 3, dy: t.dy[i], dx: t.dx[i] });
      assert.deepEqual(Array.from(x.subarray(i * 144, (i + 1) * 144), (v) => Math.round(v * 255)), Array.from(want));
    }
    b.x.dispose();
    b.y.dispose();
  });

  it('flip twice is the identity; a crop with pad 0, or centred, is the identity; an offset crop shifts in zeros', () => {
    const img = split.images.subarray(0, 144);
    const once = augmentImage(img, 3, 8, 6, { flip: true });
    assert.notDeepEqual(once, img);
    assert.equal(once[0], img[5]);
    assert.deepEqual(augmentImage(once, 3, 8, 6, { flip: true }), img);
    assert.deepEqual(augmentImage(img, 3, 8, 6, { pad: 0 }), img);
    assert.deepEqual(augmentImage(img, 3, 8, 6, { pad: 4, dy: 4, dx: 4 }), img);
    // Against the definition, for every offset and both flips (pads up to wider than the image).
    for (const pad of [1, 3, 7]) for (let dy = 0; dy <= 2 * pad; dy++) for (let dx = 0; dx <= 2 * pad; dx++) for (const flip of [false, true]) {
      const got = augmentImage(img, 3, 8, 6, { pad, dy, dx, flip });
      for (let c = 0; c < 3; c++) for (let y = 0; y < 8; y++) for (let x = 0; x < 6; x++) {
        const sy = y + dy - pad, sx = (flip ? 5 - x : x) + dx - pad;
        const want = sy < 0 || sy >= 8 || sx < 0 || sx >= 6 ? 0 : img[c * 48 + sy * 6 + sx];
        assert.equal(got[c * 48 + y * 6 + x], want, `pad ${pad} dy ${dy} dx ${dx} flip ${flip} at ${c},${y},${x}`);
      }
    }
    // dy = 0, dx = 2*pad: rows move down by pad (zeros on top), columns move left by pad (zeros on the right).
    const shifted = augmentImage(img, 3, 8, 6, { pad: 2, dy: 0, dx: 4 });
    for (let c = 0; c < 3; c++) for (let y = 0; y < 8; y++) for (let x = 0; x < 6; x++) {
      const sy = y - 2, sx = x + 2;
      const want = sy < 0 || sx >= 6 ? 0 : img[c * 48 + sy * 6 + sx];
      assert.equal(shifted[c * 48 + y * 6 + x], want);
    }
  });

  it('batching a real dataset: labels match, tensors have the right shapes', async () => {
    const ds: Dataset = await loadDataset('mnist');
    const it = batches(ds.test, { batchSize: 64, normalize: ds.stats });
    const b = it.next().value!;
    assert.deepEqual(b.x.shape, [64, 1, 28, 28]);
    assert.equal(b.x.dtype, 'f32');
    assert.deepEqual(b.y.shape, [64]);
    assert.equal(b.y.dtype, 'i32');
    assert.equal((b.y.toArray() as Int32Array)[0], 7);
    b.x.dispose();
    b.y.dispose();
    assert.equal(batchCount(ds.test.count, 64), 157);
  });
});

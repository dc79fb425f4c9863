// Valid files to mutate: some written by lowbit, some by other tools (MNIST and Fashion-MNIST IDX files as
// distributed, ONNX models of the ONNX backend conformance suite, CIFAR-10 JPEGs, PNGs written by pngjs).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { defaultCifar10Source, defaultFashionMnistDir, defaultMnistDir } from '../../src/data/index.js';
import { readArchiveEntries } from '../../src/data/index.js';
import { encodeIdx, parseIdx } from '../../src/formats/idx.js';
import { encodeCifarBatch, CIFAR_RECORD_BYTES } from '../../src/formats/cifar.js';
import { decodeImage, imageToCHW } from '../../src/formats/image.js';
import { encodeModelFile } from '../../src/formats/lowbit.js';
import { exportOnnx } from '../../src/formats/onnx/export.js';
import { CONFORMANCE_DIR } from '../../src/formats/onnx/conformance.js';
import { encodeQuantizedModel } from '../../src/quant/load.js';
import { quantizePostTraining } from '../../src/quant/ptq.js';
import { disposeQuantized } from '../../src/quant/quantized.js';
import { describeModel } from '../../src/runtime/index.js';
import { normsOf } from '../../src/runtime/plan.js';
import { encodeRuntimeModel } from '../../src/runtime/file.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { buildModel, modelHeader, type LoadedModel } from '../../src/zoo/index.js';
import type { Seed } from './mutate.js';

/** Where a .lowbit container's sections start: magic, header length, header, data area, each tensor. */
export function lowbitBoundaries(bytes: Uint8Array): number[] {
  const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  const header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + h)).toString('utf8')) as { tensors: { offset: number; byteLength: number }[] };
  const start = Math.ceil((12 + h) / 64) * 64;
  return [0, 7, 8, 12, 12 + h, start, ...header.tensors.flatMap((t) => [start + t.offset, start + t.offset + t.byteLength]), bytes.length];
}

function idxSeed(name: string, bytes: Uint8Array): Seed {
  const rank = bytes[3];
  const head = 4 + 4 * rank;
  const dims = Array.from({ length: rank }, (_, i) => ({ at: 4 + 4 * i, bigEndian: true }));
  return { name, bytes, boundaries: [0, 2, 3, 4, ...dims.map((d) => d.at + 4), head, head + 1, bytes.length - 1, bytes.length], sizeFields: dims };
}

function gzSeed(name: string, bytes: Uint8Array): Seed {
  return { name, bytes, boundaries: [0, 2, 10, 20, 100, bytes.length >> 1, bytes.length - 8, bytes.length - 4, bytes.length] };
}

/** IDX seeds: the real MNIST labels file, small files lowbit encodes from MNIST images, Fashion-MNIST .gz as shipped. */
export function idxSeeds(): Seed[] {
  const mnist = defaultMnistDir(), fashion = defaultFashionMnistDir();
  const labels = readFileSync(join(mnist, 't10k-labels-idx1-ubyte'));
  const images = parseIdx(readFileSync(join(mnist, 't10k-images-idx3-ubyte')));
  const few = encodeIdx({ dtype: 'u8', dims: [8, 28, 28], data: images.data.subarray(0, 8 * 784) });
  const floats = encodeIdx({ dtype: 'f32', dims: [4, 3, 5], data: Float32Array.from({ length: 60 }, (_, i) => i / 7) });
  const seeds = [idxSeed('mnist t10k-labels (as shipped)', labels), idxSeed('8 MNIST images (lowbit)', few), idxSeed('f32 [4,3,5] (lowbit)', floats)];
  seeds.push(gzSeed('8 MNIST images .gz (lowbit)', gzipSync(few)));
  for (const f of ['t10k-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz']) {
    if (existsSync(join(fashion, f))) seeds.push(gzSeed(`fashion-mnist ${f} (as shipped)`, readFileSync(join(fashion, f))));
  }
  return seeds;
}

/** A few CIFAR-10 JPEGs from the dataset archive (written by other tools). */
let jpegs: Map<string, Buffer> | null = null;
export async function cifarJpegs(): Promise<Map<string, Buffer>> {
  if (!jpegs) {
    const want = new Set(['cat/0001.jpg', 'ship/0002.jpg', 'frog/0003.jpg', 'truck/0004.jpg', 'airplane/0005.jpg', 'dog/0006.jpg']);
    jpegs = await readArchiveEntries(defaultCifar10Source(), (p) => p.includes('/test/') && [...want].some((w) => p.endsWith(w)));
  }
  return jpegs;
}

/** CIFAR-10 binary batches made of real CIFAR-10 pixels (the official batches are not on this machine). */
export async function cifarSeeds(): Promise<Seed[]> {
  const imgs = [...(await cifarJpegs()).values()].map((b) => imageToCHW(decodeImage(b), { channels: 3, height: 32, width: 32 }));
  const images = new Uint8Array(imgs.length * 3072);
  imgs.forEach((im, i) => images.set(im, i * 3072));
  const bytes = encodeCifarBatch(images, imgs.map((_, i) => i % 10));
  return [{ name: `${imgs.length} CIFAR-10 records`, bytes, boundaries: imgs.flatMap((_, i) => [i * CIFAR_RECORD_BYTES, i * CIFAR_RECORD_BYTES + 1]).concat(bytes.length) }];
}

function pngBytes(width: number, height: number, rgba: (i: number) => [number, number, number, number], colorType: 0 | 2 | 6): Uint8Array {
  const png = new PNG({ width, height, colorType, inputColorType: 6, inputHasAlpha: true });
  for (let i = 0; i < width * height; i++) png.data.set(rgba(i), 4 * i);
  return PNG.sync.write(png, { colorType });
}

/** Chunk boundaries of a PNG: signature, then each chunk's length, type, data and CRC. */
function pngBoundaries(b: Uint8Array): { boundaries: number[]; sizeFields: { at: number; bigEndian: boolean }[] } {
  const boundaries = [0, 8], sizeFields = [{ at: 16, bigEndian: true }, { at: 20, bigEndian: true }];
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 8; at + 8 <= b.length; ) {
    const len = view.getUint32(at, false);
    sizeFields.push({ at, bigEndian: true });
    boundaries.push(at + 4, at + 8, at + 8 + len, at + 12 + len);
    at += 12 + len;
  }
  return { boundaries, sizeFields };
}

function jpegBoundaries(b: Uint8Array): number[] {
  const out = [0, 2];
  for (let i = 2; i + 1 < b.length; i++) if (b[i] === 0xff && b[i + 1] !== 0 && b[i + 1] !== 0xff) out.push(i, i + 2, i + 4);
  return out.concat(b.length);
}

export async function imageSeeds(): Promise<Seed[]> {
  const seeds: Seed[] = [];
  for (const [name, b] of await cifarJpegs()) seeds.push({ name: `CIFAR-10 ${name} (as published)`, bytes: b, boundaries: jpegBoundaries(b) });
  const digit = parseIdx(readFileSync(join(defaultMnistDir(), 't10k-images-idx3-ubyte'))).data.subarray(0, 784);
  const gray = pngBytes(28, 28, (i) => [digit[i], digit[i], digit[i], 255], 0);
  const color = pngBytes(16, 12, (i) => [i % 256, (7 * i) % 256, (13 * i) % 256, 200], 6);
  for (const [name, b] of [['MNIST digit gray PNG (pngjs)', gray], ['RGBA PNG 16x12 (pngjs)', color]] as const) seeds.push({ name, bytes: b, ...pngBoundaries(b) });
  return seeds;
}

/** A small float model and its files: the .lowbit model, an int8 quantized model, its packed file and ONNX. */
export interface ModelSeeds {
  float: Seed[];
  quantized: Seed[];
  packed: Seed[];
  onnx: Seed[];
}

function calibration(config: { inChannels: number; inputSize: number }) {
  const x = Tensor.from(Float32Array.from({ length: 8 * config.inChannels * config.inputSize ** 2 }, (_, i) => Math.sin(i)), [8, config.inChannels, config.inputSize, config.inputSize]);
  return [{ x, y: Tensor.from(new Int32Array(8), [8], 'i32') }];
}

export function modelSeeds(): ModelSeeds {
  const out: ModelSeeds = { float: [], quantized: [], packed: [], onnx: [] };
  for (const [name, cfg] of [['lenet5', { inChannels: 1, inputSize: 28, classes: 10 }], ['resnet20', { inChannels: 3, inputSize: 16, classes: 4, width: 4 }]] as const) {
    const { model, config } = buildModel(name, cfg, 1);
    const src: LoadedModel = { name, config, model, metadata: { preprocess: { scale: 1 / 255, mean: new Array(config.inChannels).fill(0.5), std: new Array(config.inChannels).fill(0.25) } } };
    const fl = encodeModelFile(modelHeader(name, config, model), model.stateDict(), src.metadata);
    out.float.push({ name: `${name} float (lowbit)`, bytes: fl, boundaries: lowbitBoundaries(fl), sizeFields: [{ at: 8, bigEndian: false }] });
    for (const spec of ['int8', 'w=twn,a=int8', 'bnn']) {
      const q = quantizePostTraining(src, { spec, calibration: calibration(config), firstLast: 'quantize', seed: 1 });
      try {
        const { tensors, metadata } = encodeQuantizedModel(q);
        const qb = encodeModelFile(modelHeader(name, config, q.model), tensors, metadata);
        out.quantized.push({ name: `${name} ${spec} (lowbit)`, bytes: qb, boundaries: lowbitBoundaries(qb), sizeFields: [{ at: 8, bigEndian: false }] });
        const { graph, specs } = describeModel(q.model, q.layers, [1, config.inChannels, config.inputSize, config.inputSize]);
        const pb = encodeRuntimeModel(graph, specs, normsOf(q.model), { spec });
        for (const s of specs.values()) for (const t of s.quantTensors.values()) t.dispose();
        out.packed.push({ name: `${name} ${spec} packed (lowbit)`, bytes: pb, boundaries: lowbitBoundaries(pb), sizeFields: [{ at: 8, bigEndian: false }] });
        // (the float form of a quantized model uses Round, which the importer does not map: QDQ only)
        if (spec === 'int8') out.onnx.push(onnxSeed(`${name} ${spec} onnx-qdq (lowbit)`, exportOnnx(q, 'onnx-qdq')));
      } finally {
        disposeQuantized(q);
      }
    }
    out.onnx.push(onnxSeed(`${name} float onnx (lowbit)`, exportOnnx(src, 'onnx')));
    model.dispose();
  }
  return out;
}

function onnxSeed(name: string, bytes: Uint8Array): Seed {
  return { name, bytes, boundaries: [0, 1, 2, 8, 16, 32, bytes.length >> 2, bytes.length >> 1, bytes.length - 1, bytes.length] };
}

/** ONNX models from the ONNX backend conformance suite (Debian libonnx-testdata): the CNN-relevant ones. */
export function conformanceOnnxSeeds(limit = 60): Seed[] {
  if (!existsSync(CONFORMANCE_DIR)) return [];
  const keep = /^test_(conv|maxpool|averagepool|gemm|matmul|batchnorm|relu|add|mul|sub|div|reshape|flatten|transpose|concat|pad|softmax|clip|gather|squeeze|unsqueeze|quantizelinear|dequantizelinear|qlinear|convinteger|matmulinteger|globalaveragepool|dropout|leakyrelu|sigmoid|tanh|hardswish|hardsigmoid|shape|identity|constant)/;
  const names = readdirSync(CONFORMANCE_DIR).filter((n) => keep.test(n)).sort();
  const step = Math.max(1, Math.floor(names.length / limit));
  return names.filter((_, i) => i % step === 0).slice(0, limit).flatMap((n) => {
    const path = join(CONFORMANCE_DIR, n, 'model.onnx');
    return existsSync(path) ? [onnxSeed(`${n} (ONNX conformance suite)`, readFileSync(path))] : [];
  });
}

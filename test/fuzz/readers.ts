// Every reader and parser of lowbit, as a property: whatever bytes (or text) it is given, it returns or
// throws a LowbitError — never a TypeError, RangeError or protobuf error — within a time bound, without
// allocating more than the input could justify, and without leaking engine memory.

import fc from 'fast-check';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'fflate';
import { LowbitError } from '../../src/errors.js';
import { parseIdx } from '../../src/formats/idx.js';
import { parseCifarBatch, readCifarBatch } from '../../src/formats/cifar.js';
import { decodeImageToCHW } from '../../src/formats/image.js';
import { decodeModelFile, encodeModelFile } from '../../src/formats/lowbit.js';
import { importOnnx } from '../../src/formats/onnx/import.js';
import { onnx } from '../../src/formats/onnx/read.js';
import { loadDataset } from '../../src/data/index.js';
import { parseSpec } from '../../src/quant/spec.js';
import { loadQuantizedModel } from '../../src/quant/load.js';
import { disposeQuantized } from '../../src/quant/quantized.js';
import { compileRuntimeModel, decodeRuntimeModel } from '../../src/runtime/file.js';
import { engine } from '../../src/tensor/engine.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadModel } from '../../src/zoo/index.js';
import { Command, CommanderError } from 'commander';
import { buildProgram } from '../../src/cli/main.js';
import { editJson, hostileJson, jsonEdit, mutatedFile, type Seed } from './mutate.js';
import { cifarSeeds, conformanceOnnxSeeds, idxSeeds, imageSeeds, modelSeeds } from './seeds.js';

/** One reader under test: inputs to try, and what reading one means. */
export interface Reader<T = Uint8Array> {
  name: string;
  input: fc.Arbitrary<{ describe: unknown; value: T }>;
  /** Read it; return whatever must be disposed. */
  read(value: T): void | (() => void) | Promise<void | (() => void)>;
  /** Bytes of memory a case may take beyond the input's length (JS buffers + WebAssembly tensors). */
  budget(value: T): number;
  /** Unmutated inputs, which must read without error (so that the mutations start from paths that work). */
  valid: T[];
}

const MB = 2 ** 20;
/** A case slower than this is a hang (generous: the machine is shared and loaded). */
export const TIME_LIMIT_MS = Number(process.env.LOWBIT_FUZZ_CASE_MS ?? 10_000);

function sizeOf(v: unknown): number {
  return v instanceof Uint8Array ? v.length : typeof v === 'string' ? v.length : 0;
}

/** Run one case; throws an Error that says what went wrong (an unexpected exception, too slow, too much memory, a leak). */
export async function checkCase<T>(r: Reader<T>, value: T): Promise<void> {
  const mem = engine.memory;
  const liveBefore = mem.bytesInUse;
  mem.resetPeak();
  const jsBefore = process.memoryUsage().arrayBuffers;
  const t0 = performance.now();
  let cleanup: void | (() => void) = undefined;
  try {
    cleanup = await r.read(value);
  } catch (e) {
    if (!(e instanceof LowbitError)) {
      const err = new Error(`${r.name}: ${(e as Error)?.constructor?.name ?? typeof e} instead of a LowbitError: ${(e as Error)?.message ?? e}`);
      err.cause = e;
      throw err;
    }
    if (/\n/.test(e.message.trim())) throw new Error(`${r.name}: the LowbitError message has several lines: ${e.message}`);
  }
  const ms = performance.now() - t0;
  const wasm = mem.peakBytesInUse - liveBefore;
  const js = process.memoryUsage().arrayBuffers - jsBefore;
  try {
    if (ms > TIME_LIMIT_MS) throw new Error(`${r.name}: took ${ms.toFixed(0)} ms (limit ${TIME_LIMIT_MS})`);
    const budget = r.budget(value);
    if (wasm > budget || js > budget) {
      throw new Error(`${r.name}: used ${(wasm / MB).toFixed(1)} MB of tensors and ${(js / MB).toFixed(1)} MB of buffers for ${sizeOf(value)} input bytes (budget ${(budget / MB).toFixed(1)} MB)`);
    }
  } finally {
    if (cleanup) cleanup();
  }
  const leaked = mem.bytesInUse - liveBefore;
  if (leaked > 0) throw new Error(`${r.name}: leaked ${leaked} bytes of tensors`);
}

/** The reader's property, for fc.assert / fc.check. */
export function property<T>(r: Reader<T>): fc.IAsyncPropertyWithHooks<[{ describe: unknown; value: T }]> {
  return fc.asyncProperty(r.input, (c) => checkCase(r, c.value));
}

const bytesOf = (a: fc.Arbitrary<{ seed: string; ops: unknown; bytes: Uint8Array }>) =>
  a.map((m) => ({ describe: { seed: m.seed, ops: m.ops, length: m.bytes.length }, value: m.bytes }));

/** Byte mutations (mostly) and, when given, structured ones. */
function inputs(seeds: Seed[], structured?: fc.Arbitrary<{ describe: unknown; value: Uint8Array }>) {
  const raw = bytesOf(mutatedFile(seeds));
  return structured ? fc.oneof({ weight: 3, arbitrary: raw }, { weight: 2, arbitrary: structured }) : raw;
}

// ---------------------------------------------------------------------------------------------------------
// Structured mutations of lowbit's containers: edit the JSON header (or a JSON description inside a tensor)
// and re-encode, so that the edit reaches the checks behind the magic bytes and lengths.

interface Container {
  header: { model: { name: string; config: Record<string, unknown> }; tensors: { name: string; dtype: string; shape: number[]; offset: number; byteLength: number }[]; metadata: Record<string, unknown> };
  data: Uint8Array;
}

function openContainer(bytes: Uint8Array): Container {
  const h = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(8, true);
  const header = JSON.parse(Buffer.from(bytes.subarray(12, 12 + h)).toString('utf8')) as Container['header'];
  return { header, data: bytes.subarray(Math.ceil((12 + h) / 64) * 64) };
}

function closeContainer(c: Container): Uint8Array {
  const json = Buffer.from(JSON.stringify(c.header));
  const start = Math.ceil((12 + json.length) / 64) * 64;
  const out = new Uint8Array(start + c.data.length);
  out.set(Buffer.from('LOWBIT\0', 'latin1'));
  out[7] = 1;
  new DataView(out.buffer).setUint32(8, json.length, true);
  out.set(json, 12);
  out.set(c.data, start);
  return out;
}

/** Edit the header of a .lowbit container (tensor table, model config, metadata). */
function headerEdits(seeds: Seed[]) {
  const opened = seeds.map((s) => openContainer(s.bytes));
  return fc.record({ s: fc.nat(seeds.length - 1), edits: fc.array(jsonEdit, { minLength: 1, maxLength: 3 }) }).map(({ s, edits }) => {
    const c = opened[s];
    return { describe: { seed: seeds[s].name, edits }, value: closeContainer({ header: editJson(c.header, edits), data: c.data }) };
  });
}

/** Edit the architecture a header describes (sizes a model is built from before any tensor is read). */
function configEdits(seeds: Seed[]) {
  const opened = seeds.map((s) => openContainer(s.bytes));
  const key = fc.constantFrom('inChannels', 'inputSize', 'classes', 'width', 'name');
  return fc.record({ s: fc.nat(seeds.length - 1), edits: fc.array(fc.record({ key, value: fc.oneof(hostileJson, fc.integer({ min: 1, max: 5000 })) }), { minLength: 1, maxLength: 2 }) }).map(({ s, edits }) => {
    const header = structuredClone(opened[s].header);
    for (const e of edits) {
      if (e.key === 'name') header.model.name = String(e.value);
      else header.model.config[e.key] = e.value;
    }
    return { describe: { seed: seeds[s].name, config: edits }, value: closeContainer({ header, data: opened[s].data }) };
  });
}

/** Edit the gzipped JSON description inside a packed runtime file. */
function packedEdits(seeds: Seed[]) {
  const opened = seeds.map((s) => {
    const file = decodeModelFile(s.bytes);
    const d = JSON.parse(new TextDecoder().decode(gunzipSync(file.tensors.get('runtime.json.gz')!.view() as Uint8Array)));
    const others = new Map([...file.tensors].filter(([k]) => k !== 'runtime.json.gz').map(([k, t]) => [k, { view: new Uint8Array(t.view().buffer.slice(t.view().byteOffset, t.view().byteOffset + t.byteLength)), dtype: t.dtype, shape: [...t.shape] }]));
    for (const t of file.tensors.values()) t.dispose();
    return { model: file.model, metadata: file.metadata, d, others };
  });
  return fc.record({ s: fc.nat(seeds.length - 1), edits: fc.array(jsonEdit, { minLength: 1, maxLength: 3 }) }).map(({ s, edits }) => {
    const o = opened[s];
    const desc = gzipSync(new TextEncoder().encode(JSON.stringify(editJson(o.d, edits))));
    const tensors = new Map<string, Tensor>([['runtime.json.gz', Tensor.from(desc, undefined, 'u8')]]);
    for (const [k, t] of o.others) tensors.set(k, t.dtype === 'f32' ? Tensor.from(new Float32Array(t.view.buffer), t.shape) : Tensor.from(t.view, t.shape, 'u8'));
    try {
      return { describe: { seed: seeds[s].name, edits }, value: encodeModelFile(o.model, tensors, o.metadata) };
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  });
}

/** Edit an ONNX model as a protobuf object (dims, data types, raw data, attributes) and re-encode it. */
function onnxEdits(seeds: Seed[]) {
  const objects = seeds.map((s) => onnx.ModelProto.toObject(onnx.ModelProto.decode(s.bytes), { bytes: Array, longs: Number }));
  return fc.record({ s: fc.nat(seeds.length - 1), edits: fc.array(jsonEdit, { minLength: 1, maxLength: 3 }) }).map(({ s, edits }) => {
    const edited = editJson(objects[s], edits);
    let value: Uint8Array;
    try {
      value = onnx.ModelProto.encode(onnx.ModelProto.fromObject(edited)).finish();
    } catch {
      value = seeds[s].bytes; // protobufjs refused the object: the edit is not representable
    }
    return { describe: { seed: seeds[s].name, edits }, value };
  });
}

// ---------------------------------------------------------------------------------------------------------

let tmp: string | null = null;
/** Created on first use (the test runner also loads this module as a file of its own). */
const tmpRoot = () => (tmp ??= mkdtempSync(join(tmpdir(), 'lowbit-fuzz-')));
let fileCounter = 0;
/** Write bytes to a fresh temporary file (for readers that take a path); removed after the case. */
function withFile<T>(name: string, bytes: Uint8Array, f: (path: string) => T): T {
  const dir = join(tmpRoot(), String(fileCounter++));
  mkdirSync(dir);
  const path = join(dir, name);
  writeFileSync(path, bytes);
  try {
    return f(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function removeTemporaryFiles(): void {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
}

const linear = (base: number, perByte: number) => (v: Uint8Array) => base + perByte * v.length;

/** An ONNX file also justifies tracing its declared input (at most 2^24 elements): 32 float copies of it. */
function onnxBudget(b: Uint8Array): number {
  let inputBytes = 0;
  try {
    for (const vi of onnx.ModelProto.decode(b).graph?.input ?? []) {
      const dims = vi.type?.tensorType?.shape?.dim ?? [];
      const n = dims.reduce((a, d) => a * Math.max(1, Number(d.dimValue ?? 1)), 1);
      inputBytes += 4 * Math.min(n, 2 ** 24);
    }
  } catch {
    // not decodable: the importer stops before tracing
  }
  return linear(256 * MB, 64)(b) + 32 * inputBytes;
}

/** Build every reader (seeds are made here: call once). */
export async function allReaders(): Promise<Reader<any>[]> {
  const models = modelSeeds();
  const idx = idxSeeds(), cifar = await cifarSeeds(), images = await imageSeeds();
  // conformance models whose op lowbit does not import only reach the first check: keep the importable ones
  const importable = (seed: Seed) => {
    try {
      importOnnx(seed.bytes).module.dispose();
      return true;
    } catch {
      return false;
    }
  };
  const onnxSeeds = [...models.onnx, ...conformanceOnnxSeeds().filter(importable)];
  const target = { channels: 3 as const, height: 32, width: 32 };
  const readers: Reader<any>[] = [
    {
      name: 'IDX (plain and gzip)',
      valid: idx.map((x) => x.bytes),
      input: inputs(idx),
      read: (b: Uint8Array) => void parseIdx(b, 'fuzz.idx'),
      // gzip may legitimately expand ~1000:1; plain IDX needs at most a typed copy of itself
      budget: (b: Uint8Array) => 16 * MB + 1100 * b.length,
    },
    {
      name: 'CIFAR-10 binary batch',
      valid: cifar.map((x) => x.bytes),
      input: inputs(cifar),
      read: (b: Uint8Array) => void parseCifarBatch(b, 'fuzz.bin'),
      budget: linear(4 * MB, 3),
    },
    {
      name: 'CIFAR-10 batch file',
      valid: cifar.map((x) => x.bytes),
      input: inputs(cifar),
      read: (b: Uint8Array) => void withFile('data_batch_1.bin', b, (p) => readCifarBatch(p)),
      budget: linear(8 * MB, 3),
    },
    {
      name: 'JPEG/PNG image',
      valid: images.map((x) => x.bytes),
      input: inputs(images),
      read: (b: Uint8Array) => void decodeImageToCHW(b, 'fuzz image', target),
      // decoders hold the whole image in RGBA: the pixel budget a file of this size can justify
      budget: linear(64 * MB, 2048),
    },
    {
      name: 'image folder dataset',
      valid: images.map((x) => x.bytes),
      input: inputs(images),
      read: async (b: Uint8Array) => {
        // <dir>/{train,test}/{a,b}/ with valid images, and the mutated one among them
        const dir = join(tmpRoot(), `folder${fileCounter++}`);
        try {
          for (const [split, cls] of [['train', 'a'], ['train', 'b'], ['test', 'a'], ['test', 'b']]) {
            mkdirSync(join(dir, split, cls), { recursive: true });
            writeFileSync(join(dir, split, cls, '0.png'), images[images.length - 1].bytes);
          }
          writeFileSync(join(dir, 'train', 'b', '1.jpg'), b);
          await loadDataset(dir, { cache: false, workers: 0, progress: false, size: 8 });
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      },
      budget: linear(64 * MB, 2048),
    },
    {
      name: '.lowbit model file',
      valid: models.float.map((x) => x.bytes),
      input: inputs(models.float, fc.oneof(headerEdits(models.float), configEdits(models.float))),
      read: (b: Uint8Array) => {
        const m = withFile('m.lowbit', b, (p) => loadModel(p));
        return () => m.model.dispose();
      },
      budget: linear(32 * MB, 4),
    },
    {
      name: '.lowbit quantized model file',
      valid: models.quantized.map((x) => x.bytes),
      input: inputs(models.quantized, fc.oneof(headerEdits(models.quantized), configEdits(models.quantized))),
      read: (b: Uint8Array) => {
        const q = withFile('q.lowbit', b, (p) => loadQuantizedModel(p));
        return () => disposeQuantized(q);
      },
      // loading traces the model on one image of the declared input size (at most 512x512: zoo/index.ts)
      budget: linear(256 * MB, 6),
    },
    {
      name: 'packed runtime file',
      valid: models.packed.map((x) => x.bytes),
      input: inputs(models.packed, packedEdits(models.packed)),
      read: (b: Uint8Array) => {
        const plan = compileRuntimeModel(decodeRuntimeModel(b, 'fuzz packed'), 'fuzz packed');
        return () => plan.dispose();
      },
      budget: linear(64 * MB, 64),
    },
    {
      name: 'ONNX model',
      valid: onnxSeeds.map((x) => x.bytes),
      input: inputs(onnxSeeds, onnxEdits(onnxSeeds)),
      read: (b: Uint8Array) => {
        const m = importOnnx(b, { what: 'fuzz.onnx' });
        return () => m.module.dispose();
      },
      budget: onnxBudget,
    },
    specReader(),
    cliReader(),
  ];
  return readers;
}

// ---------------------------------------------------------------------------------------------------------
// Text: the spec language and the command line

export const VALID_SPECS = [
  'fp32', 'int8', 'uint8', 'int4', 'int8:per-channel', 'int8:sym', 'fixed:16.8', 'fixed:8.4:stochastic', 'dfp:8', 'minifloat:e4m3',
  'pow2:4', 'log2:4', 'inq:5', 'binary', 'binary:stochastic', 'bnn', 'xnor', 'bwn', 'twn', 'ttq', 'twn:per-channel', 'dorefa:w2a2g8', 'kmeans:16',
  'w=twn,a=int8', 'bnn;conv1=fp32', 'int8;fc*:w=int4,a=int8', 'w=dorefa:w2,a=dorefa:a2,g=dorefa:g8',
];

/** Text edits: characters of the spec language (and some others) inserted, replaced or deleted. */
function textEdits(valid: string[], alphabet: string): fc.Arbitrary<string> {
  const ch = fc.oneof(fc.constantFrom(...alphabet.split('')), fc.string({ minLength: 1, maxLength: 1 }), fc.constantFrom('99999999999', '-1', '0', '1e9', 'NaN', '.5'));
  const edit = fc.record({ at: fc.double({ min: 0, max: 1, noNaN: true }), del: fc.nat(3), ins: fc.array(ch, { maxLength: 3 }) });
  const edited = fc.record({ s: fc.constantFrom(...valid), edits: fc.array(edit, { minLength: 1, maxLength: 3 }) }).map(({ s, edits }) => {
    for (const e of edits) {
      const p = Math.floor(e.at * (s.length + 1));
      s = s.slice(0, p) + e.ins.join('') + s.slice(p + e.del);
    }
    return s;
  });
  return fc.oneof({ weight: 4, arbitrary: edited }, { weight: 1, arbitrary: fc.string({ maxLength: 40 }) });
}

function specReader(): Reader<string> {
  return {
    name: 'spec language',
    valid: VALID_SPECS,
    input: textEdits(VALID_SPECS, ':,;=.*w a g 0123456789 intfxdpmlobqrsce-').map((s) => ({ describe: s, value: s })),
    read: (text) => {
      const spec = parseSpec(text);
      // numbers in a spec reach the quantizers' constructors: create them too
      for (const role of ['weight', 'activation', 'gradient'] as const) spec.global[role]?.create();
    },
    budget: () => 16 * MB,
  };
}

/** The program with every action replaced by nothing and output silenced: only the argument parsing runs. */
function parsingOnly(): Command {
  const program = buildProgram();
  const visit = (c: Command) => {
    c.exitOverride().configureOutput({ writeOut: () => {}, writeErr: () => {} });
    if (c.commands.length === 0) c.action(() => {});
    for (const sub of c.commands) visit(sub as Command);
  };
  visit(program);
  return program;
}

function cliReader(): Reader<string[]> {
  const program = parsingOnly();
  const commands: [string[], string[]][] = [];
  const visit = (c: Command, path: string[]) => {
    if (c.commands.length === 0) commands.push([path, c.options.flatMap((o) => [o.long, o.short]).filter((f): f is string => !!f)]);
    for (const sub of c.commands) visit(sub as Command, [...path, sub.name()]);
  };
  visit(program, []);
  const value = fc.oneof(
    fc.constantFrom('0', '-1', '1', '1.5', '1e3', 'NaN', 'Infinity', '', ' ', '--', '-', 'zoo:lenet5-mnist', 'mnist', 'int8', 'a,b', ',', '1,,2', '0x10', '9'.repeat(30)),
    fc.string({ maxLength: 12 }),
  );
  const argv = fc.record({
    c: fc.nat(commands.length - 1),
    opts: fc.array(fc.record({ o: fc.nat(), v: fc.option(value, { nil: undefined }) }), { maxLength: 6 }),
    extra: fc.array(value, { maxLength: 2 }),
  }).map(({ c, opts, extra }) => {
    const [path, flags] = commands[c];
    return [...path, ...opts.flatMap(({ o, v }) => (flags.length ? [flags[o % flags.length], ...(v === undefined ? [] : [v])] : [])), ...extra];
  });
  return {
    name: 'command-line arguments',
    valid: [['train', '--model', 'lenet5', '--dataset', 'mnist', '--epochs', '2'], ['compare', '--model', 'zoo:lenet5-mnist', '--dataset', 'mnist', '--out', 'r', '--specs', 'int8,twn', '--resume']],
    input: argv.map((a) => ({ describe: a, value: a })),
    read: async (args) => {
      try {
        await parsingOnly().parseAsync(['node', 'lowbit', ...args]);
      } catch (e) {
        // commander's usage errors become exit code 2 in main(); anything else would be a bug
        if (!(e instanceof CommanderError)) throw e;
        if (e.exitCode !== 0 && !e.message.trim()) throw new Error(`usage error without a message for ${JSON.stringify(args)}`);
      }
    },
    budget: () => 16 * MB,
  };
}

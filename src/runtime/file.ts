// The packed model file: what the runtime executes, at the weights' real bit width.
//
// A .lowbit container (formats/lowbit.ts) with three tensors:
//   runtime.json.gz   the description, gzipped JSON: the graph (op, inputs, shape at batch 1, attributes, name),
//                     every conv/linear layer (shape, value table, per-channel scale, bits, fake-quantization
//                     state of its activations), batch norms, and the source model's metadata (preprocessing)
//   runtime.packed    u8: every layer's table indices packed at 1, 2, 4 or 8 bits, back to back
//   runtime.floats    f32: scales, biases, float weights (fp32 layers, float tables), batch-norm parameters
// so a binary network costs about 1 bit per weight plus its float layers and scales (see sizeReport()).
// Loading never runs code from the file and checks every offset and every declared bit width.

import { gunzipSync, gzipSync } from 'fflate';
import { LowbitError } from '../errors.js';
import { decodeModelFile, decodeModelHeader, encodeModelFile } from '../formats/lowbit.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { checkFinite } from '../formats/finite.js';
import { BatchNorm } from '../nn/index.js';
import { Tensor } from '../tensor/tensor.js';
import { parseDatatype } from '../quant/spec.js';
import type { FakeQuantState } from '../quant/fakequant.js';
import { Plan } from './plan.js';
import type { LayerSpec } from './layers.js';
import { checkDeclaredBits, indexBits, packIndices, unpackIndices, type TableWeights } from './weights.js';
import type { GraphNode } from './trace.js';
import { readFileSync } from 'node:fs';

export const RUNTIME_FORMAT = 1;

type Span = [offset: number, length: number];

interface LayerRecord {
  kind: 'conv' | 'linear';
  inC: number;
  outC: number;
  kernel?: [number, number];
  config?: Record<string, unknown>;
  weights: { shape: number[]; table: number[]; integer: boolean; bits: number; scale: Span; index: Span } | { shape: number[]; float: Span };
  bias: Span | null;
  quant: FakeQuantState | null;
  quantTensors: Record<string, { data: Span; shape: number[] }>;
}

interface NormRecord {
  channels: number;
  eps?: number;
  gamma: Span;
  beta: Span;
  mean: Span;
  variance: Span;
}

interface RuntimeDescription {
  format: number;
  inputShape: number[];
  output: number;
  nodes: [op: string, inputs: number[], shape: number[], attrs: Record<string, unknown>, name: string | null][];
  layers: Record<string, LayerRecord>;
  norms: Record<string, NormRecord>;
  metadata: Record<string, unknown>;
}

/** What a packed file holds, before it becomes a Plan. */
export interface RuntimeModel {
  graph: { nodes: Omit<GraphNode, 'module'>[]; output: number };
  specs: Map<string, LayerSpec>;
  norms: Map<string, BatchNorm>;
  metadata: Record<string, unknown>;
}

/** The two data areas of a file, appended to piece by piece; spans are offsets in elements. */
class Blobs {
  private readonly floatParts: Float32Array[] = [];
  private readonly byteParts: Uint8Array[] = [];
  private floatLength = 0;
  private byteLength = 0;
  f32(v: ArrayLike<number>): Span {
    const off = this.floatLength;
    this.floatParts.push(Float32Array.from(v));
    this.floatLength += v.length;
    return [off, v.length];
  }
  bytes(v: Uint8Array): Span {
    const off = this.byteLength;
    this.byteParts.push(v);
    this.byteLength += v.length;
    return [off, v.length];
  }
  floats(): Float32Array {
    return concat(new Float32Array(this.floatLength), this.floatParts);
  }
  packed(): Uint8Array {
    return concat(new Uint8Array(this.byteLength), this.byteParts);
  }
}

function concat<T extends Float32Array | Uint8Array>(out: T, parts: T[]): T {
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Encode a compiled model (its graph, layer specs and batch norms) as a packed file. */
export function encodeRuntimeModel(graph: { nodes: GraphNode[]; output: number }, specs: Map<string, LayerSpec>, norms: Map<string, BatchNorm>, metadata: Record<string, unknown>): Uint8Array {
  const blobs = new Blobs();
  const layers: Record<string, LayerRecord> = {};
  for (const [name, s] of specs) {
    const w = s.weights;
    const weights: LayerRecord['weights'] = w
      ? { shape: w.shape, table: w.table, integer: w.integer, bits: w.bits, scale: blobs.f32(w.scale), index: blobs.bytes(packIndices(w.index, w.bits)) }
      : { shape: s.kind === 'conv' ? [s.outChannels, s.inChannels / ((s.config?.groups as number) ?? 1), ...s.kernel!] : [s.outChannels, s.inChannels], float: blobs.f32(s.floatWeight!) };
    const quantTensors: LayerRecord['quantTensors'] = {};
    for (const [k, t] of s.quantTensors) quantTensors[k] = { data: blobs.f32(t.toFloat32Array()), shape: [...t.shape] };
    layers[name] = {
      kind: s.kind, inC: s.inChannels, outC: s.outChannels, kernel: s.kernel, config: s.config as Record<string, unknown> | undefined,
      weights, bias: s.bias ? blobs.f32(s.bias) : null, quant: s.quant, quantTensors,
    };
  }
  const normRecords: Record<string, NormRecord> = {};
  const used = new Set(graph.nodes.filter((n) => n.op === 'batchNorm').map((n) => n.name!));
  for (const [name, bn] of norms) {
    if (!used.has(name)) continue;
    normRecords[name] = {
      channels: bn.channels, eps: bn.opts.eps,
      gamma: blobs.f32(bn.gamma.toFloat32Array()), beta: blobs.f32(bn.beta.toFloat32Array()),
      mean: blobs.f32(bn.runningMean.toFloat32Array()), variance: blobs.f32(bn.runningVar.toFloat32Array()),
    };
  }
  const description: RuntimeDescription = {
    format: RUNTIME_FORMAT,
    inputShape: graph.nodes[0].shape,
    output: graph.output,
    nodes: graph.nodes.map((n) => {
      const { geometry: _g, ...attrs } = n.attrs;
      void _g;
      if (n.op === 'constant') attrs.value = blobs.f32(attrs.value as Float32Array);
      return [n.op, n.inputs, n.shape, attrs, n.name ?? null];
    }),
    layers,
    norms: normRecords,
    metadata,
  };
  const tensors = new Map<string, Tensor>([
    ['runtime.json.gz', Tensor.from(gzipSync(new TextEncoder().encode(JSON.stringify(description)), { level: 9 }), undefined, 'u8')],
    ['runtime.packed', Tensor.from(blobs.packed(), undefined, 'u8')],
    ['runtime.floats', Tensor.from(blobs.floats())],
  ]);
  try {
    return encodeModelFile({ name: 'lowbit-runtime', config: { format: RUNTIME_FORMAT } }, tensors, { runtime: RUNTIME_FORMAT });
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

/** True if the file at `path` is a packed runtime model (reads the header only; false if unreadable). */
export function isRuntimeFile(path: string): boolean {
  try {
    return decodeModelHeader(readFileSync(path), path).model.name === 'lowbit-runtime';
  } catch {
    return false;
  }
}

function corrupt(where: string, what: string): LowbitError {
  return new LowbitError(`${where}: ${what}. The packed model file is corrupt or from another lowbit version; export it again with \`lowbit export --format lowbit\`.`);
}

function bad(where: string, what: string): never {
  throw corrupt(where, what);
}

/** A TypeError or RangeError met while using a file's description means the file is inconsistent: say so. */
function asInconsistent(e: unknown, where: string): unknown {
  return e instanceof TypeError || e instanceof RangeError ? corrupt(where, `its description is inconsistent (${e.message.replace(/^lowbit: /, '')})`) : e;
}

/** Decode a packed runtime file (checks every span and declared bit width). */
export function decodeRuntimeModel(bytes: Uint8Array, where = 'packed model'): RuntimeModel {
  const file = decodeModelFile(bytes, where);
  try {
    if (file.model.name !== 'lowbit-runtime') bad(where, `it holds model "${file.model.name}", not a packed runtime model (load it with loadModel)`);
    const get = (k: string) => file.tensors.get(k) ?? bad(where, `tensor ${k} is missing`);
    let d: RuntimeDescription;
    const gz = get('runtime.json.gz').view() as Uint8Array;
    // fflate sizes its output by the gzip trailer's length field: check it against the most deflate can expand
    // (1032:1) before trusting it, so a corrupt trailer cannot make us allocate gigabytes
    const declared = gz.length >= 18 ? new DataView(gz.buffer, gz.byteOffset + gz.length - 4, 4).getUint32(0, true) : -1;
    if (declared < 0 || declared > gz.length * 1032) bad(where, 'its description is not valid gzipped JSON (impossible length)');
    try {
      d = JSON.parse(new TextDecoder().decode(gunzipSync(gz))) as RuntimeDescription;
    } catch {
      bad(where, 'its description is not valid gzipped JSON');
    }
    if (d.format !== RUNTIME_FORMAT) throw new LowbitError(`${where}: packed-model format ${d.format}; this lowbit reads format ${RUNTIME_FORMAT}`);
    const floats = get('runtime.floats').view() as Float32Array;
    const packed = get('runtime.packed').view() as Uint8Array;
    // weights, scales and batch norms must be finite; graph constants may hold +-Inf (clip bounds)
    const f32 = (s: Span, what: string, finite = true): Float32Array => {
      if (!Array.isArray(s) || !(s[0] >= 0 && s[1] >= 0 && s[0] + s[1] <= floats.length)) bad(where, `${what} lies outside the file`);
      const values = floats.slice(s[0], s[0] + s[1]);
      if (finite) checkFinite(values, `${where}: ${what}`, 'export the model again from a valid quantized model');
      return values;
    };
    if (!Array.isArray(d.nodes) || d.nodes.length === 0 || !(d.output >= 0 && d.output < d.nodes.length)) bad(where, 'the graph is empty or its output is out of range');
    const nodes = d.nodes.map((node, id) => {
      if (!Array.isArray(node)) bad(where, `graph node ${id} is malformed`);
      const [op, inputs, shape, attrs, name] = node;
      if (typeof op !== 'string' || !Array.isArray(inputs) || inputs.some((i) => !(Number.isInteger(i) && i >= 0 && i < id))) bad(where, `graph node ${id} is malformed`);
      // shapes at batch 1 size every buffer the plan allocates: positive integers, at most 2^26 elements
      if (!Array.isArray(shape) || shape.length > 8 || shape.some((x) => !Number.isInteger(x) || x < 1) || shape.reduce((p: number, x: number) => p * x, 1) > 2 ** 26)
        bad(where, `graph node ${id} has an impossible shape`);
      const a = { ...(attrs ?? {}) };
      if (op === 'constant') {
        a.value = f32(a.value as Span, `constant node ${id}`, false);
        if ((a.value as Float32Array).length !== shape.reduce((p: number, d: number) => p * d, 1)) bad(where, `constant node ${id} does not fill its shape`);
      }
      return { id, op, inputs, shape, attrs: a, name: name ?? undefined };
    });
    const specs = new Map<string, LayerSpec>();
    const norms = new Map<string, BatchNorm>();
    try {
      for (const [name, r] of Object.entries(d.layers ?? {})) {
        const what = `layer ${name}`;
        let weights: TableWeights | null = null, floatWeight: Float32Array | null = null;
        const shape: unknown = r?.weights?.shape;
        if (!Array.isArray(shape) || shape.length < 2 || shape.length > 4 || shape.some((x) => !Number.isInteger(x) || x < 1)) bad(where, `${what}: its weights have no valid shape`);
        const count = r.weights.shape.reduce((p, x) => p * x, 1);
        if ('float' in r.weights) {
          floatWeight = f32(r.weights.float, `${what} weights`);
          if (floatWeight.length !== count) bad(where, `${what}: ${floatWeight.length} weights for shape [${r.weights.shape}]`);
        } else {
          const w = r.weights;
          if (![1, 2, 4, 8].includes(w.bits) || !Array.isArray(w.table) || w.table.length === 0 || indexBits(w.table.length) > w.bits) bad(where, `${what}: a table of ${w.table?.length} values cannot be indexed with ${w.bits} bits`);
          if (!(w.index[0] >= 0 && w.index[0] + w.index[1] <= packed.length)) bad(where, `${what} weights lie outside the file`);
          if (!(Number.isInteger(count) && count >= 0 && count * w.bits <= w.index[1] * 8)) bad(where, `${what}: ${w.index[1]} bytes cannot hold the ${count} weights of shape [${w.shape}]`);
          const index = unpackIndices(packed.subarray(w.index[0], w.index[0] + w.index[1]), w.bits, count);
          for (let i = 0; i < index.length; i++) if (index[i] >= w.table.length) bad(where, `${what}: weight ${i} indexes value ${index[i]} of a table of ${w.table.length}`);
          weights = { shape: w.shape, table: w.table, integer: w.integer, bits: w.bits, scale: f32(w.scale, `${what} scales`), index };
          if (weights.scale.length !== w.shape[0]) bad(where, `${what}: ${weights.scale.length} scales for ${w.shape[0]} output channels`);
          const declared = r.quant?.weight;
          if (declared) {
            const q = parseDatatype(declared).forRole('weight')?.create();
            if (q) checkDeclaredBits(name, weights, q.bits, declared);
          }
        }
        // every number is read and checked before any tensor is made (nothing to free if one is bad)
        const quantValues = Object.entries(r.quantTensors ?? {}).map(([k, t]) => {
          const v = f32(t.data, `${what} ${k}`);
          if (!Array.isArray(t.shape) || t.shape.some((x) => !Number.isInteger(x) || x < 0) || t.shape.reduce((p, x) => p * x, 1) !== v.length) bad(where, `${what} ${k}: ${v.length} values for shape [${t.shape}]`);
          return [k, v, t.shape] as const;
        });
        const bias = r.bias ? f32(r.bias, `${what} bias`) : null;
        const quantTensors = new Map(quantValues.map(([k, v, shape]) => [k, Tensor.from(v, shape)]));
        specs.set(name, {
          name, kind: r.kind, inChannels: r.inC, outChannels: r.outC, kernel: r.kernel, config: r.config,
          weights, floatWeight, bias, quant: r.quant, quantTensors,
        });
      }
      for (const [name, r] of Object.entries(d.norms ?? {})) {
        // read and check every number before allocating the module
        const [gamma, beta, mean, variance] = [r.gamma, r.beta, r.mean, r.variance].map((v, i) => f32(v, `${name} ${['gamma', 'beta', 'mean', 'variance'][i]}`));
        if (!Number.isInteger(r.channels) || [gamma, beta, mean, variance].some((v) => v.length !== r.channels)) bad(where, `batch norm ${name}: its parameters do not have ${r.channels} channels`);
        const bn = new BatchNorm(r.channels, { eps: r.eps });
        norms.set(name, bn);
        bn.gamma.view().set(gamma);
        bn.beta.view().set(beta);
        bn.runningMean.view().set(mean);
        bn.runningVar.view().set(variance);
        bn.eval();
      }
    } catch (e) {
      for (const s of specs.values()) for (const t of s.quantTensors.values()) t.dispose();
      for (const bn of norms.values()) bn.dispose();
      throw e;
    }
    return { graph: { nodes, output: d.output }, specs, norms, metadata: d.metadata ?? {} };
  } catch (e) {
    // a description field of the wrong type (a number where a list belongs, ...): the file is inconsistent
    throw asInconsistent(e, where);
  } finally {
    for (const t of file.tensors.values()) t.dispose();
  }
}

/** Write a packed model file atomically. */
export function saveRuntimeModel(path: string, m: { graph: { nodes: GraphNode[]; output: number }; specs: Map<string, LayerSpec>; norms: Map<string, BatchNorm> }, metadata: Record<string, unknown>): number {
  const bytes = encodeRuntimeModel(m.graph, m.specs, m.norms, metadata);
  writeFileAtomic(path, bytes);
  return bytes.length;
}

/** Load a packed model file as a Plan (which owns its batch norms). */
export function loadRuntimePlan(path: string): { plan: Plan; metadata: Record<string, unknown> } {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new LowbitError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path`);
  }
  const m = decodeRuntimeModel(bytes, path);
  return { plan: compileRuntimeModel(m, path), metadata: m.metadata };
}

/**
 * Compile a decoded packed model. Its description came from a file: a geometry the kernels refuse (RangeError) or
 * quantizer parameters of the wrong form (TypeError) mean the file is inconsistent, reported as such.
 */
export function compileRuntimeModel(m: RuntimeModel, where = 'packed model'): Plan {
  try {
    return Plan.compile(m.graph, m.specs, m.norms, [...m.norms.values()]);
  } catch (e) {
    if (e instanceof LowbitError && !e.message.startsWith(where)) throw new LowbitError(`${where}: ${e.message}`, e.exitCode);
    throw asInconsistent(e, where);
  }
}

/**
 * The file's size against the theoretical size of the model: bits x parameters of the packed layers plus 32
 * bits for every float number it needs (fp32 layers, per-channel scales, biases, batch norms).
 */
export function sizeReport(specs: Map<string, LayerSpec>, norms: Map<string, BatchNorm>, usedNorms: Set<string>): { theoreticalBytes: number; packedParams: number; floatParams: number } {
  let bits = 0, packedParams = 0, floatParams = 0;
  for (const s of specs.values()) {
    if (s.weights) {
      const n = s.weights.index.length;
      const q = s.quant?.weight ? parseDatatype(s.quant.weight).forRole('weight')?.create() : null;
      bits += n * (q?.bits ?? s.weights.bits);
      packedParams += n;
      floatParams += s.weights.scale.length;
    } else {
      floatParams += s.floatWeight!.length;
    }
    floatParams += s.bias?.length ?? 0;
    for (const t of s.quantTensors.values()) floatParams += t.size;
  }
  for (const [name, bn] of norms) if (usedNorms.has(name)) floatParams += 4 * bn.channels;
  return { theoreticalBytes: Math.ceil(bits / 8) + 4 * floatParams, packedParams, floatParams };
}


// Reading ONNX files: the ModelProto (decoded by onnx-proto, never by hand), tensors (raw little-endian
// bytes, the typed *_data fields, external data files) and node attributes, as plain typed arrays. Every
// problem with the file is a LowbitError that says what is wrong and what to do.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { LowbitError } from '../../errors.js';
import type { DType } from '../../tensor/tensor.js';

const { onnx } = onnxProto;
export { onnx };
export type ModelProto = OnnxTypes.ModelProto;
export type NodeProto = OnnxTypes.INodeProto;
export type TensorProto = OnnxTypes.ITensorProto;

export const ONNX_TYPE = onnx.TensorProto.DataType;

/** A decoded ONNX tensor: lowbit dtype (int64 and bool narrow to i32 and u8, double to f32), dims, values. */
export interface TensorValue {
  dtype: DType;
  /** The ONNX element type (ONNX_TYPE.*) it was stored as. */
  onnxType: number;
  dims: number[];
  data: Float32Array | Int32Array | Int8Array | Uint8Array;
}

const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(onnx.TensorProto.DataType).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]),
);

export function onnxTypeName(t: number): string {
  return TYPE_NAMES[t] ?? `type ${t}`;
}

/** The lowbit dtype an ONNX element type decodes to, or null when lowbit cannot hold it. */
export function dtypeOfOnnx(t: number): DType | null {
  switch (t) {
    case ONNX_TYPE.FLOAT: case ONNX_TYPE.DOUBLE: return 'f32';
    case ONNX_TYPE.INT64: case ONNX_TYPE.INT32: return 'i32';
    case ONNX_TYPE.INT8: return 'i8';
    case ONNX_TYPE.UINT8: case ONNX_TYPE.BOOL: return 'u8';
    default: return null;
  }
}

/** An int64 from protobufjs (a number, or a Long-like {low, high}) as a number; int32 range is clamped by callers. */
export function int64(v: number | { low: number; high: number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === 'number') return v;
  return v.high * 4294967296 + (v.low >>> 0);
}

const I32_MAX = 2147483647, I32_MIN = -2147483648;
/** int64 values narrowed to int32, saturating (Slice's INT64_MAX "to the end" stays "to the end"). */
function narrow(v: number): number {
  return v > I32_MAX ? I32_MAX : v < I32_MIN ? I32_MIN : v;
}

/**
 * Decode ONNX bytes into a ModelProto. `what` names the file in messages.
 * Not-ONNX and truncated files are LowbitErrors.
 */
export function decodeModel(bytes: Uint8Array, what = 'the model'): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    const truncated = /index out of range|premature|truncat/i.test((e as Error).message);
    throw new LowbitError(
      truncated
        ? `${what} is a truncated ONNX file (the protobuf ends early: ${(e as Error).message}); copy or export the model again`
        : `${what} is not an ONNX model (protobuf decoding failed: ${(e as Error).message}); give a .onnx file written by an ONNX exporter`,
    );
  }
  if (!model.graph || (!model.graph.node?.length && !model.graph.output?.length) || !model.irVersion) {
    throw new LowbitError(`${what} is not an ONNX model (no graph or IR version); give a .onnx file written by an ONNX exporter`);
  }
  return model;
}

/** Read and decode an ONNX file from disk. */
export function readModelFile(path: string): ModelProto {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new LowbitError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; check the path`);
  }
  return decodeModel(bytes, path);
}

/** The opset version of the default ("" or "ai.onnx") domain. */
export function defaultOpset(model: ModelProto): number {
  const entry = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
  return entry ? int64(entry.version as number) : 1;
}

function externalBytes(t: TensorProto, baseDir: string | undefined, what: string): Uint8Array {
  const info = new Map((t.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']));
  const location = info.get('location');
  if (!location) throw new LowbitError(`${what} is stored as external data but names no location; re-save the model with its data`);
  if (!baseDir) throw new LowbitError(`${what} is stored in an external file (${location}); load the model from its file path so that lowbit can find it`);
  if (isAbsolute(location) || normalize(location).startsWith('..')) {
    throw new LowbitError(`${what}: external data location ${location} must be a path inside the model's folder`);
  }
  const file = join(baseDir, location);
  if (!existsSync(file)) {
    throw new LowbitError(`${what} is stored in external file ${location}, which is missing (looked for ${file}); put it next to the model`);
  }
  const all = readFileSync(file);
  const offset = Number(info.get('offset') ?? 0);
  const length = info.has('length') ? Number(info.get('length')) : all.length - offset;
  if (!(offset >= 0 && length >= 0 && offset + length <= all.length)) {
    throw new LowbitError(`${what}: external file ${location} has ${all.length} bytes, the tensor needs bytes ${offset}..${offset + length}`);
  }
  return new Uint8Array(all.buffer, all.byteOffset + offset, length);
}

/** Decode a TensorProto. `baseDir` is the model's folder (external data); `what` names it in messages. */
export function decodeTensor(t: TensorProto, opts: { baseDir?: string; what?: string } = {}): TensorValue {
  const what = opts.what ?? `tensor ${t.name ?? ''}`;
  const onnxType = t.dataType ?? 0;
  const dtype = dtypeOfOnnx(onnxType);
  if (!dtype) {
    throw new LowbitError(`${what} has element type ${onnxTypeName(onnxType)}; lowbit reads FLOAT, DOUBLE, INT64, INT32, INT8, UINT8 and BOOL tensors`);
  }
  const dims = (t.dims ?? []).map((d) => int64(d as number));
  const size = dims.reduce((p, d) => p * d, 1);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) throw new LowbitError(`${what} has invalid dims [${dims.join(', ')}]`);
  let raw: Uint8Array | null = null;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) raw = externalBytes(t, opts.baseDir, what);
  else if (t.rawData && t.rawData.length > 0) raw = t.rawData;

  let values: ArrayLike<number>;
  if (raw) {
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const width = { [ONNX_TYPE.FLOAT]: 4, [ONNX_TYPE.DOUBLE]: 8, [ONNX_TYPE.INT64]: 8, [ONNX_TYPE.INT32]: 4, [ONNX_TYPE.INT8]: 1, [ONNX_TYPE.UINT8]: 1, [ONNX_TYPE.BOOL]: 1 }[onnxType]!;
    if (raw.byteLength !== size * width) {
      throw new LowbitError(`${what}: shape [${dims.join(', ')}] needs ${size * width} bytes of ${onnxTypeName(onnxType)}, the file holds ${raw.byteLength}; the model file is damaged, export it again`);
    }
    const out = new Array<number>(size);
    for (let i = 0; i < size; i++) {
      switch (onnxType) {
        case ONNX_TYPE.FLOAT: out[i] = dv.getFloat32(i * 4, true); break;
        case ONNX_TYPE.DOUBLE: out[i] = dv.getFloat64(i * 8, true); break;
        case ONNX_TYPE.INT64: out[i] = narrow(Number(dv.getBigInt64(i * 8, true))); break;
        case ONNX_TYPE.INT32: out[i] = dv.getInt32(i * 4, true); break;
        case ONNX_TYPE.INT8: out[i] = dv.getInt8(i); break;
        default: out[i] = dv.getUint8(i);
      }
    }
    values = out;
  } else {
    switch (onnxType) {
      case ONNX_TYPE.FLOAT: values = t.floatData ?? []; break;
      case ONNX_TYPE.DOUBLE: values = t.doubleData ?? []; break;
      case ONNX_TYPE.INT64: values = (t.int64Data ?? []).map((v) => narrow(int64(v as number))); break;
      // INT32, INT8, UINT8 and BOOL all live in int32_data.
      default: values = t.int32Data ?? [];
    }
    if (values.length !== size) {
      throw new LowbitError(`${what}: shape [${dims.join(', ')}] has ${size} elements, the file holds ${values.length}; the model file is damaged, export it again`);
    }
  }
  const data = dtype === 'f32' ? Float32Array.from(values) : dtype === 'i32' ? Int32Array.from(values) : dtype === 'i8' ? Int8Array.from(values) : Uint8Array.from(values);
  return { dtype, onnxType, dims, data };
}

/** Read a standalone TensorProto file (the conformance cases' input_*.pb / output_*.pb). */
export function readTensorFile(path: string): TensorValue & { name: string } {
  const t = onnx.TensorProto.decode(readFileSync(path));
  return { ...decodeTensor(t, { baseDir: dirname(path), what: path }), name: t.name ?? '' };
}

/** Typed access to a node's attributes. */
export class Attributes {
  private readonly map: Map<string, OnnxTypes.IAttributeProto>;
  constructor(private readonly node: NodeProto, private readonly baseDir?: string) {
    this.map = new Map((node.attribute ?? []).map((a) => [a.name ?? '', a]));
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  names(): string[] {
    return [...this.map.keys()];
  }
  int(name: string, dflt: number): number {
    const a = this.map.get(name);
    return a ? int64(a.i as number) : dflt;
  }
  float(name: string, dflt: number): number {
    const a = this.map.get(name);
    return a ? (a.f ?? 0) : dflt;
  }
  ints(name: string, dflt: number[]): number[];
  ints(name: string): number[] | undefined;
  ints(name: string, dflt?: number[]): number[] | undefined {
    const a = this.map.get(name);
    return a ? (a.ints ?? []).map((v) => narrow(int64(v as number))) : dflt;
  }
  floats(name: string): number[] | undefined {
    const a = this.map.get(name);
    return a ? [...(a.floats ?? [])] : undefined;
  }
  string(name: string, dflt: string): string {
    const a = this.map.get(name);
    return a?.s ? new TextDecoder().decode(a.s) : dflt;
  }
  tensor(name: string): TensorValue | undefined {
    const a = this.map.get(name);
    return a?.t ? decodeTensor(a.t, { baseDir: this.baseDir, what: `attribute ${name} of node ${this.node.name || this.node.opType}` }) : undefined;
  }
}

/** Static dims of a graph input; null entries are dynamic (a dim_param or a missing value). */
export function inputDims(vi: OnnxTypes.IValueInfoProto): (number | string | null)[] | null {
  const tt = vi.type?.tensorType;
  if (!tt?.shape) return null;
  return (tt.shape.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null && int64(d.dimValue as number) > 0 ? int64(d.dimValue as number) : d.dimParam || null));
}

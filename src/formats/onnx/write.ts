// Small helpers that build ONNX protobuf messages with onnx-proto (never by hand): tensors from typed arrays,
// value infos with a dynamic batch dimension, attributes, nodes, and the model itself (opset 17, IR 8,
// checked with protobufjs' verify before encoding). export.ts builds lowbit's graphs with them.

import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';
import { LowbitError } from '../../errors.js';

const { onnx } = onnxProto;

export type NodeProto = OnnxTypes.INodeProto;
export type TensorProto = OnnxTypes.ITensorProto;
export type AttributeProto = OnnxTypes.IAttributeProto;
export type ValueInfoProto = OnnxTypes.IValueInfoProto;

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

export const DataType = onnx.TensorProto.DataType;

/** Typed arrays a tensor can be made from, with their ONNX element type. */
export type TensorData = Float32Array | Int8Array | Uint8Array | Int32Array | BigInt64Array;

function dataTypeOf(values: TensorData): number {
  if (values instanceof Float32Array) return DataType.FLOAT;
  if (values instanceof Int8Array) return DataType.INT8;
  if (values instanceof Uint8Array) return DataType.UINT8;
  if (values instanceof Int32Array) return DataType.INT32;
  return DataType.INT64;
}

/** An initializer tensor (little-endian raw data; a copy, so the proto never aliases the caller's buffer). */
export function tensorProto(name: string, dims: number[], values: TensorData): TensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  if (n !== values.length) throw new RangeError(`lowbit: ONNX tensor ${name}: dims [${dims.join(', ')}] hold ${n} values, got ${values.length}`);
  const raw = new Uint8Array(values.byteLength);
  raw.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return { name, dims, dataType: dataTypeOf(values), rawData: raw };
}

/** A float32 value info; a string dimension is symbolic (dimParam, e.g. 'N' for the batch). */
export function valueInfo(name: string, dims: (number | string)[], elemType: number = DataType.FLOAT): ValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

export function intAttr(name: string, i: number): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i };
}

export function intsAttr(name: string, ints: number[]): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}

export function floatAttr(name: string, f: number): AttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f };
}

export function node(opType: string, inputs: string[], outputs: string[], name: string, attribute: AttributeProto[] = []): NodeProto {
  return attribute.length ? { name, opType, input: inputs, output: outputs, attribute } : { name, opType, input: inputs, output: outputs };
}

export interface OnnxGraphParts {
  name: string;
  nodes: NodeProto[];
  initializers: TensorProto[];
  inputs: ValueInfoProto[];
  outputs: ValueInfoProto[];
  /** Model-level metadata (metadata_props). */
  metadata?: Record<string, string>;
  docString?: string;
}

/** Assemble, verify and encode a ModelProto (opset ONNX_OPSET, IR ONNX_IR_VERSION). */
export function encodeOnnxModel(g: OnnxGraphParts): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'lowbit',
    producerVersion: '0.1.0',
    docString: g.docString ?? '',
    metadataProps: Object.entries(g.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: { name: g.name, node: g.nodes, initializer: g.initializers, input: g.inputs, output: g.outputs },
  });
  const err = onnx.ModelProto.verify(model);
  if (err) throw new LowbitError(`internal error: the exported ONNX model ${g.name} does not verify: ${err}`);
  checkWiring(g);
  return onnx.ModelProto.encode(model).finish();
}

/** Every node input is produced before it is read (topological order), every name is produced once. */
function checkWiring(g: OnnxGraphParts): void {
  const known = new Set<string>([...g.inputs.map((i) => i.name!), ...g.initializers.map((t) => t.name!)]);
  for (const n of g.nodes) {
    for (const i of n.input ?? []) {
      if (i !== '' && !known.has(i)) throw new LowbitError(`internal error: ONNX node ${n.name} (${n.opType}) reads ${i} before it is computed`);
    }
    for (const o of n.output ?? []) {
      if (known.has(o)) throw new LowbitError(`internal error: ONNX value ${o} is produced twice`);
      known.add(o);
    }
  }
  for (const o of g.outputs) if (!known.has(o.name!)) throw new LowbitError(`internal error: ONNX output ${o.name} is never computed`);
}

/**
 * A graph under construction: unique value names, deduplicated scalar constants, and node helpers that
 * return the name of their (single) output.
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  private readonly used = new Set<string>();
  private readonly constants = new Map<string, string>();

  /** A fresh value name starting with `base` (dots and odd characters kept readable). */
  fresh(base: string): string {
    const clean = base.replace(/[^A-Za-z0-9_.:/-]/g, '_') || 'v';
    let name = clean, i = 1;
    while (this.used.has(name)) name = `${clean}_${i++}`;
    this.used.add(name);
    return name;
  }

  /** Reserve a name given from outside (graph input). */
  reserve(name: string): string {
    if (this.used.has(name)) throw new Error(`lowbit: ONNX name ${name} is taken`);
    this.used.add(name);
    return name;
  }

  initializer(base: string, dims: number[], values: TensorData): string {
    const name = this.fresh(base);
    this.initializers.push(tensorProto(name, dims, values));
    return name;
  }

  /** A constant, shared by every node that needs the same values (by content). */
  constant(base: string, dims: number[], values: TensorData): string {
    const key = `${values.constructor.name}|${dims.join(',')}|${Array.from(values as ArrayLike<number | bigint>, String).join(',')}`;
    const hit = this.constants.get(key);
    if (hit) return hit;
    const name = this.initializer(base, dims, values);
    this.constants.set(key, name);
    return name;
  }

  scalar(v: number): string {
    return this.constant('const', [], Float32Array.of(v));
  }

  op(opType: string, inputs: string[], base: string, attrs: AttributeProto[] = []): string {
    const out = this.fresh(base);
    this.nodes.push(node(opType, inputs, [out], `${out}/${opType}`, attrs));
    return out;
  }

  /** A node writing a given output name. */
  opTo(opType: string, inputs: string[], out: string, attrs: AttributeProto[] = []): string {
    this.nodes.push(node(opType, inputs, [out], `${out}/${opType}`, attrs));
    return out;
  }
}

/**
 * In-memory ONNX models for the peer benchmarks (`lowbit bench kernels`).
 *
 * Every model is built with onnx-proto's ModelProto/GraphProto/NodeProto/TensorProto (opset 17,
 * ir_version 8) and encoded to a Uint8Array that onnxruntime-node and onnxruntime-web load from
 * the buffer. Constant operands are initializers filled with deterministic pseudo-random values
 * (returned too, so that callers can check the peer's output against a reference); data operands
 * are graph inputs fed on every run.
 *
 * Layouts are ONNX's: activations NCHW, conv weights [outC, inC, kH, kW], stride 1, symmetric
 * padding `pad` on both spatial axes.
 */
import onnxProto from 'onnx-proto';
import type { onnx as OnnxTypes } from 'onnx-proto';

const { onnx } = onnxProto;

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;

export interface OnnxIO {
  name: string;
  dims: number[];
}

export interface OnnxModel {
  /** The encoded ModelProto, ready for `InferenceSession.create(bytes)`. */
  bytes: Uint8Array;
  /** Graph inputs (all float32), in the order the builder documents. */
  inputs: OnnxIO[];
  /** Graph outputs (all float32). */
  outputs: OnnxIO[];
  /** Values of the initializers, by name (row-major, the dims of the ONNX tensor). */
  initializers: Record<string, Float32Array>;
}

/** Conv geometry shared by the conv builders (NCHW, stride 1, symmetric padding). */
export interface ConvShape {
  batch: number;
  inC: number;
  h: number;
  w: number;
  outC: number;
  kh: number;
  kw: number;
  pad: number;
}

/** Output height/width of a stride-1 conv with symmetric padding. */
export function convOutSize(s: ConvShape): { oh: number; ow: number } {
  const oh = s.h + 2 * s.pad - s.kh + 1;
  const ow = s.w + 2 * s.pad - s.kw + 1;
  if (oh <= 0 || ow <= 0) throw new Error(`conv kernel ${s.kh}x${s.kw} larger than padded input ${s.h}x${s.w} (pad ${s.pad})`);
  return { oh, ow };
}

/**
 * Deterministic pseudo-random floats in [-1, 1) (mulberry32). The same seed gives the same values
 * in every process, so peers and the reference see identical data.
 */
export function pseudoRandom(size: number, seed: number): Float32Array {
  const out = new Float32Array(size);
  let a = seed >>> 0;
  for (let i = 0; i < size; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = 2 * u - 1;
  }
  return out;
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function valueInfo(io: OnnxIO): OnnxTypes.IValueInfoProto {
  return {
    name: io.name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: io.dims.map((d) => ({ dimValue: d })) } } },
  };
}

function floatTensor(name: string, dims: number[], values: Float32Array): OnnxTypes.ITensorProto {
  // rawData is little-endian float32; copy so the proto does not alias a caller's buffer view.
  const raw = new Uint8Array(values.byteLength);
  raw.set(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  return { name, dims, dataType: FLOAT, rawData: raw };
}

export function intsAttr(name: string, ints: number[]): OnnxTypes.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INTS, ints };
}

function convAttrs(kh: number, kw: number, pad: number): OnnxTypes.IAttributeProto[] {
  return [
    intsAttr('kernel_shape', [kh, kw]),
    intsAttr('pads', [pad, pad, pad, pad]),
    intsAttr('strides', [1, 1]),
    intsAttr('dilations', [1, 1]),
  ];
}

function buildModel(
  graphName: string,
  nodes: OnnxTypes.INodeProto[],
  inputs: OnnxIO[],
  outputs: OnnxIO[],
  initializers: { name: string; dims: number[]; values: Float32Array }[],
): OnnxModel {
  const inits: Record<string, Float32Array> = {};
  for (const t of initializers) inits[t.name] = t.values;
  return encodeModel(graphName, nodes, inputs, outputs, initializers.map((t) => floatTensor(t.name, t.dims, t.values)), inits);
}

/** A verified, encoded ModelProto (opset ONNX_OPSET) with float32 graph inputs and outputs. */
export function encodeModel(
  graphName: string,
  nodes: OnnxTypes.INodeProto[],
  inputs: OnnxIO[],
  outputs: OnnxIO[],
  initializers: OnnxTypes.ITensorProto[],
  floatInitializers: Record<string, Float32Array>,
): OnnxModel {
  const model = onnx.ModelProto.create({
    irVersion: ONNX_IR_VERSION,
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    producerName: 'lowbit-bench',
    producerVersion: '0.1.0',
    graph: { name: graphName, node: nodes, input: inputs.map(valueInfo), output: outputs.map(valueInfo), initializer: initializers },
  });
  const err = onnx.ModelProto.verify(model);
  if (err) throw new Error(`invalid ONNX model ${graphName}: ${err}`);
  return { bytes: onnx.ModelProto.encode(model).finish(), inputs, outputs, initializers: floatInitializers };
}

/**
 * Y[m,n] = A[m,k] · B[k,n] (MatMul). Input `A` is fed; `B` is an initializer (seeded).
 */
export function gemmModel(m: number, n: number, k: number, seed = 2): OnnxModel {
  const b = pseudoRandom(k * n, seed);
  return buildModel(
    `gemm_${m}x${n}x${k}`,
    [{ name: 'matmul', opType: 'MatMul', input: ['A', 'B'], output: ['Y'] }],
    [{ name: 'A', dims: [m, k] }],
    [{ name: 'Y', dims: [m, n] }],
    [{ name: 'B', dims: [k, n], values: b }],
  );
}

/**
 * Forward conv Y = Conv(X, W), no bias. Input `X` [batch,inC,h,w] is fed; `W` [outC,inC,kh,kw] is an
 * initializer (seeded). Output `Y` [batch,outC,oh,ow].
 */
export function convModel(s: ConvShape, seed = 2): OnnxModel {
  const { oh, ow } = convOutSize(s);
  const w = pseudoRandom(s.outC * s.inC * s.kh * s.kw, seed);
  return buildModel(
    'conv',
    [{ name: 'conv', opType: 'Conv', input: ['X', 'W'], output: ['Y'], attribute: convAttrs(s.kh, s.kw, s.pad) }],
    [{ name: 'X', dims: [s.batch, s.inC, s.h, s.w] }],
    [{ name: 'Y', dims: [s.batch, s.outC, oh, ow] }],
    [{ name: 'W', dims: [s.outC, s.inC, s.kh, s.kw], values: w }],
  );
}

/**
 * Input gradient of the conv `s` as a ConvTranspose: dX = ConvTranspose(dY, W) with the forward
 * weights W [outC,inC,kh,kw] (ConvTranspose reads them as [C_in=outC, C_out=inC, kh, kw]) and the
 * same pads. Input `dY` [batch,outC,oh,ow] is fed; `W` is an initializer (seeded). Output `dX`
 * [batch,inC,h,w]. Same multiply-adds as the forward conv.
 */
export function convTransposeModel(s: ConvShape, seed = 2): OnnxModel {
  const { oh, ow } = convOutSize(s);
  const w = pseudoRandom(s.outC * s.inC * s.kh * s.kw, seed);
  return buildModel(
    'conv_input_grad',
    [
      {
        name: 'convT',
        opType: 'ConvTranspose',
        input: ['dY', 'W'],
        output: ['dX'],
        attribute: [...convAttrs(s.kh, s.kw, s.pad), intsAttr('output_padding', [0, 0])],
      },
    ],
    [{ name: 'dY', dims: [s.batch, s.outC, oh, ow] }],
    [{ name: 'dX', dims: [s.batch, s.inC, s.h, s.w] }],
    [{ name: 'W', dims: [s.outC, s.inC, s.kh, s.kw], values: w }],
  );
}

/**
 * Weight gradient of the conv `s` as a plain Conv over transposed tensors (batch acts as channels):
 *   Xt  = Transpose(X,  [1,0,2,3])   [inC, batch, h, w]
 *   dYt = Transpose(dY, [1,0,2,3])   [outC, batch, oh, ow]   (used as the conv "weights")
 *   G   = Conv(Xt, dYt, pads=pad)    [inC, outC, kh, kw]
 *   dW  = Transpose(G,  [1,0,2,3])   [outC, inC, kh, kw]
 * dW[o,c,p,q] = sum_{n,i,j} dY[n,o,i,j] · X[n,c,i+p-pad,j+q-pad]. Both `X` [batch,inC,h,w] and `dY`
 * [batch,outC,oh,ow] are graph inputs (fed each run, as in training: no prepacked constant
 * weights). Same multiply-adds as the forward conv, plus three cheap transposes.
 */
export function convWeightGradModel(s: ConvShape): OnnxModel {
  const { oh, ow } = convOutSize(s);
  const perm = intsAttr('perm', [1, 0, 2, 3]);
  return buildModel(
    'conv_weight_grad',
    [
      { name: 'tx', opType: 'Transpose', input: ['X'], output: ['Xt'], attribute: [perm] },
      { name: 'tdy', opType: 'Transpose', input: ['dY'], output: ['dYt'], attribute: [perm] },
      { name: 'conv', opType: 'Conv', input: ['Xt', 'dYt'], output: ['G'], attribute: convAttrs(oh, ow, s.pad) },
      { name: 'tg', opType: 'Transpose', input: ['G'], output: ['dW'], attribute: [perm] },
    ],
    [
      { name: 'X', dims: [s.batch, s.inC, s.h, s.w] },
      { name: 'dY', dims: [s.batch, s.outC, oh, ow] },
    ],
    [{ name: 'dW', dims: [s.outC, s.inC, s.kh, s.kw] }],
    [],
  );
}

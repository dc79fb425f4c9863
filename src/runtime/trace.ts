// Graph capture: run a model once and write down what it computed as a list of nodes (an IR), so that the
// runtime can execute the same computation with other kernels. Conv2d, Linear and BatchNorm modules become
// one node each (whatever their fake quantizers do inside them); every other op (ReLU, add, pooling,
// reshape, ...) is captured where it runs, through the autograd layer's op observer. Nothing about the
// model's structure is assumed beyond it being a tree of Modules made of these.

import { BatchNorm, Conv2d, Linear, type Module } from '../nn/index.js';
import { noGrad, observeOps } from '../autograd/graph.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { LowbitError } from '../errors.js';

export interface GraphNode {
  id: number;
  /**
   * 'input', 'constant' (attrs.value: the values of a tensor the model computes without its input), 'conv',
   * 'linear', 'batchNorm', or the autograd op name (relu, add, maxPool2d, reshape, ...).
   */
  op: string;
  inputs: number[];
  /** Output shape for the traced batch (dimension 0 is the batch). */
  shape: number[];
  attrs: Record<string, unknown>;
  /** Module name for conv, linear and batchNorm nodes. */
  name?: string;
  module?: Module;
}

export interface Graph {
  nodes: GraphNode[];
  /** The node whose value is the model's output. */
  output: number;
}

/** Ops that leave values unchanged in evaluation (dropout) or only relabel memory. */
const IDENTITY_OPS = new Set(['dropout', 'clone']);

/** Trace model.forward on a zero input of `inputShape` ([1, C, H, W]) in evaluation mode. */
export function traceGraph(model: Module, inputShape: number[]): Graph {
  const nodes: GraphNode[] = [{ id: 0, op: 'input', inputs: [], shape: [...inputShape], attrs: {} }];
  const idOf = new Map<Tensor, number>();
  let depth = 0;
  const add = (op: string, out: Tensor, inputs: Tensor[], attrs: Record<string, unknown>, name?: string, module?: Module) => {
    const ids = inputs.map((t) => idOf.get(t) ?? constant(t));
    if (IDENTITY_OPS.has(op) && ids.length === 1) {
      idOf.set(out, ids[0]);
      return;
    }
    const node: GraphNode = { id: nodes.length, op, inputs: ids, shape: [...out.shape], attrs, name, module };
    nodes.push(node);
    idOf.set(out, node.id);
  };

  /** A tensor not computed from the input (a constant of the model): a 'constant' node holding its values. */
  const constant = (t: Tensor): number => {
    const value = t.dtype === 'f32' ? t.toFloat32Array() : Float32Array.from(t.view());
    const node: GraphNode = { id: nodes.length, op: 'constant', inputs: [], shape: [...t.shape], attrs: { value } };
    nodes.push(node);
    idOf.set(t, node.id);
    return node.id;
  };
  const patched: Module[] = [];
  for (const [name, m] of model.namedModules()) {
    const kind = m instanceof Conv2d ? 'conv' : m instanceof Linear ? 'linear' : m instanceof BatchNorm ? 'batchNorm' : null;
    if (!kind) continue;
    const original = m.forward;
    const wrapped = (x: Tensor): Tensor => {
      depth++;
      let y: Tensor;
      try {
        y = original.call(m, x);
      } finally {
        depth--;
      }
      if (depth === 0) add(kind, y, [x], {}, name, m);
      return y;
    };
    Object.defineProperty(m, 'forward', { value: wrapped, configurable: true, writable: true });
    patched.push(m);
  }
  const wasTraining = model.training;
  let output = -1;
  try {
    model.eval();
    noGrad(() => tidy(() => {
      const x = Tensor.zeros(inputShape);
      idOf.set(x, 0);
      const y = observeOps((op, out, inputs, attrs) => {
        if (depth === 0) add(op, out, inputs, attrs);
      }, () => model.forward(x));
      const id = idOf.get(y);
      if (id === undefined) throw new LowbitError('cannot capture the model\'s graph: its output is not computed from its input');
      output = id;
    }));
  } finally {
    for (const m of patched) delete (m as { forward?: unknown }).forward;
    model.train(wasTraining);
  }
  return { nodes, output };
}

/** How many nodes read each node's value (the output counts as a reader). */
export function readerCounts(g: { nodes: { inputs: number[] }[]; output: number }): number[] {
  const n = new Array<number>(g.nodes.length).fill(0);
  for (const node of g.nodes) for (const i of node.inputs) n[i]++;
  n[g.output]++;
  return n;
}

// The layers CNNs are made of. Initialization follows PyTorch's defaults (Kaiming-uniform weights with
// a = sqrt(5), uniform bias in +-1/sqrt(fan_in)), drawn from the seeded generator given at construction.

import * as ops from '../autograd/index.js';
import type { Random } from '../tensor/random.js';
import { tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';
import { Module, chainStep } from './module.js';

function kaimingUniform(rng: Random, shape: number[], fanIn: number): Tensor {
  const bound = 1 / Math.sqrt(fanIn); // gain sqrt(2/(1+5)) * sqrt(3/fanIn)
  return rng.uniformTensor(shape, -bound, bound);
}

/**
 * Fake-quantization hooks of a conv or linear layer (installed by src/quant for PTQ and QAT; null = float):
 * y = output(op(input(x), weight(W), b), x). Removing them restores the float layer.
 */
export interface LayerQuantHooks {
  weight?: (w: Tensor) => Tensor;
  input?: (x: Tensor) => Tensor;
  /** Gets the layer's output and its original (unquantized) input. */
  output?: (y: Tensor, x: Tensor) => Tensor;
  /**
   * The whole layer from integer codes, as integer kernels compute it (null when this layer or mode has no
   * such form): gets the input and the layer's op without bias.
   */
  codes?: (x: Tensor, op: (x: Tensor, w: Tensor) => Tensor) => Tensor | null;
}

type LayerOp = (x: Tensor, w: Tensor, b: Tensor | null) => Tensor;

function withHooks(q: LayerQuantHooks | null, x: Tensor, w: Tensor, b: Tensor | null, op: LayerOp): Tensor {
  if (!q) return op(x, w, b);
  const run = () => {
    const y = q.codes?.(x, (xc, wc) => op(xc, wc, null)) ?? op(q.input ? q.input(x) : x, q.weight ? q.weight(w) : w, b);
    return q.output ? q.output(y, x) : y;
  };
  // Without a tape nothing needs the fake quantizers' temporaries after the layer: free them here, not at the
  // end of the caller's scope (XNOR's input scales of 500-image evaluation batches filled 4 GiB before).
  return ops.isGradEnabled() ? run() : tidy(run);
}

export class Linear extends Module {
  readonly weight: Tensor;
  bias: Tensor | null;
  quant: LayerQuantHooks | null = null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, rng: Random, opts: { bias?: boolean } = {}) {
    super();
    this.weight = this.addParameter('weight', kaimingUniform(rng, [outFeatures, inFeatures], inFeatures));
    this.bias = opts.bias === false ? null : this.addParameter('bias', kaimingUniform(rng, [outFeatures], inFeatures));
  }
  /** Give the layer a zero bias if it has none (batch-norm folding and bias correction need one). */
  ensureBias(): Tensor {
    return (this.bias ??= this.addParameter('bias', Tensor.zeros([this.outFeatures])));
  }
  forward(x: Tensor): Tensor {
    return withHooks(this.quant, x, this.weight, this.bias, (xi, w, b) => ops.linear(xi, w, b));
  }
  describe(): string {
    return `Linear(${this.inFeatures}, ${this.outFeatures}${this.bias ? '' : ', no bias'})`;
  }
}

export interface Conv2dConfig extends ops.Conv2dOptions {
  bias?: boolean;
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  bias: Tensor | null;
  readonly kernel: [number, number];
  quant: LayerQuantHooks | null = null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernel: number | [number, number],
    rng: Random,
    readonly config: Conv2dConfig = {},
  ) {
    super();
    this.kernel = typeof kernel === 'number' ? [kernel, kernel] : kernel;
    const groups = config.groups ?? 1;
    const fanIn = (inChannels / groups) * this.kernel[0] * this.kernel[1];
    this.weight = this.addParameter('weight', kaimingUniform(rng, [outChannels, inChannels / groups, ...this.kernel], fanIn));
    this.bias = config.bias === false ? null : this.addParameter('bias', kaimingUniform(rng, [outChannels], fanIn));
  }
  /** Give the layer a zero bias if it has none (batch-norm folding and bias correction need one). */
  ensureBias(): Tensor {
    return (this.bias ??= this.addParameter('bias', Tensor.zeros([this.outChannels])));
  }
  forward(x: Tensor): Tensor {
    return withHooks(this.quant, x, this.weight, this.bias, (xi, w, b) => ops.conv2d(xi, w, b, this.config));
  }
  describe(): string {
    const c = this.config;
    const extras = [
      c.stride && c.stride !== 1 ? `stride ${c.stride}` : '',
      c.padding ? `pad ${c.padding}` : '',
      c.dilation && c.dilation !== 1 ? `dilation ${c.dilation}` : '',
      c.groups && c.groups !== 1 ? `groups ${c.groups}` : '',
      this.bias ? '' : 'no bias',
    ].filter(Boolean);
    return `Conv2d(${this.inChannels}, ${this.outChannels}, ${this.kernel.join('x')}${extras.length ? ', ' + extras.join(', ') : ''})`;
  }
}

/** Batch normalization over the channel axis of [N, C, H, W] or [N, C]. */
export class BatchNorm extends Module {
  readonly gamma: Tensor;
  readonly beta: Tensor;
  readonly runningMean: Tensor;
  readonly runningVar: Tensor;
  constructor(readonly channels: number, readonly opts: { momentum?: number; eps?: number } = {}) {
    super();
    this.gamma = this.addParameter('weight', Tensor.ones([channels]));
    this.beta = this.addParameter('bias', Tensor.zeros([channels]));
    this.runningMean = this.addBuffer('running_mean', Tensor.zeros([channels]));
    this.runningVar = this.addBuffer('running_var', Tensor.ones([channels]));
  }
  forward(x: Tensor): Tensor {
    return ops.batchNorm(x, this, { training: this.training, momentum: this.opts.momentum, eps: this.opts.eps });
  }
  describe(): string {
    return `BatchNorm(${this.channels})`;
  }
}

/** A parameter-free layer given by a function. */
export class Lambda extends Module {
  constructor(private readonly label: string, private readonly fn: (x: Tensor, training: boolean) => Tensor) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.fn(x, this.training);
  }
  describe(): string {
    return this.label;
  }
}

export const ReLU = () => new Lambda('ReLU', ops.relu);
export const ReLU6 = () => new Lambda('ReLU6', ops.relu6);
export const Hardtanh = () => new Lambda('Hardtanh', ops.hardtanh);
export const Flatten = () => new Lambda('Flatten', (x) => ops.flatten(x));
export const GlobalAvgPool2d = () => new Lambda('GlobalAvgPool2d', (x) => ops.flatten(ops.globalAvgPool2d(x)));
export const MaxPool2d = (o: ops.Pool2dOptions) => new Lambda(`MaxPool2d(${o.kernel})`, (x) => ops.maxPool2d(x, o));
export const AvgPool2d = (o: ops.Pool2dOptions) => new Lambda(`AvgPool2d(${o.kernel})`, (x) => ops.avgPool2d(x, o));

/** Dropout with a fresh mask each call, drawn from the seeded generator. */
export class Dropout extends Module {
  constructor(readonly p: number, public rng: Random) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, this.p, this.training, this.training ? this.rng.nextUint32() : 0);
  }
  describe(): string {
    return `Dropout(${this.p})`;
  }
}

/** Layers applied in order; children are named "0", "1", ... */
export class Sequential extends Module {
  readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.addChild(String(i), m));
  }
  forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.layers) h = chainStep(h, x, (v) => m.forward(v));
    return h;
  }
  describe(): string {
    return `Sequential(${this.layers.length})`;
  }
}

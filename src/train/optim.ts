// Optimizers. Each step reads p.grad and updates p in place (under noGrad), keeping its state in tensors
// that outlive tidy scopes.
//   SGD with momentum mu, Nesterov, weight decay wd (PyTorch's formulation):
//     g = grad + wd * p;  v = mu * v + g;  p -= lr * (nesterov ? g + mu * v : v)
//   Adam (Kingma & Ba 2015): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
//     p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
//   AdaMax (same paper, sec. 7): u = max(b2 u, |g|);  p -= lr / (1-b1^t) * m / (u + eps)

import * as ops from '../autograd/index.js';
import { engine, keep, tidy } from '../tensor/engine.js';
import { Tensor } from '../tensor/tensor.js';

export interface Optimizer {
  lr: number;
  step(): void;
  zeroGrad(): void;
  /** Optimizer state tensors by parameter index, for checkpoints. */
  state(): Map<string, Tensor>;
  loadState(state: Map<string, Tensor>): void;
}

abstract class Base implements Optimizer {
  protected readonly slots = new Map<string, Tensor>();
  constructor(protected readonly params: Tensor[], public lr: number) {}

  protected slot(i: number, name: string, like: Tensor): Tensor {
    const key = `${i}.${name}`;
    let t = this.slots.get(key);
    if (!t) this.slots.set(key, (t = keep(Tensor.zeros(like.shape))));
    return t;
  }

  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  state(): Map<string, Tensor> {
    return new Map(this.slots);
  }

  loadState(state: Map<string, Tensor>): void {
    for (const [k, v] of state) {
      const own = this.slots.get(k) ?? keep(Tensor.zeros(v.shape));
      this.slots.set(k, own.assign(v));
    }
  }

  step(): void {
    ops.noGrad(() =>
      this.params.forEach((p, i) => {
        if (p.grad) tidy(() => this.update(p, p.grad!, i));
      }),
    );
  }

  protected abstract update(p: Tensor, g: Tensor, i: number): void;
}

export class SGD extends Base {
  constructor(params: Tensor[], lr: number, readonly opts: { momentum?: number; nesterov?: boolean; weightDecay?: number } = {}) {
    super(params, lr);
  }
  /** One fused kernel per parameter (kernels' sgdStep: the formula above in f32), no temporaries. */
  protected update(p: Tensor, grad: Tensor, i: number): void {
    const { momentum = 0, nesterov = false, weightDecay = 0 } = this.opts;
    if (p.dtype !== 'f32' || grad.dtype !== 'f32' || grad.size !== p.size) {
      throw new TypeError(`lowbit: SGD: gradient ${grad.dtype}[${grad.size}] does not fit parameter ${p.dtype}[${p.size}]`);
    }
    const v = momentum ? this.slot(i, 'momentum', p).ptr : 0;
    engine.kernels.sgdStep(p.ptr, grad.ptr, v, p.size, this.lr, momentum, weightDecay, nesterov);
  }
}

export class Adam extends Base {
  private t = 0;
  constructor(params: Tensor[], lr = 1e-3, readonly opts: { beta1?: number; beta2?: number; eps?: number; weightDecay?: number; adamax?: boolean } = {}) {
    super(params, lr);
  }
  override step(): void {
    this.t++;
    super.step();
  }
  protected update(p: Tensor, grad: Tensor, i: number): void {
    const { beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0, adamax = false } = this.opts;
    const g = weightDecay ? ops.add(grad, ops.mulScalar(p, weightDecay)) : grad;
    const m = this.slot(i, 'm', p), v = this.slot(i, 'v', p);
    m.assign(ops.add(ops.mulScalar(m, beta1), ops.mulScalar(g, 1 - beta1)));
    const stepSize = this.lr / (1 - beta1 ** this.t);
    let denom: Tensor;
    if (adamax) {
      v.assign(ops.maximum(ops.mulScalar(v, beta2), ops.abs(g)));
      denom = ops.addScalar(v, eps);
    } else {
      v.assign(ops.add(ops.mulScalar(v, beta2), ops.mulScalar(ops.square(g), 1 - beta2)));
      denom = ops.addScalar(ops.sqrt(ops.mulScalar(v, 1 / (1 - beta2 ** this.t))), eps);
    }
    p.assign(ops.sub(p, ops.mulScalar(ops.div(m, denom), stepSize)));
  }
  override state(): Map<string, Tensor> {
    const s = super.state();
    s.set('t', Tensor.from([this.t]));
    return s;
  }
  override loadState(state: Map<string, Tensor>): void {
    const t = state.get('t');
    if (t) this.t = t.item();
    super.loadState(new Map([...state].filter(([k]) => k !== 't')));
  }
}

export class AdaMax extends Adam {
  constructor(params: Tensor[], lr = 2e-3, opts: { beta1?: number; beta2?: number; eps?: number; weightDecay?: number } = {}) {
    super(params, lr, { ...opts, adamax: true });
  }
}

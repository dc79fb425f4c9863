// Building blocks with a skip connection (ResNet basic block) and the depthwise-separable block
// (MobileNet), as modules so that every conv, BN and linear layer keeps a dotted name.

import * as ops from '../autograd/index.js';
import { BatchNorm, Conv2d, Module } from '../nn/index.js';
import type { Random } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

/** conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut (identity, or 1x1 conv + BN when the shape changes), then ReLU. */
export class BasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm;
  readonly shortcutConv: Conv2d | null = null;
  readonly shortcutBn: BatchNorm | null = null;

  constructor(readonly inC: number, readonly outC: number, readonly stride: number, rng: Random) {
    super();
    this.conv1 = this.addChild('conv1', new Conv2d(inC, outC, 3, rng, { stride, padding: 1, bias: false }));
    this.bn1 = this.addChild('bn1', new BatchNorm(outC));
    this.conv2 = this.addChild('conv2', new Conv2d(outC, outC, 3, rng, { padding: 1, bias: false }));
    this.bn2 = this.addChild('bn2', new BatchNorm(outC));
    if (stride !== 1 || inC !== outC) {
      this.shortcutConv = this.addChild('shortcut.0', new Conv2d(inC, outC, 1, rng, { stride, bias: false }));
      this.shortcutBn = this.addChild('shortcut.1', new BatchNorm(outC));
    }
  }

  forward(x: Tensor): Tensor {
    const h = this.bn2.forward(this.conv2.forward(ops.relu(this.bn1.forward(this.conv1.forward(x)))));
    const skip = this.shortcutConv ? this.shortcutBn!.forward(this.shortcutConv.forward(x)) : x;
    return ops.relu(ops.add(h, skip));
  }

  describe(): string {
    return `BasicBlock(${this.inC}, ${this.outC}, stride ${this.stride})`;
  }
}

/** Depthwise 3x3 conv-BN-ReLU, then pointwise 1x1 conv-BN-ReLU (Howard et al. 2017). */
export class DepthwiseSeparable extends Module {
  readonly depthwise: Conv2d;
  readonly bn1: BatchNorm;
  readonly pointwise: Conv2d;
  readonly bn2: BatchNorm;

  constructor(readonly inC: number, readonly outC: number, readonly stride: number, rng: Random) {
    super();
    this.depthwise = this.addChild('depthwise', new Conv2d(inC, inC, 3, rng, { stride, padding: 1, groups: inC, bias: false }));
    this.bn1 = this.addChild('bn1', new BatchNorm(inC));
    this.pointwise = this.addChild('pointwise', new Conv2d(inC, outC, 1, rng, { bias: false }));
    this.bn2 = this.addChild('bn2', new BatchNorm(outC));
  }

  forward(x: Tensor): Tensor {
    const h = ops.relu(this.bn1.forward(this.depthwise.forward(x)));
    return ops.relu(this.bn2.forward(this.pointwise.forward(h)));
  }

  describe(): string {
    return `DepthwiseSeparable(${this.inC}, ${this.outC}, stride ${this.stride})`;
  }
}

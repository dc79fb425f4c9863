// The model zoo: architectures by name. A model is rebuilt from its name and config (stored in the model
// file's header), then its weights are loaded; a file never holds code.

import {
  BatchNorm, Conv2d, Dropout, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential, chainStep,
} from '../nn/index.js';
import * as ops from '../autograd/index.js';
import type { Tensor } from '../tensor/tensor.js';
import { Random } from '../tensor/random.js';
import { LowbitError } from '../errors.js';
import { BasicBlock, DepthwiseSeparable } from './blocks.js';

export interface ModelConfig {
  /** Input channels, height and width. */
  inChannels: number;
  inputSize: number;
  classes: number;
  /** Architecture knobs (widths), recorded so that the file rebuilds the same model. */
  width?: number;
}

export interface ZooEntry {
  name: string;
  description: string;
  /** The paper the architecture follows. */
  reference: string;
  defaults: ModelConfig;
  build(config: ModelConfig, rng: Random): Module;
}

const mlp: ZooEntry = {
  name: 'mlp',
  description: 'permutation-invariant MLP: 3 hidden layers with batch norm (BinaryConnect\'s MNIST MLP, narrower)',
  reference: 'Courbariaux, Bengio & David, BinaryConnect, NeurIPS 2015 (3 x 1024 hidden units there)',
  defaults: { inChannels: 1, inputSize: 28, classes: 10, width: 512 },
  build(c, rng) {
    const w = c.width ?? 512;
    const inF = c.inChannels * c.inputSize * c.inputSize;
    return new Sequential(
      Flatten(),
      new Linear(inF, w, rng, { bias: false }), new BatchNorm(w), ReLU(),
      new Linear(w, w, rng, { bias: false }), new BatchNorm(w), ReLU(),
      new Linear(w, w, rng, { bias: false }), new BatchNorm(w), ReLU(),
      new Linear(w, c.classes, rng),
    );
  },
};

const lenet5: ZooEntry = {
  name: 'lenet5',
  description: 'LeNet-5: conv5x5(6)-pool-conv5x5(16)-pool-fc120-fc84-fc, ReLU and max pooling',
  reference: 'LeCun, Bottou, Bengio & Haffner, Proc. IEEE 1998',
  defaults: { inChannels: 1, inputSize: 28, classes: 10 },
  build(c, rng) {
    // 28x28 inputs are padded by 2 so that the first conv sees LeNet's 32x32.
    const pad = c.inputSize === 28 ? 2 : 0;
    const s1 = Math.floor((c.inputSize + 2 * pad - 4) / 2);
    const s2 = Math.floor((s1 - 4) / 2);
    if (s2 < 1) throw new LowbitError(`lenet5 needs inputs of at least 28x28, got ${c.inputSize}x${c.inputSize}`);
    return new Sequential(
      new Conv2d(c.inChannels, 6, 5, rng, { padding: pad }), ReLU(), MaxPool2d({ kernel: 2 }),
      new Conv2d(6, 16, 5, rng), ReLU(), MaxPool2d({ kernel: 2 }),
      Flatten(),
      new Linear(16 * s2 * s2, 120, rng), ReLU(),
      new Linear(120, 84, rng), ReLU(),
      new Linear(84, c.classes, rng),
    );
  },
};

const vggSmall: ZooEntry = {
  name: 'vgg-small',
  description: 'VGG-Small for CIFAR: 2x(w)C3-MP2-2x(2w)C3-MP2-2x(4w)C3-MP2-FC, batch norm after every conv',
  reference: 'Zhang et al., LQ-Nets, ECCV 2018; Hubara et al., BNN, NeurIPS 2016 (w = 128 there)',
  defaults: { inChannels: 3, inputSize: 32, classes: 10, width: 64 },
  build(c, rng) {
    const w = c.width ?? 64;
    const layers: Module[] = [];
    let inC = c.inChannels;
    for (const outC of [w, 2 * w, 4 * w]) {
      for (let i = 0; i < 2; i++) {
        layers.push(new Conv2d(inC, outC, 3, rng, { padding: 1, bias: false }), new BatchNorm(outC), ReLU());
        inC = outC;
      }
      layers.push(MaxPool2d({ kernel: 2 }));
    }
    const side = Math.floor(c.inputSize / 8);
    layers.push(Flatten(), new Linear(4 * w * side * side, c.classes, rng));
    return new Sequential(...layers);
  },
};

/**
 * ResNet of basic blocks (He et al. 2016): a stem, stages of blocks (the first block of every stage after the
 * first has stride 2), global average pooling, fc. The CIFAR stem is conv3x3-BN-ReLU (sec. 4.2); the ImageNet
 * stem conv7x7/2-BN-ReLU-maxpool3x3/2 (Table 1).
 */
class ResNet extends Module {
  constructor(c: ModelConfig, rng: Random, opts: { stem: 'cifar' | 'imagenet'; stages: number; blocksPerStage: number; width: number }) {
    super();
    const w = c.width ?? opts.width;
    const imagenet = opts.stem === 'imagenet';
    this.addChild('conv1', new Conv2d(c.inChannels, w, imagenet ? 7 : 3, rng, { stride: imagenet ? 2 : 1, padding: imagenet ? 3 : 1, bias: false }));
    this.addChild('bn1', new BatchNorm(w));
    if (imagenet) this.addChild('maxpool', MaxPool2d({ kernel: 3, stride: 2, padding: 1 }));
    let inC = w;
    for (let stage = 0; stage < opts.stages; stage++) {
      const outC = w * 2 ** stage;
      for (let b = 0; b < opts.blocksPerStage; b++) {
        this.addChild(`layer${stage + 1}.${b}`, new BasicBlock(inC, outC, stage > 0 && b === 0 ? 2 : 1, rng));
        inC = outC;
      }
    }
    this.addChild('fc', new Linear(inC, c.classes, rng));
  }
  forward(x: Tensor) {
    const children = new Map(this.namedChildren());
    let h = chainStep(x, x, (v) => ops.relu(children.get('bn1')!.forward(children.get('conv1')!.forward(v))));
    for (const [name, m] of children) {
      if (name === 'maxpool' || name.startsWith('layer')) h = chainStep(h, x, (v) => m.forward(v));
    }
    return chainStep(h, x, (v) => children.get('fc')!.forward(ops.flatten(ops.globalAvgPool2d(v))));
  }
  describe() {
    return 'ResNet';
  }
}

const resnet20: ZooEntry = {
  name: 'resnet20',
  description: 'ResNet-20 for CIFAR: 3 stages of 3 basic blocks (16, 32, 64 channels), 1x1-conv shortcuts where the shape changes',
  reference: 'He, Zhang, Ren & Sun, Deep Residual Learning, CVPR 2016, sec. 4.2 (option B shortcuts)',
  defaults: { inChannels: 3, inputSize: 32, classes: 10, width: 16 },
  build: (c, rng) => new ResNet(c, rng, { stem: 'cifar', stages: 3, blocksPerStage: 3, width: 16 }),
};

const resnet18: ZooEntry = {
  name: 'resnet18',
  description: 'ResNet-18 for ImageNet-sized inputs (224x224): 7x7/2 conv, max pool, 4 stages of 2 basic blocks (64..512), 1x1-conv shortcuts',
  reference: 'He, Zhang, Ren & Sun, Deep Residual Learning, CVPR 2016, Table 1',
  defaults: { inChannels: 3, inputSize: 224, classes: 1000, width: 64 },
  build: (c, rng) => new ResNet(c, rng, { stem: 'imagenet', stages: 4, blocksPerStage: 2, width: 64 }),
};

class MobileNetMini extends Module {
  constructor(c: ModelConfig, rng: Random) {
    super();
    const w = c.width ?? 32;
    const body: Module[] = [new Conv2d(c.inChannels, w, 3, rng, { padding: 1, bias: false }), new BatchNorm(w), ReLU()];
    let inC = w;
    for (const [outC, stride] of [[2 * w, 1], [4 * w, 2], [4 * w, 1], [8 * w, 2], [8 * w, 1]] as const) {
      body.push(new DepthwiseSeparable(inC, outC, stride, rng));
      inC = outC;
    }
    this.addChild('features', new Sequential(...body));
    this.addChild('dropout', new Dropout(0.2, rng));
    this.addChild('fc', new Linear(inC, c.classes, rng));
  }
  forward(x: Tensor) {
    const [features, dropout, fc] = this.namedChildren().map(([, m]) => m);
    return fc.forward(dropout.forward(ops.flatten(ops.globalAvgPool2d(features.forward(x)))));
  }
  describe() {
    return 'MobileNetMini';
  }
}

const mobilenetMini: ZooEntry = {
  name: 'mobilenet-mini',
  description: 'a small MobileNet for CIFAR: conv3x3(32) then 5 depthwise-separable blocks (64..256), global pool, fc',
  reference: 'Howard et al., MobileNets, arXiv:1704.04861, 2017',
  defaults: { inChannels: 3, inputSize: 32, classes: 10, width: 32 },
  build: (c, rng) => new MobileNetMini(c, rng),
};

export const ZOO: ZooEntry[] = [mlp, lenet5, vggSmall, resnet20, mobilenetMini, resnet18];

export function zooEntry(name: string): ZooEntry {
  const e = ZOO.find((z) => z.name === name);
  if (!e) throw new LowbitError(`unknown model "${name}"; the zoo has: ${ZOO.map((z) => z.name).join(', ')}`);
  return e;
}

/** Build a zoo model with fresh weights drawn from `seed`. */
export function buildModel(name: string, config: Partial<ModelConfig> = {}, seed = 0): { model: Module; config: ModelConfig } {
  const e = zooEntry(name);
  const full = { ...e.defaults, ...config };
  return { model: e.build(full, new Random(seed)), config: full };
}

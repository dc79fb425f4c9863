// lowbit's public API.
export { Tensor, shapeSize, formatShape } from './tensor/tensor.js';
export type { DType, Shape, GradNode } from './tensor/tensor.js';
export { engine, tidy, tidyAsync, keep } from './tensor/engine.js';
export { init, setBackend, getBackend, shutdown } from './tensor/backend.js';
export * from './autograd/index.js';
export * as nn from './nn/index.js';
export { Random } from './tensor/random.js';
export * as optim from './train/optim.js';
export * as data from './data/index.js';

// Differentiable ops and the autograd entry points.
export { backward, customGrad, noGrad, isGradEnabled, record, hasNonFinite, NumericError } from './graph.js';
export * from './ops/elementwise.js';
export * from './ops/reduce.js';
export * from './ops/shape.js';
export * from './ops/linear.js';
export * from './ops/conv.js';
export * from './ops/conv-transpose.js';
export * from './ops/pool.js';
export * from './ops/norm.js';
export * from './ops/loss.js';
export { broadcastShapes } from './ops/broadcast.js';

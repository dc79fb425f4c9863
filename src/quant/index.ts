// The survey's datatypes: quantizers (data + pure functions), the spec language, and the quantizers table.
// One file per technique; see docs/quantizers.md for every datatype's equations and paper.

export * from './quantizer.js';
export * from './rounding.js';
export * from './fixed.js';
export * from './minifloat.js';
export * from './log2.js';
export * from './binary.js';
export * from './ternary.js';
export * from './dorefa.js';
export * from './affine.js';
export * from './kmeans.js';
export * from './spec.js';
export * from './cli-table.js';

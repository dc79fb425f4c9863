export { Module, chainStep } from './module.js';
export * from './layers.js';
export * from './graph-module.js';

export { Module } from './module.js';
export * from './layers.js';
export * from './graph-module.js';

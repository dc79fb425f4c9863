// The WebAssembly kernel tests again with relaxed SIMD (Node 20 needs the V8 flag, set here before any module
// is compiled): fused multiply-add, and the 5-row float register tiles that only run with it (assembly/gemm.ts).
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--experimental-wasm-relaxed-simd');
await import('./kernels-wasm.test.js');

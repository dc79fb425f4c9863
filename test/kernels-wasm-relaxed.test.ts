// The WebAssembly kernel tests again with relaxed SIMD (Node 20 needs the V8 flag, set here before any module
// is compiled): fused multiply-add, and the 5-row float register tiles that only run with it (assembly/gemm.ts).
import { setFlagsFromString } from 'node:v8';
import { readFile } from 'node:fs/promises';
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { relaxedVariant } from '../src/kernels/wasm/relaxed.js';

setFlagsFromString('--experimental-wasm-relaxed-simd');

it('the V8 flag took effect: the engine accepts the relaxed-SIMD module, so the rerun below exercises it', async () => {
  const bytes = new Uint8Array(await readFile(new URL('../../build/kernels.wasm', import.meta.url)));
  const variant = relaxedVariant(bytes);
  assert.ok(variant, 'the microkernels no longer have the mul/add shape relaxed.ts rewrites');
  assert.equal(WebAssembly.validate(variant), true);
});

// Every kernel test again; its 'relaxed SIMD' case asserts the kernels use the variant exactly when it validates.
await import('./kernels-wasm.test.js');

// Popcount throughput in WebAssembly here: scalar i64.popcnt against SIMD i8x16.popcnt, on 32 KB of words (L1).
// The XNOR-popcount convolution (assembly/binary.ts) is bound by it: docs/results/bench/README.md.
//   node bench/popcount.mjs        (compiles assembly/bench/popcount.ts with the project's AssemblyScript)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'lowbit-popcount-'));
const wasmPath = join(dir, 'popcount.wasm');
try {
  execFileSync(join(root, 'node_modules/.bin/asc'), [join(root, 'assembly/bench/popcount.ts'), '-O3', '--enable', 'simd', '--runtime', 'stub', '--initialMemory', '2', '-o', wasmPath], { stdio: 'inherit' });
  const { instance } = await WebAssembly.instantiate(readFileSync(wasmPath), { env: { abort() { throw new Error('abort'); } } });
  const m = instance.exports;
  const words = 4096, base = 1024, reps = 2000;
  const bytes = new Uint8Array(m.memory.buffer, base, words * 8);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.imul(i + 1, 2654435761) >>> 24;
  const expected = bytes.reduce((s, b) => s + b.toString(2).split('1').length - 1, 0) * reps;
  const rates = { scalarPopcount: [], simdPopcount: [] };
  // alternate the two, after a warm-up long enough for V8's optimizing tier
  for (let round = 0; round < 12; round++) {
    for (const f of Object.keys(rates)) {
      const t = performance.now();
      const count = m[f](base, words, reps);
      const ms = performance.now() - t;
      if (Number(count) !== expected) throw new Error(`${f}: counted ${count} bits, expected ${expected}`);
      if (round >= 4) rates[f].push((words * reps) / ms / 1e6);
    }
  }
  const median = (v) => v.sort((a, b) => a - b)[v.length >> 1];
  console.log(`${cpus()[0]?.model ?? 'cpu'}, Node ${process.versions.node} (V8 ${process.versions.v8})`);
  for (const [f, v] of Object.entries(rates)) console.log(`${f.padEnd(15)} ${median(v).toFixed(2)} G words/s (median of ${v.length})`);
  console.log(`scalar / simd: ${(median(rates.scalarPopcount) / median(rates.simdPopcount)).toFixed(2)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

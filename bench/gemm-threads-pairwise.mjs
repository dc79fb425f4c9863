// GEMM 512^3 at 1 and 2 threads alternated call by call in one process (the machine is shared: alternating puts both
// counts in the same load phases), after `npm run build`.
//   node bench/gemm-threads-pairwise.mjs PAIRS          median of the per-pair 1T/2T ratios, and the medians
//   node bench/gemm-threads-pairwise.mjs PAIRS --1t     1 thread only (start two at once to see what the host gives
//                                                       two busy cores: the ceiling of any 2-thread speedup)
import v8 from 'node:v8';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const { EngineMemory } = await import('../dist/src/kernels/memory.js');
const { createWasmKernels } = await import('../dist/src/kernels/wasm/index.js');

const pairs = Number(process.argv[2] ?? 300);
const oneThread = process.argv.includes('--1t');
const mem = new EngineMemory({ shared: true, initialBytes: 64 * 2 ** 20 });
const k = await createWasmKernels(mem, { threads: oneThread ? 1 : 2 });
const n = 512, a = mem.alloc(n * n * 4), b = mem.alloc(n * n * 4), c = mem.alloc(n * n * 4);
for (let i = 0; i < n * n; i++) { mem.f32[(a >> 2) + i] = Math.sin(i); mem.f32[(b >> 2) + i] = Math.cos(i); }
const gemm = () => k.gemm(false, false, n, n, n, a, n, b, n, c, n, false);
/** ms per GEMM at `threads`: one untimed call (the other count's caches and workers), then two timed. */
const time = (threads) => { k.setThreads(threads); gemm(); const t0 = performance.now(); gemm(); gemm(); return (performance.now() - t0) / 2; };
const median = (v) => { const s = [...v].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

for (let i = 0; i < 200; i++) { time(1); if (!oneThread) time(2); } // warm-up: V8's optimizing tier
const t1 = [], t2 = [], ratios = [];
for (let i = 0; i < pairs; i++) {
  const x = time(1);
  t1.push(x);
  if (oneThread) continue;
  const y = time(2);
  t2.push(y);
  ratios.push(x / y);
}
if (oneThread) console.log(`1T median ${median(t1).toFixed(2)} ms (${pairs} calls)`);
else console.log(`median 1T/2T pair ratio ${median(ratios).toFixed(2)}; 1T median ${median(t1).toFixed(2)} ms, 2T median ${median(t2).toFixed(2)} ms (${pairs} pairs)`);
process.exit(0);

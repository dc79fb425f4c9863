// A/B of the ResNet-20 conv layers (batch 128, 1 thread): two builds' kernels called alternately, CPU time
// (process.cpuUsage) per call, median per layer and op, and the largest difference of their results.
// A build root is a directory with that build's dist/ and build/ (e.g. `cp -r dist build /tmp/old` before a
// change, with node_modules linked). usage: node bench/ab-conv-layers.mjs ROOT_A ROOT_B [rounds] [layer regexp]
import v8 from 'node:v8';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const [rootA, rootB] = [process.argv[2], process.argv[3]];
const rounds = +(process.argv[4] ?? 15);
const filter = process.argv[5] ? new RegExp(process.argv[5]) : null;
const sets = [];
for (const root of [rootA, rootB]) {
  const { EngineMemory } = await import(root + '/dist/src/kernels/memory.js');
  const { createWasmKernels } = await import(root + '/dist/src/kernels/wasm/index.js');
  const mem = new EngineMemory({ shared: true, initialBytes: 256 * 2 ** 20 });
  const k = await createWasmKernels(mem, { threads: 1, winogradF4: true }); // as the trainer's steps (old builds ignore it)
  sets.push({ root, mem, k });
}
const N = 128;
const conv = (inC, outC, inHW, k, s) => {
  const pad = (k - 1) >> 1, out = Math.floor((inHW + 2 * pad - k) / s) + 1;
  return { n: N, inC, inH: inHW, inW: inHW, outC, kH: k, kW: k, strideH: s, strideW: s, padTop: pad, padLeft: pad, padBottom: pad, padRight: pad, dilationH: 1, dilationW: 1, groups: 1, outH: out, outW: out };
};
// [name, geometry, calls per step of (fwd, bwdIn, bwdW)]
const layers = [
  ['stem 3->16 32', conv(3, 16, 32, 3, 1), [1, 0, 1]],
  ['16->16 32', conv(16, 16, 32, 3, 1), [6, 6, 6]],
  ['16->32 s2', conv(16, 32, 32, 3, 2), [1, 1, 1]],
  ['1x1 16->32 s2', conv(16, 32, 32, 1, 2), [1, 1, 1]],
  ['32->32 16', conv(32, 32, 16, 3, 1), [5, 5, 5]],
  ['32->64 s2', conv(32, 64, 16, 3, 2), [1, 1, 1]],
  ['1x1 32->64 s2', conv(32, 64, 16, 1, 2), [1, 1, 1]],
  ['64->64 8', conv(64, 64, 8, 3, 1), [5, 5, 5]],
];
function rnd(mem, p, n, seed) { let s = seed >>> 0; const f = mem.f32; for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; f[(p >>> 2) + i] = s / 2 ** 32 - 0.5; } }
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
let totA = 0, totB = 0;
for (const [name, g, calls] of layers) {
  if (filter && !filter.test(name)) continue;
  const ops = sets.map(({ mem, k }) => {
    const xs = g.n * g.inC * g.inH * g.inW, ws = g.outC * g.inC * g.kH * g.kW, ys = g.n * g.outC * g.outH * g.outW;
    const x = mem.alloc(xs * 4), w = mem.alloc(ws * 4), y = mem.alloc(ys * 4), dx = mem.alloc(xs * 4), dw = mem.alloc(ws * 4), dy = mem.alloc(ys * 4);
    rnd(mem, x, xs, 1); rnd(mem, w, ws, 2); rnd(mem, dy, ys, 3);
    return {
      fwd: () => k.conv2d(g, x, w, 0, y),
      bwdIn: () => k.conv2dBackwardInput(g, dy, w, dx),
      bwdW: () => k.conv2dBackwardWeight(g, x, dy, dw),
      out: () => [mem.f32.slice(y >>> 2, (y >>> 2) + ys), mem.f32.slice(dx >>> 2, (dx >>> 2) + xs), mem.f32.slice(dw >>> 2, (dw >>> 2) + ws)],
    };
  });
  const line = [name.padEnd(15)];
  ['fwd', 'bwdIn', 'bwdW'].forEach((op, oi) => {
    if (!calls[oi]) return;
    const t = [[], []], ratio = [];
    for (let r = 0; r < rounds + 2; r++) {
      const order = r % 2 ? [1, 0] : [0, 1];
      const dt = [0, 0];
      for (const s of order) { const c0 = cpu(); ops[s][op](); dt[s] = cpu() - c0; }
      if (r >= 2) { t[0].push(dt[0]); t[1].push(dt[1]); ratio.push(dt[0] / dt[1]); }
    }
    const a = med(t[0]), b = med(t[1]);
    totA += a * calls[oi]; totB += b * calls[oi];
    line.push(`${op} ${a.toFixed(1)}/${b.toFixed(1)}ms x${med(ratio).toFixed(3)}`);
  });
  // same results?
  const oa = ops[0].out(), ob = ops[1].out();
  let maxd = 0;
  oa.forEach((arr, i) => { let m = 0, d = 0; for (let j = 0; j < arr.length; j++) { m = Math.max(m, Math.abs(arr[j])); d = Math.max(d, Math.abs(arr[j] - ob[i][j])); } if (m) maxd = Math.max(maxd, d / m); });
  line.push(`maxrel ${maxd.toExponential(1)}`);
  console.log(line.join('  '));
}
console.log(`conv total per step (weighted by calls): A ${totA.toFixed(0)} ms, B ${totB.toFixed(0)} ms, A/B ${(totA / totB).toFixed(3)}`);
for (const s of sets) await s.k.dispose();

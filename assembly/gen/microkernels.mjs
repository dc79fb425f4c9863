// Generates assembly/microkernels.ts: the register-tiled inner loops of GEMM and convolution.
// Run: node assembly/gen/microkernels.mjs   (the generated file is checked in; the build does not run this.)
//
// A microkernel keeps an MR x NR tile of C in MR * NR/4 f32x4 accumulators (wasm locals that V8 keeps in
// xmm registers: x64 has 16, V8 allocates 15) and runs the K loop:
//   acc[i][j] += splat(A[k][i]) * B[k][j*4 .. j*4+3]
// Three families share that body and differ in where A and B come from:
//   gemm_*   A packed [k][MR], B packed [k][NR]                           (blocked GEMM)
//   conv_*   A packed weights [k][MR], B read in place: xpad + offs[k]    (implicit-im2col convolution)
//   wgrad_*  A read in place from MR input streams, B packed dY^T [p][NR] (convolution weight gradient)
//   convpx_* A read in place: MR output pixels' inputs at x_i + offs[k], B packed weights [k][NR] (output
//            channels): the transposed implicit im2col, tiles of pixels x channels (few output channels)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// Written as add(mul(a, b), acc) so that the compiled body reads "... f32x4.mul; local.get acc; f32x4.add":
// src/kernels/wasm/relaxed.ts rewrites exactly that into "local.get acc; f32x4.relaxed_madd" to derive the
// relaxed-SIMD (fused multiply-add) variant of these kernels at load time.
function madd(acc, a, b, relaxed) {
  return relaxed ? `f32x4.relaxed_madd(${a}, ${b}, ${acc})` : `f32x4.add(f32x4.mul(${a}, ${b}), ${acc})`;
}

function decls(MR, NV) {
  let s = '';
  for (let i = 0; i < MR; i++) for (let j = 0; j < NV; j++) s += `  let c${i}_${j} = f32x4.splat(0);\n`;
  return s;
}

/** Body of one k step: B vectors from `bexpr(j)`, A broadcasts from `aexpr(i)`. */
function step(MR, NV, aexpr, bexpr, relaxed, ind = '    ') {
  let s = '';
  for (let j = 0; j < NV; j++) s += `${ind}const b${j} = ${bexpr(j)};\n`;
  for (let i = 0; i < MR; i++) {
    s += `${ind}const a${i} = ${aexpr(i)};\n`;
    for (let j = 0; j < NV; j++) s += `${ind}c${i}_${j} = ${madd(`c${i}_${j}`, `a${i}`, `b${j}`, relaxed)};\n`;
  }
  return s;
}

/** Store the tile: C (+)= acc, rows < rows (a runtime count <= MR), with an optional per-row bias. */
function store(MR, NV, { bias = false, rowsParam = false } = {}) {
  let s = '';
  for (let i = 0; i < MR; i++) {
    const ind = rowsParam && i > 0 ? '    ' : '  ';
    if (rowsParam && i > 0) s += `  if (rows > ${i}) {\n`;
    s += `${ind}{\n${ind}  const r = c + ${i} * ldc;\n`;
    if (bias) s += `${ind}  const bv = bias != 0 ? v128.load32_splat(bias, ${i * 4}) : f32x4.splat(0);\n`;
    for (let j = 0; j < NV; j++) {
      let v = `c${i}_${j}`;
      if (bias) v = `f32x4.add(${v}, bv)`;
      s += `${ind}  v128.store(r, acc ? f32x4.add(v128.load(r, ${j * 16}), ${v}) : ${v}, ${j * 16});\n`;
    }
    s += `${ind}}\n`;
    if (rowsParam && i > 0) s += `  }\n`;
  }
  return s;
}

/**
 * The broadcast of A[k][i] from a packed panel (MR floats per k at `pa`). Up to 4 rows: one load32_splat per
 * row. More rows: V8 schedules every load of the loop body before its arithmetic, so MR splat loads would
 * all be live at once and spill; instead rows 0-3 come from one vector load, broadcast lane by lane with
 * shuffles (pure, so scheduled next to their use), and row 4 from a splat load: 10 accumulators + 2 B
 * + these 2 + 1 broadcast fill the 15 registers with FMA.
 */
function aLoads(MR) {
  if (MR <= 4) return { pre: '', a: (i) => `v128.load32_splat(pa, ${i * 4})` };
  if (MR > 5) throw new Error('rows 6+ spill under V8 (see aLoads)');
  return {
    pre: '    const a03 = v128.load(pa, 0);\n',
    a: (i) => (i < 4 ? `i32x4.shuffle(a03, a03, ${i}, ${i}, ${i}, ${i})` : `v128.load32_splat(pa, ${i * 4})`),
  };
}

function gemmKernel(MR, NR, relaxed) {
  const NV = NR / 4;
  const A = aLoads(MR);
  let s = `/** C[MR x NR] (+)= packed A (kc x ${MR}) * packed B (kc x ${NR}); ldc in bytes. */\n`;
  s += `export function gemm_mk_${MR}x${NR}(kc: i32, pa: usize, pb: usize, c: usize, ldc: usize, acc: bool): void {\n`;
  s += decls(MR, NV);
  // the loop runs on the A pointer alone (no counter): measurably faster under V8
  s += `  const end = pa + <usize>kc * ${MR * 4};\n  while (pa < end) {\n`;
  s += A.pre + step(MR, NV, A.a, (j) => `v128.load(pb, ${j * 16})`, relaxed);
  s += `    pa += ${MR * 4};\n    pb += ${NR * 4};\n  }\n`;
  s += store(MR, NV);
  return s + '}\n\n';
}

function convKernel(MR, NR, relaxed) {
  const NV = NR / 4;
  const A = aLoads(MR);
  let s = `/**\n * Implicit-im2col tile: C[rows x ${NR}] (+)= W (packed kc x ${MR}) * X, where X[k][j] = f32 at xb + offs[k] + 4j\n`;
  s += ` * (the input pixels of one output row, padded and phase-split so they are contiguous). ldc in bytes.\n */\n`;
  s += `export function conv_mk_${MR}x${NR}(kc: i32, pa: usize, xb: usize, offs: usize, c: usize, ldc: usize, acc: bool, bias: usize, rows: i32): void {\n`;
  s += decls(MR, NV);
  s += `  const end = pa + <usize>kc * ${MR * 4};\n  while (pa < end) {\n    const xp = xb + <usize>load<i32>(offs);\n`;
  s += A.pre + step(MR, NV, A.a, (j) => `v128.load(xp, ${j * 16})`, relaxed);
  s += `    pa += ${MR * 4};\n    offs += 4;\n  }\n`;
  s += store(MR, NV, { bias: true, rowsParam: true });
  return s + '}\n\n';
}

function wgradKernel(MR, NR, relaxed) {
  const NV = NR / 4;
  const ps = Array.from({ length: MR }, (_, i) => `x${i}`);
  let s = `/**\n * Weight-gradient tile: C[${MR} x ${NR}] += A * B over the pixels of \`nrows\` output rows of \`width\` pixels,\n`;
  s += ` * A[i][p] = f32 at x_i + 4 * (pixel in row) + rowStep * row (one input stream per tap), B packed dY^T [p][${NR}].\n */\n`;
  s += `export function wgrad_mk_${MR}x${NR}(nrows: i32, width: i32, rowStep: usize, ${ps.map((p) => `${p}: usize`).join(', ')}, pb: usize, c: usize, ldc: usize): void {\n`;
  s += decls(MR, NV);
  s += `  const end = <usize>width << 2;\n  for (let r = 0; r < nrows; r++) {\n    let o: usize = 0;\n    while (o < end) {\n`;
  s += step(MR, NV, (i) => `v128.load32_splat(x${i} + o)`, (j) => `v128.load(pb, ${j * 16})`, relaxed, '      ');
  s += `      pb += ${NR * 4};\n      o += 4;\n    }\n`;
  for (const p of ps) s += `    ${p} += rowStep;\n`;
  s += `  }\n  const acc = true;\n`;
  s += store(MR, NV);
  return s + '}\n\n';
}

function convpxKernel(MR, NR, relaxed) {
  const NV = NR / 4;
  const ps = Array.from({ length: MR }, (_, i) => `x${i}`);
  let s = `/**\n * Pixel tile of a convolution: C[${MR} pixels x ${NR} channels] = A * B, A[i][k] = f32 at x_i + offs[k] (the inputs of\n`;
  s += ` * output pixel i, read in place from xpad), B the packed weights [k][${NR}]; C written as [pixel][${NR}], ldc in bytes.\n */\n`;
  s += `export function convpx_mk_${MR}x${NR}(kc: i32, pb: usize, offs: usize, ${ps.map((p) => `${p}: usize`).join(', ')}, c: usize, ldc: usize): void {\n`;
  s += decls(MR, NV);
  s += `  const end = pb + <usize>kc * ${NR * 4};\n  while (pb < end) {\n    const o = <usize>load<i32>(offs);\n`;
  s += step(MR, NV, (i) => `v128.load32_splat(x${i} + o)`, (j) => `v128.load(pb, ${j * 16})`, relaxed);
  s += `    pb += ${NR * 4};\n    offs += 4;\n  }\n  const acc = false;\n`;
  s += store(MR, NV);
  return s + '}\n\n';
}

// Shapes built into the module (others can be generated for experiments: GEMM_SHAPES=6x8,2x16 ...).
// conv 3x8 serves output-channel counts that are multiples of 3 but not of 4 (LeNet's 6).
const gemmShapes = (process.env.GEMM_SHAPES ?? '4x8,5x8').split(',');
const convShapes = (process.env.CONV_SHAPES ?? '5x8,4x8,3x8').split(',');
const wgradShapes = (process.env.WGRAD_SHAPES ?? '4x8').split(',');
const convpxShapes = (process.env.CONVPX_SHAPES ?? '4x8').split(',');
const relaxed = process.env.RELAXED === '1';

let out = `// GENERATED by assembly/gen/microkernels.mjs — do not edit by hand.\n`;
out += `// Register-tiled inner loops (see the generator for the layout of each family). Measured on this machine
// (V8 11 / Node 20, x64): V8 keeps 15 xmm registers for wasm and schedules all loads of the loop body before
// its arithmetic, so accumulators + every loaded vector (+ a product temporary without FMA) must fit in 15.
// Plain SIMD: 4x8 is the fastest (5x8 fits, but its shuffles compete with mul and add for ports). With FMA
// (the relaxed variant, relaxed.ts): 5x8, A broadcast by lane shuffles, ran 5-15% faster than 4x8 (10
// accumulators hide the FMA latency); 6x8, 8x8, 4x12, 3x16 spill; unrolling the k loop spills too.${relaxed ? ' RELAXED SIMD (fused multiply-add).' : ''}\n\n`;
for (const sh of gemmShapes) { const [m, n] = sh.split('x').map(Number); out += gemmKernel(m, n, relaxed); }
for (const sh of convShapes) { const [m, n] = sh.split('x').map(Number); out += convKernel(m, n, relaxed); }
for (const sh of wgradShapes) { const [m, n] = sh.split('x').map(Number); out += wgradKernel(m, n, relaxed); }
for (const sh of convpxShapes) { const [m, n] = sh.split('x').map(Number); out += convpxKernel(m, n, relaxed); }
const target = process.env.OUT ?? path.join(here, '..', relaxed ? 'microkernels-relaxed.ts' : 'microkernels.ts');
fs.writeFileSync(target, out);
console.log(`wrote ${target}`);

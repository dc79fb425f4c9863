// 2^e elementwise (the log-domain quantizers' levels: pow2, log2, INQ) on 2^20 values, as a log2:4 training step
// of ResNet-20 calls it: lowbit's pow kernel on integer exponents (the exponent-field path) and on non-integer ones
// (Math.pow per lane, what every call took before), against onnxruntime-node's Pow on the same exponents, same run.
//   npm run build && node bench/pow.mjs
import * as ort from 'onnxruntime-node';
import { cpus } from 'node:os';
import { init, shutdown, Tensor, tidy } from '../dist/src/index.js';
import * as ops from '../dist/src/autograd/index.js';
import { encodeModel } from '../dist/bench/onnx-builders.js';

const n = 1 << 20, runs = 15;
// floor(log2 |x|) of activations: small integers, a fifth of them -Inf (ReLU's zeros)
const integer = Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? -Infinity : ((Math.imul(i, 2654435761) >>> 27) - 20)));
const fractional = integer.map((e) => (Number.isFinite(e) ? e + 0.5 : e));
const median = (v) => v.sort((a, b) => a - b)[v.length >> 1];

await init({ threads: 1 });
const lowbit = (exps) => {
  const e = Tensor.from(exps, [n]), two = Tensor.scalar(2);
  const times = [];
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    tidy(() => { ops.pow(two, e); });
    times.push(performance.now() - t);
  }
  const out = tidy(() => ops.pow(two, e).toFloat32Array()); // copied out of WebAssembly memory once, for the check
  e.dispose(); two.dispose();
  return { ms: median(times), out };
};

const model = encodeModel('pow', [{ name: 'pow', opType: 'Pow', input: ['B', 'E'], output: ['Y'] }],
  [{ name: 'E', dims: [n] }], [{ name: 'Y', dims: [n] }], [{ name: 'B', dims: [1], dataType: 1, floatData: [2] }], { B: Float32Array.of(2) });
const session = await ort.InferenceSession.create(model.bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
const peer = async (exps) => {
  const feeds = { E: new ort.Tensor('float32', exps, [n]) };
  const times = [];
  let out;
  for (let r = 0; r < runs; r++) {
    const t = performance.now();
    out = (await session.run(feeds)).Y.data;
    times.push(performance.now() - t);
  }
  return { ms: median(times), out };
};

console.log(`${cpus()[0]?.model ?? 'cpu'}, Node ${process.versions.node}; 2^e on ${n} values, 1 thread, median of ${runs}`);
for (const [label, exps] of [['integer exponents', integer], ['non-integer exponents', fractional]]) {
  const ours = lowbit(exps), theirs = await peer(exps);
  const differ = ours.out.findIndex((v, i) => !Object.is(v, theirs.out[i]));
  if (differ >= 0) throw new Error(`${label}: 2^${exps[differ]} is ${ours.out[differ]} here, ${theirs.out[differ]} in onnxruntime`);
  console.log(`${label.padEnd(22)} lowbit ${ours.ms.toFixed(2)} ms, onnxruntime-node ${theirs.ms.toFixed(2)} ms: ${(theirs.ms / ours.ms).toFixed(2)}x (same values)`);
}
await shutdown();

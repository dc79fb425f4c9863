// Whole ResNet-20 training step A/B (batch 128, 1 thread): the trainer's step (bench/train.ts) from two
// builds, alternately; CPU time per step of each call (4 steps: 1 warm-up + 3 timed, includes building the
// model), the wall median, and the per-round CPU ratio. Roots as in ab-conv-layers.mjs.
// usage: node bench/ab-train-step.mjs ROUNDS ROOT_A ROOT_B   (MODEL=lenet5 for LeNet-5)
import v8 from 'node:v8';
v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const rounds = +process.argv[2], roots = process.argv.slice(3);
const sets = [];
for (const root of roots) {
  const { init } = await import(root + '/dist/src/tensor/backend.js');
  await init({ threads: 1 });
  const bench = await import(root + '/dist/bench/train.js');
  sets.push({ name: root.split('/').pop(), bench, cpu: [], wall: [] });
}
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const model = process.env.MODEL ?? 'resnet20';
for (let r = 0; r < rounds + 1; r++) {
  const order = r % 2 ? [...sets].reverse() : sets;
  for (const s of order) {
    const c0 = process.cpuUsage();
    const res = s.bench.benchLowbitTrain(model, 1, { warmup: 1, runs: 3, warmupSeconds: 0 });
    const c = process.cpuUsage(c0);
    if (r === 0) continue; // first round: V8 tiering
    s.cpu.push((c.user + c.system) / 1000 / 4);
    s.wall.push(res.row.ms);
  }
}
const ratios = [];
for (let i = 0; i < sets[0].cpu.length; i++) ratios.push(sets[0].cpu[i] / sets[1].cpu[i]);
for (const s of sets) console.log(s.name.padEnd(10), 'cpu ms/step', med(s.cpu).toFixed(0), 'wall median ms/step', med(s.wall).toFixed(0), '  cpu', s.cpu.map((v) => v.toFixed(0)).join(' '));
console.log(`per-round cpu ratio ${sets[0].name}/${sets[1].name}: median ${med(ratios).toFixed(3)}  (${ratios.map((v) => v.toFixed(3)).join(' ')})`);
process.exit(0);

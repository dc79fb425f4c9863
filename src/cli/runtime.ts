// `lowbit export` (a quantized model as a packed runtime file, or a float/quantized model as ONNX), `lowbit inspect` (which kernel
// runs each layer, and why) and evaluation of packed files for `lowbit eval`.

import { textTable } from './table.js';
import { existsSync } from 'node:fs';
import { LowbitError, UsageError } from '../errors.js';
import { loadAnyModel, loadQuantizedModel, isQuantizedModelFile } from '../quant/load.js';
import { exportOnnx, type OnnxFormat } from '../formats/onnx/export.js';
import { writeFileAtomic } from '../formats/atomic.js';
import { disposeQuantized } from '../quant/quantized.js';
import { compileQuantized, exportPacked, isRuntimeFile, loadRuntimePlan, type Plan, type PlanLayerSummary } from '../runtime/index.js';
import { loadDataset, batches, evaluationBatchSize } from '../data/index.js';

function needFile(path: string): void {
  if (!existsSync(path)) throw new LowbitError(`no such file: ${path}; give a .lowbit file written by \`lowbit quantize\` or \`lowbit export\``);
}

export function runExport(o: { model: string; format: string; out: string }, log: (s: string) => void): void {
  const formats = ['lowbit', 'onnx', 'onnx-qdq'];
  if (!formats.includes(o.format)) throw new UsageError(`--format ${o.format}: use lowbit (the packed runtime file), onnx (float ONNX) or onnx-qdq (int8 QuantizeLinear/DequantizeLinear ONNX)`);
  if (!o.model.startsWith('zoo:')) needFile(o.model);
  if (o.format !== 'lowbit') {
    // ONNX: a quantized model (its fake quantizers in the graph) or a float model (onnx only)
    const m = loadAnyModel(o.model);
    try {
      const bytes = exportOnnx(m.quantized ?? m, o.format as OnnxFormat);
      writeFileAtomic(o.out, bytes);
      log(`wrote ${o.out}: ${bytes.length} bytes, ${o.format}${m.quantized ? ` (${m.quantized.spec.text})` : ' (float)'}; input float32 [N, ${m.config.inChannels}, ${m.config.inputSize}, ${m.config.inputSize}] = pixels / 255, normalization inside the graph; output [N, ${m.config.classes}]`);
    } finally {
      if (m.quantized) disposeQuantized(m.quantized);
      else m.model.dispose();
    }
    return;
  }
  if (o.model.startsWith('zoo:') || !isQuantizedModelFile(o.model)) throw new LowbitError(`${o.model} is not a quantized model; quantize it first with \`lowbit quantize --model ${o.model} --spec <datatype> --out q.lowbit\` (float models export with --format onnx)`);
  const q = loadQuantizedModel(o.model);
  try {
    const s = exportPacked(q, o.out);
    log(`wrote ${o.out}: ${s.bytes} bytes (theoretical ${s.theoreticalBytes}: ${s.packedParams} packed weights at their bit width + ${s.floatParams} float numbers; ${(100 * s.bytes / s.theoreticalBytes).toFixed(1)}%)`);
  } finally {
    disposeQuantized(q);
  }
}

/** The plan of a quantized model file or a packed file. */
export function planOf(path: string): { plan: Plan; metadata: Record<string, unknown>; dispose(): void } {
  needFile(path);
  if (isRuntimeFile(path)) {
    const { plan, metadata } = loadRuntimePlan(path);
    return { plan, metadata, dispose: () => plan.dispose() };
  }
  if (!isQuantizedModelFile(path)) throw new LowbitError(`${path} is a float model; \`lowbit inspect\` shows quantized models (lowbit quantize) and packed files (lowbit export --format lowbit)`);
  const q = loadQuantizedModel(path);
  const plan = compileQuantized(q);
  return { plan, metadata: q.sourceMetadata, dispose: () => { plan.dispose(); disposeQuantized(q); } };
}

export function summaryTable(rows: PlanLayerSummary[]): string {
  const t = textTable(['layer', 'kind', 'weights', 'inputs', 'stored bits', 'bits in memory', 'kernel', 'writes', 'fused', 'why']);
  for (const r of rows) t.push([r.name, r.kind, r.weights, r.activations, r.weightBits, r.memoryBits, r.family, r.output, r.fused.join('+'), r.reason]);
  return t.toString();
}

export function runInspect(o: { model: string; json?: boolean }, out: (s: string) => void): void {
  const p = planOf(o.model);
  try {
    const rows = p.plan.summary();
    if (o.json) out(JSON.stringify({ layers: rows }, null, 2));
    else {
      out(summaryTable(rows));
      const sim = rows.filter((r) => r.family === 'float' && r.weights !== 'fp32' && r.activations !== 'fp32');
      if (sim.length) out(`simulated in float (no integer kernel for these datatypes): ${sim.map((r) => r.name).join(', ')}`);
    }
  } finally {
    p.dispose();
  }
}

/** Accuracy of a packed file on a dataset's test split, run by the runtime. */
export async function evalPacked(path: string, dataset: string): Promise<{ accuracy: number; samples: number; ms_per_image: number }> {
  const { plan, metadata } = loadRuntimePlan(path);
  try {
    const ds = await loadDataset(dataset);
    const [, C, H] = plan.inputShape;
    if (ds.test.channels !== C || ds.test.height !== H) throw new LowbitError(`${path} takes ${C}x${H}x${H} inputs, ${dataset} has ${ds.test.channels}x${ds.test.height}x${ds.test.width}`);
    const pre = metadata.preprocess as { mean: number[]; std: number[] } | undefined;
    let correct = 0, samples = 0;
    const t0 = performance.now();
    for (const b of batches(ds.test, { batchSize: evaluationBatchSize(ds.test), normalize: pre ?? ds.stats })) {
      const y = plan.run(b.x);
      const v = y.toFloat32Array(), labels = b.y.view(), c = y.shape[1];
      for (let i = 0; i < y.shape[0]; i++) {
        let m = 0;
        for (let k = 1; k < c; k++) if (v[i * c + k] > v[i * c + m]) m = k;
        correct += m === labels[i] ? 1 : 0;
      }
      samples += y.shape[0];
      y.dispose(); b.x.dispose(); b.y.dispose();
    }
    return { accuracy: correct / samples, samples, ms_per_image: (performance.now() - t0) / samples };
  } finally {
    plan.dispose();
  }
}

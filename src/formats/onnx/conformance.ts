// ONNX's backend node test cases (Debian package libonnx-testdata: <dir>/test_*/model.onnx plus
// test_data_set_*/input_*.pb and output_*.pb) run through the importer and compared with the expected
// outputs. A case belongs to an op when the op appears in it and every op of the case is one the importer
// maps; such a case passes, or is rejected at import with a clear error (a variant lowbit does not run,
// e.g. a sequence-typed input), or fails. The README's supported-op table is generated from this.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LowbitError } from '../../errors.js';
import { noGrad } from '../../autograd/index.js';
import { tidy } from '../../tensor/engine.js';
import { Tensor } from '../../tensor/tensor.js';
import { SUPPORTED_OPS, importOnnx } from './import.js';
import { decodeModel, readTensorFile, ONNX_TYPE, type TensorValue } from './read.js';

export const CONFORMANCE_DIR = '/usr/share/libonnx-testdata/data/node';
/** Tolerances of the comparison (|actual - expected| <= ATOL + RTOL |expected|). */
export const RTOL = 1e-4, ATOL = 1e-5;

export interface CaseResult {
  name: string;
  ops: string[];
  status: 'pass' | 'fail' | 'rejected';
  message?: string;
}

/** Cases whose every op the importer maps, with their op types. */
export function supportedCases(dir = CONFORMANCE_DIR): { name: string; path: string; ops: string[] }[] {
  if (!existsSync(dir)) return [];
  const out: { name: string; path: string; ops: string[] }[] = [];
  for (const name of readdirSync(dir).filter((d) => d.startsWith('test_')).sort()) {
    const path = join(dir, name);
    if (!existsSync(join(path, 'model.onnx'))) continue;
    let ops: string[];
    try {
      const m = decodeModel(readFileSync(join(path, 'model.onnx')), name);
      ops = [...new Set((m.graph?.node ?? []).map((n) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.` : '') + (n.opType ?? '')))];
    } catch {
      continue;
    }
    if (ops.length && ops.every((o) => SUPPORTED_OPS[o])) out.push({ name, path, ops });
  }
  return out;
}

function compare(actual: Tensor, expected: TensorValue, what: string): string | null {
  if (actual.rank !== expected.dims.length || actual.shape.some((d, i) => d !== expected.dims[i])) {
    return `${what}: shape [${actual.shape.join(',')}], expected [${expected.dims.join(',')}]`;
  }
  const a = actual.toArray(), e = expected.data;
  if (expected.dtype !== 'f32') {
    // integer outputs (quantized codes, integer accumulators, indices; lowbit may hold them as f32): exact
    for (let i = 0; i < e.length; i++) if (a[i] !== e[i]) return `${what}: element ${i} is ${a[i]}, expected ${e[i]} (exactly: ${expected.dtype})`;
    return null;
  }
  for (let i = 0; i < e.length; i++) {
    if (Number.isNaN(e[i]) && Number.isNaN(a[i])) continue;
    if (e[i] === a[i]) continue; // infinities
    if (!(Math.abs(a[i] - e[i]) <= ATOL + RTOL * Math.abs(e[i]))) return `${what}: element ${i} is ${a[i]}, expected ${e[i]}`;
  }
  return null;
}

/** Import and run one case on each of its data sets. */
export function runCase(c: { name: string; path: string; ops: string[] }): CaseResult {
  const sets = readdirSync(c.path).filter((d) => d.startsWith('test_data_set_')).sort();
  const model = decodeModel(readFileSync(join(c.path, 'model.onnx')), c.name);
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const graphInputs = (model.graph?.input ?? []).filter((i) => !initializers.has(i.name));
  const graphOutputs = model.graph?.output ?? [];
  const nonTensor = [...graphInputs, ...graphOutputs].find((v) => !v.type?.tensorType);
  if (nonTensor) return { name: c.name, ops: c.ops, status: 'rejected', message: `${nonTensor.name} is not a tensor (a sequence or optional); lowbit's graphs hold tensors` };
  try {
    for (const set of sets) {
      const dir = join(c.path, set);
      const inputs = graphInputs.map((_, i) => readTensorFile(join(dir, `input_${i}.pb`)));
      const expected = graphOutputs.map((_, i) => readTensorFile(join(dir, `output_${i}.pb`)));
      // INT64 and BOOL inputs (shapes, axes, indices, pads, training flags) are bound as constants: lowbit computes shapes at import.
      const bind: Record<string, TensorValue> = {};
      const inputShapes: Record<string, number[]> = {};
      const fed: TensorValue[] = [];
      graphInputs.forEach((gi, i) => {
        const elem = gi.type?.tensorType?.elemType;
        if (elem === ONNX_TYPE.INT64 || elem === ONNX_TYPE.BOOL) bind[gi.name ?? ''] = inputs[i];
        else {
          inputShapes[gi.name ?? ''] = inputs[i].dims;
          fed.push(inputs[i]);
        }
      });
      const failure = noGrad(() => tidy(() => {
        const imported = importOnnx(readFileSync(join(c.path, 'model.onnx')), { bind, inputShapes, what: c.name });
        try {
          const outs = imported.module.run(fed.map((v) => Tensor.from(v.data, v.dims, v.dtype)));
          for (let i = 0; i < expected.length; i++) {
            const msg = compare(outs[i], expected[i], `${set} output ${graphOutputs[i].name}`);
            if (msg) return msg;
          }
          return null;
        } finally {
          imported.module.dispose();
        }
      }));
      if (failure) return { name: c.name, ops: c.ops, status: 'fail', message: failure };
    }
    return { name: c.name, ops: c.ops, status: 'pass' };
  } catch (e) {
    const status = e instanceof LowbitError ? 'rejected' : 'fail';
    return { name: c.name, ops: c.ops, status, message: (e as Error).message };
  }
}

export interface OpConformance {
  op: string;
  maps: string;
  cases: number;
  passed: number;
  rejected: string[];
  failed: string[];
}

/** Run every supported case; per op, how many cases it appears in and how many pass. */
export function conformance(dir = CONFORMANCE_DIR): { results: CaseResult[]; ops: OpConformance[] } {
  const results = supportedCases(dir).map(runCase);
  const ops = Object.entries(SUPPORTED_OPS).map(([op, maps]) => {
    const mine = results.filter((r) => r.ops.includes(op));
    return {
      op, maps, cases: mine.length, passed: mine.filter((r) => r.status === 'pass').length,
      rejected: mine.filter((r) => r.status === 'rejected').map((r) => r.name),
      failed: mine.filter((r) => r.status === 'fail').map((r) => r.name),
    };
  });
  return { results, ops };
}

/** The README's table of supported ops. */
export function conformanceTable(ops: OpConformance[]): string {
  const lines = ['| ONNX op | lowbit | conformance cases passed | not imported (clear error) |', '| --- | --- | --- | --- |'];
  for (const o of ops) {
    const rej = o.rejected.map((n) => n.replace(/^test_/, '')).join(', ');
    lines.push(`| ${o.op} | ${o.maps} | ${o.passed} / ${o.cases}${o.failed.length ? ` (failing: ${o.failed.join(', ')})` : ''} | ${rej} |`);
  }
  return lines.join('\n');
}

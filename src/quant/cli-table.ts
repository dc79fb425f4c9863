// `lowbit quantizers [--json]`: every datatype with its spec, paper, bit widths and value set. The CLI command
// prints quantizersTable(json); the rows (QUANTIZERS) are made by parsing one example spec per datatype and
// asking each of its quantizers to describe itself, so the table cannot drift from the code.

import type { QuantizerDescription } from './quantizer.js';
import { parseDatatype, type RoleSpec } from './spec.js';

export interface QuantizerEntry {
  /** The datatype in the spec language. */
  spec: string;
  name: string;
  /** The file of src/quant that implements it. */
  technique: string;
  paper: string;
  /** Bits per weight, activation and gradient value (32 where the technique keeps floats). */
  weight_bits: number;
  act_bits: number;
  grad_bits: number;
  weight_values: string | null;
  act_values: string | null;
  weight: QuantizerDescription | null;
  activation: QuantizerDescription | null;
  gradient: QuantizerDescription | null;
}

const TECHNIQUE_NAMES: Record<string, string> = {
  fp32: 'IEEE 754 single precision (reference, not quantized)',
  affine: 'uniform affine integer',
  fixed: 'fixed point',
  minifloat: 'minifloat',
  log2: 'power-of-two / logarithmic',
  binary: 'binary',
  ternary: 'ternary',
  dorefa: 'DoReFa-Net',
  kmeans: 'k-means weight sharing',
};

/** One example spec per datatype family and variant (the rows of `lowbit quantizers`). */
export const EXAMPLE_SPECS: readonly string[] = [
  'fp32', 'int8', 'int8:per-channel', 'uint8', 'int4', 'int2', 'fixed:16.8', 'fixed:16.8:stochastic', 'fixed:8.4:stochastic',
  'dfp:8', 'dfp:16:overflow', 'minifloat:e4m3', 'minifloat:e5m2', 'fp16', 'bf16', 'pow2:4', 'log2:4', 'inq:5',
  'binary', 'binary:stochastic', 'bnn', 'xnor', 'bwn', 'twn', 'ttq', 'dorefa:w2a2g8', 'dorefa:w1a2', 'kmeans:16',
];

function entry(spec: string): QuantizerEntry {
  const d = parseDatatype(spec);
  const describe = (r: RoleSpec | null) => (r ? r.create().describe() : null);
  const w = describe(d.scheme.weight), a = describe(d.scheme.activation), g = describe(d.scheme.gradient);
  const first = w ?? a ?? g;
  const name = first ? (w && a && w.name !== a.name ? `${TECHNIQUE_NAMES[d.technique]}: ${w.name}; ${a.name}` : first.name) : TECHNIQUE_NAMES.fp32;
  const papers = [...new Set([w, a, g].filter((x): x is QuantizerDescription => x !== null).map((x) => x.paper))];
  return {
    spec: d.spec,
    name,
    technique: d.technique,
    paper: papers.join('; ') || 'IEEE 754-2008',
    weight_bits: w?.bits ?? 32,
    act_bits: a?.bits ?? 32,
    grad_bits: g?.bits ?? 32,
    weight_values: w?.values ?? null,
    act_values: a?.values ?? null,
    weight: w,
    activation: a,
    gradient: g,
  };
}

/** The QUANTIZERS table of `lowbit quantizers`: one row per example spec, computed from the quantizers. */
export const QUANTIZERS: readonly QuantizerEntry[] = Object.freeze(EXAMPLE_SPECS.map(entry));

/** "Jacob et al., Quantization and ..., CVPR 2018; Krishnamoorthi 2018" -> "Jacob et al. 2018; Krishnamoorthi 2018". */
export function shortCitation(paper: string): string {
  return paper
    .split(';')
    .map((p) => {
      const author = p.split(',')[0].replace(/\(.*?\)/g, '').trim();
      const years = p.match(/\b(19|20)\d\d\b/g);
      return years && !author.includes(years[years.length - 1]) ? `${author} ${years[years.length - 1]}` : author;
    })
    .filter((s, i, all) => s && all.indexOf(s) === i)
    .join('; ');
}

function bitsCell(bits: number): string {
  return bits === 32 ? 'fp32' : String(bits);
}

function valuesCell(e: QuantizerEntry): string {
  if (e.weight_values && e.act_values && e.weight_values !== e.act_values) return `w ${e.weight_values}; a ${e.act_values}`;
  return e.weight_values ?? e.act_values ?? 'every f32';
}

/** Plain-text columns, left aligned, with a header rule. */
export function formatColumns(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n') + '\n';
}

/** The table of `lowbit quantizers` (json: the full rows as a JSON array, with each role's equations). */
export function quantizersTable(json: boolean): string {
  if (json) return JSON.stringify(QUANTIZERS, null, 2) + '\n';
  const rows = QUANTIZERS.map((e) => [
    e.spec, e.technique, bitsCell(e.weight_bits), bitsCell(e.act_bits), bitsCell(e.grad_bits), shortCitation(e.paper), valuesCell(e),
  ]);
  return formatColumns(['spec', 'family', 'W', 'A', 'G', 'paper', 'values'], rows);
}

// The comparison's columns as text, shared by the table on stdout (cli/compare.ts) and the HTML report.

import { describeSpec, type CompareRow, type RowDescription } from '../quant/compare.js';
import type { FirstLastPolicy } from '../quant/conventions.js';
import type { LayerInfo } from '../quant/graph.js';

export function pct(v: number | null, sign = false): string {
  if (v === null) return '-';
  const s = (100 * v).toFixed(2);
  return sign && v >= 0 ? `+${s}` : s;
}

export function bytesText(b: number | null): string {
  if (b === null) return '-';
  return b >= 1024 * 1024 ? `${(b / 1024 / 1024).toFixed(2)} MB` : b >= 1024 ? `${(b / 1024).toFixed(1)} KB` : `${b} B`;
}

export function countText(n: number | null): string {
  if (n === null) return '-';
  return n >= 1e12 ? `${(n / 1e12).toFixed(2)} T` : n >= 1e9 ? `${(n / 1e9).toFixed(2)} G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : `${(n / 1e3).toFixed(1)} K`;
}

export function bitsText(b: number | null): string {
  return b === null ? '-' : b === 32 ? 'fp32' : String(b);
}

/**
 * Row descriptions (how it ran, notes, MAC area) recomputed from the specs, so resumed rows get them too.
 * Without the model's layers (a report rebuilt from results.json alone) there are none.
 */
export function describeRows(rows: readonly CompareRow[], layers: readonly LayerInfo[] | undefined, firstLast: FirstLastPolicy = 'auto'): Map<string, RowDescription> {
  const out = new Map<string, RowDescription>();
  if (!layers?.length) return out;
  for (const r of rows) {
    try {
      // a mixed-precision row is described by the spec it chose, and ran as it says
      const d = describeSpec(r.mixed?.spec ?? r.spec, layers, firstLast);
      out.set(r.spec, r.mixed ? { ...d, how: r.mixed.how, note: `${r.mixed.allocator} allocation at ${r.mixed.budget} of FP32: ${r.mixed.spec}` } : d);
    } catch {
      // a row whose spec cannot be described keeps its error text
    }
  }
  return out;
}

export const HEAD = ['spec', 'how', 'top-1 %', 'vs FP32', 'W bits', 'A bits', 'packed size', 'compr.', 'BOPs', 'energy uJ', 'MAC um^2', 'ms/img', 'kernels', 'time s'];

export function cells(r: CompareRow, d: RowDescription | undefined): string[] {
  return [
    r.spec, d?.how ?? '-', pct(r.accuracy), pct(r.delta, true), bitsText(r.weight_bits), bitsText(r.act_bits), bytesText(r.bytes),
    r.compression === null ? '-' : `${r.compression.toFixed(1)}x`, countText(r.bops), r.energy_uj === null ? '-' : r.energy_uj.toFixed(3),
    d ? d.macArea.toFixed(0) : '-', r.latency_ms === null ? '-' : r.latency_ms.toFixed(3), r.kernels ?? '-', r.seconds.toFixed(1),
  ];
}

// The papers' conventions that are not part of a datatype: which layers stay at higher precision, which
// techniques are trained from scratch, which clip their latent weights, and whether a datatype is applied
// after training (PTQ) or during it (QAT). One table, so that `quantize` and `compare` agree and the report
// can say why a row was treated as it was.
//
// First and last layer at higher precision ("firstLast"):
//   bnn    Hubara et al. 2016: the first layer's input is not binary; Larq's and most BNN code keep the first
//          and last layers real-valued
//   xnor   Rastegari et al. 2016, sec. 4: "the first and last layers" stay real-valued
//   dorefa Zhou et al. 2016, sec. 3.4: "we do not quantize the weights and output of the first and last layer"
//   ttq    Zhu et al. 2017, sec. 5: the first convolution and the last fully connected layer stay full precision
// The other techniques (BinaryConnect, BWN, TWN, INQ, fixed point, int8, ...) quantize every layer, as their
// papers do. `firstLast: 'fp32' | 'quantize'` overrides the table for every technique.
//
// Trained from scratch (QAT --from-scratch by default): Gupta et al. 2015 train fixed point with stochastic
// rounding from a random initialization ("fixed:*:stochastic"). Everything else fine-tunes the float model.
//
// Latent-weight clipping to [-1, 1] after each update: BinaryConnect (Courbariaux et al. 2015, Algorithm 1)
// and BNN (Hubara et al. 2016, Algorithm 1).

import { parseSpec, type LayerScheme, type QuantSpec, type RoleSpec } from './spec.js';
import type { Quantizer } from './quantizer.js';

const KEEPS_FIRST_LAST = new Set(['bnn', 'xnor', 'dorefa', 'ttq']);
const CLIPS_LATENT = new Set(['binary', 'binary:stochastic', 'bnn']);

export type FirstLastPolicy = 'auto' | 'fp32' | 'quantize';

/** The technique named by a role spec ('dorefa:w2' -> 'dorefa', 'binary:stochastic' stays). */
function family(spec: string): string {
  if (spec.startsWith('dorefa')) return 'dorefa';
  if (spec.startsWith('ttq')) return 'ttq';
  return spec;
}

/** True if a layer scheme belongs to a technique whose paper keeps the first and last layers in float. */
export function keepsFirstLast(scheme: LayerScheme): boolean {
  return [scheme.weight, scheme.activation, scheme.gradient].some((r) => r !== null && KEEPS_FIRST_LAST.has(family(r.spec)));
}

/** True if the latent weights of this weight datatype are clipped to [-1, 1] after each update. */
export function clipsLatentWeights(weight: RoleSpec | null): boolean {
  return weight !== null && CLIPS_LATENT.has(weight.spec);
}

/** True if the spec is trained from scratch by its paper (fixed point with stochastic rounding, Gupta et al.). */
export function trainsFromScratch(spec: QuantSpec): boolean {
  const s = spec.global;
  return [s.weight, s.activation].some((r) => r !== null && r.technique === 'fixed' && r.spec.includes(':stochastic'));
}

/** Bits of a role (32 when it stays float). */
export function roleBits(r: RoleSpec | null): number {
  return r ? bitsOf(r.create()) : 32;
}

function bitsOf(q: Quantizer): number {
  return q.bits;
}

/**
 * PTQ for datatypes of 8 bits and more, QAT below (and for the training techniques: stochastic rounding,
 * INQ, TTQ, k-means fine-tuning, DoReFa gradients).
 */
export function needsTraining(spec: QuantSpec): boolean {
  const s = spec.global;
  const roles = [s.weight, s.activation, s.gradient].filter((r): r is RoleSpec => r !== null);
  if (s.gradient) return true;
  for (const r of roles) {
    if (roleBits(r) < 8) return true;
    if (r.spec.includes(':stochastic') || /^(inq|ttq|kmeans)/.test(r.spec)) return true;
  }
  return false;
}

/**
 * The spec with the first/last-layer convention written out as overrides ("bnn" -> "bnn;conv1=fp32;fc=fp32"),
 * so that the saved model and the report show exactly what ran.
 */
export function effectiveSpec(spec: QuantSpec, layers: readonly string[], policy: FirstLastPolicy = 'auto'): QuantSpec {
  if (policy === 'quantize' || layers.length === 0) return spec;
  const ends = [...new Set([layers[0], layers[layers.length - 1]])];
  const keep = ends.filter((l) => {
    const s = spec.forLayer(l);
    if (!s.weight && !s.activation && !s.gradient) return false;
    return policy === 'fp32' || keepsFirstLast(s);
  });
  // An explicit override of the layer in the spec wins over the convention.
  const named = keep.filter((l) => !spec.overrides.some((o) => o.layer === l));
  const extra = named.map((l) => `${l}=fp32`);
  // Logarithmic activations are unsigned (Miyashita et al. quantize ReLU outputs); the first layer's input is
  // the normalized image, which is negative on the background: it gets the signed variant.
  const firstA = spec.forLayer(layers[0]).activation;
  if (!named.includes(layers[0]) && firstA && /^log2:\d+$/.test(firstA.spec) && !spec.overrides.some((o) => o.layer === layers[0])) {
    extra.push(`${layers[0]}:a=${firstA.spec}:signed`);
  }
  if (extra.length === 0) return spec;
  return parseSpec([spec.text, ...extra].join(';'));
}

// The spec language: one string names a datatype everywhere (CLI, config files, reports), like Larq's
// quantizer strings ("ste_sign"). Grammar (whitespace around separators is ignored):
//
//   spec       := section (';' section)*
//   section    := datatype                                  the technique for the whole network, applied to
//                                                           the roles its paper quantizes (twn: weights; bnn:
//                                                           weights and activations; dorefa: w, a and g)
//              |  assignment (',' assignment)*              roles set one by one; roles not named stay fp32
//              |  layer '=' datatype                        override: that technique for one layer
//              |  layer ':' assignment (',' assignment)*    override: only the named roles of one layer
//   assignment := role '=' datatype                         role: w (weights) | a (activations, the layer's
//                                                           input) | g (gradients flowing back)
//   layer      := a layer name (conv1, features.3, layer1.0.conv2), which also covers the layers under it
//                 (layer1 covers layer1.0.conv1), or a glob with * (layer*.conv1)
//
// The first section may set the global scheme; later sections are overrides, applied in order (the last one
// that matches a layer wins). A spec of only overrides leaves other layers fp32. Examples:
//   int8                      w and a int8 (weights symmetric, activations asymmetric), per tensor
//   w=twn,a=int8              ternary weights, 8-bit activations
//   w=int4,a=int8;conv1=int8;fc=fp32
//   bnn;conv1:w=int8,a=fp32   BNN with a higher-precision first layer
//
// Datatypes (DATATYPE_FORMS lists them; errors list them too):
//   fp32 | fp16 | bf16 | int<N> | uint<N> (N = 2..16) with :sym | :asym, :per-channel | :per-tensor
//   fixed:<W>.<F>[:unsigned][:nearest|:stochastic|:floor]   dfp:<W>[:unsigned][:nearest|:stochastic|:floor][:overflow]
//   minifloat:e<E>m<M>[:ieee|:fn|:ristretto][:bias<B>]     minifloat:fp16 | minifloat:bf16
//   pow2:<b> | log2:<b>[:signed|:unsigned] | inq:<b> | binary[:stochastic] | bnn | xnor | bwn
//   twn[:per-channel] | ttq[:<t>] | dorefa:[w<k>][a<k>][g<k>] (k = 1..16 or 32) | kmeans:<k> (k = 2..256, a power of two)
// In a role assignment a technique gives its quantizer for that role (a=xnor: XNOR-Net's binary inputs;
// w=dorefa:w2a4: the 2-bit weights; dorefa:<k> gives k bits to the assigned role).

import { LowbitError, UsageError } from '../errors.js';
import type { Quantizer, Role } from './quantizer.js';
import { AffineQuantizer } from './affine.js';
import { DynamicFixedPointQuantizer, FixedPointQuantizer } from './fixed.js';
import { MINIFLOAT_STYLES, MinifloatQuantizer, minifloatFormat, type MinifloatStyle } from './minifloat.js';
import { InqQuantizer, LogQuantizer, PowerOfTwoQuantizer } from './log2.js';
import { BinaryConnectQuantizer, ScaledBinaryQuantizer, SignQuantizer } from './binary.js';
import { TtqQuantizer, TwnQuantizer } from './ternary.js';
import { DorefaActivationQuantizer, DorefaGradientQuantizer, DorefaWeightQuantizer } from './dorefa.js';
import { KMeansQuantizer } from './kmeans.js';
import type { RoundingMode } from './rounding.js';

export const ROLES: readonly Role[] = ['weight', 'activation', 'gradient'];
const ROLE_KEYS: Record<string, Role> = { w: 'weight', a: 'activation', g: 'gradient' };
const ROLE_LETTER: Record<Role, string> = { weight: 'w', activation: 'a', gradient: 'g' };

/** Every datatype form, for help texts and error messages. */
export const DATATYPE_FORMS: readonly string[] = [
  'fp32', 'fp16', 'bf16',
  'int<N>[:sym|:asym][:per-channel]  (N = 2..16; int8, int4, int8:per-channel)',
  'uint<N>[:per-channel]  (uint8)',
  'fixed:<W>.<F>[:unsigned][:nearest|:stochastic|:floor]  (fixed:16.8, fixed:8.4:stochastic)',
  'dfp:<W>[:unsigned][:nearest|:stochastic|:floor][:overflow]  (dfp:8)',
  'minifloat:e<E>m<M>[:ieee|:fn|:ristretto][:bias<B>]  (minifloat:e4m3, minifloat:e5m2, minifloat:fp16, minifloat:bf16)',
  'pow2:<b>  (b = 2..8; pow2:4)', 'log2:<b>[:signed|:unsigned]  (log2:4)', 'inq:<b>  (inq:5)',
  'binary', 'binary:stochastic', 'bnn', 'xnor', 'bwn', 'twn[:per-channel]', 'ttq[:<t>]  (ttq, ttq:0.05)',
  'dorefa:[w<k>][a<k>][g<k>]  (k = 1..16, 32 = float; dorefa:w2a2g8, dorefa:w1a2)',
  'kmeans:<k>  (k = 2, 4, ..., 256; kmeans:16)',
];

const SPEC_HELP =
  'A spec is a datatype (int8, twn, dorefa:w2a2g8, ...), role assignments (w=twn,a=int8), and per-layer overrides ' +
  'after ";" (w=int4,a=int8;conv1=int8;fc=fp32 or bnn;conv1:w=int8,a=fp32).';

function validForms(): string {
  return `Valid datatypes: ${DATATYPE_FORMS.join('; ')}. ${SPEC_HELP}`;
}

/** A datatype bound to one role: its spec text and a factory of fresh quantizer objects. */
export interface RoleSpec {
  /** The datatype as written for this role, canonical (e.g. 'int8:per-channel', 'dorefa:a2'). */
  spec: string;
  role: Role;
  /** The file of src/quant that implements it. */
  technique: string;
  /** A new quantizer (quantizers with randomness take the seed). */
  create(opts?: { seed?: number }): Quantizer;
}

/** What one layer quantizes: null roles stay fp32. */
export interface LayerScheme {
  weight: RoleSpec | null;
  activation: RoleSpec | null;
  gradient: RoleSpec | null;
}

/** A parsed datatype: the quantizer it gives each role when used as a whole technique, and per role on request. */
export interface Datatype {
  /** Canonical text (e.g. 'int8', 'minifloat:e4m3', 'dorefa:w2a2g8'). */
  spec: string;
  technique: string;
  /** The roles the technique quantizes when named alone (its paper's scheme). */
  scheme: LayerScheme;
  /** The quantizer of this datatype for a role (role assignments), or a LowbitError if it has none. */
  forRole(role: Role): RoleSpec | null;
}

function roleSpec(spec: string, role: Role, technique: string, make: (seed: number) => Quantizer): RoleSpec {
  make(0); // validate now: bad bit widths fail at parse time, not in the middle of training
  return { spec, role, technique, create: (opts = {}) => make(opts.seed ?? 0) };
}

function noRole(spec: string, role: Role, why: string): never {
  const alternatives: Record<Role, string> = {
    weight: 'int<N>, fixed, dfp, minifloat, pow2, log2, inq, binary, bnn, xnor, bwn, twn, ttq, dorefa:w<k>, kmeans',
    activation: 'int<N>, uint<N>, fixed, dfp, minifloat, log2, bnn, xnor, dorefa:a<k>',
    gradient: 'dorefa:g<k>',
  };
  throw new LowbitError(`${spec} has no ${role} quantizer (${why}). For ${role}s use one of: ${alternatives[role]}; or fp32`);
}

/** Parse an integer token, with a message naming what it is and the valid range. */
function intToken(what: string, token: string | undefined, min: number, max: number, forms: string): number {
  if (token === undefined || token === '') throw new LowbitError(`${what} is missing. Valid forms: ${forms}`);
  const v = /^[+-]?\d+(\.\d*)?$/.test(token) ? Number(token) : NaN;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new LowbitError(`${what} must be an integer from ${min} to ${max}, got "${token}". Valid forms: ${forms}`);
  }
  return v;
}

function unknownOption(spec: string, option: string, forms: string): never {
  throw new LowbitError(`unknown option "${option}" in datatype "${spec}". Valid forms: ${forms}`);
}

type Maker = (role: Role, seed: number) => Quantizer;

/** A datatype whose whole-technique scheme quantizes `roles`, and that can serve each role in `serves`. */
function datatype(spec: string, technique: string, roles: readonly Role[], serves: readonly Role[], make: Maker, why = ''): Datatype {
  const forRole = (role: Role): RoleSpec | null => {
    if (!serves.includes(role)) noRole(spec, role, why || `${technique} quantizes ${serves.map((r) => r + 's').join(' and ')} only`);
    return roleSpec(spec, role, technique, (seed) => make(role, seed));
  };
  const scheme: LayerScheme = { weight: null, activation: null, gradient: null };
  for (const r of roles) scheme[r] = forRole(r);
  return { spec, technique, scheme, forRole };
}

const FP32: Datatype = {
  spec: 'fp32', technique: 'fp32',
  scheme: { weight: null, activation: null, gradient: null },
  forRole: () => null,
};

const WA: readonly Role[] = ['weight', 'activation'];
const W: readonly Role[] = ['weight'];

/** Spec strings are user input: their errors are usage errors (exit code 2). */
function asUsageError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof LowbitError && !(e instanceof UsageError)) throw new UsageError(e.message);
    throw e;
  }
}

/** Parse one datatype ("int8", "fixed:16.8:stochastic", "dorefa:w2a2g8", ...). Errors are UsageErrors. */
export function parseDatatype(text: string): Datatype {
  return asUsageError(() => parseDatatypeText(text));
}

function parseDatatypeText(text: string): Datatype {
  const t = text.trim().toLowerCase();
  if (t === '') throw new LowbitError(`empty datatype. ${validForms()}`);
  const [head, ...opts] = t.split(':');
  const intMatch = /^(u?int)(.*)$/.exec(head);
  if (intMatch) return parseAffine(t, intMatch[1] === 'int', intMatch[2], opts);
  switch (head) {
    case 'fp32': case 'float32': case 'float':
      if (opts.length) unknownOption(t, opts[0], 'fp32');
      return FP32;
    case 'fp16': case 'bf16':
      if (opts.length) unknownOption(t, opts[0], head);
      return parseMinifloat(t, [head]);
    case 'fixed': return parseFixed(t, opts);
    case 'dfp': return parseDfp(t, opts);
    case 'minifloat': return parseMinifloat(t, opts);
    case 'pow2': case 'inq': {
      const forms = `${head}:<b> with b from 2 to 8`;
      const b = intToken(`${t}: bits`, opts[0], 2, 8, forms);
      if (opts.length > 1) unknownOption(t, opts[1], forms);
      return head === 'pow2'
        ? datatype(`pow2:${b}`, 'log2', W, W, (role) => new PowerOfTwoQuantizer(b, { role }), 'power-of-two values are for weights (a multiplier becomes a shift)')
        : datatype(`inq:${b}`, 'log2', W, W, (role) => new InqQuantizer(b, { role }), 'INQ quantizes weights; activations stay float as in the paper');
    }
    case 'log2': {
      const forms = 'log2:<b>[:signed|:unsigned] with b from 2 to 8';
      const b = intToken(`${t}: bits`, opts[0], 2, 8, forms);
      let signed: boolean | undefined;
      for (const o of opts.slice(1)) {
        if (o === 'signed' || o === 'unsigned') signed = o === 'signed';
        else unknownOption(t, o, forms);
      }
      const spec = `log2:${b}${signed === undefined ? '' : signed ? ':signed' : ':unsigned'}`;
      return datatype(spec, 'log2', WA, WA, (role) => new LogQuantizer(b, { role, signed }));
    }
    case 'binary': {
      const forms = 'binary or binary:stochastic';
      if (opts.length > 1 || (opts.length === 1 && opts[0] !== 'stochastic')) unknownOption(t, opts[opts.length - 1], forms);
      const stochastic = opts[0] === 'stochastic';
      return datatype(stochastic ? 'binary:stochastic' : 'binary', 'binary', W, W,
        (role, seed) => new BinaryConnectQuantizer(stochastic, { role, seed }), 'BinaryConnect binarizes weights; use bnn or xnor for binary activations');
    }
    case 'bnn':
      if (opts.length) unknownOption(t, opts[0], 'bnn');
      return datatype('bnn', 'binary', WA, WA, (role) => new SignQuantizer('bnn', { role }));
    case 'xnor':
      if (opts.length) unknownOption(t, opts[0], 'xnor');
      return datatype('xnor', 'binary', WA, WA, (role) => (role === 'weight' ? new ScaledBinaryQuantizer('xnor', 0, { role }) : new SignQuantizer('xnor', { role })));
    case 'bwn':
      if (opts.length) unknownOption(t, opts[0], 'bwn');
      return datatype('bwn', 'binary', W, W, (role) => new ScaledBinaryQuantizer('bwn', 0, { role }), 'binary-weight networks keep float inputs; use xnor for binary inputs');
    case 'twn': {
      if (opts.length > 1 || (opts.length === 1 && opts[0] !== 'per-channel')) unknownOption(t, opts[opts.length - 1], 'twn or twn:per-channel');
      const per = opts[0] === 'per-channel';
      return datatype(per ? 'twn:per-channel' : 'twn', 'ternary', W, W, (role) => new TwnQuantizer(per ? 0 : null, { role }), 'ternary weight networks keep float activations');
    }
    case 'ttq': {
      const forms = 'ttq or ttq:<t> with 0 < t < 1 (threshold t max|W|, default 0.05)';
      if (opts.length > 1) unknownOption(t, opts[1], forms);
      const tv = opts.length ? (/^\d*\.?\d+(e-?\d+)?$/.test(opts[0]) ? Number(opts[0]) : NaN) : 0.05;
      if (!(tv > 0 && tv < 1)) throw new LowbitError(`${t}: the threshold factor must be a number in (0, 1), got "${opts[0]}". Valid forms: ${forms}`);
      return datatype(tv === 0.05 ? 'ttq' : `ttq:${tv}`, 'ternary', W, W, (role) => new TtqQuantizer(tv, { role }), 'TTQ trains ternary weights; activations stay float');
    }
    case 'dorefa': return parseDorefa(t, opts);
    case 'kmeans': {
      const forms = 'kmeans:<k> with k = 2, 4, 8, 16, 32, 64, 128 or 256';
      const k = intToken(`${t}: number of centroids`, opts[0], 2, 256, forms);
      if (opts.length > 1) unknownOption(t, opts[1], forms);
      return datatype(`kmeans:${k}`, 'kmeans', W, W, (role) => new KMeansQuantizer(k, { role }), 'k-means weight sharing clusters weights');
    }
    default:
      throw new LowbitError(`unknown datatype "${text.trim()}". ${validForms()}`);
  }
}

function parseAffine(t: string, signed: boolean, bitsText: string, opts: string[]): Datatype {
  const name = signed ? 'int' : 'uint';
  const forms = `${name}<N>[${signed ? ':sym|:asym][' : ''}:per-channel] with N from 2 to 16`;
  const bits = intToken(`${t}: bit width`, bitsText, 2, 16, forms + ' (1 bit: binary, bnn, xnor or bwn; 32: fp32)');
  let symmetric: boolean | undefined, perChannel = false;
  for (const o of opts) {
    if (o === 'sym' || o === 'symmetric') symmetric = true;
    else if (o === 'asym' || o === 'asymmetric') symmetric = false;
    else if (o === 'per-channel') perChannel = true;
    else if (o === 'per-tensor') perChannel = false;
    else unknownOption(t, o, forms);
  }
  if (symmetric && !signed) throw new LowbitError(`${t}: unsigned codes are asymmetric; use int${bits}:sym for a zero point of 0. Valid forms: ${forms}`);
  const spec = `${name}${bits}${symmetric === undefined ? '' : symmetric ? ':sym' : ':asym'}${perChannel ? ':per-channel' : ''}`;
  // Named alone, per-channel applies to the weights (per-channel activations must be asked for: a=int8:per-channel).
  const make = (perCh: boolean): Maker => (role) => new AffineQuantizer({ bits, signed, symmetric, perChannel: perCh, role });
  const d = datatype(spec, 'affine', WA, WA, make(perChannel));
  const perTensorActivation = datatype(spec.replace(':per-channel', ''), 'affine', ['activation'], WA, make(false));
  return { ...d, scheme: { ...d.scheme, activation: perTensorActivation.scheme.activation } };
}

function parseRounding(o: string): RoundingMode | null {
  return o === 'nearest' || o === 'stochastic' || o === 'floor' ? o : null;
}

function parseFixed(t: string, opts: string[]): Datatype {
  const forms = 'fixed:<W>.<F>[:unsigned][:nearest|:stochastic|:floor], word length W from 2 to 32, fractional length F from 0 to W';
  const m = /^([+-]?\d+)\.([+-]?\d+)$/.exec(opts[0] ?? '');
  if (!m) throw new LowbitError(`${t}: fixed point needs a word length and a fractional length as W.F (fixed:16.8), got "${opts[0] ?? ''}". Valid forms: ${forms}`);
  const [W, F] = [Number(m[1]), Number(m[2])];
  let signed = true, rounding: RoundingMode = 'nearest';
  for (const o of opts.slice(1)) {
    const r = parseRounding(o);
    if (r) rounding = r;
    else if (o === 'unsigned' || o === 'signed') signed = o === 'signed';
    else unknownOption(t, o, forms);
  }
  const probe = new FixedPointQuantizer(W, F, { signed, rounding });
  return datatype(probe.spec, 'fixed', WA, WA, (role, seed) => new FixedPointQuantizer(W, F, { signed, rounding, role, seed }));
}

function parseDfp(t: string, opts: string[]): Datatype {
  const forms = 'dfp:<W>[:unsigned][:nearest|:stochastic|:floor][:overflow], word length W from 2 to 32';
  const W = intToken(`${t}: word length`, opts[0], 1, 32, forms);
  let signed = true, rounding: RoundingMode = 'nearest', overflow = false;
  for (const o of opts.slice(1)) {
    const r = parseRounding(o);
    if (r) rounding = r;
    else if (o === 'unsigned' || o === 'signed') signed = o === 'signed';
    else if (o === 'overflow') overflow = true;
    else unknownOption(t, o, forms);
  }
  const mk = (role: Role, seed: number) => new DynamicFixedPointQuantizer(W, { signed, rounding, role, seed, scaleUpdate: overflow ? 'overflow' : 'range' });
  return datatype(mk('weight', 0).spec, 'fixed', WA, WA, mk);
}

function parseMinifloat(t: string, opts: string[]): Datatype {
  const forms = 'minifloat:e<E>m<M>[:ieee|:fn|:ristretto][:bias<B>] (E 2..8, M 0..15), minifloat:fp16, minifloat:bf16, fp16, bf16';
  const [fmt, ...rest] = opts;
  let E: number, M: number;
  if (fmt === 'fp16') [E, M] = [5, 10];
  else if (fmt === 'bf16' || fmt === 'bfloat16') [E, M] = [8, 7];
  else {
    const m = /^e([^m]*)m(.*)$/.exec(fmt ?? '');
    if (!m) throw new LowbitError(`${t}: minifloat needs its exponent and mantissa bits as e<E>m<M> (minifloat:e4m3), got "${fmt ?? ''}". Valid forms: ${forms}`);
    E = intToken(`${t}: exponent bits`, m[1], 2, 8, forms);
    M = intToken(`${t}: mantissa bits`, m[2], 0, 15, forms);
  }
  let style: MinifloatStyle | undefined, bias: number | undefined;
  for (const o of rest) {
    if ((MINIFLOAT_STYLES as readonly string[]).includes(o)) style = o as MinifloatStyle;
    else if (o.startsWith('bias')) bias = intToken(`${t}: bias`, o.slice(4), -200, 200, forms);
    else unknownOption(t, o, forms);
  }
  const format = minifloatFormat(E, M, style, bias);
  const probe = new MinifloatQuantizer(format);
  return datatype(probe.spec, 'minifloat', WA, WA, (role) => new MinifloatQuantizer(format, { role }));
}

function parseDorefa(t: string, opts: string[]): Datatype {
  const forms = 'dorefa:[w<k>][a<k>][g<k>] with k from 1 to 16 or 32 (float): dorefa:w2a2g8, dorefa:w1a2; in a role assignment also dorefa:<k>';
  if (opts.length !== 1 || opts[0] === '') throw new LowbitError(`${t}: DoReFa needs bit widths, e.g. dorefa:w2a2g8. Valid forms: ${forms}`);
  const o = opts[0];
  const bits: Partial<Record<Role, number>> = {};
  let generic: number | undefined;
  if (/^\d+$/.test(o)) {
    generic = intToken(`${t}: bits`, o, 1, 32, forms);
  } else {
    const re = /([wag])([^wag]*)/g;
    let consumed = '';
    for (let m = re.exec(o); m; m = re.exec(o)) {
      const role = ROLE_KEYS[m[1]];
      if (bits[role] !== undefined) throw new LowbitError(`${t}: ${m[1]} is given twice. Valid forms: ${forms}`);
      bits[role] = intToken(`${t}: ${role} bits`, m[2], 1, 32, forms);
      consumed += m[0];
    }
    if (consumed !== o) throw new LowbitError(`${t}: cannot read "${o}" as bit widths. Valid forms: ${forms}`);
  }
  for (const v of [generic, ...Object.values(bits)]) {
    if (v !== undefined && v > 16 && v !== 32) throw new LowbitError(`${t}: DoReFa takes 1 to 16 bits, or 32 for float; got ${v}. Valid forms: ${forms}`);
  }
  const spec = generic !== undefined ? `dorefa:${generic}` : `dorefa:${(['weight', 'activation', 'gradient'] as Role[]).filter((r) => bits[r] !== undefined).map((r) => ROLE_LETTER[r] + bits[r]).join('')}`;
  const bitsFor = (role: Role) => generic ?? bits[role];
  const make: Maker = (role, seed) => {
    const k = bitsFor(role)!;
    return role === 'weight' ? new DorefaWeightQuantizer(k) : role === 'activation' ? new DorefaActivationQuantizer(k) : new DorefaGradientQuantizer(k, { seed });
  };
  const forRole = (role: Role): RoleSpec | null => {
    const k = bitsFor(role);
    if (k === undefined) noRole(spec, role, `it gives no ${ROLE_LETTER[role]}<k> bits`);
    if (k === 32) return null;
    return roleSpec(`dorefa:${ROLE_LETTER[role]}${k}`, role, 'dorefa', (seed) => make(role, seed));
  };
  const scheme: LayerScheme = { weight: null, activation: null, gradient: null };
  if (generic === undefined) for (const r of ROLES) if (bits[r] !== undefined) scheme[r] = forRole(r);
  if (generic !== undefined) for (const r of ROLES) scheme[r] = forRole(r);
  return { spec, technique: 'dorefa', scheme, forRole };
}

// ---------------------------------------------------------------------------------------------------------
// Whole specs with role assignments and per-layer overrides

export interface Override {
  /** Layer name, prefix or glob. */
  layer: string;
  /** 'all': the whole scheme is replaced; 'roles': only the roles in `scheme` that are not undefined. */
  kind: 'all' | 'roles';
  scheme: Partial<LayerScheme>;
  text: string;
}

const LAYER_RE = /^[A-Za-z0-9_.*\-/[\]]+$/;

function parseAssignments(text: string, where: string): Partial<LayerScheme> {
  const out: Partial<LayerScheme> = {};
  for (const part of text.split(',')) {
    const eq = part.indexOf('=');
    const key = part.slice(0, eq).trim().toLowerCase();
    const role = ROLE_KEYS[key];
    if (eq < 0 || !role) {
      throw new LowbitError(`${where}: "${part.trim()}" is not a role assignment; write w=<datatype>, a=<datatype> or g=<datatype>. ${SPEC_HELP}`);
    }
    if (role in out) throw new LowbitError(`${where}: role ${key} is assigned twice`);
    out[role] = parseDatatype(part.slice(eq + 1)).forRole(role);
  }
  return out;
}

function fullScheme(partial: Partial<LayerScheme>): LayerScheme {
  return { weight: partial.weight ?? null, activation: partial.activation ?? null, gradient: partial.gradient ?? null };
}

/** "w=twn,a=fp32" for a scheme (g shown only when quantized). */
export function formatScheme(s: LayerScheme): string {
  const parts = [`w=${s.weight?.spec ?? 'fp32'}`, `a=${s.activation?.spec ?? 'fp32'}`];
  if (s.gradient) parts.push(`g=${s.gradient.spec}`);
  return parts.join(',');
}

function globToRegExp(glob: string): RegExp {
  const body = glob.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\/-]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}(\\..*)?$`);
}

/** True if a layer selector covers a layer name: equal, a dotted prefix, or a glob match. */
export function layerMatches(selector: string, layer: string): boolean {
  if (selector.includes('*')) return globToRegExp(selector).test(layer);
  return layer === selector || layer.startsWith(selector + '.');
}

export class QuantSpec {
  constructor(
    /** The spec as given, with whitespace around separators removed. */
    readonly text: string,
    readonly global: LayerScheme,
    readonly overrides: readonly Override[],
  ) {}

  /** The scheme of one layer: the global one with every matching override applied in order. */
  forLayer(layer: string): LayerScheme {
    let s: LayerScheme = { ...this.global };
    for (const o of this.overrides) {
      if (!layerMatches(o.layer, layer)) continue;
      s = o.kind === 'all' ? fullScheme(o.scheme) : { ...s, ...o.scheme };
    }
    return s;
  }

  /** Overrides that match none of `layers` (typos in layer names), to report as errors. */
  unmatchedOverrides(layers: readonly string[]): Override[] {
    return this.overrides.filter((o) => !layers.some((l) => layerMatches(o.layer, l)));
  }

  /** Throw a LowbitError if an override names no layer of the model. */
  checkLayers(layers: readonly string[]): void {
    const bad = this.unmatchedOverrides(layers);
    if (bad.length) {
      throw new LowbitError(`spec "${this.text}": ${bad.map((o) => `"${o.layer}"`).join(', ')} match no layer of the model; its layers are: ${layers.join(', ')}`);
    }
  }

  toString(): string {
    return this.text;
  }
}

/** Parse a spec (see the grammar at the top of this file). Errors (UsageError) say what was wrong and list valid forms. */
export function parseSpec(text: string): QuantSpec {
  return asUsageError(() => parseSpecText(text));
}

function parseSpecText(text: string): QuantSpec {
  if (typeof text !== 'string' || text.trim() === '') throw new LowbitError(`empty spec. ${SPEC_HELP} ${validForms()}`);
  const sections = text.split(';').map((s) => s.trim());
  let global: LayerScheme | null = null;
  const overrides: Override[] = [];
  sections.forEach((section, i) => {
    const where = `spec "${text.trim()}", section ${i + 1} "${section}"`;
    if (section === '') throw new LowbitError(`${where}: empty section (two ";" in a row or a trailing ";"). ${SPEC_HELP}`);
    const eq = section.indexOf('=');
    const colon = section.indexOf(':');
    const lead = section.slice(0, eq < 0 ? undefined : eq).trim();
    const isRoleList = eq > 0 && ROLE_KEYS[lead.toLowerCase()] !== undefined && !lead.includes(':');
    if (eq < 0 || isRoleList) {
      // global: a datatype or a role list
      if (i > 0 || global) throw new LowbitError(`${where}: only the first section can set the whole network; later sections override layers (layer=<datatype> or layer:w=<datatype>). ${SPEC_HELP}`);
      global = eq < 0 ? parseDatatype(section).scheme : fullScheme(parseAssignments(section, where));
      return;
    }
    // override: layer=datatype or layer:role=datatype,...
    if (colon >= 0 && colon < eq) {
      const layer = section.slice(0, colon).trim();
      checkLayerName(layer, where);
      overrides.push({ layer, kind: 'roles', scheme: parseAssignments(section.slice(colon + 1), where), text: section });
    } else {
      checkLayerName(lead, where);
      const value = section.slice(eq + 1).trim();
      if (value.includes('=')) {
        throw new LowbitError(`${where}: to set roles of one layer write ${lead}:w=<datatype>,a=<datatype>. ${SPEC_HELP}`);
      }
      overrides.push({ layer: lead, kind: 'all', scheme: parseDatatype(value).scheme, text: section });
    }
  });
  const normalized = sections.join(';');
  return new QuantSpec(normalized, global ?? { weight: null, activation: null, gradient: null }, overrides);
}

function checkLayerName(layer: string, where: string): void {
  if (!LAYER_RE.test(layer)) {
    throw new LowbitError(`${where}: "${layer}" is not a layer name (letters, digits, _ . - / [ ] and * for globs). ${SPEC_HELP}`);
  }
}

/** A fresh quantizer for one datatype in one role (null for fp32). */
export function createQuantizer(datatypeText: string, role: Role, opts: { seed?: number } = {}): Quantizer | null {
  return parseDatatype(datatypeText).forRole(role)?.create(opts) ?? null;
}

// The spec language (datatypes, role assignments, per-layer overrides, errors that list valid forms), the
// `lowbit quantizers` table, and properties every quantizer made from a spec must have.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, tidy } from '../src/index.js';
import { LowbitError } from '../src/errors.js';
import {
  parseSpec, parseDatatype, createQuantizer, formatScheme, layerMatches, QUANTIZERS, EXAMPLE_SPECS, quantizersTable,
  shortCitation, type Quantizer, type Role,
} from '../src/quant/index.js';
import { assertClose, randomTensor, rng } from './helpers.js';

const rand = rng(2018_04);

/** The specs named in DESIGN.md. */
const DESIGN_SPECS = [
  'fp32', 'int8', 'uint8', 'int4', 'int8:per-channel', 'fixed:16.8', 'fixed:8.4:stochastic', 'dfp:8', 'minifloat:e4m3',
  'pow2:4', 'log2:4', 'inq:5', 'binary', 'binary:stochastic', 'bnn', 'xnor', 'bwn', 'twn', 'ttq', 'dorefa:w2a2g8', 'kmeans:16',
];

function roles(spec: string): string {
  return formatScheme(parseSpec(spec).global);
}

describe('spec language: datatypes', () => {
  it('every datatype of DESIGN.md parses, canonically, with the roles its paper quantizes', () => {
    const expected: Record<string, string> = {
      fp32: 'w=fp32,a=fp32', int8: 'w=int8,a=int8', uint8: 'w=uint8,a=uint8', int4: 'w=int4,a=int4',
      'int8:per-channel': 'w=int8:per-channel,a=int8', 'fixed:16.8': 'w=fixed:16.8,a=fixed:16.8',
      'fixed:8.4:stochastic': 'w=fixed:8.4:stochastic,a=fixed:8.4:stochastic', 'dfp:8': 'w=dfp:8,a=dfp:8',
      'minifloat:e4m3': 'w=minifloat:e4m3,a=minifloat:e4m3', 'pow2:4': 'w=pow2:4,a=fp32', 'log2:4': 'w=log2:4,a=log2:4',
      'inq:5': 'w=inq:5,a=fp32', binary: 'w=binary,a=fp32', 'binary:stochastic': 'w=binary:stochastic,a=fp32',
      bnn: 'w=bnn,a=bnn', xnor: 'w=xnor,a=xnor', bwn: 'w=bwn,a=fp32', twn: 'w=twn,a=fp32', ttq: 'w=ttq,a=fp32',
      'dorefa:w2a2g8': 'w=dorefa:w2,a=dorefa:a2,g=dorefa:g8', 'kmeans:16': 'w=kmeans:16,a=fp32',
    };
    for (const s of DESIGN_SPECS) {
      assert.equal(parseDatatype(s).spec, s, `${s} is canonical`);
      assert.equal(roles(s), expected[s], s);
    }
    // int8:per-channel named alone: per-channel weights, per-tensor activations
    const pc = parseSpec('int8:per-channel').global;
    assert.equal((pc.weight!.create() as Quantizer & { perChannel: boolean }).perChannel, true);
    assert.equal((pc.activation!.create() as Quantizer & { perChannel: boolean }).perChannel, false);
    // spelling variants
    assert.equal(parseDatatype(' INT8 ').spec, 'int8');
    assert.equal(parseDatatype('int8:asym:per-channel').spec, 'int8:asym:per-channel');
    assert.equal(parseDatatype('fixed:16.8:stochastic:unsigned').spec, 'fixed:16.8:unsigned:stochastic');
    assert.equal(parseDatatype('float32').spec, 'fp32');
  });

  it('quantizers from specs know their spec, role and bits', () => {
    const cases: [string, Role, number][] = [
      ['int8', 'weight', 8], ['uint8', 'activation', 8], ['fixed:16.8', 'activation', 16], ['dfp:8', 'weight', 8],
      ['minifloat:e4m3', 'weight', 8], ['fp16', 'activation', 16], ['pow2:4', 'weight', 4], ['log2:4', 'activation', 4],
      ['inq:5', 'weight', 5], ['binary', 'weight', 1], ['bnn', 'activation', 1], ['xnor', 'weight', 1], ['twn', 'weight', 2],
      ['ttq', 'weight', 2], ['dorefa:w2a2g8', 'gradient', 8], ['kmeans:16', 'weight', 4],
    ];
    for (const [spec, role, bits] of cases) {
      const q = createQuantizer(spec, role)!;
      assert.equal(q.role, role, spec);
      assert.equal(q.bits, bits, spec);
      assert.equal(q.describe().bits, bits, spec);
    }
    assert.equal(createQuantizer('fp32', 'weight'), null);
    assert.equal(createQuantizer('dorefa:w2a2g8', 'activation')!.spec, 'dorefa:a2');
  });
});

describe('spec language: roles and per-layer overrides', () => {
  it('w=twn,a=int8', () => {
    const s = parseSpec('w=twn,a=int8');
    assert.equal(formatScheme(s.global), 'w=twn,a=int8');
    assert.equal(s.global.activation!.create().describe().name, 'uniform affine int8, asymmetric, per tensor');
  });

  it('w=int4,a=int8;conv1=int8;fc=fp32', () => {
    const s = parseSpec('w=int4,a=int8;conv1=int8;fc=fp32');
    assert.equal(formatScheme(s.forLayer('conv1')), 'w=int8,a=int8');
    assert.equal(formatScheme(s.forLayer('fc')), 'w=fp32,a=fp32');
    assert.equal(formatScheme(s.forLayer('conv2')), 'w=int4,a=int8');
    assert.equal(formatScheme(s.forLayer('conv10')), 'w=int4,a=int8'); // conv1 is not a prefix of conv10
    assert.equal(s.toString(), 'w=int4,a=int8;conv1=int8;fc=fp32');
  });

  it('role overrides of one layer, prefixes, globs, the last match wins', () => {
    const s = parseSpec(' bnn ; conv1 : w = int8 , a = fp32 ; layer1 = int4 ; layer*.conv2 = fp32 ');
    assert.equal(s.text, 'bnn;conv1 : w = int8 , a = fp32;layer1 = int4;layer*.conv2 = fp32');
    assert.equal(formatScheme(s.forLayer('conv1')), 'w=int8,a=fp32');
    assert.equal(formatScheme(s.forLayer('fc')), 'w=bnn,a=bnn');
    assert.equal(formatScheme(s.forLayer('layer1.0.conv1')), 'w=int4,a=int4');
    assert.equal(formatScheme(s.forLayer('layer1.0.conv2')), 'w=fp32,a=fp32');
    assert.equal(formatScheme(s.forLayer('layer2.1.conv2')), 'w=fp32,a=fp32');
    assert.equal(formatScheme(s.forLayer('layer2.1.conv1')), 'w=bnn,a=bnn');
    assert.ok(layerMatches('features', 'features.3'));
    assert.ok(!layerMatches('features', 'features3'));
    assert.ok(layerMatches('layer*.conv2', 'layer3.0.conv2'));
    // only overrides: the rest stays float
    assert.equal(formatScheme(parseSpec('conv1=int8').forLayer('conv2')), 'w=fp32,a=fp32');
    assert.equal(formatScheme(parseSpec('dorefa:w1a2;conv1:g=dorefa:6').forLayer('conv1')), 'w=dorefa:w1,a=dorefa:a2,g=dorefa:g6');
  });

  it('overrides that match no layer of the model are reported', () => {
    const s = parseSpec('int8;conv9=fp32;fc=fp32');
    assert.deepEqual(s.unmatchedOverrides(['conv1', 'conv2', 'fc']).map((o) => o.layer), ['conv9']);
    assert.throws(() => s.checkLayers(['conv1', 'conv2', 'fc']), /"conv9" match no layer of the model; its layers are: conv1, conv2, fc/);
  });

  it('errors say what was wrong and list the valid forms', () => {
    const cases: [string, RegExp][] = [
      ['', /empty spec/],
      ['foo', /unknown datatype "foo"\. Valid datatypes: fp32; fp16; bf16; int<N>.*kmeans:<k>/],
      ['int8x', /bit width must be an integer from 2 to 16, got "8x"/],
      ['int33', /got "33"/],
      ['a=twn', /twn has no activation quantizer.*For activations use one of/],
      ['g=int8', /int8 has no gradient quantizer.*dorefa:g<k>/],
      ['a=binary', /BinaryConnect binarizes weights/],
      ['w=int8;w=int4', /only the first section can set the whole network/],
      ['int8;int4', /only the first section/],
      ['conv1=w=int8', /write conv1:w=<datatype>/],
      ['w=int8,,a=int4', /"" is not a role assignment/],
      ['w=int8,a', /"a" is not a role assignment/],
      ['w=int8,w=int4', /role w is assigned twice/],
      ['int8;', /empty section/],
      ['conv 1=int8', /"conv 1" is not a layer name/],
      ['w=int0', /from 2 to 16, got "0"/],
      ['w=fixed:8.9', /cannot exceed the word length 8/],
    ];
    for (const [spec, re] of cases) {
      assert.throws(() => parseSpec(spec), (e: Error) => {
        assert.ok(e instanceof LowbitError, `${spec}: ${e}`);
        assert.equal((e as LowbitError).exitCode, 2, `${spec}: a bad spec is bad usage (exit code 2)`);
        assert.match(e.message, re, `spec "${spec}"`);
        return true;
      });
    }
  });
});

describe('the quantizers table', () => {
  it('QUANTIZERS has every datatype with spec, paper, bits and value set', () => {
    const specs = QUANTIZERS.map((e) => e.spec);
    for (const s of DESIGN_SPECS) assert.ok(specs.includes(s), `${s} in the table`);
    assert.deepEqual(specs, [...EXAMPLE_SPECS]);
    for (const e of QUANTIZERS) {
      assert.ok(e.paper.length > 5 && e.name.length > 3, e.spec);
      for (const b of [e.weight_bits, e.act_bits, e.grad_bits]) assert.ok(Number.isInteger(b) && b >= 1 && b <= 32, e.spec);
    }
    const twn = QUANTIZERS.find((e) => e.spec === 'twn')!;
    assert.deepEqual([twn.weight_bits, twn.act_bits, twn.weight_values], [2, 32, '{-alpha, 0, +alpha}']);
    assert.equal(twn.paper, 'Li & Liu, Ternary Weight Networks, arXiv 2016');
    const dorefa = QUANTIZERS.find((e) => e.spec === 'dorefa:w2a2g8')!;
    assert.deepEqual([dorefa.weight_bits, dorefa.act_bits, dorefa.grad_bits], [2, 2, 8]);
  });

  it('lowbit quantizers --json and the text table', () => {
    const json = JSON.parse(quantizersTable(true)) as { spec: string; paper: string; weight_bits: number; weight: { forward: string } | null }[];
    assert.equal(json.length, QUANTIZERS.length);
    assert.equal(json.find((r) => r.spec === 'int8')!.weight!.forward.startsWith('q(r) = S (clamp(round(r / S) + Z, -127, 127) - Z)'), true);
    const text = quantizersTable(false);
    const lines = text.trimEnd().split('\n');
    assert.match(lines[0], /^spec\s+family\s+W\s+A\s+G\s+paper\s+values$/);
    assert.equal(lines.length, QUANTIZERS.length + 2);
    assert.match(text, /\nttq\s+ternary\s+2\s+fp32\s+fp32\s+Zhu et al\. 2017\s+\{-W\^n, 0, \+W\^p\}\n/);
    assert.equal(shortCitation('Jacob et al., Quantization and Training, CVPR 2018; Krishnamoorthi 2018 (per-channel)'), 'Jacob et al. 2018; Krishnamoorthi 2018');
  });
});

describe('every quantizer made from a spec', () => {
  const STOCHASTIC = new Set(['binary:stochastic', 'fixed:16.8:stochastic', 'fixed:8.4:stochastic']);

  it('dequantize(quantize(x)) equals fakeQuantize(x); integer codes within the level count; idempotent; shapes kept', () => tidy(() => {
    for (const spec of EXAMPLE_SPECS) {
      const d = parseDatatype(spec);
      for (const role of ['weight', 'activation'] as const) {
        const rs = d.scheme[role];
        if (!rs) continue;
        const q = rs.create({ seed: 1 });
        const x = role === 'weight' ? randomTensor([4, 3, 3, 3], rand, -1, 1) : randomTensor([2, 4, 3, 3], rand, -0.5, 2);
        const p = q.params(x);
        const y = q.fakeQuantize(x, p);
        assert.deepEqual(y.shape, x.shape, `${spec} ${role} shape`);
        const { codes, params } = q.quantize(x, p);
        assert.ok(codes.dtype !== 'f32', `${spec} codes are integers`);
        assert.deepEqual(codes.shape, x.shape);
        assert.ok(new Set(codes.toArray()).size <= q.describe().levels, `${spec} ${role}: more distinct codes than levels`);
        for (const v of y.toFloat32Array()) assert.ok(Number.isFinite(v), `${spec} finite`);
        if (STOCHASTIC.has(spec)) continue;
        assertClose(q.dequantize({ codes, params }).toFloat32Array(), y.toFloat32Array(), 1e-6, 1e-7, `${spec} ${role}: dequantize(quantize(x)) = fakeQuantize(x)`);
        // DoReFa's k-bit weights re-normalize through tanh, so they are not idempotent by design.
        if (spec.startsWith('dorefa') && role === 'weight') continue;
        assertClose(q.fakeQuantize(y, p).toFloat32Array(), y.toFloat32Array(), 1e-6, 1e-7, `${spec} ${role} idempotent`);
      }
    }
  }));

  it('NaN or Inf in a tensor: an error naming the tensor, for every datatype', () => tidy(() => {
    for (const spec of EXAMPLE_SPECS) {
      const d = parseDatatype(spec);
      for (const role of ['weight', 'activation'] as const) {
        const q = d.scheme[role]?.create();
        if (!q) continue;
        const x = Tensor.from([[0.5, NaN], [1, -1]]);
        x.name = `net.${role}`;
        assert.throws(() => q.fakeQuantize(x), (e: Error) => e instanceof LowbitError && e.message.includes(`net.${role}`), `${spec} ${role}`);
        assert.throws(() => q.quantize(x), LowbitError, `${spec} ${role} quantize`);
      }
    }
  }));
});

// ONNX conformance: every backend node test case of libonnx-testdata whose ops the importer maps is
// imported and run, and its outputs compared with the expected ones (src/formats/onnx/conformance.ts).
// A case may only be rejected at import (a clear LowbitError) if it is listed below with the reason; it
// may never give wrong numbers. `node scripts/onnx-ops-table.mjs` prints the README table from the same run.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { init, shutdown } from '../src/index.js';
import { CONFORMANCE_DIR, conformance } from '../src/formats/onnx/conformance.js';

/** Cases lowbit refuses at import, on purpose. */
const EXPECTED_REJECTIONS: Record<string, RegExp> = {
  // Training-mode batch norm returns updated running statistics; lowbit imports inference graphs.
  test_batchnorm_epsilon_training_mode: /training mode/,
  test_batchnorm_example_training_mode: /training mode/,
  // Sequence- and optional-typed values.
  test_identity_opt: /not a tensor/,
  test_identity_sequence: /not a tensor/,
  // MaxPool's second output (argmax indices).
  test_maxpool_with_argmax_2d_precomputed_pads: /Indices output/,
  test_maxpool_with_argmax_2d_precomputed_strides: /Indices output/,
  // 3-D (volumetric) transposed convolution: lowbit convolves 1-D and 2-D inputs.
  test_convtranspose_3d: /not 3-D/,
  // Dropout in training mode is random (the ratio is a run-time input in these cases).
  test_training_dropout: /training mode/,
  test_training_dropout_default: /training mode/,
  test_training_dropout_default_mask: /training mode/,
  test_training_dropout_mask: /training mode/,
  test_training_dropout_zero_ratio: /training mode/,
  test_training_dropout_zero_ratio_mask: /training mode/,
};

const available = existsSync(CONFORMANCE_DIR);

before(async () => { await init(); });
after(async () => { await shutdown(); });

describe('ONNX conformance (libonnx-testdata)', { skip: available ? false : `${CONFORMANCE_DIR} missing: install the Debian package libonnx-testdata (.ci/run does)` }, () => {
  it('every case of every supported op passes, or is a listed rejection with a clear error', () => {
    const { results, ops } = conformance();
    assert.ok(results.length > 150, `only ${results.length} supported cases found`);
    const failed = results.filter((r) => r.status === 'fail');
    assert.deepEqual(failed.map((r) => `${r.name}: ${r.message}`), []);
    const rejected = results.filter((r) => r.status === 'rejected');
    for (const r of rejected) {
      const why = EXPECTED_REJECTIONS[r.name];
      assert.ok(why, `${r.name} was rejected unexpectedly: ${r.message}`);
      assert.match(r.message ?? '', why, r.name);
    }
    // The quantized ops (already-quantized models): every case passes, integer outputs compared exactly.
    const quantized = ['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger'];
    for (const op of quantized) {
      const o = ops.find((p) => p.op === op);
      assert.ok(o && o.cases > 0 && o.passed === o.cases, `${op}: ${o?.passed} / ${o?.cases} cases pass`);
    }
    for (const name of ['test_quantizelinear', 'test_quantizelinear_axis', 'test_dequantizelinear', 'test_dequantizelinear_axis', 'test_qlinearconv',
      'test_qlinearmatmul_2D', 'test_qlinearmatmul_3D', 'test_basic_convinteger', 'test_convinteger_with_padding', 'test_convinteger_without_padding', 'test_matmulinteger']) {
      assert.equal(results.find((r) => r.name === name)?.status, 'pass', name);
    }
    // ConvTranspose (2-D, and 1-D as 2-D over [N, C, 1, L]): every case but the 3-D one passes.
    for (const name of ['test_convtranspose', 'test_convtranspose_1d', 'test_convtranspose_autopad_same', 'test_convtranspose_dilations',
      'test_convtranspose_kernel_shape', 'test_convtranspose_output_shape', 'test_convtranspose_pad', 'test_convtranspose_pads', 'test_convtranspose_with_kernel']) {
      assert.equal(results.find((r) => r.name === name)?.status, 'pass', name);
    }
    // Every supported op has conformance cases, and most of them pass.
    for (const o of ops) {
      if (o.op === 'Constant') continue; // its one case is also counted; see the table
      assert.ok(o.cases > 0, `${o.op} has no conformance case`);
      assert.ok(o.passed > 0, `${o.op} passes no case`);
    }
  });
});

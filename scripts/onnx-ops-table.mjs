#!/usr/bin/env node
// Print the README's table of supported ONNX ops with the number of ONNX conformance cases each passes
// (libonnx-testdata), computed by running them: `npx tsc -p . && node scripts/onnx-ops-table.mjs [--details]`.
import { init, shutdown } from '../dist/src/tensor/backend.js';
import { conformance, conformanceTable, CONFORMANCE_DIR } from '../dist/src/formats/onnx/conformance.js';

await init();
try {
  const { results, ops } = conformance();
  if (results.length === 0) {
    console.error(`no conformance cases under ${CONFORMANCE_DIR}; install the Debian package libonnx-testdata`);
    process.exitCode = 1;
  } else {
    console.log(conformanceTable(ops));
    if (process.argv.includes('--details')) {
      for (const r of results) if (r.status !== 'pass') console.log(`\n${r.status}: ${r.name}: ${r.message}`);
    }
  }
} finally {
  await shutdown();
}

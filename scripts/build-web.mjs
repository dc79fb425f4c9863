// Bundle the playground page's script (dist/src/playground/main.js, compiled by tsc) with esbuild into
// dist/web/playground.js, one ES module for browsers. Run by `npm run build` (after build:ts).
//
// The runtime's modules also serve Node: some import node:fs or node:path at the top for file I/O the page
// never calls, and the kernel loader imports node:fs / node:worker_threads dynamically on its Node path.
// Those imports resolve to a stub whose every export throws when called, so no Node code reaches the bundle
// and a wrong call fails loudly instead of silently.

import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

const nodeStub = {
  name: 'node-builtins-stub',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: 'node-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (args) => ({
      loader: 'js',
      contents: `const fail = (name) => () => { throw new Error('lowbit: ${args.path}.' + String(name) + ' is not available in a browser'); };
module.exports = new Proxy({}, { get: (_, name) => name === '__esModule' ? false : fail(name) });`,
    }));
  },
};

const result = await build({
  absWorkingDir: root,
  entryPoints: ['dist/src/playground/main.js'],
  outfile: 'dist/web/playground.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome110', 'firefox115', 'safari16'],
  minify: true,
  sourcemap: true,
  legalComments: 'linked',
  plugins: [nodeStub],
  metafile: true,
  logLevel: 'warning',
});
// Node globals would only fail when the page runs: refuse them here.
const { readFileSync } = await import('node:fs');
const code = readFileSync(`${root}dist/web/playground.js`, 'utf8');
const leaked = code.match(/\bBuffer\.\w+|\brequire\(["']|\b__dirname\b/);
if (leaked) throw new Error(`dist/web/playground.js uses a Node global (${leaked[0]}): the page would fail; make that code browser-safe`);
const out = result.metafile.outputs['dist/web/playground.js'];
console.error(`dist/web/playground.js: ${(out.bytes / 1024).toFixed(0)} KiB from ${Object.keys(result.metafile.inputs).length} modules`);

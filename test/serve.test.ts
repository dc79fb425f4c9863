// `lowbit serve`: the static handler's path safety and headers, over real HTTP requests to a started server
// (raw sockets, so that "..", encodings, backslashes and NUL reach the server exactly as written); the
// playground build when a model's weights are missing; the MNIST-style preprocessing of drawings; and the
// kernels on unshared memory (how they run in a page that is not cross-origin isolated).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startStaticServer, CONTENT_SECURITY_POLICY, type RunningServer } from '../src/serve/static.js';
import { buildPlayground } from '../src/serve/playground.js';
import { mnistFromInk, normalizePixels, softmax } from '../src/playground/preprocess.js';
import { kernelModules, unsharedVariant } from '../src/kernels/wasm/loader.js';
import { createWasmKernels } from '../src/kernels/wasm/index.js';
import { createRefKernels } from '../src/kernels/ref/index.js';
import { EngineMemory } from '../src/kernels/memory.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const SECRET = 'top-secret-content-outside-the-folder';

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One HTTP/1.1 request written byte for byte on a socket; the response parsed just enough. */
function raw(port: number, target: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<RawResponse> {
  const headers = { Host: `127.0.0.1:${port}`, Connection: 'close', ...opts.headers };
  const head = `${opts.method ?? 'GET'} ${target} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const lines = text.slice(0, split).split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const h: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        h[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status, headers: h, body: text.slice(split + 4) });
    });
    socket.write(head + (opts.body ?? ''), 'latin1');
  });
}

describe('lowbit serve: static handler', () => {
  let dir: string;
  let server: RunningServer;
  let port: number;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'lowbit-serve-'));
    const site = join(dir, 'site');
    mkdirSync(join(site, 'models'), { recursive: true });
    mkdirSync(join(site, 'sub'), { recursive: true });
    writeFileSync(join(site, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(site, 'app.js'), 'export {};');
    writeFileSync(join(site, 'style.css'), 'body{}');
    writeFileSync(join(site, 'manifest.json'), '{}');
    writeFileSync(join(site, 'k.wasm'), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    writeFileSync(join(site, 'chart.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(join(site, 'models', 'a.lowbit'), 'LOWBIT');
    writeFileSync(join(site, 'sub', 'page.txt'), 'inside');
    writeFileSync(join(site, '.hidden'), SECRET);
    writeFileSync(join(dir, 'secret.txt'), SECRET);
    symlinkSync(join(dir, 'secret.txt'), join(site, 'link.txt')); // a link that leads out of the folder
    symlinkSync(dir, join(site, 'linkdir'));
    server = await startStaticServer(site, { port: 0 });
    port = Number(new URL(server.url).port);
  });

  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds 127.0.0.1 by default', () => {
    const a = server.server.address();
    assert.ok(a && typeof a === 'object');
    assert.equal(a.address, '127.0.0.1');
    assert.ok(port > 0);
  });

  it('serves files with their Content-Type, a restrictive CSP and nosniff', async () => {
    const expected: [string, RegExp][] = [
      ['/', /^text\/html; charset=utf-8$/],
      ['/index.html', /^text\/html/],
      ['/app.js', /^text\/javascript/],
      ['/style.css', /^text\/css/],
      ['/manifest.json', /^application\/json/],
      ['/k.wasm', /^application\/wasm$/],
      ['/chart.svg', /^image\/svg\+xml$/],
      ['/models/a.lowbit', /^application\/octet-stream$/],
      ['/sub/page.txt?x=1#frag', /^text\/plain/],
    ];
    for (const [path, type] of expected) {
      const r = await raw(port, path);
      assert.equal(r.status, 200, path);
      assert.match(r.headers['content-type'], type, path);
      assert.equal(r.headers['content-security-policy'], CONTENT_SECURITY_POLICY, path);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
    const csp = CONTENT_SECURITY_POLICY;
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|'unsafe-eval'|\*/);
    assert.equal((await raw(port, '/sub/page.txt')).body, 'inside');
  });

  it('refuses traversal in every encoding, backslashes, NUL, absolute paths and links out of the folder', async () => {
    const attempts = [
      '/../secret.txt', '/sub/../../secret.txt', '/./index.html',
      '/%2e%2e/secret.txt', '/%2E%2E/secret.txt', '/.%2e/secret.txt', '/%2e./secret.txt', '/sub/%2e%2e/%2e%2e/secret.txt',
      '/..%2fsecret.txt', '/%2e%2e%2fsecret.txt', '/sub%2f..%2f..%2fsecret.txt', '/..%2Fsecret.txt',
      '/%252e%252e/secret.txt', '/%252e%252e%252fsecret.txt', '/..%252fsecret.txt', '/%25252e%25252e/secret.txt',
      '/..\\secret.txt', '/%5c..%5csecret.txt', '/..%5csecret.txt', '/sub\\..\\..\\secret.txt',
      '/%c0%ae%c0%ae/secret.txt', '/%uff0e%uff0e/secret.txt', '/%e0%80%ae%e0%80%ae/secret.txt',
      '//etc/passwd', '/%2fetc%2fpasswd', `/${dir.replace(/^\//, '')}/secret.txt`, '/C:/Windows/win.ini', '/c%3a%5cwindows',
      '/index.html%00.txt', '/%00', '/sub/page.txt\0',
      'http://127.0.0.1/../secret.txt', '../secret.txt', '*',
      '/link.txt', '/linkdir/secret.txt', '/.hidden', '/%2ehidden', '/sub/.%2e/.%2e/secret.txt',
    ];
    for (const target of attempts) {
      const r = await raw(port, target);
      assert.ok([400, 403, 404].includes(r.status), `${JSON.stringify(target)} answered ${r.status}`);
      assert.ok(!r.body.includes(SECRET), `${JSON.stringify(target)} leaked the file`);
    }
    // the plain forms are refused as forbidden, not merely not found
    for (const target of ['/../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/%252e%252e/secret.txt', '/..%5csecret.txt', '/linkdir/secret.txt', '/link.txt']) {
      assert.equal((await raw(port, target)).status, 403, target);
    }
  });

  it('takes only GET and HEAD, without a body, with headers of at most 8 KiB', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
      const r = await raw(port, '/index.html', { method });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD');
    }
    const withBody = await raw(port, '/index.html', { headers: { 'Content-Length': '5' }, body: 'hello' });
    assert.equal(withBody.status, 413);
    const chunked = await raw(port, '/index.html', { headers: { 'Transfer-Encoding': 'chunked' }, body: '5\r\nhello\r\n0\r\n\r\n' });
    assert.equal(chunked.status, 413);
    const big = await raw(port, '/index.html', { method: 'POST', headers: { 'Content-Length': String(1 << 30) } });
    assert.equal(big.status, 405);
    const hugeHeader = await raw(port, '/index.html', { headers: { 'X-Padding': 'x'.repeat(16384) } });
    assert.equal(hugeHeader.status, 431);
    const head = await raw(port, '/app.js', { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '10');
    assert.equal(head.body, '');
  });

  it('answers only to loopback host names while bound to 127.0.0.1 (DNS rebinding)', async () => {
    assert.equal((await raw(port, '/index.html', { headers: { Host: 'evil.example' } })).status, 403);
    assert.equal((await raw(port, '/index.html', { headers: { Host: `localhost:${port}` } })).status, 200);
  });

  it('reports a missing model file as such', async () => {
    const r = await raw(port, '/models/resnet20-cifar10-int8.lowbit');
    assert.equal(r.status, 404);
    assert.match(r.body, /model file models\/resnet20-cifar10-int8\.lowbit is missing/);
    assert.equal((await raw(port, '/nothing.html')).status, 404);
  });
});

describe('lowbit serve: the playground build', () => {
  it('says on the page that a model is missing (no weights) instead of going blank', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-pg-'));
    try {
      const out = join(dir, 'site');
      const manifest = await buildPlayground(out, { weightsDir: join(dir, 'no-weights'), resultsDir: join(dir, 'no-results') });
      assert.equal(manifest.models.length, 2);
      for (const m of manifest.models) assert.match(m.missing ?? '', /is missing.*lowbit train --model/);
      const server = await startStaticServer(out, { port: 0 });
      try {
        const port = Number(new URL(server.url).port);
        const page = await raw(port, '/');
        assert.equal(page.status, 200);
        assert.match(page.body, /<script type="module" src="playground\.js"><\/script>/);
        assert.doesNotMatch(page.body, /<script>|on(click|load)=/, 'no inline script (the CSP forbids it)');
        for (const id of ['lenet5-mnist', 'resnet20-cifar10']) {
          assert.match(page.body, new RegExp(`data-model="${id}" data-state="missing"`));
          assert.match(page.body, new RegExp(`${id}\\.lowbit did not exist when this playground was built`));
        }
        for (const file of ['/playground.js', '/kernels.wasm', '/style.css', '/manifest.json']) assert.equal((await raw(port, file)).status, 200, file);
      } finally {
        await server.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to replace a folder that is not a playground build', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lowbit-pg-'));
    try {
      writeFileSync(join(dir, 'precious.txt'), 'keep me');
      await assert.rejects(buildPlayground(dir, { weightsDir: join(dir, 'none'), resultsDir: join(dir, 'none') }), /not empty and not a playground build/);
      assert.equal(readFileSync(join(dir, 'precious.txt'), 'utf8'), 'keep me');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('validates its arguments (exit code 2)', () => {
    for (const args of [['--port', '70000'], ['--port', 'x'], ['--build', join(tmpdir(), 'x'), '--host', '0.0.0.0']]) {
      const r = spawnSync(process.execPath, [MAIN, 'serve', ...args], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /--port|--host/);
    }
  });
});

describe('playground preprocessing (MNIST conventions)', () => {
  /** A W x H canvas with a filled rectangle of ink. */
  function drawing(W: number, H: number, x0: number, y0: number, w: number, h: number): Uint8Array {
    const ink = new Uint8Array(W * H);
    for (let y = y0; y < y0 + h; y++) ink.fill(255, y * W + x0, y * W + x0 + w);
    return ink;
  }

  it('scales the digit into a 20x20 box and centres it by mass, wherever it was drawn', () => {
    for (const [x0, y0] of [[10, 10], [200, 150], [120, 30]]) {
      const d = mnistFromInk(drawing(280, 280, x0, y0, 20, 100), 280, 280)!; // a "1": 20 wide, 100 tall
      assert.equal(d.length, 784);
      let rows = 0, cols = 0, mass = 0, mx = 0, my = 0;
      for (let y = 0; y < 28; y++) if (d.subarray(y * 28, y * 28 + 28).some((v) => v > 0)) rows++;
      for (let x = 0; x < 28; x++) if (Array.from({ length: 28 }, (_, y) => d[y * 28 + x]).some((v) => v > 0)) cols++;
      d.forEach((v, i) => { mass += v; mx += v * (i % 28); my += v * Math.floor(i / 28); });
      assert.equal(rows, 20, 'the long side becomes 20 pixels');
      assert.equal(cols, 4, 'aspect ratio kept (20:100 -> 4:20)');
      assert.ok(Math.abs(mx / mass - 13.5) <= 0.5 && Math.abs(my / mass - 13.5) <= 0.5, `centre of mass ${mx / mass}, ${my / mass}`);
      assert.ok(Math.max(...d) <= 255 && Math.max(...d) > 250);
    }
  });

  it('enlarges a tiny drawing and returns null for an empty canvas', () => {
    const d = mnistFromInk(drawing(100, 100, 40, 40, 5, 5), 100, 100)!;
    assert.equal(d.filter((v) => v > 200).length, 400, 'a 5x5 square becomes 20x20');
    assert.equal(mnistFromInk(new Uint8Array(100 * 100), 100, 100), null);
  });

  it('normalizes pixels per channel and computes probabilities', () => {
    const x = normalizePixels([0, 255, 51, 255], 2, { mean: [0.5, 0.2], std: [0.5, 0.4] });
    assert.deepEqual(Array.from(x, (v) => +v.toFixed(5)), [-1, 1, 0, 2]);
    const p = softmax([1, 2, 3]);
    assert.ok(Math.abs(p.reduce((a, b) => a + b) - 1) < 1e-12 && p[2] > p[1] && p[1] > p[0]);
  });
});

describe('kernels on unshared memory (a page without cross-origin isolation)', () => {
  it('clears only the shared flag of the memory import', async () => {
    const bytes = new Uint8Array(readFileSync(fileURLToPath(new URL('../../build/kernels.wasm', import.meta.url))));
    const variant = unsharedVariant(bytes);
    assert.equal(variant.length, bytes.length);
    assert.equal(bytes.filter((b, i) => b !== variant[i]).length, 1, 'one byte differs');
    const module = await WebAssembly.compile(variant);
    const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536 });
    assert.doesNotThrow(() => new WebAssembly.Instance(module, { env: { memory, abort: () => {} } }));
    await assert.rejects(async () => new WebAssembly.Instance((await kernelModules(true)).plain, { env: { memory, abort: () => {} } }), /shared|memory/i);
  });

  it('runs the kernels single-threaded on an unshared memory, equal to the reference', async () => {
    const mem = new EngineMemory({ shared: false });
    assert.ok(!(mem.memory.buffer instanceof SharedArrayBuffer));
    const wasm = await createWasmKernels(mem, { threads: 2 });
    try {
      assert.equal(wasm.threads, 1);
      assert.equal(wasm.features.threads, false);
      const ref = createRefKernels(mem);
      const m = 37, n = 29, k = 53;
      const a = mem.alloc(m * k * 4), b = mem.alloc(k * n * 4), c1 = mem.alloc(m * n * 4), c2 = mem.alloc(m * n * 4);
      for (let i = 0; i < m * k; i++) mem.f32[(a >> 2) + i] = Math.sin(i);
      for (let i = 0; i < k * n; i++) mem.f32[(b >> 2) + i] = Math.cos(i);
      wasm.gemm(false, false, m, n, k, a, k, b, n, c1, n, false);
      ref.gemm(false, false, m, n, k, a, k, b, n, c2, n, false);
      for (let i = 0; i < m * n; i++) assert.ok(Math.abs(mem.f32[(c1 >> 2) + i] - mem.f32[(c2 >> 2) + i]) < 1e-4, `element ${i}`);
    } finally {
      await wasm.dispose();
    }
  });
});

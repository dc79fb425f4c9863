// The playground end to end in a real browser: Debian's Chromium, headless, driven by playwright-core. The
// page is built as `lowbit serve --build` builds it (post-training quantization, to keep the test short),
// served by lowbit's static server; the test draws digits with the mouse and checks that every datatype's
// model answers in the page (lowbit's WebAssembly runtime, no server-side inference), that FP32 reads the
// digits drawn and int8 agrees with FP32, and that a model file missing from the build is reported on the
// page. A screenshot is saved ($LOWBIT_PLAYGROUND_SCREENSHOT, default: <tmp>/lowbit-playground.png).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { init, shutdown } from '../src/index.js';
import { buildPlayground } from '../src/serve/playground.js';
import { startStaticServer, type RunningServer } from '../src/serve/static.js';
import type { Manifest } from '../src/playground/manifest.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
// CI installs chromium (.ci/run): there a missing browser is a failure, not a skip.
if (!haveChromium && process.env.CI) throw new Error(`${CHROMIUM} is missing; install it with apt-get install chromium`);
const skip = haveChromium ? false : `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium) to run the playground browser test`;

/** Strokes in canvas fractions (0..1), each a polyline drawn with the mouse button held. */
const DIGITS: { digit: string; strokes: [number, number][][] }[] = [
  { digit: '1', strokes: [[[0.5, 0.15], [0.5, 0.85]]] },
  { digit: '7', strokes: [[[0.25, 0.2], [0.75, 0.2], [0.45, 0.85]]] },
  {
    digit: '0',
    strokes: [Array.from({ length: 33 }, (_, i): [number, number] => [0.5 + 0.22 * Math.sin((2 * Math.PI * i) / 32), 0.5 - 0.32 * Math.cos((2 * Math.PI * i) / 32)])],
  },
];

async function draw(page: Page, strokes: [number, number][][]): Promise<void> {
  const box = (await page.locator('section[data-model="lenet5-mnist"] canvas.draw').boundingBox())!;
  const at = ([x, y]: [number, number]): [number, number] => [box.x + x * box.width, box.y + y * box.height];
  for (const stroke of strokes) {
    await page.mouse.move(...at(stroke[0]));
    await page.mouse.down();
    for (const p of stroke.slice(1)) await page.mouse.move(...at(p), { steps: 8 });
    await page.mouse.up();
  }
}

async function rows(page: Page): Promise<Map<string, { state: string | null; top1: string | null; ms: number; text: string }>> {
  const out = new Map<string, { state: string | null; top1: string | null; ms: number; text: string }>();
  for (const r of await page.locator('section[data-model="lenet5-mnist"] tr[data-variant]').all()) {
    out.set((await r.getAttribute('data-variant'))!, {
      state: await r.getAttribute('data-state'),
      top1: await r.getAttribute('data-top1'),
      ms: Number(await r.getAttribute('data-ms')),
      text: (await r.locator('.top1').textContent()) ?? '',
    });
  }
  return out;
}

describe('playground in Chromium (playwright-core)', () => {
  let dir: string;
  let server: RunningServer;
  let browser: Browser;
  let manifest: Manifest;
  const errors: string[] = [];

  before(async () => {
    if (!haveChromium) return; // the tests below report the skip and its reason
    await init({ threads: 2 });
    dir = mkdtempSync(join(tmpdir(), 'lowbit-playground-'));
    manifest = await buildPlayground(join(dir, 'site'), { quick: true });
    server = await startStaticServer(join(dir, 'site'), { port: 0 });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  });

  after(async () => {
    await browser?.close();
    await server?.close();
    await shutdown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function open(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1100, height: 1000 } });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
    await page.goto(server.url);
    await page.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { timeout: 60_000 });
    return page;
  }

  it('runs every datatype in the page on drawn digits; int8 agrees with FP32', { skip }, async () => {
    assert.ok(!manifest.models.find((m) => m.id === 'lenet5-mnist')!.missing, 'the LeNet-5 weights are committed');
    const page = await open();
    assert.equal(await page.getAttribute('#status', 'data-state'), 'ready', (await page.textContent('#status')) ?? '');
    assert.match((await page.textContent('#status'))!, /1 thread/);
    const variants = manifest.models.find((m) => m.id === 'lenet5-mnist')!.variants!.map((v) => v.key);
    assert.deepEqual(variants, ['fp32', 'int8', 'ternary', 'binary']);
    for (const { digit, strokes } of DIGITS) {
      await page.click('section[data-model="lenet5-mnist"] button.clear');
      await draw(page, strokes);
      await page.waitForFunction(() => Array.from(document.querySelectorAll('section[data-model="lenet5-mnist"] tr[data-variant]')).every((r) => (r as HTMLElement).dataset.state === 'ok'), null, { timeout: 20_000 });
      const r = await rows(page);
      for (const key of variants) {
        const row = r.get(key)!;
        assert.equal(row.state, 'ok', `${key} answered`);
        assert.match(row.top1 ?? '', /^[0-9]$/, `${key} top-1`);
        assert.ok(row.ms > 0 && row.ms < 1000, `${key} latency ${row.ms} ms`);
      }
      assert.equal(r.get('fp32')!.top1, digit, `FP32 reads the drawn ${digit}`);
      assert.equal(r.get('int8')!.top1, r.get('fp32')!.top1, `int8 agrees with FP32 on the drawn ${digit}`);
    }
    // the CIFAR-10 model: its sample images when its weights exist, a clear note while they do not
    const cifar = manifest.models.find((m) => m.id === 'resnet20-cifar10')!;
    const section = page.locator('section[data-model="resnet20-cifar10"]');
    if (cifar.missing) {
      assert.match((await section.locator('.missing-note').textContent())!, /model is missing.*lowbit train --model resnet20/);
    } else {
      assert.equal(await section.locator('.samples canvas').count(), cifar.samples!.count);
      assert.equal(await section.locator('tr[data-variant="fp32"]').getAttribute('data-state'), 'ok');
    }
    assert.ok((await page.locator('.charts img').count()) >= 3, 'the comparison charts are on the page');
    const shot = process.env.LOWBIT_PLAYGROUND_SCREENSHOT ?? join(tmpdir(), 'lowbit-playground.png');
    await page.screenshot({ path: shot, fullPage: true });
    assert.ok(existsSync(shot));
    console.log(`# screenshot: ${shot}`);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('says so on the page when a model file is missing from the build', { skip }, async () => {
    rmSync(join(dir, 'site', 'models', 'lenet5-mnist-binary.lowbit'));
    const page = await open();
    await page.waitForSelector('section[data-model="lenet5-mnist"][data-state="ready"]');
    const r = await rows(page);
    assert.equal(r.get('binary')!.state, 'error');
    assert.match(r.get('binary')!.text, /models\/lenet5-mnist-binary\.lowbit is missing \(HTTP 404/);
    assert.match((await page.textContent('#status'))!, /1 model file\(s\) could not be loaded/);
    await draw(page, DIGITS[0].strokes);
    await page.waitForSelector('section[data-model="lenet5-mnist"] tr[data-variant="fp32"][data-state="ok"]');
    assert.equal((await rows(page)).get('int8')!.state, 'ok', 'the other models still answer');
    await page.close();
  });
});

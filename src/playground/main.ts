// The playground page (bundled by scripts/build-web.mjs into playground.js): loads the packed models of
// manifest.json, runs them with lowbit's WebAssembly kernels on this page's thread, and shows each datatype's
// probabilities and latency side by side. No inference happens on the server.
//
// The kernels run single-threaded here: the page is not cross-origin isolated (so that it works from any
// static server), which means no shared memory and no kernel workers.

import { setKernelSource } from '../kernels/wasm/loader.js';
import { init } from '../tensor/backend.js';
import { Tensor } from '../tensor/tensor.js';
import { compileRuntimeModel, decodeRuntimeModel } from '../runtime/file.js';
import type { Plan } from '../runtime/plan.js';
import { mnistFromInk, normalizePixels, softmax } from './preprocess.js';
import type { Manifest, ManifestModel, ManifestVariant } from './manifest.js';

/** Timed runs per prediction; the median is shown (the first runs of a page are slower). */
const RUNS = 5;

interface Loaded {
  variant: ManifestVariant;
  row: HTMLTableRowElement;
  plan: Plan | null;
}

function setStatus(state: 'loading' | 'ready' | 'error', text: string): void {
  const el = document.getElementById('status');
  if (!el) return;
  el.dataset.state = state;
  el.textContent = text;
}

async function fetchOk(url: string): Promise<Response> {
  const res = await fetch(url);
  if (!res.ok) {
    const body = (await res.text().catch(() => '')).split('\n')[0].replace(/^\d+ /, '');
    throw new Error(res.status === 404 ? `${url} is missing (HTTP 404${body ? `: ${body}` : ''})` : `${url}: HTTP ${res.status} ${body}`);
  }
  return res;
}

async function loadPlan(v: ManifestVariant): Promise<Plan> {
  const bytes = new Uint8Array(await (await fetchOk(v.file)).arrayBuffer());
  return compileRuntimeModel(decodeRuntimeModel(bytes, v.file), v.file);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

/** Run every loaded variant on one image (pixels 0..255, CHW) and fill its row. */
function predictAll(m: ManifestModel, loaded: Loaded[], pixels: ArrayLike<number>): void {
  const shape = m.inputShape!;
  const x = normalizePixels(pixels, shape[1], m.preprocess);
  for (const l of loaded) {
    if (!l.plan) continue;
    const times: number[] = [];
    let logits: Float32Array | null = null;
    for (let r = 0; r < RUNS; r++) {
      const input = Tensor.from(x, shape);
      const t0 = performance.now();
      const y = l.plan.run(input);
      times.push(performance.now() - t0);
      logits = y.toFloat32Array();
      y.dispose();
      input.dispose();
    }
    const p = softmax(logits!);
    const top = p.indexOf(Math.max(...p));
    const ms = median(times);
    l.row.dataset.state = 'ok';
    l.row.dataset.top1 = String(top);
    l.row.dataset.ms = ms.toFixed(3);
    l.row.querySelector('.top1')!.textContent = `${m.classes?.[top] ?? top} (${(100 * p[top]).toFixed(1)}%)`;
    // browsers coarsen performance.now() to 0.1 ms on pages that are not cross-origin isolated
    l.row.querySelector('.ms')!.textContent = ms.toFixed(1);
    l.row.querySelectorAll<HTMLElement>('.bar i').forEach((bar, k) => {
      bar.style.height = `${(100 * p[k]).toFixed(1)}%`; // CSSOM, allowed by the page's style-src 'self'
      bar.parentElement!.classList.toggle('top', k === top);
      bar.parentElement!.title = `${m.classes?.[k] ?? k}: ${(100 * p[k]).toFixed(2)}%`;
    });
  }
}

function setupDrawing(section: HTMLElement, onDigit: (pixels: Float32Array) => void, onClear: () => void): void {
  const canvas = section.querySelector<HTMLCanvasElement>('canvas.draw')!;
  const preview = section.querySelector<HTMLCanvasElement>('canvas.preview')!;
  const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    preview.getContext('2d')!.clearRect(0, 0, 28, 28);
  };
  clear();
  // Stroke width ~ 1/14 of the canvas: after scaling the digit to 20x20, about MNIST's 2-3 pixel strokes.
  ctx.lineWidth = canvas.width / 14;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  ctx.strokeStyle = '#fff';
  let drawing = false;
  const at = (e: PointerEvent): [number, number] => {
    const r = canvas.getBoundingClientRect();
    return [((e.clientX - r.left) * canvas.width) / r.width, ((e.clientY - r.top) * canvas.height) / r.height];
  };
  canvas.addEventListener('pointerdown', (e) => {
    drawing = true;
    canvas.setPointerCapture(e.pointerId);
    ctx.beginPath();
    ctx.moveTo(...at(e));
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    ctx.lineTo(...at(e));
    ctx.stroke();
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    const ink = new Uint8Array(canvas.width * canvas.height);
    for (let i = 0; i < ink.length; i++) ink[i] = rgba[4 * i]; // white on black: red = ink
    const digit = mnistFromInk(ink, canvas.width, canvas.height);
    if (!digit) return;
    const img = new ImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      img.data.fill(digit[i], 4 * i, 4 * i + 3);
      img.data[4 * i + 3] = 255;
    }
    preview.getContext('2d')!.putImageData(img, 0, 0);
    onDigit(digit);
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  section.querySelector('button.clear')?.addEventListener('click', () => {
    clear();
    onClear();
  });
}

async function setupSamples(section: HTMLElement, m: ManifestModel, onPick: (pixels: Uint8Array) => void): Promise<void> {
  const grid = section.querySelector<HTMLElement>('.samples')!;
  const s = m.samples!;
  const [, C, H, W] = m.inputShape!;
  const size = C * H * W;
  const bytes = new Uint8Array(await (await fetchOk(s.file)).arrayBuffer());
  if (bytes.length !== s.count * size) throw new Error(`${s.file}: ${bytes.length} bytes, expected ${s.count} images of ${size}`);
  for (let i = 0; i < s.count; i++) {
    const pixels = bytes.subarray(i * size, (i + 1) * size);
    const canvas = document.createElement('canvas');
    canvas.width = W;
    canvas.height = H;
    canvas.title = m.classes?.[s.labels[i]] ?? String(s.labels[i]);
    const img = new ImageData(W, H);
    for (let p = 0; p < H * W; p++) {
      for (let c = 0; c < 3; c++) img.data[4 * p + c] = pixels[(C === 3 ? c : 0) * H * W + p];
      img.data[4 * p + 3] = 255;
    }
    canvas.getContext('2d')!.putImageData(img, 0, 0);
    canvas.addEventListener('click', () => {
      grid.querySelectorAll('canvas').forEach((c) => c.classList.toggle('picked', c === canvas));
      section.querySelector('.picked-label')!.textContent = `true class: ${canvas.title}`;
      onPick(pixels);
    });
    grid.appendChild(canvas);
  }
  grid.querySelector('canvas')?.dispatchEvent(new MouseEvent('click'));
}

async function setupModel(m: ManifestModel): Promise<void> {
  const section = document.querySelector<HTMLElement>(`section[data-model="${CSS.escape(m.id)}"]`);
  if (!section) return;
  const loaded: Loaded[] = [];
  for (const v of m.variants ?? []) {
    const row = section.querySelector<HTMLTableRowElement>(`tr[data-variant="${CSS.escape(v.key)}"]`)!;
    try {
      const plan = await loadPlan(v);
      // one untimed run, so that the first latency shown is not the engine's warm-up
      const zeros = Tensor.zeros(m.inputShape!);
      plan.run(zeros).dispose();
      zeros.dispose();
      loaded.push({ variant: v, row, plan });
      row.dataset.state = 'loaded';
      row.querySelector('.top1')!.textContent = '–';
    } catch (e) {
      row.dataset.state = 'error';
      row.querySelector('.top1')!.textContent = (e as Error).message.replace(/^lowbit: /, '');
      row.classList.add('failed');
    }
  }
  const reset = () => {
    for (const l of loaded) {
      if (!l.plan) continue;
      l.row.dataset.state = 'loaded';
      delete l.row.dataset.top1;
      l.row.querySelector('.top1')!.textContent = '–';
      l.row.querySelector('.ms')!.textContent = '';
      l.row.querySelectorAll<HTMLElement>('.bar i').forEach((bar) => { bar.style.height = '0'; bar.parentElement!.classList.remove('top'); });
    }
  };
  if (m.input === 'draw') setupDrawing(section, (digit) => predictAll(m, loaded, digit), reset);
  else await setupSamples(section, m, (pixels) => predictAll(m, loaded, pixels));
  section.dataset.state = 'ready';
}

async function main(): Promise<void> {
  setStatus('loading', 'loading the WebAssembly kernels and the models…');
  try {
    const manifest = (await (await fetchOk('manifest.json')).json()) as Manifest;
    setKernelSource(new URL('kernels.wasm', document.baseURI));
    await init({ threads: 1 });
    for (const m of manifest.models) if (!m.missing) await setupModel(m);
    const failed = document.querySelectorAll('tr[data-state="error"]').length;
    setStatus('ready', failed ? `ready; ${failed} model file(s) could not be loaded (see below)` : 'ready: lowbit WebAssembly kernels, 1 thread, in this page');
  } catch (e) {
    setStatus('error', `the playground could not start: ${(e as Error).message.replace(/^lowbit: /, '')}`);
    throw e;
  }
}

void main();

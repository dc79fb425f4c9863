// A static file server for one folder (the playground build), safe to leave running on a laptop.
//
// - Only GET and HEAD, without a body (413 for a declared body, 405 for other methods): nothing is
//   uploaded, so nothing is read from a request but its line and headers.
// - Only files inside the folder: a request path is decoded exactly once, segment by segment, and refused
//   (403) if a segment is empty, "." or "..", hidden (".git"), or still holds "/", "\", ":", NUL or "%" after
//   decoding (an encoded separator or a double encoding); the resolved real path (symlinks followed) must lie
//   inside the folder's real path. Absolute-form request targets ("http://x/..") are refused (400).
// - While bound to a loopback address, the Host header must name the loopback too (a DNS-rebinding page on
//   another site cannot read the server through a name that resolves to 127.0.0.1).
// - Every response carries a restrictive Content-Security-Policy (scripts from the folder only, plus
//   'wasm-unsafe-eval' to compile the kernels; no inline script, no other origin), nosniff and a correct
//   Content-Type. COOP but no COEP: the page is not cross-origin isolated, like a page on any static server,
//   and runs the kernels on one thread (see README). Request headers are capped at 8 KiB (431 above).

import { createReadStream, realpathSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, isAbsolute, join, relative, sep } from 'node:path';

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self'",
  "img-src 'self' blob: data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.wasm': 'application/wasm',
  '.lowbit': 'application/octet-stream',
  '.bin': 'application/octet-stream',
  '.txt': 'text/plain; charset=utf-8',
};

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export type Resolved = { status: 200; file: string } | { status: 400 | 403 | 404; reason: string };

/**
 * The file a request target names inside `root` (a real path), or why not. Pure apart from reading the file
 * system's metadata; the unit tests call the server, this is its core.
 */
export function resolveRequestPath(root: string, target: string): Resolved {
  if (!target.startsWith('/')) return { status: 400, reason: 'the request target must be a path starting with /' };
  const path = target.split('?')[0].split('#')[0];
  if (path.includes('\\') || path.includes('\0')) return { status: 403, reason: 'backslashes and NUL are not allowed in paths' };
  const raw = path === '/' ? ['index.html'] : path.slice(1).split('/');
  const segments: string[] = [];
  for (const s of raw) {
    let name: string;
    try {
      name = decodeURIComponent(s);
    } catch {
      return { status: 400, reason: 'malformed percent-encoding' };
    }
    if (name === '' || name === '.' || name === '..' || name.startsWith('.') || /[/\\:\0%]/.test(name)) {
      return { status: 403, reason: 'the path leaves the served folder or names a hidden file' };
    }
    segments.push(name);
  }
  const file = join(root, ...segments);
  const rel = relative(root, file);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return { status: 403, reason: 'the path leaves the served folder' };
  let real: string;
  try {
    real = realpathSync(file);
    if (!statSync(real).isFile()) return { status: 404, reason: 'not a file' };
  } catch {
    return { status: 404, reason: 'no such file' };
  }
  if (!(real + sep).startsWith(root + sep) || real === root) return { status: 403, reason: 'the path leads outside the served folder' };
  return { status: 200, file: real };
}

function securityHeaders(res: ServerResponse): void {
  res.setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  res.setHeader('Cache-Control', 'no-cache');
}

function refuse(res: ServerResponse, status: number, message: string, extra: Record<string, string> = {}): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  for (const [k, v] of Object.entries(extra)) res.setHeader(k, v);
  res.end(`${status} ${message}\n`);
}

/** The request handler serving `folder`. */
export function staticHandler(folder: string, opts: { loopbackOnly?: boolean } = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const root = realpathSync(folder);
  return (req, res) => {
    securityHeaders(res);
    // We never read a body: close the connection after refusing one, so its bytes are not parsed as a request.
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      refuse(res, 405, 'only GET and HEAD', { Allow: 'GET, HEAD', Connection: 'close' });
      return;
    }
    if (hasBody) {
      refuse(res, 413, 'requests may not have a body', { Connection: 'close' });
      return;
    }
    if (opts.loopbackOnly) {
      const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      if (!isLoopback(host)) {
        refuse(res, 403, 'this server answers only to localhost / 127.0.0.1 (start it with --host to serve other names)');
        return;
      }
    }
    const r = resolveRequestPath(root, req.url ?? '');
    if (r.status !== 200) {
      const target = (req.url ?? '').split('?')[0];
      if (r.status === 404 && /^\/models\/[\w.-]+\.lowbit$/.test(target)) {
        refuse(res, 404, `model file ${target.slice(1)} is missing from the playground build; build it again (lowbit serve, or lowbit serve --build DIR)`);
      } else {
        refuse(res, r.status, r.status === 404 ? 'not found' : r.reason);
      }
      return;
    }
    const size = statSync(r.file).size;
    res.statusCode = 200;
    res.setHeader('Content-Type', CONTENT_TYPES[extname(r.file).toLowerCase()] ?? 'application/octet-stream');
    res.setHeader('Content-Length', size);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const stream = createReadStream(r.file);
    stream.on('error', () => res.destroy());
    stream.pipe(res);
  };
}

export interface RunningServer {
  server: Server;
  /** http://host:port/ */
  url: string;
  close(): Promise<void>;
}

/** Serve `folder` on host:port (port 0: an ephemeral port). Binds 127.0.0.1 unless told otherwise. */
export async function startStaticServer(folder: string, opts: { host?: string; port?: number } = {}): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = createServer({ maxHeaderSize: 8192 }, staticHandler(folder, { loopbackOnly: isLoopback(host) }));
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    server,
    url: `http://${shown}:${address.port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

// `lowbit serve`: build the playground (models quantized by lowbit, the browser bundle, the charts of the
// committed results) and serve it on 127.0.0.1, or with --build write it as a plain static folder.

import { join } from 'node:path';
import { cacheDir } from '../data/index.js';
import { LowbitError, UsageError } from '../errors.js';
import { buildPlayground } from './playground.js';
import { startStaticServer } from './static.js';

export interface ServeOptions {
  port: number;
  host?: string;
  build?: string;
  quick?: boolean;
}

/** Runs until SIGINT/SIGTERM (serving) or returns after writing the build. */
export async function runServe(o: ServeOptions, log: (s: string) => void, out: (s: string) => void): Promise<void> {
  if (o.build !== undefined && o.host !== undefined) throw new UsageError('--host is for serving; --build only writes the folder (serve it with any static server)');
  const folder = o.build ?? join(cacheDir(), 'playground', 'site');
  const manifest = await buildPlayground(folder, { quick: o.quick, log });
  for (const m of manifest.models) if (m.missing) log(`note: ${m.missing}`);
  if (o.build !== undefined) {
    out(`wrote the playground to ${folder}: open it through any static web server (browsers do not run WebAssembly modules from file:// pages)`);
    return;
  }
  const host = o.host ?? '127.0.0.1';
  let server: Awaited<ReturnType<typeof startStaticServer>>;
  try {
    server = await startStaticServer(folder, { host, port: o.port });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new LowbitError(`port ${o.port} on ${host} is in use; pick another with --port (0 = any free port)`);
    if (code === 'EACCES') throw new LowbitError(`no permission to listen on port ${o.port}; use a port above 1023`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new LowbitError(`--host ${host} is not an address of this machine`);
    throw e;
  }
  out(`lowbit playground: ${server.url} (Ctrl-C to stop)`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      void server.close().then(resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

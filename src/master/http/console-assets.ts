/**
 * Serves the web console (src/console, bundled into dist/console by scripts/bundle-console.mjs): `GET /` is its
 * page, `GET /console/NAME` its script and style sheet. The files are read once, when the master starts, and only
 * the names found then are served (no path from the URL ever reaches the file system).
 *
 * Nothing here needs a token: the page and its code hold no data. Everything the console shows it reads through
 * the API with the token the person signs in with, like the CLI. What the browser may do is pinned by a strict
 * Content-Security-Policy: scripts and styles from this origin only, calls to this origin only, no frames.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyPluginCallback, FastifyReply } from 'fastify';
import { HoxError } from '../../shared/errors.js';

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** The bundle's files: content-hashed names, served as immutable. */
const ASSET_NAME = /^console-[A-Za-z0-9]+\.(js|css)(\.map|\.LEGAL\.txt)?$/;

const SECURITY_HEADERS = {
  'content-security-policy': [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; '),
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
} as const;

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

export interface ConsoleAssets {
  index: Asset;
  files: ReadonlyMap<string, Asset>;
}

function asset(body: Buffer, type: string): Asset {
  return { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
}

/** The console's files in `dir`, or undefined when it holds no built console. */
export function readConsoleAssets(dir: string): ConsoleAssets | undefined {
  const indexFile = join(dir, 'index.html');
  if (!existsSync(indexFile)) return undefined;
  const files = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    if (!ASSET_NAME.test(name)) continue;
    const extension = name.slice(name.lastIndexOf('.'));
    files.set(name, asset(readFileSync(join(dir, name)), CONTENT_TYPES[extension] ?? 'application/octet-stream'));
  }
  return { index: asset(readFileSync(indexFile), 'text/html; charset=utf-8'), files };
}

function send(reply: FastifyReply, ifNoneMatch: string | undefined, file: Asset, cache: string): FastifyReply {
  void reply.headers(SECURITY_HEADERS).header('cache-control', cache).header('etag', file.etag);
  if (ifNoneMatch === file.etag) return reply.status(304).send();
  return reply.type(file.type).send(file.body);
}

/**
 * `GET /` and `GET /console/:name`. Without a built console, `/` says how to build one.
 * Not audited: reading the page changes nothing (what it then calls is audited as any call).
 */
export function consoleRoutes(assets: ConsoleAssets | undefined): FastifyPluginCallback {
  return (app, _options, done) => {
    app.get('/', { config: { audit: false } }, (request, reply) => {
      if (assets === undefined)
        throw new HoxError(
          'HOX_NOT_FOUND',
          'the web console is not built here: run npm run build (it writes dist/console)',
        );
      // The page names the current bundle: never kept, so a new master's console is what a reload shows.
      return send(reply, request.headers['if-none-match'], assets.index, 'no-cache');
    });
    app.get<{ Params: { name: string } }>('/console/:name', { config: { audit: false } }, (request, reply) => {
      const file = assets?.files.get(request.params.name);
      if (file === undefined) throw new HoxError('HOX_NOT_FOUND', `no console file '${request.params.name}'`);
      return send(reply, request.headers['if-none-match'], file, 'public, max-age=31536000, immutable');
    });
    done();
  };
}

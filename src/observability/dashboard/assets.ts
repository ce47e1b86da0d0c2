import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ClawmeshError } from '../../core/errors.ts';

/** One file of the page, read once at start. */
export interface PageFile {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** The page's files and their types: nothing else under the folder is ever served. */
export const PAGE_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

/** Its own scripts, styles and API only; no inline code, no framing. */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * Where the page is: `src/ui/dashboard/` beside this module's `src/` when run from the sources,
 * or in the package's `src/` when run from `dist/` (tsc copies no HTML, JS or CSS).
 */
export function dashboardAssetDir(): string {
  const candidates = [
    new URL('../../ui/dashboard/', import.meta.url),
    new URL('../../../../src/ui/dashboard/', import.meta.url),
  ].map((url) => fileURLToPath(url));
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!found) {
    throw new ClawmeshError('INTERNAL', `the dashboard page is missing (looked in ${candidates.join(', ')})`);
  }
  return found;
}

/** Reads the page's files from `dir`, keyed by file name. */
export function loadPageFiles(dir: string = dashboardAssetDir()): Map<string, PageFile> {
  const files = new Map<string, PageFile>();
  for (const [name, contentType] of Object.entries(PAGE_FILES)) {
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    files.set(name, { body, contentType, etag });
  }
  return files;
}

/** Sends a page file with its type, ETag (304 on a match) and, for HTML, the page's CSP. */
export function sendPageFile(request: FastifyRequest, reply: FastifyReply, file: PageFile): FastifyReply {
  reply
    .header('content-type', file.contentType)
    .header('cache-control', 'no-cache')
    .header('etag', file.etag)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
  if (file.contentType.startsWith('text/html')) reply.header('content-security-policy', PAGE_CSP);
  if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
  return reply.send(file.body);
}

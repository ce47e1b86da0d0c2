import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClawmeshError } from '../../../core/errors.ts';

/** One file of the page, read once at start. */
export interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

/** The page's files and their types: nothing else under the folder is ever served. */
const FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'connection.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};

/**
 * Where the page's files are: `src/ui/webchat/` beside this module's `src/` when run from the
 * sources, or in the package's `src/` when run from `dist/` (tsc copies no HTML, JS or CSS).
 */
export function webChatAssetDir(): string {
  const candidates = [
    new URL('../../../ui/webchat/', import.meta.url),
    new URL('../../../../../src/ui/webchat/', import.meta.url),
  ].map((url) => fileURLToPath(url));
  const found = candidates.find((dir) => existsSync(join(dir, 'index.html')));
  if (!found) {
    throw new ClawmeshError('INTERNAL', `the web chat page is missing (looked in ${candidates.join(', ')})`);
  }
  return found;
}

/** Reads the page's files from `dir`, keyed by file name. */
export function loadAssets(dir: string = webChatAssetDir()): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const [name, contentType] of Object.entries(FILES)) {
    const body = readFileSync(join(dir, name));
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    assets.set(name, { body, contentType, etag });
  }
  return assets;
}

/**
 * The page's Content-Security-Policy: its own scripts, styles and socket, nothing from
 * elsewhere, no inline code, no framing.
 */
export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

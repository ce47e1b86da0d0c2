import { ChannelSendError } from './types.ts';

/**
 * Reads a `Retry-After` header: delay-seconds (`"30"`, `"1.5"`) or an HTTP date. Returns
 * milliseconds, or `undefined` when absent or unreadable.
 */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Options of {@link sendJson}. */
export interface SendJsonOptions {
  method?: 'POST' | 'PATCH' | 'PUT';
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** What the request is, for error messages (`slack chat.postMessage`). */
  what: string;
}

/**
 * Sends a JSON request to a platform API and returns the parsed JSON answer. Any non-2xx
 * answer, or no answer, throws a {@link ChannelSendError}: a 429 carries `retryAfterMs` from
 * `Retry-After` (or a JSON `retry_after` in seconds, as Discord and Telegram send it).
 */
export async function sendJson(url: string, body: unknown, options: SendJsonOptions): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method ?? 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', ...options.headers },
      body: JSON.stringify(body),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (err) {
    throw new ChannelSendError(`${options.what}: no answer: ${(err as Error).message}`, { cause: err });
  }
  const text = await response.text().catch(() => '');
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (response.ok) return parsed;
  const retryAfterMs =
    parseRetryAfter(response.headers.get('retry-after')) ?? retryAfterOfBody(parsed) ?? undefined;
  throw new ChannelSendError(`${options.what}: HTTP ${response.status} ${text.slice(0, 200)}`.trim(), {
    status: response.status,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    platformCode: String(response.status),
  });
}

/** A JSON body's `retry_after` (seconds), top-level or under `parameters` (Telegram). */
function retryAfterOfBody(body: unknown): number | undefined {
  if (body === null || typeof body !== 'object') return undefined;
  const record = body as { retry_after?: unknown; parameters?: { retry_after?: unknown } };
  const seconds = record.retry_after ?? record.parameters?.retry_after;
  return typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0
    ? Math.ceil(seconds * 1000)
    : undefined;
}

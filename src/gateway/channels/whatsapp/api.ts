import { parseRetryAfter } from '../http.ts';
import { ChannelSendError } from '../types.ts';

/** The Graph API's default base URL (`WHATSAPP_API_ROOT`). */
export const WHATSAPP_API_ROOT = 'https://graph.facebook.com';
/** The Graph API version used when none is configured. */
export const WHATSAPP_API_VERSION = 'v21.0';
/** The longest body of one WhatsApp text message. */
export const WHATSAPP_TEXT_LIMIT = 4096;

/**
 * Graph error codes that mean "too many, wait" (app or account throttling, the number's
 * throughput, the per-recipient pair rate), with the wait to use when no `Retry-After` comes.
 */
const RATE_LIMIT_WAIT_MS: ReadonlyMap<number, number> = new Map([
  [4, 60_000],
  [80007, 60_000],
  [130429, 1_000],
  [131056, 6_000],
]);
/** Graph error codes of a passing fault on Meta's side, worth another try. */
const TRANSIENT_CODES: ReadonlySet<number> = new Set([1, 2, 131000, 131016]);

/** Sends text messages from one business number. */
export interface WhatsAppClient {
  /** `POST /{version}/{phone-number-id}/messages` with a text body; returns the new message id. */
  sendText(to: string, body: string, signal?: AbortSignal): Promise<string | undefined>;
}

/** Options of {@link createWhatsAppClient}. */
export interface WhatsAppClientOptions {
  accessToken: string;
  phoneNumberId: string;
  /** `https://graph.facebook.com` by default; a root that already ends in a version keeps it. */
  apiRoot?: string;
  /** `v21.0` by default. */
  apiVersion?: string;
}

/** The Graph node URL of a business phone number, for a root, a version and its id. */
export function whatsAppNumberUrl(options: Omit<WhatsAppClientOptions, 'accessToken'>): string {
  const root = (options.apiRoot ?? WHATSAPP_API_ROOT).replace(/\/+$/, '');
  const versioned = /\/v\d+(\.\d+)?$/.test(root)
    ? root
    : `${root}/${options.apiVersion ?? WHATSAPP_API_VERSION}`;
  return `${versioned}/${encodeURIComponent(options.phoneNumberId)}`;
}

/** The messages endpoint URL for a root, a version and a phone number id. */
export function whatsAppMessagesUrl(options: Omit<WhatsAppClientOptions, 'accessToken'>): string {
  return `${whatsAppNumberUrl(options)}/messages`;
}

/**
 * A Cloud API client. Failures throw `ChannelSendError`: Graph's throttling codes become
 * retryable 429s with a wait, a transient fault is retryable, other refusals are final.
 */
export function createWhatsAppClient(options: WhatsAppClientOptions): WhatsAppClient {
  const url = whatsAppMessagesUrl(options);
  return {
    async sendText(to, body, signal) {
      let response: Response;
      try {
        response = await fetch(url, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${options.accessToken}`,
            'content-type': 'application/json; charset=utf-8',
          },
          body: JSON.stringify({
            messaging_product: 'whatsapp',
            recipient_type: 'individual',
            to,
            type: 'text',
            text: { preview_url: false, body },
          }),
          ...(signal ? { signal } : {}),
        });
      } catch (err) {
        throw new ChannelSendError(`whatsapp send: no answer: ${(err as Error).message}`, { cause: err });
      }
      const text = await response.text().catch(() => '');
      const json = parseJson(text);
      if (response.ok) return messageIdOf(json);
      throw sendError(response, json, text);
    },
  };
}

function sendError(response: Response, json: unknown, text: string): ChannelSendError {
  const graph = graphErrorOf(json);
  const code = graph?.code;
  const message = `whatsapp send: HTTP ${response.status} ${graph?.message ?? text.slice(0, 200)}`.trim();
  const headerWait = parseRetryAfter(response.headers.get('retry-after'));
  const platformCode = code === undefined ? String(response.status) : String(code);
  const rateWait = code === undefined ? undefined : RATE_LIMIT_WAIT_MS.get(code);
  if (response.status === 429 || rateWait !== undefined) {
    const retryAfterMs = headerWait ?? rateWait;
    return new ChannelSendError(message, {
      status: 429,
      retryable: true,
      platformCode,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    });
  }
  const transient = code !== undefined && TRANSIENT_CODES.has(code);
  return new ChannelSendError(message, {
    status: response.status,
    platformCode,
    ...(transient ? { retryable: true } : {}),
    ...(headerWait !== undefined ? { retryAfterMs: headerWait } : {}),
  });
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

function graphErrorOf(json: unknown): { code?: number; message?: string } | undefined {
  if (json === null || typeof json !== 'object') return undefined;
  const error = (json as { error?: unknown }).error;
  if (error === null || typeof error !== 'object') return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  return {
    ...(typeof code === 'number'
      ? { code }
      : typeof code === 'string' && /^\d+$/.test(code)
        ? { code: Number(code) }
        : {}),
    ...(typeof message === 'string' ? { message } : {}),
  };
}

function messageIdOf(json: unknown): string | undefined {
  const messages = (json as { messages?: { id?: unknown }[] } | undefined)?.messages;
  const id = Array.isArray(messages) ? messages[0]?.id : undefined;
  return typeof id === 'string' ? id : undefined;
}

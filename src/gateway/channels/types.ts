/**
 * The internal channel interface. Every platform adapter (Telegram, Slack, Discord, WhatsApp)
 * maps its wire format onto these few types; the delivery pipeline (`delivery.ts`) does the
 * rest: dedupe, the durable inbox, access, routing, the turn, sending with retries.
 * See /work/notes/channels-api.md and docs/channels.md.
 */
import type { ChannelAccessConfig, ChannelsConfig } from '../../config/schema-channels.ts';
import { ClawmeshError, type ErrorCode } from '../../core/errors.ts';
import type { Logger } from '../../observability/logger.ts';

/** A JSON value: what a reply target may hold, since it is stored in the inbox. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Where a reply goes, as the adapter needs it to send (a chat id, a thread, an interaction
 * token …). It is stored in the inbox with the message, so it must be JSON-serializable.
 */
export type ReplyTarget = { [key: string]: JsonValue };

/** A platform message normalized for the pipeline. */
export interface ChannelMessage {
  /**
   * The platform's id of this delivery, unique per channel and account (Telegram `update_id`,
   * Slack `event_id`, WhatsApp message `id`, Discord interaction `id`): the dedupe key.
   */
  updateId: string;
  /** The channel name: `telegram`, `slack`, `discord`, `whatsapp`. */
  channel: string;
  /** Which bot, app or number received it (Telegram bot id, Slack team, Discord application, WhatsApp phone number id). */
  account: string;
  /** The chat, channel or conversation it was posted in. */
  chatId: string;
  /** The sender on the platform. */
  userId: string;
  /** The sender's display name, when the platform gives one. */
  userName?: string;
  /** The text, with a leading mention of the bot removed. */
  text: string;
  /** Whether it was posted in a group chat (not a direct message). */
  isGroup: boolean;
  /** Whether the bot was mentioned (or replied to, or addressed by a command). Always true in a DM. */
  mentioned: boolean;
  /** Where the reply goes. */
  replyTo: ReplyTarget;
  /** Epoch milliseconds the platform stamped on it, when it did. */
  sentAt?: number;
  /**
   * The platform waits for an answer (a deferred Discord interaction): when the pipeline would
   * drop the message without one (access refused, no reply), it sends a one-line notice instead.
   */
  mustAnswer?: boolean;
  /**
   * Answer with this text instead of running a turn (after access and rate limits), e.g. "I can
   * only read text messages" for a WhatsApp image.
   */
  fixedReply?: string;
}

/** The raw HTTP request a channel route receives: the body is the exact bytes, for signatures. */
export interface ChannelRequest {
  method: string;
  /** The path and query as received. */
  url: string;
  /** Headers, names lower-cased; a repeated header keeps its first value. */
  headers: Readonly<Record<string, string | undefined>>;
  /** The query string's parameters (first value of each). */
  query: Readonly<Record<string, string | undefined>>;
  /** The body exactly as received (empty for GET). */
  rawBody: Buffer;
}

/** An HTTP answer a route gives the platform. `body` is sent as JSON unless it is a string. */
export interface ChannelResponse {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/**
 * What a route made of a verified request:
 * - `respond`: answer now and do nothing else (a challenge, a PING, a status callback, an
 *   event that is not a message for the bot);
 * - `accept`: hand these messages to the pipeline, which records and durably accepts them, then
 *   answers `response` (default `200 {"ok":true}`). A duplicate gets the same answer.
 */
export type RouteOutcome =
  | { kind: 'respond'; response: ChannelResponse }
  | { kind: 'accept'; messages: ChannelMessage[]; response?: ChannelResponse };

/** One HTTP route of an adapter, mounted by the registry in a scope that keeps the raw body. */
export interface ChannelRoute {
  method: 'GET' | 'POST';
  /** The full path, e.g. `/channels/telegram/webhook`. */
  path: string;
  /**
   * Checks the request's authenticity on the raw bytes (signature, secret token, timestamp);
   * throws {@link ChannelAuthError} when it fails (the pipeline answers 401). Absent only for
   * routes that carry no secret-bearing data (WhatsApp's GET verification checks its token in
   * `handle`).
   */
  verify?(request: ChannelRequest): void;
  /** Parses a verified request; throws `INVALID_ARGUMENT` for a body it cannot read (400). */
  handle(request: ChannelRequest): RouteOutcome | Promise<RouteOutcome>;
}

/** Where an adapter that pulls updates (Telegram long polling) hands them to the pipeline. */
export interface ChannelSink {
  /**
   * Dedupes and durably accepts the messages; resolves once they are in the inbox (so a poller
   * may then confirm them to the platform), rejects when the inbox could not take them.
   */
  accept(messages: ChannelMessage[]): Promise<void>;
}

/** Given to {@link ChannelAdapter.start}. */
export interface ChannelStartContext {
  sink: ChannelSink;
  logger: Logger;
  /** Aborted when the channel stops. */
  signal: AbortSignal;
}

/** Which part of a reply a {@link ChannelAdapter.send} call carries. */
export interface SendPart {
  /** 0-based index of this part. */
  index: number;
  /** How many parts the reply was split into. */
  count: number;
}

/** The one internal interface every channel adapter implements. */
export interface ChannelAdapter {
  /** The channel name (`telegram`); also the first segment of dedupe keys and inbox ids. */
  readonly name: string;
  /** HTTP routes to mount (none for a polling-only adapter). */
  readonly routes: readonly ChannelRoute[];
  /** How long an update id is remembered: at least as long as the platform retries a delivery. */
  readonly dedupeTtlMs: number;
  /** The longest text one message may carry; the pipeline splits longer replies at boundaries. */
  readonly textLimit: number;
  /** How often to repeat {@link ChannelAdapter.typing} while a turn runs (default 4000 ms). */
  readonly typingIntervalMs?: number;
  /**
   * Sends one part of a reply. Throws {@link ChannelSendError} on failure (with `retryAfterMs`
   * for a 429, `retryable` false for a refusal that a retry cannot fix).
   */
  send(target: ReplyTarget, text: string, part: SendPart, signal: AbortSignal): Promise<void>;
  /** Shows a typing indicator (best effort: failures are logged at debug and ignored). */
  typing?(target: ReplyTarget, signal: AbortSignal): Promise<void>;
  /** Starts background work (long polling, `getMe`, registering a webhook). */
  start?(context: ChannelStartContext): Promise<void>;
  /** Stops background work; the pipeline has stopped taking messages by then. */
  stop?(): Promise<void>;
}

/** What a {@link ChannelDefinition} builds its adapter from. */
export interface ChannelFactoryDeps {
  /** The whole `channels` section (the adapter reads its own part). */
  config: ChannelsConfig;
  logger: Logger;
}

/**
 * A channel the registry (`index.ts`) knows: how to tell whether it is configured, and how to
 * build its adapter. `missing` lists the environment variables still to set (empty: the channel
 * is on); `clawmesh doctor` prints them.
 */
export interface ChannelDefinition {
  readonly name: string;
  /** The variables (named as in the environment) whose values are missing; empty when the channel is on. */
  missing(config: ChannelsConfig): string[];
  /** The channel's access settings (DM policy, allowlist, pairing, groups, rate limits). */
  access(config: ChannelsConfig): ChannelAccessConfig;
  /** Builds the adapter; called only when {@link ChannelDefinition.missing} is empty. */
  create(deps: ChannelFactoryDeps): ChannelAdapter | Promise<ChannelAdapter>;
}

/** A request whose signature, secret token or timestamp did not check out: 401. */
export class ChannelAuthError extends ClawmeshError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message, { retryable: false });
  }
}

/** Options of a {@link ChannelSendError}. */
export interface ChannelSendErrorOptions {
  /** The platform's HTTP status, when it answered. */
  status?: number;
  /** How long the platform asked to wait before trying again (a 429's `retry_after`/`Retry-After`). */
  retryAfterMs?: number;
  /** Whether a retry may succeed; by default: no answer, 429 and 5xx are retryable, other 4xx not. */
  retryable?: boolean;
  /** The platform's own error code or name (`ratelimited`, `channel_not_found`, `403`). */
  platformCode?: string;
  cause?: unknown;
}

/**
 * A reply that could not be sent. `retryAfterMs` carries a 429's wait; the pipeline honours it
 * (capped by its backoff ceiling) before the next attempt.
 */
export class ChannelSendError extends ClawmeshError {
  readonly status?: number;
  readonly retryAfterMs?: number;
  readonly platformCode?: string;

  constructor(message: string, options: ChannelSendErrorOptions = {}) {
    const status = options.status;
    const retryable =
      options.retryable ?? (status === undefined || status === 429 || status >= 500 || status === 408);
    super(codeOf(status), message, {
      retryable,
      cause: options.cause,
      details: {
        ...(status !== undefined ? { status } : {}),
        ...(options.retryAfterMs !== undefined ? { retryAfterMs: options.retryAfterMs } : {}),
        ...(options.platformCode !== undefined ? { platformCode: options.platformCode } : {}),
      },
    });
    if (status !== undefined) this.status = status;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
    if (options.platformCode !== undefined) this.platformCode = options.platformCode;
  }
}

function codeOf(status: number | undefined): ErrorCode {
  if (status === undefined || status >= 500) return 'UNAVAILABLE';
  if (status === 429) return 'RATE_LIMITED';
  if (status === 401) return 'UNAUTHENTICATED';
  if (status === 403) return 'PERMISSION_DENIED';
  if (status === 404) return 'NOT_FOUND';
  if (status === 408) return 'DEADLINE_EXCEEDED';
  return 'INVALID_ARGUMENT';
}

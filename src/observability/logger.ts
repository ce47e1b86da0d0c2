import { type DestinationStream, type Logger, type LoggerOptions as PinoOptions, pino } from 'pino';
import type { CallContext } from '../core/context.ts';

export type { Logger } from 'pino';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: string;
  /** The service or role name put on every line. */
  service?: string;
  /** This process's instance id, put on every line. */
  instance?: string;
  /** Where lines go; stdout when absent. */
  destination?: DestinationStream;
  /** Keep message texts (`text`, `content` fields) in the lines; they are redacted by default. */
  includeText?: boolean;
  /**
   * Secret values (API keys, tokens, passwords) that must never be written: any line holding one
   * has it replaced by `[redacted]`, whatever field or error message carries it.
   */
  secrets?: readonly string[];
}

/** What a redacted value reads as. */
export const REDACTED = '[redacted]';

/** Fields that hold credentials, wherever a line puts them (top level or one object down). */
const SECRET_FIELDS = [
  'authorization',
  'cookie',
  'apiKey',
  'apiKeys',
  'token',
  'accessToken',
  'botToken',
  'verifyToken',
  'secret',
  'secrets',
  'webhookSecret',
  'signingSecret',
  'appSecret',
  'password',
];
/** Fields that hold what users and agents wrote. */
const TEXT_FIELDS = ['text', 'content'];

function redactPaths(includeText: boolean): string[] {
  const fields = includeText ? SECRET_FIELDS : [...SECRET_FIELDS, ...TEXT_FIELDS];
  const paths = fields.flatMap((field) => [field, `*.${field}`]);
  paths.push('headers.authorization', '*.headers.authorization', 'req.headers.authorization');
  if (!includeText) paths.push('messages[*].content', '*.messages[*].content');
  return paths;
}

/**
 * A pino JSON logger; every line carries `service` and `instance`, and the lines of a call add
 * the ids of {@link callFields}. Credentials (authorization headers, keys, tokens, secrets,
 * passwords) are redacted by field name, message texts unless `includeText`, and every value of
 * `secrets` wherever it appears.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const base = {
    service: options.service ?? 'clawmesh',
    ...(options.instance ? { instance: options.instance } : {}),
  };
  const settings: PinoOptions = {
    level: options.level ?? 'info',
    base,
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths(options.includeText ?? false), censor: REDACTED },
  };
  const scrub = scrubber(options.secrets ?? []);
  if (scrub) settings.hooks = { streamWrite: scrub };
  return pino(settings, options.destination ?? stdoutDestination());
}

/**
 * Stdout, written synchronously. pino's default destination writes asynchronously and flushes
 * what is left when the process exits; with stdout's reader gone (a log shipper that died,
 * `clawmesh start | head`) that flush retries the broken pipe every 100 ms forever, and the
 * process never exits after SIGTERM. Written synchronously, the first line that meets the broken
 * pipe turns the logger off instead. A successful turn writes no line at `info`.
 */
function stdoutDestination(): DestinationStream {
  return pino.destination({ dest: 1, sync: true });
}

/** Shorter values are too likely to occur by chance to be replaced everywhere. */
const MIN_SECRET_LENGTH = 8;

/** Replaces each secret (as it reads inside a JSON string) in a written line. */
function scrubber(secrets: readonly string[]): ((line: string) => string) | undefined {
  const needles = [
    ...new Set(
      secrets
        .filter((secret) => secret.length >= MIN_SECRET_LENGTH)
        .map((secret) => JSON.stringify(secret).slice(1, -1)),
    ),
  ].sort((a, b) => b.length - a.length);
  if (needles.length === 0) return undefined;
  return (line) => {
    let out = line;
    for (const needle of needles) if (out.includes(needle)) out = out.replaceAll(needle, REDACTED);
    return out;
  };
}

/** The ids a log line of a call carries: request, trace, span and, once known, conversation. */
export interface CallLogFields {
  requestId: string;
  traceId: string;
  spanId: string;
  conversationId?: string;
}

/** The {@link CallLogFields} of a call context (its span is the one named by `traceparent`). */
export function callFields(ctx: CallContext): CallLogFields {
  const fields: CallLogFields = {
    requestId: ctx.requestId,
    traceId: ctx.traceparent.slice(3, 35),
    spanId: ctx.traceparent.slice(36, 52),
  };
  if (ctx.conversationId) fields.conversationId = ctx.conversationId;
  return fields;
}

/**
 * A child logger for the lines of one call. A pino child costs a serialization of its bindings:
 * make it where a line is about to be written, not for every call.
 */
export function callLogger(logger: Logger, ctx: CallContext, extra: Record<string, unknown> = {}): Logger {
  return logger.child({ ...callFields(ctx), ...extra });
}

/** Shorter strings are too likely to occur by chance in a message, and tell too little to matter. */
const MIN_QUOTED_LENGTH = 4;
/** How deep {@link withoutQuotedText} looks into arguments. */
const MAX_QUOTED_DEPTH = 8;

/** The end of V8's `JSON.parse` error quoting the text it could not read: `…, "how many r"... is not valid JSON`. */
const NOT_VALID_JSON = ' is not valid JSON';

/**
 * `message` with the text a `JSON.parse` error quotes replaced by `[redacted]`: from the first
 * `, "` (or `, ..."`) to the last `"` (or `"...`) before ` is not valid JSON`. Found with index
 * searches, in linear time: a regular expression spanning the quote backtracked quadratically on
 * a long message with many `, "` (160 KB took 2.3 s).
 */
function withoutJsonSnippet(message: string): string {
  const tail = message.lastIndexOf(NOT_VALID_JSON);
  if (tail < 0) return message;
  const head = message.search(/, (\.\.\.)?"/);
  if (head < 0 || head >= tail) return message;
  const quoted = message.slice(0, tail);
  if (!(quoted.endsWith('"') || quoted.endsWith('"...')) || tail - head < 4) return message;
  return `${message.slice(0, head)}, "${REDACTED}"${message.slice(tail)}`;
}

/**
 * `message` with every string value of `sources` (a tool call's arguments, the turn's text) that
 * it quotes replaced by `[redacted]`, as written or JSON-escaped, and the piece of text a JSON
 * parser's error quotes too: an error that repeats what the user wrote (`no item "…"`, a
 * validation message citing the value) keeps its code and words when `log.includeText` is off,
 * without the text.
 */
export function withoutQuotedText(message: string, ...sources: unknown[]): string {
  const needles = new Set<string>();
  const collect = (value: unknown, depth: number): void => {
    if (typeof value === 'string') {
      if (value.length < MIN_QUOTED_LENGTH) return;
      needles.add(value);
      const escaped = JSON.stringify(value).slice(1, -1);
      if (escaped !== value) needles.add(escaped);
    } else if (value !== null && typeof value === 'object' && depth < MAX_QUOTED_DEPTH) {
      for (const item of Array.isArray(value) ? value : Object.values(value)) collect(item, depth + 1);
    }
  };
  for (const source of sources) collect(source, 0);
  let out = message;
  // Longest first: a value that contains another is replaced whole.
  for (const needle of [...needles].sort((a, b) => b.length - a.length)) {
    if (out.includes(needle)) out = out.replaceAll(needle, REDACTED);
  }
  return withoutJsonSnippet(out);
}

/** A logger that writes nothing, for tests and embedded use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

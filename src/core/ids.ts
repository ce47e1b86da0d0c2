import { createHash, randomFillSync } from 'node:crypto';
import { trimOldest } from './bounded.ts';

// Random bytes are drawn 64 KiB at a time: one call into OpenSSL per 1,600 call contexts, not
// one per id. Each draw costs about 10 µs before its first byte, so a larger pool costs a sixth
// per byte what a 4 KiB one did (0.4 against 2.8 ns on the benchmark machine).
const pool = Buffer.alloc(65_536);
let poolOffset = pool.length;

/** The offset of `bytes` fresh random bytes in the pool, refilled first when too few are left. */
function take(bytes: number): number {
  if (poolOffset + bytes > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const at = poolOffset;
  poolOffset += bytes;
  return at;
}

/** The two ASCII hex digits of each byte value `b`, at `2b` and `2b + 1`. */
const HEX_DIGITS = new Uint8Array(512);
for (let b = 0; b < 256; b += 1) {
  const digits = b.toString(16).padStart(2, '0');
  HEX_DIGITS[2 * b] = digits.charCodeAt(0);
  HEX_DIGITS[2 * b + 1] = digits.charCodeAt(1);
}

// Ids are written here as ASCII, then read out as one flat string: `crypto.randomUUID()` joins
// twenty pieces into a tree of strings, and a template of `randomHex` results a few more. Ids
// are made on every call (a context, an event) and live as long as it; the trees cost the
// collector several times what the text does.
const UUID_TEMPLATE = 'xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx';
const uuidText = Buffer.from(UUID_TEMPLATE, 'latin1');
/** Where each of a UUID's 16 bytes goes in its text (around the dashes). */
const UUID_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
const TRACEPARENT_TEMPLATE = '00-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-xxxxxxxxxxxxxxxx-01';
const traceparentText = Buffer.from(TRACEPARENT_TEMPLATE, 'latin1');

/** A new random request or event id (UUID v4). */
export function newId(): string {
  writeId(uuidText, 0);
  return uuidText.toString('latin1', 0, UUID_TEMPLATE.length);
}

/** Writes a new UUID v4's text into `text` at `offset` (over {@link UUID_TEMPLATE}'s dashes). */
function writeId(text: Buffer, offset: number): void {
  const from = take(16);
  for (let i = 0; i < 16; i += 1) {
    const byte = pool[from + i] as number;
    const at = offset + (UUID_AT[i] as number);
    text[at] = HEX_DIGITS[2 * byte] as number;
    text[at + 1] = HEX_DIGITS[2 * byte + 1] as number;
  }
  text[offset + 14] = 0x34; // version 4
  text[offset + 19] = HEX_DIGITS[2 * (0x80 | ((pool[from + 8] as number) & 0x3f))] as number; // variant 10xx
}

/**
 * A new W3C `traceparent` starting a trace: `00-<trace id>-<span id>-01` (sampled), with a
 * random 16-byte trace id and 8-byte span id.
 */
export function newTraceparent(): string {
  writeTraceparent(traceparentText, 0);
  return traceparentText.toString('latin1', 0, TRACEPARENT_TEMPLATE.length);
}

/** Writes a new traceparent's ids into `text` at `offset` (over {@link TRACEPARENT_TEMPLATE}'s fixed parts). */
function writeTraceparent(text: Buffer, offset: number): void {
  const from = take(24);
  let at = offset + 3;
  for (let i = 0; i < 24; i += 1) {
    if (i === 16) at += 1; // the dash between the trace id and the span id
    const byte = pool[from + i] as number;
    text[at] = HEX_DIGITS[2 * byte] as number;
    text[at + 1] = HEX_DIGITS[2 * byte + 1] as number;
    at += 2;
  }
}

const PAIR_TEMPLATE = `${UUID_TEMPLATE} ${TRACEPARENT_TEMPLATE}`;
const pairText = Buffer.from(PAIR_TEMPLATE, 'latin1');
/** Where the traceparent starts in {@link newIdPair}'s text. */
export const PAIR_TRACEPARENT_AT = UUID_TEMPLATE.length + 1;

/**
 * A new request id and a new `traceparent` in one string, `<id> <traceparent>`: a new call
 * context needs both, and reading text out of a buffer costs more than writing it (one read
 * instead of two). Its `slice`s share its text.
 */
export function newIdPair(): string {
  writeId(pairText, 0);
  writeTraceparent(pairText, PAIR_TRACEPARENT_AT);
  return pairText.toString('latin1', 0, PAIR_TEMPLATE.length);
}

/** `bytes` random bytes (at most 256) as lowercase hex. */
export function randomHex(bytes: number): string {
  const from = take(bytes);
  // Span ids (8 bytes), made for every span: a third of the time of a call into the buffer's hex
  // encoder.
  if (bytes === 8) return hex8(from);
  return pool.toString('hex', from, from + bytes);
}

const hi = (byte: number): number => HEX_DIGITS[2 * byte]!;
const lo = (byte: number): number => HEX_DIGITS[2 * byte + 1]!;

/** The 8 pool bytes at `at` as 16 hex digits, in one flat string. */
function hex8(at: number): string {
  const p = pool;
  return String.fromCharCode(
    hi(p[at + 0]!),
    lo(p[at + 0]!),
    hi(p[at + 1]!),
    lo(p[at + 1]!),
    hi(p[at + 2]!),
    lo(p[at + 2]!),
    hi(p[at + 3]!),
    lo(p[at + 3]!),
    hi(p[at + 4]!),
    lo(p[at + 4]!),
    hi(p[at + 5]!),
    lo(p[at + 5]!),
    hi(p[at + 6]!),
    lo(p[at + 6]!),
    hi(p[at + 7]!),
    lo(p[at + 7]!),
  );
}

/** The shape of a session's conversation id (see {@link sessionConversationId}). */
const SESSION_CONVERSATION_ID = /^c_[0-9a-f]{24}$/;

/**
 * Whether an id has the shape of a session's derived conversation id. Such ids are reserved for
 * the sessions they derive from: anyone can compute a user's, so a client naming one that is not
 * its own must not be able to create it first and lock its owner out.
 */
export function isSessionConversationId(id: string): boolean {
  return SESSION_CONVERSATION_ID.test(id);
}

/** Session keys hashed lately: a user's next message skips the hash (bounded, oldest first out). */
const sessionIds = new Map<string, string>();
const SESSION_IDS_MAX = 10_000;

/**
 * The conversation id of a session key: the same agent, channel and peer always map to the
 * same conversation, so every process agrees on it without a lookup or a race on creation.
 */
export function sessionConversationId(agentId: string, channel: string, peer: string): string {
  const key = `${agentId}\u0000${channel}\u0000${peer}`;
  let id = sessionIds.get(key);
  if (id === undefined) {
    id = `c_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
    sessionIds.set(key, id);
    trimOldest(sessionIds, SESSION_IDS_MAX);
  }
  return id;
}

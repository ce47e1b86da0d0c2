/**
 * The web chat's WebSocket protocol (`GET /webchat/ws`): one JSON object per text frame.
 * Documented in docs/channels.md ("Web chat"); the browser side is src/ui/webchat/connection.js.
 */
import { z } from 'zod';
import { ClawmeshError, type ErrorCode } from '../../../core/errors.ts';
import { parseOrThrow } from '../../../core/validation.ts';

/** The protocol version `ready` announces; bumped on an incompatible change. */
export const PROTOCOL_VERSION = 1;

/** A browser's session id: a random secret kept in its localStorage. */
export const SessionIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{16,128}$/, 'must be 16-128 characters A-Z, a-z, 0-9, _ or -');

/** The client's id of one message, the dedupe key of its turn. */
export const ClientMessageIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-]{8,128}$/, 'must be 8-128 characters A-Z, a-z, 0-9, _ or -');

/** The first frame: who the browser is and the last stored message it has seen. */
export const HelloFrameSchema = z.object({
  type: z.literal('hello'),
  sessionId: SessionIdSchema,
  /** The highest `seq` the client holds; everything after it is replayed (0: the whole history). */
  lastSeq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(0),
  /** An API key, when the server requires one. */
  key: z.string().min(1).max(512).optional(),
});

/** A message typed by the user; resent unchanged after a reconnect until its reply arrives. */
export const MessageFrameSchema = z.object({
  type: z.literal('message'),
  clientMessageId: ClientMessageIdSchema,
  text: z
    .string()
    .min(1)
    .max(32_000)
    .refine((text) => text.trim().length > 0, 'must not be blank'),
});

/** An application-level heartbeat: the server answers `pong`. */
export const PingFrameSchema = z.object({ type: z.literal('ping') });

/** Every frame a client may send. */
export const ClientFrameSchema = z.discriminatedUnion('type', [
  HelloFrameSchema,
  MessageFrameSchema,
  PingFrameSchema,
]);
/** A parsed client frame. */
export type ClientFrame = z.infer<typeof ClientFrameSchema>;
/** A parsed `hello` frame. */
export type HelloFrame = z.infer<typeof HelloFrameSchema>;
/** A parsed `message` frame. */
export type MessageFrame = z.infer<typeof MessageFrameSchema>;

/** A tool call as a reply frame reports it. */
export interface ToolSummary {
  skill: string;
  tool: string;
  arguments: unknown;
  ok: boolean;
}

/** Sent once after `hello`, before the replay. */
export interface ReadyFrame {
  type: 'ready';
  protocol: typeof PROTOCOL_VERSION;
  conversationId: string;
  /** The highest `seq` stored for the conversation. */
  lastSeq: number;
  /** How many `user`/`reply` frames of the replay follow. */
  replayed: number;
  /** The replay starts later than asked: older messages are not sent. */
  truncated?: true;
  /** The server holds less than the client's `lastSeq` (history lost): drop the local copy. */
  reset?: true;
}

/** A user message: stored (with `seq`) or still running its turn (no `seq` yet). */
export interface UserFrame {
  type: 'user';
  seq?: number;
  /** Known while the server remembers the turn (always for live frames). */
  clientMessageId?: string;
  text: string;
}

/** A piece of the reply to `replyTo` as the model generates it; append it to the text so far. */
export interface DeltaFrame {
  type: 'delta';
  replyTo: string;
  text: string;
}

/** The final reply of a turn; its text replaces the streamed one. */
export interface ReplyFrame {
  type: 'reply';
  /** Position in the conversation; absent only when a plugin dropped the message before it was stored. */
  seq?: number;
  /** The `clientMessageId` answered, when the server knows it. */
  replyTo?: string;
  text: string;
  toolCalls: ToolSummary[];
  /** A plugin dropped the message or the reply. */
  dropped?: true;
}

/** The message was accepted (recorded for dedupe); its reply follows. */
export interface AckFrame {
  type: 'ack';
  clientMessageId: string;
  /** It had been received before: no second turn runs. */
  duplicate?: true;
}

/** A typed failure; with `replyTo` it is the failure of that message's turn. */
export interface ErrorFrame {
  type: 'error';
  code: ErrorCode;
  message: string;
  /** Whether sending the same message again may succeed. */
  retryable: boolean;
  replyTo?: string;
  /** For `RATE_LIMITED`: when to try again. */
  retryAfterSeconds?: number;
}

/** The answer to `ping`. */
export interface PongFrame {
  type: 'pong';
}

/** Every frame the server sends. */
export type ServerFrame =
  | ReadyFrame
  | UserFrame
  | DeltaFrame
  | ReplyFrame
  | AckFrame
  | ErrorFrame
  | PongFrame;

/** WebSocket close codes the server uses (4000-4999 are the application's). */
export const CLOSE_CODES = {
  /** The server is shutting down: reconnect later. */
  goingAway: 1001,
  /** Too many malformed frames. */
  policyViolation: 1008,
  /** The history could not be read: reconnect later. */
  internalError: 1011,
  /** The API key was missing or wrong: do not reconnect without a new key. */
  unauthenticated: 4401,
  /** The web chat is disabled for this user. */
  forbidden: 4403,
  /** No `hello` in time. */
  helloTimeout: 4408,
} as const;

/** Parses one text frame; throws `INVALID_ARGUMENT` naming what is wrong. */
export function parseClientFrame(data: string): ClientFrame {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new ClawmeshError('INVALID_ARGUMENT', 'the frame is not JSON');
  }
  return parseOrThrow(ClientFrameSchema, value, 'invalid frame');
}

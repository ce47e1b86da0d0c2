import type { CallContext } from '../core/context.ts';
import { newId } from '../core/ids.ts';
import type { BusEvent } from './types.ts';

/** The event topics Clawmesh publishes, with the shape of each one's data (version 1). */
export interface EventTopics {
  'message.received': {
    conversationId: string;
    agentId: string;
    channel: string;
    userId: string;
    text: string;
    messageId?: string;
  };
  'response.generated': {
    conversationId: string;
    agentId: string;
    channel: string;
    userId: string;
    text: string;
    toolCalls: number;
    steps: number;
    durationMs: number;
    model?: string;
  };
  'skill.invoked': {
    conversationId: string;
    skill: string;
    tool: string;
    ok: boolean;
    durationMs: number;
    error?: string;
  };
  'model.completed': {
    conversationId?: string;
    model: string;
    inputTokens: number;
    outputTokens: number;
    latencyMs: number;
    cached: boolean;
    fallbackUsed: boolean;
    /** The tier the request was routed to, when it was. */
    tier?: string;
    /** How the model was chosen (`exact`, `tier`, `rule`, `difficulty`, `default`) and why. */
    route?: { by: string; reason: string; difficulty?: number };
    /** The deployment that answered. */
    deployment?: string;
    /** Provider calls made, retries and fallbacks included. */
    attempts?: number;
    /** Cost in US dollars, when the model's price is known. */
    costUsd?: number;
    agentId?: string;
    userId?: string;
    /** Where the call came from: `conversation` (an agent's turn) or `api` (the OpenAI-compatible API). */
    source?: 'conversation' | 'api';
    /**
     * Set when the tokens are the gateway's estimate, not the provider's count: a stream that
     * ended without its answer after text was sent (the caller left, the deadline passed, the
     * upstream broke off), charged for its prompt and the text streamed.
     */
    estimated?: true;
  };
}

/** A topic name. */
export type Topic = keyof EventTopics;

let lastMs = -1;
let lastIso = '';

/** Now as an ISO 8601 string, formatted once per millisecond: a turn publishes several events. */
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

/** Builds a version-1 event with a fresh id, carrying the context's trace. */
export function createEvent<T extends Topic>(
  type: T,
  data: EventTopics[T],
  ctx?: CallContext,
): BusEvent<EventTopics[T]> {
  const event: BusEvent<EventTopics[T]> = {
    id: newId(),
    type,
    version: 1,
    time: isoNow(),
    data,
  };
  if (ctx) event.traceparent = ctx.traceparent;
  return event;
}

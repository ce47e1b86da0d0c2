import type { BusEvent } from './types.ts';

/**
 * The fields of a log line about one event: its topic and id, and the turn it came from (the
 * trace of its `traceparent`, its `conversationId`), so a consumer that failed can be traced
 * back to the message that caused the event.
 */
export function eventLogFields(event: BusEvent): Record<string, string> {
  const fields: Record<string, string> = { topic: event.type, eventId: event.id };
  const traceparent = event.traceparent;
  if (typeof traceparent === 'string' && traceparent.length >= 55) fields.traceId = traceparent.slice(3, 35);
  const data = event.data as { conversationId?: unknown } | null | undefined;
  if (typeof data?.conversationId === 'string') fields.conversationId = data.conversationId;
  return fields;
}

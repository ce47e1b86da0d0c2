/** An event on the bus: versioned, with an id consumers dedupe by. */
export interface BusEvent<T = unknown> {
  /** Unique id; consumers dedupe by it (delivery is at least once). */
  id: string;
  /** The topic, such as `message.received`. */
  type: string;
  /** The schema version of `data`. */
  version: number;
  /** ISO-8601 time of publication. */
  time: string;
  /** W3C trace context of the turn that caused it. */
  traceparent?: string;
  data: T;
}

/** A consumer: resolve to ack; throw to have the event redelivered (then dead-lettered). */
export type EventHandler = (event: BusEvent) => Promise<void> | void;

/** A subscription; `close` stops it. */
export interface Subscription {
  close(): Promise<void>;
}

/**
 * The bus port. Delivery is at least once; within a group each event goes to one member;
 * an event that fails `maxAttempts` times goes to `<topic>.dead-letter`.
 * Publishing never blocks or fails a turn.
 */
export interface Bus {
  readonly kind: string;
  /** Publishes an event; resolves once the bus accepted it. */
  publish(event: BusEvent): Promise<void>;
  /** Subscribes a handler to a topic (`*` for every topic) within a consumer group. */
  subscribe(topic: string, group: string, handler: EventHandler): Promise<Subscription>;
  /** Resolves when every accepted event was handled or dead-lettered (for shutdown and tests). */
  drain(): Promise<void>;
  close(): Promise<void>;
}

import { createRecentKeys, type RecentKeys } from '../core/bounded.ts';
import { createInFlight } from '../core/in-flight.ts';
import type { Logger } from '../observability/logger.ts';
import { eventLogFields } from './log-fields.ts';
import type { Bus, BusEvent, EventHandler, Subscription } from './types.ts';

/** Options of the in-process bus. */
export interface MemoryBusOptions {
  /** Tries before an event goes to `<topic>.dead-letter` (default 3). */
  maxAttempts?: number;
  /** Delay before a retry, in milliseconds, doubled each time (default 10). */
  retryDelayMs?: number;
  /** Event ids the bus remembers to drop duplicates (default 10,000). */
  dedupeWindow?: number;
  logger?: Logger;
}

type Member = { handler: EventHandler };
type Group = { topic: string; name: string; members: Member[]; next: number };

/** The suffix of the topic an event goes to after `maxAttempts` failures. */
export const DEAD_LETTER_SUFFIX = '.dead-letter';

/**
 * The in-process bus, the monolith's default. Delivery happens after `publish` returns (on a
 * later tick), so no consumer can slow a turn. Each group gets every event once, handled by
 * one of its members in turn; a failing handler is retried, then the event is dead-lettered.
 */
export function createMemoryBus(options: MemoryBusOptions = {}): Bus {
  const maxAttempts = options.maxAttempts ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 10;
  const dedupeWindow = options.dedupeWindow ?? 10_000;
  const groups = new Map<string, Group>();
  // Duplicates are dropped at publish, as the Redis Streams bus does: one lookup per event
  // instead of one per group. Dead letters (same id, one per failing group) have their own.
  const published: RecentKeys = createRecentKeys(dedupeWindow);
  const deadLettered: RecentKeys = createRecentKeys(dedupeWindow);
  const inFlight = createInFlight();
  const settle = () => inFlight.leave();

  // Delivery is written with callbacks, not async/await: it runs for every event of every turn.
  const attempt = (group: Group, event: BusEvent, tries: number): void => {
    // Closed members leave `members` at once, so every member here is live.
    const { members } = group;
    if (members.length === 0) {
      settle();
      return;
    }
    const member = members[group.next++ % members.length]!;
    let result: Promise<void> | void;
    try {
      result = member.handler(event);
    } catch (err) {
      failed(group, event, tries, err);
      return;
    }
    if (result && typeof result.then === 'function')
      result.then(settle, (err: unknown) => failed(group, event, tries, err));
    else settle();
  };

  const failed = (group: Group, event: BusEvent, tries: number, err: unknown): void => {
    options.logger?.warn(
      { ...eventLogFields(event), err, group: group.name, attempt: tries },
      'event handler failed',
    );
    if (tries < maxAttempts) {
      setTimeout(attempt, retryDelayMs * 2 ** (tries - 1), group, event, tries + 1);
      return;
    }
    if (!event.type.endsWith(DEAD_LETTER_SUFFIX)) {
      dispatch({ ...event, type: `${event.type}${DEAD_LETTER_SUFFIX}` });
      options.logger?.warn({ ...eventLogFields(event), group: group.name }, 'event dead-lettered');
    } else {
      options.logger?.error({ ...eventLogFields(event), group: group.name }, 'dropping a failed dead letter');
    }
    settle();
  };

  // Deliveries wait in one queue, drained on the next turn of the event loop: publishing costs
  // a push, and every event published in one tick is handed out together.
  let ready: Array<{ group: Group; event: BusEvent }> = [];
  const deliverReady = () => {
    const batch = ready;
    ready = [];
    for (const { group, event } of batch) attempt(group, event, 1);
  };

  const dispatch = (event: BusEvent): void => {
    const deadLetter = event.type.endsWith(DEAD_LETTER_SUFFIX);
    if (!(deadLetter ? deadLettered : published).add(event.id)) return;
    for (const group of groups.values()) {
      if (group.topic !== event.type && !(group.topic === '*' && !deadLetter)) continue;
      inFlight.enter();
      if (ready.length === 0) setImmediate(deliverReady);
      ready.push({ group, event });
    }
  };

  return {
    kind: 'memory',
    async publish(event) {
      dispatch(event);
    },
    async subscribe(topic, groupName, handler): Promise<Subscription> {
      const key = `${topic}\u0000${groupName}`;
      let group = groups.get(key);
      if (!group) {
        group = { topic, name: groupName, members: [], next: 0 };
        groups.set(key, group);
      }
      const member: Member = { handler };
      group.members.push(member);
      const owner = group;
      return {
        async close() {
          owner.members = owner.members.filter((m) => m !== member);
        },
      };
    },
    drain() {
      return inFlight.idle();
    },
    async close() {
      await this.drain();
      groups.clear();
    },
  };
}

import { describe, expect, it } from 'vitest';
import type { Logger } from '../observability/logger.ts';
import { describeBus, waitFor } from './conformance.ts';
import { createEvent } from './events.ts';
import { createMemoryBus, DEAD_LETTER_SUFFIX } from './memory.ts';
import type { BusEvent } from './types.ts';

describeBus('memory', () => createMemoryBus({ retryDelayMs: 1 }));

const received = (data: Partial<{ text: string }> = {}) =>
  createEvent('message.received', {
    conversationId: 'c1',
    agentId: 'default',
    channel: 'web',
    userId: 'u1',
    text: 'hi',
    ...data,
  });

const raw = (type: string, id = `${type}-id`): BusEvent => ({
  id,
  type,
  version: 1,
  time: new Date().toISOString(),
  data: {},
});

describe('memory bus', () => {
  it('gives a * subscription every topic except dead-letter ones', async () => {
    const bus = createMemoryBus({ retryDelayMs: 1 });
    const all: string[] = [];
    await bus.subscribe('*', 'everything', (e) => {
      all.push(e.type);
    });
    await bus.subscribe('skill.invoked', 'failing', () => {
      throw new Error('always');
    });
    await bus.publish(received());
    await bus.publish(raw('skill.invoked'));
    await bus.publish(raw(`message.received${DEAD_LETTER_SUFFIX}`));
    await bus.drain();
    expect(all).toEqual(['message.received', 'skill.invoked']);
    await bus.close();
  });

  it('delivers after publish returns, never inside it', async () => {
    const bus = createMemoryBus();
    let handled = 0;
    await bus.subscribe('message.received', 'g', () => {
      handled += 1;
    });
    await bus.publish(received());
    expect(handled).toBe(0);
    await bus.drain();
    expect(handled).toBe(1);
  });

  it('hands the events of a group to its members in turn', async () => {
    const bus = createMemoryBus();
    const first: string[] = [];
    const second: string[] = [];
    await bus.subscribe('message.received', 'g', (e) => {
      first.push(e.id);
    });
    await bus.subscribe('message.received', 'g', (e) => {
      second.push(e.id);
    });
    const sent = Array.from({ length: 6 }, () => received());
    for (const e of sent) await bus.publish(e);
    await bus.drain();
    expect(first).toEqual([sent[0]!.id, sent[2]!.id, sent[4]!.id]);
    expect(second).toEqual([sent[1]!.id, sent[3]!.id, sent[5]!.id]);
  });

  it('tries a failing event maxAttempts times, with doubling delays, before dead-lettering it', async () => {
    const bus = createMemoryBus({ maxAttempts: 4, retryDelayMs: 5 });
    const attempts: number[] = [];
    const dead: BusEvent[] = [];
    await bus.subscribe('skill.invoked', 'g', () => {
      attempts.push(performance.now());
      throw new Error('always');
    });
    await bus.subscribe(`skill.invoked${DEAD_LETTER_SUFFIX}`, 'dlq', (e) => {
      dead.push(e);
    });
    await bus.publish(raw('skill.invoked', 'poison'));
    await bus.drain();
    expect(attempts).toHaveLength(4);
    const gaps = attempts.slice(1).map((at, i) => at - attempts[i]!);
    // setTimeout may fire up to a millisecond early by performance.now().
    expect(gaps[0]).toBeGreaterThanOrEqual(4);
    expect(gaps[1]).toBeGreaterThanOrEqual(9);
    expect(gaps[2]).toBeGreaterThanOrEqual(19);
    expect(dead.map((e) => e.id)).toEqual(['poison']);
  });

  it('logs each dead letter, as the durable buses do', async () => {
    const warned: Array<{ fields: Record<string, unknown>; message: string }> = [];
    const logger = {
      warn: (fields: Record<string, unknown>, message: string) => warned.push({ fields, message }),
    } as unknown as Logger;
    const bus = createMemoryBus({ maxAttempts: 2, retryDelayMs: 1, logger });
    await bus.subscribe('skill.invoked', 'billing', () => {
      throw new Error('always');
    });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await bus.publish({
      ...raw('skill.invoked', 'poison'),
      traceparent: `00-${traceId}-00f067aa0ba902b7-01`,
      data: { conversationId: 'c_1' },
    });
    await bus.drain();
    // The turn the event came from is named, so the failure can be traced back to its message.
    const ids = { topic: 'skill.invoked', eventId: 'poison', traceId, conversationId: 'c_1' };
    expect(warned.filter((w) => w.message === 'event dead-lettered')).toEqual([
      { fields: { ...ids, group: 'billing' }, message: 'event dead-lettered' },
    ]);
    expect(warned.filter((w) => w.message === 'event handler failed')[0]?.fields).toMatchObject(ids);
  });

  it('does not dead-letter an event that fails on its dead-letter topic', async () => {
    const bus = createMemoryBus({ retryDelayMs: 1 });
    const seen: string[] = [];
    const deadTopic = `skill.invoked${DEAD_LETTER_SUFFIX}`;
    await bus.subscribe('skill.invoked', 'g', () => {
      throw new Error('always');
    });
    await bus.subscribe(deadTopic, 'dlq', (e) => {
      seen.push(e.type);
      throw new Error('dead-letter consumer fails too');
    });
    await bus.subscribe(`${deadTopic}${DEAD_LETTER_SUFFIX}`, 'dlq2', (e) => {
      seen.push(e.type);
    });
    await bus.publish(raw('skill.invoked'));
    await bus.drain();
    expect(seen).toEqual([deadTopic, deadTopic, deadTopic]);
  });

  it('forgets ids once dedupeWindow newer ones came twice over', async () => {
    const bus = createMemoryBus({ dedupeWindow: 2 });
    const ids: string[] = [];
    await bus.subscribe('t', 'g', (e) => {
      ids.push(e.id);
    });
    for (const id of ['a', 'b', 'a', 'c', 'a', 'd', 'e', 'a']) await bus.publish(raw('t', id));
    await bus.drain();
    // The newest 2 ids are always held; 'a' is forgotten once two newer generations of 2 came.
    expect(ids).toEqual(['a', 'b', 'c', 'd', 'e', 'a']);
  });

  it('drops events for a group whose members all closed and still drains', async () => {
    const bus = createMemoryBus();
    let handled = 0;
    const subscription = await bus.subscribe('t', 'g', () => {
      handled += 1;
    });
    await bus.publish(raw('t'));
    await subscription.close();
    await bus.drain();
    expect(handled).toBe(0);
  });

  it('keeps events published in one tick in order for one member', async () => {
    const bus = createMemoryBus();
    const order: number[] = [];
    await bus.subscribe('t', 'g', (e) => {
      order.push((e.data as { n: number }).n);
    });
    await Promise.all(
      Array.from({ length: 20 }, (_, n) => bus.publish({ ...raw('t', `id-${n}`), data: { n } })),
    );
    await waitFor(() => order.length === 20, 1000, 'all events');
    expect(order).toEqual(Array.from({ length: 20 }, (_, n) => n));
  });

  it('closes after draining what is in flight', async () => {
    const bus = createMemoryBus();
    let finished = 0;
    await bus.subscribe('t', 'g', async () => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      finished += 1;
    });
    await bus.publish(raw('t'));
    await bus.close();
    expect(finished).toBe(1);
    await bus.publish(raw('t', 'after-close'));
    await bus.drain();
    expect(finished).toBe(1);
  });
});

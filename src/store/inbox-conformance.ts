import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InboxStore } from './inbox-types.ts';

type Make = () => Promise<InboxStore> | InboxStore;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Registers the inbox store conformance suite. `make` is called before each test and the
 * store it returns is closed after it. Ids and channel names are unique per test, so adapters
 * whose tests share one database can run it as it is.
 *
 * @example
 * describeInboxStore('memory', () => createMemoryInboxStore());
 */
export function describeInboxStore(name: string, make: Make): void {
  describe(`InboxStore conformance: ${name}`, () => {
    let inbox: InboxStore;
    let channel: string;
    beforeEach(async () => {
      inbox = await make();
      channel = `ch-${randomUUID().slice(0, 8)}`;
    });
    afterEach(async () => {
      await inbox.close();
    });
    const newId = () => `${channel}:acct:${randomUUID()}`;
    const message = { text: 'hello', chatId: 42, nested: { ok: true, list: [1, 'two', null] } };

    it('adds an entry once as pending and keeps the first message', async () => {
      const id = newId();
      const before = Date.now();
      expect(await inbox.add({ id, channel, message })).toBe(true);
      expect(await inbox.add({ id, channel, message: { text: 'other' } })).toBe(false);
      const entry = await inbox.get(id);
      expect(entry).toMatchObject({ id, channel, message, status: 'pending', partsSent: 0, attempts: 0 });
      expect(entry?.reply).toBeUndefined();
      expect(entry?.error).toBeUndefined();
      expect(entry!.createdAt).toBeGreaterThanOrEqual(before);
      expect(entry!.updatedAt).toBe(entry!.createdAt);
    });

    it('answers undefined for an unknown id and NOT_FOUND to updates of one', async () => {
      const id = newId();
      expect(await inbox.get(id)).toBeUndefined();
      await expect(inbox.setReply(id, { parts: ['x'] })).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(inbox.progress(id, { partsSent: 1, attempts: 1 })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      await expect(inbox.finish(id, 'replied')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(inbox.fail(id, 'boom')).rejects.toMatchObject({ code: 'NOT_FOUND' });
      await expect(inbox.retry(id)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    });

    it('walks an entry through sending to done, keeping the reply and progress', async () => {
      const id = newId();
      await inbox.add({ id, channel, message });
      await inbox.setReply(id, { parts: ['part one', 'part two'], agentId: 'a1', conversationId: 'c_1' });
      expect(await inbox.get(id)).toMatchObject({
        status: 'sending',
        partsSent: 0,
        reply: { parts: ['part one', 'part two'], agentId: 'a1', conversationId: 'c_1' },
      });
      await inbox.progress(id, { partsSent: 1, attempts: 2, error: 'HTTP 502' });
      expect(await inbox.get(id)).toMatchObject({
        status: 'sending',
        partsSent: 1,
        attempts: 2,
        error: 'HTTP 502',
      });
      await inbox.progress(id, { partsSent: 2, attempts: 3 });
      expect((await inbox.get(id))?.error).toBeUndefined();
      await inbox.finish(id, 'replied');
      const done = await inbox.get(id);
      expect(done).toMatchObject({ status: 'done', outcome: 'replied', partsSent: 2, attempts: 3 });
      expect(done!.updatedAt).toBeGreaterThanOrEqual(done!.createdAt);
    });

    it('records a failure with its error and lists it by status', async () => {
      const failed = newId();
      const ok = newId();
      await inbox.add({ id: failed, channel, message });
      await inbox.add({ id: ok, channel, message });
      await inbox.setReply(failed, { parts: ['hi'] });
      await inbox.fail(failed, 'chat.postMessage: channel_not_found');
      await inbox.finish(ok, 'no-reply');
      const list = await inbox.list({ status: 'failed', channel });
      expect(list.map((entry) => entry.id)).toEqual([failed]);
      expect(list[0]).toMatchObject({ status: 'failed', error: 'chat.postMessage: channel_not_found' });
      expect((await inbox.list({ status: 'done', channel })).map((entry) => entry.id)).toEqual([ok]);
    });

    it('lists newest first, within the limit, filtered by channel', async () => {
      const ids = [newId(), newId(), newId()];
      for (const id of ids) await inbox.add({ id, channel, message });
      const otherChannel = `${channel}-other`;
      await inbox.add({ id: `${otherChannel}:x:${randomUUID()}`, channel: otherChannel, message });
      expect((await inbox.list({ channel })).map((entry) => entry.id)).toEqual([...ids].reverse());
      expect((await inbox.list({ channel, limit: 2 })).map((entry) => entry.id)).toEqual([ids[2], ids[1]]);
      await expect(inbox.list({ limit: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    });

    it('hands back pending and sending entries oldest first as unfinished work', async () => {
      const [pending, sending, done, failed] = [newId(), newId(), newId(), newId()];
      for (const id of [pending, sending, done, failed]) await inbox.add({ id, channel, message });
      await inbox.setReply(sending, { parts: ['reply'] });
      await inbox.finish(done, 'replied');
      await inbox.fail(failed, 'gone');
      const mine = (await inbox.unfinished()).filter((entry) => entry.channel === channel);
      expect(mine.map((entry) => [entry.id, entry.status])).toEqual([
        [pending, 'pending'],
        [sending, 'sending'],
      ]);
    });

    it('moves a failed entry back to sending (or pending) on retry, and nothing else', async () => {
      const withReply = newId();
      const withoutReply = newId();
      const pending = newId();
      for (const id of [withReply, withoutReply, pending]) await inbox.add({ id, channel, message });
      await inbox.setReply(withReply, { parts: ['r'] });
      await inbox.progress(withReply, { partsSent: 0, attempts: 6, error: 'HTTP 500' });
      await inbox.fail(withReply, 'HTTP 500');
      await inbox.fail(withoutReply, 'turn failed');
      expect(await inbox.retry(withReply)).toBe(true);
      expect(await inbox.get(withReply)).toMatchObject({ status: 'sending', attempts: 0 });
      expect(await inbox.retry(withoutReply)).toBe(true);
      expect((await inbox.get(withoutReply))?.status).toBe('pending');
      expect(await inbox.retry(pending)).toBe(false);
    });

    it('prunes done entries older than a time, never unfinished or failed ones', async () => {
      const [done, pending, failed] = [newId(), newId(), newId()];
      for (const id of [done, pending, failed]) await inbox.add({ id, channel, message });
      await inbox.finish(done, 'replied');
      await inbox.fail(failed, 'x');
      await sleep(5);
      const removed = await inbox.prune(Date.now());
      expect(removed).toBeGreaterThanOrEqual(1);
      expect(await inbox.get(done)).toBeUndefined();
      expect(await inbox.get(pending)).toBeDefined();
      expect(await inbox.get(failed)).toBeDefined();
    });

    it('returns copies that callers cannot use to change stored entries', async () => {
      const id = newId();
      await inbox.add({ id, channel, message: { text: 'original' } });
      const entry = await inbox.get(id);
      (entry!.message as { text: string }).text = 'changed';
      expect(((await inbox.get(id))!.message as { text: string }).text).toBe('original');
    });

    it('rejects a message that is not JSON-serializable with INVALID_ARGUMENT', async () => {
      const id = newId();
      const cyclic: Record<string, unknown> = {};
      cyclic.self = cyclic;
      await expect(inbox.add({ id, channel, message: cyclic })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
      expect(await inbox.get(id)).toBeUndefined();
    });

    it('answers ping while open and UNAVAILABLE after close', async () => {
      await expect(inbox.ping()).resolves.toBeUndefined();
      await inbox.close();
      await expect(inbox.ping()).rejects.toMatchObject({ code: 'UNAVAILABLE' });
      await expect(inbox.add({ id: newId(), channel, message })).rejects.toMatchObject({
        code: 'UNAVAILABLE',
      });
    });
  });
}

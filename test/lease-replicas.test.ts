import { randomUUID } from 'node:crypto';
import { createClient, type RedisClientType } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventPublisher } from '../src/bus/publisher.ts';
import { AgentConfigSchema } from '../src/config/schema.ts';
import { type ConversationService, createConversationService } from '../src/conversation/service.ts';
import { type CallContext, createCallContext } from '../src/core/context.ts';
import type { Client } from '../src/core/contract.ts';
import type { ModelRequest, ModelResponse, modelsContract } from '../src/core/contracts/models.ts';
import type { skillsContract } from '../src/core/contracts/skills.ts';
import { createLogger, silentLogger } from '../src/observability/logger.ts';
import { createHookRunner } from '../src/plugins/hooks.ts';
import { createRedisTurnLease } from '../src/store/lease-redis.ts';
import type { TurnLease } from '../src/store/lease-types.ts';
import { createMemoryDedupeStore } from '../src/store/memory.ts';
import { createRedisConversationStore } from '../src/store/redis-conversations.ts';
import { createRedisDedupeStore } from '../src/store/redis-dedupe.ts';
import type { ConversationStore } from '../src/store/types.ts';

/*
 * Two conversation replicas, as two processes would run them: each its own Redis client,
 * conversation store, turn lease and service, sharing one Redis. A model that takes a while
 * records when each call ran, on which replica, and what history it was shown.
 */

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `clawmesh-test-${randomUUID()}:`;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface ModelCall {
  replica: number;
  conversationId: string;
  /** The user messages the model was shown, oldest first (the new one last). */
  users: string[];
  /** The assistant messages it was shown. */
  assistants: string[];
  start: number;
  end: number;
}

interface Replica {
  client: RedisClientType;
  store: ConversationStore;
  lease: TurnLease;
  service: ConversationService;
}

const calls: ModelCall[] = [];
/** Per conversation, a promise the model waits for before answering (to hold a turn open). */
const gates = new Map<string, Promise<void>>();

function slowModel(replica: number, ms: number): Client<typeof modelsContract> {
  const complete = async (request: ModelRequest, ctx: CallContext): Promise<ModelResponse> => {
    const call: ModelCall = {
      replica,
      conversationId: ctx.conversationId ?? '',
      users: request.messages.filter((m) => m.role === 'user').map((m) => m.content),
      assistants: request.messages.filter((m) => m.role === 'assistant').map((m) => m.content),
      start: performance.now(),
      end: Number.POSITIVE_INFINITY,
    };
    calls.push(call);
    await sleep(ms);
    await gates.get(call.conversationId);
    call.end = performance.now();
    return {
      content: `reply to ${call.users.at(-1)}`,
      toolCalls: [],
      finishReason: 'stop',
      usage: { inputTokens: 1, outputTokens: 1 },
      model: 'test/slow',
      latencyMs: ms,
    };
  };
  return {
    complete,
    list: async () => ({ default: 'test/slow', models: ['test/slow'] }),
  } as unknown as Client<typeof modelsContract>;
}

const noSkills = { list: async () => ({ tools: [] }) } as unknown as Client<typeof skillsContract>;
const events: EventPublisher = { emit() {} };

async function startReplica(
  index: number,
  ttlMs = 5000,
  withTurns = false,
  { readsAfterLease = false, sent }: { readsAfterLease?: boolean; sent?: SentCommand[] } = {},
): Promise<Replica> {
  const client = createClient({ url: REDIS_URL }) as RedisClientType;
  client.on('error', () => undefined);
  await client.connect();
  const commands = sent ? recording(client, sent) : client;
  const store = createRedisConversationStore({ client: commands, prefix });
  const lease = createRedisTurnLease({ client: commands, prefix, ttlMs });
  const logger = silentLogger();
  const service = createConversationService({
    agents: [AgentConfigSchema.parse({ id: 'default' })],
    defaultAgentId: 'default',
    store,
    models: slowModel(index, 8),
    skills: noSkills,
    hooks: createHookRunner({ plugins: [], logger }),
    events,
    logger,
    lease,
    // Across processes the gateway may send a message again: each message id runs once.
    ...(withTurns ? { turns: createRedisDedupeStore({ client: commands, prefix }) } : {}),
    readsAfterLease,
  });
  return { client, store, lease, service };
}

/** A command a replica sent, and how many of its lease acquires had been answered by then. */
interface SentCommand {
  args: string[];
  acquiresAnswered: number;
}

/** The client, recording in `sent` each command sent through it. */
function recording(client: RedisClientType, sent: SentCommand[]): RedisClientType {
  let acquiresAnswered = 0;
  const sendCommand = (args: string[]) => {
    sent.push({ args, acquiresAnswered });
    const reply = client.sendCommand(args);
    // The acquire script is the one with four keys, the first of them the lease's.
    if (args[0] === 'EVALSHA' && args[2] === '4' && args[3]?.startsWith(`${prefix}lease:`))
      void reply.then(
        () => acquiresAnswered++,
        () => acquiresAnswered++,
      );
    return reply;
  };
  return new Proxy(client, {
    get: (target, property) =>
      property === 'sendCommand' ? sendCommand : Reflect.get(target, property, target),
  });
}

const send = (replica: Replica, conversationId: string, text: string, messageId?: string) =>
  replica.service.handlers.handle(
    { channel: 'api', userId: 'u1', text, conversationId, ...(messageId ? { messageId } : {}) },
    createCallContext({ timeoutMs: 60_000 }),
  );

/**
 * Sends `count` messages of one conversation 2 ms apart, to the two replicas in turn; checks each
 * got its own reply and each turn's model call saw every earlier message and reply; resolves with
 * those model calls in the order their turns started.
 */
async function sendAlternating(
  replicas: Replica[],
  conversationId: string,
  count: number,
  messageIdOf?: (n: number) => string,
): Promise<ModelCall[]> {
  const replies: Array<ReturnType<typeof send>> = [];
  for (let n = 1; n <= count; n += 1) {
    replies.push(send(replicas[n % 2]!, conversationId, `message ${n}`, messageIdOf?.(n)));
    await sleep(2);
  }
  const texts = (await Promise.all(replies)).map((reply) => reply.text);
  expect(texts).toEqual(Array.from({ length: count }, (_, i) => `reply to message ${i + 1}`));
  const turns = calls
    .filter((call) => call.conversationId === conversationId)
    .sort((x, y) => x.start - y.start);
  expect(turns).toHaveLength(count);
  turns.forEach((turn, i) => {
    expect(turn.users).toEqual(Array.from({ length: i + 1 }, (_, k) => `message ${k + 1}`));
    expect(turn.assistants).toEqual(Array.from({ length: i }, (_, k) => `reply to message ${k + 1}`));
  });
  return turns;
}

/** Drains and closes replicas, then deletes the keys the tests wrote. */
async function stopReplicas(replicas: Replica[]): Promise<void> {
  for (const { service, lease, client } of replicas) {
    await service.drain();
    await lease.close();
    await client.close();
  }
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  for await (const keys of admin.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
    if (keys.length > 0) await admin.del(keys);
  }
  await admin.close();
}

describe('two conversation replicas sharing one Redis', () => {
  let replicas: Replica[];
  beforeAll(async () => {
    replicas = [await startReplica(0), await startReplica(1)];
  });
  afterAll(() => stopReplicas(replicas));

  it('never run two turns of one conversation at once, and keep the turns in the order sent', async () => {
    const conversationId = `c-${randomUUID()}`;
    const turns = await sendAlternating(replicas, conversationId, 50);
    // Turns alternate between the replicas, and none starts before the previous one ended.
    expect(turns.map((turn) => turn.replica)).toEqual(Array.from({ length: 50 }, (_, i) => (i + 1) % 2));
    for (let i = 1; i < turns.length; i += 1)
      expect(turns[i]!.start).toBeGreaterThanOrEqual(turns[i - 1]!.end);
    // sendAlternating checked that each turn saw every earlier turn, though half of them were
    // written by the other replica: neither replica's history cache served a stale history.

    const stored = await replicas[0]!.store.messages(conversationId);
    expect(stored.map((m) => [m.seq, m.role, m.content])).toEqual(
      Array.from({ length: 50 }, (_, i) => [
        [2 * i + 1, 'user', `message ${i + 1}`],
        [2 * i + 2, 'assistant', `reply to message ${i + 1}`],
      ]).flat(),
    );
  });

  it('lets other conversations run while one is busy on the other replica', async () => {
    const busy = `busy-${randomUUID()}`;
    let open!: () => void;
    gates.set(
      busy,
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    const held = send(replicas[0]!, busy, 'hold on');
    await sleep(30);
    const started = performance.now();
    const other = await send(replicas[1]!, `free-${randomUUID()}`, 'quick one');
    expect(other.text).toBe('reply to quick one');
    expect(performance.now() - started).toBeLessThan(1000);
    open();
    expect((await held).text).toBe('reply to hold on');
  });

  it('refuses the write of a turn whose lease was taken over by the other replica', async () => {
    const conversationId = `fenced-${randomUUID()}`;
    let open!: () => void;
    gates.set(
      conversationId,
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    const stalled = send(replicas[0]!, conversationId, 'slow turn');
    await sleep(30);
    // The stalled replica's lease vanishes (it expired during a pause, or Redis failed over).
    await replicas[1]!.client.del(`${prefix}lease:${conversationId}`);
    gates.delete(conversationId);
    const taken = await send(replicas[1]!, conversationId, 'new owner');
    expect(taken.text).toBe('reply to new owner');
    open();
    await expect(stalled).rejects.toMatchObject({ code: 'CONFLICT' });
    const stored = await replicas[1]!.store.messages(conversationId);
    expect(stored.map((m) => m.content)).toEqual(['new owner', 'reply to new owner']);
  });

  it("logs a lease it could not release and a reply it could not record with the turn's request, trace and conversation", async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    const real = replicas[0]!.lease;
    // Redis went away after the turn: the lease cannot be released, nor the reply recorded.
    const lease: TurnLease = {
      kind: real.kind,
      acquire: async (id, options) => {
        const held = await real.acquire(id, options);
        return Object.assign(Object.create(held) as typeof held, {
          release: async () => {
            await held.release();
            throw new Error('the client is closed');
          },
        });
      },
      close: async () => undefined,
    };
    const dedupe = createMemoryDedupeStore();
    const service = createConversationService({
      agents: [AgentConfigSchema.parse({ id: 'default' })],
      defaultAgentId: 'default',
      store: replicas[0]!.store,
      models: slowModel(0, 1),
      skills: noSkills,
      hooks: createHookRunner({ plugins: [], logger }),
      events,
      logger,
      lease,
      turns: { ...dedupe, complete: async () => Promise.reject(new Error('the client is closed')) },
    });
    const conversationId = `unreleased-${randomUUID()}`;
    const ctx = createCallContext({ timeoutMs: 10_000 });
    const reply = await service.handlers.handle(
      { channel: 'api', userId: 'u1', text: 'hello', conversationId, messageId: 'm-1' },
      ctx,
    );
    expect(reply.text).toBe('reply to hello');
    // The turn journal is written with the same failing `complete`: its lines are the turn's too.
    expect(lines.map((line) => line.msg).sort()).toEqual([
      'could not journal the turn as ended',
      'could not journal the turn starting',
      'could not record a turn as done',
      'turn lease release failed; it will expire',
    ]);
    for (const line of lines) {
      expect(line, String(line.msg)).toMatchObject({
        requestId: ctx.requestId,
        traceId: ctx.traceparent.slice(3, 35),
        spanId: expect.stringMatching(/^[0-9a-f]{16}$/),
        conversationId,
      });
    }
    await service.drain();
  });
});

describe("replicas that send a turn's first reads with the lease's acquire", () => {
  const sent: SentCommand[] = [];
  let replicas: Replica[];
  beforeAll(async () => {
    replicas = [
      await startReplica(4, 5000, true, { readsAfterLease: true, sent }),
      await startReplica(5, 5000, true, { readsAfterLease: true }),
    ];
  });
  afterAll(() => stopReplicas(replicas));

  it("sends the conversation's read before the acquire is answered, saving a round trip", async () => {
    const conversationId = `early-${randomUUID()}`;
    sent.length = 0;
    expect((await send(replicas[0]!, conversationId, 'hello', 'm-1')).text).toBe('reply to hello');
    const read = sent.find(
      ({ args }) => args[0] === 'HGETALL' && args[1] === `${prefix}conv:${conversationId}`,
    );
    expect(read).toMatchObject({ acquiresAnswered: 0 });
  });

  it('keeps the turns in order, each seeing every earlier one, when the lease had to be waited for', async () => {
    const conversationId = `waited-${randomUUID()}`;
    // Reads sent before a lease that was then waited for are stale: a turn that used them would
    // miss the other replica's last turn (its history cache matching the stale message count).
    // sendAlternating checks that each turn saw every earlier one.
    await sendAlternating(replicas, conversationId, 30, (n) => `m-${n}`);
    // A message sent again is answered from its record, not run again.
    expect((await send(replicas[1]!, conversationId, 'message 4', 'm-4')).text).toBe('reply to message 4');
    expect(calls.filter((call) => call.conversationId === conversationId)).toHaveLength(30);
  });

  it('gives back the claim it took early when the lease is never granted', async () => {
    const conversationId = `busy-${randomUUID()}`;
    const holder = await replicas[1]!.lease.acquire(conversationId);
    await expect(
      replicas[0]!.service.handlers.handle(
        { channel: 'api', userId: 'u1', text: 'too late', conversationId, messageId: 'm-late' },
        createCallContext({ timeoutMs: 300 }),
      ),
    ).rejects.toMatchObject({ code: expect.stringMatching(/UNAVAILABLE|DEADLINE_EXCEEDED/) });
    await holder.release();
    // No pending claim is left behind: the message's retry runs at once.
    await expect
      .poll(() => replicas[0]!.client.exists(`${prefix}dedupe:turn:${conversationId}:m-late`))
      .toBe(0);
    expect((await send(replicas[0]!, conversationId, 'too late', 'm-late')).text).toBe('reply to too late');
  });
});

describe('a conversation replica that dies in the middle of a turn', () => {
  let replicas: Replica[];
  beforeAll(async () => {
    // A short lease, so that the dead replica's expires within the test.
    replicas = [
      await startReplica(2, 400, true, { readsAfterLease: true }),
      await startReplica(3, 400, true, { readsAfterLease: true }),
    ];
  });
  afterAll(async () => {
    for (const { lease, client } of replicas) {
      await lease.close();
      await client.close();
    }
  });

  it('has its message answered first by the next replica, and its retry gets that answer', async () => {
    const conversationId = `orphan-${randomUUID()}`;
    let open!: () => void;
    gates.set(
      conversationId,
      new Promise<void>((resolve) => {
        open = resolve;
      }),
    );
    const [dying, next] = [replicas[0]!, replicas[1]!];
    const lost = send(dying, conversationId, 'message A', 'm-A').catch((err: unknown) => err);
    while (!calls.some((call) => call.conversationId === conversationId)) await sleep(5);
    await sleep(30); // past the model's own delay: it waits at the gate now
    // The replica stops renewing its lease, as a killed process does; its model call never returns.
    await dying.lease.close();
    gates.delete(conversationId);

    // B, sent after A, waits for A's lease to expire; the replica that takes it runs A first.
    const b = await send(next, conversationId, 'message B', 'm-B');
    expect(b.text).toBe('reply to message B');
    const stored = await next.store.messages(conversationId);
    expect(stored.map((m) => m.content)).toEqual([
      'message A',
      'reply to message A',
      'message B',
      'reply to message B',
    ]);
    const onNext = calls.filter((call) => call.conversationId === conversationId && call.replica === 3);
    expect(onNext.map((call) => call.users.at(-1))).toEqual(['message A', 'message B']);
    // B's model call saw A's turn in its history.
    expect(onNext[1]!.users).toEqual(['message A', 'message B']);

    // The gateway's retry of A, when it comes, is answered without running A a third time.
    const retried = await send(next, conversationId, 'message A', 'm-A');
    expect(retried.text).toBe('reply to message A');
    expect(calls.filter((call) => call.conversationId === conversationId)).toHaveLength(3);

    // The dead replica's turn, should it wake, finds its message answered and writes nothing.
    open();
    expect(await lost).toMatchObject({ text: 'reply to message A' });
    expect((await next.store.messages(conversationId)).map((m) => m.content)).toHaveLength(4);
  });

  it('runs a message once when the replica that took over had it journaled as its own', async () => {
    const conversationId = `own-${randomUUID()}`;
    const first = await send(replicas[1]!, conversationId, 'hello', 'm-1');
    const again = await send(replicas[1]!, conversationId, 'hello', 'm-1');
    expect(again.text).toBe(first.text);
    const second = await send(replicas[1]!, conversationId, 'next', 'm-2');
    expect(second.text).toBe('reply to next');
    expect(calls.filter((call) => call.conversationId === conversationId)).toHaveLength(2);
  });
});

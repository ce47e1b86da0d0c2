import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import WebSocket from 'ws';
import type { TurnReply } from '../src/core/contracts/conversation.ts';
import { ClawmeshError } from '../src/core/errors.ts';
import { sessionConversationId } from '../src/core/ids.ts';
import { createApiKeyCheck } from '../src/gateway/auth.ts';
import { registerWebChat, userIdOf, type WebChatOptions } from '../src/gateway/channels/webchat/index.ts';
import { createHttpServer } from '../src/http/server.ts';
import { createLogger, silentLogger } from '../src/observability/logger.ts';
import type { ClawmeshPlugin } from '../src/plugins/types.ts';
import { createMemoryDedupeStore } from '../src/store/memory.ts';
import type { DedupeStore } from '../src/store/types.ts';
import { startTestApp, type TestApp } from './support/app.ts';

// biome-ignore lint/suspicious/noExplicitAny: frames are asserted field by field
type Frame = Record<string, any>;

/** A test client of `/webchat/ws` that records every frame and waits for the ones it expects. */
class ChatSocket {
  readonly frames: Frame[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private listeners = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)));
      for (const listener of this.listeners) listener();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        resolve({ code, reason: String(reason) });
        for (const listener of this.listeners) listener();
      });
    });
  }

  static async open(baseUrl: string, headers: Record<string, string> = {}): Promise<ChatSocket> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/webchat/ws`, { headers });
    const socket = new ChatSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return socket;
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The first frame at or after `from` that matches; waits for it (failing after `timeoutMs`). */
  waitFor(match: (frame: Frame) => boolean, from = 0, timeoutMs = 10_000): Promise<Frame> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.frames.slice(from).find(match);
        if (found) {
          done();
          resolve(found);
        } else if (this.ws.readyState === WebSocket.CLOSED) {
          done();
          reject(new Error(`socket closed; frames: ${JSON.stringify(this.frames)}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching frame in ${timeoutMs} ms; frames: ${JSON.stringify(this.frames)}`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Says hello and waits for `ready`. */
  async hello(sessionId: string, lastSeq = 0, key?: string): Promise<Frame> {
    const from = this.frames.length;
    this.send({ type: 'hello', sessionId, lastSeq, ...(key ? { key } : {}) });
    return this.waitFor((f) => f.type === 'ready', from);
  }

  /** Sends a message and waits for its final reply (or a turn error). */
  async ask(clientMessageId: string, text: string): Promise<Frame> {
    const from = this.frames.length;
    this.send({ type: 'message', clientMessageId, text });
    return this.waitFor(
      (f) => (f.type === 'reply' || f.type === 'error') && f.replyTo === clientMessageId,
      from,
    );
  }

  close(): void {
    this.ws.close();
  }
}

const newSession = () => randomBytes(16).toString('hex');
const newMessageId = () => `m-${randomBytes(8).toString('hex')}`;

/** A plugin that holds the next turn after `arm()` until the test calls `release()`. */
function holdingPlugin() {
  let armed = false;
  let release: () => void = () => undefined;
  let gate = Promise.resolve();
  const plugin: ClawmeshPlugin = {
    name: 'hold',
    async onMessageReceived(_context, message) {
      if (armed) {
        armed = false;
        await gate;
      }
      return message;
    },
  };
  return {
    plugin,
    arm() {
      armed = true;
      gate = new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
  };
}

describe('web chat: page and WebSocket on a running Clawmesh', () => {
  let t: TestApp;
  const hold = holdingPlugin();
  const conversationOf = (sessionId: string) =>
    sessionConversationId('default', 'webchat', userIdOf(sessionId));
  const stored = (sessionId: string) => t.app.services.conversations!.messages(conversationOf(sessionId));

  beforeAll(async () => {
    t = await startTestApp({ pluginTimeoutMs: 20_000 }, { plugins: [hold.plugin] });
  });
  afterAll(() => t.stop());

  it('serves the page and its files with a strict content security policy, and nothing else', async () => {
    const page = await fetch(`${t.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(page.headers.get('content-security-policy')).toContain("connect-src 'self'");
    const html = await page.text();
    expect(html).toContain('/webchat/app.js');
    expect(html).not.toMatch(/https?:\/\//);
    for (const [file, type] of [
      ['app.js', /^text\/javascript/],
      ['connection.js', /^text\/javascript/],
      ['style.css', /^text\/css/],
    ] as const) {
      const res = await fetch(`${t.url}/webchat/${file}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(type);
      const again = await fetch(`${t.url}/webchat/${file}`, {
        headers: { 'if-none-match': res.headers.get('etag')! },
      });
      expect(again.status).toBe(304);
    }
    for (const path of ['/webchat/nope.js', '/webchat/index.html', '/webchat/..%2Fpackage.json']) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as Frame).error.code).toBe('NOT_FOUND');
    }
  });

  it('streams the reply as deltas, then sends the stored user message and the reply', async () => {
    const chat = await ChatSocket.open(t.url);
    const sessionId = newSession();
    const ready = await chat.hello(sessionId);
    expect(ready).toMatchObject({
      protocol: 1,
      conversationId: conversationOf(sessionId),
      lastSeq: 0,
      replayed: 0,
    });
    const id = newMessageId();
    const reply = await chat.ask(id, 'how many red shirts are in stock?');
    const frames = chat.frames.slice(1);
    const types = frames.map((f) => f.type);
    expect(types[0]).toBe('ack');
    const deltas = frames.filter((f) => f.type === 'delta');
    expect(deltas.length).toBeGreaterThanOrEqual(1);
    expect(deltas.every((d) => d.replyTo === id)).toBe(true);
    expect(deltas.map((d) => d.text).join('')).toBe(reply.text);
    expect(types.indexOf('delta')).toBeLessThan(types.indexOf('reply'));
    expect(reply.text).toMatch(/red shirt/i);
    expect(reply.text).toMatch(/stock/i);
    expect(reply.toolCalls).toEqual([
      expect.objectContaining({ skill: 'inventory', tool: 'lookupStock', ok: true }),
    ]);
    const user = frames.find((f) => f.type === 'user' && f.seq !== undefined);
    expect(user).toMatchObject({ seq: 1, clientMessageId: id, text: 'how many red shirts are in stock?' });
    const messages = await stored(sessionId);
    expect(reply.seq).toBe(messages.at(-1)!.seq);
    expect(messages.at(-1)).toMatchObject({ role: 'assistant', content: reply.text });
    chat.close();
  });

  it('replays a reply that finished while the socket was down, exactly once, after lastSeq', async () => {
    const sessionId = newSession();
    const first = await ChatSocket.open(t.url);
    await first.hello(sessionId);
    const earlier = await first.ask(newMessageId(), 'hello');
    const id = newMessageId();
    hold.arm();
    first.send({ type: 'message', clientMessageId: id, text: 'how many blue shirts are in stock?' });
    await first.waitFor((f) => f.type === 'ack' && f.clientMessageId === id);
    first.ws.terminate();
    await first.closed;

    hold.release();
    await vi.waitFor(async () => expect((await stored(sessionId)).length).toBeGreaterThan(earlier.seq + 1), {
      timeout: 10_000,
      interval: 20,
    });

    const second = await ChatSocket.open(t.url);
    const ready = await second.hello(sessionId, earlier.seq);
    expect(ready.replayed).toBe(2);
    const replayed = second.frames.slice(1);
    const replies = replayed.filter((f) => f.type === 'reply');
    expect(replies).toHaveLength(1);
    expect(replies[0]).toMatchObject({ replyTo: id });
    expect(replies[0]!.text).toMatch(/blue shirt/i);
    expect(replies[0]!.toolCalls).toEqual([
      { skill: 'inventory', tool: 'lookupStock', arguments: { item: 'blue shirts' }, ok: true },
    ]);
    expect(replies[0]!.seq).toBeGreaterThan(earlier.seq);
    expect(replayed.find((f) => f.type === 'user')).toMatchObject({
      clientMessageId: id,
      text: 'how many blue shirts are in stock?',
    });
    // The page resends what it has not seen answered: no second turn, the same reply.
    const count = (await stored(sessionId)).length;
    const resent = await second.ask(id, 'how many blue shirts are in stock?');
    expect(resent).toMatchObject({ seq: replies[0]!.seq, text: replies[0]!.text });
    expect(second.frames.find((f) => f.type === 'ack' && f.clientMessageId === id)).toMatchObject({
      duplicate: true,
    });
    expect(await stored(sessionId)).toHaveLength(count);

    const third = await ChatSocket.open(t.url);
    const upToDate = await third.hello(sessionId, replies[0]!.seq);
    expect(upToDate).toMatchObject({ replayed: 0, lastSeq: replies[0]!.seq });
    expect(await third.ask(newMessageId(), 'thanks')).toMatchObject({ type: 'reply' });
    expect(third.frames.filter((f) => f.type === 'reply')).toHaveLength(1);
    second.close();
    third.close();
  });

  it('lets a socket that reconnects mid-turn catch up and receive the reply live', async () => {
    const sessionId = newSession();
    const first = await ChatSocket.open(t.url);
    await first.hello(sessionId);
    const id = newMessageId();
    hold.arm();
    first.send({ type: 'message', clientMessageId: id, text: 'how many green hats are in stock?' });
    await first.waitFor((f) => f.type === 'ack');
    first.ws.terminate();

    const second = await ChatSocket.open(t.url);
    const ready = await second.hello(sessionId);
    expect(ready.replayed).toBe(0);
    const running = await second.waitFor((f) => f.type === 'user');
    expect(running).toEqual({
      type: 'user',
      clientMessageId: id,
      text: 'how many green hats are in stock?',
    });
    hold.release();
    const reply = await second.waitFor((f) => f.type === 'reply' && f.replyTo === id);
    const deltas = second.frames.filter((f) => f.type === 'delta').map((f) => f.text);
    expect(deltas.join('')).toBe(reply.text);
    expect(reply.text).toMatch(/green hat/i);
    second.close();
  });

  it('runs one turn for a clientMessageId sent several times, on one socket or several', async () => {
    const sessionId = newSession();
    const a = await ChatSocket.open(t.url);
    const b = await ChatSocket.open(t.url);
    await a.hello(sessionId);
    await b.hello(sessionId);
    const id = newMessageId();
    const text = 'how many red shirts are in stock?';
    hold.arm();
    a.send({ type: 'message', clientMessageId: id, text });
    a.send({ type: 'message', clientMessageId: id, text });
    b.send({ type: 'message', clientMessageId: id, text });
    await a.waitFor((f) => f.type === 'ack' && f.duplicate === true);
    await b.waitFor((f) => f.type === 'ack');
    hold.release();
    const reply = await a.waitFor((f) => f.type === 'reply' && f.replyTo === id);
    await b.waitFor((f) => f.type === 'reply' && f.replyTo === id);
    const acks = [...a.frames, ...b.frames].filter((f) => f.type === 'ack');
    expect(acks).toHaveLength(3);
    expect(acks.filter((f) => !f.duplicate)).toHaveLength(1);

    const later = await a.ask(id, text);
    expect(later).toMatchObject({ seq: reply.seq, text: reply.text });
    const messages = await stored(sessionId);
    expect(messages.filter((m) => m.role === 'user')).toHaveLength(1);
    expect(a.frames.filter((f) => f.type === 'reply' && f.replyTo === id)).toHaveLength(2);
    a.close();
    b.close();
  });

  it('answers malformed frames with typed errors and keeps serving the socket', async () => {
    const chat = await ChatSocket.open(t.url);
    const bad: unknown[] = [
      'not json',
      '[1,2]',
      { type: 'shout' },
      { type: 'message', clientMessageId: 'm-12345678', text: 'hi' },
      { type: 'hello', sessionId: 'short' },
      { type: 'hello', sessionId: newSession(), lastSeq: -1 },
    ];
    for (const frame of bad) chat.send(frame);
    chat.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const errors = await vi.waitFor(
      () => {
        const found = chat.frames.filter((f) => f.type === 'error');
        expect(found).toHaveLength(bad.length + 1);
        return found;
      },
      { timeout: 5000, interval: 10 },
    );
    for (const error of errors) {
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', retryable: false });
      expect(error.message).toEqual(expect.any(String));
    }
    expect(errors[0]!.message).toMatch(/not JSON/);
    expect(errors[3]!.message).toMatch(/hello/);
    expect(errors[4]!.message).toMatch(/sessionId/);
    expect(errors[6]!.message).toMatch(/binary/);

    chat.send({ type: 'ping' });
    await chat.waitFor((f) => f.type === 'pong');
    await chat.hello(newSession());
    chat.send({ type: 'message', clientMessageId: 'm-blank-text', text: '   ' });
    const blank = await chat.waitFor((f) => f.type === 'error' && /text/.test(f.message), errors.length);
    expect(blank.code).toBe('INVALID_ARGUMENT');
    expect(await chat.ask(newMessageId(), 'hello')).toMatchObject({ type: 'reply' });
    chat.close();
  });

  it('refuses a socket opened by a page of another origin', async () => {
    await expect(ChatSocket.open(t.url, { origin: 'http://evil.example' })).rejects.toThrow(/HTTP 403/);
    const own = await ChatSocket.open(t.url, { origin: t.url });
    expect((await own.hello(newSession())).type).toBe('ready');
    own.close();
  });

  it('leaves the HTTP API untouched', async () => {
    const res = await t.post('/v1/messages', {
      userId: 'api-user',
      text: 'how many red shirts are in stock?',
    });
    expect(res.status).toBe(200);
    expect(res.body.text).toMatch(/red shirt/i);
  });
});

describe('web chat with API keys configured', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ gateway: { port: 0, host: '127.0.0.1', apiKeys: ['webchat-test-key-1'] } });
  });
  afterAll(() => t.stop());

  it('serves the page but requires the key in hello', async () => {
    expect((await fetch(`${t.url}/`)).status).toBe(200);
    const missing = await ChatSocket.open(t.url);
    missing.send({ type: 'hello', sessionId: newSession(), lastSeq: 0 });
    expect(await missing.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await missing.closed).code).toBe(4401);

    const wrong = await ChatSocket.open(t.url);
    wrong.send({ type: 'hello', sessionId: newSession(), lastSeq: 0, key: 'not-the-key' });
    expect(await wrong.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'UNAUTHENTICATED' });
    expect((await wrong.closed).code).toBe(4401);

    const right = await ChatSocket.open(t.url);
    expect((await right.hello(newSession(), 0, 'webchat-test-key-1')).type).toBe('ready');
    expect(await right.ask(newMessageId(), 'how many red shirts are in stock?')).toMatchObject({
      type: 'reply',
    });
    right.close();
  });

  it('closes open sockets with "going away" when the server stops', async () => {
    const chat = await ChatSocket.open(t.url);
    await chat.hello(newSession(), 0, 'webchat-test-key-1');
    await t.stop();
    expect((await chat.closed).code).toBe(1001);
  });
});

/** A stand-in Conversation Manager that streams three chunks, the last two after `gate` opens. */
function echoConversation() {
  const state = {
    calls: [] as string[],
    requestIds: [] as string[],
    gate: Promise.resolve() as Promise<void>,
    streams: true,
    fail: undefined as Error | undefined,
  };
  const client = {
    async handle(message: { text: string }, ctx: { requestId: string; onDelta?: (delta: string) => void }) {
      state.calls.push(message.text);
      state.requestIds.push(ctx.requestId);
      if (state.fail) throw state.fail;
      const onDelta = state.streams ? ctx.onDelta : undefined;
      onDelta?.('You said');
      await state.gate;
      onDelta?.(': ');
      onDelta?.(message.text);
      return { conversationId: 'x', text: `You said: ${message.text}`, toolCalls: [] } satisfies TurnReply;
    },
    async history() {
      throw new Error('not used');
    },
  };
  return { state, client };
}

/** A bare Fastify server with only the web chat, no conversation store (a gateway-only process). */
async function startBareChat(
  options: WebChatOptions = {},
  keys: string[] = [],
  dedupe: DedupeStore = createMemoryDedupeStore(),
) {
  const app = createHttpServer({ logger: silentLogger(), bodyLimitBytes: 65_536 });
  const echo = echoConversation();
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ destination: { write: (line: string) => lines.push(JSON.parse(line)) } });
  registerWebChat(app, {
    // biome-ignore lint/suspicious/noExplicitAny: a stand-in client with the contract's two methods
    conversation: echo.client as any,
    dedupe,
    auth: createApiKeyCheck(keys),
    logger,
    agentFor: () => 'default',
    turnTimeoutMs: 10_000,
    options,
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url, state: echo.state, lines };
}

describe('web chat made public in the config while API keys guard the HTTP API', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({
      gateway: { port: 0, host: '127.0.0.1', apiKeys: ['webchat-test-key-2'] },
      channels: { webchat: { public: true } },
    });
  });
  afterAll(() => t.stop());

  it('answers a browser without a key, and the message API still wants one', async () => {
    const chat = await ChatSocket.open(t.url);
    expect((await chat.hello(newSession(), 0)).type).toBe('ready');
    expect(await chat.ask(newMessageId(), 'how many red shirts are in stock?')).toMatchObject({
      type: 'reply',
    });
    chat.close();
    expect((await t.post('/v1/messages', { userId: 'u', text: 'hi' })).status).toBe(401);
  });
});

describe('registerWebChat in a gateway without the conversation store', () => {
  let bare: Awaited<ReturnType<typeof startBareChat>>;
  beforeAll(async () => {
    bare = await startBareChat({ public: true, helloTimeoutMs: 300 }, ['a-configured-key']);
  });
  afterAll(() => bare.app.close());

  it('streams chunk by chunk, and a public chat needs no key even with keys configured', async () => {
    let release!: () => void;
    bare.state.gate = new Promise((resolve) => {
      release = resolve;
    });
    const chat = await ChatSocket.open(bare.url);
    const sessionId = newSession();
    await chat.hello(sessionId);
    const id = newMessageId();
    chat.send({ type: 'message', clientMessageId: id, text: 'ping pong' });
    const firstDelta = await chat.waitFor((f) => f.type === 'delta');
    expect(firstDelta).toEqual({ type: 'delta', replyTo: id, text: 'You said' });
    expect(chat.frames.some((f) => f.type === 'reply')).toBe(false);
    release();
    const reply = await chat.waitFor((f) => f.type === 'reply');
    expect(chat.frames.filter((f) => f.type === 'delta').map((f) => f.text)).toEqual([
      'You said',
      ': ',
      'ping pong',
    ]);
    expect(reply).toMatchObject({ seq: 2, replyTo: id, text: 'You said: ping pong' });
    chat.close();

    // The in-memory transcript replays; a client ahead of the server (it restarted) is reset.
    const again = await ChatSocket.open(bare.url);
    const ready = await again.hello(sessionId, 40);
    expect(ready).toMatchObject({ reset: true, lastSeq: 2, replayed: 2 });
    expect(again.frames.slice(1).map((f) => [f.type, f.seq, f.clientMessageId ?? f.replyTo])).toEqual([
      ['user', 1, id],
      ['reply', 2, id],
    ]);
    again.close();
    expect(bare.state.calls).toEqual(['ping pong']);
  });

  it('sends a reply that was not streamed as one delta before it', async () => {
    bare.state.streams = false;
    const chat = await ChatSocket.open(bare.url);
    await chat.hello(newSession());
    const id = newMessageId();
    const reply = await chat.ask(id, 'quiet');
    bare.state.streams = true;
    expect(reply.text).toBe('You said: quiet');
    expect(chat.frames.filter((f) => f.type === 'delta')).toEqual([
      { type: 'delta', replyTo: id, text: 'You said: quiet' },
    ]);
    chat.close();
  });

  it('reports a failed turn to its message and lets a resend run it again', async () => {
    const chat = await ChatSocket.open(bare.url);
    await chat.hello(newSession());
    const id = newMessageId();
    bare.state.fail = new ClawmeshError('UNAVAILABLE', 'the model is down');
    const failed = await chat.ask(id, 'try me');
    expect(failed).toMatchObject({ type: 'error', code: 'UNAVAILABLE', retryable: true, replyTo: id });
    // The gateway's line names the request, as the conversation role's 'turn failed' does.
    expect(bare.lines).toContainEqual(
      expect.objectContaining({ msg: 'web chat turn failed', requestId: bare.state.requestIds.at(-1) }),
    );
    bare.state.fail = undefined;
    expect(await chat.ask(id, 'try me')).toMatchObject({ type: 'reply', text: 'You said: try me' });
    chat.close();
  });

  it('logs a message its dedupe store failed on with the conversation of the session', async () => {
    const broken = await startBareChat({}, [], {
      ...createMemoryDedupeStore(),
      claim: () => Promise.reject(new TypeError('store bug')),
    });
    try {
      const chat = await ChatSocket.open(broken.url);
      const ready = await chat.hello(newSession());
      chat.send({ type: 'message', clientMessageId: newMessageId(), text: 'hi' });
      expect(await chat.waitFor((f) => f.type === 'error')).toMatchObject({ code: 'INTERNAL' });
      expect(broken.lines).toContainEqual(
        expect.objectContaining({ msg: 'web chat frame failed', conversationId: ready.conversationId }),
      );
      chat.close();
    } finally {
      await broken.app.close();
    }
  });

  it('closes a socket that never says hello, and one that sends nothing but garbage', async () => {
    const silent = await ChatSocket.open(bare.url);
    expect((await silent.closed).code).toBe(4408);
    const noisy = await ChatSocket.open(bare.url);
    await noisy.hello(newSession());
    for (let i = 0; i < 20; i += 1) noisy.send('{');
    expect((await noisy.closed).code).toBe(1008);
    expect(noisy.frames.filter((f) => f.type === 'error')).toHaveLength(20);
  });
});

describe('web chat access', () => {
  it('rate-limits a session with a typed error that says when to retry', async () => {
    const bare = await startBareChat({
      rateLimit: {
        perUser: { points: 1, durationSeconds: 60 },
        perChannel: { points: 100, durationSeconds: 60 },
      },
    });
    try {
      const chat = await ChatSocket.open(bare.url);
      await chat.hello(newSession());
      expect(await chat.ask(newMessageId(), 'one')).toMatchObject({ type: 'reply' });
      const limited = await chat.ask(newMessageId(), 'two');
      expect(limited).toMatchObject({ type: 'error', code: 'RATE_LIMITED', retryable: true });
      expect(limited.retryAfterSeconds).toBeGreaterThan(0);
      expect(bare.state.calls).toEqual(['one']);
      chat.close();
    } finally {
      await bare.app.close();
    }
  });

  it('refuses messages under dmPolicy disabled, and admits only allowlisted users under allowlist', async () => {
    const disabled = await startBareChat({ dmPolicy: 'disabled' });
    const allowed = newSession();
    const listed = await startBareChat({ dmPolicy: 'allowlist', allowlist: [userIdOf(allowed)] });
    try {
      const chat = await ChatSocket.open(disabled.url);
      await chat.hello(newSession());
      expect(await chat.ask(newMessageId(), 'hi')).toMatchObject({
        code: 'PERMISSION_DENIED',
        retryable: false,
      });

      const stranger = await ChatSocket.open(listed.url);
      const strangerSession = newSession();
      await stranger.hello(strangerSession);
      const refused = await stranger.ask(newMessageId(), 'hi');
      expect(refused).toMatchObject({ code: 'PERMISSION_DENIED' });
      expect(refused.message).toContain(userIdOf(strangerSession));
      const friend = await ChatSocket.open(listed.url);
      await friend.hello(allowed);
      expect(await friend.ask(newMessageId(), 'hi')).toMatchObject({ type: 'reply', text: 'You said: hi' });
      expect([...disabled.state.calls, ...listed.state.calls]).toEqual(['hi']);
      for (const socket of [chat, stranger, friend]) socket.close();
    } finally {
      await disabled.app.close();
      await listed.app.close();
    }
  });
});

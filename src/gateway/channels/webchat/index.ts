import websocket from '@fastify/websocket';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ChannelAccessConfig } from '../../../config/schema-channels.ts';
import type { Client } from '../../../core/contract.ts';
import type { conversationContract } from '../../../core/contracts/conversation.ts';
import { ClawmeshError } from '../../../core/errors.ts';
import { settlesWithin } from '../../../core/wait.ts';
import type { Logger } from '../../../observability/logger.ts';
import type { ConversationStore, DedupeStore } from '../../../store/types.ts';
import { type ChannelRateLimits, createChannelRateLimits } from '../../access/rate-limits.ts';
import type { ApiKeyCheck } from '../../auth.ts';
import { type Asset, loadAssets, PAGE_CSP } from './assets.ts';
import { serveConnection } from './connection.ts';
import { createSessionHub, type SessionHub } from './hub.ts';
import { CLOSE_CODES } from './protocol.ts';
import { createMemoryTranscript, createStoreTranscript } from './transcript.ts';
import { createTurnRunner } from './turns.ts';

export { userIdOf } from './connection.ts';
export type { ClientFrame, ServerFrame, ToolSummary } from './protocol.ts';
export { PROTOCOL_VERSION } from './protocol.ts';

/** Settings of the web chat (from `channels.webchat` and the gateway's). */
export interface WebChatOptions {
  /** Let browsers in without an API key even when API keys are configured. */
  public?: boolean;
  /** `open` (default), `disabled` (history only, no new messages), `allowlist`/`pairing` (only `allowlist` users). */
  dmPolicy?: 'open' | 'allowlist' | 'pairing' | 'disabled';
  /** Web chat user ids (`web-…`, shown in the refusal) allowed under `allowlist` or `pairing`. */
  allowlist?: readonly string[];
  /** Message limits per browser session and for the whole channel (used when `deps.limits` is absent). */
  rateLimit?: ChannelAccessConfig['rateLimit'];
  /** How long a message id and its reply are remembered for dedupe, in milliseconds (default 24 h). */
  dedupeTtlMs?: number;
  /** Stored messages one replay reads at most (default 500). */
  replayLimit?: number;
  /** Largest frame a client may send, in bytes (default 128 KiB). */
  maxPayloadBytes?: number;
  /** Interval of the server's WebSocket pings; a socket that misses one is dropped (default 30 s). */
  heartbeatMs?: number;
  /** Time a socket has to send `hello`, in milliseconds (default 10 s). */
  helloTimeoutMs?: number;
  /** The folder of the page's files (default: `src/ui/webchat/` of the package). */
  assetsDir?: string;
}

/** What the web chat is built from. */
export interface WebChatDeps {
  conversation: Client<typeof conversationContract>;
  /** Message ids of the chat, so a resent message never runs a second turn. */
  dedupe: DedupeStore;
  /**
   * The conversation store, when this process has it: replays read the stored history. Without
   * it (a gateway-only process) a bounded in-memory transcript stands in.
   */
  store?: ConversationStore;
  auth: ApiKeyCheck;
  logger: Logger;
  /** The agent a web chat user (`web-…`) talks to: a binding's, or the default agent. */
  agentFor(userId: string): string;
  /** The time budget of one turn, in milliseconds. */
  turnTimeoutMs: number;
  /** Shared channel rate limits (memory ones from `options.rateLimit` when absent). */
  limits?: ChannelRateLimits;
  options?: WebChatOptions;
}

/** What {@link registerWebChat} returns, for logs and tests. */
export interface WebChat {
  readonly hub: SessionHub;
  /** Whether a browser must give an API key. */
  readonly requiresKey: boolean;
}

/**
 * Serves the web chat: the page at `GET /`, its files under `GET /webchat/…`, and the
 * conversation socket at `GET /webchat/ws`, in a scope of their own (the WebSocket plugin's
 * hooks touch no other route).
 *
 * @example
 * registerWebChat(app, {
 *   conversation, dedupe, store, auth, logger,
 *   agentFor: () => 'default',
 *   turnTimeoutMs: 65_000,
 * });
 */
export function registerWebChat(app: FastifyInstance, deps: WebChatDeps): WebChat {
  const options = deps.options ?? {};
  const assets = loadAssets(options.assetsDir);
  const hub = createSessionHub();
  const transcript = deps.store ? createStoreTranscript(deps.store) : createMemoryTranscript();
  const limits =
    deps.limits ??
    (options.rateLimit
      ? createChannelRateLimits({ limits: new Map([['webchat', options.rateLimit]]) })
      : undefined);
  const runner = createTurnRunner({
    conversation: deps.conversation,
    dedupe: deps.dedupe,
    transcript,
    hub,
    logger: deps.logger,
    turnTimeoutMs: deps.turnTimeoutMs,
    dedupeTtlMs: options.dedupeTtlMs ?? 24 * 3600 * 1000,
    ...(limits ? { admit: (userId: string) => limits.take('webchat', userId) } : {}),
  });
  const requiresKey = deps.auth.enabled && !options.public;
  const policy = options.dmPolicy ?? 'open';
  const allowed = new Set(options.allowlist ?? []);

  app.register(async (scope) => {
    await scope.register(websocket, {
      options: { maxPayload: options.maxPayloadBytes ?? 128 * 1024 },
      preClose: closeSockets,
    });

    scope.get('/', (request, reply) => sendAsset(request, reply, assets.get('index.html')!));
    scope.get<{ Params: { file: string } }>('/webchat/:file', (request, reply) => {
      const asset = assets.get(request.params.file);
      if (!asset || request.params.file === 'index.html') {
        throw new ClawmeshError('NOT_FOUND', `no route GET ${request.url}`);
      }
      return sendAsset(request, reply, asset);
    });

    scope.get('/webchat/ws', { websocket: true, onRequest: sameOrigin }, (socket) => {
      serveConnection(socket, {
        hub,
        runner,
        transcript,
        logger: deps.logger,
        agentFor: deps.agentFor,
        replayLimit: options.replayLimit ?? 500,
        helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
        maxBufferedBytes: 1024 * 1024,
        ...(requiresKey ? { authenticate: (key: string | undefined) => authenticate(deps.auth, key) } : {}),
        ...(policy === 'open' ? {} : { permit: (userId: string) => permit(policy, allowed, userId) }),
      });
    });

    const heartbeat = startHeartbeat(scope, options.heartbeatMs ?? 30_000);
    scope.addHook('onClose', async () => {
      clearInterval(heartbeat);
      // Replies of turns still finishing are stored and recorded before the stores close.
      await settlesWithin(runner.drain(), deps.turnTimeoutMs + 5000);
    });
  });
  return { hub, requiresKey };
}

function authenticate(auth: ApiKeyCheck, key: string | undefined): void {
  if (!key) throw new ClawmeshError('UNAUTHENTICATED', 'this web chat needs an API key: open /?key=<key>');
  auth.verify(`Bearer ${key}`);
}

function sendAsset(request: FastifyRequest, reply: FastifyReply, asset: Asset) {
  reply
    .header('content-type', asset.contentType)
    .header('cache-control', 'no-cache')
    .header('etag', asset.etag)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer');
  if (asset.contentType.startsWith('text/html')) reply.header('content-security-policy', PAGE_CSP);
  if (request.headers['if-none-match'] === asset.etag) return reply.status(304).send();
  return reply.send(asset.body);
}

/** Refuses a browser socket opened by a page of another origin (cross-site WebSocket hijacking). */
async function sameOrigin(request: FastifyRequest, reply: FastifyReply) {
  const origin = request.headers.origin;
  if (origin === undefined) return;
  let host: string | undefined;
  try {
    host = new URL(origin).host;
  } catch {
    host = undefined;
  }
  if (host !== request.headers.host) {
    return reply.status(403).send({
      error: {
        code: 'PERMISSION_DENIED',
        message: 'the web chat socket takes connections from its own page only',
      },
    });
  }
}

function permit(policy: string, allowed: ReadonlySet<string>, userId: string): void {
  if (policy === 'disabled') {
    throw new ClawmeshError('PERMISSION_DENIED', 'the web chat takes no new messages', { retryable: false });
  }
  if (!allowed.has(userId)) {
    throw new ClawmeshError(
      'PERMISSION_DENIED',
      `this browser is not on the web chat allowlist; ask the operator to add ${userId}`,
      { retryable: false },
    );
  }
}

/** Closes every socket with "going away", so browsers reconnect to the next server. */
function closeSockets(this: FastifyInstance, done: () => void) {
  for (const client of this.websocketServer.clients) {
    client.close(CLOSE_CODES.goingAway, 'server shutting down');
    setTimeout(() => client.terminate(), 1000).unref();
  }
  done();
}

/** Pings every socket each interval and drops those that did not answer the previous ping. */
function startHeartbeat(scope: FastifyInstance, intervalMs: number): NodeJS.Timeout {
  const alive = new WeakSet<object>();
  scope.websocketServer.on('connection', (socket) => {
    alive.add(socket);
    socket.on('pong', () => alive.add(socket));
  });
  const timer = setInterval(() => {
    for (const socket of scope.websocketServer.clients) {
      if (!alive.has(socket)) {
        socket.terminate();
        continue;
      }
      alive.delete(socket);
      socket.ping();
    }
  }, intervalMs);
  timer.unref();
  return timer;
}

import type { EventPublisher } from '../bus/publisher.ts';
import type { AgentConfig } from '../config/schema.ts';
import { type CallContext, childContext, elapsedMs, remainingMs, withTimeout } from '../core/context.ts';
import type { Client, Handlers } from '../core/contract.ts';
import type { conversationContract, InboundMessage, TurnReply } from '../core/contracts/conversation.ts';
import type { modelsContract } from '../core/contracts/models.ts';
import type { skillsContract } from '../core/contracts/skills.ts';
import { ClawmeshError } from '../core/errors.ts';
import { isSessionConversationId, sessionConversationId } from '../core/ids.ts';
import { createInFlight } from '../core/in-flight.ts';
import { type ChatMessage, replyTextOf } from '../core/messages.ts';
import {
  type FastCounterChild,
  type FastHistogramChild,
  fastCounter,
  fastHistogram,
} from '../observability/fast-metrics.ts';
import { callLogger, type Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { HookRunner } from '../plugins/types.ts';
import type { LeaseHandle, TurnLease } from '../store/lease-types.ts';
import { isTurnAlreadyStored } from '../store/turns.ts';
import type { ConversationRecord, ConversationStore, DedupeStore, StoredMessage } from '../store/types.ts';
import { runAgentLoop } from './agent-loop.ts';
import { buildContextWindow } from './context-window.ts';
import { createHistoryCache, type History } from './history-cache.ts';
import { hookScopeOf } from './hook-scope.ts';
import { createToolCatalog } from './tool-catalog.ts';
import { createTurnOnce, type TurnReads } from './turn-once.ts';
import { createKeyedQueue } from './turn-queue.ts';

/** What the Conversation Manager is built from. */
export interface ConversationServiceDeps {
  agents: readonly AgentConfig[];
  defaultAgentId: string;
  store: ConversationStore;
  models: Client<typeof modelsContract>;
  skills: Client<typeof skillsContract>;
  hooks: HookRunner;
  events: EventPublisher;
  logger: Logger;
  /** Keep message texts in the lines about a failed tool call (`log.includeText`). */
  includeText?: boolean;
  metrics?: Metrics;
  /** Stored messages loaded per turn before the token budget trims them (default 200). */
  historyLimit?: number;
  /** Conversations whose recent history is kept in memory between turns (default 1000; 0 turns it off). */
  historyCacheSize?: number;
  /**
   * The turn lease across processes (conversation replicas): each turn holds its conversation's
   * lease, waiting for it at most until the turn's deadline, and writes with the lease's fencing
   * token. Without it, the in-process turn queue alone orders turns.
   */
  lease?: TurnLease;
  /**
   * Runs each message id once: the reply of a finished turn is kept here, and a message sent
   * again (a gateway failing over from a replica that died) gets it back without a second turn.
   */
  turns?: DedupeStore;
  /** How long a turn's reply is kept for such retries, in milliseconds (default 10 minutes). */
  turnReplyTtlMs?: number;
  /**
   * The lease, the store and `turns` send their commands on one connection, in order (one Redis
   * client): a turn then sends its first reads (its conversation, its message's claim, the turn
   * journal) with the lease's acquire instead of after its answer, one round trip fewer, and
   * uses them when the lease was granted by that first command ({@link LeaseHandle.grantedAtOnce}).
   */
  readsAfterLease?: boolean;
}

/** The Conversation Manager: its contract handlers, and a way to wait for turns in flight. */
export interface ConversationService {
  handlers: Handlers<typeof conversationContract>;
  /** Turns running or waiting now. */
  readonly inFlight: number;
  /** Resolves when no turn is running or waiting. */
  drain(): Promise<void>;
}

/** Creates the Conversation Manager: one turn at a time per conversation, the agent loop, hooks, events. */
export function createConversationService(deps: ConversationServiceDeps): ConversationService {
  const agents = new Map(deps.agents.map((agent) => [agent.id, agent]));
  const queue = createKeyedQueue();
  deps.metrics?.conversationCounts.add(() => queue.activeKeys);
  // Each agent's series, found once: prom-client hashes a label object on every update.
  const perAgent = new Map<string, { ok: FastCounterChild; duration: FastHistogramChild }>();
  const agentMetrics = (agent: string, metrics: Metrics) => {
    let series = perAgent.get(agent);
    if (!series) {
      series = {
        ok: fastCounter(metrics.turns, { agent, outcome: 'ok' }),
        duration: fastHistogram(metrics.turnDuration, { agent }),
      };
      perAgent.set(agent, series);
    }
    return series;
  };
  const catalog = createToolCatalog(deps.skills, deps.logger);
  const historyLimit = deps.historyLimit ?? 200;
  const historyCache = createHistoryCache({
    conversations: deps.historyCacheSize ?? 1000,
    perConversation: historyLimit,
  });

  /** The newest stored messages, from the cache when it is current for the store's message count. */
  const loadHistory = async (conversationId: string, messageCount: number): Promise<History> => {
    const cached = historyCache.get(conversationId, messageCount);
    if (cached) return cached;
    const stored = await deps.store.messages(conversationId, historyLimit);
    const messages = stored.map(({ seq: _seq, at: _at, ...message }) => message);
    return historyCache.set(conversationId, messageCount, messages);
  };
  const inFlight = createInFlight();

  /**
   * The conversation of a message: the one it names, else its session's. A named id of the
   * session shape (`c_` and 24 hex) must be the sender's own session: the others are reserved to
   * theirs, and answer as another user's conversation does, whether or not it exists yet.
   */
  const conversationIdOf = (message: InboundMessage, agentId: string): string => {
    const session = sessionConversationId(agentId, message.channel, message.userId);
    const named = message.conversationId;
    if (named === undefined || named === session) return session;
    if (isSessionConversationId(named))
      throw new ClawmeshError('NOT_FOUND', `no conversation "${named}" for this user`);
    return named;
  };

  const agentFor = (id: string | undefined): AgentConfig => {
    const agent = agents.get(id ?? deps.defaultAgentId);
    if (!agent)
      throw new ClawmeshError(
        'NOT_FOUND',
        `no agent named "${id}" (agents: ${[...agents.keys()].join(', ')})`,
      );
    return agent;
  };

  /** Failures runTurn has logged and counted already. */
  const reported = new WeakSet<object>();
  /**
   * Logs and counts a failure that happened before the turn ran (the queue, the turn lease, the
   * turn record), which runTurn did not see: its caller got an error all the same.
   */
  const unreported = (err: unknown, agent: AgentConfig, ctx: CallContext): void => {
    if (typeof err === 'object' && err !== null && reported.has(err)) return;
    const error = ClawmeshError.from(err);
    deps.metrics?.turns.inc({ agent: agent.id, outcome: 'error' });
    callLogger(deps.logger, ctx, { agentId: agent.id }).warn(
      { code: error.code, err: error.message },
      'turn failed',
    );
  };

  const runTurn = async (
    message: InboundMessage,
    agent: AgentConfig,
    conversationId: string,
    ctx: CallContext,
    held?: LeaseHandle,
    prefetched?: Promise<ConversationRecord | undefined>,
  ) => {
    const started = performance.now();
    const scope = hookScopeOf(ctx, { conversationId, agentId: agent.id });
    // A child logger costs a serialization of its bindings: make it only when a line is written.
    const turnLog = () => callLogger(deps.logger, ctx, { conversationId, agentId: agent.id });
    deps.metrics?.activeTurns.inc();
    try {
      const record =
        (await (prefetched ?? deps.store.get(conversationId))) ??
        (await deps.store.ensure({
          id: conversationId,
          agentId: agent.id,
          channel: message.channel,
          peer: message.userId,
        }));
      if (
        record.peer !== message.userId ||
        record.channel !== message.channel ||
        record.agentId !== agent.id
      ) {
        throw new ClawmeshError('NOT_FOUND', `no conversation "${conversationId}" for this user`);
      }
      let text = message.text;
      if (deps.hooks.has('onMessageReceived')) {
        const changed = await deps.hooks.run('onMessageReceived', scope, {
          text,
          userId: message.userId,
          channel: message.channel,
          agentId: agent.id,
          conversationId,
          ...(message.messageId ? { messageId: message.messageId } : {}),
          ...(message.metadata ? { metadata: message.metadata } : {}),
        });
        if (changed === null) {
          deps.metrics?.turns.inc({ agent: agent.id, outcome: 'dropped' });
          turnLog().info('message dropped by a plugin');
          return { conversationId, text: '', toolCalls: [], dropped: true };
        }
        text = changed.text;
        // The hooks may have used up the turn's time: the caller has stopped waiting.
        if (Date.now() >= ctx.deadline)
          throw new ClawmeshError(
            'DEADLINE_EXCEEDED',
            'the turn ran out of time in its onMessageReceived hooks',
          );
      }
      deps.events.emit(
        'message.received',
        {
          conversationId,
          agentId: agent.id,
          channel: message.channel,
          userId: message.userId,
          text,
          ...(message.messageId ? { messageId: message.messageId } : {}),
        },
        ctx,
      );
      const userMessage: ChatMessage = { role: 'user', content: text };
      const [history, tools] = await Promise.all([
        loadHistory(conversationId, record.messageCount),
        catalog.toolsFor(agent, ctx),
      ]);
      const window = buildContextWindow({
        systemPrompt: agent.systemPrompt,
        history: history.messages,
        historyTokens: history.tokens,
        message: userMessage,
        budgetTokens: agent.contextTokens,
        reservedTokens: tools.reservedTokens,
      });
      const loop = await runAgentLoop(
        {
          messages: window,
          tools: tools.specs,
          maxSteps: agent.maxSteps,
          ...(agent.model ? { model: agent.model } : {}),
        },
        { ...deps, turnText: text, ...(tools.allowed ? { allowedSkills: tools.allowed } : {}) },
        ctx,
        scope,
      );
      let reply: TurnReply = {
        conversationId,
        text: loop.text,
        toolCalls: loop.toolCalls,
        ...(loop.model ? { model: loop.model } : {}),
      };
      if (deps.hooks.has('onResponseGenerated')) {
        const changed = await deps.hooks.run('onResponseGenerated', scope, {
          text: reply.text,
          conversationId,
          toolCalls: reply.toolCalls,
        });
        reply = changed === null ? { ...reply, text: '', dropped: true } : { ...reply, text: changed.text };
      }
      if (reply.text !== loop.text) {
        // A plugin rewrote (or dropped) the reply: what is stored is its text alone, as the
        // final answer, so that history and replays show what the user was sent.
        for (const produced of loop.messages) if (produced.role === 'assistant') produced.content = '';
        const final = loop.messages.at(-1);
        if (final) final.content = reply.text;
      }
      const written = [userMessage, ...loop.messages];
      held?.assertHeld();
      // The message id makes the append idempotent: a turn run twice (its first replica died
      // after writing) is stored once, and this run answers with what the first one stored.
      const options = {
        ...(held ? { fence: held.token } : {}),
        ...(message.messageId ? { turnId: message.messageId } : {}),
      };
      let stored: StoredMessage[];
      try {
        stored = await deps.store.append(conversationId, written, options);
      } catch (err) {
        if (!isTurnAlreadyStored(err)) throw err;
        const earlier = replyTextOf(err.details.messages);
        turnLog().info(
          'this message was already answered by an earlier run of its turn; replying with that answer',
        );
        return { ...reply, text: earlier || reply.text };
      }
      // Keyed by the seq the store gave: if anyone else wrote since the history was read, the entry goes.
      historyCache.append(conversationId, (stored[0]?.seq ?? record.messageCount + 1) - 1, written);
      const durationMs = elapsedMs(started);
      deps.events.emit(
        'response.generated',
        {
          conversationId,
          agentId: agent.id,
          channel: message.channel,
          userId: message.userId,
          text: reply.text,
          toolCalls: loop.toolCalls.length,
          steps: loop.steps,
          durationMs,
          ...(loop.model ? { model: loop.model } : {}),
        },
        ctx,
      );
      if (deps.metrics) {
        const series = agentMetrics(agent.id, deps.metrics);
        series.ok.inc();
        series.duration.observe(durationMs / 1000);
      }
      if (deps.logger.isLevelEnabled('debug')) {
        turnLog().debug({ durationMs, steps: loop.steps, toolCalls: loop.toolCalls.length }, 'turn finished');
      }
      return reply;
    } catch (err) {
      const error = ClawmeshError.from(err);
      deps.metrics?.turns.inc({ agent: agent.id, outcome: 'error' });
      turnLog().warn({ code: error.code, err: error.message }, 'turn failed');
      reported.add(error);
      if (deps.hooks.has('onError'))
        await deps.hooks.notifyError(scope, { code: error.code, message: error.message, stage: 'turn' });
      throw error;
    } finally {
      deps.metrics?.activeTurns.dec();
    }
  };

  /**
   * Runs a turn holding the conversation's lease, when there is one; the queue has already ordered
   * it here. `early` reads are sent right after the acquire (see `readsAfterLease`) and reach the
   * turn only when that acquire's first command took the lease.
   */
  const leased = async <T, R = never>(
    conversationId: string,
    ctx: CallContext,
    turn: (held?: LeaseHandle, reads?: R) => Promise<T>,
    early?: { read(): R; drop(reads: R): void },
  ): Promise<T> => {
    if (!deps.lease) return turn();
    const acquiring = deps.lease.acquire(conversationId, { waitMs: remainingMs(ctx) });
    const reads = early?.read();
    let held: LeaseHandle;
    try {
      held = await acquiring;
    } catch (err) {
      if (reads !== undefined) early!.drop(reads);
      throw err;
    }
    try {
      return await turn(held, held.grantedAtOnce === true ? reads : undefined);
    } finally {
      await held.release().catch((err: unknown) => {
        callLogger(deps.logger, ctx).warn({ err: String(err) }, 'turn lease release failed; it will expire');
      });
    }
  };

  const replyTtlMs = deps.turnReplyTtlMs ?? 10 * 60_000;

  /** A turn's context: a child of the handler's span, with the agent's turn timeout. */
  const turnContextOf = (
    ctx: CallContext,
    message: InboundMessage,
    agent: AgentConfig,
    conversationId: string,
  ): CallContext =>
    withTimeout(
      childContext(ctx, {
        // The turn's calls and events are children of the span this handler runs in.
        traceparent: ctx.traceparent,
        conversationId,
        agentId: agent.id,
        userId: message.userId,
        channel: message.channel,
      }),
      agent.turnTimeoutMs,
    );

  const once = deps.turns
    ? createTurnOnce({
        store: deps.store,
        turns: deps.turns,
        replyTtlMs,
        logger: deps.logger,
        rerun(message, conversationId, ctx, held) {
          const agent = agentFor(message.agentId);
          return runTurn(
            message,
            agent,
            conversationId,
            turnContextOf(ctx, message, agent, conversationId),
            held,
          );
        },
      })
    : undefined;

  return {
    handlers: {
      async handle(message, ctx) {
        const agent = agentFor(message.agentId);
        const conversationId = conversationIdOf(message, agent.id);
        const turnCtx = turnContextOf(ctx, message, agent, conversationId);
        inFlight.enter();
        const messageId = message.messageId;
        try {
          if (!once || !messageId) {
            return await queue.run(
              conversationId,
              () =>
                leased(conversationId, turnCtx, (held) =>
                  runTurn(message, agent, conversationId, turnCtx, held),
                ),
              turnCtx.deadline,
            );
          }
          const key = `turn:${conversationId}:${messageId}`;
          const early = deps.readsAfterLease
            ? {
                read: () => once.read(key, conversationId),
                drop: (reads: TurnReads) => once.drop(key, reads),
              }
            : undefined;
          const { reply, recorded } = await queue.run(
            conversationId,
            () =>
              leased(
                conversationId,
                turnCtx,
                (held, reads) =>
                  once.run(
                    key,
                    message,
                    conversationId,
                    turnCtx,
                    held,
                    (prefetched) => runTurn(message, agent, conversationId, turnCtx, held, prefetched),
                    reads,
                  ),
                early,
              ),
            turnCtx.deadline,
          );
          await recorded;
          return reply;
        } catch (err) {
          unreported(err, agent, turnCtx);
          throw err;
        } finally {
          inFlight.leave();
        }
      },
      async history({ conversationId, limit }) {
        const record = await deps.store.get(conversationId);
        if (!record) throw new ClawmeshError('NOT_FOUND', `no conversation "${conversationId}"`);
        const messages = await deps.store.messages(conversationId, limit ?? 100);
        return { conversationId, messages: messages.map(({ seq: _seq, at: _at, ...message }) => message) };
      },
      async ping() {
        return { inFlight: inFlight.count };
      },
    },
    get inFlight() {
      return inFlight.count;
    },
    drain: () => inFlight.idle(),
  };
}

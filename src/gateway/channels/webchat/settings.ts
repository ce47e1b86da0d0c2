import type { FastifyInstance } from 'fastify';
import type { Config } from '../../../config/schema.ts';
import { createChannelRouter } from '../routing.ts';
import { registerWebChat, type WebChat, type WebChatDeps } from './index.ts';

/** What the config decides about the web chat: whether it runs, its agent, its budget and options. */
export type WebChatSettings = Pick<WebChatDeps, 'agentFor' | 'turnTimeoutMs' | 'options'> & {
  enabled: boolean;
};

/**
 * Reads `channels.webchat`, the bindings and the gateway's settings. A web chat user is peer
 * `web-…` on channel `webchat` (account `webchat`), so a binding with `channel: webchat` (and
 * optionally `peer`) picks its agent.
 */
export function webChatSettings(config: Config): WebChatSettings {
  const webchat = config.channels.webchat;
  const defaultAgent = config.defaultAgent ?? config.agents[0]!.id;
  const router = createChannelRouter(
    config.channels.bindings,
    config.agents.map((agent) => agent.id),
  );
  return {
    enabled: webchat.enabled,
    agentFor: (userId) =>
      router.agentFor({ channel: 'webchat', account: 'webchat', chatId: userId, userId }) ?? defaultAgent,
    turnTimeoutMs: Math.max(...config.agents.map((agent) => agent.turnTimeoutMs)) + 5000,
    options: {
      public: webchat.public,
      dmPolicy: webchat.dmPolicy,
      allowlist: webchat.allowlist,
      rateLimit: webchat.rateLimit,
      dedupeTtlMs: config.gateway.idempotencyTtlSeconds * 1000,
    },
  };
}

/**
 * Registers the web chat as `config` sets it up; does nothing (returns `undefined`) when
 * `channels.webchat.enabled` is false.
 */
export function registerWebChatFromConfig(
  app: FastifyInstance,
  config: Config,
  deps: Pick<WebChatDeps, 'conversation' | 'dedupe' | 'store' | 'auth' | 'logger' | 'limits'>,
): WebChat | undefined {
  const { enabled, ...settings } = webChatSettings(config);
  return enabled ? registerWebChat(app, { ...deps, ...settings }) : undefined;
}

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AuditLog, startAuditLog } from '../bus/audit.ts';
import { createMemoryBus } from '../bus/memory.ts';
import { createEventPublisher } from '../bus/publisher.ts';
import type { Bus } from '../bus/types.ts';
import type { Config } from '../config/schema.ts';
import { type ConversationService, createConversationService } from '../conversation/service.ts';
import { conversationContract } from '../core/contracts/conversation.ts';
import { gatewayContract } from '../core/contracts/gateway.ts';
import { modelsContract } from '../core/contracts/models.ts';
import { skillsContract } from '../core/contracts/skills.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createGatewayHandlers } from '../gateway/service.ts';
import { createLocalProvider } from '../models/providers/local/provider.ts';
import { createModelsService } from '../models/service.ts';
import type { ModelProvider } from '../models/types.ts';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import { rpcMetrics } from '../observability/rpc-metrics.ts';
import { createHookRunner } from '../plugins/hooks.ts';
import { loadPlugins } from '../plugins/loader.ts';
import type { ClawmeshPlugin, HookRunner } from '../plugins/types.ts';
import type { Skill } from '../skills/define.ts';
import { createSkillHost } from '../skills/host.ts';
import { loadSkills } from '../skills/loader.ts';
import { createStores } from '../store/index.ts';
import type { ConversationStore, DedupeStore } from '../store/types.ts';
import { createLocalTransport } from '../transport/local.ts';
import type { Transport } from '../transport/types.ts';
import { checkAgents } from './check-agents.ts';

/** The built-in example skills, beside `src/` (or `dist/src/`) in the package. */
export const BUILTIN_SKILLS = fileURLToPath(new URL('../../examples/skills', import.meta.url));

/** Everything a process runs, wired over one transport. */
export interface Services {
  transport: Transport;
  bus: Bus;
  conversations: ConversationStore;
  dedupe: DedupeStore;
  hooks: HookRunner;
  conversation: ConversationService;
  /** Releases stores, the bus and the audit file. */
  close(): Promise<void>;
}

/** Skills and plugins given as objects by an embedder, beside those the config names. */
export interface ServiceExtras {
  skills?: Skill[];
  plugins?: ClawmeshPlugin[];
}

/** Builds the four services of a monolith and serves them on the local transport. */
export async function buildServices(
  config: Config,
  baseDir: string,
  logger: Logger,
  metrics: Metrics,
  extras: ServiceExtras = {},
): Promise<Services> {
  const skills = [
    ...(await loadSkills(config.skills.load, { baseDir, builtinDir: BUILTIN_SKILLS })),
    ...(extras.skills ?? []),
  ];
  const skillHost = createSkillHost({
    skills,
    secrets: (skill) => {
      const fromEnv: Record<string, string> = {};
      for (const name of skill.secrets ?? []) {
        const value = process.env[name];
        if (value !== undefined) fromEnv[name] = value;
      }
      return { ...fromEnv, ...config.skills.secrets[skill.name] };
    },
    defaultTimeoutMs: config.skills.timeoutMs,
    logger,
    metrics,
  });

  const providers: ModelProvider[] = [createLocalProvider()];
  const openai = config.models.openai;
  if (openai.apiKey) {
    // Loaded only when configured: the SDK costs about 13 MB of RSS and 60 ms of start-up.
    const { createOpenAIProvider } = await import('../models/providers/openai/provider.ts');
    providers.push(
      createOpenAIProvider({
        apiKey: openai.apiKey,
        model: openai.model,
        timeoutMs: openai.timeoutMs,
        ...(openai.baseUrl ? { baseURL: openai.baseUrl } : {}),
      }),
    );
  }
  checkAgents(
    config,
    skills.map((skill) => skill.name),
    providers.map((provider) => provider.name),
  );
  const models = createModelsService({ providers, defaultModel: config.models.default ?? 'local' });

  const plugins = [...(await loadPlugins(config.plugins, { baseDir, logger })), ...(extras.plugins ?? [])];
  const hooks = createHookRunner({ plugins, logger, metrics, defaultTimeoutMs: config.pluginTimeoutMs });
  if (plugins.length > 0) logger.info({ plugins: plugins.map((p) => p.name) }, 'plugins loaded');

  // State last: nothing above can fail with a store or a file left open.
  const stores = createStores({
    kind: config.store.kind,
    path: config.store.path === ':memory:' ? ':memory:' : resolve(baseDir, config.store.path),
    thread: config.store.thread,
  });
  // Fail at start, naming the store, rather than on the first message.
  await stores.conversations.ping().catch(async (err: unknown) => {
    await stores.close().catch(() => undefined);
    throw new ClawmeshError(
      'UNAVAILABLE',
      `the ${config.store.kind} store at ${config.store.path} is not usable: ${String((err as Error).message ?? err)}`,
      { cause: err },
    );
  });
  const bus = createMemoryBus({ logger });
  const events = createEventPublisher(bus, logger, metrics);
  let audit: AuditLog | undefined;
  if (config.audit.enabled) audit = await startAuditLog(bus, resolve(baseDir, config.audit.path));

  const transport = createLocalTransport();
  const middleware = [rpcMetrics(metrics)];
  await transport.serve(modelsContract, models);
  await transport.serve(skillsContract, skillHost.handlers);
  const conversation = createConversationService({
    agents: config.agents,
    defaultAgentId: config.defaultAgent ?? config.agents[0]!.id,
    store: stores.conversations,
    models: transport.client(modelsContract, middleware),
    skills: transport.client(skillsContract, middleware),
    hooks,
    events,
    logger,
    metrics,
  });
  await transport.serve(conversationContract, conversation.handlers);
  await transport.serve(gatewayContract, createGatewayHandlers());

  return {
    transport,
    bus,
    conversations: stores.conversations,
    dedupe: stores.dedupe,
    hooks,
    conversation,
    async close() {
      await transport.close();
      await bus.drain();
      await audit?.close();
      await bus.close();
      await stores.close();
    },
  };
}

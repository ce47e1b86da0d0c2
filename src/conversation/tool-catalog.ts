import type { AgentConfig } from '../config/schema.ts';
import type { CallContext } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import type { skillsContract, ToolDescriptor } from '../core/contracts/skills.ts';
import { qualifiedToolName, type ToolSpec } from '../core/messages.ts';
import { callFields, type Logger } from '../observability/logger.ts';

/** The tools an agent offers the model, with what they cost in the context window. */
export interface AgentTools {
  specs: ToolSpec[];
  /** Estimated tokens of the tool schemas. */
  reservedTokens: number;
  /** The skills the agent may call; `undefined` when it may call any. */
  allowed?: ReadonlySet<string>;
}

/**
 * Caches each agent's tool list. A list is asked again after `refreshMs` (skill hosts come and
 * go in a split deployment), in the background: turns keep the previous list meanwhile. A
 * failed lookup is retried on the next turn; with no list at all (every skill host of the agent
 * down) the turn goes on without tools, logged, rather than failing: the model can still answer
 * what needs none.
 */
export function createToolCatalog(
  skills: Client<typeof skillsContract>,
  logger?: Logger,
  refreshMs = 30_000,
) {
  const cache = new Map<string, Promise<AgentTools>>();
  const loadedAt = new Map<string, number>();
  const load = async (agent: AgentConfig, ctx: CallContext): Promise<AgentTools> => {
    const { tools } = await skills.list(agent.skills ? { skills: agent.skills } : {}, ctx);
    const specs = tools.map(toSpec);
    const reservedTokens = Math.ceil(JSON.stringify(specs).length / 4);
    return { specs, reservedTokens, ...allowedOf(agent) };
  };
  return {
    toolsFor(agent: AgentConfig, ctx: CallContext): Promise<AgentTools> {
      const withoutTools = (err: unknown): AgentTools => {
        logger?.warn(
          {
            ...callFields(ctx),
            agentId: agent.id,
            code: (err as { code?: string })?.code,
            err: (err as Error)?.message ?? String(err),
          },
          'no skill host answered for this agent: the turn goes on without tools',
        );
        return { specs: [], reservedTokens: 0, ...allowedOf(agent) };
      };
      const entry = cache.get(agent.id);
      // A fresh entry may still be the first lookup, pending: the turns that share it go on
      // without tools if it fails, as the turn that started it does.
      if (entry && performance.now() - (loadedAt.get(agent.id) ?? 0) < refreshMs)
        return entry.catch(withoutTools);
      loadedAt.set(agent.id, performance.now());
      const next = load(agent, ctx);
      next.then(
        () => cache.set(agent.id, next),
        () => {
          if (cache.get(agent.id) === next) cache.delete(agent.id);
        },
      );
      if (entry) return entry.catch(() => next).catch(withoutTools);
      cache.set(agent.id, next);
      return next.catch(withoutTools);
    },
  };
}

/** The skills an agent may call, when it names them. */
const allowedOf = (agent: AgentConfig): Pick<AgentTools, 'allowed'> =>
  agent.skills ? { allowed: new Set(agent.skills) } : {};

function toSpec(tool: ToolDescriptor): ToolSpec {
  return {
    name: qualifiedToolName(tool.skill, tool.tool),
    description: tool.description,
    parameters: tool.inputSchema,
  };
}

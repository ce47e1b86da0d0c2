import type { AgentConfig } from '../config/schema.ts';
import type { CallContext } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import type { skillsContract, ToolDescriptor } from '../core/contracts/skills.ts';
import { qualifiedToolName, type ToolSpec } from '../core/messages.ts';

/** The tools an agent offers the model, with what they cost in the context window. */
export interface AgentTools {
  specs: ToolSpec[];
  /** Estimated tokens of the tool schemas. */
  reservedTokens: number;
  /** The skills the agent may call; `undefined` when it may call any. */
  allowed?: ReadonlySet<string>;
}

/** Caches each agent's tool list, asked of the skill hosts once (a failed lookup is retried next turn). */
export function createToolCatalog(skills: Client<typeof skillsContract>) {
  const cache = new Map<string, Promise<AgentTools>>();
  const load = async (agent: AgentConfig, ctx: CallContext): Promise<AgentTools> => {
    const { tools } = await skills.list(agent.skills ? { skills: agent.skills } : {}, ctx);
    const specs = tools.map(toSpec);
    const reservedTokens = Math.ceil(JSON.stringify(specs).length / 4);
    return { specs, reservedTokens, ...(agent.skills ? { allowed: new Set(agent.skills) } : {}) };
  };
  return {
    toolsFor(agent: AgentConfig, ctx: CallContext): Promise<AgentTools> {
      let entry = cache.get(agent.id);
      if (!entry) {
        entry = load(agent, ctx);
        cache.set(agent.id, entry);
        entry.catch(() => cache.delete(agent.id));
      }
      return entry;
    },
  };
}

function toSpec(tool: ToolDescriptor): ToolSpec {
  return {
    name: qualifiedToolName(tool.skill, tool.tool),
    description: tool.description,
    parameters: tool.inputSchema,
  };
}

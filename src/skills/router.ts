import { type CallContext, withTimeout } from '../core/context.ts';
import type { CallMiddleware, Client, Contract } from '../core/contract.ts';
import { skillsContract, type ToolDescriptor } from '../core/contracts/skills.ts';
import { ClawmeshError } from '../core/errors.ts';
import { callFields, type Logger } from '../observability/logger.ts';
import type { Registration, Transport } from '../transport/types.ts';
import type { SkillHost } from './host.ts';

/** The service name of one skill: `skills.<name>` (NATS subject `clawmesh.skills.<name>.<method>`). */
export function skillServiceName(skill: string): string {
  return `skills.${skill}`;
}

const contracts = new Map<string, Contract<typeof skillsContract.methods>>();

/**
 * The skills contract under one skill's service name. Each skill is its own service, so a
 * skill host serves any set of skills and callers reach each skill wherever its host runs.
 */
export function skillServiceContract(skill: string): Contract<typeof skillsContract.methods> {
  let contract = contracts.get(skill);
  if (!contract) {
    contract = { ...skillsContract, name: skillServiceName(skill) };
    contracts.set(skill, contract);
  }
  return contract;
}

/** Serves every skill of a host, each under its own service name. */
export async function serveSkillHost(transport: Transport, host: SkillHost): Promise<Registration> {
  const registrations = await Promise.all(
    host.skills.map((skill) => transport.serve(skillServiceContract(skill.name), host.handlers)),
  );
  return {
    async close() {
      await Promise.all(registrations.map((registration) => registration.close()));
    },
  };
}

/** Options of {@link createSkillRouter}. */
export interface SkillRouterOptions {
  transport: Transport;
  middleware?: readonly CallMiddleware[];
  /** The skills callers may use when a list request names none. */
  skills: readonly string[];
  logger: Logger;
  /**
   * The longest wait for one skill's tool list, in milliseconds (default 2000), within the
   * caller's deadline: a skill host that hangs costs a turn this much, not its whole deadline.
   */
  listTimeoutMs?: number;
}

/**
 * A client of the skills contract that sends each call to the service of its skill. Listing
 * asks every named skill's service; a skill whose service does not answer, within
 * `listTimeoutMs`, is left out (and logged) so one missing or hung skill host does not stop
 * every turn.
 */
export function createSkillRouter(options: SkillRouterOptions): Client<typeof skillsContract> {
  const { transport, middleware = [], logger, listTimeoutMs = 2000 } = options;
  const clients = new Map<string, Client<typeof skillsContract>>();
  const clientOf = (skill: string) => {
    let client = clients.get(skill);
    if (!client) {
      client = transport.client(skillServiceContract(skill), middleware);
      clients.set(skill, client);
    }
    return client;
  };

  return {
    async list(input, ctx: CallContext) {
      const names = [...new Set(input?.skills ?? options.skills)];
      const listCtx = withTimeout(ctx, listTimeoutMs);
      const settled = await Promise.allSettled(
        names.map((name) => clientOf(name).list({ skills: [name] }, listCtx)),
      );
      const tools: ToolDescriptor[] = [];
      const failed: { skill: string; error: unknown }[] = [];
      settled.forEach((outcome, index) => {
        if (outcome.status === 'fulfilled') tools.push(...outcome.value.tools);
        else failed.push({ skill: names[index]!, error: outcome.reason });
      });
      if (failed.length > 0 && failed.length === names.length) {
        const first = failed[0]!.error;
        throw first instanceof ClawmeshError
          ? first
          : new ClawmeshError('UNAVAILABLE', `no skill service answered: ${String(first)}`, { cause: first });
      }
      for (const { skill, error } of failed) {
        logger.warn(
          { ...callFields(ctx), skill, err: (error as Error)?.message ?? String(error) },
          `skill "${skill}" is unavailable; its tools are left out for now`,
        );
      }
      return { tools };
    },
    invoke(request, ctx) {
      return clientOf(request.skill).invoke(request, ctx);
    },
  };
}

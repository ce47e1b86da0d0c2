import type { Role } from '../config/schema-topology.ts';
import { createCallContext } from '../core/context.ts';
import { conversationContract } from '../core/contracts/conversation.ts';
import { modelsContract } from '../core/contracts/models.ts';
import { randomHex } from '../core/ids.ts';
import type { ReadinessCheck } from '../http/ops-routes.ts';
import { skillServiceContract, skillServiceName } from '../skills/router.ts';
import type { Transport } from '../transport/types.ts';

/** What {@link serviceChecks} needs to know about the process. */
export interface ServiceChecksOptions {
  /** The roles this process runs: the services it calls are the ones it does not run. */
  roles: ReadonlySet<Role>;
  transport: Transport;
  /** The skills the conversation role calls. */
  skills: readonly string[];
  /** The longest wait for one probe, in milliseconds (default 1500). */
  timeoutMs?: number;
}

/**
 * Readiness checks that the services a role calls answer over a remote transport: the gateway
 * pings the conversation service (an answer that counts as no error, in metrics or in the NATS
 * service stats), the conversation role lists the models and each skill's tools. The
 * probes' traces are not sampled, so they never reach the trace backend. A process running
 * every role calls nothing (none). Over the `local` transport a role without the ones it calls
 * (`clawmesh start conversation` alone) cannot reach them: its checks fail, as its turns would,
 * rather than report ready.
 */
export function serviceChecks(options: ServiceChecksOptions): ReadinessCheck[] {
  const { roles, transport } = options;
  const timeoutMs = options.timeoutMs ?? 1500;
  // flags 00: not sampled, so neither side records a span for a probe.
  const ctx = () => createCallContext({ timeoutMs, traceparent: `00-${randomHex(16)}-${randomHex(8)}-00` });
  const checks: ReadinessCheck[] = [];
  if (roles.has('gateway') && !roles.has('conversation')) {
    const conversation = transport.client(conversationContract);
    checks.push({
      name: 'service:conversation',
      check: () => conversation.ping({}, ctx()).then(() => undefined),
    });
  }
  if (roles.has('conversation')) {
    if (!roles.has('models')) {
      const models = transport.client(modelsContract);
      checks.push({ name: 'service:models', check: () => models.list({}, ctx()).then(() => undefined) });
    }
    if (!roles.has('skills')) {
      for (const skill of new Set(options.skills)) {
        const client = transport.client(skillServiceContract(skill));
        checks.push({
          name: `service:${skillServiceName(skill)}`,
          check: () => client.list({ skills: [skill] }, ctx()).then(() => undefined),
        });
      }
    }
  }
  return checks;
}

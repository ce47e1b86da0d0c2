import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { VERSION } from '../../cli/version.ts';
import type { Config } from '../../config/schema.ts';
import type { ApiKeyCheck } from '../../gateway/auth.ts';
import { INSTANCE_ID, serviceNameOf } from '../../runtime/instance.ts';
import type { Services } from '../../runtime/services.ts';
import type { NatsTransport } from '../../transport/nats.ts';
import { registerDashboard } from './index.ts';
import { createServicesView } from './services.ts';
import { startUsageFeed, type UsageFeed } from './usage.ts';

/** What {@link registerProcessDashboard} reads from a Clawmesh process. */
export interface ProcessDashboardOptions {
  config: Config;
  /** Where the config's relative paths resolve from (the audit file's). */
  baseDir: string;
  services: Services;
  auth: ApiKeyCheck;
}

/** The consumer group of the dashboard's usage feed. */
export const USAGE_GROUP = 'dashboard';

/**
 * The dashboard of one process, from what it runs: its roles and readiness checks; over the
 * nats transport, every instance of the deployment (NATS `$SRV` discovery, this deployment's
 * subject prefix); its conversation store and audit file; model usage counted from
 * `model.completed` events. The usage feed runs where the events reach it whole: on an
 * in-process bus every process counts its own; on a shared bus the conversation role counts
 * (one consumer group, as for the audit log). It stops when the HTTP server closes.
 */
export async function registerProcessDashboard(
  app: FastifyInstance,
  options: ProcessDashboardOptions,
): Promise<void> {
  const { config, services } = options;
  const transport = services.transport;
  const nats = transport.kind === 'nats' ? (transport as NatsTransport) : undefined;
  const counts = services.bus.kind === 'memory' || services.roles.has('conversation');
  let usage: UsageFeed | undefined;
  if (counts) {
    usage = await startUsageFeed(services.bus, USAGE_GROUP);
    const feed = usage;
    app.addHook('onClose', () => feed.close());
  }
  registerDashboard(app, {
    auth: options.auth,
    services: createServicesView({
      process: {
        name: serviceNameOf([...services.roles]),
        instance: INSTANCE_ID,
        version: VERSION,
        roles: [...services.roles],
        transport: transport.kind,
      },
      checks: services.checks,
      ...(nats
        ? {
            discover: {
              kind: 'nats',
              instances: async () =>
                (await import('../../transport/nats-discovery.ts')).listServices(nats.connection, {
                  subjectPrefix: config.nats.subjectPrefix,
                }),
              localIds: () => nats.instances().map((instance) => instance.id),
            },
          }
        : {}),
    }),
    conversations: services.conversations,
    auditFile: config.audit.enabled ? resolve(options.baseDir, config.audit.path) : undefined,
    usage: usage?.view,
  });
}

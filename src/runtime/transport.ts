import type { FastifyInstance } from 'fastify';
import type { Config } from '../config/schema.ts';
import { ClawmeshError } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { traceTransport } from '../observability/rpc-tracing.ts';
import { createTransport } from '../transport/factory.ts';
import type { Transport } from '../transport/types.ts';
import type { Connections } from './connections.ts';
import { INSTANCE_ID } from './instance.ts';
import { skillNamesOf } from './skill-names.ts';

/** What {@link openTransport} needs beside the config. */
export interface TransportDeps {
  connections: Connections;
  logger: Logger;
  /** The process's HTTP server: the `http` transport serves `POST /rpc/...` on it. */
  http?: FastifyInstance;
  env?: NodeJS.ProcessEnv;
}

/**
 * The environment variable holding a service's URL for the `http` transport:
 * `conversation` → `CONVERSATION_SERVICE_URL`, `skills.inventory` → `SKILLS_INVENTORY_SERVICE_URL`.
 */
export function serviceUrlVariable(service: string): string {
  return `${service.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_SERVICE_URL`;
}

/**
 * The URLs of a service for the `http` transport: its variable, then `transport.urls`; for a
 * skill, `SKILLS_SERVICE_URL` / `transport.urls.skills` (a host serving every skill) after that.
 * A comma-separated value lists replicas.
 */
export function serviceUrls(config: Config, env: NodeJS.ProcessEnv, service: string): string[] | undefined {
  const skill = service.startsWith('skills.');
  const value =
    env[serviceUrlVariable(service)] ??
    config.transport.urls[service] ??
    (skill ? (env.SKILLS_SERVICE_URL ?? config.transport.urls.skills) : undefined);
  if (!value) return undefined;
  const urls = value
    .split(',')
    .map((url) => url.trim())
    .filter(Boolean);
  return urls.length > 0 ? urls : undefined;
}

/**
 * Where {@link serviceUrls} found a service's URLs, as an operator would change it: the
 * service's variable, `transport.urls.<service>`, `SKILLS_SERVICE_URL` or `transport.urls.skills`.
 */
export function serviceUrlSource(config: Config, env: NodeJS.ProcessEnv, service: string): string {
  const own = serviceUrlVariable(service);
  if (env[own]) return own;
  if (config.transport.urls[service]) return `transport.urls.${service}`;
  if (service.startsWith('skills.')) {
    if (env.SKILLS_SERVICE_URL) return 'SKILLS_SERVICE_URL';
    if (config.transport.urls.skills) return 'transport.urls.skills';
  }
  return own;
}

/**
 * Stops a process over the `http` transport that could answer nothing: a gateway role without
 * the conversation service's URL, a conversation role without the models service's, or a URL
 * of a service it calls that is not an http(s) URL (`127.0.0.1:8080`, a typo). Every call would
 * otherwise fail, the missing ones at their deadline. A skill without a URL is not an error: it
 * is left out of the agents' tools, like a skill whose host is down.
 */
export function assertServiceUrls(config: Config, env: NodeJS.ProcessEnv): void {
  if (config.transport.kind !== 'http') return;
  const roles = new Set(config.roles);
  const called: { service: string; caller: string; required: boolean }[] = [];
  if (roles.has('gateway') && !roles.has('conversation'))
    called.push({ service: 'conversation', caller: 'gateway', required: true });
  if (roles.has('conversation')) {
    if (!roles.has('models')) called.push({ service: 'models', caller: 'conversation', required: true });
    if (!roles.has('skills')) {
      for (const skill of skillNamesOf(config))
        called.push({ service: `skills.${skill}`, caller: 'conversation', required: false });
    }
  }
  const problems = new Set<string>();
  for (const { service, caller, required } of called) {
    const urls = serviceUrls(config, env, service);
    if (!urls) {
      if (required) {
        problems.add(
          `transport.urls.${service}: the ${caller} role calls the ${service} service over the http transport, and it has no URL (set ${serviceUrlVariable(service)}=http://<host>:<port> of the process running \`clawmesh start ${service}\`)`,
        );
      }
      continue;
    }
    const source = serviceUrlSource(config, env, service);
    const key = source.startsWith('transport.urls.') ? source : `transport.urls.${service}`;
    const setBy = source.startsWith('transport.urls.') ? '' : ` (set by ${source})`;
    for (const url of urls) {
      if (!isHttpUrl(url))
        problems.add(`${key}: "${url}" is not an http or https URL such as http://<host>:<port>${setBy}`);
    }
  }
  if (problems.size > 0) {
    throw new ClawmeshError('INVALID_ARGUMENT', `invalid configuration:\n  ${[...problems].join('\n  ')}`);
  }
}

function isHttpUrl(text: string): boolean {
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/** {@link serviceUrls} worked out once per service: the http transport asks on every call. */
function urlsOnce(config: Config, env: NodeJS.ProcessEnv): (service: string) => string[] | undefined {
  const known = new Map<string, string[] | undefined>();
  return (service) => {
    if (!known.has(service)) known.set(service, serviceUrls(config, env, service));
    return known.get(service);
  };
}

/**
 * Opens the transport of `config.transport.kind`, sharing the process's NATS connection, and
 * traced when tracing is on.
 */
export async function openTransport(config: Config, deps: TransportDeps): Promise<Transport> {
  return traceTransport(await open(config, deps));
}

async function open(config: Config, deps: TransportDeps): Promise<Transport> {
  const maxPayloadBytes = config.transport.payloadLimitBytes;
  switch (config.transport.kind) {
    case 'local':
      return createTransport({ kind: 'local' });
    case 'http': {
      const env = deps.env ?? process.env;
      assertServiceUrls(config, env);
      return createTransport({
        kind: 'http',
        urls: urlsOnce(config, env),
        ...(deps.http ? { app: deps.http } : {}),
        maxPayloadBytes,
        logger: deps.logger,
      });
    }
    case 'nats':
      return createTransport({
        kind: 'nats',
        connection: await deps.connections.nats(),
        subjectPrefix: config.nats.subjectPrefix,
        livenessMs: config.nats.livenessMs,
        maxPayloadBytes,
        logger: deps.logger,
        instance: INSTANCE_ID,
      });
  }
}

import { parseArgs } from 'node:util';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { redact } from '../runtime/connections.ts';
import { listServices, type ServiceInstance } from '../transport/nats-discovery.ts';

/** Where a command writes, and the environment it reads; the process's own by default. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: Record<string, string | undefined>;
}

const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env };

const USAGE = `Usage: clawmesh status [--config FILE] [--transport nats|http] [--nats-url URL] [--subject-prefix PREFIX] [--json]

Over NATS (the default): lists the service instances running on NATS with their endpoints'
requests, errors and average processing time ($SRV discovery).
Over http (--transport http, or CLAWMESH_TRANSPORT=http): asks each service named by a
<SERVICE>_SERVICE_URL variable (CONVERSATION_SERVICE_URL, MODELS_SERVICE_URL,
SKILLS_INVENTORY_SERVICE_URL, ...) for its /healthz and /readyz.

  -c, --config FILE         the deployment's config: its transport.kind, nats.url,
                            nats.subjectPrefix and transport.urls, with the environment's
                            overrides, as the services read them (options still win)
  --transport nats|http     how the deployment's services call each other (default:
                            CLAWMESH_TRANSPORT when it is http, else nats)
  --nats-url URL            the NATS server (default: NATS_URL, then nats://127.0.0.1:4222)
  --subject-prefix PREFIX   only one deployment's instances, when several share the server
                            (its nats.subjectPrefix; default: CLAWMESH_NATS__SUBJECT_PREFIX,
                            else every instance)
  --json                    print the instances as JSON
`;

/**
 * `clawmesh status`: the service instances running on NATS, as a table (or JSON with `--json`).
 * Exits 0 when NATS answered (even with no instance), 1 when it cannot be reached, 2 on bad
 * arguments.
 */
export async function runStatus(args: readonly string[], io: CliIo = processIo): Promise<number> {
  let values: {
    transport?: string | undefined;
    config?: string | undefined;
    'nats-url'?: string | undefined;
    'subject-prefix'?: string | undefined;
    json?: boolean | undefined;
    help?: boolean | undefined;
  };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string', short: 'c' },
        transport: { type: 'string' },
        'nats-url': { type: 'string' },
        'subject-prefix': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    io.stderr.write(`clawmesh status: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    io.stdout.write(USAGE);
    return 0;
  }
  let config: Config | undefined;
  if (values.config !== undefined) {
    try {
      config = loadConfig({ file: values.config, env: io.env }).config;
    } catch (err) {
      io.stderr.write(`clawmesh status: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const configured = config?.transport.kind === 'http' ? 'http' : config ? 'nats' : undefined;
  const transport =
    values.transport ?? configured ?? (io.env.CLAWMESH_TRANSPORT === 'http' ? 'http' : 'nats');
  if (transport !== 'nats' && transport !== 'http') {
    io.stderr.write(`clawmesh status: --transport must be nats or http, not "${transport}"\n\n${USAGE}`);
    return 2;
  }
  if (transport === 'http') return httpStatus(io, values.json === true, config?.transport.urls ?? {});
  const url = values['nats-url'] ?? config?.nats.url ?? io.env.NATS_URL ?? 'nats://127.0.0.1:4222';
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: url.split(',').map((server) => server.trim()),
      name: 'clawmesh-status',
      timeout: 3000,
      maxReconnectAttempts: 0,
      noAsyncTraces: true,
    });
  } catch (err) {
    io.stderr.write(
      `clawmesh status: cannot reach NATS at ${redact(url)}: ${(err as Error).message}\n` +
        'Start a NATS server (nats-server, or the nats service of deploy/docker-compose.yml), ' +
        'or point to yours with --nats-url URL or NATS_URL.\n',
    );
    return 1;
  }
  try {
    const subjectPrefix =
      values['subject-prefix'] ?? config?.nats.subjectPrefix ?? io.env.CLAWMESH_NATS__SUBJECT_PREFIX;
    const instances = await listServices(nc, subjectPrefix ? { subjectPrefix } : {});
    if (values.json) io.stdout.write(`${JSON.stringify(instances, null, 2)}\n`);
    else io.stdout.write(formatStatus(instances, redact(url)));
    return 0;
  } finally {
    await nc.close();
  }
}

/** \`clawmesh status\` of an http deployment: each service URL's health and readiness. */
async function httpStatus(
  io: CliIo,
  json: boolean,
  configured: Readonly<Record<string, string>>,
): Promise<number> {
  const { formatHttpStatus, probeService, serviceUrlsOf } = await import('./status-http.ts');
  // The variables win over the config's transport.urls, as in the services themselves.
  const fromEnv = serviceUrlsOf(io.env);
  const named = new Set(fromEnv.map(([service]) => service));
  const fromConfig = Object.entries(configured)
    .filter(([service]) => !named.has(service))
    .flatMap(([service, value]) =>
      value
        .split(',')
        .map((url) => url.trim())
        .filter(Boolean)
        .map((url): [string, string] => [service, url]),
    );
  const urls = [...fromEnv, ...fromConfig].sort(([a], [b]) => a.localeCompare(b));
  if (urls.length === 0) {
    io.stderr.write(
      'clawmesh status: no service URL is set. Over http, services are found by their ' +
        '<SERVICE>_SERVICE_URL variables (CONVERSATION_SERVICE_URL, MODELS_SERVICE_URL, ' +
        'SKILLS_INVENTORY_SERVICE_URL, ...) or the transport.urls of its config (--config FILE): ' +
        'set them as the deployment does.\n',
    );
    return 1;
  }
  const services = await Promise.all(urls.map(([service, url]) => probeService(service, url)));
  io.stdout.write(json ? `${JSON.stringify(services, null, 2)}\n` : formatHttpStatus(services));
  return services.every((s) => s.reachable) ? 0 : 1;
}

/** The instances as a table, one row per endpoint, and a summary line. */
export function formatStatus(instances: readonly ServiceInstance[], url: string): string {
  if (instances.length === 0) return `no service instances are running on NATS at ${url}\n`;
  const header = [
    'SERVICE',
    'VERSION',
    'INSTANCE',
    'HOST',
    'ENDPOINT',
    'REQUESTS',
    'ERRORS',
    'AVG MS',
    'LAST ERROR',
  ];
  const rows: string[][] = [];
  for (const instance of instances) {
    const host = [instance.metadata.hostname, instance.metadata.pid].filter(Boolean).join(':');
    const first = [instance.contract ?? instance.name, instance.version, instance.id, host];
    if (instance.endpoints.length === 0) rows.push([...first, '-', '0', '0', '-', '']);
    instance.endpoints.forEach((endpoint, index) => {
      rows.push([
        ...(index === 0 ? first : ['', '', '', '']),
        endpoint.name,
        String(endpoint.requests),
        String(endpoint.errors),
        endpoint.averageMs.toFixed(3),
        (endpoint.lastError ?? '').slice(0, 60),
      ]);
    });
  }
  const numeric = new Set([5, 6, 7]);
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column]!.length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        numeric.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!),
      )
      .join('  ')
      .trimEnd();
  const services = new Set(instances.map((instance) => instance.contract ?? instance.name)).size;
  const summary = `${instances.length} instance${instances.length === 1 ? '' : 's'} of ${services} service${services === 1 ? '' : 's'} on ${url}`;
  return `${[line(header), ...rows.map(line)].join('\n')}\n\n${summary}\n`;
}

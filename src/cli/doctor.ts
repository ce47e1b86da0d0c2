import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { type ConfigFileProblem, loadConfig } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { ChannelsConfigSchema } from '../config/schema-channels.ts';
import type { Role } from '../config/schema-topology.ts';
import { ClawmeshError } from '../core/errors.ts';
import { channelStatuses } from '../gateway/channels/index.ts';
import { silentLogger } from '../observability/logger.ts';
import { otlpHeadersFromEnv, tracingEnv } from '../observability/otel-env.ts';
import { OTLP_CONTENT_TYPES, otlpProtocolFromEnv } from '../observability/otlp-sink.ts';
import {
  probeHttp,
  probeNats,
  probeOtlp,
  probePostgres,
  probeRabbitMq,
  probeRedis,
  probeWritable,
} from '../observability/probes.ts';
import { samplerChoiceFromEnv } from '../observability/sampler.ts';
import { loadPlugins } from '../plugins/loader.ts';
import { checkAgents, configuredModelNames } from '../runtime/check-agents.ts';
import { redact } from '../runtime/connections.ts';
import { BUILTIN_SKILLS } from '../runtime/services.ts';
import { skillNamesOf } from '../runtime/skill-names.ts';
import { serviceUrlSource, serviceUrls, serviceUrlVariable } from '../runtime/transport.ts';
import { createSkillHost } from '../skills/host.ts';
import { loadSkills } from '../skills/loader.ts';
import { createStores } from '../store/index.ts';
import { channelOnDetail } from './doctor-channels.ts';
import { type Check, type CheckResult, failedResult, Problem, printReport, reason } from './doctor-check.ts';
import { gatewayCheck, providerChecks } from './doctor-providers.ts';

const COMPOSE = 'docker compose -f deploy/docker-compose.yml up -d';

/** How to reach each server a config can name, and how to fix it when it does not answer. */
const SERVERS = {
  redis: {
    label: 'Redis',
    variable: 'REDIS_URL',
    url: (config: Config) => config.redis.url,
    probe: (url: string) => probeRedis(url),
    start: `start Redis (\`redis-server\`, or \`${COMPOSE} redis\`)`,
    refused: /WRONGPASS|NOAUTH|NOPERM|AUTH .*without any password|invalid username-password/i,
    credentials: 'the user and password',
  },
  nats: {
    label: 'NATS',
    variable: 'NATS_URL',
    url: (config: Config) => config.nats.url,
    probe: (url: string, config: Config) => probeNats(url, { jetstream: config.bus.kind === 'nats' }),
    start: `start NATS with JetStream (\`nats-server -js\`, or \`${COMPOSE} nats\`)`,
    refused: /authorization violation|authentication/i,
    credentials: 'the user and password (or token)',
  },
  postgres: {
    label: 'PostgreSQL',
    variable: 'DATABASE_URL',
    url: (config: Config) => config.postgres.url,
    probe: (url: string) => probePostgres(url),
    start: 'start PostgreSQL',
    refused:
      /password authentication failed|database ".*" does not exist|role ".*" does not exist|pg_hba\.conf|SASL/i,
    credentials: 'the user, password and database name (create the database if it is missing)',
  },
  rabbitmq: {
    label: 'RabbitMQ',
    variable: 'RABBITMQ_URL',
    url: (config: Config) => config.rabbitmq.url,
    probe: (url: string) => probeRabbitMq(url),
    start: 'start RabbitMQ (`docker run -p 5672:5672 rabbitmq:3`)',
    refused: /ACCESS[-_]REFUSED|NOT[-_]ALLOWED|vhost/i,
    credentials: 'the user, password and vhost',
  },
} as const;
type Server = keyof typeof SERVERS;

/**
 * `clawmesh doctor`: validates the config, then checks every dependency it names — the store
 * (SQLite file writable, Redis or PostgreSQL answering), the turn lease, the event bus's
 * broker, the transport (NATS, or each service URL of the http transport), skills, plugins,
 * agents, each model provider's server, the channels' secrets and the OTLP endpoint of tracing.
 * Prints one line per check, with a `fix:` line under each problem (or, with `json`, one JSON
 * object); exits 1 when any check fails.
 */
export async function runDoctor(options: {
  configFile?: string | undefined;
  json?: boolean;
}): Promise<number> {
  const json = options.json ?? false;
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig(options.configFile ? { file: options.configFile } : {});
  } catch (err) {
    return printReport([failedResult('config', err, configFix(err, options.configFile))], { json });
  }
  const { config, baseDir, file } = loaded;
  const configResult: CheckResult = {
    name: 'config',
    status: 'ok',
    detail: file ?? 'no config file, defaults and environment',
  };
  const roles = new Set<Role>(config.roles);

  // Each server is probed once, however many lines depend on it.
  const probed = new Map<Server, Promise<string>>();
  const server = (kind: Server, usedFor: string) => async () => {
    const spec = SERVERS[kind];
    const url = spec.url(config);
    let found = probed.get(kind);
    if (!found) {
      found = spec.probe(url, config);
      probed.set(kind, found);
    }
    try {
      return `${kind} at ${redact(url)} (${await found})`;
    } catch (err) {
      // A server that answered and refused the URL's credentials or database runs: starting it is no fix.
      if (spec.refused.test(reason(err))) {
        throw new Problem(
          `${spec.label} at ${redact(url)} (${spec.variable}) refused the connection, needed for ${usedFor}: ${reason(err)}`,
          `the server runs: check ${spec.credentials} in ${spec.variable}`,
        );
      }
      throw new Problem(
        `cannot reach ${spec.label} at ${redact(url)} (${spec.variable}), needed for ${usedFor}: ${reason(err)}`,
        `${spec.start}, or set ${spec.variable} to a server that runs`,
      );
    }
  };

  const checks: Check[] = [
    { name: 'store', run: storeCheck(config, baseDir, server) },
    ...leaseChecks(config, roles, server),
    { name: 'bus', run: busCheck(config, server) },
    ...transportChecks(config, roles, server),
    {
      name: 'skills',
      run: async () => {
        const skills = await loadSkills(config.skills.load, { baseDir, builtinDir: BUILTIN_SKILLS });
        // What start does with them next: two skills of one name, or an input that is not an
        // object schema, stop it there, so they fail this check too.
        createSkillHost({ skills });
        return skills.map((skill) => `${skill.name}@${skill.version}`).join(', ') || 'none';
      },
    },
    {
      name: 'plugins',
      run: async () => {
        const plugins = await loadPlugins(config.plugins, { baseDir, logger: silentLogger() });
        return plugins.map((plugin) => plugin.name).join(', ') || 'none';
      },
    },
    {
      name: 'agents',
      run: async () => {
        const skills = await loadSkills(config.skills.load, { baseDir, builtinDir: BUILTIN_SKILLS });
        checkAgents(
          config,
          skills.map((skill) => skill.name),
          configuredModelNames(config),
        );
        const model = config.models.default ?? 'local';
        const note = model === 'local' ? ' (built-in; set OPENAI_API_KEY for a real model)' : '';
        return `${config.agents.map((agent) => agent.id).join(', ')}; default model ${model}${note}`;
      },
    },
    ...(roles.has('models') ? [gatewayCheck(config), ...providerChecks(config)] : []),
    ...channelChecks(config, roles.has('gateway')),
    ...(roles.has('conversation') ? [{ name: 'audit', run: auditCheck(config, baseDir) }] : []),
    { name: 'tracing', run: tracingCheck },
  ];

  // Every check at once (their timeouts overlap), reported in order.
  const outcomes = await Promise.all(
    checks.map((check) =>
      check.run().then(
        (detail) => ({ check, detail, error: undefined }),
        (error: unknown) => ({ check, detail: '', error }),
      ),
    ),
  );
  const results = outcomes.map(({ check, detail, error }): CheckResult => {
    if (error !== undefined) return failedResult(check.name, error);
    // A channel that is off is not a problem: it is listed with what turns it on.
    return { name: check.name, status: detail.startsWith('off') ? 'off' : 'ok', detail };
  });
  return printReport([configResult, ...results], { json, roles: [...roles] });
}

/**
 * What to do about a config that did not load: the file itself (missing, unreadable, not YAML, not
 * a mapping), named by `--config` or `CLAWMESH_CONFIG`, or a key in it or in a variable.
 */
function configFix(err: unknown, configFile: string | undefined): string {
  const details = err instanceof ClawmeshError ? err.details : undefined;
  const file = typeof details?.file === 'string' ? details.file : 'the config file';
  const elsewhere =
    configFile !== undefined
      ? 'or pass --config the path of an existing config file'
      : process.env.CLAWMESH_CONFIG
        ? 'set CLAWMESH_CONFIG to an existing config file, or unset it to use ./clawmesh.config.yaml or the defaults'
        : 'or remove it to run on the defaults';
  switch (details?.fileProblem as ConfigFileProblem | undefined) {
    case 'not-found':
      return `create ${file}, ${elsewhere}`;
    case 'unreadable':
      return `make ${file} a file this user can read, ${elsewhere}`;
    case 'not-yaml':
      return `correct the YAML syntax of ${file} at the line and column named above`;
    case 'not-a-mapping':
      return `make the top level of ${file} a mapping of keys (such as gateway: and agents:)`;
    default:
      return 'correct the key named above in the config file or its variable';
  }
}

type ServerCheck = (kind: Server, usedFor: string) => () => Promise<string>;

/**
 * Tracing: off without an OTLP endpoint; with one, the encoding and sampler variables are valid
 * and the endpoint takes an empty export in that encoding.
 */
async function tracingCheck(): Promise<string> {
  const otel = tracingEnv();
  if (otel.off) return `off (${otel.off})`;
  if (otel.invalid) {
    throw new Problem(
      otel.invalid,
      `set ${otel.variable} to the collector's URL with its scheme, such as http://otel-collector:4318${otel.variable === 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' ? '/v1/traces' : ''}`,
    );
  }
  if (!otel.url) return 'off (set OTEL_EXPORTER_OTLP_ENDPOINT to export spans over OTLP/HTTP)';
  const variable = otel.variable;
  const [warning] = otel.warnings;
  if (warning) {
    throw new Problem(warning, 'correct or unset the variable named above');
  }
  const protocol = otlpProtocolFromEnv();
  if (protocol.warning) {
    throw new Problem(protocol.warning, 'set OTEL_EXPORTER_OTLP_PROTOCOL to http/protobuf or http/json');
  }
  const sampler = samplerChoiceFromEnv();
  if (sampler.warning) {
    throw new Problem(
      sampler.warning,
      'set OTEL_TRACES_SAMPLER (and OTEL_TRACES_SAMPLER_ARG) to a valid value',
    );
  }
  const url = otel.url;
  let status: number;
  try {
    status = await probeOtlp(url, OTLP_CONTENT_TYPES[protocol.protocol], otlpHeadersFromEnv());
  } catch (err) {
    throw new Problem(
      `cannot reach the OTLP endpoint ${redact(url)} (${variable}): ${reason(err)}`,
      `start the OpenTelemetry collector, or set ${variable} to one that runs`,
    );
  }
  if (status === 401 || status === 403) {
    throw new Problem(
      `POST ${redact(url)} refused the credentials (HTTP ${status})`,
      "set OTEL_EXPORTER_OTLP_HEADERS to the headers the tracing backend asks for, such as 'authorization=Bearer%20<token>' or 'x-api-key=<key>'",
    );
  }
  if (status >= 300) {
    throw new Problem(
      `POST ${redact(url)} answered HTTP ${status} to an empty export`,
      variable === 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'
        ? "check OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: the collector's whole traces URL (such as http://collector:4318/v1/traces), used as given"
        : "check OTEL_EXPORTER_OTLP_ENDPOINT: the collector's OTLP/HTTP base URL (port 4318), spans go to <endpoint>/v1/traces",
    );
  }
  return `spans to ${redact(url)} as ${protocol.protocol}`;
}

function storeCheck(config: Config, baseDir: string, server: ServerCheck): () => Promise<string> {
  const kind = config.store.kind;
  if (kind === 'redis') return server('redis', 'the store (CLAWMESH_STORE=redis)');
  if (kind === 'postgres') return server('postgres', 'the store (CLAWMESH_STORE=postgres)');
  if (kind === 'memory') {
    return async () => 'memory (kept in this process only: lost on restart, not shared by replicas)';
  }
  return async () => {
    const path = config.store.path === ':memory:' ? ':memory:' : resolve(baseDir, config.store.path);
    const fix = `make ${dirname(path)} writable by this user, or set CLAWMESH_SQLITE_PATH to a file that is`;
    if (path !== ':memory:') {
      try {
        probeWritable(path);
      } catch (err) {
        throw new Problem(`sqlite at ${path}: ${reason(err)}`, fix);
      }
      // A check leaves no trace: a file that is not there yet is not made (start makes it).
      if (!existsSync(path)) return `sqlite at ${path} (created at the first start: its folder is writable)`;
    }
    let stores: ReturnType<typeof createStores> | undefined;
    try {
      stores = createStores({ kind: 'sqlite', path });
      await stores.conversations.ping();
    } catch (err) {
      throw new Problem(`sqlite at ${path} cannot be opened: ${reason(err)}`, fix);
    } finally {
      await stores?.close().catch(() => undefined);
    }
    return `sqlite at ${path}`;
  };
}

/** The audit log's file: start fails when it cannot open it for appending. */
function auditCheck(config: Config, baseDir: string): () => Promise<string> {
  return async () => {
    if (!config.audit.enabled) return 'off (audit.enabled: false)';
    const path = resolve(baseDir, config.audit.path);
    const fix =
      'set audit.path (CLAWMESH_AUDIT__PATH) to a file this user can write, or CLAWMESH_AUDIT__ENABLED=false';
    try {
      if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`${path} is a directory`);
      probeWritable(path);
    } catch (err) {
      throw new Problem(`the audit file ${path} cannot be written: ${reason(err)}`, fix);
    }
    return `appending to ${path}`;
  };
}

/** The Redis turn lease, when the conversation role takes one and the store is not Redis already. */
function leaseChecks(config: Config, roles: ReadonlySet<Role>, server: ServerCheck): Check[] {
  if (!roles.has('conversation') || config.store.kind === 'redis') return [];
  const shared = config.transport.kind !== 'local' || config.store.kind === 'postgres';
  const lease = config.store.lease === 'auto' ? (shared ? 'redis' : 'none') : config.store.lease;
  if (lease !== 'redis') return [];
  return [{ name: 'turn lease', run: server('redis', 'the turn lease across conversation replicas') }];
}

function busCheck(config: Config, server: ServerCheck): () => Promise<string> {
  const kind = config.bus.kind;
  const usedFor = `the event bus (CLAWMESH_BUS=${kind})`;
  if (kind === 'redis') return server('redis', usedFor);
  if (kind === 'nats') return server('nats', `${usedFor}, with JetStream`);
  if (kind === 'rabbitmq') return server('rabbitmq', usedFor);
  return async () => 'memory (in-process; events not yet delivered are lost on exit)';
}

/** The services a process with these roles calls, each by its service name. */
function remoteServices(config: Config, roles: ReadonlySet<Role>): string[] {
  const services: string[] = [];
  if (roles.has('gateway') && !roles.has('conversation')) services.push('conversation');
  if (roles.has('conversation')) {
    if (!roles.has('models')) services.push('models');
    if (!roles.has('skills')) services.push(...skillNamesOf(config).map((skill) => `skills.${skill}`));
  }
  return services;
}

/** Where the services this process calls run: NATS, each http URL, or here. */
function transportChecks(config: Config, roles: ReadonlySet<Role>, server: ServerCheck): Check[] {
  const kind = config.transport.kind;
  const remote = remoteServices(config, roles);
  if (kind === 'local') {
    if (remote.length === 0)
      return [{ name: 'transport', run: async () => 'local (every service in this process)' }];
    return [
      {
        name: 'transport',
        run: async () => {
          throw new Problem(
            `the local transport cannot reach ${remote.join(', ')}, which this process does not run`,
            'set CLAWMESH_TRANSPORT=nats (and NATS_URL) or CLAWMESH_TRANSPORT=http with the service URLs, or run every role here',
          );
        },
      },
    ];
  }
  if (kind === 'nats') return [{ name: 'transport', run: server('nats', 'the nats transport') }];
  return remote.map((service) => ({
    name: `service ${service}`,
    run: async () => {
      const variable = serviceUrlVariable(service);
      const role = service.startsWith('skills.') ? `skills --skills ${service.slice(7)}` : service;
      const urls = serviceUrls(config, process.env, service);
      if (!urls) {
        throw new Problem(
          `no URL for the ${service} service (http transport)`,
          `set ${variable}=http://<host>:<port> of the process running \`clawmesh start ${role}\``,
        );
      }
      // Named where the URL came from: SKILLS_SERVICE_URL serves every skill without a variable of its own.
      const source = serviceUrlSource(config, process.env, service);
      const answers = await Promise.all(
        urls.map(async (url) => {
          try {
            const { status } = await probeHttp(`${url.replace(/\/+$/, '')}/healthz`, { timeoutMs: 2000 });
            if (status !== 200) throw new Error(`GET /healthz answered ${status}`);
            return url;
          } catch (err) {
            throw new Problem(
              `${service} at ${url} (${source}) does not answer: ${reason(err)}`,
              `start it (\`clawmesh start ${role}\`) or fix ${source}`,
            );
          }
        }),
      );
      return `${answers.join(', ')} answers`;
    },
  }));
}

/**
 * One line per channel: on (in a gateway, with whom its platform says the bot token belongs to),
 * off with the variables that turn it on, or — when only some of its secrets are set — a problem
 * naming the missing ones.
 */
function channelChecks(config: Config, gateway: boolean): Check[] {
  const unset = new Map(channelStatuses(ChannelsConfigSchema.parse({})).map((c) => [c.name, c.missing]));
  return channelStatuses(config.channels).map((channel) => ({
    name: `channel ${channel.name}`,
    run: async () => {
      // Only a gateway talks to the platforms; it is asked about the bot's token.
      if (channel.on) return gateway ? channelOnDetail(channel.name, config) : 'on';
      const all = unset.get(channel.name) ?? channel.missing;
      const partly = channel.missing.length < all.length;
      if (!partly) return `off (set ${channel.missing.join(', ')})`;
      throw new Problem(
        `partly configured: ${channel.missing.join(', ')} not set, so the channel is off`,
        `set ${channel.missing.join(', ')}, or unset the channel's other variables to turn it off on purpose`,
      );
    },
  }));
}

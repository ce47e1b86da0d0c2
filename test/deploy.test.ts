import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig } from '../src/config/load.ts';
import { ROLES } from '../src/config/schema-topology.ts';

/*
 * The deployment files are checked the way an operator's tools would read them: every service
 * they name exists, every URL in an environment points at a declared service, every role has
 * health checks and probes, and every command is one `clawmesh start` accepts.
 */

const DEPLOY = join(import.meta.dirname, '..', 'deploy');
const SKILLS = join(import.meta.dirname, '..', 'examples', 'skills');

// biome-ignore lint/suspicious/noExplicitAny: manifests are walked field by field
type Doc = any;

/** The host of every URL-looking value (`scheme://host[:port]`). */
function urlHosts(env: Record<string, unknown>): { key: string; host: string }[] {
  const found: { key: string; host: string }[] = [];
  for (const [key, value] of Object.entries(env)) {
    if (typeof value !== 'string') continue;
    const match = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/]*@)?([^:/?#]+)/i.exec(value);
    if (match) found.push({ key, host: match[1]! });
  }
  return found;
}

/** Applies Prometheus `relabel_configs` (the `replace` action, its only one used here) to a target's labels. */
function relabel(rules: Doc[], labels: Record<string, string>): Record<string, string> {
  const result = { ...labels };
  for (const rule of rules) {
    expect(rule.action ?? 'replace').toBe('replace');
    const value = (rule.source_labels as string[])
      .map((name) => result[name] ?? '')
      .join(rule.separator ?? ';');
    const match = new RegExp(`^(?:${rule.regex ?? '(.*)'})$`).exec(value);
    if (!match) continue;
    result[rule.target_label] = String(rule.replacement ?? '$1').replace(
      /\$(\d+)/g,
      (_, n) => match[Number(n)] ?? '',
    );
  }
  return result;
}

/** Checks the arguments of one role's command: `start <role>… [--skills a,b]`. */
function checkCommand(args: string[]): void {
  expect(args[0]).toBe('start');
  const rest = args.slice(1);
  const skillsAt = rest.indexOf('--skills');
  const roles = skillsAt === -1 ? rest : rest.slice(0, skillsAt);
  expect(roles.length).toBeGreaterThan(0);
  for (const role of roles) expect(ROLES).toContain(role);
  if (skillsAt !== -1) {
    expect(roles).toContain('skills');
    for (const skill of rest[skillsAt + 1]!.split(',')) expect(existsSync(join(SKILLS, skill))).toBe(true);
  }
}

describe('deploy/docker-compose.yml', () => {
  const compose: Doc = parse(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true });
  const services: Record<string, Doc> = compose.services;
  const names = new Set(Object.keys(services));

  it('declares the gateway on 8080 and every role, Redis and NATS', () => {
    for (const name of [
      'gateway',
      'conversation',
      'skill-inventory',
      'skill-support',
      'models',
      'redis',
      'nats',
    ]) {
      expect(names).toContain(name);
    }
    expect(services.gateway.ports).toContain('8080:8080');
    expect(services['skill-inventory'].environment).toHaveProperty('STORE_API_KEY');
    expect(services['skill-support'].environment).not.toHaveProperty('STORE_API_KEY');
  });

  it('keeps the gateway inbox (/app/data) in a named volume, so a recreated container resumes it', () => {
    const volume = (services.gateway.volumes ?? []).find((v: string) => v.endsWith(':/app/data'));
    expect(volume, 'the gateway mounts a named volume at /app/data').toBeDefined();
    expect(compose.volumes).toHaveProperty(volume.split(':')[0]);
  });

  it('runs each Clawmesh service with a valid command', () => {
    const roles = Object.entries(services).filter(([, service]) => service.image === 'clawmesh:latest');
    expect(roles.map(([name]) => name).sort()).toEqual(
      ['conversation', 'gateway', 'models', 'skill-inventory', 'skill-support'].sort(),
    );
    for (const [, service] of roles) checkCommand(service.command);
  });

  it('points every URL of an environment at a declared service', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const { key, host } of urlHosts(service.environment ?? {})) {
        expect(names, `${name}: ${key} points at "${host}"`).toContain(host);
      }
    }
  });

  it('gives each Clawmesh service longer than shutdownTimeoutMs to stop before it is killed', () => {
    // Docker sends SIGKILL 10 s after SIGTERM unless told otherwise: turns in flight would be cut.
    const { shutdownTimeoutMs } = loadConfig({ env: {}, cwd: DEPLOY }).config;
    for (const [name, service] of Object.entries(services)) {
      if (service.image !== 'clawmesh:latest') continue;
      const grace = /^(\d+)s$/.exec(String(service.stop_grace_period ?? '10s'));
      expect(grace, `${name}: stop_grace_period in seconds`).not.toBeNull();
      expect(Number(grace![1]) * 1000, name).toBeGreaterThan(shutdownTimeoutMs + 1000);
    }
  });

  it('waits on healthy dependencies that have health checks', () => {
    const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^HEALTHCHECK [\s\S]*?\/healthz/m);
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, condition] of Object.entries<Doc>(service.depends_on ?? {})) {
        expect(names, `${name} depends on ${dependency}`).toContain(dependency);
        expect(condition.condition).toBe('service_healthy');
        const target = services[dependency];
        // Clawmesh services get their health check from the image's HEALTHCHECK.
        expect(Boolean(target.healthcheck) || target.image === 'clawmesh:latest').toBe(true);
      }
    }
  });
});

describe('deploy/Dockerfile', () => {
  const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');

  it('is multi-stage, runs as a non-root user and starts the CLI', () => {
    expect(dockerfile.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^ENTRYPOINT \["node", "dist\/src\/cli\/main\.js"\]$/m);
  });
});

describe('.dockerignore', () => {
  const ignored = readFileSync(join(DEPLOY, '..', '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const isIgnored = (path: string) =>
    ignored.some((pattern) => path === pattern || path.startsWith(`${pattern}/`));

  it('keeps node_modules, the build output, git history and local data out of the build context', () => {
    for (const path of ['node_modules', 'dist', '.git', 'data', '.env']) expect(isIgnored(path)).toBe(true);
  });

  it('sends everything the Dockerfile copies from the context', () => {
    const dockerfile = readFileSync(join(DEPLOY, 'Dockerfile'), 'utf8');
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      m[1]!.split(/\s+/),
    );
    expect(sources).toContain('src');
    for (const source of sources) expect(isIgnored(source), source).toBe(false);
  });
});

describe('deploy/k8s (kustomize)', () => {
  const dir = join(DEPLOY, 'k8s');
  const kustomization: Doc = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
  const docs: Doc[] = (kustomization.resources as string[]).flatMap((file) => {
    expect(existsSync(join(dir, file)), `${file} is listed in kustomization.yaml`).toBe(true);
    return parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => doc.toJS());
  });
  const ofKind = (kind: string) => docs.filter((doc) => doc?.kind === kind);
  const serviceNames = new Set(ofKind('Service').map((doc) => doc.metadata.name));
  const workloads = [...ofKind('Deployment'), ...ofKind('StatefulSet')];
  const clawmesh = ofKind('Deployment').filter(
    (doc) => doc.metadata.labels?.['app.kubernetes.io/name'] === 'clawmesh',
  );

  it('has a Deployment and a Service for every role', () => {
    expect(clawmesh.map((doc) => doc.metadata.name).sort()).toEqual(
      ['conversation', 'gateway', 'models', 'skill-inventory', 'skill-support'].sort(),
    );
    for (const deployment of workloads) {
      const labels = deployment.spec.template.metadata.labels;
      const service = ofKind('Service').find((svc) =>
        Object.entries<string>(svc.spec.selector).every(([key, value]) => labels[key] === value),
      );
      expect(service, `a Service selects ${deployment.metadata.name}`).toBeDefined();
    }
  });

  it('probes every role on /healthz (liveness) and /readyz (readiness)', () => {
    for (const deployment of clawmesh) {
      const container = deployment.spec.template.spec.containers[0];
      expect(container.livenessProbe.httpGet.path, deployment.metadata.name).toBe('/healthz');
      expect(container.readinessProbe.httpGet.path, deployment.metadata.name).toBe('/readyz');
      checkCommand(container.args);
    }
    for (const workload of workloads) {
      const container = workload.spec.template.spec.containers[0];
      expect(container.livenessProbe, workload.metadata.name).toBeDefined();
      expect(container.readinessProbe, workload.metadata.name).toBeDefined();
    }
  });

  it("keeps every role's /app/data (the bus spool; the gateway's inbox) across restarts of its container", () => {
    // The spool holds the events the bus has not taken yet: a container restarted after a crash
    // sends them only if the folder is still there.
    for (const name of ['conversation', 'models', 'skill-inventory', 'skill-support']) {
      const spec = clawmesh.find((doc) => doc.kind === 'Deployment' && doc.metadata.name === name).spec
        .template.spec;
      const mount = spec.containers[0].volumeMounts?.find((m: Doc) => m.mountPath === '/app/data');
      expect(mount, `${name} mounts a volume at /app/data`).toBeDefined();
      expect(spec.volumes?.some((v: Doc) => v.name === mount.name && v.emptyDir)).toBe(true);
    }
  });

  it('keeps the gateway inbox (/app/data) across restarts of its container', () => {
    // The inbox is the crash journal of the gateway that accepted a message: a container that
    // restarts after a crash resumes it only if the file is still there.
    const gateway = clawmesh.find((doc) => doc.metadata.name === 'gateway');
    const spec = gateway.spec.template.spec;
    const mount = spec.containers[0].volumeMounts?.find((m: Doc) => m.mountPath === '/app/data');
    expect(mount, 'the gateway mounts a volume at /app/data').toBeDefined();
    expect(spec.volumes?.some((v: Doc) => v.name === mount.name)).toBe(true);
  });

  it('autoscales the conversation and skill hosts', () => {
    const scaled = new Set(ofKind('HorizontalPodAutoscaler').map((hpa) => hpa.spec.scaleTargetRef.name));
    for (const name of ['conversation', 'skill-inventory', 'skill-support']) expect(scaled).toContain(name);
    for (const name of scaled) expect(clawmesh.map((doc) => doc.metadata.name)).toContain(name);
  });

  it('points every URL in the ConfigMap at a declared Service and references existing config', () => {
    const configMaps = ofKind('ConfigMap');
    const secrets = ofKind('Secret');
    for (const map of configMaps) {
      for (const { key, host } of urlHosts(map.data)) {
        expect(serviceNames, `${map.metadata.name}: ${key} points at "${host}"`).toContain(host);
      }
    }
    for (const deployment of clawmesh) {
      const container = deployment.spec.template.spec.containers[0];
      for (const source of container.envFrom ?? []) {
        expect(configMaps.map((map) => map.metadata.name)).toContain(source.configMapRef.name);
      }
      for (const variable of container.env ?? []) {
        const ref = variable.valueFrom?.secretKeyRef;
        if (!ref) continue;
        const secret = secrets.find((candidate) => candidate.metadata.name === ref.name);
        expect(secret, `${deployment.metadata.name}: secret ${ref.name}`).toBeDefined();
        expect(Object.keys(secret.stringData ?? secret.data)).toContain(ref.key);
      }
    }
    const inventory = clawmesh.find((doc) => doc.metadata.name === 'skill-inventory');
    const names = inventory.spec.template.spec.containers[0].env.map((variable: Doc) => variable.name);
    expect(names).toContain('STORE_API_KEY');
  });
});

describe('metrics: Prometheus scrape configs and the Grafana dashboard', () => {
  const compose: Doc = parse(readFileSync(join(DEPLOY, 'docker-compose.yml'), 'utf8'), { merge: true });
  const services: Record<string, Doc> = compose.services;
  const roles = Object.entries(services).filter(([, service]) => service.image === 'clawmesh:latest');

  it('runs Prometheus and Grafana in Compose, with the files they mount present', () => {
    for (const name of ['prometheus', 'grafana']) {
      expect(Object.keys(services)).toContain(name);
      for (const volume of services[name].volumes as string[]) {
        const source = volume.split(':')[0]!;
        if (source.startsWith('./'))
          expect(existsSync(join(DEPLOY, source)), `${name} mounts ${source}`).toBe(true);
      }
    }
    expect(services.prometheus.volumes).toContain(
      './prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro',
    );
    expect(services.grafana.depends_on.prometheus.condition).toBe('service_healthy');
  });

  it('scrapes every replica of every Clawmesh role of the Compose file, labelled with its role', () => {
    const config: Doc = parse(readFileSync(join(DEPLOY, 'prometheus', 'prometheus.yml'), 'utf8'));
    const job = config.scrape_configs.find((candidate: Doc) => candidate.job_name === 'clawmesh');
    expect(job.metrics_path).toBe('/metrics');
    // A static `conversation:8080` reaches one container of a scaled service at a time (one
    // address of the name, on a kept-alive connection); DNS discovery gives each its target.
    expect(job.static_configs, 'targets are found by DNS, one per container').toBeUndefined();
    const names: string[] = job.dns_sd_configs.flatMap((sd: Doc) => {
      expect(sd.type, 'A records: one per container').toBe('A');
      return (sd.names as string[]).map((name) => {
        expect(String(services[name]?.environment?.PORT), `${name} serves on ${sd.port}`).toBe(
          String(sd.port),
        );
        return name;
      });
    });
    expect(names.sort()).toEqual(roles.map(([name]) => name).sort());
    for (const name of names) {
      const labels = relabel(job.relabel_configs, { __meta_dns_name: name });
      const role = services[name].command[1];
      expect(labels.role, `${name}: role`).toBe(role);
      if (role === 'skills') expect(labels.skill).toBe(services[name].command[3]);
    }
    const datasources: Doc = parse(
      readFileSync(join(DEPLOY, 'grafana', 'provisioning', 'datasources', 'prometheus.yml'), 'utf8'),
    );
    expect(urlHosts({ url: datasources.datasources[0].url }).map((found) => found.host)).toEqual([
      'prometheus',
    ]);
  });

  it('gives Kubernetes a scrape config that keeps the annotated pods, and annotates every role', () => {
    const dir = join(DEPLOY, 'k8s');
    const kustomization: Doc = parse(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'));
    const docs: Doc[] = (kustomization.resources as string[]).flatMap((file) =>
      parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((doc) => doc.toJS()),
    );
    const map = docs.find((doc) => doc?.kind === 'ConfigMap' && doc.metadata.name === 'prometheus-config');
    expect(map, 'a prometheus-config ConfigMap is listed in kustomization.yaml').toBeDefined();
    const config: Doc = parse(map.data['prometheus.yml']);
    const job = config.scrape_configs.find((candidate: Doc) => candidate.job_name === 'clawmesh');
    expect(job.kubernetes_sd_configs[0].role).toBe('pod');
    const keep = job.relabel_configs.find((rule: Doc) => rule.action === 'keep');
    expect(keep.source_labels).toEqual(['__meta_kubernetes_pod_annotation_prometheus_io_scrape']);
    for (const deployment of docs.filter(
      (doc) => doc?.kind === 'Deployment' && doc.metadata.labels?.['app.kubernetes.io/name'] === 'clawmesh',
    )) {
      const annotations = deployment.spec.template.metadata.annotations;
      const port = deployment.spec.template.spec.containers[0].ports[0].containerPort;
      expect(annotations['prometheus.io/scrape'], deployment.metadata.name).toBe('true');
      expect(annotations['prometheus.io/path']).toBe('/metrics');
      expect(annotations['prometheus.io/port']).toBe(String(port));
    }
  });

  it('draws the dashboard only from metrics the code registers, covering turns, hops, models and the bus', async () => {
    const dashboard: Doc = JSON.parse(
      readFileSync(join(DEPLOY, 'grafana', 'clawmesh-dashboard.json'), 'utf8'),
    );
    const expressions: string[] = dashboard.panels.flatMap((panel: Doc) =>
      (panel.targets ?? []).map((target: Doc) => target.expr as string),
    );
    expect(expressions.length).toBeGreaterThan(10);
    const used = new Set(
      expressions.flatMap((expr) =>
        [...expr.matchAll(/\bclawmesh_[a-z0-9_]+/g)].map((m) => m[0].replace(/_(bucket|count|sum)$/, '')),
      ),
    );
    // The names a running monolith (all four roles, a Redis bus) serves on /metrics.
    const { startTestApp } = await import('./support/app.ts');
    const { randomBytes } = await import('node:crypto');
    const prefix = `deploy${randomBytes(4).toString('hex')}:`;
    const app = await startTestApp({ bus: { kind: 'redis' }, redis: { keyPrefix: prefix } });
    let registered: Set<string>;
    try {
      const text = await (await fetch(`${app.url}/metrics`)).text();
      registered = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    } finally {
      await app.stop();
      const { createClient } = await import('redis');
      const redis = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
      await redis.connect();
      for await (const keys of redis.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
        if (keys.length > 0) await redis.del(keys);
      }
      await redis.close();
    }
    for (const name of used) expect(registered, `${name} is registered`).toContain(name);
    for (const name of [
      'clawmesh_turns_total',
      'clawmesh_turn_duration_seconds',
      'clawmesh_rpc_duration_seconds',
      'clawmesh_model_tokens_total',
      'clawmesh_model_cost_usd_total',
      'clawmesh_model_cache_lookups_total',
      'clawmesh_model_circuit_open',
      'clawmesh_bus_consume_lag_seconds',
      'clawmesh_bus_dead_letters_total',
      'clawmesh_active_conversations',
    ]) {
      expect(used, `the dashboard shows ${name}`).toContain(name);
    }
    // Every panel reads the data source chosen in the dashboard's variable.
    for (const panel of dashboard.panels.filter((p: Doc) => p.type !== 'row')) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a template
      expect(panel.datasource.uid, panel.title).toBe('${datasource}');
    }
  }, 30_000);
});

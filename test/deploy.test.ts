import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
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

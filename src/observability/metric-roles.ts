import type { Role } from '../config/schema-topology.ts';
import type { Metrics } from './metrics.ts';

/** Metrics that only one role records, by name prefix; every other metric belongs to every role. */
const OWNERS: readonly [prefix: string, role: Role][] = [
  ['clawmesh_turn', 'conversation'],
  ['clawmesh_active_turns', 'conversation'],
  ['clawmesh_active_conversations', 'conversation'],
  ['clawmesh_plugin_', 'conversation'],
  ['clawmesh_tool_', 'skills'],
  ['clawmesh_model_', 'models'],
];

/** The role that alone records a metric, or `undefined` when every role may. */
export function ownerOf(name: string): Role | undefined {
  return OWNERS.find(([prefix]) => name.startsWith(prefix))?.[1];
}

/**
 * Leaves in the registry only the metrics of the roles this process runs, so a gateway's
 * `/metrics` does not list model or turn families it can never fill. The metric objects stay
 * usable; they are just not exposed.
 */
export function keepRoleMetrics(metrics: Metrics, roles: Iterable<Role>): void {
  const running = new Set(roles);
  for (const metric of metrics.registry.getMetricsAsArray()) {
    const owner = ownerOf(metric.name);
    if (owner && !running.has(owner)) metrics.registry.removeSingleMetric(metric.name);
  }
}

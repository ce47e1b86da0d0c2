import { hostname } from 'node:os';
import type { Role } from '../config/schema-topology.ts';
import { randomHex } from '../core/ids.ts';

/** This process's instance id: host, pid and a random suffix (logs, traces, discovery). */
export const INSTANCE_ID = `${hostname()}-${process.pid}-${randomHex(3)}`;

/** The service name of a process: `clawmesh` for the monolith, else `clawmesh-<role>[+<role>…]`. */
export function serviceNameOf(roles: readonly Role[]): string {
  return roles.length === 4 ? 'clawmesh' : `clawmesh-${[...roles].sort().join('+')}`;
}

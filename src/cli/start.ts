import type { Role } from '../config/schema-topology.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createClawmesh } from '../runtime/clawmesh.ts';

/** What `clawmesh start` was asked to run. */
export interface StartOptions {
  configFile?: string | undefined;
  /** The roles to run; every role when absent. */
  roles?: Role[] | undefined;
  /** `--skills a,b`: the skills a skills role serves, instead of the config's `skills.load`. */
  skills?: string | undefined;
}

/**
 * `clawmesh start [role…]`: every service in one process, or the roles named. SIGTERM or
 * SIGINT stops taking requests, lets the turns in flight finish and exits 0.
 */
export async function runStart(options: StartOptions): Promise<number> {
  const overrides: Record<string, unknown> = {};
  if (options.roles) overrides.roles = options.roles;
  if (options.skills !== undefined) {
    if (options.roles && !options.roles.includes('skills')) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `--skills names the skills of a skills role, and this process runs ${options.roles.join(', ')}: start a skill host with \`clawmesh start skills --skills ${options.skills}\``,
      );
    }
    const names = options.skills
      .split(',')
      .map((name) => name.trim())
      .filter(Boolean);
    if (names.length === 0)
      throw new ClawmeshError('INVALID_ARGUMENT', '--skills needs at least one skill name');
    overrides.skills = { load: names };
  }
  const app = await createClawmesh({
    configOptions: { ...(options.configFile ? { file: options.configFile } : {}), overrides },
  });
  // The handlers go in before listening: a SIGTERM that came between the 'listening' line and
  // their installation took Node's default action, ending the process without a graceful stop.
  const listening = app.listen();
  return new Promise<number>((resolve, reject) => {
    const shutdown = (signal: NodeJS.Signals) => {
      app.logger.info({ signal, inFlight: app.inFlight }, 'shutting down: finishing turns in flight');
      listening
        .catch(() => undefined)
        .then(() => app.stop())
        .then(
          () => {
            app.logger.info('stopped');
            resolve(0);
          },
          (err: unknown) => {
            app.logger.error({ err }, 'shutdown failed');
            resolve(1);
          },
        );
    };
    process.once('SIGTERM', shutdown);
    process.once('SIGINT', shutdown);
    listening.catch((err: unknown) => {
      process.removeListener('SIGTERM', shutdown);
      process.removeListener('SIGINT', shutdown);
      reject(err);
    });
  });
}

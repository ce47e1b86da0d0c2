import { createClawmesh } from '../runtime/clawmesh.ts';

/**
 * `clawmesh start`: every service in one process. SIGTERM or SIGINT stops taking requests,
 * lets the turns in flight finish and exits 0.
 */
export async function runStart(options: { configFile?: string | undefined }): Promise<number> {
  const app = await createClawmesh({ configOptions: options.configFile ? { file: options.configFile } : {} });
  await app.listen();
  return new Promise<number>((resolve) => {
    const shutdown = (signal: NodeJS.Signals) => {
      app.logger.info(
        { signal, inFlight: app.services.conversation.inFlight },
        'shutting down: finishing turns in flight',
      );
      app.stop().then(
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
  });
}

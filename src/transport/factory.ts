import { ClawmeshError } from '../core/errors.ts';
import type { HttpTransport, HttpTransportOptions } from './http.ts';
import { createLocalTransport, type LocalTransportOptions } from './local.ts';
import type { NatsTransport, NatsTransportOptions } from './nats.ts';
import type { Transport } from './types.ts';

/** Options of {@link createTransport}: `kind` and that transport's own options. */
export type TransportOptions =
  | ({ kind: 'local' } & LocalTransportOptions)
  | ({ kind: 'http' } & HttpTransportOptions)
  | ({ kind: 'nats' } & NatsTransportOptions);

/**
 * Creates the transport of `options.kind`: `local` (a function call), `http`
 * (`POST /rpc/<service>/<method>`) or `nats` (request-reply through the NATS services API).
 * A `nats` transport connects first and fails `UNAVAILABLE` when the server cannot be reached.
 *
 * @example
 * const transport = await createTransport({ kind: 'nats', servers: process.env.NATS_URL });
 * await transport.serve(modelsContract, models.handlers);
 */
export function createTransport(options: { kind: 'local' } & LocalTransportOptions): Promise<Transport>;
export function createTransport(options: { kind: 'http' } & HttpTransportOptions): Promise<HttpTransport>;
export function createTransport(options: { kind: 'nats' } & NatsTransportOptions): Promise<NatsTransport>;
export function createTransport(options: TransportOptions): Promise<Transport>;
export async function createTransport(options: TransportOptions): Promise<Transport> {
  switch (options.kind) {
    case 'local': {
      const { kind: _kind, ...rest } = options;
      return createLocalTransport(rest);
    }
    // Loaded when chosen: a monolith never pays for the NATS client (about 10 MB of RSS).
    case 'http': {
      const { kind: _kind, ...rest } = options;
      const { createHttpTransport } = await import('./http.ts');
      return createHttpTransport(rest);
    }
    case 'nats': {
      const { kind: _kind, ...rest } = options;
      const { createNatsTransport } = await import('./nats.ts');
      return createNatsTransport(rest);
    }
    default:
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `unknown transport kind "${(options as { kind: unknown }).kind}": use local, http or nats`,
      );
  }
}

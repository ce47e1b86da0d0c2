import { assertNotExpired, type CallContext } from '../core/context.ts';
import type { CallMiddleware, Client, Contract, Handlers, Invoke } from '../core/contract.ts';
import { clientFromInvoke } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { formatZodError } from '../core/validation.ts';
import type { Registration, Transport } from './types.ts';

type Served = {
  contract: Contract;
  handlers: Record<string, (input: unknown, ctx: CallContext) => Promise<unknown>>;
};

/** Options of {@link createLocalTransport}. */
export interface LocalTransportOptions {
  /**
   * Parse every input with the contract's schema, as the http and nats transports do. Off by
   * default: in one process the caller is type-checked code, and parsing a model request's
   * whole history on every step would double the cost of a turn. Contracts therefore put no
   * defaults in input schemas; handlers apply their own.
   */
  validate?: boolean;
}

/** The monolith's transport: a direct function call, no serialization. */
export function createLocalTransport(options: LocalTransportOptions = {}): Transport {
  const validate = options.validate ?? false;
  const services = new Map<string, Served>();

  const invokerFor = (service: string): Invoke => {
    return async (method, input, ctx) => {
      const served = services.get(service);
      if (!served) throw new ClawmeshError('UNAVAILABLE', `no instance of service "${service}" is running`);
      const spec = Object.hasOwn(served.contract.methods, method)
        ? served.contract.methods[method]
        : undefined;
      const handler = Object.hasOwn(served.handlers, method) ? served.handlers[method] : undefined;
      if (!spec || !handler)
        throw new ClawmeshError('NOT_FOUND', `service "${service}" has no method "${method}"`);
      assertNotExpired(ctx, `${service}.${method}`);
      if (!validate) return handler(input, ctx);
      const parsed = spec.input.safeParse(input);
      if (!parsed.success) {
        throw new ClawmeshError('INVALID_ARGUMENT', `${service}.${method}: ${formatZodError(parsed.error)}`);
      }
      return handler(parsed.data, ctx);
    };
  };

  return {
    kind: 'local',
    async serve<C extends Contract>(contract: C, handlers: Handlers<C>): Promise<Registration> {
      if (services.has(contract.name)) {
        throw new ClawmeshError('CONFLICT', `service "${contract.name}" is already served in this process`);
      }
      const served: Served = { contract, handlers: handlers as Served['handlers'] };
      services.set(contract.name, served);
      return {
        async close() {
          if (services.get(contract.name) === served) services.delete(contract.name);
        },
      };
    },
    client<C extends Contract>(contract: C, middleware: readonly CallMiddleware[] = []): Client<C> {
      let invoke = invokerFor(contract.name);
      for (const wrap of [...middleware].reverse()) invoke = wrap(contract.name, invoke);
      return clientFromInvoke(contract, invoke);
    },
    async close() {
      services.clear();
    },
  };
}

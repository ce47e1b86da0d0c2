import type { CallContext } from '../core/context.ts';
import type { Contract, Handlers } from '../core/contract.ts';
import { createInFlight } from '../core/in-flight.ts';
import type { Registration, Transport } from '../transport/types.ts';

/**
 * The contracts a process serves to other processes, so that shutdown can stop taking calls
 * and then wait for the calls it took (a turn, a completion, a tool call) before it closes
 * what they need. Over the `local` transport every caller is in the process and stops with
 * it: nothing is counted or stopped.
 */
export interface Serving {
  /** Serves a contract on the transport, counting each call while its handler runs. */
  serve<C extends Contract>(contract: C, handlers: Handlers<C>): Promise<void>;
  /**
   * Stops taking calls of the named services (all when none is named): over NATS the
   * instance leaves its queue group, so callers reach the other replicas. Calls taken go on.
   */
  stop(services?: readonly string[]): Promise<void>;
  /** Calls taken and still running. */
  readonly count: number;
  /** Resolves once no call taken is running. */
  idle(): Promise<void>;
}

/** A {@link Serving} over `transport`. */
export function createServing(transport: Transport): Serving {
  const calls = createInFlight();
  const registrations = new Map<string, Registration>();
  const remote = transport.kind !== 'local';
  return {
    async serve(contract, handlers) {
      registrations.set(
        contract.name,
        await transport.serve(contract, remote ? counted(handlers) : handlers),
      );
    },
    async stop(services) {
      if (!remote) return;
      const names = services ?? [...registrations.keys()];
      const stopping = names.flatMap((name) => {
        const registration = registrations.get(name);
        registrations.delete(name);
        return registration ? [registration.close()] : [];
      });
      await Promise.allSettled(stopping);
    },
    get count() {
      return calls.count;
    },
    idle: () => calls.idle(),
  };

  function counted<C extends Contract>(handlers: Handlers<C>): Handlers<C> {
    const wrapped: Record<string, (input: unknown, ctx: CallContext) => Promise<unknown>> = {};
    for (const method of Object.keys(handlers)) {
      const handle = handlers[method] as (input: unknown, ctx: CallContext) => Promise<unknown>;
      wrapped[method] = async (input, ctx) => {
        calls.enter();
        try {
          return await handle.call(handlers, input, ctx);
        } finally {
          calls.leave();
        }
      };
    }
    return wrapped as Handlers<C>;
  }
}

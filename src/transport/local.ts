import { assertNotExpired, type CallContext } from '../core/context.ts';
import type { CallMiddleware, Client, Contract, Handlers, Invoke } from '../core/contract.ts';
import { clientFromInvoke } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { formatZodError } from '../core/validation.ts';
import type { Registration, Transport } from './types.ts';
import { encodeJson, payloadTooLarge } from './wire.ts';

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
  /**
   * Refuse inputs (`INVALID_ARGUMENT`) and replies (`INTERNAL`) whose JSON is larger than this,
   * as the remote transports do. Off by default: measuring costs a `JSON.stringify` per call;
   * turn it on in tests or staging to find payloads that would fail once the services split.
   */
  maxPayloadBytes?: number;
}

/** setTimeout holds at most 2^31-1 ms (about 24.8 days); a later deadline waits that long. */
const MAX_TIMER_MS = 2_147_483_647;

/**
 * The monolith's transport: a direct function call, no serialization. Like the remote
 * transports, a caller stops waiting at the deadline (`DEADLINE_EXCEEDED`).
 */
export function createLocalTransport(options: LocalTransportOptions = {}): Transport {
  const validate = options.validate ?? false;
  const limit = options.maxPayloadBytes;
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
      const what = `${service}.${method}`;
      assertNotExpired(ctx, what);
      if (limit !== undefined) checkSize(input, what, limit, 'INVALID_ARGUMENT');
      let work: Promise<unknown>;
      if (!validate) work = handler(input, ctx);
      else {
        const parsed = spec.input.safeParse(input);
        if (!parsed.success) {
          throw new ClawmeshError('INVALID_ARGUMENT', `${what}: ${formatZodError(parsed.error)}`);
        }
        work = handler(parsed.data, ctx);
      }
      const output = await withinDeadline(work, ctx.deadline, what);
      if (limit !== undefined) checkSize(output, `${what} reply`, limit, 'INTERNAL');
      return output;
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

/**
 * The work's result, or `DEADLINE_EXCEEDED` once the deadline passes first, as a caller of a
 * remote service sees it. The work itself runs on; the handler's context carries the deadline.
 */
function withinDeadline<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const waitMs = Math.max(0, deadline - Date.now());
    const timer = setTimeout(
      () =>
        reject(
          new ClawmeshError('DEADLINE_EXCEEDED', `${what} did not answer within its deadline (${waitMs} ms)`),
        ),
      Math.min(waitMs, MAX_TIMER_MS),
    );
    work.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

function checkSize(value: unknown, what: string, limit: number, code: 'INVALID_ARGUMENT' | 'INTERNAL'): void {
  const size = encodeJson(value).length;
  if (size > limit) throw payloadTooLarge(what, size, limit, code);
}

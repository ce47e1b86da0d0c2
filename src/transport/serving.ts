import type { CallContext } from '../core/context.ts';
import type { Contract, Handlers } from '../core/contract.ts';
import { ClawmeshError } from '../core/errors.ts';
import { parseOrThrow } from '../core/validation.ts';
import { deadlinePassed } from './wire.ts';

/** Runs one method of a served contract on an input that came off the wire. */
export type MethodRunner = (input: unknown, ctx: CallContext) => Promise<unknown>;

/**
 * The server side of the remote transports, per method: a call whose deadline has passed fails
 * `DEADLINE_EXCEEDED` without running; the input is parsed with the method's schema
 * (`INVALID_ARGUMENT` naming the field) and the handler gets the parsed value. The caller's
 * transport stops waiting at the deadline, so a slow handler is not cut here.
 */
export function methodRunners<C extends Contract>(
  contract: C,
  handlers: Handlers<C>,
): Map<string, MethodRunner> {
  const runners = new Map<string, MethodRunner>();
  const table = handlers as Record<string, (input: unknown, ctx: CallContext) => Promise<unknown>>;
  for (const [method, spec] of Object.entries(contract.methods)) {
    const handler = Object.hasOwn(table, method) ? table[method] : undefined;
    if (typeof handler !== 'function') {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `service "${contract.name}" has no handler for "${method}"`,
      );
    }
    const what = `${contract.name}.${method}`;
    runners.set(method, async (input, ctx) => {
      if (Date.now() >= ctx.deadline) throw deadlinePassed(what);
      return handler(parseOrThrow(spec.input, input, what), ctx);
    });
  }
  return runners;
}

const SERVICE_NAME = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
const METHOD_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * Checks that a contract's name and methods can travel in a URL path and as NATS subject
 * tokens: a service is dot-separated words (`skill.inventory`), a method one word.
 */
export function assertWireNames(contract: Contract): void {
  if (!SERVICE_NAME.test(contract.name)) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `service name "${contract.name}" must be dot-separated words of letters, digits, "_" and "-"`,
    );
  }
  for (const method of Object.keys(contract.methods)) assertMethodName(contract.name, method);
}

/** Checks that a method name is one word of letters, digits, "_" and "-". */
export function assertMethodName(service: string, method: string): void {
  if (!METHOD_NAME.test(method)) {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `method name "${service}.${method}" must be one word of letters, digits, "_" and "-"`,
    );
  }
}

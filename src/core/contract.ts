import type { z } from 'zod';
import type { CallContext } from './context.ts';

/** One method of a contract: zod schemas for what goes in and what comes out. */
export interface MethodSpec<I extends z.ZodType = z.ZodType, O extends z.ZodType = z.ZodType> {
  readonly input: I;
  readonly output: O;
  readonly description?: string;
}

/** The methods of a contract, by name. */
export type MethodMap = Record<string, MethodSpec>;

/** A service contract: a name, a version and its methods. Callers never know where it runs. */
export interface Contract<M extends MethodMap = MethodMap> {
  readonly name: string;
  readonly version: string;
  readonly methods: M;
}

/** The functions a service implements to serve a contract. */
export type Handlers<C extends Contract> = {
  [K in keyof C['methods']]: (
    input: z.output<C['methods'][K]['input']>,
    ctx: CallContext,
  ) => Promise<z.input<C['methods'][K]['output']>>;
};

/** A typed client of a contract, whatever the transport behind it. */
export type Client<C extends Contract> = {
  [K in keyof C['methods']]: (
    input: z.input<C['methods'][K]['input']>,
    ctx: CallContext,
  ) => Promise<z.output<C['methods'][K]['output']>>;
};

/**
 * Declares a contract.
 *
 * @example
 * const echo = defineContract({
 *   name: 'echo',
 *   version: '1.0.0',
 *   methods: { say: { input: z.object({ text: z.string() }), output: z.object({ text: z.string() }) } },
 * });
 */
export function defineContract<M extends MethodMap>(contract: Contract<M>): Contract<M> {
  return contract;
}

/**
 * The untyped call every transport performs: a method name, its input and the context.
 * Wrappers (metrics, retries, tracing) take one of these and return another.
 */
export type Invoke = (method: string, input: unknown, ctx: CallContext) => Promise<unknown>;

/** A cross-cutting wrapper around a client's calls, as in grammY's API transformers. */
export type CallMiddleware = (service: string, next: Invoke) => Invoke;

/** Builds a typed client over an untyped invoke function. */
export function clientFromInvoke<C extends Contract>(contract: C, invoke: Invoke): Client<C> {
  const client: Record<string, unknown> = {};
  for (const method of Object.keys(contract.methods)) {
    client[method] = (input: unknown, ctx: CallContext) => invoke(method, input, ctx);
  }
  return client as Client<C>;
}

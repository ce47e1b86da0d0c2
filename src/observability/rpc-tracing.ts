import type { Attributes } from '@opentelemetry/api';
import type { CallContext } from '../core/context.ts';
import type { CallMiddleware, Contract, Handlers } from '../core/contract.ts';
import type { Transport } from '../transport/types.ts';
import { inSpan, sampledParent, tracing } from './tracing.ts';

type AnyHandler = (input: unknown, ctx: CallContext) => Promise<unknown>;

/** The attributes every server span has: the RPC's system, service and method, and the conversation. */
function rpcAttributes(service: string, method: string, ctx: CallContext): Attributes {
  // The conversation is unset (and so not exported) outside one.
  return {
    'rpc.system': 'clawmesh',
    'rpc.service': service,
    'rpc.method': method,
    'clawmesh.conversation_id': ctx.conversationId,
  };
}

/**
 * The server span's name and attributes of a call: the turn, a model call, a tool call, or
 * `<service>/<method>`. Attributes are one literal plus assignments (no spread): this runs on
 * every call.
 */
function serverSpan(service: string, method: string, input: unknown, ctx: CallContext): [string, Attributes] {
  const attributes = rpcAttributes(service, method, ctx);
  if (service === 'conversation' && method === 'handle') {
    const message = input as { channel?: string; agentId?: string };
    attributes['clawmesh.channel'] = message.channel ?? '';
    // Absent when the message names no agent (the default agent answers it): never an empty value.
    if (message.agentId) attributes['clawmesh.agent'] = message.agentId;
    return ['turn', attributes];
  }
  if (service === 'models' && method === 'complete') {
    attributes['gen_ai.request.model'] = (input as { model?: string }).model ?? 'default';
    return ['model.call', attributes];
  }
  if (service.startsWith('skills.') && method === 'invoke') {
    const call = input as { skill?: string; tool?: string };
    attributes['clawmesh.skill'] = call.skill ?? '';
    attributes['clawmesh.tool'] = call.tool ?? '';
    return [`tool.call ${call.skill}.${call.tool}`, attributes];
  }
  return [`${service}/${method}`, attributes];
}

/** Wraps a contract's handlers so each call runs in a server span continuing the caller's trace. */
export function traceHandlers<C extends Contract>(contract: C, handlers: Handlers<C>): Handlers<C> {
  const traced: Record<string, AnyHandler> = {};
  for (const [method, handler] of Object.entries(handlers as Record<string, AnyHandler>)) {
    traced[method] = (input, ctx) => {
      if (!sampledParent(ctx.traceparent)) return handler(input, ctx);
      const [name, attributes] = serverSpan(contract.name, method, input, ctx);
      return inSpan(
        name,
        ctx,
        'server',
        () => attributes,
        (inner) => handler(input, inner),
      );
    };
  }
  return traced as Handlers<C>;
}

/** A client span around every call, so the callee's server span has a parent on the caller's side. */
export function rpcTracing(transportKind: string): CallMiddleware {
  return (service, next) => (method, input, ctx) =>
    inSpan(
      `${service}/${method}`,
      ctx,
      'client',
      () => ({
        'rpc.system': 'clawmesh',
        'rpc.service': service,
        'rpc.method': method,
        'clawmesh.transport': transportKind,
      }),
      (inner) => next(method, input, inner),
    );
}

/**
 * Traces every call through a transport when tracing is on: a client span on the caller's side
 * and a server span on the callee's, parented across the hop by `traceparent` (HTTP and NATS
 * headers). Over the `local` transport a call is a function call: its server span is the
 * caller's child directly, with no client span that would only repeat it. Leaves the transport
 * untouched when tracing is off.
 */
export function traceTransport<T extends Transport>(transport: T): T {
  if (!tracing().enabled) return transport;
  const serve = transport.serve.bind(transport);
  const client = transport.client.bind(transport);
  const middleware = transport.kind === 'local' ? [] : [rpcTracing(transport.kind)];
  Object.assign(transport, {
    serve: <C extends Contract>(contract: C, handlers: Handlers<C>) =>
      serve(contract, traceHandlers(contract, handlers)),
    client: <C extends Contract>(contract: C, wrappers: readonly CallMiddleware[] = []) =>
      client(contract, [...wrappers, ...middleware]),
  });
  return transport;
}

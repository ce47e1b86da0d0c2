import type { Attributes } from '@opentelemetry/api';
import type { CallContext } from '../core/context.ts';
import type { CallMiddleware, Contract, Handlers } from '../core/contract.ts';
import type { Transport } from '../transport/types.ts';
import { type FixedAttributes, fixedAttributes } from './span-record.ts';
import { inSpan, NO_ATTRIBUTES, sampledParent, tracing } from './tracing.ts';

type AnyHandler = (input: unknown, ctx: CallContext) => Promise<unknown>;

/** The attributes every span of one RPC method has: its system, service and method. */
function rpcFixed(service: string, method: string, extra?: Attributes): FixedAttributes {
  return fixedAttributes({
    'rpc.system': 'clawmesh',
    'rpc.service': service,
    'rpc.method': method,
    ...extra,
  });
}

/**
 * The server span's name and own attributes of a call: the turn, a model call, a tool call, or
 * `<service>/<method>`; the conversation is unset (and so not exported) outside one. One literal
 * per kind (no spread): this runs on every call.
 */
function serverSpan(service: string, method: string, input: unknown, ctx: CallContext): [string, Attributes] {
  if (service === 'conversation' && method === 'handle') {
    const message = input as { channel?: string; agentId?: string };
    const attributes: Attributes = {
      'clawmesh.conversation_id': ctx.conversationId,
      'clawmesh.channel': message.channel ?? '',
    };
    // Absent when the message names no agent (the default agent answers it): never an empty value.
    if (message.agentId) attributes['clawmesh.agent'] = message.agentId;
    return ['turn', attributes];
  }
  if (service === 'models' && method === 'complete') {
    return [
      'model.call',
      {
        'clawmesh.conversation_id': ctx.conversationId,
        'gen_ai.request.model': (input as { model?: string }).model ?? 'default',
      },
    ];
  }
  if (service.startsWith('skills.') && method === 'invoke') {
    const call = input as { skill?: string; tool?: string };
    return [
      `tool.call ${call.skill}.${call.tool}`,
      {
        'clawmesh.conversation_id': ctx.conversationId,
        'clawmesh.skill': call.skill ?? '',
        'clawmesh.tool': call.tool ?? '',
      },
    ];
  }
  return [`${service}/${method}`, { 'clawmesh.conversation_id': ctx.conversationId }];
}

/** Wraps a contract's handlers so each call runs in a server span continuing the caller's trace. */
export function traceHandlers<C extends Contract>(contract: C, handlers: Handlers<C>): Handlers<C> {
  const traced: Record<string, AnyHandler> = {};
  for (const [method, handler] of Object.entries(handlers as Record<string, AnyHandler>)) {
    const fixed = rpcFixed(contract.name, method);
    traced[method] = (input, ctx) => {
      if (!sampledParent(ctx.traceparent)) return handler(input, ctx);
      const [name, attributes] = serverSpan(contract.name, method, input, ctx);
      return inSpan(name, ctx, 'server', attributes, (inner) => handler(input, inner), fixed);
    };
  }
  return traced as Handlers<C>;
}

/** A client span around every call, so the callee's server span has a parent on the caller's side. */
export function rpcTracing(transportKind: string): CallMiddleware {
  return (service, next) => {
    const fixedByMethod = new Map<string, FixedAttributes>();
    const fixedOf = (method: string) => {
      let fixed = fixedByMethod.get(method);
      if (!fixed) {
        fixed = rpcFixed(service, method, { 'clawmesh.transport': transportKind });
        fixedByMethod.set(method, fixed);
      }
      return fixed;
    };
    return (method, input, ctx) =>
      inSpan(
        `${service}/${method}`,
        ctx,
        'client',
        NO_ATTRIBUTES,
        (inner) => next(method, input, inner),
        fixedOf(method),
      );
  };
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

import { type CallContext, withContext } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import type { ToolCallReport } from '../core/contracts/conversation.ts';
import { ModelRequestSchema, type ModelResponse, type modelsContract } from '../core/contracts/models.ts';
import { ClawmeshError } from '../core/errors.ts';
import { type ChatMessage, replyTextOf, STEP_SEPARATOR, type ToolSpec } from '../core/messages.ts';
import { parseOrThrow } from '../core/validation.ts';
import { chargedEventData, modelCompletedData } from '../models/accounting/event.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { HookScope } from './hook-scope.ts';
import { runToolCall, type ToolCallDeps } from './tool-calls.ts';

/** What the agent loop needs beyond running tools. */
export interface AgentLoopDeps extends ToolCallDeps {
  models: Client<typeof modelsContract>;
  metrics?: Metrics;
}

/** One agent loop's task. */
export interface AgentLoopInput {
  model?: string;
  /** The context window: system prompt, history, the new message. */
  messages: ChatMessage[];
  tools: ToolSpec[];
  maxSteps: number;
}

/** What the loop produced: the answer, the messages to store after the user's, and the tool calls. */
export interface AgentLoopResult {
  text: string;
  messages: ChatMessage[];
  toolCalls: ToolCallReport[];
  steps: number;
  model?: string;
}

/** A model request a plugin changed, checked against the contract: the local transport does not parse. */
function checkedModelCall(changed: { model?: string; messages: ChatMessage[]; tools?: ToolSpec[] }) {
  const parsed = parseOrThrow(
    ModelRequestSchema,
    {
      messages: changed.messages,
      ...(changed.model ? { model: changed.model } : {}),
      ...(changed.tools ? { tools: changed.tools } : {}),
    },
    'a plugin returned an invalid model request from onModelCall',
  );
  return { model: parsed.model, messages: parsed.messages, tools: parsed.tools ?? [] };
}

/**
 * A model request the upstream refused as invalid is the caller's 400 at the Model Gateway; here
 * the agent built the request (its model, history and tools), not the user who wrote the message,
 * so the refusal is the deployment's problem: `UNAVAILABLE`, as before it reached the gateway.
 */
function agentsRequestRefused(err: unknown): unknown {
  if (!(err instanceof ClawmeshError) || err.code !== 'INVALID_ARGUMENT' || !err.details?.upstreamCode)
    return err;
  return new ClawmeshError('UNAVAILABLE', err.message, {
    cause: err,
    retryable: false,
    details: { ...err.details },
  });
}

/**
 * The agent loop: ask the model; when it calls tools, run them in parallel (each under the
 * turn's deadline) and ask again; stop at a final answer or at the step limit. With
 * `ctx.onDelta`, every model call streams its text to it (the Model Gateway forwards the
 * provider's deltas), so the final answer arrives as it is generated; steps that call tools
 * usually carry no text.
 */
export async function runAgentLoop(
  input: AgentLoopInput,
  deps: AgentLoopDeps,
  ctx: CallContext,
  scope: HookScope,
): Promise<AgentLoopResult> {
  let messages = input.messages;
  const produced: ChatMessage[] = [];
  const toolCalls: ToolCallReport[] = [];
  let model: string | undefined;
  // What the model said before calling tools is streamed as it comes, and is part of the reply:
  // a later step's text follows it after a blank line, in the stream as in the reply.
  let said = false;
  let separate = false;
  const stream = ctx.onDelta;
  const modelCtx = stream
    ? withContext(ctx, {
        onDelta: (delta) => {
          if (delta === '') return;
          if (separate) {
            separate = false;
            stream(STEP_SEPARATOR);
          }
          stream(delta);
        },
      })
    : ctx;
  for (let step = 1; step <= input.maxSteps; step += 1) {
    separate = said;
    let request = { model: input.model, messages, tools: input.tools };
    if (deps.hooks.has('onModelCall')) {
      const changed = await deps.hooks.run('onModelCall', scope, request);
      if (changed && changed !== request) request = checkedModelCall(changed);
    }
    let response: ModelResponse;
    try {
      response = await deps.models.complete(
        {
          messages: request.messages,
          ...(request.model ? { model: request.model } : {}),
          ...(request.tools.length ? { tools: request.tools } : {}),
        },
        modelCtx,
      );
    } catch (err) {
      // A streamed answer cut short (the turn's deadline passed mid-answer) was charged by the
      // Model Gateway for an estimate of its tokens: it is published like any other model call.
      const charged = chargedEventData(err, ctx, 'conversation');
      if (charged) {
        charged.conversationId = scope.conversationId;
        deps.events.emit('model.completed', charged, ctx);
      }
      throw agentsRequestRefused(err);
    }
    model = response.model;
    // Tokens, cost and cache metrics are the Model Gateway's; the event carries its route and cache fields.
    deps.events.emit(
      'model.completed',
      { ...modelCompletedData(response, ctx, 'conversation'), conversationId: scope.conversationId },
      ctx,
    );
    if (response.content !== '') said = true;
    if (response.toolCalls.length === 0) {
      produced.push({ role: 'assistant', content: response.content });
      return { text: replyTextOf(produced), messages: produced, toolCalls, steps: step, model };
    }
    const asked: ChatMessage = {
      role: 'assistant',
      content: response.content,
      toolCalls: response.toolCalls,
    };
    const results = await Promise.all(response.toolCalls.map((call) => runToolCall(call, deps, ctx, scope)));
    produced.push(asked, ...results.map((r) => r.message));
    toolCalls.push(...results.map((r) => r.report));
    messages = [...messages, asked, ...results.map((r) => r.message)];
  }
  const text = `I could not finish this within ${input.maxSteps} steps. Please try a simpler request.`;
  separate = said;
  modelCtx.onDelta?.(text);
  produced.push({ role: 'assistant', content: text });
  return { text: replyTextOf(produced), messages: produced, toolCalls, steps: input.maxSteps, model };
}

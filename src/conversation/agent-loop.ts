import { type CallContext, withContext } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import type { ToolCallReport } from '../core/contracts/conversation.ts';
import { ModelRequestSchema, type ModelResponse, type modelsContract } from '../core/contracts/models.ts';
import { ClawmeshError } from '../core/errors.ts';
import { extendsArray, rememberArray, reusableJson } from '../core/json-reuse.ts';
import { type ChatMessage, replyTextOf, STEP_SEPARATOR, type ToolSpec } from '../core/messages.ts';
import { parseOrThrow } from '../core/validation.ts';
import { chargedEventData, modelCompletedData } from '../models/accounting/event.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { HookScope } from './hook-scope.ts';
import { runToolCall, type ToolCallDeps } from './tool-calls.ts';

/**
 * The context window's length from which a step's JSON is appended to the last step's rather
 * than encoded whole (see core/json-reuse.ts): measured break-even at about 10 messages.
 */
const REUSE_FROM_MESSAGES = 20;

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
  // Marking costs more than it saves on a short window (a new conversation's 2 or 3 messages).
  const reuse = messages.length >= REUSE_FROM_MESSAGES && !deps.hooks.has('onModelCall');
  if (reuse) rememberArray(messages);
  for (let step = 1; step <= input.maxSteps; step += 1) {
    separate = said;
    let request = { model: input.model, messages, tools: input.tools };
    if (deps.hooks.has('onModelCall')) {
      const changed = await deps.hooks.run('onModelCall', scope, request);
      if (changed && changed !== request) request = checkedModelCall(changed);
    }
    let call = {
      messages: request.messages,
      ...(request.model ? { model: request.model } : {}),
      ...(request.tools.length ? { tools: request.tools } : {}),
    };
    // Each step resends the last one's messages and more: over a remote transport their JSON
    // is appended to rather than encoded again. Not when a plugin may change them in place.
    if (reuse) call = reusableJson(call);
    let response: ModelResponse;
    try {
      response = await deps.models.complete(call, modelCtx);
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
    const next = [...messages, asked, ...results.map((r) => r.message)];
    messages = reuse ? extendsArray(next, messages) : next;
  }
  const text = `I could not finish this within ${input.maxSteps} steps. Please try a simpler request.`;
  separate = said;
  modelCtx.onDelta?.(text);
  produced.push({ role: 'assistant', content: text });
  return { text: replyTextOf(produced), messages: produced, toolCalls, steps: input.maxSteps, model };
}

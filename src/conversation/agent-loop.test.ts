import { describe, expect, it } from 'vitest';
import type { EventPublisher } from '../bus/publisher.ts';
import { type CallContext, createCallContext } from '../core/context.ts';
import type { Client } from '../core/contract.ts';
import type { ModelRequest, ModelResponse, modelsContract } from '../core/contracts/models.ts';
import type { InvokeRequest, skillsContract } from '../core/contracts/skills.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger, silentLogger } from '../observability/logger.ts';
import { createHookRunner } from '../plugins/hooks.ts';
import { runAgentLoop } from './agent-loop.ts';

const scope = {
  requestId: 'r',
  traceId: 't',
  conversationId: 'c',
  agentId: 'a',
  channel: 'test',
  userId: 'u',
};
const events: EventPublisher = { emit() {} };

function response(partial: Partial<ModelResponse>): ModelResponse {
  return {
    content: '',
    toolCalls: [],
    finishReason: 'stop',
    usage: { inputTokens: 1, outputTokens: 1 },
    model: 'test/m',
    latencyMs: 0,
    ...partial,
  };
}

function deps(answer: (request: ModelRequest, step: number) => ModelResponse, invoked: InvokeRequest[] = []) {
  let step = 0;
  const models = {
    complete: async (request: ModelRequest) => answer(request, ++step),
    list: async () => ({ default: 'test/m', models: ['test/m'] }),
  } as unknown as Client<typeof modelsContract>;
  const skills = {
    list: async () => ({ tools: [] }),
    invoke: async (request: InvokeRequest) => {
      invoked.push(request);
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { ok: true, result: { echoed: request.arguments }, durationMs: 30 };
    },
  } as unknown as Client<typeof skillsContract>;
  return { models, skills, events, hooks: createHookRunner({ plugins: [], logger: silentLogger() }) };
}

const call = (id: string, args: unknown = {}) => ({ id, name: 'echo__say', arguments: JSON.stringify(args) });

describe('runAgentLoop', () => {
  it('passes arguments that are a JSON string on as the text the model wrote, never read twice', async () => {
    const invoked: InvokeRequest[] = [];
    const twice = JSON.stringify(JSON.stringify({ n: 3 }));
    const d = deps(
      (_request, step) =>
        step === 1
          ? response({
              toolCalls: [
                { id: 'a', name: 'echo__say', arguments: twice },
                { id: 'b', name: 'echo__say', arguments: '"red"' },
                { id: 'c', name: 'echo__say', arguments: '{"n":1}' },
              ],
              finishReason: 'tool_calls',
            })
          : response({ content: 'done' }),
      invoked,
    );
    await runAgentLoop({ messages: [], tools: [], maxSteps: 3 }, d, createCallContext(), scope);
    expect(invoked.map((request) => request.arguments)).toEqual([twice, '"red"', { n: 1 }]);
  });

  it('runs the tools the model asks for, in parallel, then returns the final answer', async () => {
    const invoked: InvokeRequest[] = [];
    const d = deps(
      (_request, step) =>
        step === 1
          ? response({ toolCalls: [call('a', { n: 1 }), call('b', { n: 2 })], finishReason: 'tool_calls' })
          : response({ content: 'done' }),
      invoked,
    );
    const started = performance.now();
    const result = await runAgentLoop(
      { messages: [{ role: 'user', content: 'hi' }], tools: [], maxSteps: 5 },
      d,
      createCallContext(),
      scope,
    );
    expect(performance.now() - started).toBeLessThan(55); // two 30 ms tools side by side
    expect(result.text).toBe('done');
    expect(result.steps).toBe(2);
    expect(invoked.map((r) => r.arguments)).toEqual([{ n: 1 }, { n: 2 }]);
    expect(result.messages.map((m) => m.role)).toEqual(['assistant', 'tool', 'tool', 'assistant']);
    expect(result.toolCalls.map((c) => c.ok)).toEqual([true, true]);
  });

  it('streams exactly the reply it returns: text before a tool call, a blank line, the final answer', async () => {
    const said = ['Let me check the stock.', '', 'There are 3 hats.'];
    const d = deps((_request, step) =>
      step < 3
        ? response({ content: said[step - 1]!, toolCalls: [call(`c${step}`)], finishReason: 'tool_calls' })
        : response({ content: said[2]! }),
    );
    // The Model Gateway streams each step's text to the context's onDelta as it is generated.
    const complete = d.models.complete;
    d.models.complete = (async (request: ModelRequest, ctx: CallContext) => {
      const answer = await complete(request, ctx);
      for (const word of answer.content.split(/(?<= )/)) ctx.onDelta?.(word);
      return answer;
    }) as typeof d.models.complete;
    let streamed = '';
    const ctx = createCallContext({ onDelta: (delta) => (streamed += delta) });
    const result = await runAgentLoop({ messages: [], tools: [], maxSteps: 5 }, d, ctx, scope);
    expect(result.text).toBe('Let me check the stock.\n\nThere are 3 hats.');
    expect(streamed).toBe(result.text);
    // The model's history keeps each step's own text.
    expect(result.messages.filter((m) => m.role === 'assistant').map((m) => m.content)).toEqual(said);
  });

  it('stops at the step limit when the model keeps calling tools', async () => {
    const d = deps(() => response({ toolCalls: [call('x')], finishReason: 'tool_calls' }));
    const result = await runAgentLoop(
      { messages: [{ role: 'user', content: 'loop' }], tools: [], maxSteps: 3 },
      d,
      createCallContext(),
      scope,
    );
    expect(result.steps).toBe(3);
    expect(result.toolCalls).toHaveLength(3);
    expect(result.text).toMatch(/within 3 steps/);
  });

  it('turns a call of an unknown or malformed tool name into a tool error for the model', async () => {
    let seen: ModelRequest | undefined;
    const d = deps((request, step) => {
      seen = request;
      return step === 1
        ? response({
            toolCalls: [{ id: 'q', name: 'no-such-tool', arguments: '{' }],
            finishReason: 'tool_calls',
          })
        : response({ content: 'ok' });
    });
    const result = await runAgentLoop(
      { messages: [{ role: 'user', content: 'x' }], tools: [], maxSteps: 3 },
      d,
      createCallContext(),
      scope,
    );
    expect(result.toolCalls[0]).toMatchObject({ ok: false });
    const toolMessage = seen?.messages.find((m) => m.role === 'tool');
    expect(JSON.parse(toolMessage!.content).error.code).toBe('NOT_FOUND');
  });

  it("keeps the user's text out of the line about a tool call its host never saw, unless includeText", async () => {
    const question = 'is the wedding dress for Alice Martin ready?';
    const logged = async (includeText: boolean) => {
      const lines: Array<Record<string, unknown>> = [];
      const logger = createLogger({
        destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
      });
      const d = deps((_request, step) =>
        step === 1
          ? response({ toolCalls: [call('a', { customer: 'Alice Martin' })], finishReason: 'tool_calls' })
          : response({ content: 'sorry' }),
      );
      const skills = {
        // A host whose refusal quotes the request it was sent (a proxy's error page, a remote validator).
        invoke: async (request: InvokeRequest) => {
          throw new ClawmeshError(
            'UNAVAILABLE',
            `skills.echo.invoke refused ${JSON.stringify(request.arguments)} for "${question}"`,
          );
        },
      } as unknown as Client<typeof skillsContract>;
      await runAgentLoop(
        { messages: [{ role: 'user', content: question }], tools: [], maxSteps: 2 },
        { ...d, skills, logger, includeText, turnText: question },
        createCallContext(),
        scope,
      );
      return lines.map((line) => line.msg);
    };
    expect(await logged(false)).toEqual([
      'tool call failed: skills.echo.invoke refused {"customer":"[redacted]"} for "[redacted]"',
    ]);
    expect(await logged(true)).toEqual([
      `tool call failed: skills.echo.invoke refused {"customer":"Alice Martin"} for "${question}"`,
    ]);
  });

  it('hides the addresses of a failed tool call from the model and the reply, and logs them', async () => {
    const refused =
      'skills.inventory.invoke: http://127.0.0.1:18112 failed: connect ECONNREFUSED 127.0.0.1:18112';
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({
      destination: { write: (line: string) => void lines.push(JSON.parse(line)) },
    });
    const seen: ModelRequest[] = [];
    const d = deps((request, step) => {
      seen.push(request);
      return step === 1
        ? response({
            toolCalls: [
              { id: 'a', name: 'inventory__lookupStock', arguments: '{}' },
              { id: 'b', name: 'crm__find', arguments: '{}' },
              { id: 'c', name: 'web__fetch', arguments: '{}' },
            ],
            finishReason: 'tool_calls',
          })
        : response({ content: 'sorry' });
    });
    const skills = {
      invoke: async (request: InvokeRequest) => {
        // A host that cannot be reached; a tool that threw its database's error; the caller's mistake.
        if (request.skill === 'inventory') throw new ClawmeshError('UNAVAILABLE', refused);
        if (request.skill === 'crm')
          return {
            ok: false,
            error: {
              code: 'INTERNAL',
              message: 'cannot reach postgres://crm:pw@10.0.3.9:5432/crm (getaddrinfo ENOTFOUND db)',
            },
            durationMs: 1,
          };
        return {
          ok: false,
          error: { code: 'INVALID_ARGUMENT', message: 'http://example.com/x is not allowed' },
          durationMs: 1,
        };
      },
    } as unknown as Client<typeof skillsContract>;
    const result = await runAgentLoop(
      { messages: [{ role: 'user', content: 'how many red shirts are in stock?' }], tools: [], maxSteps: 2 },
      { ...d, skills, logger },
      createCallContext(),
      scope,
    );
    expect(result.toolCalls.map((call) => call.error)).toEqual([
      'skills.inventory.invoke: http://… failed: connect ECONNREFUSED …',
      'cannot reach postgres://… (getaddrinfo ENOTFOUND …)',
      'http://example.com/x is not allowed',
    ]);
    const told = seen[1]!.messages.filter((m) => m.role === 'tool').map((m) => JSON.parse(m.content).error);
    expect(told).toEqual([
      { code: 'UNAVAILABLE', message: 'skills.inventory.invoke: http://… failed: connect ECONNREFUSED …' },
      { code: 'INTERNAL', message: 'cannot reach postgres://… (getaddrinfo ENOTFOUND …)' },
      { code: 'INVALID_ARGUMENT', message: 'http://example.com/x is not allowed' },
    ]);
    expect(JSON.stringify(result.messages)).not.toContain('127.0.0.1');
    // The host never saw the first call: its full text is logged here, once.
    expect(lines).toEqual([
      expect.objectContaining({
        level: 40,
        skill: 'inventory',
        code: 'UNAVAILABLE',
        msg: `tool call failed: ${refused}`,
      }),
    ]);
  });
});

import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createCallContext } from '../core/context.ts';
import { ClawmeshError } from '../core/errors.ts';
import { createLogger } from '../observability/logger.ts';
import { errorOfReply } from '../transport/wire.ts';
import { conversationFailover } from './failover.ts';

/** A `conversation.handle` that fails with `errors` in turn, then answers; records its inputs. */
function scripted(errors: ClawmeshError[]) {
  const inputs: unknown[] = [];
  const next = async (_method: string, input: unknown) => {
    inputs.push(input);
    const error = errors.shift();
    if (error) throw error;
    return { text: 'answered' };
  };
  return { inputs, next };
}

describe('conversationFailover', () => {
  it("logs its retry with the turn's ids and without replacing the process's service field", async () => {
    const raw: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        raw.push(...chunk.toString().split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger({ service: 'clawmesh-gateway', instance: 'gw-1', destination });
    const { next } = scripted([new ClawmeshError('UNAVAILABLE', 'no responders')]);
    const handle = conversationFailover({ attemptTimeoutMs: 1000, retryDelayMs: 1, logger })(
      'conversation',
      next,
    );
    const ctx = createCallContext({ timeoutMs: 2000, requestId: 'req-7' });
    await handle('handle', { text: 'hi' }, ctx);
    const line = raw.find((text) => text.includes('sending it again'));
    expect(line).toBeDefined();
    // One `service` key: a second one (the called service) would win in most JSON readers.
    expect(line!.match(/"service":/g)).toHaveLength(1);
    expect(JSON.parse(line!)).toMatchObject({
      service: 'clawmesh-gateway',
      rpcService: 'conversation',
      requestId: 'req-7',
      traceId: ctx.traceparent.slice(3, 35),
      spanId: ctx.traceparent.slice(36, 52),
    });
  });

  it('sends a message again, with the same message id, after a replica is unavailable', async () => {
    const { inputs, next } = scripted([new ClawmeshError('UNAVAILABLE', 'no responders')]);
    const handle = conversationFailover({ attemptTimeoutMs: 1000, retryDelayMs: 1 })('conversation', next);
    await expect(handle('handle', { text: 'hi' }, createCallContext({ timeoutMs: 2000 }))).resolves.toEqual({
      text: 'answered',
    });
    expect(inputs).toHaveLength(2);
    const [first, second] = inputs as Array<{ messageId: string }>;
    expect(first!.messageId).toBeTruthy();
    expect(second!.messageId).toBe(first!.messageId);
  });

  it('spaces its tries out when the service stays away, up to the caller deadline', async () => {
    const away = () => new ClawmeshError('UNAVAILABLE', 'no URL is configured for service "conversation"');
    const { inputs, next } = scripted(Array.from({ length: 100 }, away));
    const handle = conversationFailover({ attemptTimeoutMs: 1000, retryDelayMs: 20 })('conversation', next);
    const began = performance.now();
    await expect(
      handle('handle', { text: 'hi' }, createCallContext({ timeoutMs: 700 })),
    ).rejects.toMatchObject({
      code: 'UNAVAILABLE',
    });
    expect(performance.now() - began).toBeLessThan(1200);
    // 20, 40, 80, 160, 320 ms pauses fit in 700 ms: a handful of tries, not one every 20 ms.
    expect(inputs.length).toBeGreaterThanOrEqual(3);
    expect(inputs.length).toBeLessThanOrEqual(7);
  });

  it('fails a call no replica can be reached for after attemptTimeoutMs, not at the caller deadline', async () => {
    const away = () => new ClawmeshError('UNAVAILABLE', 'conversation.handle: no NATS responders');
    const { next } = scripted(Array.from({ length: 100 }, away));
    const handle = conversationFailover({ attemptTimeoutMs: 300, retryDelayMs: 20 })('conversation', next);
    const began = performance.now();
    await expect(
      handle('handle', { text: 'hi' }, createCallContext({ timeoutMs: 10_000 })),
    ).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(performance.now() - began).toBeLessThan(1000);
  });

  it('does not run a turn again when the conversation service itself answered UNAVAILABLE', async () => {
    // What a replica sends back when the models service behind it is down, as the transport rebuilds it.
    const body = JSON.stringify({
      error: { code: 'UNAVAILABLE', message: 'models.complete: no running instance', retryable: true },
    });
    const downstream = errorOfReply(503, body, 'conversation.handle', 1 << 20, 'HTTP 503');
    const { inputs, next } = scripted([downstream]);
    const handle = conversationFailover({ attemptTimeoutMs: 1000, retryDelayMs: 1 })('conversation', next);
    await expect(handle('handle', { text: 'hi' }, createCallContext({ timeoutMs: 2000 }))).rejects.toBe(
      downstream,
    );
    expect(inputs).toHaveLength(1);
  });
});

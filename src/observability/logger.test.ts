import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createCallContext } from '../core/context.ts';
import { callFields, callLogger, createLogger, REDACTED, withoutQuotedText } from './logger.ts';
import { secretValuesOf } from './secrets.ts';

/** A logger writing into an array of parsed lines. */
function capture(options: Parameters<typeof createLogger>[0] = {}) {
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        raw.push(line);
        lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', ...options, destination }), lines, raw };
}

describe('createLogger', () => {
  it('puts service and instance on every line', () => {
    const { logger, lines } = capture({ service: 'clawmesh-models', instance: 'host-1-abc' });
    logger.info('one');
    logger.child({ a: 1 }).warn('two');
    for (const line of lines)
      expect(line).toMatchObject({ service: 'clawmesh-models', instance: 'host-1-abc' });
  });

  it('redacts credentials by field name and message texts unless includeText', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        headers: { authorization: 'Bearer abc', accept: 'json' },
        apiKey: 'k1',
        provider: { apiKey: 'k2', botToken: 't1' },
        text: 'my order number is 1234',
        message: { content: 'hello there' },
        messages: [{ role: 'user', content: 'first' }],
        conversationId: 'c_1',
      },
      'fields',
    );
    expect(lines[0]).toMatchObject({
      headers: { authorization: REDACTED, accept: 'json' },
      apiKey: REDACTED,
      provider: { apiKey: REDACTED, botToken: REDACTED },
      text: REDACTED,
      message: { content: REDACTED },
      messages: [{ role: 'user', content: REDACTED }],
      conversationId: 'c_1',
    });

    const kept = capture({ includeText: true });
    kept.logger.info({ text: 'my order number is 1234', apiKey: 'k1' }, 'with text');
    expect(kept.lines[0]).toMatchObject({ text: 'my order number is 1234', apiKey: REDACTED });
  });

  it('replaces a known secret wherever it appears, error messages included', () => {
    const secret = 'sk-live-0123456789abcdef';
    const quoted = 'pa"ss\\word-42';
    const { logger, raw } = capture({ secrets: [secret, quoted, 'abc'] });
    logger.warn({ err: `upstream said: Incorrect API key provided: ${secret}` }, `call failed for ${secret}`);
    logger.info({ note: `a password ${quoted} in a value`, short: 'abc' }, 'short values are kept');
    const output = raw.join('\n');
    expect(output).not.toContain(secret);
    expect(output).not.toContain(JSON.stringify(quoted).slice(1, -1));
    expect(output).toContain(`Incorrect API key provided: ${REDACTED}`);
    expect(output).toContain('"short":"abc"');
  });
});

describe('withoutQuotedText', () => {
  it('replaces every string of the sources a message quotes, JSON-escaped too, longest first', () => {
    const args = { order: { note: 'leave it with "Bob"', tags: ['fragile box', 'gift'] }, n: 12, ok: 'no' };
    expect(
      withoutQuotedText(
        'bad note "leave it with \\"Bob\\"" (leave it with "Bob"); fragile box; gift-wrap; no; 12; the words',
        args,
        'the words',
      ),
    ).toBe(`bad note "${REDACTED}" (${REDACTED}); ${REDACTED}; ${REDACTED}-wrap; no; 12; ${REDACTED}`);
    // Strings of under 4 characters (`no`) and values that are not strings stay.
    expect(withoutQuotedText('nothing quoted', args, undefined)).toBe('nothing quoted');
    // A JSON parser quotes a piece of the text it could not read.
    const text = '{"item": how many red shirts';
    let parseError = '';
    try {
      JSON.parse(text);
    } catch (err) {
      parseError = `arguments are not valid JSON: ${(err as Error).message}`;
    }
    expect(parseError).toContain('how many');
    expect(withoutQuotedText(parseError, text)).toBe(
      `arguments are not valid JSON: Unexpected token 'h', "${REDACTED}" is not valid JSON`,
    );
  });

  it('reads a long message full of quotes in linear time (a regular expression took 2.3 s on 160 KB)', () => {
    const quotes = ', "a'.repeat(100_000);
    const began = performance.now();
    expect(withoutQuotedText(`tool said: ${quotes}`)).toBe(`tool said: ${quotes}`);
    expect(performance.now() - began).toBeLessThan(2000);
    const out = withoutQuotedText(`tool said: ${quotes}" is not valid JSON (and more)`);
    expect(out).toBe(`tool said: , "${REDACTED}" is not valid JSON (and more)`);
    // No quote before the parser's words: nothing to redact.
    expect(withoutQuotedText('x is not valid JSON')).toBe('x is not valid JSON');
  });
});

describe('call fields', () => {
  it('names the request, trace, span and conversation of a call', () => {
    const ctx = createCallContext({
      requestId: 'req-1',
      conversationId: 'c_9',
      traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
    });
    const fields = callFields(ctx);
    expect(fields).toMatchObject({ requestId: 'req-1', traceId: '1'.repeat(32), conversationId: 'c_9' });
    expect(fields.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(fields.spanId).toBe(ctx.traceparent.slice(36, 52));

    const { logger, lines } = capture({ service: 's', instance: 'i' });
    callLogger(logger, ctx, { tool: 'inventory__lookupStock' }).info('tool call finished');
    expect(lines[0]).toMatchObject({
      ...fields,
      tool: 'inventory__lookupStock',
      service: 's',
      instance: 'i',
    });
  });
});

describe('secretValuesOf', () => {
  it('collects credentials from the config, URL passwords and credential-named variables', () => {
    const secrets = secretValuesOf(
      {
        gateway: { apiKeys: ['gw-key-1234567'], port: 8080 },
        models: { openai: { apiKey: 'sk-openai-1', model: 'gpt-4o-mini' }, cache: { maxTokens: 1000 } },
        skills: { secrets: { inventory: { STORE_API_KEY: 'store-key-1' } } },
        channels: { telegram: { webhookSecret: 'tg-secret-1' }, discord: { publicKey: 'public-1' } },
        redis: { url: 'redis://user:redis-pass-1@redis:6379', keyPrefix: 'clawmesh:' },
      },
      {
        OPENAI_API_KEY: 'sk-env-1',
        CLAWMESH_API_KEYS: 'key-a-1234,key-b-5678',
        STORE_API_KEY: 'store-env-1',
        CLAWMESH_REDIS__KEY_PREFIX: 'tenant-1:',
        PATH: '/usr/bin',
      },
    );
    for (const value of [
      'gw-key-1234567',
      'sk-openai-1',
      'store-key-1',
      'tg-secret-1',
      'redis-pass-1',
      'sk-env-1',
      'key-a-1234',
      'key-b-5678',
      'store-env-1',
    ]) {
      expect(secrets).toContain(value);
    }
    for (const value of ['public-1', 'clawmesh:', 'tenant-1:', '/usr/bin', 'gpt-4o-mini']) {
      expect(secrets).not.toContain(value);
    }
  });
});

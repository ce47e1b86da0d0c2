import { createInterface } from 'node:readline';
import type { z } from 'zod';
import { loadConfig } from '../config/load.ts';
import { createCallContext } from '../core/context.ts';
import type { TurnReply } from '../core/contracts/conversation.ts';
import { ClawmeshError } from '../core/errors.ts';
import { parseOrThrow } from '../core/validation.ts';
import { MessageRequestSchema } from '../gateway/api-routes.ts';
import { silentLogger } from '../observability/logger.ts';
import { probeHttp, requestWithin } from '../observability/probes.ts';
import { createClawmesh } from '../runtime/clawmesh.ts';

/** Options of `clawmesh chat`. */
export interface ChatOptions {
  configFile?: string | undefined;
  url?: string | undefined;
  user?: string | undefined;
  agent?: string | undefined;
  conversation?: string | undefined;
  /** One message to send; the chat reads lines from stdin when absent. */
  message?: string | undefined;
  /** Run in-process even when a server answers. */
  local: boolean;
}

type MessageBody = z.output<typeof MessageRequestSchema>;
type Send = (body: MessageBody) => Promise<TurnReply>;

/** The chat option that sets each field of a message, to name it in errors. */
const OPTION_OF: Record<string, string> = {
  userId: '--user',
  text: '--message',
  conversationId: '--conversation',
  agentId: '--agent',
};

/**
 * `clawmesh chat`: a terminal chat. It talks to a running server over the HTTP API when one
 * answers at `--url`, and otherwise runs every service in-process for the chat's duration.
 * Messages are checked as `POST /v1/messages` checks them, whichever way they go.
 */
export async function runChat(options: ChatOptions): Promise<number> {
  const { config } = loadConfig(options.configFile ? { file: options.configFile } : {});
  const base = serverUrl(options.url ?? `http://127.0.0.1:${config.gateway.port}`);
  const shown = base.href.replace(/\/$/, '');
  const user = options.user ?? 'cli-user';
  checkOptions({
    userId: user,
    ...(options.message !== undefined ? { text: options.message } : {}),
    ...(options.conversation !== undefined ? { conversationId: options.conversation } : {}),
    ...(options.agent !== undefined ? { agentId: options.agent } : {}),
  });
  let conversationId = options.conversation;
  let send: Send;
  let close = async () => {};
  if (!options.local && (await answers(base))) {
    process.stderr.write(`connected to ${shown}\n`);
    const apiKey = process.env.CLAWMESH_API_KEY ?? config.gateway.apiKeys[0];
    send = (body) => sendOverHttp(base, apiKey, body);
  } else {
    process.stderr.write(
      options.local
        ? '--local: running Clawmesh in-process\n'
        : `no server answered at ${shown}: running Clawmesh in-process\n`,
    );
    const app = await createClawmesh({
      configOptions: options.configFile ? { file: options.configFile } : {},
      logger: silentLogger(),
    });
    send = (body) =>
      app.conversation.handle(
        { channel: 'cli', ...body },
        createCallContext({ timeoutMs: 120_000, userId: user, channel: 'cli' }),
      );
    close = () => app.stop();
  }
  const say = async (text: string) => {
    const body = parseOrThrow(
      MessageRequestSchema,
      {
        userId: user,
        text,
        ...(conversationId ? { conversationId } : {}),
        ...(options.agent ? { agentId: options.agent } : {}),
      },
      'invalid message',
    );
    const reply = await send(body);
    conversationId = reply.conversationId;
    for (const call of reply.toolCalls)
      process.stdout.write(`  [tool ${call.skill}.${call.tool} ${call.ok ? 'ok' : 'failed'}]\n`);
    process.stdout.write(reply.dropped ? '(no reply: a plugin dropped it)\n' : `${reply.text}\n`);
  };
  try {
    if (options.message !== undefined) {
      await say(options.message);
      return 0;
    }
    const lines = createInterface({
      input: process.stdin,
      output: process.stdout,
      terminal: process.stdin.isTTY,
    });
    if (process.stdin.isTTY) process.stdout.write('Type a message, /exit to quit.\n');
    lines.setPrompt('you> ');
    if (process.stdin.isTTY) lines.prompt();
    for await (const line of lines) {
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text) {
        try {
          await say(text);
        } catch (err) {
          process.stdout.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
        }
      }
      if (process.stdin.isTTY) lines.prompt();
    }
    lines.close();
    return 0;
  } finally {
    await close();
  }
}

/**
 * The server's base URL, ending in `/` so that paths resolve under it (`http://host/api/` +
 * `healthz` is `http://host/api/healthz`). Anything but an http(s) URL is a usage error.
 */
function serverUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ClawmeshError(
      'INVALID_ARGUMENT',
      `--url "${raw}" is not a URL (example: http://127.0.0.1:8080)`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClawmeshError('INVALID_ARGUMENT', `--url "${raw}" must be an http:// or https:// URL`);
  }
  url.search = '';
  url.hash = '';
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/** Checks the options that go into every message with the API's own schema, naming each bad option. */
function checkOptions(fields: Partial<MessageBody>): void {
  const result = MessageRequestSchema.partial({ text: true }).safeParse(fields);
  if (result.success) return;
  const problems = result.error.issues.map((issue) => {
    const field = String(issue.path[0] ?? '');
    return `${OPTION_OF[field] ?? field}: ${issue.message}`;
  });
  throw new ClawmeshError('INVALID_ARGUMENT', problems.join('; '), {
    details: { fields: result.error.issues.map((issue) => issue.path.map(String).join('.')) },
  });
}

async function answers(base: URL): Promise<boolean> {
  // Node's HTTP client, not fetch: fetch refuses the "bad ports" (6000, 6665-6669, …) a server
  // may listen on, and the chat would then run in-process beside it without a word.
  try {
    return (await probeHttp(new URL('healthz', base).href, { timeoutMs: 500 })).status === 200;
  } catch {
    return false;
  }
}

/** The longest a message sent to a server may take to answer (its turn deadline is shorter). */
const SEND_TIMEOUT_MS = 300_000;

async function sendOverHttp(base: URL, apiKey: string | undefined, body: MessageBody): Promise<TurnReply> {
  const response = await requestWithin(
    new URL('v1/messages', base).href,
    {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}),
      },
      body: JSON.stringify(body),
    },
    SEND_TIMEOUT_MS,
  ).catch((err: unknown) => {
    throw new ClawmeshError('UNAVAILABLE', `the server did not answer: ${(err as Error).message}`);
  });
  let json: TurnReply & { error?: { code: string; message: string } };
  try {
    json = JSON.parse(response.body);
  } catch {
    throw new ClawmeshError('UNAVAILABLE', `${response.status}: the server's answer is not JSON`);
  }
  if (response.status < 200 || response.status >= 300) {
    // The server's keys may be only in its own environment: say where the chat takes its key from.
    const hint =
      response.status === 401
        ? apiKey
          ? " (the key sent is CLAWMESH_API_KEY, else the first of gateway.apiKeys: set CLAWMESH_API_KEY to one of the server's keys)"
          : " (set CLAWMESH_API_KEY to one of the server's API keys)"
        : '';
    throw new ClawmeshError(
      'UNAVAILABLE',
      `${response.status}: ${json.error?.message ?? 'request failed'}${hint}`,
    );
  }
  return json;
}

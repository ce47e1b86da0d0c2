import { createInterface } from 'node:readline';
import { loadConfig } from '../config/load.ts';
import { createCallContext } from '../core/context.ts';
import type { TurnReply } from '../core/contracts/conversation.ts';
import { ClawmeshError } from '../core/errors.ts';
import { silentLogger } from '../observability/logger.ts';
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

type Send = (text: string) => Promise<TurnReply>;

/**
 * `clawmesh chat`: a terminal chat. It talks to a running server over the HTTP API when one
 * answers at `--url`, and otherwise runs every service in-process for the chat's duration.
 */
export async function runChat(options: ChatOptions): Promise<number> {
  const { config } = loadConfig(options.configFile ? { file: options.configFile } : {});
  const url = options.url ?? `http://127.0.0.1:${config.gateway.port}`;
  const user = options.user ?? 'cli-user';
  let conversationId = options.conversation;
  let send: Send;
  let close = async () => {};
  if (!options.local && (await answers(url))) {
    process.stderr.write(`connected to ${url}\n`);
    const apiKey = process.env.CLAWMESH_API_KEY ?? config.gateway.apiKeys[0];
    send = (text) =>
      sendOverHttp(url, apiKey, { userId: user, text, conversationId, agentId: options.agent });
  } else {
    process.stderr.write('no server answered: running Clawmesh in-process\n');
    const app = await createClawmesh({
      configOptions: options.configFile ? { file: options.configFile } : {},
      logger: silentLogger(),
    });
    send = (text) =>
      app.conversation.handle(
        {
          channel: 'cli',
          userId: user,
          text,
          ...(conversationId ? { conversationId } : {}),
          ...(options.agent ? { agentId: options.agent } : {}),
        },
        createCallContext({ timeoutMs: 120_000, userId: user, channel: 'cli' }),
      );
    close = () => app.stop();
  }
  const say = async (text: string) => {
    const reply = await send(text);
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

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(500) });
    return response.ok;
  } catch {
    return false;
  }
}

async function sendOverHttp(
  url: string,
  apiKey: string | undefined,
  body: { userId: string; text: string; conversationId?: string | undefined; agentId?: string | undefined },
): Promise<TurnReply> {
  const response = await fetch(`${url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as TurnReply & { error?: { code: string; message: string } };
  if (!response.ok) {
    throw new ClawmeshError('UNAVAILABLE', `${response.status}: ${json.error?.message ?? 'request failed'}`);
  }
  return json;
}

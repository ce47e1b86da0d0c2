/**
 * Loopback servers that play messaging platforms' APIs with their documented payloads, so the
 * real client code (grammY, fetch) runs unchanged. One generic recorder, then a part per platform.
 */
import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the fake platform received. */
export interface FakeRequest {
  method: string;
  /** The path without the query. */
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  rawBody: string;
  /** The body parsed as JSON or a form (`application/x-www-form-urlencoded`), else undefined. */
  // biome-ignore lint/suspicious/noExplicitAny: tests assert fields of platform payloads
  body: any;
  /** Epoch milliseconds it arrived. */
  at: number;
}

/** What a scripted route answers. `body` is sent as JSON unless it is a string. */
export interface FakeReply {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long before answering, in milliseconds. */
  delayMs?: number;
}

/** Answers one request; returning `undefined` falls through to the next handler (then 404). */
export type FakeHandler = (request: FakeRequest) => FakeReply | undefined | Promise<FakeReply | undefined>;

/** A loopback HTTP server that records requests and answers from scripted handlers. */
export interface FakePlatform {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  /** Every request so far, in arrival order. */
  readonly requests: FakeRequest[];
  /** Adds a handler for a method and path (a string matches exactly, a RegExp tests); newest first. */
  on(method: string, path: string | RegExp, handler: FakeHandler): void;
  /** Requests to a path (exact or RegExp). */
  requestsTo(path: string | RegExp): FakeRequest[];
  /** Resolves with the `count`-th request to `path` once it has arrived (1-based). */
  waitFor(path: string | RegExp, count?: number, timeoutMs?: number): Promise<FakeRequest>;
  close(): Promise<void>;
}

const matches = (pattern: string | RegExp, path: string) =>
  typeof pattern === 'string' ? pattern === path : pattern.test(path);

/** Starts a {@link FakePlatform} on 127.0.0.1 and a free port. */
export async function startFakePlatform(): Promise<FakePlatform> {
  const requests: FakeRequest[] = [];
  const handlers: { method: string; path: string | RegExp; handler: FakeHandler }[] = [];
  const waiters = new Set<() => void>();

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void answer(req, Buffer.concat(chunks).toString('utf8'), res);
    });
  });

  const answer = async (req: IncomingMessage, rawBody: string, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const request: FakeRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      rawBody,
      body: parseBody(req.headers['content-type'], rawBody),
      at: Date.now(),
    };
    requests.push(request);
    for (const wake of [...waiters]) wake();
    let reply: FakeReply | undefined;
    try {
      for (const entry of handlers) {
        if (entry.method !== request.method || !matches(entry.path, request.path)) continue;
        reply = await entry.handler(request);
        if (reply) break;
      }
    } catch (err) {
      reply = { status: 500, body: { error: String(err) } };
    }
    reply ??= { status: 404, body: { ok: false, error: `no fake route ${request.method} ${request.path}` } };
    if (reply.delayMs) await new Promise((resolve) => setTimeout(resolve, reply.delayMs));
    const body = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {});
    res.writeHead(reply.status ?? 200, {
      'content-type': typeof reply.body === 'string' ? 'text/plain' : 'application/json',
      ...reply.headers,
    });
    res.end(body);
  };

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const requestsTo = (path: string | RegExp) => requests.filter((r) => matches(path, r.path));
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    on(method, path, handler) {
      handlers.unshift({ method, path, handler });
    },
    requestsTo,
    waitFor(path, count = 1, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const seen = requestsTo(path);
          if (seen.length < count) return false;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(seen[count - 1]!);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`timed out waiting for request #${count} to ${path} (saw ${requestsTo(path).length})`),
          );
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function parseBody(contentType: string | undefined, raw: string): unknown {
  if (!raw) return undefined;
  if (contentType?.includes('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(raw));
  }
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}

/** Polls `check` every 10 ms until it returns true; rejects after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

// ─── Telegram Bot API ─────────────────────────────────────────────────────────────────────────

/** The bot the fake Telegram serves (`getMe`). */
export const TELEGRAM_BOT = {
  id: 7_000_001,
  is_bot: true,
  first_name: 'Clawmesh Test',
  username: 'clawmesh_test_bot',
  can_join_groups: true,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
} as const;

/** A bot token for the fake (`<bot id>:<secret>`). */
export const TELEGRAM_TOKEN = `${TELEGRAM_BOT.id}:AAHfake-token_for-tests`;

/** A fake Telegram Bot API: getMe, sendMessage, sendChatAction, getUpdates, setWebhook, deleteWebhook. */
export interface FakeTelegram extends FakePlatform {
  /** The `sendMessage` calls so far (JSON bodies). */
  // biome-ignore lint/suspicious/noExplicitAny: Bot API payloads
  sent(): any[];
  /** Queues updates for `getUpdates` (answered once their offset is reached). */
  queueUpdates(...updates: unknown[]): void;
  /** Path of a method: `/bot<token>/<method>`. */
  method(name: string): string;
}

/** Starts a fake Telegram Bot API server for `token`. */
export async function startFakeTelegram(token = TELEGRAM_TOKEN): Promise<FakeTelegram> {
  const platform = await startFakePlatform();
  const method = (name: string) => `/bot${token}/${name}`;
  let messageId = 100;
  const queued: { update_id: number }[] = [];
  const pollers = new Set<() => void>();
  platform.on('POST', method('getMe'), () => ({ body: { ok: true, result: TELEGRAM_BOT } }));
  platform.on('POST', method('sendChatAction'), () => ({ body: { ok: true, result: true } }));
  platform.on('POST', method('setWebhook'), () => ({
    body: { ok: true, result: true, description: 'Webhook was set' },
  }));
  platform.on('POST', method('deleteWebhook'), () => ({ body: { ok: true, result: true } }));
  platform.on('POST', method('sendMessage'), (req) => {
    messageId += 1;
    return {
      body: {
        ok: true,
        result: {
          message_id: messageId,
          from: TELEGRAM_BOT,
          chat: { id: req.body.chat_id, type: 'private' },
          date: Math.floor(Date.now() / 1000),
          text: req.body.text,
        },
      },
    };
  });
  platform.on('POST', method('getUpdates'), async (req) => {
    const offset = Number(req.body?.offset ?? 0);
    const timeoutMs = Math.min(Number(req.body?.timeout ?? 0), 2) * 1000;
    const ready = () => queued.filter((u) => u.update_id >= offset);
    if (ready().length === 0 && timeoutMs > 0) {
      await new Promise<void>((resolve) => {
        const wake = () => {
          pollers.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, timeoutMs);
        pollers.add(wake);
      });
    }
    return { body: { ok: true, result: ready() } };
  });
  return {
    ...platform,
    sent: () => platform.requestsTo(method('sendMessage')).map((r) => r.body),
    queueUpdates(...updates) {
      queued.push(...(updates as { update_id: number }[]));
      for (const wake of [...pollers]) wake();
    },
    method,
  };
}

let nextTelegramMessageId = 1;

/** A Telegram `Update` with a text `Message`, as the Bot API documents it. */
export function telegramTextUpdate(options: {
  updateId: number;
  text: string;
  userId?: number;
  chatId?: number;
  chatType?: 'private' | 'group' | 'supergroup';
  /** `entities` of the message (mentions, commands). */
  entities?: { type: string; offset: number; length: number }[];
  replyToBot?: boolean;
}) {
  const userId = options.userId ?? 1001;
  const chatType = options.chatType ?? 'private';
  const chatId = options.chatId ?? userId;
  nextTelegramMessageId += 1;
  return {
    update_id: options.updateId,
    message: {
      message_id: nextTelegramMessageId,
      from: { id: userId, is_bot: false, first_name: 'Ada', username: `user${userId}`, language_code: 'en' },
      chat:
        chatType === 'private'
          ? { id: chatId, first_name: 'Ada', username: `user${userId}`, type: 'private' }
          : { id: chatId, title: 'Test group', type: chatType },
      date: Math.floor(Date.now() / 1000),
      text: options.text,
      ...(options.entities ? { entities: options.entities } : {}),
      ...(options.replyToBot
        ? {
            reply_to_message: {
              message_id: 1,
              from: TELEGRAM_BOT,
              chat: { id: chatId, type: chatType },
              date: Math.floor(Date.now() / 1000) - 60,
              text: 'an earlier answer',
            },
          }
        : {}),
    },
  };
}

// ─── Slack Web API and Events API ─────────────────────────────────────────────────────────────

/** A fake Slack Web API: `chat.postMessage` (answers `ok:true` unless scripted otherwise). */
export interface FakeSlack extends FakePlatform {
  /** The `chat.postMessage` calls so far (JSON bodies). */
  // biome-ignore lint/suspicious/noExplicitAny: Web API payloads
  posted(): any[];
}

/** Starts a fake Slack Web API; point `SLACK_API_ROOT` at `url` (no `/api` suffix is needed). */
export async function startFakeSlack(): Promise<FakeSlack> {
  const platform = await startFakePlatform();
  let ts = 1_700_000_000;
  platform.on('POST', '/chat.postMessage', (req) => {
    ts += 1;
    return {
      body: { ok: true, channel: req.body?.channel, ts: `${ts}.000100`, message: { text: req.body?.text } },
    };
  });
  return { ...platform, posted: () => platform.requestsTo('/chat.postMessage').map((r) => r.body) };
}

/** The `X-Slack-Signature` of a body: `v0=` + HMAC-SHA256 of `v0:{timestamp}:{body}`. */
export function slackSignature(secret: string, timestamp: number | string, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/** Headers of a signed Slack Events API request (timestamp: now unless given). */
export function slackHeaders(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)) {
  return {
    'content-type': 'application/json',
    'x-slack-request-timestamp': String(timestamp),
    'x-slack-signature': slackSignature(secret, timestamp, body),
  };
}

/** An `event_callback` envelope with a `message` event, as the Events API documents it. */
export function slackMessageEvent(options: {
  eventId: string;
  text: string;
  user?: string;
  channel?: string;
  channelType?: 'im' | 'channel' | 'group' | 'mpim';
  team?: string;
  botId?: string;
  subtype?: string;
  threadTs?: string;
  type?: 'message' | 'app_mention';
}) {
  const ts = `${Math.floor(Date.now() / 1000)}.${String(Math.floor(Math.random() * 1e6)).padStart(6, '0')}`;
  const team = options.team ?? 'T0001';
  return {
    token: 'deprecated-verification-token',
    team_id: team,
    api_app_id: 'A0001',
    event: {
      type: options.type ?? 'message',
      ...(options.subtype ? { subtype: options.subtype } : {}),
      channel: options.channel ?? 'D0001',
      ...(options.type === 'app_mention' ? {} : { channel_type: options.channelType ?? 'im' }),
      user: options.user ?? 'U0001',
      text: options.text,
      ts,
      event_ts: ts,
      ...(options.botId ? { bot_id: options.botId } : {}),
      ...(options.threadTs ? { thread_ts: options.threadTs } : {}),
      team,
    },
    type: 'event_callback',
    event_id: options.eventId,
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [
      { enterprise_id: null, team_id: team, user_id: 'UBOT', is_bot: true, is_enterprise_install: false },
    ],
    is_ext_shared_channel: false,
    event_context: `4-${options.eventId}`,
  };
}

/** The bot user id the Slack fixtures authorize (`authorizations[0].user_id`). */
export const SLACK_BOT_USER = 'UBOT';

// ─── Discord (H7) ─────────────────────────────────────────────────────────────────────────────
/** An Ed25519 key pair standing in for a Discord application's: the hex public key goes in `DISCORD_PUBLIC_KEY`. */
export interface DiscordTestKeys {
  /** 64 hex digits, as the Developer Portal shows "Public Key". */
  publicKeyHex: string;
  privateKey: KeyObject;
}

/** A fresh Ed25519 key pair (node:crypto). */
export function discordKeyPair(): DiscordTestKeys {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { publicKeyHex: spki.subarray(spki.length - 32).toString('hex'), privateKey };
}

/** `X-Signature-Ed25519`: the hex Ed25519 signature of `timestamp + body`. */
export function discordSignature(privateKey: KeyObject, timestamp: string, body: string | Buffer): string {
  const message = Buffer.concat([Buffer.from(timestamp), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
  return sign(null, message, privateKey).toString('hex');
}

/** Headers of a signed interaction (timestamp: now unless given). */
export function discordHeaders(
  privateKey: KeyObject,
  body: string,
  timestamp = String(Math.floor(Date.now() / 1000)),
): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'Discord-Interactions/1.0 (+https://discord.com)',
    'x-signature-ed25519': discordSignature(privateKey, timestamp, body),
    'x-signature-timestamp': timestamp,
  };
}

/** The application id the Discord fixtures use. */
export const DISCORD_APPLICATION_ID = '1190000000000000001';

let discordSequence = 0;

/** A fresh snowflake id (time-ordered, unique in this process). */
export function discordSnowflake(): string {
  discordSequence = (discordSequence + 1) % 4096;
  return String(((BigInt(Date.now()) - 1_420_070_400_000n) << 22n) | BigInt(discordSequence));
}

/** A PING interaction, as Discord sends it to check the endpoint. */
export function discordPing(applicationId = DISCORD_APPLICATION_ID) {
  return {
    application_id: applicationId,
    id: discordSnowflake(),
    token: 'ping-token',
    type: 1,
    user: null,
    version: 1,
  };
}

/** An `APPLICATION_COMMAND` interaction for `/ask question:<text>`, as Discord documents it. */
export function discordAskInteraction(options: {
  question?: string;
  id?: string;
  token?: string;
  userId?: string;
  channelId?: string;
  /** In a server (default) or, when `null`, in a DM with the bot. */
  guildId?: string | null;
  applicationId?: string;
  command?: string;
}) {
  const applicationId = options.applicationId ?? DISCORD_APPLICATION_ID;
  const user = {
    id: options.userId ?? '80351110224678912',
    username: 'ada',
    global_name: 'Ada',
    discriminator: '0',
    avatar: null,
  };
  const guildId = options.guildId === undefined ? '290926798626357250' : options.guildId;
  const channelId = options.channelId ?? '290926798626357999';
  return {
    app_permissions: '442368',
    application_id: applicationId,
    authorizing_integration_owners: { '0': guildId ?? '0' },
    channel: { id: channelId, type: guildId ? 0 : 1 },
    channel_id: channelId,
    context: guildId ? 0 : 1,
    data: {
      id: '1190000000000000100',
      name: options.command ?? 'ask',
      type: 1,
      ...(options.question === undefined
        ? {}
        : { options: [{ name: 'question', type: 3, value: options.question }] }),
    },
    entitlements: [],
    ...(guildId
      ? {
          guild: { features: [], id: guildId, locale: 'en-US' },
          guild_id: guildId,
          guild_locale: 'en-US',
          member: {
            user,
            roles: [],
            nick: null,
            joined_at: '2024-01-01T00:00:00.000000+00:00',
            permissions: '0',
          },
        }
      : { user }),
    id: options.id ?? discordSnowflake(),
    locale: 'en-US',
    token: options.token ?? `aW50ZXJhY3Rpb246${discordSnowflake()}`,
    type: 2,
    version: 1,
  };
}

/** A fake Discord REST API under `/api/v10`: interaction webhooks and command registration. */
export interface FakeDiscord extends FakePlatform {
  /** What to put in `DISCORD_API_ROOT`: `<url>/api/v10`. */
  apiRoot: string;
  /** Edits of original responses (`PATCH …/messages/@original`), with the token and body. */
  // biome-ignore lint/suspicious/noExplicitAny: REST payloads
  edits(): { token: string; body: any }[];
  /** Follow-up messages (`POST /webhooks/{app}/{token}`). */
  // biome-ignore lint/suspicious/noExplicitAny: REST payloads
  followUps(): { token: string; body: any }[];
}

const DISCORD_EDIT = /^\/api\/v10\/webhooks\/(\d+)\/([^/]+)\/messages\/@original$/;
const DISCORD_FOLLOW_UP = /^\/api\/v10\/webhooks\/(\d+)\/([^/]+)$/;
const DISCORD_COMMANDS = /^\/api\/v10\/applications\/(\d+)(\/guilds\/\d+)?\/commands$/;

/** Starts a fake Discord REST API (answers as Discord does; script 429s with `on`). */
export async function startFakeDiscord(): Promise<FakeDiscord> {
  const platform = await startFakePlatform();
  const message = (req: FakeRequest, applicationId: string) => ({
    id: discordSnowflake(),
    type: 20,
    content: req.body?.content ?? '',
    channel_id: '290926798626357999',
    author: { id: applicationId, username: 'Clawmesh', bot: true, discriminator: '0000', avatar: null },
    webhook_id: applicationId,
    application_id: applicationId,
    timestamp: new Date().toISOString(),
    edited_timestamp: null,
    flags: 0,
    mentions: [],
    attachments: [],
    embeds: [],
  });
  platform.on('PATCH', DISCORD_EDIT, (req) => ({ body: message(req, DISCORD_EDIT.exec(req.path)![1]!) }));
  platform.on('POST', DISCORD_FOLLOW_UP, (req) => ({
    body: message(req, DISCORD_FOLLOW_UP.exec(req.path)![1]!),
  }));
  platform.on('PUT', DISCORD_COMMANDS, (req) => {
    const applicationId = DISCORD_COMMANDS.exec(req.path)![1]!;
    if (!/^Bot \S+$/.test(String(req.headers.authorization ?? ''))) {
      return { status: 401, body: { message: '401: Unauthorized', code: 0 } };
    }
    const commands = Array.isArray(req.body) ? req.body : [];
    return {
      body: commands.map((command: Record<string, unknown>) => ({
        id: discordSnowflake(),
        application_id: applicationId,
        version: discordSnowflake(),
        default_member_permissions: null,
        type: 1,
        ...command,
      })),
    };
  });
  const calls = (pattern: RegExp, method: string) =>
    platform
      .requestsTo(pattern)
      .filter((r) => r.method === method)
      .map((r) => ({ token: decodeURIComponent(pattern.exec(r.path)![2]!), body: r.body }));
  return {
    ...platform,
    apiRoot: `${platform.url}/api/v10`,
    edits: () => calls(DISCORD_EDIT, 'PATCH'),
    followUps: () => calls(DISCORD_FOLLOW_UP, 'POST'),
  };
}

// ─── WhatsApp Cloud API (H7) ──────────────────────────────────────────────────────────────────
/** The business number and account the WhatsApp fixtures use. */
export const WHATSAPP_PHONE_NUMBER_ID = '106540352242922';
/** The Graph API version the fake serves. */
export const WHATSAPP_VERSION = 'v21.0';

/** `X-Hub-Signature-256`: `sha256=` + HMAC-SHA256 of the raw body with the app secret. */
export function whatsappSignature(appSecret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

/** Headers of a signed webhook notification, as Meta sends it. */
export function whatsappHeaders(appSecret: string, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'user-agent': 'facebookexternalua',
    'x-hub-signature-256': whatsappSignature(appSecret, body),
  };
}

let whatsappSequence = 0;

/** A fresh `wamid.…` message id. */
export function whatsappMessageId(): string {
  whatsappSequence += 1;
  return `wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQz${Date.now().toString(36).toUpperCase()}${whatsappSequence}AA=`;
}

/** The `messages` webhook envelope around one `value`, as the Cloud API documents it. */
function whatsappEnvelope(value: Record<string, unknown>, phoneNumberId: string) {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: phoneNumberId },
              ...value,
            },
            field: 'messages',
          },
        ],
      },
    ],
  };
}

/** A webhook with one incoming message (`text` by default; pass `type` and `extra` for others). */
export function whatsappMessageWebhook(options: {
  text?: string;
  id?: string;
  from?: string;
  name?: string;
  phoneNumberId?: string;
  type?: string;
  /** The type's own object, e.g. `{ image: { id, mime_type, sha256 } }`. */
  extra?: Record<string, unknown>;
}) {
  const from = options.from ?? '16505551234';
  const type = options.type ?? 'text';
  return whatsappEnvelope(
    {
      contacts: [{ profile: { name: options.name ?? 'Sheena Nelson' }, wa_id: from }],
      messages: [
        {
          from,
          id: options.id ?? whatsappMessageId(),
          timestamp: String(Math.floor(Date.now() / 1000)),
          type,
          ...(type === 'text' ? { text: { body: options.text ?? 'Hello' } } : {}),
          ...options.extra,
        },
      ],
    },
    options.phoneNumberId ?? WHATSAPP_PHONE_NUMBER_ID,
  );
}

/** A status callback (`sent`, `delivered`, `read`, `failed`) for a message the business sent. */
export function whatsappStatusWebhook(
  options: { id?: string; status?: string; recipient?: string; phoneNumberId?: string } = {},
) {
  const recipient = options.recipient ?? '16505551234';
  return whatsappEnvelope(
    {
      statuses: [
        {
          id: options.id ?? whatsappMessageId(),
          status: options.status ?? 'delivered',
          timestamp: String(Math.floor(Date.now() / 1000)),
          recipient_id: recipient,
          conversation: { id: 'CONVERSATION_ID', origin: { type: 'service' } },
          pricing: {
            billable: false,
            pricing_model: 'PMP',
            category: 'service',
            type: 'free_customer_service',
          },
        },
      ],
    },
    options.phoneNumberId ?? WHATSAPP_PHONE_NUMBER_ID,
  );
}

/** A fake Graph API: `POST /{version}/{phone-number-id}/messages` with a bearer token. */
export interface FakeWhatsApp extends FakePlatform {
  /** The path messages are sent to. */
  messagesPath: string;
  /** The bodies of accepted message sends so far. */
  // biome-ignore lint/suspicious/noExplicitAny: Graph API payloads
  sent(): any[];
}

/** Starts a fake Graph API accepting `accessToken` for `phoneNumberId`; point `WHATSAPP_API_ROOT` at `url`. */
export async function startFakeWhatsApp(
  options: { accessToken?: string; phoneNumberId?: string; version?: string } = {},
): Promise<FakeWhatsApp> {
  const platform = await startFakePlatform();
  const messagesPath = `/${options.version ?? WHATSAPP_VERSION}/${options.phoneNumberId ?? WHATSAPP_PHONE_NUMBER_ID}/messages`;
  const accepted: unknown[] = [];
  platform.on('POST', messagesPath, (req) => {
    if (options.accessToken && req.headers.authorization !== `Bearer ${options.accessToken}`) {
      return {
        status: 401,
        body: {
          error: {
            message: 'Invalid OAuth access token.',
            type: 'OAuthException',
            code: 190,
            fbtrace_id: 'Atrace',
          },
        },
      };
    }
    if (
      req.body?.messaging_product !== 'whatsapp' ||
      req.body?.type !== 'text' ||
      typeof req.body?.text?.body !== 'string'
    ) {
      return {
        status: 400,
        body: {
          error: {
            message: '(#100) Invalid parameter',
            type: 'OAuthException',
            code: 100,
            fbtrace_id: 'Atrace',
          },
        },
      };
    }
    accepted.push(req.body);
    return {
      body: {
        messaging_product: 'whatsapp',
        contacts: [{ input: req.body.to, wa_id: req.body.to }],
        messages: [{ id: whatsappMessageId() }],
      },
    };
  });
  return { ...platform, messagesPath, sent: () => [...accepted] };
}

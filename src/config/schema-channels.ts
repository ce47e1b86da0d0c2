import { z } from 'zod';

/** A limit of `points` messages per `durationSeconds`. */
const LimitSchema = (points: number, durationSeconds: number) =>
  z
    .strictObject({
      points: z.number().int().positive().default(points),
      durationSeconds: z.number().int().positive().default(durationSeconds),
    })
    .prefault({});

/** Who may talk to the bot in a direct message. */
export const DM_POLICIES = ['open', 'allowlist', 'pairing', 'disabled'] as const;
/** One of {@link DM_POLICIES}. */
export type DmPolicy = (typeof DM_POLICIES)[number];

/** Access settings every messaging channel has. */
const accessFields = (dmPolicy: DmPolicy) => ({
  /**
   * Direct messages: `open` (anyone), `allowlist` (only `allowlist`), `pairing` (an unknown
   * sender gets a one-time code the operator approves with `clawmesh pairing approve`),
   * `disabled` (no direct messages).
   */
  dmPolicy: z.enum(DM_POLICIES).default(dmPolicy),
  /** Platform user ids always allowed to send direct messages (under `allowlist` and `pairing`). */
  allowlist: z.array(z.string().min(1)).default([]),
  /** Pairing codes. */
  pairing: z
    .strictObject({
      /** How long a pairing code stays valid, in seconds. */
      codeTtlSeconds: z.number().int().positive().default(3600),
    })
    .prefault({}),
  /** Group chats. */
  groups: z
    .strictObject({
      /** Answer in a group only when the bot is mentioned (or replied to). */
      requireMention: z.boolean().default(true),
    })
    .prefault({}),
  /** Rate limits: per sender, and for the whole channel. */
  rateLimit: z
    .strictObject({
      perUser: LimitSchema(20, 60),
      perChannel: LimitSchema(600, 60),
    })
    .prefault({}),
});

/** Telegram (`TELEGRAM_BOT_TOKEN`, `TELEGRAM_WEBHOOK_SECRET`, `TELEGRAM_API_ROOT`). */
export const TelegramConfigSchema = z
  .strictObject({
    /** The bot token from @BotFather; the channel is off without it. */
    botToken: z.string().min(1).optional(),
    /** The `secret_token` given to `setWebhook`; Telegram echoes it in `X-Telegram-Bot-Api-Secret-Token`. */
    webhookSecret: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,256}$/, 'must be 1-256 characters A-Z, a-z, 0-9, _ or -')
      .optional(),
    /** The Bot API server (a proxy or a local Bot API server may stand in). */
    apiRoot: z.string().url().default('https://api.telegram.org'),
    /** `webhook` (Telegram POSTs to /channels/telegram/webhook) or `polling` (getUpdates). */
    mode: z.enum(['webhook', 'polling']).default('webhook'),
    /** When set in webhook mode, `setWebhook` is called with this public URL at start. */
    webhookUrl: z.string().url().optional(),
    /** Long-polling timeout of one getUpdates call, in seconds. */
    pollingTimeoutSeconds: z.number().int().min(0).max(50).default(25),
    ...accessFields('pairing'),
  })
  .prefault({});

/** Slack (`SLACK_SIGNING_SECRET`, `SLACK_BOT_TOKEN`, `SLACK_API_ROOT`). */
export const SlackConfigSchema = z
  .strictObject({
    /** The app's signing secret (Basic Information → App Credentials). */
    signingSecret: z.string().min(1).optional(),
    /** The bot token (`xoxb-…`) used for `chat.postMessage`. */
    botToken: z.string().min(1).optional(),
    /** The Web API base URL. */
    apiRoot: z.string().url().default('https://slack.com/api'),
    /** Reply in the thread of the message (default) or in the channel. */
    replyInThread: z.boolean().default(true),
    ...accessFields('pairing'),
  })
  .prefault({});

/** Discord interactions (`DISCORD_PUBLIC_KEY`, `DISCORD_APPLICATION_ID`, `DISCORD_BOT_TOKEN`, `DISCORD_API_ROOT`). */
export const DiscordConfigSchema = z
  .strictObject({
    /** The application's Ed25519 public key: the 64 hex digits the Developer Portal shows. */
    publicKey: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits (the Public Key of the Developer Portal)')
      .optional(),
    /** The application id (for follow-up and edit webhooks). */
    applicationId: z.string().min(1).optional(),
    /** The bot token (to register the `/ask` command). */
    botToken: z.string().min(1).optional(),
    /** The REST API base URL. */
    apiRoot: z.string().url().default('https://discord.com/api/v10'),
    ...accessFields('pairing'),
  })
  .prefault({});

/** WhatsApp Cloud API (`WHATSAPP_APP_SECRET`, `WHATSAPP_VERIFY_TOKEN`, `WHATSAPP_ACCESS_TOKEN`, `WHATSAPP_PHONE_NUMBER_ID`, `WHATSAPP_API_ROOT`). */
export const WhatsAppConfigSchema = z
  .strictObject({
    /** The Meta app secret: `X-Hub-Signature-256` is HMAC-SHA256 of the raw body with it. */
    appSecret: z.string().min(1).optional(),
    /** The token the webhook's GET verification must echo (`hub.verify_token`). */
    verifyToken: z.string().min(1).optional(),
    /** The Graph API access token used to send messages. */
    accessToken: z.string().min(1).optional(),
    /** The business phone number id replies are sent from. */
    phoneNumberId: z.string().min(1).optional(),
    /** The Graph API base URL (a root that ends in a version, `…/v22.0`, keeps it). */
    apiRoot: z.string().url().default('https://graph.facebook.com'),
    /** The Graph API version used in the send URL. */
    apiVersion: z
      .string()
      .regex(/^v\d+\.\d+$/, 'must look like v21.0')
      .default('v21.0'),
    ...accessFields('pairing'),
  })
  .prefault({});

/** The web chat page at `/` (no secrets; on by default). */
export const WebChatConfigSchema = z
  .strictObject({
    /** Serve the web chat page and its socket. */
    enabled: z.boolean().default(true),
    /** Open the chat to anyone who reaches the port, even when API keys guard the HTTP API. */
    public: z.boolean().default(false),
    ...accessFields('open'),
  })
  .prefault({});

/** A binding: messages matching channel (and account, chat or peer) go to an agent. The most specific match wins. */
export const BindingSchema = z.strictObject({
  /** The channel name: `telegram`, `slack`, `discord`, `whatsapp`, `webchat`. */
  channel: z.string().min(1),
  /** Only this account (bot id, Slack team, Discord application, WhatsApp phone number id). */
  account: z.string().min(1).optional(),
  /** Only this chat (group, channel or DM conversation id). */
  chat: z.string().min(1).optional(),
  /** Only this sender. */
  peer: z.string().min(1).optional(),
  /** The agent id the messages go to. */
  agent: z.string().min(1),
});
/** One binding. */
export type Binding = z.infer<typeof BindingSchema>;

/** The messaging channels, their bindings and delivery settings (`channels:` in the config). */
export const ChannelsConfigSchema = z
  .strictObject({
    telegram: TelegramConfigSchema,
    slack: SlackConfigSchema,
    discord: DiscordConfigSchema,
    whatsapp: WhatsAppConfigSchema,
    webchat: WebChatConfigSchema,
    /** Routing from channel, account, chat or peer to an agent; unmatched messages go to the default agent. */
    bindings: z.array(BindingSchema).default([]),
    /** Sending replies. */
    delivery: z
      .strictObject({
        /** Tries of one reply part before the delivery is recorded as failed. */
        maxAttempts: z.number().int().min(1).max(20).default(6),
        /** First retry delay, doubled each try (with jitter), in milliseconds. */
        baseDelayMs: z.number().int().min(1).default(500),
        /** Longest wait between tries, a platform's `retry_after` included, in milliseconds. */
        maxDelayMs: z.number().int().min(1).default(60_000),
        /** Turns the channels run at once. */
        concurrency: z.number().int().min(1).max(1000).default(16),
      })
      .prefault({}),
    /**
     * Where the inbox and pairing state live: `sqlite` (the store's file, or `./data/clawmesh.db`),
     * `memory`, or `auto` (memory when the store is memory; else SQLite, except the pairing state
     * of a Redis or PostgreSQL store, which goes there, shared by every gateway replica).
     */
    state: z.enum(['auto', 'memory', 'sqlite']).default('auto'),
    /** Where rate-limit counters live: `memory` (one process) or `redis` (shared by every gateway; `REDIS_URL`). */
    limiter: z.enum(['memory', 'redis']).default('memory'),
  })
  .prefault({});

/** The validated `channels` section. */
export type ChannelsConfig = z.infer<typeof ChannelsConfigSchema>;
/** The access settings of one channel section. */
export type ChannelAccessConfig = Pick<
  z.infer<typeof TelegramConfigSchema>,
  'dmPolicy' | 'allowlist' | 'pairing' | 'groups' | 'rateLimit'
>;

import type { Config } from '../config/schema.ts';
import { whatsAppNumberUrl } from '../gateway/channels/whatsapp/api.ts';
import { probeHttp } from '../observability/probes.ts';
import { Problem, reason } from './doctor-check.ts';

/** A platform's answer to the bot's credentials, as read from `GET` of its "who am I" method. */
type Verdict = { ok: true; who?: string } | { ok: false; why: string };

/** A channel whose bot token doctor asks its platform about, and how. */
interface TokenProbe {
  /** The platform's API root, as configured (named in what is printed). */
  root: (config: Config) => string;
  url: (config: Config) => string;
  headers: (config: Config) => Record<string, string>;
  token: (config: Config) => string;
  verdict: (status: number, body: Record<string, unknown>) => Verdict;
  variables: { token: string; root: string };
}

const PROBES: Record<string, TokenProbe> = {
  telegram: {
    root: (config) => config.channels.telegram.apiRoot,
    url: (config) =>
      `${config.channels.telegram.apiRoot.replace(/\/+$/, '')}/bot${config.channels.telegram.botToken}/getMe`,
    headers: () => ({}),
    token: (config) => config.channels.telegram.botToken ?? '',
    // A token Telegram does not know answers 401 Unauthorized; a malformed one 404 Not Found.
    verdict: (status, body) =>
      status === 200 && body.ok === true
        ? { ok: true, who: usernameOf(body.result) }
        : {
            ok: false,
            why: `HTTP ${status}${typeof body.description === 'string' ? ` ${body.description}` : ''}`,
          },
    variables: { token: 'TELEGRAM_BOT_TOKEN', root: 'TELEGRAM_API_ROOT' },
  },
  slack: {
    root: (config) => config.channels.slack.apiRoot,
    url: (config) => `${config.channels.slack.apiRoot.replace(/\/+$/, '')}/auth.test`,
    headers: (config) => ({ authorization: `Bearer ${config.channels.slack.botToken}` }),
    token: (config) => config.channels.slack.botToken ?? '',
    // Slack answers 200 with {ok: false, error: 'invalid_auth'} to a token it refuses.
    verdict: (status, body) =>
      status === 200 && body.ok === true
        ? { ok: true, ...(typeof body.user === 'string' ? { who: body.user } : {}) }
        : { ok: false, why: typeof body.error === 'string' ? body.error : `HTTP ${status}` },
    variables: { token: 'SLACK_BOT_TOKEN', root: 'SLACK_API_ROOT' },
  },
  discord: {
    root: (config) => config.channels.discord.apiRoot,
    // The bot token is optional (it registers the /ask command): without one there is nothing to ask.
    url: (config) => `${config.channels.discord.apiRoot.replace(/\/+$/, '')}/users/@me`,
    headers: (config) => ({ authorization: `Bot ${config.channels.discord.botToken}` }),
    token: (config) => config.channels.discord.botToken ?? '',
    // Discord answers 401 {message: "401: Unauthorized", code: 0} to a token it does not know.
    verdict: (status, body) =>
      status === 200
        ? { ok: true, ...(typeof body.username === 'string' ? { who: body.username } : {}) }
        : { ok: false, why: typeof body.message === 'string' ? body.message : `HTTP ${status}` },
    variables: { token: 'DISCORD_BOT_TOKEN', root: 'DISCORD_API_ROOT' },
  },
  whatsapp: {
    root: (config) => config.channels.whatsapp.apiRoot,
    // The business number replies are sent from: its node names the number when the token may use it.
    url: (config) =>
      whatsAppNumberUrl({
        phoneNumberId: config.channels.whatsapp.phoneNumberId ?? '',
        apiRoot: config.channels.whatsapp.apiRoot,
        apiVersion: config.channels.whatsapp.apiVersion,
      }),
    headers: (config) => ({ authorization: `Bearer ${config.channels.whatsapp.accessToken}` }),
    token: (config) => config.channels.whatsapp.accessToken ?? '',
    // Graph answers an expired or unknown token with {error: {message, type: "OAuthException", code: 190}}.
    verdict: (status, body) => {
      if (status === 200) {
        const number = body.display_phone_number;
        return { ok: true, ...(typeof number === 'string' ? { who: number } : {}) };
      }
      const message = (body.error as { message?: unknown } | undefined)?.message;
      return { ok: false, why: `HTTP ${status}${typeof message === 'string' ? ` ${message}` : ''}` };
    },
    variables: { token: 'WHATSAPP_ACCESS_TOKEN', root: 'WHATSAPP_API_ROOT' },
  },
};

function usernameOf(result: unknown): string | undefined {
  const username = (result as { username?: unknown } | null)?.username;
  return typeof username === 'string' ? `@${username}` : undefined;
}

/**
 * The detail of a channel that is on: the platform is asked who its token belongs to within 3 s
 * (Telegram `getMe`, Slack `auth.test`, Discord `GET /users/@me` when a bot token is set, the
 * WhatsApp business number's Graph node), telling a token it refuses from a platform that cannot
 * be reached. The web chat has no token to ask about. The token never appears in what is printed.
 */
export async function channelOnDetail(name: string, config: Config): Promise<string> {
  const probe = PROBES[name];
  if (!probe) return 'on';
  const token = probe.token(config);
  if (!token) return 'on';
  const hide = (text: string) => (token.length > 0 ? text.replaceAll(token, '***') : text);
  const root = probe.root(config);
  let answer: { status: number; body: string };
  try {
    answer = await probeHttp(probe.url(config), { headers: probe.headers(config), timeoutMs: 3000 });
  } catch (err) {
    throw new Problem(
      `on, but cannot reach ${root}: ${hide(reason(err))}`,
      `check this host's network access to ${root}, or set ${probe.variables.root}`,
    );
  }
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(answer.body) as Record<string, unknown>;
  } catch {
    // Not JSON (a proxy's error page): the status says enough.
  }
  const verdict = probe.verdict(answer.status, body);
  if (!verdict.ok) {
    throw new Problem(
      `on, but ${root} refused ${probe.variables.token} (${hide(verdict.why)})`,
      `set ${probe.variables.token} to the bot's current token`,
    );
  }
  return verdict.who ? `on (${hide(verdict.who)})` : 'on';
}

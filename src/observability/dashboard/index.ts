import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ConversationIdSchema } from '../../core/contracts/conversation.ts';
import { ClawmeshError } from '../../core/errors.ts';
import { parseOrThrow } from '../../core/validation.ts';
import type { ApiKeyCheck } from '../../gateway/auth.ts';
import type { ConversationStore } from '../../store/types.ts';
import { loadPageFiles, sendPageFile } from './assets.ts';
import { readAuditTail } from './audit-tail.ts';
import { conversationView, recentConversations } from './conversations.ts';
import type { AuditView, ConversationSummary, ServicesView, Unavailable, UsageView } from './views.ts';

export { readAuditTail } from './audit-tail.ts';
export { groupTurns } from './conversations.ts';
export { createServicesView, type ServicesViewOptions } from './services.ts';
export { createUsageCounter, startUsageFeed, type UsageCounter, type UsageFeed } from './usage.ts';
export type * from './views.ts';

/** What the dashboard shows, as functions, so each process wires what it has. */
export interface DashboardDeps {
  /** The API key check of `/v1/messages`: with keys configured, every `/dashboard/api/...` call needs one. */
  auth: ApiKeyCheck;
  /** This process and the instances it can discover (see `createServicesView`). */
  services(): Promise<ServicesView>;
  /** The conversation store, when this process runs the conversation role. */
  conversations?: ConversationStore | undefined;
  /** The audit JSON-lines file (absolute), when the audit log is on. */
  auditFile?: string | undefined;
  /** Model usage, when this process counts it (see `startUsageFeed`). */
  usage?: (() => UsageView) | undefined;
  /** The folder of the page's files (default: `src/ui/dashboard/` of the package). */
  assetsDir?: string;
}

/** Messages of one conversation the detail view reads at most (the newest). */
const MAX_MESSAGES = 500;

const limitQuery = (fallback: number, max: number) =>
  z.object({ limit: z.coerce.number().int().min(1).max(max).default(fallback) });
const ConversationsQuery = limitQuery(20, 200);
const AuditQuery = limitQuery(50, 1000);
const ConversationParams = z.object({ id: ConversationIdSchema });

/**
 * Serves the dashboard: the page at `GET /dashboard` (static, no data in it) and its data as
 * JSON under `GET /dashboard/api/...` — `services`, `conversations?limit=`, `conversations/:id`,
 * `audit?limit=` and `usage`. With API keys configured the data needs `Authorization: Bearer
 * <key>` (the page asks for the key once and keeps it in `sessionStorage`); without keys it is
 * open to loopback clients only.
 *
 * @example
 * registerDashboard(app, {
 *   auth: createApiKeyCheck(config.gateway.apiKeys),
 *   services: createServicesView({ process: { version, roles, transport: 'local' }, checks }),
 *   conversations: store,
 *   auditFile: '/var/lib/clawmesh/audit.jsonl',
 *   usage: feed.view,
 * });
 */
export function registerDashboard(app: FastifyInstance, deps: DashboardDeps): void {
  const files = loadPageFiles(deps.assetsDir);
  const page = (request: FastifyRequest, reply: FastifyReply) =>
    sendPageFile(request, reply, files.get('index.html')!);
  app.get('/dashboard', page);
  app.get('/dashboard/', page);
  for (const name of files.keys()) {
    if (name === 'index.html') continue;
    app.get(`/dashboard/${name}`, (request, reply) => sendPageFile(request, reply, files.get(name)!));
  }

  const api = { onRequest: guard(deps.auth) };
  app.get('/dashboard/api/services', api, () => deps.services());

  app.get('/dashboard/api/conversations', api, async (request) => {
    const { limit } = parseOrThrow(ConversationsQuery, request.query, 'invalid query');
    const store = deps.conversations;
    if (!store)
      return unavailable('this process keeps no conversations (it does not run the conversation role)');
    const conversations: ConversationSummary[] = await recentConversations(store, limit);
    return { available: true, conversations };
  });

  app.get('/dashboard/api/conversations/:id', api, async (request) => {
    const { id } = parseOrThrow(ConversationParams, request.params, 'invalid conversation id');
    if (!deps.conversations) {
      throw new ClawmeshError(
        'NOT_FOUND',
        'this process keeps no conversations (it does not run the conversation role)',
      );
    }
    return conversationView(deps.conversations, id, MAX_MESSAGES);
  });

  app.get('/dashboard/api/audit', api, async (request): Promise<AuditView | Unavailable> => {
    const { limit } = parseOrThrow(AuditQuery, request.query, 'invalid query');
    if (!deps.auditFile) return unavailable('the audit log is off (audit.enabled: false)');
    const tail = await readAuditTail(deps.auditFile, limit);
    if (!tail.exists)
      return unavailable(`there is no audit file at ${deps.auditFile} (the conversation role writes it)`);
    return { available: true, file: deps.auditFile, events: tail.events, skipped: tail.skipped };
  });

  app.get('/dashboard/api/usage', api, async () =>
    deps.usage ? deps.usage() : unavailable('this process does not count model usage'),
  );
}

function unavailable(reason: string): Unavailable {
  return { available: false, reason };
}

const LOOPBACK = /^(127\.|::1$|::ffff:127\.)/;

/**
 * The data's gate: the API key when keys are configured; otherwise loopback clients only (the
 * monolith then listens on 127.0.0.1, but a role without a public API may listen wider).
 */
function guard(auth: ApiKeyCheck) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'no-store');
    if (!auth.enabled) {
      if (LOOPBACK.test(request.socket.remoteAddress ?? '')) return;
      throw new ClawmeshError(
        'PERMISSION_DENIED',
        'with no API keys configured the dashboard answers loopback clients only: set gateway.apiKeys',
      );
    }
    try {
      auth.verify(request.headers.authorization);
    } catch (err) {
      reply.header('www-authenticate', 'Bearer realm="clawmesh dashboard"');
      throw err;
    }
  };
}

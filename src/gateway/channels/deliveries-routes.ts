import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ClawmeshError } from '../../core/errors.ts';
import { parseOrThrow } from '../../core/validation.ts';
import {
  INBOX_STATUSES,
  type InboxEntry,
  type InboxStatus,
  type InboxStore,
} from '../../store/inbox-types.ts';
import type { ApiKeyCheck } from '../auth.ts';
import type { Delivery } from './delivery.ts';
import type { ChannelMessage } from './types.ts';

/** What {@link registerDeliveriesRoutes} needs. */
export interface DeliveriesRoutesDeps {
  auth: ApiKeyCheck;
  inbox: InboxStore;
  delivery: Delivery;
}

const QuerySchema = z.object({
  status: z.enum(INBOX_STATUSES as [InboxStatus, ...InboxStatus[]]).optional(),
  channel: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

/**
 * The operator's view of channel deliveries, behind the API keys of `/v1/messages`:
 * - `GET /v1/deliveries?status=failed&channel=slack&limit=50`: inbox entries, newest first;
 * - `GET /v1/deliveries/:id`: one entry;
 * - `POST /v1/deliveries/:id/retry`: runs a failed entry again (202; 409 when it is not failed).
 */
export function registerDeliveriesRoutes(app: FastifyInstance, deps: DeliveriesRoutesDeps): void {
  app.get('/v1/deliveries', async (request) => {
    deps.auth.verify(request.headers.authorization);
    const query = parseOrThrow(QuerySchema, request.query ?? {}, 'invalid query');
    const entries = await deps.inbox.list({
      ...(query.status ? { status: query.status } : {}),
      ...(query.channel ? { channel: query.channel } : {}),
      limit: query.limit ?? 100,
    });
    return { deliveries: entries.map(toView) };
  });
  app.get<{ Params: { id: string } }>('/v1/deliveries/:id', async (request) => {
    deps.auth.verify(request.headers.authorization);
    const entry = await deps.inbox.get(request.params.id);
    if (!entry) throw new ClawmeshError('NOT_FOUND', `no delivery "${request.params.id}"`);
    return toView(entry);
  });
  app.post<{ Params: { id: string } }>('/v1/deliveries/:id/retry', async (request, reply) => {
    deps.auth.verify(request.headers.authorization);
    if (!(await deps.delivery.retry(request.params.id))) {
      throw new ClawmeshError('CONFLICT', `delivery "${request.params.id}" has not failed`);
    }
    return reply.status(202).send({ id: request.params.id, status: 'retrying' });
  });
}

/** An inbox entry as the API shows it. */
function toView(entry: InboxEntry) {
  const message = entry.message as Partial<ChannelMessage>;
  return {
    id: entry.id,
    channel: entry.channel,
    status: entry.status,
    ...(entry.outcome ? { outcome: entry.outcome } : {}),
    ...(entry.error ? { error: entry.error } : {}),
    attempts: entry.attempts,
    partsSent: entry.partsSent,
    message: {
      updateId: message.updateId,
      account: message.account,
      chatId: message.chatId,
      userId: message.userId,
      isGroup: message.isGroup,
      text: message.text,
    },
    ...(entry.reply ? { reply: entry.reply } : {}),
    createdAt: new Date(entry.createdAt).toISOString(),
    updatedAt: new Date(entry.updatedAt).toISOString(),
  };
}

import { z } from 'zod';
import { ClawmeshError } from '../../../core/errors.ts';
import { parseOrThrow } from '../../../core/validation.ts';

const MessageSchema = z.looseObject({
  from: z.string().min(1).max(64),
  id: z.string().min(1).max(256),
  timestamp: z.string().optional(),
  type: z.string(),
  text: z.looseObject({ body: z.string() }).optional(),
  /** A quick-reply button of a template message. */
  button: z.looseObject({ text: z.string().optional() }).optional(),
  /** A reply to an interactive message (reply button or list row). */
  interactive: z
    .looseObject({
      button_reply: z.looseObject({ title: z.string().optional() }).optional(),
      list_reply: z.looseObject({ title: z.string().optional() }).optional(),
    })
    .optional(),
});

const ValueSchema = z.looseObject({
  messaging_product: z.string().optional(),
  metadata: z.looseObject({ phone_number_id: z.string().optional() }).optional(),
  contacts: z
    .array(
      z.looseObject({
        wa_id: z.string().optional(),
        profile: z.looseObject({ name: z.string() }).optional(),
      }),
    )
    .optional(),
  messages: z.array(MessageSchema).optional(),
  statuses: z.array(z.looseObject({ id: z.string().optional(), status: z.string().optional() })).optional(),
});

/** The fields of a Cloud API webhook this adapter reads; the rest passes through unread. */
export const WebhookSchema = z.looseObject({
  object: z.string(),
  entry: z
    .array(
      z.looseObject({
        id: z.string().optional(),
        changes: z.array(z.looseObject({ field: z.string().optional(), value: ValueSchema })).default([]),
      }),
    )
    .default([]),
});
/** A parsed WhatsApp webhook notification. */
export type WhatsAppWebhook = z.infer<typeof WebhookSchema>;

/**
 * Message types a person sends that carry no text this adapter can read; each gets a short
 * answer saying so. Other non-text types (`reaction`, `system`, `unsupported`, …) are ignored.
 */
export const ANSWERED_NON_TEXT_TYPES: ReadonlySet<string> = new Set([
  'image',
  'audio',
  'video',
  'document',
  'sticker',
  'location',
  'contacts',
]);

/** One thing a webhook notification says. */
export type WhatsAppEvent =
  | {
      kind: 'text';
      /** `wamid.…`: the dedupe key. */
      messageId: string;
      /** The sender's WhatsApp id (phone number without `+`): where the reply goes. */
      from: string;
      /** The sender's profile name, when the notification has it. */
      name?: string;
      /** The business number the message was sent to. */
      phoneNumberId?: string;
      /** Unix seconds, as text, when WhatsApp stamped it. */
      timestamp?: string;
      text: string;
    }
  | {
      kind: 'non-text';
      messageId: string;
      from: string;
      phoneNumberId?: string;
      timestamp?: string;
      type: string;
      /** Whether the adapter answers it (see {@link ANSWERED_NON_TEXT_TYPES}) or ignores it. */
      answer: boolean;
    }
  | { kind: 'status'; id?: string; status?: string };

/**
 * Parses the raw body of a verified webhook.
 *
 * @throws ClawmeshError `INVALID_ARGUMENT` naming the field when it is not a notification.
 */
export function parseWebhook(rawBody: string): WhatsAppWebhook {
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', `malformed webhook body: ${(err as Error).message}`);
  }
  return parseOrThrow(WebhookSchema, json, 'invalid WhatsApp webhook');
}

/** Every message and status of a notification, in order. Changes of other fields are skipped. */
export function normalizeWebhook(webhook: WhatsAppWebhook): WhatsAppEvent[] {
  const events: WhatsAppEvent[] = [];
  if (webhook.object !== 'whatsapp_business_account') return events;
  for (const entry of webhook.entry) {
    for (const change of entry.changes) {
      if (change.field !== undefined && change.field !== 'messages') continue;
      const value = change.value;
      const phoneNumberId = value.metadata?.phone_number_id;
      const names = new Map<string, string>();
      for (const contact of value.contacts ?? []) {
        if (contact.wa_id && contact.profile?.name) names.set(contact.wa_id, contact.profile.name);
      }
      for (const message of value.messages ?? []) {
        const timestamp = message.timestamp;
        const base = {
          messageId: message.id,
          from: message.from,
          ...(phoneNumberId ? { phoneNumberId } : {}),
          ...(timestamp && /^\d{1,12}$/.test(timestamp) ? { timestamp } : {}),
        };
        const text = textOf(message);
        if (text !== undefined) {
          const name = names.get(message.from);
          events.push({ kind: 'text', ...base, ...(name ? { name } : {}), text });
        } else {
          events.push({
            kind: 'non-text',
            ...base,
            type: message.type,
            answer: ANSWERED_NON_TEXT_TYPES.has(message.type),
          });
        }
      }
      for (const status of value.statuses ?? []) {
        events.push({
          kind: 'status',
          ...(status.id ? { id: status.id } : {}),
          ...(status.status ? { status: status.status } : {}),
        });
      }
    }
  }
  return events;
}

/** The text of a message: its body, or the title of the button or list row the person tapped. */
function textOf(message: z.infer<typeof MessageSchema>): string | undefined {
  switch (message.type) {
    case 'text':
      return message.text?.body;
    case 'button':
      return message.button?.text;
    case 'interactive':
      return message.interactive?.button_reply?.title ?? message.interactive?.list_reply?.title;
    default:
      return undefined;
  }
}

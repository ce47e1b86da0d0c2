import { z } from 'zod';
import { defineContract } from '../contract.ts';
import { ChatMessageSchema } from '../messages.ts';

/** A conversation id a client may choose: letters, digits and `._:-`, up to 128 characters. */
export const ConversationIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 letters, digits or . _ : -');

/** A message as every channel adapter normalizes it. */
export const InboundMessageSchema = z.object({
  /** The agent to route to; the default agent when absent. */
  agentId: z.string().optional(),
  /** The channel it came from: `api`, `telegram`, `cli`, … */
  channel: z.string().min(1),
  /** The sender on that channel. */
  userId: z.string().min(1).max(256),
  text: z.string().min(1).max(32_000),
  /** Continue this conversation; the session of agent + channel + user when absent. */
  conversationId: ConversationIdSchema.optional(),
  /** The platform's id for the message, for dedupe and logs. */
  messageId: z.string().optional(),
  metadata: z.record(z.string(), z.unknown()).optional(),
});
export type InboundMessage = z.infer<typeof InboundMessageSchema>;

/** A tool call as reported in a reply. */
export const ToolCallReportSchema = z.object({
  skill: z.string(),
  tool: z.string(),
  arguments: z.unknown(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: z.string().optional(),
  durationMs: z.number().nonnegative(),
});
export type ToolCallReport = z.infer<typeof ToolCallReportSchema>;

/** The reply of one turn. `dropped` is set when a plugin dropped the message or the reply. */
export const TurnReplySchema = z.object({
  conversationId: z.string(),
  text: z.string(),
  toolCalls: z.array(ToolCallReportSchema),
  dropped: z.boolean().optional(),
  model: z.string().optional(),
});
export type TurnReply = z.infer<typeof TurnReplySchema>;

/** The Conversation Manager: sessions, history, one turn at a time per conversation. */
export const conversationContract = defineContract({
  name: 'conversation',
  version: '1.0.0',
  methods: {
    handle: { input: InboundMessageSchema, output: TurnReplySchema, description: 'Runs one turn' },
    history: {
      input: z.object({
        conversationId: z.string(),
        limit: z.number().int().positive().max(1000).default(100),
      }),
      output: z.object({ conversationId: z.string(), messages: z.array(ChatMessageSchema) }),
      description: 'The stored messages of a conversation, oldest first',
    },
    ping: {
      input: z.object({}),
      output: z.object({ inFlight: z.number().int().nonnegative() }),
      description:
        'Answers at once, with the turns running or waiting: proves a replica is there (readiness)',
    },
  },
});

import { z } from 'zod';
import { defineContract } from '../contract.ts';

/** The Gateway: owns the channels; other services ask it to send a message out. */
export const gatewayContract = defineContract({
  name: 'gateway',
  version: '1.0.0',
  methods: {
    deliver: {
      input: z.object({
        channel: z.string(),
        userId: z.string(),
        conversationId: z.string().optional(),
        text: z.string(),
      }),
      output: z.object({ delivered: z.boolean(), reason: z.string().optional() }),
      description: 'Sends a message out through a channel',
    },
    channels: {
      input: z.object({}).optional(),
      output: z.object({ channels: z.array(z.object({ name: z.string(), ready: z.boolean() })) }),
      description: 'The channels this gateway runs',
    },
  },
});

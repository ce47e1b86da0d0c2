import { z } from 'zod';
import { ClawmeshError } from '../../../core/errors.ts';
import { parseOrThrow } from '../../../core/validation.ts';

/** Interaction types (Discord: "Interaction Type"). */
export const InteractionType = {
  PING: 1,
  APPLICATION_COMMAND: 2,
  MESSAGE_COMPONENT: 3,
  APPLICATION_COMMAND_AUTOCOMPLETE: 4,
  MODAL_SUBMIT: 5,
} as const;

/** Interaction callback types (Discord: "Interaction Callback Type"). */
export const InteractionCallbackType = {
  PONG: 1,
  CHANNEL_MESSAGE_WITH_SOURCE: 4,
  DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE: 5,
  APPLICATION_COMMAND_AUTOCOMPLETE_RESULT: 8,
} as const;

/** Message flag that shows a message only to the user who ran the command. */
export const EPHEMERAL_FLAG = 1 << 6;

/** The slash command this adapter serves, and its one option. */
export const ASK_COMMAND = 'ask';
/** The name of `/ask`'s text option. */
export const ASK_OPTION = 'question';

const Snowflake = z.string().regex(/^\d{1,20}$/, 'must be a snowflake');
const UserSchema = z.looseObject({
  id: Snowflake,
  username: z.string().optional(),
  global_name: z.string().nullish(),
});
interface OptionShape {
  name: string;
  type: number;
  value?: unknown;
  options?: OptionShape[];
}
const OptionSchema: z.ZodType<OptionShape> = z.lazy(() =>
  z.looseObject({
    name: z.string(),
    type: z.number().int(),
    value: z.unknown().optional(),
    options: z.array(OptionSchema).optional(),
  }),
);

/** The fields of an interaction this adapter reads; the rest passes through unread. */
export const InteractionSchema = z.looseObject({
  id: Snowflake,
  application_id: Snowflake,
  type: z.number().int(),
  token: z.string().min(1).max(1000),
  data: z
    .looseObject({
      name: z.string().optional(),
      type: z.number().int().optional(),
      options: z.array(OptionSchema).optional(),
    })
    .nullish(),
  guild_id: Snowflake.nullish(),
  /** Where it ran: 0 a server, 1 the bot's DM, 2 a group DM or another DM (user-installed apps). */
  context: z.number().int().nullish(),
  channel_id: Snowflake.nullish(),
  channel: z.looseObject({ id: Snowflake }).nullish(),
  member: z.looseObject({ user: UserSchema.nullish() }).nullish(),
  user: UserSchema.nullish(),
});
/** A parsed Discord interaction. */
export type Interaction = z.infer<typeof InteractionSchema>;

/** What an interaction means to Clawmesh. */
export type DiscordEvent =
  | { kind: 'ping' }
  | {
      kind: 'ask';
      interactionId: string;
      applicationId: string;
      /** The interaction token: valid 15 minutes, used to edit the deferred response. */
      token: string;
      userId: string;
      userName?: string;
      /** The channel the command ran in (a DM channel for direct use). */
      channelId: string;
      /** Absent in a DM with the bot. */
      guildId?: string;
      /** Run in a server or a group DM rather than the bot's own DM. */
      isGroup: boolean;
      /** The question; may be empty when the user left it out. */
      text: string;
    }
  | {
      kind: 'unsupported';
      interactionId: string;
      type: number;
      /** The command's name, for an application command other than `/ask`. */
      command?: string;
    };

/**
 * Parses the raw body of a verified interaction.
 *
 * @throws ClawmeshError `INVALID_ARGUMENT` naming the field when it is not an interaction.
 */
export function parseInteraction(rawBody: string): Interaction {
  let json: unknown;
  try {
    json = JSON.parse(rawBody);
  } catch (err) {
    throw new ClawmeshError('INVALID_ARGUMENT', `malformed interaction: ${(err as Error).message}`);
  }
  // A PING carries no user or channel; normalizeInteraction checks those per type.
  return parseOrThrow(InteractionSchema, json, 'invalid interaction');
}

/** Maps an interaction to a {@link DiscordEvent}. */
export function normalizeInteraction(interaction: Interaction): DiscordEvent {
  if (interaction.type === InteractionType.PING) return { kind: 'ping' };
  const command = interaction.data?.name;
  const user = interaction.member?.user ?? interaction.user;
  const channelId = interaction.channel_id ?? interaction.channel?.id;
  if (
    interaction.type !== InteractionType.APPLICATION_COMMAND ||
    command !== ASK_COMMAND ||
    !user ||
    !channelId
  ) {
    return {
      kind: 'unsupported',
      interactionId: interaction.id,
      type: interaction.type,
      ...(command ? { command } : {}),
    };
  }
  const option = interaction.data?.options?.find((o) => o.name === ASK_OPTION);
  const userName = user.global_name ?? user.username;
  return {
    kind: 'ask',
    interactionId: interaction.id,
    applicationId: interaction.application_id,
    token: interaction.token,
    userId: user.id,
    ...(userName ? { userName } : {}),
    channelId,
    ...(interaction.guild_id ? { guildId: interaction.guild_id } : {}),
    isGroup: Boolean(interaction.guild_id) || interaction.context === 2,
    text: typeof option?.value === 'string' ? option.value.trim() : '',
  };
}

/** The `/ask` command as registered with Discord (`PUT /applications/{id}/commands`). */
export const ASK_COMMAND_DEFINITION = {
  name: ASK_COMMAND,
  type: 1,
  description: 'Ask the assistant a question',
  /** Installed to a server (0); usable in servers (0) and in DMs with the bot (1). */
  integration_types: [0],
  contexts: [0, 1],
  options: [
    {
      type: 3,
      name: ASK_OPTION,
      description: 'What you want to ask',
      required: true,
      max_length: 4000,
    },
  ],
} as const;

/** Discord's epoch (2015-01-01) in Unix milliseconds: snowflakes count from it. */
const DISCORD_EPOCH = 1_420_070_400_000n;

/** When a snowflake id was made, in epoch milliseconds. */
export function snowflakeTime(id: string): number {
  return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
}

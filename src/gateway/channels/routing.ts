import type { Binding } from '../../config/schema-channels.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { ChannelMessage } from './types.ts';

/** Picks the agent of a message from the bindings. */
export interface ChannelRouter {
  /** The bound agent's id, or `undefined` for the default agent. */
  agentFor(message: Pick<ChannelMessage, 'channel' | 'account' | 'chatId' | 'userId'>): string | undefined;
}

/**
 * The session peer of a message: the sender in a direct message, the chat in a group (a group
 * shares one conversation). With the agent and the channel it makes the session key.
 */
export function sessionPeer(message: Pick<ChannelMessage, 'isGroup' | 'chatId' | 'userId'>): string {
  return message.isGroup ? `group:${message.chatId}` : message.userId;
}

/**
 * Creates the router. A binding matches when its channel is the message's and each field it
 * sets (account, chat, peer) equals the message's; the most specific match wins (peer, then
 * chat, then account), the first written among equals. Throws `INVALID_ARGUMENT` for a binding
 * naming an unknown agent.
 *
 * @example
 * const router = createChannelRouter([{ channel: 'slack', chat: 'C042', agent: 'support' }], ['default', 'support']);
 * router.agentFor({ channel: 'slack', account: 'T1', chatId: 'C042', userId: 'U1' }); // 'support'
 */
export function createChannelRouter(
  bindings: readonly Binding[],
  agentIds: readonly string[],
): ChannelRouter {
  bindings.forEach((binding, index) => {
    if (!agentIds.includes(binding.agent)) {
      throw new ClawmeshError(
        'INVALID_ARGUMENT',
        `channels.bindings.${index}: no agent "${binding.agent}" (agents: ${agentIds.join(', ')})`,
        { details: { fields: [`channels.bindings.${index}.agent`] } },
      );
    }
  });
  const ranked = bindings
    .map((binding, index) => ({
      binding,
      index,
      score: (binding.peer ? 4 : 0) + (binding.chat ? 2 : 0) + (binding.account ? 1 : 0),
    }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .map((entry) => entry.binding);
  return {
    agentFor(message) {
      const match = ranked.find(
        (b) =>
          b.channel === message.channel &&
          (b.account === undefined || b.account === message.account) &&
          (b.chat === undefined || b.chat === message.chatId) &&
          (b.peer === undefined || b.peer === message.userId),
      );
      return match?.agent;
    },
  };
}

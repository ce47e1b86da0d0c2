import type { Handlers } from '../core/contract.ts';
import type { gatewayContract } from '../core/contracts/gateway.ts';

/**
 * The Gateway's contract handlers. The HTTP API channel answers in its own response, so it has
 * nothing to push; the messaging channels (Telegram, Discord, …) deliver through here.
 */
export function createGatewayHandlers(): Handlers<typeof gatewayContract> {
  const channels = [{ name: 'api', ready: true }];
  return {
    async deliver({ channel }) {
      if (channel === 'api')
        return { delivered: false, reason: 'the api channel answers in its HTTP response' };
      return { delivered: false, reason: `no channel "${channel}" runs in this gateway` };
    },
    async channels() {
      return { channels };
    },
  };
}

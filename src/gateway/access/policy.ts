import type { ChannelAccessConfig } from '../../config/schema-channels.ts';
import { ClawmeshError } from '../../core/errors.ts';
import type { PairingStore } from './pairing-types.ts';
import type { ChannelRateLimits } from './rate-limits.ts';

/** What access control needs to know of a message. */
export interface AccessSubject {
  channel: string;
  userId: string;
  userName?: string;
  isGroup: boolean;
  mentioned: boolean;
}

/** Why a message gets no turn. */
export type DenyReason =
  | 'not-mentioned'
  | 'dm-disabled'
  | 'not-allowed'
  | 'pairing'
  | 'pairing-full'
  | 'rate-limited';

/** Whether a message gets a turn; when not, why, and what to answer (a pairing code) if anything. */
export type AccessDecision = { allowed: true } | { allowed: false; reason: DenyReason; reply?: string };

/** Decides, per message, whether the agent answers it. */
export interface Access {
  check(subject: AccessSubject): Promise<AccessDecision>;
}

/** What {@link createAccess} is built from. */
export interface AccessDeps {
  /** Each channel's access settings, by channel name. */
  channels: ReadonlyMap<string, ChannelAccessConfig>;
  pairing: PairingStore;
  limits: ChannelRateLimits;
}

/**
 * Creates the access check. In a group: answered only when mentioned (unless
 * `groups.requireMention` is false). In a direct message, by `dmPolicy`: `open` answers anyone;
 * `allowlist` only the listed ids; `pairing` the listed and approved ids, and gives anyone else
 * a one-time code to pass to the operator; `disabled` nobody. Then the per-user and per-channel
 * rate limits. A message of a channel with no settings is refused.
 *
 * @example
 * const decision = await access.check({ channel: 'telegram', userId: '42', isGroup: false, mentioned: true });
 */
export function createAccess(deps: AccessDeps): Access {
  return {
    async check(subject) {
      const settings = deps.channels.get(subject.channel);
      if (!settings) return { allowed: false, reason: 'not-allowed' };
      let needsPairing = false;
      if (subject.isGroup) {
        if (settings.groups.requireMention && !subject.mentioned)
          return { allowed: false, reason: 'not-mentioned' };
      } else {
        switch (settings.dmPolicy) {
          case 'disabled':
            return { allowed: false, reason: 'dm-disabled' };
          case 'allowlist':
            if (!settings.allowlist.includes(subject.userId))
              return { allowed: false, reason: 'not-allowed' };
            break;
          case 'pairing':
            needsPairing =
              !settings.allowlist.includes(subject.userId) &&
              !(await deps.pairing.isApproved(subject.channel, subject.userId));
            break;
          case 'open':
            break;
        }
      }
      try {
        await deps.limits.take(subject.channel, subject.userId);
      } catch (err) {
        if (err instanceof ClawmeshError && err.code === 'RATE_LIMITED')
          return { allowed: false, reason: 'rate-limited' };
        throw err;
      }
      if (!needsPairing) return { allowed: true };
      try {
        const ttlMs = settings.pairing.codeTtlSeconds * 1000;
        const issued = await deps.pairing.request(subject.channel, subject.userId, {
          ttlMs,
          ...(subject.userName ? { userName: subject.userName } : {}),
        });
        return {
          allowed: false,
          reason: 'pairing',
          reply: pairingMessage(subject.channel, issued.code, issued.expiresAt),
        };
      } catch (err) {
        if (err instanceof ClawmeshError && err.code === 'RATE_LIMITED')
          return { allowed: false, reason: 'pairing-full' };
        throw err;
      }
    },
  };
}

/** The answer an unknown sender gets under the `pairing` policy. */
export function pairingMessage(channel: string, code: string, expiresAt: number): string {
  const minutes = Math.max(1, Math.round((expiresAt - Date.now()) / 60_000));
  return [
    'This assistant answers approved people only.',
    `Your pairing code: ${code} (valid for ${minutes} minute${minutes === 1 ? '' : 's'}).`,
    `Ask the operator to run: clawmesh pairing approve ${channel} ${code}`,
  ].join('\n');
}

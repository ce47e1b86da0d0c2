import { ClawmeshError } from '../../core/errors.ts';
import { checkTtl, newPairingCode, normalizeCode, pairingErrors } from './pairing-code.ts';
import type { ApprovedSender, PairingRequest, PairingStore } from './pairing-types.ts';

const DEFAULT_MAX_PENDING = 100;
/** Expired codes are kept this long, so approving one says "expired" rather than "unknown". */
const EXPIRED_GRACE_MS = 24 * 3600_000;

/**
 * The in-process pairing store: for tests and memory deployments (`clawmesh pairing` in another
 * process cannot reach it). Expired codes are dropped a day later, as new ones are issued.
 *
 * @example
 * const pairing = createMemoryPairingStore();
 */
export function createMemoryPairingStore(): PairingStore {
  const requests = new Map<string, PairingRequest>(); // by `${channel}\0${code}`
  const approved = new Map<string, ApprovedSender>(); // by `${channel}\0${userId}`
  let closed = false;
  const open = (what: string) => {
    if (closed)
      throw new ClawmeshError('UNAVAILABLE', `${what}: the pairing store is closed`, { retryable: false });
  };
  const key = (a: string, b: string) => `${a}\u0000${b}`;
  const dropExpired = (now: number, channel: string, userId: string) => {
    for (const [k, request] of requests) {
      const mine = request.channel === channel && request.userId === userId;
      if (request.expiresAt <= now - EXPIRED_GRACE_MS || (mine && request.expiresAt <= now))
        requests.delete(k);
    }
  };

  return {
    kind: 'memory',
    async request(channel, userId, options) {
      open('issue pairing code');
      const ttlMs = checkTtl(options.ttlMs);
      const now = Date.now();
      dropExpired(now, channel, userId);
      for (const request of requests.values()) {
        if (request.channel === channel && request.userId === userId) {
          return { code: request.code, expiresAt: request.expiresAt, created: false };
        }
      }
      const max = options.maxPending ?? DEFAULT_MAX_PENDING;
      let pending = 0;
      for (const request of requests.values()) {
        if (request.channel === channel && request.expiresAt > now) pending += 1;
      }
      if (pending >= max) throw pairingErrors.tooMany(channel, max);
      let code = newPairingCode();
      while (requests.has(key(channel, code))) code = newPairingCode();
      const request: PairingRequest = {
        channel,
        code,
        userId,
        ...(options.userName ? { userName: options.userName } : {}),
        createdAt: now,
        expiresAt: now + ttlMs,
      };
      requests.set(key(channel, code), request);
      return { code, expiresAt: request.expiresAt, created: true };
    },
    async approve(channel, typed) {
      open('approve pairing code');
      const code = normalizeCode(typed);
      const request = requests.get(key(channel, code));
      if (!request) throw pairingErrors.unknown(channel, code);
      requests.delete(key(channel, code));
      if (request.expiresAt <= Date.now()) throw pairingErrors.expired(channel, code);
      const sender: ApprovedSender = {
        channel,
        userId: request.userId,
        ...(request.userName ? { userName: request.userName } : {}),
        approvedAt: Date.now(),
      };
      approved.set(key(channel, request.userId), sender);
      return { ...sender };
    },
    async isApproved(channel, userId) {
      open('check pairing approval');
      return approved.has(key(channel, userId));
    },
    async list(channel) {
      open('list pairing');
      const now = Date.now();
      return {
        approved: [...approved.values()]
          .filter((s) => !channel || s.channel === channel)
          .map((s) => ({ ...s })),
        pending: [...requests.values()]
          .filter((r) => (!channel || r.channel === channel) && r.expiresAt > now)
          .map((r) => ({ ...r })),
      };
    },
    async revoke(channel, userId) {
      open('revoke pairing approval');
      return approved.delete(key(channel, userId));
    },
    async close() {
      closed = true;
    },
  };
}

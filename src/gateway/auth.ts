import { createHash, timingSafeEqual } from 'node:crypto';
import { ClawmeshError } from '../core/errors.ts';

/** Checks `Authorization: Bearer <key>` against the configured keys. */
export interface ApiKeyCheck {
  /** Whether any key is configured (when none, the API is open and bound to loopback). */
  readonly enabled: boolean;
  /** Returns a stable, non-secret id of the key used ('open' when auth is off); throws `UNAUTHENTICATED`. */
  verify(authorization: string | undefined): string;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Creates the API key check; keys are compared as SHA-256 digests in constant time. */
export function createApiKeyCheck(keys: readonly string[]): ApiKeyCheck {
  const known = keys.map((key) => ({ digest: digest(key), id: digest(key).toString('hex').slice(0, 12) }));
  return {
    enabled: known.length > 0,
    verify(authorization) {
      if (known.length === 0) return 'open';
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
      if (!match)
        throw new ClawmeshError('UNAUTHENTICATED', 'missing API key: send "Authorization: Bearer <key>"');
      const given = digest(match[1]!);
      const hit = known.find((key) => timingSafeEqual(key.digest, given));
      if (!hit) throw new ClawmeshError('UNAUTHENTICATED', 'invalid API key');
      return hit.id;
    },
  };
}

export { createMemoryPairingStore } from './pairing-memory.ts';
export { createSqlitePairingStore } from './pairing-sqlite.ts';
export type { ApprovedSender, IssuedCode, PairingRequest, PairingStore } from './pairing-types.ts';
export type { Access, AccessDecision, AccessDeps, AccessSubject, DenyReason } from './policy.ts';
export { createAccess, pairingMessage } from './policy.ts';
export type { ChannelRateLimits, ChannelRateLimitsOptions } from './rate-limits.ts';
export { createChannelRateLimits } from './rate-limits.ts';

import { Counter, type Registry } from 'prom-client';

/** The channels' Prometheus counters. */
export interface ChannelMetrics {
  /** Platform deliveries, by channel and result: `accepted`, `duplicate`, `unauthorized`, `invalid`, `error`. */
  readonly received: Counter<'channel' | 'result'>;
  /** Inbox entries finished, by channel and outcome (`replied`, `denied:<reason>`, `no-reply`, `dropped`, `failed`). */
  readonly deliveries: Counter<'channel' | 'outcome'>;
  /** Replies that could not be sent after their retries (also in `deliveries` as `failed`). */
  readonly failed: Counter<'channel'>;
  /** Send attempts that failed and were retried, by channel. */
  readonly retries: Counter<'channel'>;
}

/**
 * Creates the channel counters in `registry` (the process's, so `/metrics` serves them), or
 * in a registry of their own when none is given.
 */
export function createChannelMetrics(registry?: Registry): ChannelMetrics {
  const registers = registry ? [registry] : [];
  return {
    received: new Counter({
      name: 'clawmesh_channel_updates_total',
      help: 'Platform deliveries received by the channels, per channel and result',
      labelNames: ['channel', 'result'],
      registers,
    }),
    deliveries: new Counter({
      name: 'clawmesh_channel_deliveries_total',
      help: 'Accepted channel messages finished, per channel and outcome',
      labelNames: ['channel', 'outcome'],
      registers,
    }),
    failed: new Counter({
      name: 'clawmesh_channel_delivery_failures_total',
      help: 'Replies that could not be sent after their retries (see GET /v1/deliveries?status=failed)',
      labelNames: ['channel'],
      registers,
    }),
    retries: new Counter({
      name: 'clawmesh_channel_send_retries_total',
      help: 'Reply sends that failed and were tried again',
      labelNames: ['channel'],
      registers,
    }),
  };
}

import type { Msg, MsgHdrs, NatsConnection, Subscription } from '@nats-io/transport-node';
import { createInbox } from '@nats-io/transport-node';

/*
 * Request-reply over one wildcard inbox subscription, as `nc.request` does, minus its per-call
 * costs: nats.js allocates an Error (with a stack trace) for every request it completes, plus
 * a deferred, a timeout object and a Promise.race. On this path that was the largest cost of a
 * call after the socket writes.
 */

/** Why a request got no reply. */
export type RequestFailure =
  | { kind: 'no-responders' }
  | { kind: 'timeout' }
  /** Neither a reply nor a progress message came within the liveness window: the responder died or hangs. */
  | { kind: 'silent'; silentMs: number }
  | { kind: 'closed'; message: string }
  | { kind: 'publish'; error: Error };

/** A failed request, with why; the transport turns it into a typed error. */
export class RequestFailed extends Error {
  constructor(readonly failure: RequestFailure) {
    super(failure.kind);
  }
}

/**
 * The header of a progress message: an empty message a responder sends to a request's reply
 * subject while it works, so the requester knows it is alive. Not a reply.
 */
export const PROGRESS_HEADER = 'clawmesh-progress';

/** Sends requests and matches their replies. */
export interface Requester {
  /**
   * Resolves to the reply; rejects with {@link RequestFailed}. With `livenessMs`, a request that
   * gets neither its reply nor a progress message for that long fails `silent` before its timeout.
   */
  request(
    subject: string,
    data: Uint8Array,
    headers: MsgHdrs,
    timeoutMs: number,
    livenessMs?: number,
  ): Promise<Msg>;
  /** Fails the requests in flight and stops listening for replies. */
  close(): void;
}

interface Pending {
  resolve(msg: Msg): void;
  reject(err: RequestFailed): void;
  timer: NodeJS.Timeout;
  /** When the request times out (epoch ms). */
  deadline: number;
  /** The liveness window, 0 for none. */
  livenessMs: number;
}

/**
 * Creates a requester on a connection; its inbox subscription opens with the first request.
 * While the connection is lost (nats.js reconnecting), requests fail at once, and those in
 * flight too (their replies would be lost), rather than each waiting out its deadline.
 */
export function createRequester(nc: NatsConnection): Requester {
  const pending = new Map<string, Pending>();
  let inbox = '';
  let subscription: Subscription | undefined;
  let seq = 0;
  let closed = false;
  /** Why requests cannot go out now: set from a disconnect until the reconnect. */
  let lost: string | undefined;

  const failAll = (failure: RequestFailure) => {
    for (const entry of pending.values()) {
      clearTimeout(entry.timer);
      entry.reject(new RequestFailed(failure));
    }
    pending.clear();
  };

  /** The timer of a pending request: its timeout, or the end of its liveness window if sooner. */
  const watch = (token: string, entry: Pending): NodeJS.Timeout => {
    const left = entry.deadline - Date.now();
    const silent = entry.livenessMs > 0 && entry.livenessMs < left;
    return setTimeout(
      () => {
        if (pending.get(token) !== entry) return;
        pending.delete(token);
        entry.reject(
          new RequestFailed(silent ? { kind: 'silent', silentMs: entry.livenessMs } : { kind: 'timeout' }),
        );
      },
      silent ? entry.livenessMs : Math.max(0, left),
    );
  };

  const listen = () => {
    inbox = `${createInbox()}.`;
    const sub = nc.subscribe(`${inbox}*`, {
      callback: (err, msg) => {
        if (err) {
          // The inbox subscription failed (a permissions error): open a new one next time.
          if (subscription === sub) subscription = undefined;
          failAll({ kind: 'closed', message: err.message });
          return;
        }
        const token = msg.subject.slice(inbox.length);
        const entry = pending.get(token);
        if (!entry) return;
        if (msg.headers?.has(PROGRESS_HEADER)) {
          if (entry.livenessMs > 0) {
            clearTimeout(entry.timer);
            entry.timer = watch(token, entry);
          }
          return;
        }
        pending.delete(token);
        clearTimeout(entry.timer);
        if (msg.data.length === 0 && msg.headers?.code === 503) {
          entry.reject(new RequestFailed({ kind: 'no-responders' }));
        } else entry.resolve(msg);
      },
    });
    subscription = sub;
    nc.closed().then(() => failAll({ kind: 'closed', message: 'the NATS connection is closed' }));
  };

  (async () => {
    for await (const status of nc.status()) {
      if (status.type === 'disconnect') {
        lost = 'the connection to NATS is lost; reconnecting';
        failAll({ kind: 'closed', message: lost });
      } else if (status.type === 'reconnect') lost = undefined;
    }
  })().catch(() => undefined);

  return {
    request(subject, data, headers, timeoutMs, livenessMs = 0) {
      if (closed)
        return Promise.reject(new RequestFailed({ kind: 'closed', message: 'the requester is closed' }));
      if (lost !== undefined) return Promise.reject(new RequestFailed({ kind: 'closed', message: lost }));
      if (!subscription) listen();
      seq = (seq + 1) % Number.MAX_SAFE_INTEGER;
      const token = seq.toString(36);
      return new Promise<Msg>((resolve, reject) => {
        const entry = {
          resolve,
          reject,
          deadline: Date.now() + timeoutMs,
          livenessMs,
        } as Pending;
        entry.timer = watch(token, entry);
        pending.set(token, entry);
        try {
          nc.publish(subject, data, { reply: `${inbox}${token}`, headers });
        } catch (err) {
          pending.delete(token);
          clearTimeout(entry.timer);
          reject(new RequestFailed({ kind: 'publish', error: err as Error }));
        }
      });
    },
    close() {
      closed = true;
      failAll({ kind: 'closed', message: 'the nats transport is closed' });
      subscription?.unsubscribe();
      subscription = undefined;
    },
  };
}

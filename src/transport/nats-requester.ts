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
  | { kind: 'closed'; message: string }
  | { kind: 'publish'; error: Error };

/** A failed request, with why; the transport turns it into a typed error. */
export class RequestFailed extends Error {
  constructor(readonly failure: RequestFailure) {
    super(failure.kind);
  }
}

/** Sends requests and matches their replies. */
export interface Requester {
  /** Resolves to the reply; rejects with {@link RequestFailed}. */
  request(subject: string, data: Uint8Array, headers: MsgHdrs, timeoutMs: number): Promise<Msg>;
  /** Fails the requests in flight and stops listening for replies. */
  close(): void;
}

interface Pending {
  resolve(msg: Msg): void;
  reject(err: RequestFailed): void;
  timer: NodeJS.Timeout;
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
    request(subject, data, headers, timeoutMs) {
      if (closed)
        return Promise.reject(new RequestFailed({ kind: 'closed', message: 'the requester is closed' }));
      if (lost !== undefined) return Promise.reject(new RequestFailed({ kind: 'closed', message: lost }));
      if (!subscription) listen();
      seq = (seq + 1) % Number.MAX_SAFE_INTEGER;
      const token = seq.toString(36);
      return new Promise<Msg>((resolve, reject) => {
        const timer = setTimeout(() => {
          if (pending.delete(token)) reject(new RequestFailed({ kind: 'timeout' }));
        }, timeoutMs);
        pending.set(token, { resolve, reject, timer });
        try {
          nc.publish(subject, data, { reply: `${inbox}${token}`, headers });
        } catch (err) {
          pending.delete(token);
          clearTimeout(timer);
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

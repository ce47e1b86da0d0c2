import type { NatsConnection } from '@nats-io/transport-node';
import { createInbox, Empty } from '@nats-io/transport-node';
import { type MicroInfo, SRV_PREFIX } from './nats-micro.ts';

/**
 * The subject one instance of a service answers on alone, beside the queue group's: a retry sent
 * there reaches that instance, not whichever replica the queue group picks.
 */
export function instanceSubject(subject: string, id: string): string {
  return `${subject}.${id}`;
}

/**
 * Asks the service's instances for their `INFO` and resolves with the id of one, chosen at random,
 * that serves `subject` and answered within `waitMs`; `undefined` when none did. A replica whose
 * process is hung (its event loop blocked, the process stopped, its connection frozen) does not
 * answer, which is the point: a call retried after it timed out goes to a replica that is alive.
 * Gathering stops 30 ms after the latest answer.
 */
export function pickLiveInstance(
  nc: NatsConnection,
  serviceName: string,
  subject: string,
  waitMs: number,
): Promise<string | undefined> {
  const live: string[] = [];
  const inbox = createInbox();
  return new Promise((resolve) => {
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      clearTimeout(deadline);
      clearTimeout(quiet);
      sub.unsubscribe();
      resolve(live.length === 0 ? undefined : live[Math.floor(Math.random() * live.length)]);
    };
    const deadline = setTimeout(finish, waitMs);
    const sub = nc.subscribe(inbox, {
      callback: (err, msg) => {
        if (err) return finish();
        if (msg.data.length === 0 && msg.headers?.code === 503) return finish();
        let info: MicroInfo;
        try {
          info = msg.json<MicroInfo>();
        } catch {
          return;
        }
        if (!info.endpoints?.some((endpoint) => endpoint.subject === subject)) return;
        live.push(info.id);
        clearTimeout(quiet);
        quiet = setTimeout(finish, 30);
      },
    });
    try {
      nc.publish(`${SRV_PREFIX}.INFO.${serviceName}`, Empty, { reply: inbox });
    } catch {
      finish();
    }
  });
}

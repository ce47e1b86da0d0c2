/**
 * One timer for every attempt in flight. Each model call's attempt is bounded by its call timeout
 * or the deadline; with a Node timer of its own, every call would allocate a `Timeout`, insert it
 * into Node's timer lists and take it out again, almost always long before it could fire. Here
 * the attempts wait in a min-heap by expiry, and one Node timer stands for the earliest: an
 * attempt that settles leaves the heap (O(log n)), and the timer, armed for an expiry that has
 * left, fires once, finds nothing due and is armed for the next.
 *
 * An attempt expires no earlier than a `setTimeout` of the same length would fire (Node's own
 * timers run up to a millisecond early by a fresh clock, so this does too). The timer holds the
 * process open while any attempt waits, as each attempt's own timer did, and never when none does.
 */

/** What waits on the clock: expired once, unless it leaves first. */
export interface Expiring {
  /** Called once when the time has come (unless {@link cancel}ed before). */
  expire(): void;
  /** The clock's: `performance.now()` at which it expires. */
  expiresAt: number;
  /** The clock's: its place in the heap, -1 when not waiting. */
  clockIndex: number;
}

const heap: Expiring[] = [];
let timer: NodeJS.Timeout | undefined;
/** The expiry the timer is armed for; infinite when none is. */
let armedFor = Number.POSITIVE_INFINITY;
let held = false;

/** Makes `entry` expire in `ms` milliseconds. An entry waits at most once at a time. */
export function schedule(entry: Expiring, ms: number): void {
  const at = performance.now() + ms;
  entry.expiresAt = at;
  entry.clockIndex = heap.length;
  heap.push(entry);
  up(heap.length - 1);
  if (at < armedFor) arm(at);
  else if (!held) {
    (timer as NodeJS.Timeout).ref();
    held = true;
  }
}

/** Takes `entry` off the clock; nothing happens when it is not waiting. */
export function cancel(entry: Expiring): void {
  const index = entry.clockIndex;
  if (index < 0) return;
  entry.clockIndex = -1;
  const last = heap.pop() as Expiring;
  if (index < heap.length) {
    heap[index] = last;
    last.clockIndex = index;
    down(index);
    up(last.clockIndex);
  }
  // Armed for an attempt that left: it fires once and finds nothing; meanwhile, with no attempt
  // waiting, it must not hold the process open.
  if (heap.length === 0 && held && timer) {
    timer.unref();
    held = false;
  }
}

/** How many entries wait (for tests). */
export function waiting(): number {
  return heap.length;
}

function arm(at: number): void {
  if (timer) clearTimeout(timer);
  armedFor = at;
  timer = setTimeout(fire, Math.max(1, Math.ceil(at - performance.now())));
  held = true;
}

function fire(): void {
  timer = undefined;
  armedFor = Number.POSITIVE_INFINITY;
  held = false;
  // Node runs a timer when its loop time, read at the tick's start, reaches the expiry: by a
  // fresh clock up to a millisecond early. An entry due within that millisecond expires now.
  const now = performance.now() + 1;
  while (heap.length > 0 && (heap[0] as Expiring).expiresAt <= now) {
    const entry = heap[0] as Expiring;
    cancel(entry);
    try {
      entry.expire();
    } catch (err) {
      // As from a timer of its own: uncaught, without holding up the others.
      process.nextTick(() => {
        throw err;
      });
    }
  }
  if (heap.length > 0) arm((heap[0] as Expiring).expiresAt);
}

function up(index: number): void {
  const entry = heap[index] as Expiring;
  let at = index;
  while (at > 0) {
    const parentAt = (at - 1) >> 1;
    const parent = heap[parentAt] as Expiring;
    if (parent.expiresAt <= entry.expiresAt) break;
    heap[at] = parent;
    parent.clockIndex = at;
    at = parentAt;
  }
  heap[at] = entry;
  entry.clockIndex = at;
}

function down(index: number): void {
  const entry = heap[index] as Expiring;
  const length = heap.length;
  let at = index;
  for (;;) {
    const left = 2 * at + 1;
    if (left >= length) break;
    const right = left + 1;
    const child =
      right < length && (heap[right] as Expiring).expiresAt < (heap[left] as Expiring).expiresAt
        ? right
        : left;
    const next = heap[child] as Expiring;
    if (next.expiresAt >= entry.expiresAt) break;
    heap[at] = next;
    next.clockIndex = at;
    at = child;
  }
  heap[at] = entry;
  entry.clockIndex = at;
}

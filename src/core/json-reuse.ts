/*
 * JSON text reused between calls that resend what an earlier call sent. An agent loop's second
 * model call carries the first one's context window (up to 200 messages) plus the tool call and
 * its results: encoding the window again took as long as the first time (50 to 90 µs for 200
 * messages on the benchmark machine). A caller marks what it sends; the remote transports encode
 * through {@link jsonText}, which appends to the earlier text instead. The local transport
 * encodes nothing, so marking costs it two `WeakMap` insertions.
 *
 * Only short-lived objects are marked (one input and its message array per model call), so the
 * texts kept are dropped with them: nothing is kept per message or per conversation.
 */

/** Inputs whose members are encoded one by one, so that a marked array among them is reused. */
const composites = new WeakSet<object>();
/** Arrays whose text is kept once encoded, as a base for the arrays that later extend them. */
const remembered = new WeakSet<readonly unknown[]>();
/** Arrays that extend another: their base. */
const extensions = new WeakMap<readonly unknown[], readonly unknown[]>();
/** The JSON text of remembered arrays already encoded. */
const texts = new WeakMap<readonly unknown[], string>();

/**
 * Marks a call's input whose remembered array members may be reused (see {@link rememberArray}
 * and {@link extendsArray}); returns it. The input must be a plain object of JSON values that
 * does not change afterwards.
 *
 * @example
 * const first = reusableJson({ messages: rememberArray(window), tools });
 * const second = reusableJson({ messages: extendsArray([...window, asked, result], window), tools });
 */
export function reusableJson<T extends object>(input: T): T {
  composites.add(input);
  return input;
}

/** Marks an array whose text is kept once encoded, for the arrays that later extend it; returns it. */
export function rememberArray<T>(array: T[]): T[] {
  remembered.add(array);
  return array;
}

/**
 * Marks `next` as `base` followed by more elements, `base`'s elements unchanged (the same
 * objects, not modified since `base` was sent), and remembers it; returns `next`. Once `base`'s
 * text is known, `next` is encoded by appending its new elements to it.
 */
export function extendsArray<T>(next: T[], base: readonly T[]): T[] {
  extensions.set(next, base);
  remembered.add(next);
  return next;
}

/** Whether `array` begins with every element of `base`, the same objects. */
function startsWith(array: readonly unknown[], base: readonly unknown[]): boolean {
  if (array.length < base.length) return false;
  for (let i = 0; i < base.length; i += 1) if (array[i] !== base[i]) return false;
  return true;
}

/** A remembered array's JSON text, appended to its base's when that is known. */
function arrayText(array: readonly unknown[]): string {
  const known = texts.get(array);
  if (known !== undefined) return known;
  const base = extensions.get(array);
  const baseText = base && texts.get(base);
  let text: string;
  if (base && baseText !== undefined && startsWith(array, base)) {
    text = baseText.slice(0, -1);
    for (let i = base.length; i < array.length; i += 1) {
      // As JSON.stringify does in an array: an element with no JSON form is null.
      text += `${i === 0 ? '' : ','}${JSON.stringify(array[i]) ?? 'null'}`;
    }
    text += ']';
  } else text = JSON.stringify(array);
  texts.set(array, text);
  return text;
}

/**
 * The JSON text of a value, as `JSON.stringify` gives it (the same text for the same value),
 * reusing the text of remembered arrays of a {@link reusableJson} input sent before.
 */
export function jsonText(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || !composites.has(value)) return JSON.stringify(value);
  let text = '';
  for (const [key, member] of Object.entries(value)) {
    const encoded =
      Array.isArray(member) && remembered.has(member) ? arrayText(member) : JSON.stringify(member);
    if (encoded === undefined) continue;
    text += `${text === '' ? '' : ','}${JSON.stringify(key)}:${encoded}`;
  }
  return `{${text}}`;
}

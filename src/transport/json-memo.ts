/*
 * JSON.stringify with a memory for the elements of long arrays. A model call carries the
 * conversation's context window (up to 200 messages), and a turn sends it twice (before and after
 * its tool call), then the next turn sends it again with one more turn: the same message objects,
 * from the conversation's history cache, encoded over and over. Each element's JSON is kept with
 * the field values it was made from, and used again only while the object still holds exactly
 * those values (compared by identity), so an object changed in place is encoded afresh: the
 * output is always JSON.stringify's.
 */

/** Arrays shorter than this are encoded as they are: remembering costs more than it saves. */
const MIN_LENGTH = 8;

/** An element's JSON and the fields it was made from (see {@link fieldsOf}). */
interface Encoded {
  json: string;
  fields: unknown[];
}

const encoded = new WeakMap<object, Encoded>();

/** Whether `value` is an object literal's kind of object with no `toJSON` of its own. */
function isPlain(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value);
  return (
    (proto === Object.prototype || proto === null) &&
    typeof (value as { toJSON?: unknown }).toJSON !== 'function'
  );
}

/** Whether JSON.stringify writes `value` without looking inside it. */
function isLeaf(value: unknown): boolean {
  return (
    value === null || (typeof value !== 'object' && typeof value !== 'function' && typeof value !== 'bigint')
  );
}

/**
 * The keys and values a plain object's JSON depends on, flattened: its own keys and their values,
 * where a value may be an array of plain objects of leaves (a message's tool calls), whose array,
 * length, keys and values are listed too. `undefined` for anything deeper: not remembered.
 */
function fieldsOf(value: Record<string, unknown>): unknown[] | undefined {
  const keys = Object.keys(value);
  const fields: unknown[] = [keys.length];
  for (const key of keys) {
    const field = value[key];
    fields.push(key, field);
    if (isLeaf(field)) continue;
    if (!Array.isArray(field)) return undefined;
    fields.push(field.length);
    for (const item of field) {
      if (!isPlain(item)) return undefined;
      const itemKeys = Object.keys(item);
      fields.push(item, itemKeys.length);
      for (const itemKey of itemKeys) {
        const itemField = item[itemKey];
        if (!isLeaf(itemField)) return undefined;
        fields.push(itemKey, itemField);
      }
    }
  }
  return fields;
}

/**
 * Whether `value` still holds the fields listed by {@link fieldsOf}, checked without allocating.
 * `for…in` may list a key that JSON.stringify skips (an enumerable inherited one): that is a miss.
 */
function holds(value: Record<string, unknown>, fields: unknown[]): boolean {
  let at = 1;
  let count = 0;
  for (const key in value) {
    count++;
    if (fields[at] !== key) return false;
    const field = value[key];
    if (!same(fields[at + 1], field)) return false;
    at += 2;
    if (isLeaf(field)) continue;
    const items = field as Record<string, unknown>[];
    if (fields[at++] !== items.length) return false;
    for (const item of items) {
      if (fields[at++] !== item) return false;
      const itemCount = fields[at++];
      let itemKeys = 0;
      for (const itemKey in item) {
        itemKeys++;
        if (fields[at] !== itemKey || !same(fields[at + 1], item[itemKey])) return false;
        at += 2;
      }
      if (itemKeys !== itemCount) return false;
    }
  }
  return count === fields[0] && at === fields.length;
}

/** Identity, with NaN the same as NaN (both are written `null`). */
function same(a: unknown, b: unknown): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/** An array element's JSON, as JSON.stringify writes it inside an array. */
function elementJson(item: unknown): string {
  if (!isPlain(item)) return JSON.stringify(item) ?? 'null';
  const known = encoded.get(item);
  if (known && holds(item, known.fields)) return known.json;
  const json = JSON.stringify(item);
  const fields = fieldsOf(item);
  if (fields) encoded.set(item, { json, fields });
  return json;
}

/** An array of at least {@link MIN_LENGTH} items that JSON.stringify writes item by item. */
function isLongArray(value: unknown): value is unknown[] {
  return (
    Array.isArray(value) &&
    value.length >= MIN_LENGTH &&
    Object.getPrototypeOf(value) === Array.prototype &&
    !Object.hasOwn(value, 'toJSON')
  );
}

function arrayJson(items: readonly unknown[]): string {
  const parts = new Array<string>(items.length);
  for (let i = 0; i < items.length; i++) parts[i] = elementJson(items[i]);
  return `[${parts.join(',')}]`;
}

/**
 * `JSON.stringify(value)`, the same text, faster for a plain object holding long arrays of plain
 * objects sent again and again: each element's JSON is remembered (weakly: it goes with its
 * object) and reused while the element's fields are unchanged. Throws where JSON.stringify
 * throws (a BigInt, a cycle).
 */
export function stringifyRemembering(value: unknown): string | undefined {
  if (!isPlain(value)) return JSON.stringify(value);
  if (!Object.values(value).some(isLongArray)) return JSON.stringify(value);
  let out = '';
  for (const key of Object.keys(value)) {
    const field = value[key];
    const json = isLongArray(field) ? arrayJson(field) : JSON.stringify(field);
    if (json === undefined) continue;
    out += `${out === '' ? '' : ','}${JSON.stringify(key)}:${json}`;
  }
  return `{${out}}`;
}

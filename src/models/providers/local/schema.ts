/** What argument extraction needs to know about one property of a tool's JSON Schema. */
export interface PropertyInfo {
  readonly name: string;
  readonly kind: 'string' | 'number' | 'integer' | 'boolean' | 'other';
  readonly required: boolean;
  /** The allowed values, when the property is an enum. */
  readonly enumValues?: readonly unknown[];
}

const cache = new WeakMap<Record<string, unknown>, readonly PropertyInfo[]>();

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(schema: unknown, depth = 0): Pick<PropertyInfo, 'kind' | 'enumValues'> {
  if (!isRecord(schema) || depth > 3) return { kind: 'other' };
  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    return { kind: typeof schema.enum[0] === 'string' ? 'string' : 'other', enumValues: schema.enum };
  }
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (type === 'string' || type === 'number' || type === 'integer' || type === 'boolean')
    return { kind: type };
  const branches = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(branches)) {
    for (const branch of branches) {
      const inner = describe(branch, depth + 1);
      if (inner.kind !== 'other' || inner.enumValues) return inner;
    }
  }
  return { kind: 'other' };
}

/**
 * The top-level properties of an object JSON Schema, in declaration order. Cached per schema
 * object, since the same tool list comes back on every turn of a conversation.
 */
export function readProperties(parameters: Record<string, unknown>): readonly PropertyInfo[] {
  const hit = cache.get(parameters);
  if (hit) return hit;
  const properties = isRecord(parameters.properties) ? parameters.properties : {};
  const required = new Set(
    Array.isArray(parameters.required) ? parameters.required.filter((r) => typeof r === 'string') : [],
  );
  const infos: PropertyInfo[] = [];
  for (const [name, schema] of Object.entries(properties)) {
    infos.push({ name, required: required.has(name), ...describe(schema) });
  }
  cache.set(parameters, infos);
  return infos;
}

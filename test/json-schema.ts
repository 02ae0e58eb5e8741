// The subset of JSON Schema (2020-12, as OpenAPI 3.1 uses it) that src/admin/openapi.ts writes:
// type (one or several), properties, required, additionalProperties, items, enum, const,
// minimum, maximum and local $ref. Returns the problems found, each with its JSON path.

type Schema = Record<string, unknown>;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

const KNOWN = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'const', 'minimum', 'maximum',
  '$ref', 'description', 'format']);

export function validate(value: unknown, schema: Schema, root: Schema, at = '$'): string[] {
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) return [`${at}: the schema uses "${k}", which this validator does not know`];
  if (typeof schema.$ref === 'string') {
    const target = schema.$ref.replace(/^#\//, '').split('/').reduce<unknown>((o, k) => (o as Schema)?.[k], root);
    if (!target) return [`${at}: unresolved ${schema.$ref}`];
    return validate(value, target as Schema, root, at);
  }
  const problems: string[] = [];
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type as string[] : [schema.type as string];
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${at}: expected ${types.join(' or ')}, got ${t}`];
  }
  if (schema.enum !== undefined && !(schema.enum as unknown[]).includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  if (schema.const !== undefined && value !== schema.const) problems.push(`${at}: expected ${JSON.stringify(schema.const)}`);
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) problems.push(`${at}: below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) problems.push(`${at}: above ${schema.maximum}`);
  }
  if (t === 'array' && schema.items) (value as unknown[]).forEach((v, i) => problems.push(...validate(v, schema.items as Schema, root, `${at}[${i}]`)));
  if (t === 'object') {
    const o = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in o)) problems.push(`${at}: missing "${r}"`);
    for (const [k, v] of Object.entries(o)) {
      if (props[k]) problems.push(...validate(v, props[k], root, `${at}.${k}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: unexpected "${k}"`);
      else if (typeof schema.additionalProperties === 'object') problems.push(...validate(v, schema.additionalProperties as Schema, root, `${at}.${k}`));
    }
  }
  return problems;
}

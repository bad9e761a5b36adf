/**
 * Avro schema resolution (the rules of the Avro specification, "Schema
 * Resolution") and the seven compatibility levels of the Confluent Schema
 * Registry built on it. Pure functions over parsed schema JSON: no I/O.
 * Schemas are assumed valid (check them with avsc first).
 */

type Primitive = 'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'bytes' | 'string';

const PRIMITIVES = new Set<string>(['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string']);

interface Field {
  name: string;
  aliases: string[];
  type: AvroNode;
  hasDefault: boolean;
}

export type AvroNode =
  | { kind: 'primitive'; type: Primitive }
  | { kind: 'record'; name: string; fullName: string; aliases: string[]; fields: Field[] }
  | { kind: 'enum'; name: string; fullName: string; aliases: string[]; symbols: string[]; default?: string }
  | { kind: 'fixed'; name: string; fullName: string; aliases: string[]; size: number }
  | { kind: 'array'; items: AvroNode }
  | { kind: 'map'; values: AvroNode }
  | { kind: 'union'; branches: AvroNode[] };

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function qualify(name: string, namespace: string | undefined): string {
  if (name.includes('.') || !namespace) return name;
  return `${namespace}.${name}`;
}

function simpleName(fullName: string): string {
  return fullName.slice(fullName.lastIndexOf('.') + 1);
}

/**
 * Parses schema JSON into a graph where named types are shared nodes (recursion becomes a cycle).
 * `named`: the named types defined before it (schema references), shared, and extended with its own.
 */
export function parseAvro(schema: Json, named: Map<string, AvroNode> = new Map()): AvroNode {

  const parse = (node: Json, namespace: string | undefined): AvroNode => {
    if (typeof node === 'string') {
      if (PRIMITIVES.has(node)) return { kind: 'primitive', type: node as Primitive };
      const found = named.get(qualify(node, namespace)) ?? named.get(node);
      if (!found) throw new Error(`unknown type "${node}"`);
      return found;
    }
    if (Array.isArray(node)) return { kind: 'union', branches: node.map((b) => parse(b, namespace)) };
    if (node === null || typeof node !== 'object') throw new Error(`not a schema: ${JSON.stringify(node)}`);
    const type = node.type;
    if (typeof type !== 'string' && type !== undefined && type !== null) return parse(type, namespace);
    const aliasesOf = (ns: string | undefined) =>
      Array.isArray(node.aliases) ? node.aliases.map((a) => qualify(String(a), ns)) : [];
    switch (type) {
      case 'record':
      case 'error': {
        const fullName = qualify(String(node.name), typeof node.namespace === 'string' ? node.namespace : namespace);
        const ns = fullName.includes('.') ? fullName.slice(0, fullName.lastIndexOf('.')) : undefined;
        const record: AvroNode = { kind: 'record', name: simpleName(fullName), fullName, aliases: aliasesOf(ns), fields: [] };
        named.set(fullName, record);
        const fields = Array.isArray(node.fields) ? node.fields : [];
        for (const f of fields) {
          const field = f as { [key: string]: Json };
          record.fields.push({
            name: String(field.name),
            aliases: Array.isArray(field.aliases) ? field.aliases.map(String) : [],
            type: parse(field.type ?? null, ns),
            hasDefault: Object.prototype.hasOwnProperty.call(field, 'default'),
          });
        }
        return record;
      }
      case 'enum': {
        const fullName = qualify(String(node.name), typeof node.namespace === 'string' ? node.namespace : namespace);
        const ns = fullName.includes('.') ? fullName.slice(0, fullName.lastIndexOf('.')) : undefined;
        const enumNode: AvroNode = {
          kind: 'enum',
          name: simpleName(fullName),
          fullName,
          aliases: aliasesOf(ns),
          symbols: Array.isArray(node.symbols) ? node.symbols.map(String) : [],
          ...(typeof node.default === 'string' ? { default: node.default } : {}),
        };
        named.set(fullName, enumNode);
        return enumNode;
      }
      case 'fixed': {
        const fullName = qualify(String(node.name), typeof node.namespace === 'string' ? node.namespace : namespace);
        const ns = fullName.includes('.') ? fullName.slice(0, fullName.lastIndexOf('.')) : undefined;
        const fixed: AvroNode = { kind: 'fixed', name: simpleName(fullName), fullName, aliases: aliasesOf(ns), size: Number(node.size) };
        named.set(fullName, fixed);
        return fixed;
      }
      case 'array':
        return { kind: 'array', items: parse(node.items ?? null, namespace) };
      case 'map':
        return { kind: 'map', values: parse(node.values ?? null, namespace) };
      default:
        if (typeof type === 'string') return parse(type, namespace);
        throw new Error(`not a schema: ${JSON.stringify(node)}`);
    }
  };

  return parse(schema, undefined);
}

const PROMOTIONS: Record<string, readonly string[]> = {
  int: ['long', 'float', 'double'],
  long: ['float', 'double'],
  float: ['double'],
  string: ['bytes'],
  bytes: ['string'],
};

function describe(node: AvroNode): string {
  switch (node.kind) {
    case 'primitive':
      return node.type;
    case 'record':
    case 'enum':
    case 'fixed':
      return `${node.kind} ${node.fullName}`;
    default:
      return node.kind;
  }
}

function namesMatch(reader: { name: string; aliases: string[] }, writer: { name: string; fullName: string }): boolean {
  return reader.name === writer.name || reader.aliases.includes(writer.fullName) || reader.aliases.includes(writer.name);
}

/**
 * Lists why data written with `writer` cannot be read with `reader`;
 * an empty list means it can.
 */
export function readIncompatibilities(reader: AvroNode, writer: AvroNode): string[] {
  const inProgress = new Map<AvroNode, Set<AvroNode>>();

  const check = (r: AvroNode, w: AvroNode, path: string): string[] => {
    // A pair already being compared further up is assumed compatible: recursion is decided by the rest.
    const seen = inProgress.get(r) ?? new Set<AvroNode>();
    if (seen.has(w)) return [];
    seen.add(w);
    inProgress.set(r, seen);
    try {
      return compare(r, w, path);
    } finally {
      seen.delete(w);
    }
  };

  const compare = (r: AvroNode, w: AvroNode, path: string): string[] => {
    if (w.kind === 'union') {
      return w.branches.flatMap((branch, i) => check(r, branch, `${path}[writer branch ${i}]`));
    }
    if (r.kind === 'union') {
      const fits = r.branches.some((branch) => check(branch, w, path).length === 0);
      return fits ? [] : [`${path || "/"}: no branch of the reader's union can read the writer's ${describe(w)}`];
    }
    if (r.kind === 'primitive' && w.kind === 'primitive') {
      if (r.type === w.type || PROMOTIONS[w.type]?.includes(r.type)) return [];
      return [`${path || "/"}: reader type ${r.type} cannot read writer type ${w.type}`];
    }
    if (r.kind !== w.kind) return [`${path || "/"}: reader type ${describe(r)} cannot read writer type ${describe(w)}`];
    switch (r.kind) {
      case 'array':
        return check(r.items, (w as typeof r).items, `${path}/items`);
      case 'map':
        return check(r.values, (w as typeof r).values, `${path}/values`);
      case 'fixed': {
        const wf = w as typeof r;
        if (!namesMatch(r, wf)) return [`${path || "/"}: reader fixed ${r.fullName} does not match writer fixed ${wf.fullName}`];
        return r.size === wf.size ? [] : [`${path || "/"}: fixed size ${r.size} cannot read size ${wf.size}`];
      }
      case 'enum': {
        const we = w as typeof r;
        if (!namesMatch(r, we)) return [`${path || "/"}: reader enum ${r.fullName} does not match writer enum ${we.fullName}`];
        const missing = we.symbols.filter((s) => !r.symbols.includes(s));
        if (missing.length === 0 || r.default !== undefined) return [];
        return [`${path || "/"}: reader enum ${r.fullName} lacks symbols ${missing.join(', ')} and has no default`];
      }
      case 'record': {
        const wr = w as typeof r;
        if (!namesMatch(r, wr)) return [`${path || "/"}: reader record ${r.fullName} does not match writer record ${wr.fullName}`];
        return r.fields.flatMap((field) => {
          const writerField =
            wr.fields.find((f) => f.name === field.name) ?? wr.fields.find((f) => field.aliases.includes(f.name));
          if (writerField) return check(field.type, writerField.type, `${path}/${field.name}`);
          return field.hasDefault ? [] : [`${path}/${field.name}: reader field has no default and the writer has no such field`];
        });
      }
      default:
        return [];
    }
  };

  return check(reader, writer, '');
}

export const COMPATIBILITY_LEVELS = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;

export type CompatibilityLevel = (typeof COMPATIBILITY_LEVELS)[number];

export function isCompatibilityLevel(value: unknown): value is CompatibilityLevel {
  return typeof value === 'string' && (COMPATIBILITY_LEVELS as readonly string[]).includes(value);
}

/** A registered version of a subject, as compatibility checks see it. */
export interface VersionedSchema {
  version: number;
  node: AvroNode;
}

/**
 * Checks a candidate schema against the existing versions of a subject
 * (oldest first, deleted versions already left out) at `level`.
 * Returns the reasons it is incompatible; an empty list means compatible.
 */
export function compatibilityProblems(level: CompatibilityLevel, candidate: AvroNode, existing: VersionedSchema[]): string[] {
  if (level === 'NONE' || existing.length === 0) return [];
  const against = level.endsWith('_TRANSITIVE') ? existing : existing.slice(-1);
  const backward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const forward = level.startsWith('FORWARD') || level.startsWith('FULL');
  const problems: string[] = [];
  for (const old of against) {
    if (backward) {
      for (const p of readIncompatibilities(candidate, old.node)) problems.push(`BACKWARD against version ${old.version}: ${p}`);
    }
    if (forward) {
      for (const p of readIncompatibilities(old.node, candidate)) problems.push(`FORWARD against version ${old.version}: ${p}`);
    }
  }
  return problems;
}

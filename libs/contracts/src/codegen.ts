import { CONTRACT_NAMES, latestSchema } from './schemas';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * TypeScript declarations for the newest version of every contract, generated
 * from the Avro schemas so that the types cannot drift from them.
 * Longs are numbers (epoch milliseconds for timestamps); optional fields are `T | null`.
 */
export function generateTypes(): string {
  const declarations = new Map<string, string>();

  const tsType = (schema: Json, indent: string): string => {
    if (typeof schema === 'string') {
      switch (schema) {
        case 'null':
          return 'null';
        case 'boolean':
          return 'boolean';
        case 'int':
        case 'long':
        case 'float':
        case 'double':
          return 'number';
        case 'string':
          return 'string';
        case 'bytes':
          return 'Buffer';
        default:
          return schema.slice(schema.lastIndexOf('.') + 1);
      }
    }
    if (Array.isArray(schema)) return schema.map((s) => tsType(s, indent)).join(' | ');
    if (schema === null || typeof schema !== 'object') throw new Error(`unsupported schema ${JSON.stringify(schema)}`);
    switch (schema.type) {
      case 'record': {
        const name = String(schema.name);
        const fields = (schema.fields as { name: string; type: Json; doc?: string }[]).map(
          (f) => `${f.doc ? `  /** ${f.doc} */\n` : ''}  ${f.name}: ${tsType(f.type, '  ')};`,
        );
        declarations.set(name, `${schema.doc ? `/** ${String(schema.doc)} */\n` : ''}export interface ${name} {\n${fields.join('\n')}\n}`);
        return name;
      }
      case 'enum': {
        const name = String(schema.name);
        declarations.set(name, `export type ${name} = ${(schema.symbols as string[]).map((s) => `'${s}'`).join(' | ')};`);
        return name;
      }
      case 'array':
        return `${tsType(schema.items ?? null, indent)}[]`;
      case 'map':
        return `Record<string, ${tsType(schema.values ?? null, indent)}>`;
      case 'fixed':
        return 'Buffer';
      default:
        return tsType(schema.type ?? null, indent);
    }
  };

  for (const name of CONTRACT_NAMES) tsType(latestSchema(name).json as Json, '');
  const body = [...declarations.values()].join('\n\n');
  return `// Generated from libs/contracts/schemas by \`pnpm --filter @sluice/contracts generate\`: do not edit.\n\n${body}\n`;
}

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The contracts of Sluice; each has a folder of versions under `schemas/`. */
export const CONTRACT_NAMES = ['ActivityEvent', 'CatalogItem', 'EnrichedEvent', 'WindowAggregate'] as const;

export type ContractName = (typeof CONTRACT_NAMES)[number];

export interface SchemaVersion {
  version: number;
  /** The schema text as kept in the repository. */
  text: string;
  json: unknown;
}

/** The package's `schemas/` folder: next to `src/` and `dist/`. */
export const schemasDir = join(__dirname, '..', 'schemas');

const histories = new Map<string, SchemaVersion[]>();

/** Every version of a contract, oldest first, as kept in `schemas/<Name>/v<N>.avsc`. */
export function schemaHistory(name: ContractName): SchemaVersion[] {
  const cached = histories.get(name);
  if (cached) return cached;
  const dir = join(schemasDir, name);
  const versions = readdirSync(dir)
    .map((file) => /^v(\d+)\.avsc$/.exec(file))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => {
      const text = readFileSync(join(dir, m[0]), 'utf8');
      return { version: Number(m[1]), text, json: JSON.parse(text) as unknown };
    })
    .sort((a, b) => a.version - b.version);
  versions.forEach((v, i) => {
    if (v.version !== i + 1) throw new Error(`${name}: versions must be v1, v2, … without gaps; found v${v.version} at place ${i + 1}`);
  });
  histories.set(name, versions);
  return versions;
}

/** The newest version of a contract: what producers write today. */
export function latestSchema(name: ContractName): SchemaVersion {
  const history = schemaHistory(name);
  const latest = history[history.length - 1];
  if (!latest) throw new Error(`${name} has no schema versions`);
  return latest;
}

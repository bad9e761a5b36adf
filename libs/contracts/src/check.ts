import avro from 'avsc';
import { compatibilityProblems, parseAvro } from './avro-compatibility';
import { CONTRACT_NAMES, schemaHistory, latestSchema, type ContractName } from './schemas';
import { topicCatalog, valueSubjectOf } from './topics';

export interface CheckResult {
  contract: ContractName;
  what: string;
  problems: string[];
}

/**
 * Every version of every contract is a valid Avro schema and BACKWARD
 * compatible with all the versions before it (a consumer on the newest
 * version reads everything ever written).
 */
export function checkHistories(): CheckResult[] {
  return CONTRACT_NAMES.map((contract) => {
    const history = schemaHistory(contract);
    const problems: string[] = [];
    for (const version of history) {
      try {
        avro.Type.forSchema(version.json as avro.Schema);
      } catch (err) {
        problems.push(`v${version.version} is not a valid Avro schema: ${(err as Error).message}`);
      }
    }
    if (problems.length === 0) {
      const parsed = history.map((v) => ({ version: v.version, node: parseAvro(v.json as never) }));
      for (let i = 1; i < parsed.length; i++) {
        for (const p of compatibilityProblems('BACKWARD_TRANSITIVE', parsed[i]!.node, parsed.slice(0, i))) problems.push(`v${i + 1}: ${p}`);
      }
    }
    return { contract, what: `history v1..v${history.length} is BACKWARD compatible`, problems };
  });
}

/**
 * The newest schema of each contract is compatible with what a registry holds
 * under its topic's subject, at that subject's own compatibility level.
 */
export async function checkAgainstRegistry(registryUrl: string, fetchImpl: typeof fetch = fetch): Promise<CheckResult[]> {
  const base = registryUrl.replace(/\/$/, '');
  const results: CheckResult[] = [];
  for (const topic of topicCatalog().filter((t) => t.contract)) {
    const contract = topic.contract!;
    const subject = valueSubjectOf(topic.name);
    const res = await fetchImpl(`${base}/compatibility/subjects/${encodeURIComponent(subject)}/versions/latest?verbose=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ schema: latestSchema(contract).text }),
    });
    const body = (await res.json()) as { is_compatible?: boolean; messages?: string[]; error_code?: number; message?: string };
    const what = `newest ${contract} against ${subject} in ${base}`;
    if (res.status === 404 && (body.error_code === 40401 || body.error_code === 40402)) {
      results.push({ contract, what: `${what} (subject not registered yet)`, problems: [] });
    } else if (!res.ok) {
      results.push({ contract, what, problems: [`registry answered ${res.status}: ${body.message ?? JSON.stringify(body)}`] });
    } else {
      results.push({ contract, what, problems: body.is_compatible ? [] : (body.messages ?? ['incompatible']) });
    }
  }
  return results;
}

import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import fc from 'fast-check';

type Json = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** The document's `#/components/...` references, pointed at the copy registered under `doc`. */
function underDoc(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/components', '"$ref":"doc#/components'));
}

function compiler(doc: Json): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
  return ajv;
}

type Operation = {
  parameters?: { name: string; in: string; required?: boolean; schema: Json }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema?: unknown }> }>;
};

function operationOf(doc: Json, path: string, method: string): Operation {
  const operation = (doc.paths as Record<string, Record<string, Operation>>)[path]?.[method.toLowerCase()];
  if (!operation) throw new Error(`${method.toUpperCase()} ${path} is not documented`);
  return operation;
}

export interface OpenApiValidators {
  /** Whether a request body matches the documented JSON body of `method path`. */
  body(path: string, method: string): (body: unknown) => boolean;
  /**
   * Whether a query, as express hands it over (a string for a parameter given once, an array when repeated),
   * matches the documented query parameters of `method path`: every required one present, each given once and
   * valid against its schema (an integer parameter written in decimal digits), and no undocumented one (the
   * services refuse those).
   */
  query(path: string, method: string): (query: Record<string, unknown>) => boolean;
}

/** Validators of requests against a service's OpenAPI 3.1 document, to compare with what the service accepts. */
export function openApiValidators(doc: Json): OpenApiValidators {
  const ajv = compiler(doc);
  return {
    body(path, method) {
      const schema = operationOf(doc, path, method).requestBody?.content['application/json']?.schema;
      if (schema === undefined) throw new Error(`${method.toUpperCase()} ${path} documents no JSON body`);
      const validate = ajv.compile(underDoc(schema) as object);
      return (body) => validate(body);
    },
    query(path, method) {
      const parameters = (operationOf(doc, path, method).parameters ?? []).filter((p) => p.in === 'query');
      const checks = parameters.map((p) => ({ ...p, validate: ajv.compile(underDoc(p.schema) as object), integer: p.schema.type === 'integer' }));
      return (query) => {
        if (Object.keys(query).some((name) => !parameters.some((p) => p.name === name))) return false;
        return checks.every((p) => {
          const raw = query[p.name];
          if (raw === undefined) return !p.required;
          if (typeof raw !== 'string') return false;
          return p.validate(p.integer && /^-?[0-9]+$/.test(raw) ? Number(raw) : raw);
        });
      };
    },
  };
}

export interface OpenApiChecker {
  /** What is wrong with one real response of `method route` against the document: nothing when it matches. */
  check(route: string, method: string, res: { status: number; body: unknown }): string[];
  /** Documented operations (`GET /path`) no checked response has exercised yet. */
  unchecked(): string[];
}

/**
 * Checks real responses against a service's OpenAPI 3.1 document (its own `/openapi.json`): the status must be
 * documented for the operation and a JSON body must match its schema (formats included).
 */
export function openApiChecker(doc: Json): OpenApiChecker {
  const ajv = compiler(doc);
  const paths = doc.paths as Record<string, Record<string, Operation>>;
  const seen = new Set<string>();
  return {
    check(route, method, res) {
      const operation = `${method.toUpperCase()} ${route}`;
      const response = paths[route]?.[method.toLowerCase()]?.responses[String(res.status)];
      if (!response) return [`${operation}: status ${res.status} is not documented`];
      seen.add(operation);
      const schema = response.content?.['application/json']?.schema;
      if (schema === undefined) return response.content ? [] : res.body === undefined || res.body === null || res.body === '' ? [] : [`${operation} ${res.status}: a body where none is documented`];
      const validate = ajv.compile(underDoc(schema) as object);
      return validate(res.body) ? [] : (validate.errors ?? []).map((e) => `${operation} ${res.status}: ${e.instancePath || '(body)'} ${e.message ?? ''}`);
    },
    unchecked() {
      return Object.entries(paths).flatMap(([route, operations]) =>
        Object.keys(operations)
          .filter((m) => METHODS.includes(m))
          .map((m) => `${m.toUpperCase()} ${route}`)
          .filter((operation) => !seen.has(operation)),
      );
    },
  };
}

/**
 * A property: the service (`accepts`) takes exactly the requests its document allows (`documented`), the rules the
 * document states only in words aside (`inWords`). Runs `runs` generated requests and throws on the first
 * disagreement; it also throws when either outcome occurred fewer than `minEach` times, since then it showed little.
 */
export function assertSameAcceptance<T>(
  requests: fc.Arbitrary<T>,
  check: { accepts: (request: T) => boolean; documented: (request: T) => boolean; inWords?: (request: T) => boolean },
  options: { runs?: number; minEach?: number } = {},
): { accepted: number; refused: number } {
  const outcomes = { accepted: 0, refused: 0 };
  fc.assert(
    fc.property(requests, (request) => {
      const accepted = check.accepts(request);
      outcomes[accepted ? 'accepted' : 'refused']++;
      const expected = check.documented(request) && (check.inWords?.(request) ?? true);
      if (accepted !== expected) throw new Error(`${JSON.stringify(request)}: the service ${accepted ? 'accepts' : 'refuses'} it, the document ${expected ? 'allows' : 'does not allow'} it`);
    }),
    { numRuns: options.runs ?? 3_000 },
  );
  const minEach = options.minEach ?? 300;
  if (Math.min(outcomes.accepted, outcomes.refused) <= minEach) throw new Error(`too few of one outcome to show anything: ${JSON.stringify(outcomes)} (each must exceed ${minEach})`);
  return outcomes;
}

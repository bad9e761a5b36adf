import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';

type Json = Record<string, unknown>;
const METHODS = ['get', 'put', 'post', 'delete', 'patch'];

/** The document's `#/components/...` references, pointed at the copy registered under `doc`. */
function underDoc(schema: unknown): unknown {
  return JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/components', '"$ref":"doc#/components'));
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
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: 'doc', components: doc.components }, 'doc');
  const paths = doc.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: unknown }> }> }>>;
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

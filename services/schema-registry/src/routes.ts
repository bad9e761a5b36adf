import { textProblem, verifyUtf8 } from '@sluice/runtime';
import express, { type ErrorRequestHandler, type Request, type Router } from 'express';
import { REGISTRY_ERRORS, RegistryError } from './errors';
import { parseVersion, type Registry } from './registry';

const CONTENT_TYPE = 'application/vnd.schemaregistry.v1+json';

const flag = (req: Request, name: string): boolean => String(req.query[name] ?? '').toLowerCase() === 'true';

function schemaId(raw: string): number {
  const id = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(id)) throw new RegistryError(REGISTRY_ERRORS.schemaNotFound, 'Schema not found');
  return id;
}

/** The Confluent Schema Registry REST API over a `Registry`. */
export function registryRoutes(registry: Registry, options: { maxBodyBytes: number }): Router {
  const router = express.Router();
  router.use((_req, res, next) => {
    res.type(CONTENT_TYPE);
    next();
  });
  // Clients send application/vnd.schemaregistry.v1+json, application/json or nothing: every body is JSON here.
  router.use(express.json({ type: () => true, limit: options.maxBodyBytes, strict: false, verify: verifyUtf8 }));

  const send = (res: express.Response, body: unknown) => res.type(CONTENT_TYPE).send(JSON.stringify(body));
  // Before any route reaches the store: a subject that Postgres text cannot hold is the client's error.
  router.param('subject', (_req, _res, next, subject: string) => {
    const problem = textProblem(subject, 'identifier');
    next(problem ? new RegistryError(REGISTRY_ERRORS.invalidSubject, `The subject ${JSON.stringify(subject)} is not valid: it ${problem}.`) : undefined);
  });

  router.get('/subjects', async (req, res) => send(res, await registry.subjects(flag(req, 'deleted'))));
  router.get('/subjects/:subject/versions', async (req, res) =>
    send(res, await registry.versionNumbers(req.params.subject, flag(req, 'deleted'))),
  );
  router.post('/subjects/:subject/versions', async (req, res) => send(res, await registry.register(req.params.subject, req.body)));
  router.get('/subjects/:subject/versions/:version', async (req, res) =>
    send(res, await registry.getVersion(req.params.subject, parseVersion(req.params.version), flag(req, 'deleted'))),
  );
  router.get('/subjects/:subject/versions/:version/schema', async (req, res) => {
    const version = await registry.getVersion(req.params.subject, parseVersion(req.params.version), flag(req, 'deleted'));
    send(res, JSON.parse(version.schema));
  });
  router.get('/subjects/:subject/versions/:version/referencedby', async (req, res) =>
    send(res, await registry.referencedBy(req.params.subject, parseVersion(req.params.version))),
  );
  router.post('/subjects/:subject', async (req, res) => send(res, await registry.lookup(req.params.subject, req.body, flag(req, 'deleted'))));
  router.delete('/subjects/:subject', async (req, res) => send(res, await registry.deleteSubject(req.params.subject, flag(req, 'permanent'))));
  router.delete('/subjects/:subject/versions/:version', async (req, res) =>
    send(res, await registry.deleteVersion(req.params.subject, parseVersion(req.params.version), flag(req, 'permanent'))),
  );

  router.get('/schemas/types', (_req, res) => send(res, ['AVRO']));
  router.get('/schemas/ids/:id', async (req, res) => send(res, await registry.schemaById(schemaId(req.params.id))));
  router.get('/schemas/ids/:id/schema', async (req, res) => send(res, JSON.parse((await registry.schemaById(schemaId(req.params.id))).schema)));
  router.get('/schemas/ids/:id/versions', async (req, res) =>
    send(res, await registry.subjectVersionsOfSchema(schemaId(req.params.id), flag(req, 'deleted'))),
  );

  router.get('/config', async (_req, res) => send(res, { compatibilityLevel: await registry.getConfig(undefined, true) }));
  router.put('/config', async (req, res) => send(res, { compatibility: await registry.setConfig(undefined, req.body) }));
  router.get('/config/:subject', async (req, res) =>
    send(res, { compatibilityLevel: await registry.getConfig(req.params.subject, flag(req, 'defaultToGlobal')) }),
  );
  router.put('/config/:subject', async (req, res) => send(res, { compatibility: await registry.setConfig(req.params.subject, req.body) }));
  router.delete('/config/:subject', async (req, res) => send(res, { compatibilityLevel: await registry.deleteConfig(req.params.subject) }));

  router.post('/compatibility/subjects/:subject/versions/:version', async (req, res) => {
    const result = await registry.checkCompatibility(req.params.subject, parseVersion(req.params.version), req.body);
    send(res, flag(req, 'verbose') ? { is_compatible: result.compatible, messages: result.messages } : { is_compatible: result.compatible });
  });
  router.post('/compatibility/subjects/:subject/versions', async (req, res) => {
    const result = await registry.checkCompatibility(req.params.subject, 'latest', req.body);
    send(res, flag(req, 'verbose') ? { is_compatible: result.compatible, messages: result.messages } : { is_compatible: result.compatible });
  });

  router.get('/mode', async (_req, res) => send(res, { mode: await registry.getMode(undefined, true) }));
  router.put('/mode', async (req, res) => send(res, { mode: await registry.setMode(undefined, req.body) }));
  router.get('/mode/:subject', async (req, res) => send(res, { mode: await registry.getMode(req.params.subject, flag(req, 'defaultToGlobal')) }));
  router.put('/mode/:subject', async (req, res) => send(res, { mode: await registry.setMode(req.params.subject, req.body) }));
  router.delete('/mode/:subject', async (req, res) => send(res, { mode: await registry.deleteMode(req.params.subject) }));

  router.use((req, res) => {
    res.status(404);
    send(res, { error_code: REGISTRY_ERRORS.routeNotFound, message: `HTTP 404 Not Found: ${req.method} ${req.path}` });
  });

  const onError: ErrorRequestHandler = (err: unknown, _req, res, _next) => {
    const error = toRegistryError(err);
    res.status(error.status);
    send(res, { error_code: error.errorCode, message: error.message });
  };
  router.use(onError);
  return router;
}

function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  const parserError = err as { type?: string };
  if (parserError.type === 'entity.too.large') return new RegistryError(REGISTRY_ERRORS.bodyTooLarge, 'The request body is larger than the limit');
  if (parserError.type === 'entity.parse.failed') return new RegistryError(REGISTRY_ERRORS.badRequest, 'The request body is not valid JSON');
  if (parserError.type === 'entity.encoding.invalid') return new RegistryError(REGISTRY_ERRORS.badRequest, 'The request body is not well-formed UTF-8');
  if (parserError.type !== undefined) return new RegistryError(REGISTRY_ERRORS.badRequest, `Bad request: ${parserError.type}`);
  // express refuses a path whose percent-encoding is not UTF-8 (a URIError with status 400): the client's error.
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) return new RegistryError(REGISTRY_ERRORS.badRequest, 'Bad request: the path is not well-formed');
  return new RegistryError(REGISTRY_ERRORS.storeError, 'Error in the backend data store');
}

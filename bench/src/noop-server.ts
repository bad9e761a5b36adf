#!/usr/bin/env node
import express from 'express';

/**
 * The HTTP framework's own ceiling for the gateway scenario: express with the
 * same JSON body parser and limit as the gateway, a route that parses the body
 * and answers 202 with a body of the gateway's shape, and nothing else (no
 * validation, no Avro, no Kafka). Prints its port, runs until killed.
 */
const app = express();
app.disable('x-powered-by');
app.post('/v1/events', express.json({ limit: 1_048_576, strict: false, type: () => true }), (req, res) => {
  const events = (req.body as { events?: { eventId?: string }[] }).events ?? [];
  res.status(202).json({ accepted: events.length, results: events.map((e, i) => ({ eventId: e.eventId, partition: i % 6, offset: String(i) })) });
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${typeof address === 'object' && address ? address.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

import { join } from 'node:path';
import express, { type Router } from 'express';

/**
 * No inline script or style, nothing from elsewhere: the page runs only its own script, and can
 * talk only to this service. Every value from a record is put in the page as text, never as markup.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The operator console under /console/: static files (the page and its style from console/static,
 * its script compiled from console/src to dist/console). It has no endpoint of its own: it calls the
 * admin API with the token the operator signs in with.
 */
export function consoleRoutes(): Router {
  const router = express.Router();
  router.use('/console', (_req, res, next) => {
    res.set({
      'content-security-policy': CONSOLE_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    });
    next();
  });
  router.use('/console', express.static(join(__dirname, '..', 'console', 'static'), { index: 'index.html' }));
  router.use('/console', express.static(join(__dirname, 'console')));
  return router;
}

import { errorBody, HttpError, toHttpError } from './http';

test('body parser failures map to stable codes and client statuses', () => {
  expect(toHttpError({ type: 'entity.parse.failed', status: 400 })).toMatchObject({ status: 400, code: 'REQUEST_BODY_INVALID_JSON' });
  expect(toHttpError({ type: 'entity.too.large', status: 413 })).toMatchObject({ status: 413, code: 'REQUEST_BODY_TOO_LARGE' });
  expect(toHttpError({ type: 'charset.unsupported', status: 415 })).toMatchObject({ status: 415 });
});

test('an HttpError passes through unchanged', () => {
  const err = new HttpError(429, 'RATE_LIMITED', 'slow down', undefined, { 'retry-after': '1' });
  expect(toHttpError(err)).toBe(err);
});

test('an unknown failure is a 500 that reveals nothing', () => {
  expect(toHttpError(new Error('password=secret'))).toMatchObject({ status: 500, code: 'INTERNAL', message: 'internal error' });
});

test('error bodies have the documented shape', () => {
  expect(errorBody('X', 'y')).toEqual({ error: { code: 'X', message: 'y' } });
  expect(errorBody('X', 'y', [1])).toEqual({ error: { code: 'X', message: 'y', details: [1] } });
});

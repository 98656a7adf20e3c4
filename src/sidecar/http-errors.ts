import type { FastifyError, FastifyInstance } from 'fastify';
import type { z } from 'zod';
import { AuthError } from '../auth/verify-token.ts';
import { BillingError, type BillingErrorCode } from '../billing/errors.ts';
import { unstorableTextAt } from '../billing/storable-text.ts';

/** An answer other than 2xx, always sent as `{error: {code, message}}`. */
export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const BILLING_STATUS: Record<BillingErrorCode, number> = {
  invalid_argument: 400,
  malformed_code: 400,
  mistyped_code: 400,
  forbidden: 403,
  unknown_user: 404,
  unknown_card: 404,
  unknown_tier: 404,
  unknown_payment: 404,
  unknown_session: 404,
  unknown_revocation: 404,
  unknown_plan: 404,
  unknown_code: 404,
  insufficient_balance: 402,
  too_many_sessions: 409,
  idempotency_conflict: 409,
  code_already_used: 409,
  code_expired: 410,
  code_revoked: 410,
  rate_limited: 429,
  storage_unavailable: 503,
  append_only: 500,
  internal: 500,
};

/** A 400 for input that holds text PostgreSQL cannot store, before any of it reaches SQL. */
export function rejectUnstorableText(value: unknown): void {
  const at = unstorableTextAt(value);
  if (at !== null) {
    throw new HttpError(400, 'invalid_request',
      `${at.replace(/[^\x20-\x7e]/g, '?') || 'body'}: text with a NUL character or an unpaired UTF-16 surrogate cannot be stored`);
  }
}

/**
 * Parses with zod; bad input is a 400 invalid_request naming each problem, never a 500. Text that PostgreSQL
 * cannot store is bad input whatever the schema says.
 */
export function parseInput<T>(schema: z.ZodType<T>, value: unknown): T {
  rejectUnstorableText(value);
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
    throw new HttpError(400, 'invalid_request', detail);
  }
  return parsed.data;
}

export function toHttpError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof AuthError) return new HttpError(error.status, error.code, error.message);
  if (error instanceof BillingError) {
    const status = BILLING_STATUS[error.code];
    // A fault on our side says so without the database's words.
    return new HttpError(status, error.code, status >= 500 && status !== 503 ? 'internal error' : error.message);
  }
  const fastifyError = error as Partial<FastifyError>;
  if (typeof fastifyError.statusCode === 'number' && fastifyError.statusCode < 500) {
    const code = fastifyError.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? 'payload_too_large'
      : fastifyError.statusCode === 415 ? 'unsupported_media_type' : 'invalid_request';
    return new HttpError(fastifyError.statusCode, code, fastifyError.message ?? 'invalid request');
  }
  return new HttpError(500, 'internal', 'internal error');
}

/** Thrown on purpose with its answer in hand: an HttpError of ours, or the store saying it cannot be reached. */
function isExpectedAnswer(error: unknown): boolean {
  if (error instanceof HttpError) return error.status !== 500;
  return error instanceof BillingError && error.code === 'storage_unavailable';
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error, request, reply) => {
    const http = toHttpError(error);
    // An answer we chose (a 4xx, or a 503 saying what is not configured or not reachable) is one line; a stack
    // only for a fault nobody expected.
    if (http.status >= 500 && !isExpectedAnswer(error)) request.log.error({ err: error }, 'request failed');
    else if (http.status >= 500) request.log.warn({ code: http.code, status: http.status }, http.message);
    else request.log.info({ code: http.code, status: http.status }, http.message);
    void reply.status(http.status).send({ error: { code: http.code, message: http.message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${request.method} ${request.url.split('?')[0]}` } });
  });
}

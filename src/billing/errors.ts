/** Every way a billing call can be refused. The SQL functions name them in the error's HINT. */
export const BILLING_ERROR_CODES = [
  'invalid_argument',
  'forbidden',
  'unknown_user',
  'unknown_card',
  'unknown_tier',
  'unknown_payment',
  'unknown_session',
  'unknown_revocation',
  'unknown_plan',
  'insufficient_balance',
  'too_many_sessions',
  'idempotency_conflict',
  'malformed_code',
  'mistyped_code',
  'unknown_code',
  'code_already_used',
  'code_expired',
  'code_revoked',
  'rate_limited',
  'append_only',
  'storage_unavailable',
  'internal',
] as const;

export type BillingErrorCode = (typeof BILLING_ERROR_CODES)[number];

const KNOWN = new Set<string>(BILLING_ERROR_CODES);

export class BillingError extends Error {
  override name = 'BillingError';
  constructor(
    readonly code: BillingErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isBillingError(error: unknown, code?: BillingErrorCode): error is BillingError {
  return error instanceof BillingError && (code === undefined || error.code === code);
}

/** The fields a database error carries, whether it came from node-postgres, PGlite or PostgREST. */
export interface DatabaseErrorFields {
  code?: string | undefined;
  message?: string | undefined;
  hint?: string | undefined;
}

// SQLSTATEs a caller can cause with bad input rather than a fault on our side.
const INPUT_SQLSTATES = new Set(['22P02', '22003', '22007', '22008', '22023', '23502', '23514', '42883', 'PGRST202']);
const CONNECTION_SQLSTATE_CLASSES = ['08', '57', '53'];
// lock_timeout: the rows stayed locked past the deadline; like statement_timeout (57014) it is worth retrying.
const TIMEOUT_SQLSTATES = new Set(['55P03']);

export function billingErrorFromDatabase(error: DatabaseErrorFields, cause?: unknown): BillingError {
  const message = error.message ?? 'billing database error';
  if (error.hint && KNOWN.has(error.hint)) return new BillingError(error.hint as BillingErrorCode, message, { cause });
  const sqlstate = error.code ?? '';
  if (sqlstate === '42501') return new BillingError('forbidden', message, { cause });
  if (sqlstate === '23505') return new BillingError('idempotency_conflict', message, { cause });
  if (INPUT_SQLSTATES.has(sqlstate)) return new BillingError('invalid_argument', message, { cause });
  if (TIMEOUT_SQLSTATES.has(sqlstate) || CONNECTION_SQLSTATE_CLASSES.some((prefix) => sqlstate.startsWith(prefix))) {
    return new BillingError('storage_unavailable', message, { cause });
  }
  return new BillingError('internal', message, { cause });
}

const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/** Maps anything a driver throws to a BillingError; a lost connection becomes storage_unavailable. */
export function toBillingError(error: unknown): BillingError {
  if (error instanceof BillingError) return error;
  if (error && typeof error === 'object') {
    const fields = error as DatabaseErrorFields & { errno?: unknown };
    if (typeof fields.code === 'string' && NETWORK_ERRNOS.has(fields.code)) {
      return new BillingError('storage_unavailable', `billing database unreachable: ${fields.code}`, { cause: error });
    }
    if (/Connection terminated|connection timeout|timeout expired|timeout exceeded when trying to connect/i.test(String(fields.message))) {
      return new BillingError('storage_unavailable', String(fields.message), { cause: error });
    }
    return billingErrorFromDatabase(fields, error);
  }
  return new BillingError('internal', String(error), { cause: error });
}

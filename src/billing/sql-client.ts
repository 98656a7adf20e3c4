import type { PGlite, Transaction } from '@electric-sql/pglite';
import type pg from 'pg';
import { BillingError, toBillingError } from './errors.ts';

/**
 * The little a billing adapter and the migration runner need from a database, over node-postgres (real
 * Postgres, Supabase's direct connection, the embedded server's socket) or PGlite's native API.
 */
export interface SqlClient {
  /** With a statement name, node-postgres prepares the statement once per connection (PGlite ignores it). */
  query<R = Record<string, unknown>>(text: string, params?: unknown[], options?: QueryOptions): Promise<{ rows: R[] }>;
  /** Runs a script of several statements (no parameters). */
  exec(script: string): Promise<void>;
  /** Runs fn in one transaction on one connection; rolls back if it throws. */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export interface QueryOptions {
  name?: string;
}

export interface PgClientOptions {
  /**
   * The longest a query or script may take, the wait for a pooled connection included; past it the call fails
   * as storage_unavailable and its connection is closed. Unset: no deadline of our own (migrations).
   */
  deadlineMs?: number | undefined;
}

export function pgPoolClient(pool: pg.Pool, options: PgClientOptions = {}): SqlClient {
  const run = async <R>(text: string, params?: unknown[], name?: string): Promise<{ rows: R[] }> => {
    const result = options.deadlineMs === undefined
      ? await pool.query({ text, values: params, name })
      : await withDeadline(pool, options.deadlineMs, (client) => client.query({ text, values: params, name }));
    return { rows: result.rows as R[] };
  };
  return {
    query: <R>(text: string, params?: unknown[], queryOptions?: QueryOptions) => run<R>(text, params, queryOptions?.name),
    exec: async (script) => {
      await run(script);
    },
    transaction: async (fn) => {
      // The pool's connectionTimeoutMillis bounds the wait; each statement is bounded by the server's own timeouts.
      const connection = await pool.connect();
      const onError = () => {}; // a lost socket fails the statement in flight; the pool discards the client on release
      connection.on('error', onError);
      let broken: unknown;
      try {
        await connection.query('begin');
        const tx: SqlClient = {
          query: async <R>(text: string, params?: unknown[]) => ({ rows: (await connection.query(text, params)).rows as R[] }),
          exec: async (script) => {
            await connection.query(script);
          },
          transaction: () => Promise.reject(new Error('nested transactions are not supported')),
          close: async () => {},
        };
        const result = await fn(tx);
        await connection.query('commit');
        return result;
      } catch (error) {
        await connection.query('rollback').catch((rollbackError: unknown) => { broken = rollbackError; });
        throw error;
      } finally {
        connection.removeListener('error', onError);
        connection.release(broken as Error | undefined);
      }
    },
    // A frozen server never answers the goodbye of an idle connection: closing waits at most the deadline.
    close: () => bounded(pool.end(), options.deadlineMs),
  };
}

/** Thrown inside withDeadline's own bookkeeping; callers see a BillingError. */
class DeadlineExceeded extends Error {
  override name = 'DeadlineExceeded';
}

/**
 * Runs work on a pooled connection, all within deadlineMs. A server that never answers (a stuck primary, a
 * network black hole) ignores its own statement_timeout, and a socket left to such a server would hold its pool
 * slot forever: past the deadline the connection is released as broken, which makes the pool close its socket.
 */
async function withDeadline<T>(pool: pg.Pool, deadlineMs: number, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const startedAt = performance.now();
  let client: pg.PoolClient;
  try {
    // Bounded by the pool's connectionTimeoutMillis (the wait for a free slot and the connect together).
    client = await pool.connect();
  } catch (error) {
    throw toBillingError(error);
  }
  const left = Math.max(1, deadlineMs - (performance.now() - startedAt));
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const onError = () => {}; // the statement in flight fails with the lost socket; handled below
    client.on('error', onError);
    const finish = (error: unknown) => {
      done = true;
      clearTimeout(timer);
      client.removeListener('error', onError);
      // pg-pool discards a client released with an error (and ends it, destroying the socket of a query in flight).
      client.release(error === undefined ? undefined : error instanceof Error ? error : new Error(String(error)));
    };
    const timer = setTimeout(() => {
      if (done) return;
      finish(new DeadlineExceeded(`no answer within ${deadlineMs} ms`));
      reject(new BillingError('storage_unavailable', `the billing database did not answer within ${deadlineMs} ms`));
    }, left);
    work(client).then(
      (value) => {
        if (done) return;
        finish(undefined);
        resolve(value);
      },
      (error: unknown) => {
        if (done) return;
        finish(error);
        reject(error);
      },
    );
  });
}

/** Waits for promise, at most ms (unset: as long as it takes). */
async function bounded(promise: Promise<unknown>, ms: number | undefined): Promise<void> {
  if (ms === undefined) {
    await promise;
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}

// PGlite: only db.transaction() is isolated from other callers; a manual BEGIN through db.query() is not.
export function pgliteClient(db: PGlite): SqlClient {
  const over = (target: PGlite | Transaction): Omit<SqlClient, 'transaction' | 'close'> => ({
    query: async <R>(text: string, params?: unknown[]) => ({ rows: (await target.query<R>(text, params)).rows }),
    exec: async (script) => {
      await target.exec(script);
    },
  });
  return {
    ...over(db),
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({
          ...over(tx),
          transaction: () => Promise.reject(new Error('nested transactions are not supported')),
          close: async () => {},
        }),
      ),
    close: () => db.close(),
  };
}

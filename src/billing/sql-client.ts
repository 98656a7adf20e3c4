import type { PGlite, Transaction } from '@electric-sql/pglite';
import type pg from 'pg';

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

export function pgPoolClient(pool: pg.Pool): SqlClient {
  return {
    query: async <R>(text: string, params?: unknown[], options?: QueryOptions) => ({
      rows: (await pool.query({ text, values: params, name: options?.name })).rows as R[],
    }),
    exec: async (script) => {
      await pool.query(script);
    },
    transaction: async (fn) => {
      const connection = await pool.connect();
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
        await connection.query('rollback').catch(() => {});
        throw error;
      } finally {
        connection.release();
      }
    },
    close: () => pool.end(),
  };
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

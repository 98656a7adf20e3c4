import pg from 'pg';
import type { Logger } from 'pino';
import { storageTarget, type Config } from '../shared/config.ts';
import { redactUrl } from '../shared/logger.ts';
import { runningEmbeddedUrl, startEmbeddedDatabase } from './embedded.ts';
import { pgPoolClient, type SqlClient } from './sql-client.ts';
import { sqlTransport } from './sql-transport.ts';
import { RpcBillingStore, type BillingStore, type Clock } from './store.ts';
import { createServiceClient, supabaseTransport } from './supabase-transport.ts';

export interface OpenedStore {
  store: BillingStore;
  /** A direct SQL connection (for migrations and health checks); absent when only Supabase's HTTP API is configured. */
  sql: SqlClient | undefined;
  description: string;
  close(): Promise<void>;
}

export interface PoolSettings {
  max: number;
  /** STORE_TIMEOUT_MS: connect and pool wait; on the server, each statement and lock wait. */
  timeoutMs: number;
  /**
   * Also send the server-side timeouts as startup parameters (DB_SERVER_TIMEOUTS), so the server gives up on a
   * statement the client abandoned. Only on a direct connection: a pooler (PgBouncer, Supavisor) refuses the
   * login with them; set them on the role there (`alter role … set statement_timeout`).
   */
  serverTimeouts: boolean;
}

export function pgPool(url: string, settings: PoolSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: settings.max,
    idleTimeoutMillis: 30_000,
    connectionTimeoutMillis: settings.timeoutMs,
    // A peer that vanished without a word (a dead host, a dropped route) is noticed on an idle connection too.
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    // The server gives up on its side as well, so a statement the client abandoned does not keep its locks.
    ...(settings.serverTimeouts && {
      statement_timeout: settings.timeoutMs,
      lock_timeout: settings.timeoutMs,
      idle_in_transaction_session_timeout: settings.timeoutMs,
    }),
  });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/** The store's SQL connection: every query within STORE_TIMEOUT_MS, the pool wait and the connect included. */
export function storeSqlClient(url: string, config: Pick<Config, 'DB_POOL_MAX' | 'STORE_TIMEOUT_MS'>, serverTimeouts: boolean): SqlClient {
  const pool = pgPool(url, { max: config.DB_POOL_MAX, timeoutMs: config.STORE_TIMEOUT_MS, serverTimeouts });
  return pgPoolClient(pool, { deadlineMs: config.STORE_TIMEOUT_MS });
}

/**
 * The configured billing store: DATABASE_URL (Postgres or Supabase's direct connection), else SUPABASE_URL
 * (the Data API with the service-role key), else the embedded database — the one another process serves, or
 * one started here.
 */
export async function openBillingStore(config: Config, options: { clock?: Clock; log?: Logger } = {}): Promise<OpenedStore> {
  const target = storageTarget(config);
  if (target.kind === 'supabase') {
    const store = new RpcBillingStore(
      supabaseTransport(createServiceClient({ ...target, timeoutMs: config.STORE_TIMEOUT_MS })), options.clock);
    const sql = target.dbUrl ? storeSqlClient(target.dbUrl, config, config.DB_SERVER_TIMEOUTS) : undefined;
    return {
      store,
      sql,
      description: `supabase ${target.url}`,
      close: async () => {
        await store.close();
        await sql?.close();
      },
    };
  }

  let url = target.kind === 'postgres' ? target.url : runningEmbeddedUrl(target.dataDir);
  let stopEmbedded: (() => Promise<void>) | undefined;
  if (!url && target.kind === 'embedded') {
    const embedded = await startEmbeddedDatabase(target);
    url = embedded.url;
    stopEmbedded = embedded.stop;
    options.log?.warn({ dataDir: target.dataDir, url }, 'using the embedded PGlite database: for a laptop or a demo, not production');
  }
  if (!url) throw new Error('no database configured');
  const sql = storeSqlClient(url, config, target.kind === 'postgres' && config.DB_SERVER_TIMEOUTS);
  const preparedStatements = target.kind === 'postgres' && config.DB_PREPARED_STATEMENTS;
  const store = new RpcBillingStore(sqlTransport(sql, {
    preparedStatements,
    onPoolerDetected: (error) => options.log?.warn({ err: error },
      'DATABASE_URL shares server connections (a transaction-mode pooler): prepared statements are off from now on; set DB_PREPARED_STATEMENTS=false'),
  }), options.clock);
  return {
    store,
    sql,
    description: target.kind === 'postgres' ? `postgres ${redactUrl(url)}` : `embedded ${target.dataDir} at ${url}`,
    close: async () => {
      await store.close();
      await stopEmbedded?.();
    },
  };
}

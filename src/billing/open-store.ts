import pg from 'pg';
import type { Logger } from 'pino';
import { storageTarget, type Config } from '../config.ts';
import { redactUrl } from '../logger.ts';
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

export function pgPool(url: string, max: number): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 30_000 });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  return pool;
}

/**
 * The configured billing store: DATABASE_URL (Postgres or Supabase's direct connection), else SUPABASE_URL
 * (the Data API with the service-role key), else the embedded database — the one another process serves, or
 * one started here.
 */
export async function openBillingStore(config: Config, options: { clock?: Clock; log?: Logger } = {}): Promise<OpenedStore> {
  const target = storageTarget(config);
  if (target.kind === 'supabase') {
    const store = new RpcBillingStore(supabaseTransport(createServiceClient(target)), options.clock);
    const sql = target.dbUrl ? pgPoolClient(pgPool(target.dbUrl, config.DB_POOL_MAX)) : undefined;
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
  const sql = pgPoolClient(pgPool(url, config.DB_POOL_MAX));
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

// `./launch.sh migrate`: applies the migrations to the configured database. Running it twice is a no-op.
import pg from 'pg';
import { config, storageTarget } from '../shared/config.ts';
import { logger, redactUrl } from '../shared/logger.ts';
import { runningEmbeddedUrl, startEmbeddedDatabase } from './embedded.ts';
import { migrate } from './migrate.ts';
import { pgPoolClient } from './sql-client.ts';
import { sqlTransport } from './sql-transport.ts';
import { RpcBillingStore } from './store.ts';
import { settingsFromEnv } from './settings-from-env.ts';

const log = logger().child({ component: 'migrate' });

async function migrateUrl(url: string): Promise<void> {
  const cfg = config();
  // Connecting is bounded (a frozen server fails the migration instead of hanging it); the migrations themselves
  // are not: a long one (an index on a big table) is allowed to take its time.
  const pool = new pg.Pool({ connectionString: url, max: 2, connectionTimeoutMillis: cfg.STORE_TIMEOUT_MS, keepAlive: true });
  pool.on('error', () => {});
  const sql = pgPoolClient(pool);
  try {
    const result = await migrate(sql);
    log.info({ database: redactUrl(url), ...result }, result.applied.length ? 'migrations applied' : 'already up to date');
    const changes = settingsFromEnv(config());
    if (Object.keys(changes).length > 0) {
      const settings = await new RpcBillingStore(sqlTransport(sql)).updateSettings(changes);
      log.info({ settings }, 'billing settings updated from the environment');
    }
  } finally {
    await pool.end();
  }
}

async function main(): Promise<void> {
  const target = storageTarget(config());
  if (target.kind === 'postgres') return migrateUrl(target.url);
  if (target.kind === 'supabase') {
    if (!target.dbUrl) {
      throw new Error('migrating Supabase needs SUPABASE_DB_URL (the direct Postgres connection string of the project)');
    }
    return migrateUrl(target.dbUrl);
  }
  const running = runningEmbeddedUrl(target.dataDir);
  if (running) return migrateUrl(running);
  const embedded = await startEmbeddedDatabase(target);
  try {
    await migrateUrl(embedded.url);
  } finally {
    await embedded.stop();
  }
}

main().catch((error: unknown) => {
  log.fatal({ err: error }, 'migration failed');
  process.exitCode = 1;
});

// Serves the embedded PGlite database on loopback for the sidecar and the agent's job processes.
// Started by `./launch.sh dev` when neither DATABASE_URL nor SUPABASE_URL is set.
import { config } from '../shared/config.ts';
import { logger } from '../shared/logger.ts';
import { startEmbeddedDatabase } from './embedded.ts';
import { storeSqlClient } from './open-store.ts';
import { sqlTransport } from './sql-transport.ts';
import { RpcBillingStore } from './store.ts';
import { settingsFromEnv } from './settings-from-env.ts';

const log = logger().child({ component: 'embedded-db' });

async function main(): Promise<void> {
  const cfg = config();
  const embedded = await startEmbeddedDatabase({
    dataDir: cfg.EMBEDDED_DATA_DIR,
    host: cfg.EMBEDDED_DB_HOST,
    port: cfg.EMBEDDED_DB_PORT,
  });
  const changes = settingsFromEnv(cfg);
  if (Object.keys(changes).length > 0) {
    const store = new RpcBillingStore(sqlTransport(storeSqlClient(embedded.url, { ...cfg, DB_POOL_MAX: 1 }, false)));
    await store.updateSettings(changes);
    await store.close();
  }
  log.warn(
    { url: embedded.url, dataDir: cfg.EMBEDDED_DATA_DIR, migrations: embedded.migrations },
    'embedded PGlite database ready: for a laptop or a demo, not production',
  );
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the embedded database');
    await embedded.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: unknown) => {
  log.fatal({ err: error }, 'embedded database failed to start');
  process.exit(1);
});

// The zero-setup database: PGlite on disk, served on loopback, guarded by a lock file.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { parseConfig } from '../src/shared/config.ts';
import { lockPath, runningEmbeddedUrl, startEmbeddedDatabase } from '../src/billing/embedded.ts';
import { listMigrations, migrate } from '../src/billing/migrate.ts';
import { openBillingStore } from '../src/billing/open-store.ts';
import { pgPoolClient } from '../src/billing/sql-client.ts';
import { createPostgresDatabase, newUserId } from './helpers/test-db.ts';

const scratch = mkdtempSync(join(tmpdir(), 'mindbot-embedded-'));
const ALL_MIGRATIONS = (await listMigrations()).map((m) => m.name);
after(() => rmSync(scratch, { recursive: true, force: true }));

describe('the embedded database', () => {
  it('is migrated on start, served to node-postgres, and keeps its data across restarts', async () => {
    const dataDir = join(scratch, 'persist');
    const first = await startEmbeddedDatabase({ dataDir });
    assert.deepEqual(first.migrations.applied, ALL_MIGRATIONS);
    assert.equal(runningEmbeddedUrl(dataDir), first.url);
    const user = newUserId();
    const config = parseConfig({ EMBEDDED_DATA_DIR: dataDir });
    const opened = await openBillingStore(config);
    assert.match(opened.description, /^embedded /, 'a second user of the directory connects to the running server');
    await opened.store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
    await opened.store.deductTime({ userId: user, seconds: 100, idempotencyKey: `${user}:d` });
    await opened.close();
    await first.stop();
    assert.equal(runningEmbeddedUrl(dataDir), null);

    const second = await startEmbeddedDatabase({ dataDir });
    assert.deepEqual(second.migrations.applied, [], 'migrating again is a no-op');
    const pool = new pg.Pool({ connectionString: second.url, max: 4 });
    try {
      const { rows } = await pool.query('select public.get_user_time_balance($1) as b', [user]);
      assert.equal(rows[0].b.total_seconds, 3500);
      // Several connections at once, with errors in between, must not wedge the shared backend.
      const results = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) =>
          pool.query('select public.deduct_user_time($1, $2, $3) as r', [user, i % 4 === 0 ? -1 : 10, `${user}:p${i}`])),
      );
      assert.equal(results.filter((r) => r.status === 'rejected').length, 5);
      const { rows: after } = await pool.query('select public.get_user_time_balance($1) as b', [user]);
      assert.equal(after[0].b.total_seconds, 3500 - 15 * 10);
    } finally {
      await pool.end();
      await second.stop();
    }
  });

  it('refuses a second opener of the same directory, in this process or another', async () => {
    const dataDir = join(scratch, 'locked');
    const running = await startEmbeddedDatabase({ dataDir });
    try {
      await assert.rejects(startEmbeddedDatabase({ dataDir }), /already open in process/);
      const child = spawnSync(process.execPath, ['--import', 'tsx', '-e',
        `import('./src/billing/embedded.ts').then(m => m.startEmbeddedDatabase({ dataDir: ${JSON.stringify(dataDir)} }))
           .then(() => process.exit(0), (e) => { console.error(e.message); process.exit(3); })`], { encoding: 'utf8' });
      assert.equal(child.status, 3);
      assert.match(child.stderr, /already open in process/);
    } finally {
      await running.stop();
    }
  });

  it('takes over a lock left by a process that died', async () => {
    const dataDir = join(scratch, 'stale');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(lockPath(dataDir), JSON.stringify({ pid: Number(dead.stdout), url: 'postgres://127.0.0.1:1/x' }));
    assert.equal(runningEmbeddedUrl(dataDir), null);
    const db = await startEmbeddedDatabase({ dataDir });
    await db.stop();
  });
});

describe('migrations', () => {
  it('run twice are a no-op, and an edited applied migration is refused', async () => {
    const db = await createPostgresDatabase();
    try {
      const again = await migrate(db.sql);
      assert.deepEqual(again.applied, []);
      assert.equal(again.bootstrapped, false, 'the auth bootstrap runs only where schema auth is missing');
      assert.deepEqual(again.alreadyApplied, ALL_MIGRATIONS);
      await db.sql.query(`update mindbot_meta.schema_migrations set checksum = 'edited' where name = '001_billing_schema.sql'`);
      await assert.rejects(migrate(db.sql), /was changed after it was applied/);
    } finally {
      await db.close();
    }
  });

  it('apply in parallel from several processes without a conflict', async () => {
    const { ADMIN_URL } = await import('./helpers/test-db.ts');
    const name = `mindbot_test_par_${process.pid}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
    try {
      const url = new URL(ADMIN_URL);
      url.pathname = `/${name}`;
      const pools = Array.from({ length: 4 }, () => {
        const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
        // pool.end() resolves before the server has closed every backend; the drop below may still reach one.
        pool.on('error', () => {});
        return pool;
      });
      const settled = await Promise.allSettled(pools.map((p) => migrate(pgPoolClient(p))));
      await Promise.all(pools.map((p) => p.end()));
      assert.deepEqual(settled.filter((r) => r.status === 'rejected'), []);
      const results = settled.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof migrate>>>).value);
      assert.equal(results.filter((r) => r.applied.length === ALL_MIGRATIONS.length).length, 1);
      assert.equal(results.filter((r) => r.applied.length === 0).length, 3);
    } finally {
      await admin.query(`drop database if exists ${name} with (force)`);
      await admin.end();
    }
  });
});

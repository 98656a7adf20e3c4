// The store and the migrations through PgBouncer in transaction pool mode (how Supabase's pooler on port 6543
// works): server connections are shared between clients transaction by transaction.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { parseConfig } from '../src/shared/config.ts';
import { migrate, migrationStatus } from '../src/billing/migrate.ts';
import { openBillingStore } from '../src/billing/open-store.ts';
import { pgPoolClient, type SqlClient } from '../src/billing/sql-client.ts';
import { sqlTransport } from '../src/billing/sql-transport.ts';
import { RpcBillingStore } from '../src/billing/store.ts';
import { startPgBouncer, type PgBouncer } from './helpers/pgbouncer.ts';
import { ADMIN_URL, ledgerMismatches, newUserId } from './helpers/test-db.ts';

async function adminQuery(text: string): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(text);
  } finally {
    await admin.end();
  }
}

describe('the store through PgBouncer in transaction mode', () => {
  const name = `mindbot_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  let bouncer: PgBouncer;
  const pools: pg.Pool[] = [];
  const client = (max: number): SqlClient => {
    const pool = new pg.Pool({ connectionString: bouncer.url(name), max });
    pool.on('error', () => {});
    pools.push(pool);
    return pgPoolClient(pool);
  };

  before(async () => {
    await adminQuery(`create database ${name}`);
    // Two server connections for many clients: every transaction may land on a connection another client used.
    bouncer = await startPgBouncer(ADMIN_URL, { poolSize: 2 });
  });
  after(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await bouncer?.close();
    await adminQuery(`drop database if exists ${name} with (force)`);
  });

  it('migrates an empty database through the pooler, once, even when two processes start at the same moment', async () => {
    const results = await Promise.all([migrate(client(2)), migrate(client(2))]);
    const applied = results.map((r) => r.applied.length).sort((a, b) => a - b);
    assert.equal(applied[0], 0, 'the second waited for the first and found everything applied');
    assert.ok(applied[1]! > 0);
    assert.deepEqual(results[0]!.applied.length > 0 ? results[1]!.alreadyApplied : results[0]!.alreadyApplied,
      results[0]!.applied.length > 0 ? results[0]!.applied : results[1]!.applied);
    assert.equal((await migrationStatus(client(1))).current, true);
    assert.deepEqual((await migrate(client(1))).applied, [], 'again: a no-op');
  });

  it('bills correctly with prepared statements asked for: the shared connections refuse them, the calls go on unnamed', async () => {
    const detected: unknown[] = [];
    const stores = [0, 1].map(() =>
      new RpcBillingStore(sqlTransport(client(8), { preparedStatements: true, onPoolerDetected: (e) => detected.push(e) })));
    const users = Array.from({ length: 6 }, () => newUserId());
    await Promise.all(users.map((userId, i) =>
      stores[i % 2]!.adjustUserTime({ userId, seconds: 600, reason: 'pooler test', idempotencyKey: `grant:${userId}` })));
    // Many distinct statements, each from both stores, over two server connections.
    await Promise.all(users.flatMap((userId) => [0, 1].flatMap((s) => Array.from({ length: 5 }, (_, k) =>
      stores[s]!.deductTime({ userId, seconds: 7, idempotencyKey: `use:${userId}:${k}` })))));
    await Promise.all(users.flatMap((userId) => [stores[0]!.getBalance(userId), stores[1]!.listPricingTiers()]));
    for (const userId of users) {
      // Each key charged once although both stores sent it.
      assert.equal((await stores[1]!.getBalance(userId)).total_seconds, 600 - 5 * 7);
    }
    assert.ok(detected.length >= 1 && detected.length <= 2, 'each store noticed the pooler at most once');
    const sql = client(1);
    assert.deepEqual(await ledgerMismatches(sql), []);
    const { rows } = await sql.query<{ n: number; keys: number }>(
      'select count(*)::int as n, count(distinct idempotency_key)::int as keys from public.ledger_entries');
    assert.deepEqual(rows[0], { n: 6 + 6 * 5, keys: 6 + 6 * 5 });
  });

  it('opens the store as the product does, with DATABASE_URL at the pooler, and leaves no session state behind', async () => {
    // Whatever the product's pool sends at connect (PgBouncer refuses unknown startup parameters such as
    // statement_timeout or options) and does per call must work here.
    const opened = await openBillingStore(parseConfig({ DATABASE_URL: bouncer.url(name), DB_PREPARED_STATEMENTS: 'false', DB_POOL_MAX: '6' }),
      { log: pino({ level: 'silent' }) });
    const session = (c: SqlClient) => c.query<Record<string, string>>(`select current_user as "user",
      current_setting('search_path') as search_path, current_setting('statement_timeout') as statement_timeout,
      current_setting('lock_timeout') as lock_timeout, current_setting('idle_in_transaction_session_timeout') as idle_timeout,
      current_setting('TimeZone') as time_zone, current_setting('role') as role`).then((r) => r.rows[0]!);
    const before = await session(client(1));
    try {
      const users = Array.from({ length: 4 }, () => newUserId());
      await Promise.all(users.map((userId) =>
        opened.store.adjustUserTime({ userId, seconds: 120, reason: 'pooler test', idempotencyKey: `open:${userId}` })));
      await Promise.all(users.flatMap((userId) => Array.from({ length: 3 }, (_, k) =>
        opened.store.deductTime({ userId, seconds: 10, idempotencyKey: `open-use:${userId}:${k}` }))));
      for (const userId of users) assert.equal((await opened.store.getBalance(userId)).total_seconds, 90);
      assert.equal((await migrationStatus(opened.sql!)).current, true);
    } finally {
      await opened.close();
    }
    // Every server connection the pooler lends next looks as it did before: nothing set for the session.
    const probe = client(4);
    const after = await Promise.all(Array.from({ length: 8 }, () => session(probe)));
    for (const seen of after) assert.deepEqual(seen, before);
  });
});

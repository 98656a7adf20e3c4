// The database gauges of /metrics come from counters kept as the ledger and the outbox change (migration 011), not
// from scans at each scrape: they always equal a recount, whatever happened in between and however many sidecars
// scrape at once, and a scrape reads no ledger row at all.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { BillingStore } from '../src/billing/store.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const GAUGES = ['seconds_granted', 'seconds_charged', 'active_sessions', 'notifications_pending', 'notifications_dead'];

/** The gauges as the old billing_metrics() computed them: by reading every row. */
async function recount(db: TestDatabase): Promise<Record<string, number>> {
  const { rows } = await db.sql.query<Record<string, number>>(`
    select (select coalesce(sum(seconds), 0) from public.ledger_entries where kind = 'grant')::int as seconds_granted,
           (select coalesce(-sum(seconds), 0) from public.ledger_entries where kind = 'usage')::int as seconds_charged,
           (select count(*) from public.voice_sessions where status = 'active')::int as active_sessions,
           (select count(*) from public.notifications where delivered_at is null and dead_at is null)::int as notifications_pending,
           (select count(*) from public.notifications where delivered_at is null and dead_at is not null)::int as notifications_dead`);
  return rows[0]!;
}

const gauges = (metrics: Record<string, number>) => Object.fromEntries(GAUGES.map((name) => [name, Number(metrics[name])]));

/** A small deterministic generator, so a failure can be replayed from its seed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

describe('metrics counters', () => {
  let db: TestDatabase;
  let store: BillingStore;
  const clock = new TestClock();
  before(async () => {
    db = await createPostgresDatabase();
    store = db.store(clock.now);
  });
  after(async () => {
    await store?.close();
    await db?.close();
  });

  it('equal a recount after random grants, calls, expiries, adjustments and notification moves, scraped at random moments', async () => {
    const seed = Number(process.env.METRICS_SEED ?? Date.now() % 100_000);
    const next = random(seed);
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]!;
    const users = Array.from({ length: 6 }, () => newUserId());
    const sessions: string[] = [];
    let n = 0;
    const operations: (() => Promise<unknown>)[] = [
      () => store.grantCard({ userId: pick(users), tierId: pick(['starter_1h', 'starter_1h']), idempotencyKey: `g${n++}` }),
      async () => {
        const state = await store.startSession({ userId: pick(users), externalKey: `call-${n++}`, roomName: 'room' });
        sessions.push(state.session_id);
      },
      async () => { if (sessions.length) await store.meterSession(pick(sessions)); },
      async () => { if (sessions.length) await store.endSession({ sessionId: pick(sessions), reason: 'caller_left' }); },
      () => store.adjustUserTime({ userId: pick(users), seconds: pick([120, -60]), reason: 'test adjust', idempotencyKey: `a${n++}` }),
      async () => { clock.advance(pick([30, 61, 3600, 400 * 86400])); },
      () => store.expireCards(),
      () => store.reapStaleSessions(600),
      // The outbox, by the store's own functions and by hand (every move: delivered, dead, back to pending, deleted).
      () => store.enqueueBalanceNotifications(),
      async () => {
        for (const claimed of await store.claimNotifications({ limit: 3, leaseSeconds: 0 })) {
          await store.reportNotification({ id: claimed.id, delivered: next() < 0.5, error: 'down', retrySeconds: 0, maxAttempts: 2 });
        }
      },
      () => db.sql.query(`insert into public.notifications (user_id, kind, dedupe_key, delivered_at, dead_at)
        values ($1, 'purchase', $2, case when $3 < 0.3 then now() end, case when $3 > 0.7 then now() end)`,
      [pick(users), `n${n++}`, next()]),
      () => db.sql.query(`update public.notifications set dead_at = null, delivered_at = null
        where id = (select id from public.notifications order by random() limit 1)`),
      () => db.sql.query(`update public.notifications set dead_at = now()
        where id = (select id from public.notifications where delivered_at is null order by random() limit 1)`),
      () => db.sql.query(`delete from public.notifications where id = (select id from public.notifications order by random() limit 1)`),
    ];
    for (let i = 0; i < 400; i++) {
      try {
        await pick(operations)();
      } catch (error) {
        // Refusals (no balance left, too many calls, an ended call metered) are part of the game; faults are not.
        const code = (error as { code?: string }).code;
        assert.ok(code && !['internal', 'storage_unavailable', 'append_only'].includes(code), `seed ${seed}: ${String(error)}`);
      }
      if (next() < 0.1) assert.deepEqual(gauges(await store.billingMetrics()), await recount(db), `seed ${seed}, step ${i}`);
    }
    assert.deepEqual(gauges(await store.billingMetrics()), await recount(db), `seed ${seed}`);
    const final = await recount(db);
    assert.ok(final.seconds_granted! > 0 && final.seconds_charged! > 0, `seed ${seed}: the run did grant and charge: ${JSON.stringify(final)}`);
  });

  it('stay exact with writers and several scrapers at once', async () => {
    const users = Array.from({ length: 20 }, () => newUserId());
    const scrapers = Array.from({ length: 3 }, () => db.store(clock.now, { poolSize: 2 }));
    try {
      const writes = users.map(async (userId, i) => {
        await store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `par-${userId}` });
        const call = await store.startSession({ userId, externalKey: `par-call-${userId}`, roomName: 'room' });
        await store.meterSession(call.session_id);
        if (i % 2 === 0) await store.endSession({ sessionId: call.session_id, reason: 'caller_left' });
      });
      const scrapes = scrapers.flatMap((s) => Array.from({ length: 5 }, () => s.billingMetrics()));
      await Promise.all([...writes, ...scrapes]);
      assert.deepEqual(gauges(await scrapers[0]!.billingMetrics()), await recount(db));
    } finally {
      await Promise.all(scrapers.map((s) => s.close()));
    }
  });

  it('read no ledger row when scraped (a recount does: the check can tell)', async () => {
    const client = new pg.Client({ connectionString: db.url! });
    await client.connect();
    try {
      // This backend's table statistics, flushed to the shared counters before they are read.
      const ledgerReads = async () => {
        await client.query('select pg_stat_force_next_flush()');
        await client.query('select pg_stat_clear_snapshot()');
        const { rows } = await client.query<{ reads: string }>(`
          select (coalesce(seq_scan, 0) + coalesce(idx_scan, 0))::text as reads
            from pg_stat_user_tables where relid = 'public.ledger_entries'::regclass`);
        return Number(rows[0]!.reads);
      };
      const start = await ledgerReads();
      for (let i = 0; i < 3; i++) await client.query('select public.billing_metrics()');
      assert.equal(await ledgerReads(), start, 'a scrape read the ledger');
      await client.query(`select sum(seconds) from public.ledger_entries where kind = 'grant'`);
      assert.ok(await ledgerReads() > start, 'the statistics see a ledger read');
    } finally {
      await client.end();
    }
  });
});

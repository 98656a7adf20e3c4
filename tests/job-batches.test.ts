// Background jobs work in bounded batches, each committed on its own: 10,000 stale calls of distinct users are
// reaped by two sidecars at once, a batch never holds more than its own locks, and the meter of a live call
// goes on while reaping does. Expiry and the notification scan batch the same way. Real PostgreSQL.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { BillingStore } from '../src/billing/store.ts';
import { expireInBatches, reapInBatches, scanNotificationsInBatches } from '../src/sidecar/job-batches.ts';
import { createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const T0 = new Date('2026-05-04T09:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const STALE = 10_000;
const BATCH = 500;

let db: TestDatabase;
const clock = new TestClock(T0);
const stores: BillingStore[] = [];
const store = (poolSize = 2) => {
  const made = db.store(clock.now, { poolSize });
  stores.push(made);
  return made;
};

before(async () => {
  db = await createPostgresDatabase();
});
after(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  await db?.close();
});

/** Resolves with the promise's value, or fails the test once `ms` have passed (a wait that never ends). */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms); });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it holds, failing after `ms`. */
async function until(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** `count` users, each with an hour and a call started at `startedAt`, through the real functions. */
async function seedCalls(count: number, startedAt: Date, prefix: string): Promise<void> {
  for (let done = 0; done < count; done += 250) {
    await db.sql.query(`
      select count(*) from (
        select public.adjust_user_time(u, 3600, 'seed credit', $2 || ':credit:' || u, $1),
               public.start_voice_session(u, $2 || ':' || u, 'room', p_now => $1)
          from (select gen_random_uuid() as u from generate_series(1, $3::int)) g) x`,
      [startedAt, prefix, Math.min(250, count - done)]);
  }
}

const countWhere = async (sql: string, params: unknown[] = []) =>
  (await db.sql.query<{ n: number }>(`select count(*)::int as n from public.voice_sessions where ${sql}`, params)).rows[0]!.n;

describe('background jobs in bounded batches (PostgreSQL)', () => {
  test('10,000 stale calls of distinct users: reaped by two sidecars at once, a batch at a time, while a live call meters', async () => {
    await seedCalls(STALE, T0, 'stale');
    clock.set(at(3600));
    const first = store();
    const second = store();
    const liveUser = newUserId();
    await first.adjustUserTime({ userId: liveUser, seconds: 7200, reason: 'live caller', idempotencyKey: `live:${liveUser}` });
    const live = await first.startSession({ userId: liveUser, externalKey: `live:${liveUser}`, roomName: 'live' });

    // One batch, held open as a sidecar's transaction holds it: its locks are the batch's, no more.
    const held = new pg.Client({ connectionString: db.url! });
    await held.connect();
    try {
      await held.query('begin');
      const { rows: [batch] } = await held.query<{ r: { session_ids: string[]; more: boolean } }>(
        'select public.reap_stale_sessions(180, $1, $2) as r', [clock.now(), BATCH]);
      assert.equal(batch!.r.session_ids.length, BATCH);
      assert.equal(batch!.r.more, true);
      const { rows: [locks] } = await db.sql.query<{ advisory: number }>(
        `select count(*)::int as advisory from pg_locks where pid = $1 and locktype = 'advisory'`, [(held as unknown as { processID: number }).processID]);
      assert.equal(locks!.advisory, BATCH, 'one advisory lock per call of the batch');

      // Another user's call meters meanwhile, at once.
      clock.set(at(3600 + 61));
      const metered = await within(first.meterSession(live.session_id), 5000, 'the live meter during a batch');
      assert.deepEqual([metered.status, metered.billed_seconds], ['active', 120]);

      // A meter of a call in the open batch waits for that batch, and no longer.
      const blocked = second.meterSession(batch!.r.session_ids[0]!);
      await until(async () => (await db.sql.query(
        `select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'
           and query like '%meter_voice_session%'`)).rows.length > 0, 5000, 'the meter waits on the batch');
      await held.query('commit');
      const after = await within(blocked, 5000, 'the meter after the batch committed');
      assert.equal(after.status, 'abandoned', 'the batch had settled it');
    } finally {
      await held.end();
    }

    // Three more batches; between two of them the live call meters again while the reaping goes on.
    const liveMeters: Array<{ abandoned: number; billed: number }> = [];
    const some = await reapInBatches(first, 180, {
      limit: BATCH,
      maxBatches: 3,
      onBatch: async (n) => {
        clock.set(at(3600 + 61 + 60 * n));
        const state = await within(first.meterSession(live.session_id), 5000, `the live meter after batch ${n}`);
        liveMeters.push({ abandoned: await countWhere(`status = 'abandoned'`), billed: state.billed_seconds });
      },
    });
    assert.deepEqual(some, { batches: 3, reaped: 3 * BATCH, skipped: 0 });
    assert.deepEqual(liveMeters, [
      { abandoned: 2 * BATCH, billed: 180 }, { abandoned: 3 * BATCH, billed: 240 }, { abandoned: 4 * BATCH, billed: 300 },
    ]);

    // The rest: two sidecars' jobs at once, sharing the batches (SKIP LOCKED), each call settled once.
    const [a, b] = await Promise.all([reapInBatches(first, 180, { limit: BATCH }), reapInBatches(second, 180, { limit: BATCH })]);
    assert.equal(a.reaped + b.reaped, STALE - 4 * BATCH, JSON.stringify({ a, b }));
    assert.equal(await countWhere(`status = 'abandoned' and end_reason = 'worker_silent'`), STALE);
    assert.equal(await countWhere(`status = 'active'`), 1);
    assert.equal(await countWhere(`status = 'abandoned' and billed_seconds <> 60`), 0, 'each settled with what was charged');
    const rerun = await reapInBatches(first, 180, { limit: BATCH });
    assert.deepEqual(rerun, { batches: 1, reaped: 0, skipped: 0 });
    await first.endSession({ sessionId: live.session_id, reason: 'caller_left' });
  });

  test('card expiry runs in batches until none is left, and a batch that finds only busy cards ends the run', async () => {
    // Credited a card validity (a year) before T0 + 1 day: they expire before anything else here.
    clock.set('2025-05-05T09:00:00Z');
    const s = store();
    const users = Array.from({ length: 23 }, () => newUserId());
    for (const user of users) {
      await s.adjustUserTime({ userId: user, seconds: 600, reason: 'expiring credit', idempotencyKey: `exp:${user}` });
    }
    clock.set(at(2 * 86_400));
    const batches: number[] = [];
    const run = await expireInBatches(s, { limit: 5, onBatch: (n) => { batches.push(n); } });
    assert.deepEqual(run, { batches: 5, expired: 23, forfeitedSeconds: 23 * 600, skipped: 0 });
    assert.deepEqual(batches, [1, 2, 3, 4, 5]);
    assert.equal((await expireInBatches(s, { limit: 5 })).expired, 0);
    assert.deepEqual(await ledgerMismatches(db.sql), []);
  });

  test('the notification scan goes through every card owner a batch of owners at a time, each notice once', async () => {
    clock.set(at(10));
    const s = store();
    const low = Array.from({ length: 12 }, () => newUserId());
    for (const user of low) {
      await s.adjustUserTime({ userId: user, seconds: 300, reason: 'a little time', idempotencyKey: `low:${user}` });
    }
    const { rows: [owners] } = await db.sql.query<{ n: number }>(
      'select count(distinct user_id)::int as n from public.time_cards where user_id is not null');
    const scan = await scanNotificationsInBatches(s, { lowBalanceSeconds: 1800 }, { limit: 1000 });
    assert.equal(scan.users, owners!.n);
    assert.equal(scan.batches, Math.ceil((owners!.n + 1) / 1000));
    const again = await scanNotificationsInBatches(s, { lowBalanceSeconds: 1800 }, { limit: 97 });
    assert.equal(again.users, owners!.n, 'small batches reach every owner too');
    assert.equal(again.lowBalance, 0, 'nothing is announced twice');
    assert.equal(again.nextUser, null);
    // A run cut short by its bound says where the next one goes on, and together they see every owner once.
    const cut = await scanNotificationsInBatches(s, { lowBalanceSeconds: 1800 }, { limit: 97, maxBatches: 2 });
    assert.deepEqual([cut.batches, cut.users], [2, 194]);
    assert.ok(cut.nextUser);
    const rest = await scanNotificationsInBatches(s, { lowBalanceSeconds: 1800 }, { limit: 97, afterUser: cut.nextUser });
    assert.equal(cut.users + rest.users, owners!.n);
    const { rows } = await db.sql.query<{ n: number }>(
      `select count(*)::int as n from public.notifications where kind = 'low_balance' and user_id = any($1)`, [low]);
    assert.equal(rows[0]!.n, low.length);
  });
});

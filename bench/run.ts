// MindBot billing benchmark: `./launch.sh bench` (node --import tsx bench/run.ts).
//
// Against a fresh, migrated database on the local PostgreSQL (dropped at the end, whatever happens):
//   1. latency of start/meter/end_voice_session through the real store, one connection, sequential;
//   2. deductions per second through store.deductTime at 1, 8 and 32 connections (one user per worker),
//      and with every worker on ONE user at 8 connections (serialized by that user's advisory lock);
//   3. baselines at 8 connections: a naive read-compute-write deduction in TypeScript, and a bare
//      single-row UPDATE per transaction (the machine's ceiling for a committed write);
//   4. correctness: balances before/after vs seconds answered, the ledger vs the cards, the naive loss;
//   5. meter events (bench/meter-events.ts): BENCH_METER_EVENTS outbox rows (default 20,000) delivered by a sender
//      process to a loopback Stripe endpoint, events/s, and none lost or doubled after a kill -9 mid-run.
// Progress goes to stderr; stdout gets the table and, as its very last line, one JSON object.
//
// Environment: DATABASE_URL (admin URL, as the tests), BENCH_SECONDS (measured seconds per throughput
// figure, default 5), BENCH_SAMPLES (latency samples, default 2000).
import os from 'node:os';
import pg from 'pg';
import { ADMIN_URL, createPostgresDatabase, TestClock, newUserId, type TestDatabase } from '../tests/helpers/test-db.ts';
import { startPgBouncer, type PgBouncer } from '../tests/helpers/pgbouncer.ts';
import { pgPoolClient } from '../src/billing/sql-client.ts';
import { sqlTransport } from '../src/billing/sql-transport.ts';
import { RpcBillingStore, type BillingStore } from '../src/billing/store.ts';
import { runLoad, type LoadResult } from './load.ts';
import { measureSidecar } from './sidecar.ts';
import { measureCalls } from './calls.ts';
import { measureMeterEvents } from './meter-events.ts';
import { mark, Report } from './report.ts';
import {
  cardBalances, drift, ledgerMismatchedCards, ledgerUsageSeconds, operationsRecorded, seedUsers, walBytesSince, walPosition,
} from './seed.ts';
import { msBetween, nowNs, round, summarize, type Summary } from './stats.ts';

const envNumber = (name: string, fallback: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
};

const CONFIG = {
  latencySamples: Math.round(envNumber('BENCH_SAMPLES', 2000)),
  latencyWarmup: 200,
  startUsers: 100, // start+end samples rotate over these users (at most 1 active session each)
  meterSessions: 20, // one active session on each of 20 users, metered round-robin
  historySessions: 20_000, // past sessions given to one user for the history probe
  historySamples: 200,
  activeElsewhere: 20_000, // active calls of other users for the concurrent-call-cap probe
  warmupMs: 1000,
  durationMs: Math.round(envNumber('BENCH_SECONDS', 5) * 1000),
  increment: 60, // billing_increment_seconds of the default settings
  meterEvents: Math.round(envNumber('BENCH_METER_EVENTS', 20_000)), // outbox rows per meter-event run
};

const TARGETS = { startP99Ms: 2, ratioToCeiling8: 0.5 };

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/** Set by SIGINT/SIGTERM: loops stop, the database is dropped, the process exits 130. */
const interrupt = new AbortController();
const checkInterrupted = () => {
  if (interrupt.signal.aborted) throw new Error('interrupted');
};

// ---------------------------------------------------------------------------------------------------------
// 1. Session latency

interface LatencyFigures {
  start: Summary;
  meter: Summary;
  end: Summary;
  startWithHistory: Summary;
  endWithHistory: Summary;
  startWithActive: Summary;
  anomalies: string[];
}

/** Starts and ends short calls of one user, timing each start and each end (after 20 warm-up calls). */
async function timeShortCalls(
  store: BillingStore, clock: TestClock, userId: string, keyPrefix: string,
): Promise<{ starts: number[]; ends: number[] }> {
  const starts: number[] = [];
  const ends: number[] = [];
  for (let i = 0; i < 20 + CONFIG.historySamples; i++) {
    clock.advance(1);
    const t0 = nowNs();
    const s = await store.startSession({ userId, externalKey: `${keyPrefix}:${i}`, roomName: 'bench-room' });
    const t1 = nowNs();
    clock.advance(30);
    const t2 = nowNs();
    await store.endSession({ sessionId: s.session_id, reason: 'caller_left' });
    const t3 = nowNs();
    if (i >= 20) {
      starts.push(msBetween(t0, t1));
      ends.push(msBetween(t2, t3));
    }
  }
  return { starts, ends };
}

async function measureSessionLatency(db: TestDatabase): Promise<LatencyFigures> {
  const clock = new TestClock();
  const store = db.store(clock.now, { poolSize: 1 });
  const anomalies: string[] = [];
  try {
    // start + end: each sample starts a call for the next user in rotation and ends it (timed separately),
    // so no user ever has more than one active call and the 3-call limit never interferes.
    const users = await seedUsers(store, CONFIG.startUsers, 'lat-start');
    await db.sql.exec('analyze');
    const starts: number[] = [];
    const ends: number[] = [];
    const total = CONFIG.latencyWarmup + CONFIG.latencySamples;
    for (let i = 0; i < total; i++) {
      checkInterrupted();
      clock.advance(1);
      const t0 = nowNs();
      const s = await store.startSession({ userId: users[i % users.length]!, externalKey: `bench:start:${i}`, roomName: 'bench-room' });
      const t1 = nowNs();
      if (s.charged_seconds !== CONFIG.increment) anomalies.push(`start ${i} charged ${s.charged_seconds}s`);
      clock.advance(30);
      const t2 = nowNs();
      await store.endSession({ sessionId: s.session_id, reason: 'caller_left' });
      const t3 = nowNs();
      if (i >= CONFIG.latencyWarmup) {
        starts.push(msBetween(t0, t1));
        ends.push(msBetween(t2, t3));
      }
    }

    // meter: one running call on each of 20 users; each round moves the clock one increment and meters
    // every call once, so every meter charges exactly one increment (60 s).
    const meterUsers = await seedUsers(store, CONFIG.meterSessions, 'lat-meter');
    const sessions: string[] = [];
    for (const [i, userId] of meterUsers.entries()) {
      sessions.push((await store.startSession({ userId, externalKey: `bench:meter:${i}`, roomName: 'bench-room' })).session_id);
    }
    clock.advance(1);
    const meters: number[] = [];
    for (let i = 0; i < total; ) {
      checkInterrupted();
      clock.advance(CONFIG.increment);
      for (const sessionId of sessions) {
        if (i >= total) break;
        const t0 = nowNs();
        const m = await store.meterSession(sessionId);
        const t1 = nowNs();
        if (m.charged_seconds !== CONFIG.increment) anomalies.push(`meter ${i} charged ${m.charged_seconds}s`);
        if (i >= CONFIG.latencyWarmup) meters.push(msBetween(t0, t1));
        i++;
      }
    }
    for (const sessionId of sessions) await store.endSession({ sessionId, reason: 'caller_left' });

    // History probe: the same start+end for a user who already has many ended calls (inserted directly:
    // they are history only, no card or ledger row refers to them).
    const [heavy] = await seedUsers(store, 1, 'lat-history');
    await db.sql.query(
      `insert into public.voice_sessions (user_id, external_key, room_name, status, started_at, last_metered_at,
         ended_at, billed_seconds, increment_seconds, minimum_seconds, end_reason)
       select $1::uuid, 'bench:history:' || g, 'bench-room', 'ended', $2::timestamptz - g * interval '1 hour',
              $2::timestamptz - g * interval '1 hour' + interval '5 minutes',
              $2::timestamptz - g * interval '1 hour' + interval '5 minutes', 300, 60, 60, 'caller_left'
         from generate_series(1, $3::int) g`,
      [heavy, clock.now().toISOString(), CONFIG.historySessions],
    );
    await db.sql.exec('analyze public.voice_sessions');
    const history = await timeShortCalls(store, clock, heavy!, 'bench:heavy');

    // Concurrent-call-cap probe: start_voice_session counts the user's active calls; measure a start while
    // many OTHER users are on a call (inserted directly, then closed again).
    await db.sql.query(
      `insert into public.voice_sessions (user_id, external_key, room_name, status, started_at, last_metered_at,
         increment_seconds, minimum_seconds)
       select gen_random_uuid(), 'bench:active:' || g, 'bench-room', 'active', $1::timestamptz, $1::timestamptz, 60, 60
         from generate_series(1, $2::int) g`,
      [clock.now().toISOString(), CONFIG.activeElsewhere],
    );
    await db.sql.exec('analyze public.voice_sessions');
    const busy = await timeShortCalls(store, clock, heavy!, 'bench:busy');
    await db.sql.query(
      `update public.voice_sessions set status = 'abandoned', ended_at = last_metered_at, end_reason = 'bench'
        where external_key like 'bench:active:%'`);

    return {
      start: summarize(starts),
      meter: summarize(meters),
      end: summarize(ends),
      startWithHistory: summarize(history.starts),
      endWithHistory: summarize(history.ends),
      startWithActive: summarize(busy.starts),
      anomalies,
    };
  } finally {
    await store.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------
// 2. Deduction throughput through the store

interface DeductionRun {
  label: string;
  /** Through a transaction-mode PgBouncer with this many server connections (null: direct). */
  pooledServers: number | null;
  load: LoadResult;
  users: number;
  answeredSeconds: number;
  shortfallSeconds: number;
  replays: number;
  lost: number;
  extra: number;
  ledgerUsageDiff: number;
  ledgerMismatchedCards: number;
  operationsMissing: number;
  walBytesPerOp: number;
}

async function deductionRun(db: TestDatabase, label: string, connections: number, oneUser: boolean,
  pooler: { bouncer: PgBouncer; servers: number } | null = null): Promise<DeductionRun> {
  // Behind the pooler as an operator configures it: DB_PREPARED_STATEMENTS=false.
  const pooledPool = pooler ? new pg.Pool({ connectionString: pooler.bouncer.url(new URL(db.url!).pathname.slice(1)), max: connections }) : null;
  const store: BillingStore = pooledPool ? new RpcBillingStore(sqlTransport(pgPoolClient(pooledPool))) : db.store(undefined, { poolSize: connections });
  try {
    const users = await seedUsers(store, oneUser ? 1 : connections, label);
    await db.sql.exec('analyze');
    await db.sql.exec('checkpoint');
    const before = await cardBalances(db.sql, users);
    const wal = await walPosition(db.sql);
    const answered = new Map<string, number>(users.map((u) => [u, 0]));
    let shortfallSeconds = 0;
    let replays = 0;
    const keyPrefix = `bench:${label}:deduct:`;
    log(`deductions: ${label} (${connections} connection(s), ${oneUser ? 'all workers on ONE user' : 'one user per worker'})`);
    const load = await runLoad({
      workers: connections,
      warmupMs: CONFIG.warmupMs,
      durationMs: CONFIG.durationMs,
      signal: interrupt.signal,
      op: async (w, seq) => {
        const userId = users[oneUser ? 0 : w]!;
        const d = await store.deductTime({ userId, seconds: 1 + (seq % 5), idempotencyKey: `${keyPrefix}${w}:${seq}` });
        if (d.replayed) replays++;
        answered.set(userId, answered.get(userId)! + d.deducted_seconds);
        shortfallSeconds += d.shortfall_seconds;
      },
    });
    const walBytes = await walBytesSince(db.sql, wal);
    const after = await cardBalances(db.sql, users);
    const { lost, extra } = drift(before, after, answered);
    const answeredSeconds = [...answered.values()].reduce((a, b) => a + b, 0);
    const ledgerUsage = await ledgerUsageSeconds(db.sql, keyPrefix);
    const ops = await operationsRecorded(db.sql, keyPrefix);
    return {
      label,
      pooledServers: pooler?.servers ?? null,
      load,
      users: users.length,
      answeredSeconds,
      shortfallSeconds,
      replays,
      lost,
      extra,
      ledgerUsageDiff: ledgerUsage - answeredSeconds,
      ledgerMismatchedCards: await ledgerMismatchedCards(db.sql, users),
      operationsMissing: load.totalOps - ops,
      walBytesPerOp: walBytes / Math.max(1, load.totalOps),
    };
  } finally {
    await store.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------------------
// 3. Baselines on plain tables, through their own pg.Pool (same driver, same unnamed statements as the store)

async function withPool<T>(db: TestDatabase, size: number, fn: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: db.url!, max: size });
  pool.on('error', () => {});
  try {
    return await fn(pool);
  } finally {
    await pool.end().catch(() => {});
  }
}

interface NaiveRun {
  load: LoadResult;
  walBytesPerOp: number;
  answeredSeconds: number;
  lost: number;
  extra: number;
}

/** The old seeds' way: SELECT the balance, compute in TypeScript, UPDATE it; autocommit, no locking. */
async function naiveRun(db: TestDatabase, connections: number, oneUser: boolean): Promise<NaiveRun> {
  const users = Array.from({ length: oneUser ? 1 : connections }, () => newUserId());
  await db.sql.query(
    `insert into bench_naive_balances (user_id, seconds) select u, 100000000 from unnest($1::uuid[]) u`,
    [users],
  );
  const balances = async () => {
    const { rows } = await db.sql.query<{ user_id: string; seconds: number }>(
      `select user_id::text as user_id, seconds from bench_naive_balances where user_id = any($1::uuid[])`, [users]);
    return new Map(rows.map((r) => [r.user_id, r.seconds]));
  };
  await db.sql.exec('checkpoint');
  const before = await balances();
  const wal = await walPosition(db.sql);
  const answered = new Map<string, number>(users.map((u) => [u, 0]));
  log(`naive read-compute-write: ${connections} connection(s), ${oneUser ? 'ONE user' : 'one user per worker'}`);
  const load = await withPool(db, connections, (pool) =>
    runLoad({
      workers: connections,
      warmupMs: CONFIG.warmupMs,
      durationMs: CONFIG.durationMs,
      signal: interrupt.signal,
      op: async (w, seq) => {
        const userId = users[oneUser ? 0 : w]!;
        const { rows } = await pool.query<{ seconds: number }>({
          name: 'naive_read', text: 'select seconds from bench_naive_balances where user_id = $1', values: [userId] });
        const current = rows[0]!.seconds;
        const take = Math.min(1 + (seq % 5), current);
        await pool.query({ name: 'naive_write', text: 'update bench_naive_balances set seconds = $2 where user_id = $1',
          values: [userId, current - take] });
        answered.set(userId, answered.get(userId)! + take);
      },
    }),
  );
  const walBytesPerOp = (await walBytesSince(db.sql, wal)) / Math.max(1, load.totalOps);
  const { lost, extra } = drift(before, await balances(), answered);
  return { load, walBytesPerOp, answeredSeconds: [...answered.values()].reduce((a, b) => a + b, 0), lost, extra };
}

/**
 * One single-row UPDATE per transaction, one row per worker: what a committed write costs here at best.
 * With `withLedgerRow`, the same UPDATE also inserts a row with a unique key in the same statement: the least
 * any deduction that keeps a ledger and an idempotency key must write.
 */
async function ceilingRun(
  db: TestDatabase, connections: number, withLedgerRow = false,
): Promise<LoadResult & { rowsMatch: boolean; walBytesPerOp: number }> {
  await db.sql.exec('truncate bench_ceiling; insert into bench_ceiling (id, n) select g, 0 from generate_series(0, 63) g');
  await db.sql.exec('checkpoint');
  const wal = await walPosition(db.sql);
  log(`bare UPDATE ceiling: ${connections} connection(s)`);
  const load = await withPool(db, connections, (pool) =>
    runLoad({
      workers: connections,
      warmupMs: CONFIG.warmupMs,
      durationMs: CONFIG.durationMs,
      signal: interrupt.signal,
      op: async (w, seq) => {
        // Prepared, like the store's own calls, so the ratio compares server work and not parsing.
        if (withLedgerRow) {
          await pool.query({
            name: 'ceiling_ledger',
            text: `with u as (update bench_ceiling set n = n + 1 where id = $1 returning id, n)
                   insert into bench_floor_ledger (account, n, key) select id, n, $2 from u`,
            values: [w, `w${w}:${seq}:${connections}`],
          });
        } else {
          await pool.query({ name: 'ceiling', text: 'update bench_ceiling set n = n + 1 where id = $1', values: [w] });
        }
      },
    }),
  );
  const walBytesPerOp = (await walBytesSince(db.sql, wal)) / Math.max(1, load.totalOps);
  const { rows } = await db.sql.query<{ n: string }>('select sum(n)::bigint as n from bench_ceiling');
  return { ...load, walBytesPerOp, rowsMatch: Number(rows[0]!.n) === load.totalOps };
}

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const began = nowNs();
  const loadAtStart = os.loadavg()[0]!;
  log(`creating the bench database (${CONFIG.durationMs / 1000} s per throughput figure, ${CONFIG.latencySamples} latency samples)`);
  const db = await createPostgresDatabase();
  let dropped: Promise<void> | null = null;
  const cleanup = () =>
    (dropped ??= db.close().catch((error: unknown) => {
      log(`could not drop the bench database: ${error instanceof Error ? error.message : String(error)}`);
    }));
  const onSignal = (signal: NodeJS.Signals) => {
    log(`${signal}: stopping, dropping the bench database`);
    interrupt.abort();
    void cleanup();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    const { rows: versionRows } = await db.sql.query<{ v: string; sc: string }>(
      `select current_setting('server_version') as v, current_setting('synchronous_commit') as sc`);
    const serverVersion = versionRows[0]!.v;
    const synchronousCommit = versionRows[0]!.sc;

    // The sidecar gets a database of its own, measured first: the later phases leave vacuum work behind that
    // would compete with it for the two cores.
    log('sidecar over HTTP: webhooks and balance');
    const sidecarDb = await createPostgresDatabase();
    const sidecar = await measureSidecar(sidecarDb, CONFIG.durationMs / 1000).finally(() => sidecarDb.close());
    log('calls through the call controller (100 and 1,000 at once)');
    const callsDb = await createPostgresDatabase();
    const calls = await measureCalls(callsDb).finally(() => callsDb.close());
    log('meter events to a loopback Stripe endpoint (a sender process, then one killed with SIGKILL mid-run)');
    const meterDb = await createPostgresDatabase();
    const meter = await measureMeterEvents(meterDb, CONFIG.meterEvents).finally(() => meterDb.close());
    // Let the flush of the earlier phases' writes finish before latencies are sampled.
    await db.sql.exec('checkpoint');
    await new Promise((resolve) => setTimeout(resolve, 2000));

    log('session latency (1 connection, sequential)');
    const latency = await measureSessionLatency(db);

    // The three figures compared at 8 connections run back to back, so a noisy neighbour skews them alike.
    await db.sql.exec(`
      create table public.bench_naive_balances (user_id uuid primary key, seconds int not null);
      create table public.bench_ceiling (id int primary key, n bigint not null default 0);
      create table public.bench_floor_ledger (id bigint generated always as identity primary key, account int not null,
        n bigint not null, key text not null unique);`);
    const d1 = await deductionRun(db, 'd1', 1, false);
    const d8 = await deductionRun(db, 'd8', 8, false);
    const c8 = await ceilingRun(db, 8);
    const f8 = await ceilingRun(db, 8, true);
    const n8 = await naiveRun(db, 8, false);
    const d32 = await deductionRun(db, 'd32', 32, false);
    const d8one = await deductionRun(db, 'd8one', 8, true);
    // What a transaction-mode pooler costs (Supabase's on port 6543, PgBouncer): many clients, few server connections.
    const bouncer = await startPgBouncer(ADMIN_URL, { poolSize: 8 }).catch((error: unknown) => {
      log(`no PgBouncer, the pooler figure is skipped: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
      return null;
    });
    const d32pooled = bouncer
      ? await deductionRun(db, 'd32pool', 32, false, { bouncer, servers: 8 }).finally(() => bouncer.close())
      : null;
    const n8one = await naiveRun(db, 8, true);
    const c1 = await ceilingRun(db, 1);
    const c32 = await ceilingRun(db, 32);
    const deductions = [d1, d8, d32, d8one, ...(d32pooled ? [d32pooled] : [])];

    const totalMismatched = await ledgerMismatchedCards(db.sql, null);
    const lost = deductions.reduce((a, r) => a + r.lost, 0);
    const extra = deductions.reduce((a, r) => a + r.extra, 0);
    const ledgerUsageDiff = deductions.reduce((a, r) => a + Math.abs(r.ledgerUsageDiff), 0);
    const deductErrors = deductions.reduce((a, r) => a + r.load.errors, 0);
    const operationsMissing = deductions.reduce((a, r) => a + Math.abs(r.operationsMissing), 0);
    const ratioToCeiling8 = d8.load.perSecond / c8.perSecond;
    const ratioToNaive8 = d8.load.perSecond / n8.load.perSecond;
    const ratioToLedgerFloor8 = d8.load.perSecond / f8.perSecond;

    const targets = {
      start_p99_under_2ms: { value: round(latency.start.p99), limit: TARGETS.startP99Ms, pass: latency.start.p99 < TARGETS.startP99Ms },
      deduct_8_at_least_half_ceiling: { value: round(ratioToCeiling8), limit: TARGETS.ratioToCeiling8, pass: ratioToCeiling8 >= TARGETS.ratioToCeiling8 },
      zero_lost_or_extra_seconds: {
        value: lost + extra + ledgerUsageDiff + totalMismatched,
        limit: 0,
        pass: lost === 0 && extra === 0 && ledgerUsageDiff === 0 && totalMismatched === 0 && deductErrors === 0 && operationsMissing === 0,
      },
    };
    Object.assign(targets, sidecar.targets, calls.targets, meter.targets);
    const allPass = Object.values(targets).every((t) => t.pass);

    // ---- the table
    const r = new Report();
    r.section(`Environment`)
      .row('PostgreSQL', serverVersion, '', `synchronous_commit=${synchronousCommit}`)
      .row('CPU cores', os.cpus().length, '', 'shared by Node and PostgreSQL')
      .row('throughput window', CONFIG.durationMs / 1000, 's', `after ${CONFIG.warmupMs / 1000} s warm-up, CHECKPOINT before each run`)
      .row('1-min load average, start / end', `${round(loadAtStart, 2)} / ${round(os.loadavg()[0]!, 2)}`, '', 'above ~0.5 other work shares the 2 cores: figures are noisier');
    r.section(`Session latency through the store (1 connection, sequential, ${CONFIG.latencySamples} samples after ${CONFIG.latencyWarmup} warm-up)`)
      .row('start_voice_session p50', latency.start.p50, 'ms')
      .row('start_voice_session p99', latency.start.p99, 'ms', `max ${round(latency.start.max, 2)} ms`)
      .row('meter_voice_session p50', latency.meter.p50, 'ms', 'every meter charges one 60 s increment')
      .row('meter_voice_session p99', latency.meter.p99, 'ms', `max ${round(latency.meter.max, 2)} ms`)
      .row('end_voice_session p50', latency.end.p50, 'ms')
      .row('end_voice_session p99', latency.end.p99, 'ms')
      .row(`start p50, user with ${CONFIG.historySessions.toLocaleString('en-US')} past calls`, latency.startWithHistory.p50, 'ms', `${CONFIG.historySamples} samples`)
      .row(`start p99, user with ${CONFIG.historySessions.toLocaleString('en-US')} past calls`, latency.startWithHistory.p99, 'ms')
      .row(`end p50, user with ${CONFIG.historySessions.toLocaleString('en-US')} past calls`, latency.endWithHistory.p50, 'ms')
      .row(`start p50, ${CONFIG.activeElsewhere.toLocaleString('en-US')} other users on a call`, latency.startWithActive.p50, 'ms', 'the active-call count uses the per-user partial index')
      .row(`start p99, ${CONFIG.activeElsewhere.toLocaleString('en-US')} other users on a call`, latency.startWithActive.p99, 'ms');
    r.section('Deductions per second via store.deductTime (each worker = one pooled connection, unique idempotency keys)');
    for (const d of deductions) {
      const who = d.users === 1 && d.load.workers > 1 ? 'ALL workers on ONE user (serialized by its advisory lock)' : 'each worker its own user (no lock contention)';
      const via = d.pooledServers === null ? '' : ` via PgBouncer (transaction mode, ${d.pooledServers} server conn.)`;
      r.row(`${d.load.workers} connection(s)${d.users === 1 && d.load.workers > 1 ? ', one user' : ''}${via}`, d.load.perSecond, '/s',
        `${who}; p50 ${round(d.load.latency.p50, 2)} ms, p99 ${round(d.load.latency.p99, 2)} ms, ${Math.round(d.walBytesPerOp)} WAL B/op`);
    }
    r.section('Baselines at 8 connections (plain tables in the bench database)');
    r.row('bare single-row UPDATE (ceiling), 8 conn', c8.perSecond, '/s', `update bench_ceiling set n = n + 1 where id = $1, one row per worker; ${Math.round(c8.walBytesPerOp)} WAL B/op`)
      .row('bare single-row UPDATE, 1 conn', c1.perSecond, '/s', 'context')
      .row('bare single-row UPDATE, 32 conn', c32.perSecond, '/s', 'context')
      .row('UPDATE + keyed ledger INSERT, 8 conn', f8.perSecond, '/s', `one statement; the least a ledgered, idempotent deduction writes; ${Math.round(f8.walBytesPerOp)} WAL B/op`)
      .row('naive SELECT + TS + UPDATE, 8 conn', n8.load.perSecond, '/s', `one user per worker, autocommit, no lock; ${Math.round(n8.walBytesPerOp)} WAL B/op`)
      .row('naive SELECT + TS + UPDATE, 8 conn, one user', n8one.load.perSecond, '/s', 'all workers on ONE user')
      .row('ours / ceiling at 8 conn', ratioToCeiling8, 'x')
      .row('ours / naive at 8 conn', ratioToNaive8, 'x')
      .row('ours / UPDATE + ledger INSERT at 8 conn', ratioToLedgerFloor8, 'x');
    r.section('Correctness (all four deduction runs)');
    r.row('seconds answered as deducted', deductions.reduce((a, d) => a + d.answeredSeconds, 0), 's', `${deductions.reduce((a, d) => a + d.load.totalOps, 0).toLocaleString('en-US')} calls incl. warm-up`)
      .row('lost seconds', lost, 's', 'answered as deducted but still on the balance')
      .row('extra seconds', extra, 's', 'gone from the balance without an answer saying so')
      .row('ledger usage vs answered, |diff|', ledgerUsageDiff, 's', 'usage rows of the runs vs deducted_seconds answered')
      .row('cards whose ledger sum != remaining', totalMismatched, '', 'whole database, every phase')
      .row('operations not recorded', operationsMissing, '', 'idempotency log rows vs successful calls')
      .row('deduction errors / replays / shortfall', `${deductErrors} / ${deductions.reduce((a, d) => a + d.replays, 0)} / ${deductions.reduce((a, d) => a + d.shortfallSeconds, 0)}`, '')
      .row('session charge anomalies', latency.anomalies.length, '', latency.anomalies.slice(0, 3).join('; '))
      .row('naive one-user: seconds lost', n8one.lost, 's', `of ${n8one.answeredSeconds.toLocaleString('en-US')} s answered (${round((100 * n8one.lost) / Math.max(1, n8one.answeredSeconds), 1)} % never deducted)`)
      .row('naive one user per worker: seconds lost', n8.lost, 's', 'no contention, so nothing to lose')
      .row('ceiling rows match calls', c1.rowsMatch && c8.rowsMatch && c32.rowsMatch ? 'yes' : 'NO', '');
    sidecar.report(r);
    calls.report(r);
    meter.report(r);
    r.section('Targets');
    r.row('start_voice_session p99 < 2 ms', latency.start.p99, 'ms', mark(targets.start_p99_under_2ms.pass))
      .row('deductions at 8 conn >= 0.5 x ceiling', ratioToCeiling8, 'x', mark(targets.deduct_8_at_least_half_ceiling.pass))
      .row('zero lost / extra seconds', lost + extra, 's', mark(targets.zero_lost_or_extra_seconds.pass))
      .row('webhooks >= 1,000 per second', sidecar.figures.webhooks_per_s, '/s', mark(sidecar.targets.webhooks_at_least_1000_per_s.pass))
      .row('webhook p99 < 20 ms', sidecar.figures.webhook_p99_ms, 'ms', mark(sidecar.targets.webhook_p99_under_20ms.pass))
      .row('every webhook granted exactly one card', sidecar.figures.cards_granted, '', mark(sidecar.targets.every_webhook_granted_once.pass))
      .row('<= 1 billing query per call per increment', calls.targets.at_most_one_query_per_call_increment.value, '', mark(calls.targets.at_most_one_query_per_call_increment.pass))
      .row('meter p99 < 5 ms at 1,000 calls', calls.targets.meter_p99_under_5ms_at_1000_calls.value, 'ms', mark(calls.targets.meter_p99_under_5ms_at_1000_calls.pass));
    meter.reportTargets(r);
    r.row('all targets', allPass ? 'PASS' : 'FAIL', '');
    const elapsed = msBetween(began, nowNs()) / 1000;
    r.row('benchmark wall time', elapsed, 's');
    console.log(r.render());

    const runFigures = (d: DeductionRun) => ({
      per_s: round(d.load.perSecond, 1), p50_ms: round(d.load.latency.p50), p99_ms: round(d.load.latency.p99),
      ops: d.load.ops, errors: d.load.errors, wal_bytes_per_op: Math.round(d.walBytesPerOp),
    });
    const json = {
      start_p50_ms: round(latency.start.p50),
      start_p99_ms: round(latency.start.p99),
      meter_p50_ms: round(latency.meter.p50),
      meter_p99_ms: round(latency.meter.p99),
      end_p50_ms: round(latency.end.p50),
      end_p99_ms: round(latency.end.p99),
      start_p50_ms_history: round(latency.startWithHistory.p50),
      start_p99_ms_history: round(latency.startWithHistory.p99),
      end_p50_ms_history: round(latency.endWithHistory.p50),
      history_sessions: CONFIG.historySessions,
      start_p50_ms_active_elsewhere: round(latency.startWithActive.p50),
      start_p99_ms_active_elsewhere: round(latency.startWithActive.p99),
      active_elsewhere: CONFIG.activeElsewhere,
      deduct_per_s_1: round(d1.load.perSecond, 1),
      deduct_per_s_8: round(d8.load.perSecond, 1),
      deduct_per_s_32: round(d32.load.perSecond, 1),
      deduct_per_s_8_one_user: round(d8one.load.perSecond, 1),
      deduct_per_s_32_via_pgbouncer: d32pooled ? round(d32pooled.load.perSecond, 1) : null,
      deduct_runs: { c1: runFigures(d1), c8: runFigures(d8), c32: runFigures(d32), c8_one_user: runFigures(d8one),
        ...(d32pooled && { c32_via_pgbouncer: runFigures(d32pooled) }) },
      naive_per_s_8: round(n8.load.perSecond, 1),
      naive_per_s_8_one_user: round(n8one.load.perSecond, 1),
      ceiling_per_s_1: round(c1.perSecond, 1),
      ceiling_per_s_8: round(c8.perSecond, 1),
      ceiling_per_s_32: round(c32.perSecond, 1),
      ceiling_p99_ms_8: round(c8.latency.p99),
      wal_bytes_per_op: { deduct_8: Math.round(d8.walBytesPerOp), ceiling_8: Math.round(c8.walBytesPerOp), naive_8: Math.round(n8.walBytesPerOp) },
      ratio_to_ceiling_8: round(ratioToCeiling8),
      ratio_to_naive_8: round(ratioToNaive8),
      ledger_floor_per_s_8: round(f8.perSecond, 1),
      ratio_to_ledger_floor_8: round(ratioToLedgerFloor8),
      lost_seconds: lost,
      extra_seconds: extra,
      ledger_usage_diff_seconds: ledgerUsageDiff,
      ledger_mismatched_cards: totalMismatched,
      operations_missing: operationsMissing,
      deduct_errors: deductErrors,
      session_charge_anomalies: latency.anomalies.length,
      naive_lost_seconds_one_user: n8one.lost,
      naive_answered_seconds_one_user: n8one.answeredSeconds,
      naive_lost_seconds_per_user_workers: n8.lost,
      sidecar: sidecar.figures,
      calls: calls.figures,
      meter_events: meter.figures,
      targets: { ...targets, all_pass: allPass },
      config: {
        latency_samples: CONFIG.latencySamples,
        latency_warmup: CONFIG.latencyWarmup,
        throughput_seconds: CONFIG.durationMs / 1000,
        warmup_seconds: CONFIG.warmupMs / 1000,
        cores: os.cpus().length,
        postgres: serverVersion,
        synchronous_commit: synchronousCommit,
        load_average_start: round(loadAtStart, 2),
        load_average_end: round(os.loadavg()[0]!, 2),
      },
      wall_seconds: round(elapsed, 1),
    };
    console.log(JSON.stringify(json));
    return 0;
  } finally {
    log('dropping the bench database');
    await cleanup();
  }
}

main().then(
  (code) => process.exit(interrupt.signal.aborted ? 130 : code),
  (error: unknown) => {
    // main() has awaited the drop of the database before settling, whatever happened.
    if (interrupt.signal.aborted) process.exit(130);
    process.stderr.write(`[bench] failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);

// Nothing waits forever: the app reaches PostgreSQL through a fault-injecting TCP proxy that can refuse
// connections or black-hole them (accept, keep, answer nothing), and then resume.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { CallController, realTimers, type CallEventName } from '../src/agent/call-controller.ts';
import { isBillingError } from '../src/billing/errors.ts';
import { storeSqlClient } from '../src/billing/open-store.ts';
import { sqlTransport } from '../src/billing/sql-transport.ts';
import { RpcBillingStore, type BillingStore } from '../src/billing/store.ts';
import { startFaultProxy, type FaultProxy } from './helpers/fault-proxy.ts';
import { METRICS_TOKEN, startSidecar } from './helpers/sidecar.ts';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';

// Enough for a first connect on a loaded machine; a frozen database still fails well within HANG_BOUND_MS.
const STORE_TIMEOUT_MS = 1500;
/** Generous: a wait that outlasts this is a wait without a deadline. */
const HANG_BOUND_MS = 20_000;

let db: TestDatabase;
const cleanups: Array<() => Promise<unknown>> = [];

before(async () => {
  db = await createPostgresDatabase();
  // Billing rules are the database's: this file's database bills by the second, so calls run on real timers.
  const setup = db.store();
  await setup.updateSettings({ billing_increment_seconds: 1, minimum_charge_seconds: 1 });
  await setup.close();
});
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  await db.close();
});

async function proxy(): Promise<FaultProxy> {
  const started = await startFaultProxy();
  cleanups.push(() => started.close());
  return started;
}

/** The store as the sidecar and the worker open it (src/billing/open-store.ts), through the proxy. */
function storeThrough(faults: FaultProxy, timeoutMs = STORE_TIMEOUT_MS) {
  const sql = storeSqlClient(faults.urlFor(db.url!), { DB_POOL_MAX: 4, STORE_TIMEOUT_MS: timeoutMs }, true);
  const store = new RpcBillingStore(sqlTransport(sql, { preparedStatements: true }));
  cleanups.push(() => store.close());
  return { store, sql };
}

/** Fails the test if promise is still pending after HANG_BOUND_MS (it would be hanging, not slow). */
async function settles<T>(promise: Promise<T>, what: string, boundMs = HANG_BOUND_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${boundMs} ms`)), boundMs);
  });
  try {
    return await Promise.race([promise, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** Recovery is by itself but not instant on a busy machine: fn is retried while the store says unavailable. */
async function eventually<T>(fn: () => Promise<T>, what: string): Promise<T> {
  const until = Date.now() + HANG_BOUND_MS;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (!isBillingError(error, 'storage_unavailable') || Date.now() > until) throw new Error(`${what}: ${String(error)}`);
    }
  }
}

async function unavailable(promise: Promise<unknown>, what: string): Promise<void> {
  const outcome = await settles(promise.then(() => 'answered', (error: unknown) => error), what);
  assert.ok(isBillingError(outcome, 'storage_unavailable'), `${what}: expected storage_unavailable, got ${String(outcome)}`);
}

async function credit(store: BillingStore, userId: string, seconds: number): Promise<void> {
  await store.adjustUserTime({ userId, seconds, reason: 'test credit', idempotencyKey: `credit:${userId}` });
}

describe('store calls through a faulty network', () => {
  it('a black-holed database fails every store call as storage_unavailable, and the store recovers by itself', async () => {
    const faults = await proxy();
    const { store } = storeThrough(faults);
    const user = newUserId();
    await credit(store, user, 600);
    // More calls than the pool has connections: the waits for a free connection are bounded too.
    const parallel = () => Array.from({ length: 6 }, () => store.getBalance(user));
    await eventually(() => Promise.all(parallel()), 'warming up the pool');

    faults.blackHole();
    await unavailable(store.getBalance(user), 'getBalance');
    await unavailable(store.deductTime({ userId: user, seconds: 60, idempotencyKey: `frozen:${user}` }), 'deductTime');
    // All at once: awaited one by one, a later call can reject before anything listens to it.
    await Promise.all(parallel().map((call) => unavailable(call, 'a call queued behind the pool')));

    faults.resume();
    const balances = await eventually(() => Promise.all(parallel()), 'after resume');
    assert.deepEqual(balances.map((b) => b.total_seconds), [600, 600, 600, 600, 600, 600]);
    await store.deductTime({ userId: user, seconds: 60, idempotencyKey: `frozen:${user}` });
    assert.equal((await store.getBalance(user)).total_seconds, 540);
  });

  it('a database that refuses connections fails fast as storage_unavailable, then recovers by itself', async () => {
    const faults = await proxy();
    const { store } = storeThrough(faults);
    const user = newUserId();
    await credit(store, user, 300);

    faults.refuse();
    await unavailable(store.getBalance(user), 'getBalance (refused)');
    await unavailable(store.listPricingTiers(), 'listPricingTiers (refused)');

    faults.resume();
    assert.equal((await eventually(() => store.getBalance(user), 'after resume')).total_seconds, 300);
  });
});

describe('the embedded PGlite server through a faulty network', () => {
  it('fails queries as storage_unavailable while black-holed, and recovers by itself', async () => {
    // The embedded server's socket as src/billing/embedded.ts serves it (unmigrated: the deadline is the point).
    const pglite = await PGlite.create();
    const server = new PGLiteSocketServer({ db: pglite, host: '127.0.0.1', port: 0, maxConnections: 64 });
    await server.start();
    cleanups.push(async () => { await server.stop(); await pglite.close(); });
    const [host, port] = server.getServerConn().split(':');
    const faults = await startFaultProxy({ host: host!, port: Number(port) });
    cleanups.push(() => faults.close());
    // As open-store.ts opens it: no server-side timeouts (PGlite), the client-side deadline alone.
    const sql = storeSqlClient(faults.urlFor('postgres://postgres@127.0.0.1/postgres'), { DB_POOL_MAX: 2, STORE_TIMEOUT_MS }, false);
    cleanups.push(() => sql.close());
    const answer = async () => (await sql.query<{ n: number }>('select 1 as n')).rows[0]!.n;
    assert.equal(await answer(), 1);

    faults.blackHole();
    await unavailable(answer(), 'a query to the black-holed embedded server');
    await unavailable(answer(), 'a second one, on a new connection');

    faults.resume();
    assert.equal(await settles(answer(), 'after resume'), 1);
  });
});

describe('the sidecar while the database is frozen', () => {
  it('answers 503 storage_unavailable, /health and /metrics say so, and it recovers without a restart', async () => {
    const faults = await proxy();
    const storage = storeThrough(faults);
    const sidecar = await startSidecar(db, { storage });
    cleanups.push(() => sidecar.close());
    const user = newUserId();
    const token = await sidecar.tokenFor(user);
    assert.equal((await sidecar.request('GET', '/health')).status, 200);

    faults.blackHole();
    const [pricing, balance, health, metrics] = await settles(Promise.all([
      sidecar.request('GET', '/time/pricing'),
      sidecar.request('GET', '/time/balance', { token }),
      sidecar.request('GET', '/health'),
      sidecar.request('GET', '/metrics', { token: METRICS_TOKEN }),
    ]), 'requests to a sidecar over a frozen database');

    for (const answer of [pricing, balance, metrics]) {
      assert.equal(answer.status, 503);
      assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'storage_unavailable');
    }
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: 'degraded', version: 'test', database: 'unreachable' });

    faults.resume();
    const healthy = await settles(sidecar.request('GET', '/health'), '/health after resume');
    assert.equal(healthy.status, 200);
    assert.deepEqual(await healthy.json(), { status: 'ok', version: 'test', database: 'ok', migrations: 'current' });
    assert.equal((await sidecar.request('GET', '/time/pricing')).status, 200);
    assert.equal((await sidecar.request('GET', '/time/balance', { token })).status, 200);
  });
});

describe('a call while the database freezes (real timers, 1-second increments)', () => {
  it('ends after its grace with no more than the grace unbilled; a warning comes while a store call hangs', async () => {
    const faults = await proxy();
    const { store } = storeThrough(faults, 1500);
    const user = newUserId();
    await credit(store, user, 3600);
    let outstanding = 0;
    const counted = new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          outstanding += 1;
          return (value as (...a: unknown[]) => Promise<unknown>).apply(target, args).finally(() => { outstanding -= 1; });
        };
      },
    });
    const graceSeconds = 2;
    const call = new CallController({
      store: counted,
      timers: realTimers,
      options: {
        // Reached 1.5 s into the call, while the meter due at 1.1 s hangs on the frozen database.
        warnAtSeconds: [3598.5],
        meterLeadMs: 100,
        storeOutageGraceSeconds: graceSeconds,
        storeCallTimeoutMs: 2000,
        // After the first failed meter the next try is due at the end of the grace, where a hung store call
        // must not push the end of the call past it.
        storeRetry: { initialMs: 10_000, maxMs: 10_000, factor: 2 },
        settleAttempts: 1,
      },
    });
    const events: Array<{ type: CallEventName; at: number; outstanding: number }> = [];
    for (const type of ['warning', 'store_unreachable', 'ended'] as const) {
      call.on(type, () => events.push({ type, at: Date.now(), outstanding }));
    }
    const ended = new Promise<void>((resolve) => call.on('ended', () => resolve()));
    const started = await call.join({ userId: user, externalKey: `call:${user}`, roomName: 'room-frozen' });
    assert.ok(started);
    faults.blackHole();
    await settles(ended, 'the call ending while the database is frozen');

    const unreachable = events.filter((e) => e.type === 'store_unreachable');
    assert.equal(unreachable.length, 1);
    const warnings = events.filter((e) => e.type === 'warning');
    assert.equal(warnings.length, 1);
    assert.ok(warnings[0]!.outstanding > 0, `the warning waited for the store: ${JSON.stringify(events)}`);
    assert.equal(call.phase, 'ended');

    // The database comes back after the worker gave up settling: the server's reaper settles the call with
    // what was charged, which covers all but at most the grace of the talk.
    faults.resume();
    const reaper = db.store(() => new Date(Date.now() + 3600_000));
    await reaper.reapStaleSessions(60);
    await reaper.close();
    const { rows } = await db.sql.query<{ status: string; billed_seconds: number; started_at: Date }>(
      'select status, billed_seconds, started_at from public.voice_sessions where id = $1', [started.session_id]);
    const row = rows[0]!;
    assert.equal(row.status, 'abandoned');
    const talkedMs = unreachable[0]!.at - row.started_at.getTime();
    const unbilledMs = talkedMs - row.billed_seconds * 1000;
    // Timers fire late on a busy machine (up to a second allowed); the bound is the grace, not the grace plus
    // the 1.5 s of a store call left hanging at its end.
    assert.ok(unbilledMs <= graceSeconds * 1000 + 1000, `talked ${talkedMs} ms, billed ${row.billed_seconds} s`);
  });
});

describe('a call over a store that never answers (no deadline of its own)', () => {
  it('counts each hung store call as failed after storeCallTimeoutMs: the call ends and is given up to the reaper', async () => {
    const store = db.store();
    cleanups.push(() => store.close());
    const user = newUserId();
    await credit(store, user, 3600);
    let hang = false;
    const hanging = new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => hang && ['meterSession', 'endSession'].includes(String(prop))
          ? new Promise(() => {})
          : (value as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
    const call = new CallController({
      store: hanging,
      timers: realTimers,
      options: {
        meterLeadMs: 100, storeOutageGraceSeconds: 1, storeCallTimeoutMs: 300,
        storeRetry: { initialMs: 100, maxMs: 200, factor: 2 }, settleAttempts: 2,
      },
    });
    const endedWith = new Promise<unknown>((resolve) => call.on('ended', (payload) => resolve(payload)));
    const started = await call.join({ userId: user, externalKey: `call:${user}`, roomName: 'room-hung' });
    assert.ok(started);
    hang = true;

    // Without a deadline of the controller's own, the settlement would wait behind a meter that never returns.
    assert.deepEqual(await settles(endedWith, 'the call ending over a store that never answers'),
      { reason: 'store_unreachable', state: null, settled: false });
    assert.equal(await settles(call.finished(), 'the call to finish'), null);
    assert.equal(call.phase, 'ended');
  });
});

describe('SIGTERM to a sidecar process while the database is frozen', () => {
  it('answers what is in flight and exits within its shutdown timeout', async () => {
    const faults = await proxy();
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/sidecar/main.ts'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: {
        PATH: process.env.PATH, NODE_ENV: 'test', LOG_LEVEL: 'info',
        JWT_SECRET: 'test-jwt-secret-for-the-deadline-tests-0123456789',
        DATABASE_URL: faults.urlFor(db.url!), HOST: '127.0.0.1', PORT: String(port),
        STORE_TIMEOUT_MS: '1000', SHUTDOWN_TIMEOUT_MS: '3000',
        JOBS_ENABLED: 'true', EXPIRE_EVERY_SECONDS: '1', REAP_EVERY_SECONDS: '1', NOTIFY_EVERY_SECONDS: '1',
        WEB_DIST_DIR: '/nonexistent/mindbot-web',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('exit', (code, signal) => resolve({ code, signal })));
    cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });

    const base = `http://127.0.0.1:${port}`;
    // Starting (tsx compiling on a busy machine) is not what is measured here.
    await settles(waitForHealthy(base), 'the sidecar to start', 90_000);

    faults.blackHole();
    const inFlight = fetch(`${base}/time/pricing`);
    // Signalled while the request (and the background jobs, every second) wait on the frozen database.
    await new Promise((resolve) => setTimeout(resolve, 300));
    child.kill('SIGTERM');

    const exit = await settles(exited, `the sidecar to exit after SIGTERM:\n${output}`);
    assert.equal(exit.signal, null, output);
    const answer = await settles(inFlight, 'the request in flight');
    assert.equal(answer.status, 503);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'storage_unavailable');
    assert.match(output, /stopping the sidecar/);
  });
});

describe('migrate against a frozen database', () => {
  it('gives up connecting after STORE_TIMEOUT_MS and exits non-zero', async () => {
    const faults = await proxy();
    faults.blackHole();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/billing/migrate-cli.ts'], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { PATH: process.env.PATH, NODE_ENV: 'test', DATABASE_URL: faults.urlFor(db.url!), STORE_TIMEOUT_MS: '500' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    cleanups.push(async () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
    const code = await settles(new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c))),
      'migrate to give up', 90_000);
    assert.equal(code, 1, output);
    assert.match(output, /migration failed/);
    assert.match(output, /timeout/i);
  });
});

async function waitForHealthy(base: string): Promise<void> {
  for (;;) {
    const status = await fetch(`${base}/health`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

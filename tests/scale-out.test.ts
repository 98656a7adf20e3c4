// Run as many: two sidecar processes and three worker processes on one PostgreSQL, the sidecars and two of the
// workers through PgBouncer in transaction mode (as Supabase's pooler), under a mixed load: signed Stripe
// webhooks delivered to both sidecars (each several times), calls metered by call controllers on every worker
// (the same user's calls on different workers), a worker killed mid-call, cards expiring, a balance running
// out, and every background job (expiry, reaper, notification scan and delivery) running on both sidecars.
// Afterwards: each job's work was done once, nothing failed or deadlocked, no second or card was lost or doubled.
import assert from 'node:assert/strict';
import { fork, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { signLocalToken } from '../src/auth/verify-token.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';
import { freePort, startPgBouncer, type PgBouncer } from './helpers/pgbouncer.ts';
import { ADMIN_URL, createPostgresDatabase, ledgerMismatches, newUserId, type TestDatabase } from './helpers/test-db.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const WEBHOOK_SECRET = 'whsec_scale_out_test';
const JWT_SECRET = 'scale-out-test-jwt-secret-0123456789abcdef';
const ADMIN = newUserId();
const DEADLINE_MS = 60_000;

async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, deadlineMs = DEADLINE_MS): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

interface LogLine { level: number; time: number; msg: string; job?: string; result?: any; [key: string]: unknown }

/** A sidecar as its own process (`node --import tsx src/sidecar/main.ts`), its JSON log kept line by line. */
class SidecarProcess {
  readonly lines: LogLine[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private rest = '';
  stderr = '';
  constructor(readonly name: string, readonly url: string, env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'src/sidecar/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.stdout!.on('data', (chunk: Buffer) => {
      const text = this.rest + chunk.toString();
      const parts = text.split('\n');
      this.rest = parts.pop()!;
      for (const part of parts) {
        if (part.trim() === '') continue;
        try {
          this.lines.push(JSON.parse(part) as LogLine);
        } catch {
          this.lines.push({ level: 60, time: Date.now(), msg: `not JSON: ${part}` });
        }
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  async ready(): Promise<void> {
    await until(`${this.name} /health`, async () => {
      if (!this.running) throw new Error(`${this.name} exited: ${this.stderr}${this.lines.map((l) => JSON.stringify(l)).join('\n')}`);
      return fetch(`${this.url}/health`).then((r) => r.ok, () => false);
    });
  }
  jobRuns(job: string): LogLine[] {
    return this.lines.filter((l) => l.msg === 'job ran' && l.job === job);
  }
  /** SIGTERM, as an orchestrator stops it; SIGKILL only past the deadline. */
  async stop(): Promise<number | null> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
      const code = await this.exited;
      clearTimeout(timer);
      return code;
    }
    return this.child.exitCode;
  }
}

type WorkerMessage =
  | { type: 'ready' } | { type: 'started'; id: string; sessionId: string } | { type: 'no_balance'; id: string }
  | { type: 'ended'; id: string; sessionId: string | null; reason: string; settled: boolean; status: string | null }
  | { type: 'failed'; id: string; error: string };

/** A worker host as its own process (tests/helpers/scale-worker.ts): call controllers over the configured store. */
class WorkerProcess {
  readonly messages: WorkerMessage[] = [];
  private readonly child: ChildProcess;
  private readonly exited: Promise<void>;
  stderr = '';
  constructor(readonly name: string, env: Record<string, string>) {
    this.child = fork(fileURLToPath(new URL('./helpers/scale-worker.ts', import.meta.url)), [], {
      cwd: ROOT, env: { ...env, WORKER_NAME: name }, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
    this.child.on('message', (message: WorkerMessage) => this.messages.push(message));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
  }
  ready(): Promise<unknown> {
    return until(`${this.name} ready`, async () => {
      if (this.child.exitCode !== null) throw new Error(`${this.name} exited: ${this.stderr}`);
      return this.messages.some((m) => m.type === 'ready');
    });
  }
  call(id: string, userId: string, talkMs: number): void {
    this.child.send({ type: 'call', id, userId, talkMs });
  }
  of<T extends WorkerMessage['type']>(type: T): Extract<WorkerMessage, { type: T }>[] {
    return this.messages.filter((m) => m.type === type) as Extract<WorkerMessage, { type: T }>[];
  }
  /** The host dies with its calls open: nobody settles them but the sidecars' reaper. */
  async crash(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
  async shutdown(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.send({ type: 'shutdown' });
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await this.exited;
    clearTimeout(timer);
  }
}

describe('run as many: two sidecars and three workers on one database, through PgBouncer', () => {
  let db: TestDatabase;
  let bouncer: PgBouncer;
  let fake: FakeStripe;
  let receiver: http.Server;
  const received: { id: string; idempotencyKey: string; kind: string }[] = [];
  let sidecars: SidecarProcess[] = [];
  let workers: WorkerProcess[] = [];
  const responses: { sidecar: string; status: number; eventId: string; outcome: string | undefined }[] = [];
  const purchases: { userId: string; sessionId: string; packageId: string }[] = [];
  const crashedCalls: string[] = [];
  let sessionsStarted = 0;

  before(async () => {
    db = await createPostgresDatabase();
    // Per-second billing so real-time calls meter often; room for a user's calls on three hosts at once.
    await db.sql.query('update public.billing_settings set billing_increment_seconds = 1, minimum_charge_seconds = 1, max_concurrent_sessions = 5');
    bouncer = await startPgBouncer(ADMIN_URL, { poolSize: 6 });
    fake = await startFakeStripe();
    receiver = http.createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        const notice = JSON.parse(body) as { id: string; kind: string };
        received.push({ id: notice.id, kind: notice.kind, idempotencyKey: String(request.headers['idempotency-key']) });
        response.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const notifyUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/notices`;
    const dbName = new URL(db.url!).pathname.slice(1);
    const base = {
      PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test', LOG_LEVEL: 'debug',
      DB_POOL_MAX: '5', JWT_SECRET, CALL_METER_LEAD_MS: '500', CALL_STORE_GRACE_SECONDS: '1', SESSION_MAX_SILENCE_SECONDS: '6', REAP_EVERY_SECONDS: '1',
    };
    const sidecarEnv = async (preparedStatements: boolean) => {
      const port = await freePort();
      return {
        ...base, HOST: '127.0.0.1', PORT: String(port), PUBLIC_BASE_URL: `http://127.0.0.1:${port}`,
        DATABASE_URL: bouncer.url(dbName), DB_PREPARED_STATEMENTS: String(preparedStatements),
        ADMIN_USER_IDS: ADMIN, STRIPE_SECRET_KEY: fake.apiKey, STRIPE_API_BASE: fake.url, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
        NOTIFY_WEBHOOK_URL: notifyUrl, JOBS_ENABLED: 'true', EXPIRE_EVERY_SECONDS: '1',
        NOTIFY_EVERY_SECONDS: '1', LOW_BALANCE_SECONDS: '3000', WEB_DIST_DIR: '/nonexistent/mindbot-web',
      };
    };
    // Sidecar a keeps the default (prepared statements) and must find out it is behind a pooler; b is configured for it.
    const [envA, envB] = [await sidecarEnv(true), await sidecarEnv(false)];
    sidecars = [new SidecarProcess('a', envA.PUBLIC_BASE_URL, envA), new SidecarProcess('b', envB.PUBLIC_BASE_URL, envB)];
    workers = [
      new WorkerProcess('w1-direct', { ...base, LOG_LEVEL: 'warn', DATABASE_URL: db.url! }),
      new WorkerProcess('w2-pooled', { ...base, LOG_LEVEL: 'warn', DATABASE_URL: bouncer.url(dbName) }),
      new WorkerProcess('w3-pooled-doomed', { ...base, LOG_LEVEL: 'warn', DATABASE_URL: bouncer.url(dbName), DB_PREPARED_STATEMENTS: 'false' }),
    ];
    await Promise.all([...sidecars.map((s) => s.ready()), ...workers.map((w) => w.ready())]);
  });

  after(async () => {
    await Promise.all(workers.map((w) => w.shutdown().catch(() => {})));
    await Promise.all(sidecars.map((s) => s.stop().catch(() => {})));
    await new Promise((resolve) => receiver?.close(resolve));
    await fake?.close();
    await bouncer?.close();
    await db?.close();
  });

  const [A, B] = [0, 1];
  const token = (userId: string, admin = false) => signLocalToken({ userId, admin }, JWT_SECRET);
  const post = async (sidecar: number, path: string, userId: string, body: unknown, admin = false) => {
    const response = await fetch(`${sidecars[sidecar]!.url}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${await token(userId, admin)}` },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: await response.json() as Record<string, any> };
  };
  /** The event, signed as Stripe signs it, to both sidecars, `copies` times each, all at once. */
  const deliverEverywhere = async (type: string, object: unknown, copies = 2) => {
    const { event, payload, signature } = fake.signedEvent(type, object, WEBHOOK_SECRET);
    await Promise.all(sidecars.flatMap((sidecar) => Array.from({ length: copies }, async () => {
      const response = await fetch(`${sidecar.url}/webhooks/stripe`, {
        method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signature }, body: payload });
      const body = await response.json() as { outcome?: string };
      responses.push({ sidecar: sidecar.name, status: response.status, eventId: event.id, outcome: body.outcome });
    })));
    return event.id;
  };
  /** A purchase started on one sidecar, paid at Stripe, its checkout and payment events delivered everywhere. */
  const buy = async (userId: string, packageId: string, sidecar: number) => {
    const started = await post(sidecar, '/time/purchase', userId, { package_id: packageId });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const { session, paymentIntent } = fake.completeCheckoutSession(started.body.checkout_session_id);
    purchases.push({ userId, sessionId: session.id, packageId });
    await Promise.all([
      deliverEverywhere('checkout.session.completed', session),
      deliverEverywhere('payment_intent.succeeded', paymentIntent, 1),
    ]);
    return { session, paymentIntent };
  };

  const users = Array.from({ length: 8 }, () => newUserId());
  const shortLived = Array.from({ length: 3 }, () => newUserId());
  const scant = newUserId();

  it('runs the mixed load: webhook bursts to both sidecars, calls on three workers, a worker killed mid-call', async () => {
    await Promise.all(users.map((userId, i) => buy(userId, 'starter_1h', i % 2)));
    // Cards that expire within seconds, so both sidecars' expiry jobs find work while calls run on them.
    await db.sql.query(`update public.billing_settings set card_validity = interval '10 seconds'`);
    await Promise.all(shortLived.map((userId, i) => buy(userId, 'starter_1h', i % 2)));
    await db.sql.query(`update public.billing_settings set card_validity = interval '1 year'`);
    // A few seconds, granted by an administrator (the same request retried on the other sidecar): cut off mid-call.
    const grants = await Promise.all([A, B].map((s) =>
      post(s, `/admin/users/${scant}/adjust`, ADMIN, { seconds: 4, reason: 'trial', idempotency_key: 'trial-grant-1' }, true)));
    assert.deepEqual(grants.map((g) => g.status), [200, 200]);

    const [w1, w2, w3] = workers as [WorkerProcess, WorkerProcess, WorkerProcess];
    // The doomed host takes calls of four users, which then also talk on the healthy hosts.
    users.slice(0, 4).forEach((userId, i) => {
      crashedCalls.push(`doomed-${i}`);
      w3.call(`doomed-${i}`, userId, 60_000);
    });
    await until('the doomed calls started', async () => w3.of('started').length === 4);
    // A short-lived card may be gone before its call starts on a busy machine (no_balance): either way is right.
    shortLived.forEach((userId, i) => w2.call(`short${i}`, userId, 15_000));
    users.forEach((userId, i) => {
      w1.call(`u${i}-w1`, userId, 2000 + 300 * i);
      w2.call(`u${i}-w2`, userId, 3500 - 200 * i);
    });
    w1.call('scant', scant, 15_000);

    // While they talk: a second burst of purchases, a refund, and the doomed host dies with its calls open.
    const refunded = purchases.find((p) => p.userId === users[7])!;
    await Promise.all([
      ...users.slice(0, 4).map((userId, i) => buy(userId, 'basic_5h', (i + 1) % 2)),
      (async () => {
        // An administrator refunds part of a payment through sidecar b; Stripe's webhook then goes to both.
        const { rows } = await db.sql.query<{ id: string }>('select id from public.payments where stripe_checkout_session_id = $1',
          [refunded.sessionId]);
        const refund = await post(B, `/admin/payments/${rows[0]!.id}/refund`, ADMIN, { amount_cents: 500 }, true);
        assert.equal(refund.status, 202, JSON.stringify(refund.body));
        const intent = fake.paymentIntents.get(String(fake.checkoutSessions.get(refunded.sessionId)!.payment_intent))!;
        await deliverEverywhere('charge.refunded', fake.charges.get(String(intent.latest_charge))!);
      })(),
      (async () => {
        await new Promise((r) => setTimeout(r, 1500));
        await w3.crash();
      })(),
    ]);
    users.forEach((userId, i) => w1.call(`u${i}-again`, userId, 1500));

    const live = 2 * users.length + shortLived.length + 1 + users.length;
    await until('every call on the live hosts began', async () =>
      [w1, w2].reduce((n, w) => n + w.messages.filter((m) => m.type === 'started' || m.type === 'no_balance' || m.type === 'failed').length, 0) === live);
    assert.deepEqual([w1, w2].flatMap((w) => w.of('failed')), [], 'no call failed to start');
    const started = w1.of('started').length + w2.of('started').length;
    await until('every call on the live hosts ended', async () => w1.of('ended').length + w2.of('ended').length === started);
    sessionsStarted = started + w3.of('started').length;
    await until('the dead host\'s calls were reaped', async () => {
      const { rows } = await db.sql.query<{ n: number }>(`select count(*)::int as n from public.voice_sessions where status = 'active'`);
      return rows[0]!.n === 0;
    });
    await until('the short-lived cards expired', async () => {
      const { rows } = await db.sql.query<{ n: number }>(
        `select count(*)::int as n from public.time_cards where status in ('active', 'pending') and expires_at <= now()`);
      return rows[0]!.n === 0;
    });
    // Two notification runs finished on each sidecar after the load: the second one began after it, scanned
    // what the load left and delivered what it found.
    const quiet = Date.now();
    await until('two notification runs on each sidecar after the load', async () =>
      sidecars.every((s) => s.jobRuns('notifications').filter((l) => l.time > quiet).length >= 2));
    await until('every notice delivered', async () => {
      const { rows } = await db.sql.query<{ n: number }>('select count(*)::int as n from public.notifications where delivered_at is null');
      return rows[0]!.n === 0;
    });
    for (const sidecar of sidecars) assert.equal(await sidecar.stop(), 0, `${sidecar.name} stopped cleanly on SIGTERM`);
  });

  it('answered every webhook delivery with 200 and applied each event once: one card per payment', async () => {
    assert.deepEqual(responses.filter((r) => r.status !== 200), []);
    const byEvent = new Map<string, typeof responses>();
    for (const r of responses) byEvent.set(r.eventId, [...(byEvent.get(r.eventId) ?? []), r]);
    for (const [eventId, answers] of byEvent) {
      const applied = answers.filter((a) => a.outcome !== 'duplicate_event');
      assert.equal(applied.length, 1, `${eventId} applied once: ${JSON.stringify(answers)}`);
    }
    const { rows: events } = await db.sql.query<{ n: number }>('select count(*)::int as n from public.stripe_events');
    assert.equal(events[0]!.n, byEvent.size);
    for (const purchase of purchases) {
      const { rows } = await db.sql.query<{ cards: number; grants: number; seconds: number }>(`
        select count(distinct c.id)::int as cards, count(l.id)::int as grants, sum(l.seconds)::int as seconds
          from public.payments p join public.time_cards c on c.payment_id = p.id
          join public.ledger_entries l on l.card_id = c.id and l.kind = 'grant'
         where p.stripe_checkout_session_id = $1`, [purchase.sessionId]);
      const tier = (await db.sql.query<{ s: number }>('select base_seconds + bonus_seconds as s from public.pricing_tiers where id = $1',
        [purchase.packageId])).rows[0]!.s;
      assert.deepEqual(rows[0], { cards: 1, grants: 1, seconds: tier }, `purchase ${purchase.sessionId}`);
    }
    const { rows: perUser } = await db.sql.query<{ n: number }>(
      `select count(*)::int as n from public.time_cards where user_id = $1 and source = 'adjustment'`, [scant]);
    assert.equal(perUser[0]!.n, 1, 'the retried admin grant made one card');
  });

  it('lost or doubled no second: every card equals its ledger, every call paid exactly what it used', async (t) => {
    assert.deepEqual(await ledgerMismatches(db.sql), []);
    const { rows: keys } = await db.sql.query<{ n: number; keys: number }>(
      'select count(*)::int as n, count(distinct idempotency_key)::int as keys from public.ledger_entries');
    assert.equal(keys[0]!.n, keys[0]!.keys, 'one ledger row per idempotency key');
    // Per call: the usage rows add up to what the call was billed; it was billed for all the time it ran (a
    // started second is paid), at most one increment more (a meter that raced the hang-up), and it never ran
    // past what was paid.
    const { rows: calls } = await db.sql.query<{ id: string; status: string; billed: number; used: number; ran: number }>(`
      select s.id, s.status, s.billed_seconds as billed,
             coalesce((select -sum(l.seconds) from public.ledger_entries l where l.session_id = s.id and l.kind = 'usage'), 0)::int as used,
             extract(epoch from s.ended_at - s.started_at)::float8 as ran
        from public.voice_sessions s`);
    assert.equal(calls.length, sessionsStarted);
    const { rows: ends } = await db.sql.query<{ status: string; end_reason: string; n: number }>(
      'select status, end_reason, count(*)::int as n from public.voice_sessions group by 1, 2 order by 1, 2');
    t.diagnostic(`calls: ${ends.map((e) => `${e.n} ${e.status}/${e.end_reason}`).join(', ')}`);
    for (const call of calls) {
      assert.notEqual(call.status, 'active');
      assert.equal(call.used, call.billed, `call ${call.id}: ledger = billed`);
      assert.ok(call.billed >= Math.ceil(call.ran - 1e-6), `call ${call.id} paid for the ${call.ran} s it ran (${call.billed})`);
      assert.ok(call.billed <= Math.ceil(call.ran - 1e-6) + 1, `call ${call.id} paid no more than it ran (${call.billed} for ${call.ran} s)`);
    }
    // The trial's 4 seconds were all used and no more: the call was cut off at its last paid second.
    const { rows: scantRows } = await db.sql.query<{ billed: number; status: string }>(
      'select billed_seconds as billed, status from public.voice_sessions where user_id = $1', [scant]);
    assert.deepEqual(scantRows, [{ billed: 4, status: 'cut_off' }]);
    // Per user: what the cards were given, less what went to calls, to expiry and back with the refund, is
    // what they hold; and what went to calls is what the calls were billed.
    const { rows: perUser } = await db.sql.query<{ user_id: string; remaining: number; given: number;
      used: number; expired: number; taken_back: number; other: number; }>(`
      select c.user_id,
             (select sum(remaining_seconds) from public.time_cards o where o.user_id = c.user_id)::int as remaining,
             coalesce(sum(l.seconds) filter (where l.kind = 'grant' or (l.kind = 'adjustment' and l.seconds > 0)), 0)::int as given,
             coalesce(-sum(l.seconds) filter (where l.kind = 'usage'), 0)::int as used,
             coalesce(-sum(l.seconds) filter (where l.kind = 'expiry'), 0)::int as expired,
             coalesce(-sum(l.seconds) filter (where l.kind = 'refund'), 0)::int as taken_back,
             count(*) filter (where l.kind not in ('grant', 'usage', 'expiry', 'refund', 'adjustment'))::int as other
        from public.time_cards c join public.ledger_entries l on l.card_id = c.id
       group by c.user_id`);
    assert.equal(perUser.length, users.length + shortLived.length + 1);
    for (const u of perUser) {
      const { rows } = await db.sql.query<{ billed: number }>(
        'select coalesce(sum(billed_seconds), 0)::int as billed from public.voice_sessions where user_id = $1', [u.user_id]);
      assert.equal(u.used, rows[0]!.billed, `user ${u.user_id}: usage = what the calls were billed`);
      assert.equal(u.other, 0);
      assert.equal(u.remaining, u.given - u.used - u.expired - u.taken_back, `user ${u.user_id}: nothing lost or made up`);
    }
    const refundedUser = perUser.find((u) => u.user_id === users[7])!;
    assert.ok(refundedUser.taken_back > 0, 'the refund took back unused seconds');
    assert.equal(perUser.filter((u) => u.taken_back > 0).length, 1);
  });

  it('did each job\'s work once across both sidecars, without a failure or a deadlock', async (t) => {
    const sum = (job: string, field: (result: any) => number) =>
      sidecars.flatMap((s) => s.jobRuns(job)).reduce((n, l) => n + field(l.result), 0);
    // Reaper: the dead host's calls, settled as abandoned by one sidecar or the other, never both.
    const { rows: reaped } = await db.sql.query<{ n: number; crashed: number }>(`
      select count(*)::int as n,
             count(*) filter (where external_key like 'w3-pooled-doomed:%')::int as crashed
        from public.voice_sessions where status = 'abandoned'`);
    assert.equal(reaped[0]!.crashed, crashedCalls.length);
    assert.equal(sum('reap_sessions', (r) => r.reaped), reaped[0]!.n);
    // Expiry: each short-lived card expired once, its unused seconds forfeited once.
    const { rows: expired } = await db.sql.query<{ cards: number; rows: number; forfeited: number }>(`
      select count(distinct c.id)::int as cards, count(l.id)::int as rows, coalesce(-sum(l.seconds), 0)::int as forfeited
        from public.time_cards c join public.ledger_entries l on l.card_id = c.id and l.kind = 'expiry'
       where c.status = 'expired'`);
    assert.equal(expired[0]!.cards, shortLived.length);
    assert.equal(expired[0]!.rows, shortLived.length);
    assert.equal(sum('expire_cards', (r) => r.expired), shortLived.length);
    assert.equal(sum('expire_cards', (r) => r.forfeitedSeconds), expired[0]!.forfeited);
    // Notifications: each delivered once, by one of the sidecars, carrying its id as the idempotency key.
    const { rows: notices } = await db.sql.query<{ id: string; kind: string }>('select id::text, kind from public.notifications');
    assert.ok(notices.some((n) => n.kind === 'purchase') && notices.some((n) => n.kind === 'low_balance')
      && notices.some((n) => n.kind === 'balance_exhausted'), JSON.stringify(notices.map((n) => n.kind)));
    assert.equal(received.length, notices.length);
    assert.deepEqual(new Set(received.map((r) => r.id)), new Set(notices.map((n) => n.id)));
    assert.ok(received.every((r) => r.idempotencyKey === r.id));
    assert.equal(sum('notifications', (r) => r.sent?.delivered ?? 0), notices.length);
    // Both sidecars ran every job, and neither logged a failure (a deadlock, a refused statement, a 500).
    for (const sidecar of sidecars) {
      for (const job of ['expire_cards', 'reap_sessions', 'notifications']) assert.ok(sidecar.jobRuns(job).length > 0, `${sidecar.name} ran ${job}`);
      assert.deepEqual(sidecar.lines.filter((l) => l.level >= 50), [], `${sidecar.name} logged no error`);
    }
    // Who did what (informative: which sidecar wins a row is up to the race).
    for (const sidecar of sidecars) {
      const of = (job: string, field: (result: any) => number) => sidecar.jobRuns(job).reduce((n, l) => n + field(l.result), 0);
      t.diagnostic(`sidecar ${sidecar.name}: reaped ${of('reap_sessions', (r) => r.reaped)}, expired ${of('expire_cards', (r) => r.expired)}, ` +
        `delivered ${of('notifications', (r) => r.sent?.delivered ?? 0)}, webhooks applied ` +
        `${responses.filter((r) => r.sidecar === sidecar.name && r.outcome !== 'duplicate_event').length}`);
    }
    const { rows: stats } = await db.sql.query<{ deadlocks: number }>(
      'select deadlocks::int from pg_stat_database where datname = current_database()');
    assert.equal(stats[0]!.deadlocks, 0);
    // Sidecar a was left with prepared statements on: it found out it is behind a pooler, said so and went on.
    assert.ok(sidecars[A]!.lines.some((l) => l.level === 40 && /transaction-mode pooler/.test(l.msg)));
  });
});

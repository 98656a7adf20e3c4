// Issue 11's meter event figures: N outbox rows delivered by the sender (src/payments/meter-events.ts, the real
// `stripe` client) running as a child process (bench/meter-sender.ts) to a loopback Stripe meter-events endpoint
// that answers as Stripe does (200 with the billing.meter_event; 400 "An event already exists with identifier"
// for an identifier it has seen). Two runs of N fresh rows each:
//   1. throughput: one sender drains the outbox; events/s from its first claim to its last report;
//   2. crash: a sender is killed with SIGKILL mid-run, a new one is started and drains the rest (the dead one's
//      leased rows come back after their lease). Every identifier must have reached the endpoint (none lost)
//      and been accepted once (none doubled), with the outbox all delivered and the seconds summing up.
// Standalone: node --import tsx bench/meter-events.ts (BENCH_METER_EVENTS=N, default 20,000).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createPostgresDatabase, newUserId, type TestDatabase } from '../tests/helpers/test-db.ts';
import { mark, Report } from './report.ts';
import { round } from './stats.ts';

export const METER_TARGETS = { eventsPerSecond: 1000 };

const SENDER = { batch: 500, concurrency: 32, leaseSeconds: 5, timeoutMs: 2000 };
const CHILD = fileURLToPath(new URL('./meter-sender.ts', import.meta.url));
const log = (message: string) => process.stderr.write(`[bench] ${message}\n`);

/** A loopback POST /v1/billing/meter_events that remembers every identifier, as Stripe dedupes on it. */
async function startMeterEndpoint() {
  const accepted = new Map<string, number>();
  let requests = 0;
  let refusedRepeats = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const send = (status: number, body: unknown) => {
        const text = JSON.stringify(body);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'request-id': `req_${requests}` });
        res.end(text);
      };
      if (req.method !== 'POST' || req.url !== '/v1/billing/meter_events') {
        send(404, { error: { type: 'invalid_request_error', message: `Unrecognized request URL (${req.method}: ${req.url}).` } });
        return;
      }
      requests++;
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const identifier = form.get('identifier');
      const value = Number(form.get('payload[value]'));
      if (!identifier || !form.get('event_name') || !form.get('payload[stripe_customer_id]') || !Number.isInteger(value)) {
        send(400, { error: { type: 'invalid_request_error', message: 'Missing required param.' } });
        return;
      }
      if (accepted.has(identifier)) {
        refusedRepeats++;
        send(400, { error: { type: 'invalid_request_error', message: `An event already exists with identifier ${identifier}.` } });
        return;
      }
      accepted.set(identifier, value);
      const created = Math.floor(Date.now() / 1000);
      send(200, { object: 'billing.meter_event', created, event_name: form.get('event_name'), identifier, livemode: false,
        payload: { stripe_customer_id: form.get('payload[stripe_customer_id]'), value: String(value) },
        timestamp: Number(form.get('timestamp') ?? created) });
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted,
    requests: () => requests,
    refusedRepeats: () => refusedRepeats,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
type MeterEndpoint = Awaited<ReturnType<typeof startMeterEndpoint>>;

/** N usage charges of one postpaid user (the seeded payg plan), each with its outbox row, due now. */
async function seedOutbox(db: TestDatabase, n: number, tag: string): Promise<void> {
  const userId = newUserId();
  await db.sql.query(`
    with plan as (
      insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end, spending_cap_cents)
      select $1::uuid, p.id, 'active', now() - interval '1 day', now() + interval '29 days', p.max_cap_cents
        from public.plans p where p.key = 'payg' and p.status = 'active'
      returning id, plan_id, current_period_start
    ), session as (
      insert into public.voice_sessions (user_id, external_key, room_name, status, started_at, last_metered_at, ended_at,
                                         billed_seconds, increment_seconds, minimum_seconds)
      values ($1::uuid, 'bench-meter:' || $3::text, 'bench', 'ended', now() - interval '1 hour', now(), now(), 60 * $2::int, 60, 0)
      returning id
    ), charged as (
      insert into public.usage_charges (user_id, user_plan_id, plan_id, session_id, period_start, included_seconds, rated_seconds,
                                        amount_exact, currency, identifier, created_at)
      select $1::uuid, plan.id, plan.plan_id, session.id, plan.current_period_start, 0, 60 + i % 7, (60 + i % 7) * 5.0 / 60, 'usd',
             session.id::text || ':' || i::text, now() - interval '30 minutes'
        from plan, session, generate_series(1, $2::int) i
      returning id, identifier, included_seconds + rated_seconds as seconds, created_at
    )
    insert into public.meter_event_outbox (usage_charge_id, identifier, event_name, stripe_customer_id, value_seconds, occurred_at, next_attempt_at)
    select c.id, c.identifier, 'mindbot_voice_seconds', 'cus_bench_' || $3::text, c.seconds, c.created_at, now() - interval '1 second'
      from charged c`, [userId, n, tag]);
}

function startSender(url: string, stripeUrl: string): { child: ChildProcess; result: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }> } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], {
    env: { ...process.env, BENCH_DB_URL: url, BENCH_STRIPE_URL: stripeUrl, BENCH_BATCH: String(SENDER.batch),
      BENCH_CONCURRENCY: String(SENDER.concurrency), BENCH_LEASE_SECONDS: String(SENDER.leaseSeconds), BENCH_TIMEOUT_MS: String(SENDER.timeoutMs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const result = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, out, err }));
  });
  return { child, result };
}

interface SenderReport { delivered: number; alreadyInStripe: number; failed: number; seconds: number; sendingSeconds: number }

async function finished(run: ReturnType<typeof startSender>, what: string): Promise<SenderReport> {
  const timeout = setTimeout(() => run.child.kill('SIGKILL'), 330_000);
  const { code, signal, out, err } = await run.result.finally(() => clearTimeout(timeout));
  if (code !== 0) throw new Error(`${what} exited with ${code ?? signal}: ${err.slice(-2000)}`);
  return JSON.parse(out.trim().split('\n').at(-1)!) as SenderReport;
}

/** What the outbox and the endpoint say about the rows of `tag`'s customer. */
async function check(db: TestDatabase, endpoint: MeterEndpoint, customer: string) {
  const { rows } = await db.sql.query<{ identifier: string; value_seconds: number; delivered: boolean }>(
    `select identifier, value_seconds, delivered_at is not null as delivered from public.meter_event_outbox where stripe_customer_id = $1`, [customer]);
  const lost = rows.filter((r) => !endpoint.accepted.has(r.identifier)).length;
  const undelivered = rows.filter((r) => !r.delivered).length;
  const ourSeconds = rows.reduce((a, r) => a + r.value_seconds, 0);
  const theirSeconds = rows.reduce((a, r) => a + (endpoint.accepted.get(r.identifier) ?? 0), 0);
  return { rows: rows.length, lost, undelivered, ourSeconds, theirSeconds };
}

export async function measureMeterEvents(db: TestDatabase, n = 20_000) {
  if (!db.url) throw new Error('the meter events bench needs a PostgreSQL database');
  const endpoint = await startMeterEndpoint();
  try {
    // 1. throughput
    log(`meter events: ${n.toLocaleString('en-US')} outbox rows, one sender process`);
    await seedOutbox(db, n, 'throughput');
    await db.sql.exec('vacuum analyze public.meter_event_outbox');
    const clean = await finished(startSender(db.url, endpoint.url), 'the sender');
    const throughput = await check(db, endpoint, 'cus_bench_throughput');
    const perSecond = clean.delivered / Math.max(clean.sendingSeconds, 1e-9);

    // 2. kill -9 mid-run, then a new sender
    log(`meter events: ${n.toLocaleString('en-US')} more rows, sender killed with SIGKILL mid-run, then restarted`);
    await seedOutbox(db, n, 'crash');
    const acceptedBefore = endpoint.accepted.size;
    const first = startSender(db.url, endpoint.url);
    // Mid-batch: some events are in Stripe but not yet reported, as a real crash leaves them.
    const killAt = acceptedBefore + Math.floor(n / 2) + Math.floor(SENDER.batch / 3);
    const waitUntil = Date.now() + 120_000;
    while (endpoint.accepted.size < killAt && Date.now() < waitUntil && first.child.exitCode === null) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    first.child.kill('SIGKILL');
    const killed = await first.result;
    const sentBeforeKill = endpoint.accepted.size - acceptedBefore;
    const { rows: leasedRows } = await db.sql.query<{ n: number }>(
      `select count(*)::int as n from public.meter_event_outbox where delivered_at is null and leased_until > now()`);
    const leasedAtKill = leasedRows[0]!.n;
    const repeatsBefore = endpoint.refusedRepeats();
    const second = await finished(startSender(db.url, endpoint.url), 'the restarted sender');
    const crash = await check(db, endpoint, 'cus_bench_crash');
    const refusedRepeats = endpoint.refusedRepeats() - repeatsBefore;
    // The endpoint, like Stripe, accepts an identifier once and refuses repeats; what would count twice is an
    // accepted event that is not one of our rows, and seconds that do not sum to ours.
    const doubled = endpoint.accepted.size - (throughput.rows + crash.rows);
    const malformed = endpoint.requests() - endpoint.accepted.size - endpoint.refusedRepeats();
    const killedMidRun = killed.signal === 'SIGKILL' && sentBeforeKill > 0 && sentBeforeKill < n;

    const noneLost = throughput.lost === 0 && crash.lost === 0 && throughput.undelivered === 0 && crash.undelivered === 0
      && throughput.rows === n && crash.rows === n;
    const noneDoubled = doubled === 0 && malformed === 0 && throughput.ourSeconds === throughput.theirSeconds && crash.ourSeconds === crash.theirSeconds
      && endpoint.accepted.size === 2 * n;
    const targets = {
      meter_events_at_least_1000_per_s: { value: round(perSecond, 1), limit: METER_TARGETS.eventsPerSecond, pass: perSecond >= METER_TARGETS.eventsPerSecond },
      meter_events_none_lost_or_doubled_after_kill: {
        value: crash.lost + crash.undelivered + throughput.lost + Math.abs(doubled), limit: 0,
        pass: noneLost && noneDoubled && killedMidRun && clean.failed === 0 && second.failed === 0,
      },
    };
    const figures = {
      events: n,
      per_s: round(perSecond, 1),
      sender_seconds: round(clean.sendingSeconds, 2),
      batch: SENDER.batch, concurrency: SENDER.concurrency, lease_seconds: SENDER.leaseSeconds,
      sent_before_kill: sentBeforeKill,
      leased_at_kill: leasedAtKill,
      killed_mid_run: killedMidRun,
      after_restart_delivered: second.delivered,
      after_restart_already_in_stripe: second.alreadyInStripe,
      refused_repeats: refusedRepeats,
      lost: crash.lost + throughput.lost,
      undelivered: crash.undelivered + throughput.undelivered,
      doubled,
      malformed_requests: malformed,
      our_seconds: crash.ourSeconds,
      endpoint_seconds: crash.theirSeconds,
    };
    const report = (r: Report) => {
      r.section(`Meter events to a loopback Stripe endpoint (sender as a child process, batch ${SENDER.batch}, ${SENDER.concurrency} in flight)`)
        .row(`${n.toLocaleString('en-US')} events delivered`, perSecond, '/s', `${round(clean.sendingSeconds, 2)} s from the first claim to the last report`)
        .row('killed with SIGKILL after', sentBeforeKill, 'events', `of ${n.toLocaleString('en-US')}; ${leasedAtKill} rows still leased to the dead sender`)
        .row('delivered by the restarted sender', second.delivered, '', `${second.alreadyInStripe} of them refused by the endpoint as known identifiers (sent before the kill, not reported)`)
        .row('identifiers never received (lost)', crash.lost + throughput.lost, '', `outbox rows undelivered: ${crash.undelivered + throughput.undelivered}`)
        .row('events accepted beyond our rows (doubled)', doubled, '', `repeated identifiers refused as Stripe does: ${endpoint.refusedRepeats()}; malformed requests: ${malformed}`)
        .row('seconds: outbox / endpoint', `${crash.ourSeconds.toLocaleString('en-US')} / ${crash.theirSeconds.toLocaleString('en-US')}`, 's', 'the killed run');
    };
    const reportTargets = (r: Report) => {
      r.row('meter events >= 1,000 per second', perSecond, '/s', mark(targets.meter_events_at_least_1000_per_s.pass))
        .row('meter events none lost or doubled after kill -9', targets.meter_events_none_lost_or_doubled_after_kill.value, '',
          mark(targets.meter_events_none_lost_or_doubled_after_kill.pass));
    };
    return { figures, targets, report, reportTargets };
  } finally {
    await endpoint.close();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Math.max(100, Math.round(Number(process.env.BENCH_METER_EVENTS ?? 20_000)) || 20_000);
  const db = await createPostgresDatabase();
  try {
    const result = await measureMeterEvents(db, n);
    const r = new Report();
    result.report(r);
    r.section('Targets');
    result.reportTargets(r);
    console.log(r.render());
    console.log(JSON.stringify({ meter_events: result.figures, targets: result.targets }));
    process.exitCode = Object.values(result.targets).every((t) => t.pass) ? 0 : 1;
  } finally {
    await db.close();
  }
}

// The sidecar through its real HTTP stack, in a process of its own, loaded over loopback by autocannon:
// verified Stripe webhooks per second (each a distinct paid checkout that grants a card) and GET /time/balance.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import autocannon from 'autocannon';
import Stripe from 'stripe';
import { signLocalToken } from '../src/auth/verify-token.ts';
import type { TestDatabase } from '../tests/helpers/test-db.ts';
import type { Report } from './report.ts';

const WEBHOOK_SECRET = 'whsec_bench_sidecar';
const JWT_SECRET = 'bench-jwt-secret-0123456789-0123456789';
export const SIDECAR_TARGETS = { webhooksPerSecond: 1000, webhookP99Ms: 20 };
// Enough to keep both cores busy; more only queues requests and stretches the tail.
const CONNECTIONS = 8;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startSidecarProcess(db: TestDatabase): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir=tmp-scratch/prof'] : []), '--import', 'tsx', 'src/sidecar/main.ts'], {
    env: {
      ...process.env, DATABASE_URL: db.url!, PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production',
      LOG_LEVEL: 'warn', JOBS_ENABLED: 'false', STRIPE_SECRET_KEY: 'sk_test_bench', STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
      JWT_SECRET, DB_POOL_MAX: '16',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 150; i++) {
    if (child.exitCode !== null) throw new Error(`the sidecar exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, child };
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 200));
  }
  child.kill('SIGKILL');
  throw new Error('the sidecar did not start');
}

function signedCheckouts(count: number): { body: string; signature: string }[] {
  const stripe = new Stripe('sk_test_bench');
  return Array.from({ length: count }, (_, i) => {
    const userId = randomUUID();
    const body = JSON.stringify({
      id: `evt_bench_${i}_${randomUUID().slice(0, 8)}`, object: 'event', type: 'checkout.session.completed',
      api_version: '2026-10-28.endive', created: Math.floor(Date.now() / 1000), livemode: false,
      data: { object: {
        id: `cs_bench_${i}`, object: 'checkout.session', mode: 'payment', payment_status: 'paid', amount_total: 999,
        currency: 'usd', client_reference_id: userId, customer: null, payment_intent: `pi_bench_${i}`,
        metadata: { user_id: userId, package_id: 'starter_1h', gift: 'false' },
      } },
    });
    return { body, signature: stripe.webhooks.generateTestHeaderString({ payload: body, secret: WEBHOOK_SECRET }) };
  });
}

function load(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

export async function measureSidecar(db: TestDatabase, seconds: number) {
  const { url, child } = await startSidecarProcess(db);
  try {
    // Enough distinct events that none repeats within the run.
    const events = signedCheckouts(Math.max(5000, seconds * 4000));
    let next = 0;
    const webhookRequest = () => {
      const event = events[next++ % events.length]!;
      return { method: 'POST' as const, path: '/webhooks/stripe', body: event.body,
        headers: { 'content-type': 'application/json', 'stripe-signature': event.signature } };
    };
    await load({ url, connections: 8, amount: 300, requests: [{ setupRequest: (req) => ({ ...req, ...webhookRequest() }) }] });
    // Like every other throughput figure: start from a checkpoint, not in the middle of the earlier phases' one.
    await db.sql.exec('checkpoint');
    const webhooks = await load({
      url, connections: CONNECTIONS, duration: seconds, requests: [{ setupRequest: (req) => ({ ...req, ...webhookRequest() }) }],
    });
    // Counted in one statement, after the last in-flight request had time to finish.
    await new Promise((r) => setTimeout(r, 500));
    const { rows: [counts] } = await db.sql.query<{ payments: number; cards: number }>(
      `select count(*)::int as payments, count(c.id)::int as cards
         from public.payments p left join public.time_cards c on c.payment_id = p.id
        where p.stripe_checkout_session_id like 'cs_bench_%'`);

    const userId = randomUUID();
    await db.sql.query(`select public.grant_time_card($1, 'basic_5h', null, $2)`, [userId, `bench:${userId}`]);
    const token = await signLocalToken({ userId }, JWT_SECRET);
    const balance = await load({ url: `${url}/time/balance`, connections: CONNECTIONS, duration: Math.max(3, Math.round(seconds / 2)),
      headers: { authorization: `Bearer ${token}` } });

    const figures = {
      webhooks_per_s: webhooks.requests.average,
      webhook_p50_ms: webhooks.latency.p50,
      webhook_p99_ms: webhooks.latency.p99,
      webhook_non_2xx: webhooks.non2xx,
      webhook_errors: webhooks.errors,
      webhook_requests: webhooks.requests.total,
      payments_recorded: counts!.payments,
      cards_granted: counts!.cards,
      balance_per_s: balance.requests.average,
      balance_p50_ms: balance.latency.p50,
      balance_p99_ms: balance.latency.p99,
      balance_non_2xx: balance.non2xx,
    };
    const targets = {
      webhooks_at_least_1000_per_s: { value: figures.webhooks_per_s, limit: SIDECAR_TARGETS.webhooksPerSecond,
        pass: figures.webhooks_per_s >= SIDECAR_TARGETS.webhooksPerSecond },
      webhook_p99_under_20ms: { value: figures.webhook_p99_ms, limit: SIDECAR_TARGETS.webhookP99Ms,
        pass: figures.webhook_p99_ms < SIDECAR_TARGETS.webhookP99Ms },
      every_webhook_granted_once: { value: figures.cards_granted, limit: figures.payments_recorded,
        pass: figures.webhook_non_2xx === 0 && figures.cards_granted === figures.payments_recorded },
    };
    const report = (r: Report) => {
      r.section(`Sidecar over HTTP (own process, autocannon on loopback, ${CONNECTIONS} connections)`)
        .row('verified webhooks per second', figures.webhooks_per_s, '/s', 'distinct paid checkouts, each grants a card')
        .row('webhook p50 / p99', `${figures.webhook_p50_ms} / ${figures.webhook_p99_ms}`, 'ms')
        .row('webhook non-2xx / errors', `${figures.webhook_non_2xx} / ${figures.webhook_errors}`, '')
        .row('payments recorded / cards granted', `${figures.payments_recorded} / ${figures.cards_granted}`, '', 'incl. warm-up')
        .row('GET /time/balance per second', figures.balance_per_s, '/s')
        .row('GET /time/balance p50 / p99', `${figures.balance_p50_ms} / ${figures.balance_p99_ms}`, 'ms');
    };
    return { figures, targets, report };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

// The meter event sender as a process of its own, for bench/meter-events.ts to time and to kill -9 mid-run.
// It drains the outbox through src/payments/meter-events.ts and the real `stripe` client, then prints one JSON
// line (its own timings) and exits 0. Rows another (killed) sender leased wait for their lease to end.
// Environment: BENCH_DB_URL, BENCH_STRIPE_URL, BENCH_BATCH, BENCH_CONCURRENCY, BENCH_LEASE_SECONDS, BENCH_TIMEOUT_MS.
import pg from 'pg';
import pino from 'pino';
import Stripe from 'stripe';
import { pgPoolClient } from '../src/billing/sql-client.ts';
import { sqlTransport } from '../src/billing/sql-transport.ts';
import { RpcBillingStore } from '../src/billing/store.ts';
import { sendDueMeterEvents } from '../src/payments/meter-events.ts';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};
const stripeUrl = new URL(env('BENCH_STRIPE_URL'));
const pool = new pg.Pool({ connectionString: env('BENCH_DB_URL'), max: 2 });
pool.on('error', () => {});
const store = new RpcBillingStore(sqlTransport(pgPoolClient(pool), { preparedStatements: true }));
const stripe = new Stripe('sk_test_bench', {
  host: stripeUrl.hostname, port: Number(stripeUrl.port), protocol: 'http', telemetry: false, maxNetworkRetries: 0,
});
const options = {
  batchSize: Number(env('BENCH_BATCH')), concurrency: Number(env('BENCH_CONCURRENCY')),
  leaseSeconds: Number(env('BENCH_LEASE_SECONDS')), timeoutMs: Number(env('BENCH_TIMEOUT_MS')), maxBatches: 1_000_000,
  owner: `bench-sender:${process.pid}`,
};
const log = pino({ level: 'warn' }, process.stderr);

const started = performance.now();
let firstSentAt: number | null = null;
let delivered = 0;
let alreadyInStripe = 0;
let failed = 0;
// Bounded: a bench that cannot drain its outbox in this long has failed anyway.
const deadline = Date.now() + 300_000;
for (;;) {
  if (Date.now() > deadline) throw new Error('the outbox did not drain within 300 s');
  const runStarted = performance.now();
  const run = await sendDueMeterEvents(store, stripe, log, options);
  if (run.claimed > 0) firstSentAt ??= runStarted;
  delivered += run.delivered;
  alreadyInStripe += run.alreadyInStripe;
  failed += run.failed;
  if (run.claimed > 0) continue;
  const stats = await store.meterOutboxStats();
  if (stats.pending === 0) break;
  // Leased by a sender that died: due again when the lease ends.
  await new Promise((resolve) => setTimeout(resolve, 100));
}
const finished = performance.now();
process.stdout.write(`${JSON.stringify({ delivered, alreadyInStripe, failed, seconds: (finished - started) / 1000,
  sendingSeconds: (finished - (firstSentAt ?? finished)) / 1000 })}\n`);
await store.close();

// The meter event outbox (migration 019, src/payments/meter-events.ts) delivered to the fake Stripe through the
// real `stripe` client, and the reconciliation of period totals with Stripe's meter event summaries
// (src/payments/meter-reconciliation.ts). Usage charges and outbox rows are written here directly, as the SQL
// that charges calls writes them (docs/plans.md): one outbox row per usage charge, same identifier.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import type Stripe from 'stripe';
import type { BillingStore } from '../src/billing/store.ts';
import { sendDueMeterEvents, type MeterSenderOptions } from '../src/payments/meter-events.ts';
import { reconcileMeterUsage, VOICE_METER_EVENT_NAME } from '../src/payments/meter-reconciliation.ts';
import { startFakeStripeBilling, type FakeBilling } from './helpers/fake-stripe-billing.ts';
import type { FakeStripe } from './helpers/fake-stripe.ts';
import { parseConfig } from '../src/config.ts';
import { startBackgroundJobs, type JobSettings } from '../src/sidecar/jobs.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const log = pino({ level: 'silent' });
// The fake Stripe's clock and ours start together, on a whole minute (Stripe's summaries take whole minutes).
const START = Math.floor(Date.now() / 1000 / 3600) * 3600 - 2 * 3600;
const PERIOD_START = START - 3600;
const PERIOD_END = PERIOD_START + 30 * 86400;

const SENDER: MeterSenderOptions = { batchSize: 50, concurrency: 8, leaseSeconds: 60, timeoutMs: 5000 };

describe('meter event outbox and reconciliation (PostgreSQL)', () => {
  let db: TestDatabase;
  let fake: FakeStripe & { billing: FakeBilling };
  let stripe: Stripe;
  let clock: TestClock;
  let store: BillingStore;
  let meterId: string;

  before(async () => {
    db = await createPostgresDatabase();
    fake = await startFakeStripeBilling({ billing: { startTime: START } });
    stripe = fake.client();
  });
  after(async () => {
    await fake?.close();
    await db?.close();
  });
  beforeEach(async () => {
    fake.reset();
    // Each test starts with an empty outbox; usage_charges refuses a delete, so its guard is set aside here.
    await db.sql.exec(`
      begin;
      set local session_replication_role = replica;
      delete from public.meter_drift; delete from public.meter_event_outbox; delete from public.usage_charges;
      delete from public.user_plans; delete from public.stripe_customers;
      commit;`);
    clock = new TestClock(new Date(START * 1000));
    store = db.store(clock.now);
    const meter = await stripe.billing.meters.create({
      display_name: 'MindBot voice seconds', event_name: VOICE_METER_EVENT_NAME, default_aggregation: { formula: 'sum' },
      customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' }, value_settings: { event_payload_key: 'value' },
    });
    meterId = meter.id;
  });

  /** A payg subscriber: a Stripe customer and a current user plan on the seeded 'payg' plan. */
  async function subscriber(): Promise<{ userId: string; userPlanId: string; customer: string }> {
    const userId = newUserId();
    const customer = (await stripe.customers.create({ email: `${userId}@example.test` })).id;
    const { rows } = await db.sql.query<{ id: string }>(
      `insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end, spending_cap_cents)
       select $1, p.id, 'active', to_timestamp($2), to_timestamp($3), p.default_cap_cents
         from public.plans p where p.key = 'payg' and p.status = 'active'
       returning id`, [userId, PERIOD_START, PERIOD_END]);
    await db.sql.query('insert into public.stripe_customers (user_id, customer_id) values ($1, $2)', [userId, customer]);
    return { userId, userPlanId: rows[0]!.id, customer };
  }

  /** `count` charges of `seconds` each on one call, the i-th at `at + i`, each with its outbox row. */
  async function charges(who: { userId: string; userPlanId: string; customer: string }, count: number, seconds = 60, at = START - 1800): Promise<string[]> {
    const { rows } = await db.sql.query<{ identifier: string }>(`
      with session as (
        insert into public.voice_sessions (user_id, external_key, room_name, status, started_at, last_metered_at, ended_at,
                                           billed_seconds, increment_seconds, minimum_seconds)
        values ($1::uuid, gen_random_uuid()::text, 'room', 'ended', to_timestamp($5::bigint), to_timestamp($5::bigint), to_timestamp($5::bigint + $4::int), $3::int * $4::int, 60, 0)
        returning id
      ), charged as (
        insert into public.usage_charges (user_id, user_plan_id, plan_id, session_id, period_start, included_seconds,
                                          rated_seconds, amount_exact, currency, identifier, created_at)
        select $1::uuid, up.id, up.plan_id, s.id, up.current_period_start, 0, $4::int, $4::int * 5.0 / 60, 'usd',
               s.id::text || ':' || ((i - 1) * $4::int)::text, to_timestamp($5::bigint + i)
          from session s, public.user_plans up, generate_series(1, $3::int) i
         where up.id = $2::uuid
        returning id, identifier, rated_seconds + included_seconds as seconds, created_at
      )
      insert into public.meter_event_outbox (usage_charge_id, identifier, event_name, stripe_customer_id, value_seconds,
                                             occurred_at, next_attempt_at)
      select c.id, c.identifier, 'mindbot_voice_seconds', $6::text, c.seconds, c.created_at, c.created_at from charged c
      returning identifier`, [who.userId, who.userPlanId, count, seconds, at, who.customer]);
    return rows.map((r) => r.identifier);
  }

  const outbox = async () => (await db.sql.query<{
    identifier: string; attempts: number; delivered: boolean; next_in: number | null; last_error: string | null; lease_owner: string | null;
  }>(`select identifier, attempts, delivered_at is not null as delivered, lease_owner, last_error,
             extract(epoch from next_attempt_at - $1::timestamptz)::int as next_in
        from public.meter_event_outbox order by usage_charge_id`, [clock.now()])).rows;
  const stripeSeconds = (customer: string) => fake.billing.usage(meterId, customer, PERIOD_START, PERIOD_END);
  const stripeIdentifiers = () => fake.billing.meterEvents().map((r) => r.event.identifier);

  it('delivers every due event as a Stripe meter event, with its identifier, customer, value and timestamp', async () => {
    const who = await subscriber();
    const ids = await charges(who, 120, 60);
    const sent = await sendDueMeterEvents(store, stripe, log, SENDER);
    assert.deepEqual({ claimed: sent.claimed, delivered: sent.delivered, failed: sent.failed, alreadyInStripe: sent.alreadyInStripe },
      { claimed: 120, delivered: 120, failed: 0, alreadyInStripe: 0 });
    assert.deepEqual(stripeIdentifiers().sort(), [...ids].sort());
    assert.deepEqual(fake.billing.meterEventErrors(), []);
    const first = fake.billing.meterEvents().find((r) => r.event.identifier === ids[0])!;
    assert.deepEqual(first.event.payload, { stripe_customer_id: who.customer, value: '60' });
    assert.equal(first.event.timestamp, START - 1800 + 1);
    assert.equal(stripeSeconds(who.customer), 120 * 60);
    assert.ok((await outbox()).every((r) => r.delivered && r.lease_owner === null && r.attempts === 0));
    // Nothing is due any more: a second run sends nothing.
    const again = await sendDueMeterEvents(store, stripe, log, SENDER);
    assert.equal(again.claimed, 0);
    assert.equal(fake.requests('POST /v1/billing/meter_events').length, 120);
    assert.deepEqual(await store.meterOutboxStats(), { pending: 0, leased: 0, retrying: 0, delivered: 120, oldest_pending_seconds: 0, drift_open: 0 });
  });

  it("counts Stripe's refusal of a known identifier as delivered (the send before a crash went through), never twice", async () => {
    const who = await subscriber();
    const ids = await charges(who, 3, 30);
    // What a sender that died between Stripe's answer and its report left behind: Stripe has the event.
    await stripe.billing.meterEvents.create({ event_name: VOICE_METER_EVENT_NAME, identifier: ids[1]!, timestamp: START - 1800 + 2,
      payload: { stripe_customer_id: who.customer, value: '30' } });
    const sent = await sendDueMeterEvents(store, stripe, log, SENDER);
    assert.equal(sent.delivered, 3);
    assert.equal(sent.alreadyInStripe, 1);
    assert.equal(sent.failed, 0);
    assert.ok((await outbox()).every((r) => r.delivered && r.last_error === null));
    assert.equal(stripeIdentifiers().filter((id) => id === ids[1]).length, 1);
    assert.equal(stripeSeconds(who.customer), 90);
  });

  it('retries a failed delivery with exponential backoff (5 s doubling, at most an hour) and never drops it', async () => {
    const who = await subscriber();
    await charges(who, 4, 60);
    fake.failNext(4, 500, { path: 'POST /v1/billing/meter_events' });
    const first = await sendDueMeterEvents(store, stripe, log, SENDER);
    assert.deepEqual({ delivered: first.delivered, failed: first.failed }, { delivered: 0, failed: 4 });
    let rows = await outbox();
    assert.ok(rows.every((r) => !r.delivered && r.attempts === 1 && r.next_in === 5 && r.lease_owner === null), JSON.stringify(rows));
    assert.match(rows[0]!.last_error!, /HTTP 500/);
    // Not due before its backoff ends.
    clock.advance(4);
    assert.equal((await sendDueMeterEvents(store, stripe, log, SENDER)).claimed, 0);
    // Due again; this time a lost answer (the request reached Stripe, the answer did not) then a refusal.
    clock.advance(1);
    fake.failNext(2, 502, { path: 'POST /v1/billing/meter_events', when: 'after' });
    const second = await sendDueMeterEvents(store, stripe, log, { ...SENDER, concurrency: 1 });
    assert.deepEqual({ delivered: second.delivered, failed: second.failed }, { delivered: 2, failed: 2 });
    rows = await outbox();
    assert.deepEqual(rows.filter((r) => !r.delivered).map((r) => [r.attempts, r.next_in]), [[2, 10], [2, 10]]);
    // The lost answers' events are in Stripe already: the retry is refused as a known identifier and counted once.
    clock.advance(10);
    const third = await sendDueMeterEvents(store, stripe, log, SENDER);
    assert.deepEqual({ delivered: third.delivered, alreadyInStripe: third.alreadyInStripe }, { delivered: 2, alreadyInStripe: 2 });
    assert.equal(stripeSeconds(who.customer), 240);
    assert.equal(new Set(stripeIdentifiers()).size, stripeIdentifiers().length);
    const { rows: backoff } = await db.sql.query<{ s: number[] }>(
      'select array_agg(billing_private.meter_event_retry_seconds(n) order by n) as s from generate_series(1, 12) n');
    assert.deepEqual(backoff[0]!.s, [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
    const { rows: far } = await db.sql.query<{ s: number }>('select billing_private.meter_event_retry_seconds(1000) as s');
    assert.equal(far[0]!.s, 3600);
  });

  it('gives the rows of a sender that died holding their lease to another sender once the lease ends', async () => {
    const who = await subscriber();
    const ids = await charges(who, 10, 60);
    // A sender claims and dies: no report.
    const abandoned = await store.claimMeterEvents({ limit: 6, leaseSeconds: 60, owner: 'dead-sender' });
    assert.equal(abandoned.length, 6);
    const live = await sendDueMeterEvents(store, stripe, log, { ...SENDER, owner: 'live-sender' });
    assert.equal(live.delivered, 4);
    clock.advance(59);
    assert.equal((await sendDueMeterEvents(store, stripe, log, { ...SENDER, owner: 'live-sender' })).claimed, 0);
    clock.advance(1);
    const after = await sendDueMeterEvents(store, stripe, log, { ...SENDER, owner: 'live-sender' });
    assert.equal(after.delivered, 6);
    // The dead sender's late word changes nothing: a failure is ignored without the lease, delivered stays delivered.
    const late = await store.reportMeterEvents({ owner: 'dead-sender', results: abandoned.map((e) => ({ identifier: e.identifier, delivered: false, error: 'late' })) });
    assert.deepEqual(late, { delivered: 0, failed: 0, ignored: 6 });
    assert.ok((await outbox()).every((r) => r.delivered && r.attempts === 0));
    assert.deepEqual(stripeIdentifiers().sort(), [...ids].sort());
  });

  it('a failure reported by a sender whose lease passed to another does not push the row back', async () => {
    const who = await subscriber();
    await charges(who, 1, 60);
    const [event] = await store.claimMeterEvents({ limit: 1, leaseSeconds: 10, owner: 'slow' });
    clock.advance(10);
    const [again] = await store.claimMeterEvents({ limit: 1, leaseSeconds: 10, owner: 'fast' });
    assert.equal(again!.identifier, event!.identifier);
    assert.deepEqual(await store.reportMeterEvents({ owner: 'slow', results: [{ identifier: event!.identifier, delivered: false, error: 'timeout' }] }),
      { delivered: 0, failed: 0, ignored: 1 });
    assert.equal((await outbox())[0]!.lease_owner, 'fast');
    assert.deepEqual(await store.reportMeterEvents({ owner: 'fast', results: [{ identifier: event!.identifier, delivered: true }] }),
      { delivered: 1, failed: 0, ignored: 0 });
  });

  it('two senders at once deliver each event exactly once, and Stripe counts what we billed', async () => {
    const a = await subscriber();
    const b = await subscriber();
    const ids = [...await charges(a, 300, 60), ...await charges(b, 200, 45)];
    const storeA = db.store(clock.now);
    const storeB = db.store(clock.now);
    fake.latencyMs = 1;
    const [sentA, sentB] = await Promise.all([
      sendDueMeterEvents(storeA, stripe, log, { ...SENDER, owner: 'sender-a', batchSize: 40 }),
      sendDueMeterEvents(storeB, stripe, log, { ...SENDER, owner: 'sender-b', batchSize: 40 }),
    ]);
    fake.latencyMs = 0;
    assert.equal(sentA.delivered + sentB.delivered, 500);
    assert.ok(sentA.delivered > 0 && sentB.delivered > 0, `both senders worked: ${sentA.delivered} / ${sentB.delivered}`);
    assert.equal(sentA.alreadyInStripe + sentB.alreadyInStripe, 0);
    // Each identifier reached Stripe once: no request was even refused as a duplicate.
    assert.equal(fake.requests('POST /v1/billing/meter_events').length, 500);
    assert.deepEqual(stripeIdentifiers().sort(), [...ids].sort());
    const { rows } = await db.sql.query<{ customer: string; seconds: number }>(`
      select o.stripe_customer_id as customer, sum(uc.included_seconds + uc.rated_seconds)::int as seconds
        from public.meter_event_outbox o join public.usage_charges uc on uc.id = o.usage_charge_id
       where o.delivered_at is not null group by 1`);
    const ours = new Map(rows.map((r) => [r.customer, r.seconds]));
    assert.equal(ours.get(a.customer), 300 * 60);
    assert.equal(ours.get(b.customer), 200 * 45);
    const summary = async (customer: string) => (await stripe.billing.meters.listEventSummaries(meterId,
      { customer, start_time: PERIOD_START, end_time: PERIOD_END })).data[0]!.aggregated_value;
    assert.equal(await summary(a.customer), ours.get(a.customer));
    assert.equal(await summary(b.customer), ours.get(b.customer));
  });

  it('reconciliation waits for every event to be delivered, flags drift with Stripe and resolves it when they agree', async () => {
    const who = await subscriber();
    const ids = await charges(who, 5, 60);
    const drifts: unknown[] = [];
    const reconcile = (settleSeconds = 0) => reconcileMeterUsage(store, stripe, log, { settleSeconds, onDrift: (d) => drifts.push(d) });

    // Undelivered events would look like drift: the period is not compared yet.
    let run = await reconcile();
    assert.deepEqual({ compared: run.compared, drift: run.drift.length }, { compared: 0, drift: 0 });
    assert.equal(fake.requests(/event_summaries/).length, 0);

    await sendDueMeterEvents(store, stripe, log, SENDER);
    // Stripe aggregates a while after it accepts: a period delivered just now waits for the settle time.
    run = await reconcile(300);
    assert.equal(run.compared, 0);
    clock.advance(300);
    run = await reconcile(300);
    assert.deepEqual({ compared: run.compared, drift: run.drift.length, resolved: run.resolved }, { compared: 1, drift: 0, resolved: 0 });
    const asked = fake.lastRequest(/event_summaries/)!;
    assert.equal(asked.path, `/v1/billing/meters/${meterId}/event_summaries`);
    assert.equal(Number(asked.params.start_time), PERIOD_START);
    assert.equal(Number(asked.params.customer === who.customer), 1);

    // An event sent behind our back (another system, a sender bug): Stripe counts 90 s we did not bill.
    await stripe.billing.meterEvents.create({ event_name: VOICE_METER_EVENT_NAME, identifier: 'behind-our-back', timestamp: START - 600,
      payload: { stripe_customer_id: who.customer, value: '90' } });
    run = await reconcile();
    assert.equal(run.drift.length, 1);
    assert.equal(drifts.length, 1);
    const { rows: open } = await db.sql.query<{ our_seconds: number; stripe_seconds: number; resolved_at: Date | null; period_start: Date }>(
      'select our_seconds, stripe_seconds, resolved_at, period_start from public.meter_drift where user_plan_id = $1', [who.userPlanId]);
    assert.deepEqual(open.map((r) => [r.our_seconds, r.stripe_seconds, r.resolved_at, r.period_start.getTime() / 1000]),
      [[300, 390, null, PERIOD_START]]);
    assert.equal((await store.meterOutboxStats()).drift_open, 1);
    // Checked again, still in drift: the same row, not a second one.
    clock.advance(60);
    run = await reconcile();
    assert.equal(run.drift.length, 1);
    assert.equal((await db.sql.query('select 1 from public.meter_drift')).rows.length, 1);

    // Our side catches up: the charge behind that event is recorded; its delivery is refused as a known
    // identifier (counted once), and the totals agree again.
    const { rows: session } = await db.sql.query<{ session_id: string }>('select session_id from public.usage_charges where identifier = $1', [ids[0]]);
    await db.sql.query(`
      with c as (
        insert into public.usage_charges (user_id, user_plan_id, plan_id, session_id, period_start, included_seconds, rated_seconds,
                                          amount_exact, currency, identifier, created_at)
        select up.user_id, up.id, up.plan_id, $2, up.current_period_start, 0, 90, 7.5, 'usd', 'behind-our-back', to_timestamp($3)
          from public.user_plans up where up.id = $1
        returning id, identifier, created_at)
      insert into public.meter_event_outbox (usage_charge_id, identifier, event_name, stripe_customer_id, value_seconds, occurred_at, next_attempt_at)
      select c.id, c.identifier, 'mindbot_voice_seconds', $4, 90, c.created_at, c.created_at from c`,
    [who.userPlanId, session[0]!.session_id, START - 600, who.customer]);
    const caughtUp = await sendDueMeterEvents(store, stripe, log, SENDER);
    assert.deepEqual({ delivered: caughtUp.delivered, alreadyInStripe: caughtUp.alreadyInStripe }, { delivered: 1, alreadyInStripe: 1 });
    run = await reconcile();
    assert.deepEqual({ compared: run.compared, drift: run.drift.length, resolved: run.resolved }, { compared: 1, drift: 0, resolved: 1 });
    const { rows: resolved } = await db.sql.query<{ our_seconds: number; stripe_seconds: number; resolved_at: Date | null }>(
      'select our_seconds, stripe_seconds, resolved_at from public.meter_drift where user_plan_id = $1', [who.userPlanId]);
    assert.deepEqual(resolved.map((r) => [r.our_seconds, r.stripe_seconds, r.resolved_at?.getTime()]), [[390, 390, clock.now().getTime()]]);
    assert.equal((await store.meterOutboxStats()).drift_open, 0);
  });

  it("runs in the sidecar's job loop only with a Stripe client", async () => {
    const who = await subscriber();
    await charges(who, 7, 60);
    const base: JobSettings = { expireEverySeconds: 3600, reapEverySeconds: 3600, maxSilenceSeconds: 3600, notifyEverySeconds: 3600,
      lowBalanceSeconds: 1800, delivery: null };
    const without = startBackgroundJobs(store, log, { ...base, meterEvents: null });
    await without.runOnce();
    await without.stop();
    assert.equal(fake.requests('POST /v1/billing/meter_events').length, 0);
    const jobs = startBackgroundJobs(store, log, { ...base, meterEvents: {
      stripe, everySeconds: 3600, sender: SENDER, reconcileEverySeconds: 3600, settleSeconds: 0 } });
    await jobs.runOnce();
    await jobs.stop();
    assert.equal(fake.requests('POST /v1/billing/meter_events').length, 7);
    assert.ok((await outbox()).every((r) => r.delivered));
    // The same turn compared the period (the sender ran first): Stripe agrees, so no drift.
    assert.equal(fake.requests(/event_summaries/).length, 1);
    assert.equal((await db.sql.query('select 1 from public.meter_drift')).rows.length, 0);
  });

  it('reconciliation counts a whole-minute window on both sides and skips without a meter', async () => {
    const who = await subscriber();
    await charges(who, 2, 60);
    await sendDueMeterEvents(store, stripe, log, SENDER);
    const periods = await store.meterReconciliationPeriods({ settleSeconds: 0 });
    assert.equal(periods.length, 1);
    assert.equal(periods[0]!.window_start % 60, 0);
    assert.equal(periods[0]!.window_end % 60, 0);
    // The current period is counted up to now (rounded up to the minute).
    assert.equal(periods[0]!.window_end, Math.ceil(START / 60) * 60);
    assert.equal(periods[0]!.our_seconds, 120);
    fake.reset();
    const run = await reconcileMeterUsage(store, stripe, log, { settleSeconds: 0 });
    assert.equal(run.meterMissing, true);
    assert.equal(run.compared, 0);
  });
});

describe('meter event settings', () => {
  it('has defaults, and refuses a lease too short for one request', () => {
    const c = parseConfig({});
    assert.deepEqual([c.METER_EVENTS_EVERY_SECONDS, c.METER_EVENTS_BATCH_SIZE, c.METER_EVENTS_CONCURRENCY, c.METER_EVENTS_LEASE_SECONDS,
      c.METER_EVENTS_TIMEOUT_MS, c.METER_RECONCILE_EVERY_SECONDS, c.METER_RECONCILE_SETTLE_SECONDS], [5, 500, 16, 120, 10_000, 3600, 600]);
    assert.throws(() => parseConfig({ METER_EVENTS_LEASE_SECONDS: '20', METER_EVENTS_TIMEOUT_MS: '10000' }),
      /METER_EVENTS_LEASE_SECONDS \(20\) must be at least twice METER_EVENTS_TIMEOUT_MS \(10000 ms\)/);
    assert.equal(parseConfig({ METER_EVENTS_LEASE_SECONDS: '21', METER_EVENTS_TIMEOUT_MS: '10000' }).METER_EVENTS_LEASE_SECONDS, 21);
    assert.throws(() => parseConfig({ METER_EVENTS_BATCH_SIZE: '5001' }), /METER_EVENTS_BATCH_SIZE/);
  });
});

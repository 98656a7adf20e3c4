// A whole month (and more) on the fake Stripe's test clock for each postpaid plan, through the real parts:
// stripe-sync makes the catalogue in the fake, the caller subscribes through the sidecar and Checkout, the
// signed webhooks make the plan active with Stripe's period, calls are charged by the billing store on the same
// clock, the meter event sender delivers the outbox, and the clock runs past each period's end so the invoices
// are created, finalized and paid (or not). What Stripe bills for a period is then compared with what the usage
// API said about it just before it closed, line by line.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type Stripe from 'stripe';
import { CallController, type CallEvents } from '../src/agent/call-controller.ts';
import { isBillingError } from '../src/billing/errors.ts';
import type { SessionState } from '../src/billing/types.ts';
import { sendDueMeterEvents, type MeterSenderOptions } from '../src/payments/meter-events.ts';
import { reconcileMeterUsage } from '../src/payments/meter-reconciliation.ts';
import { syncStripeCatalogue } from '../src/payments/stripe-sync.ts';
import { startFakeStripeBilling, type BillingInvoice, type FakeBilling, type WebhookDelivery } from './helpers/fake-stripe-billing.ts';
import type { FakeStripe } from './helpers/fake-stripe.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { startSidecar, WEBHOOK_SECRET, type TestSidecar } from './helpers/sidecar.ts';
import { createPgliteDatabase, createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const log = pino({ level: 'silent' });
// 2026-03-01 00:00 UTC: monthly periods end on the 1st of April, May and June.
const START = Date.UTC(2026, 2, 1, 0, 0, 0) / 1000;
const MIN = 60;
const HOUR = 3600;
const DAY = 86_400;
const SENDER: MeterSenderOptions = { batchSize: 100, concurrency: 4, leaseSeconds: 60, timeoutMs: 5000 };

interface UsageLine { kind: 'usage' | 'fee'; plan_key: string; plan_version: number; amount_cents: number; rated_seconds?: number; included_seconds?: number }
interface Usage {
  billing: string; status: string; suspended_reason: string | null; hosted_invoice_url: string | null; cancel_at_period_end: boolean;
  period_start: string; period_end: string | null; usage_cents: number; fee_cents: number; plan_cost_cents: number;
  lines: UsageLine[]; cap_cents: number | null; cap_used_cents: number | null; cap_left_cents: number | null;
}

const ENGINES: [string, () => Promise<TestDatabase>][] = [['PostgreSQL', createPostgresDatabase], ['PGlite', createPgliteDatabase]];

for (const [engine, createDatabase] of ENGINES) describe(`a month of each postpaid plan on the test clock (${engine})`, () => {
  let db: TestDatabase;
  let fake: FakeStripe & { billing: FakeBilling };
  let billing: FakeBilling;
  let stripe: Stripe;
  let sidecar: TestSidecar;
  // The billing store's clock: it follows the fake Stripe's test clock (and runs ahead of it only inside a call
  // driven by the call controller's timers, after which the fake's clock is brought level).
  const clock = new TestClock(new Date(START * 1000));

  before(async () => {
    db = await createDatabase();
    fake = await startFakeStripeBilling({ billing: { startTime: START } });
    billing = fake.billing;
    stripe = fake.client({ maxNetworkRetries: 0 });
    sidecar = await startSidecar(db, { stripe, clock: clock.now });
    billing.setWebhookEndpoint(endpoint());
    await syncStripeCatalogue(stripe, sidecar.store);
  });
  after(async () => {
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  const endpoint = () => ({ url: `${sidecar.url}/webhooks/stripe`, secret: WEBHOOK_SECRET, timeoutMs: 10_000 });
  const store = () => sidecar.store;

  function outcomes(deliveries: WebhookDelivery[]): [string, string][] {
    for (const d of deliveries) assert.equal(d.status, 200, `${d.event.type}: ${d.body}`);
    return deliveries.map((d) => [d.event.type, (JSON.parse(d.body) as { outcome: string }).outcome]);
  }

  /** Both clocks to `time` (Unix seconds); whatever Stripe does on the way is posted to the sidecar. */
  async function to(time: number): Promise<[string, string][]> {
    const moved = await billing.advanceTo(Math.max(time, billing.now()));
    clock.set(new Date(billing.now() * 1000));
    return outcomes(moved.deliveries);
  }
  /** The fake's clock brought level with the store's (after the call controller ran the store's clock ahead). */
  const level = () => to(Math.floor(clock.now().getTime() / 1000));

  const api = async (method: string, path: string, userId: string, body?: unknown) => {
    const response = await sidecar.request(method, path, { token: await sidecar.tokenFor(userId), ...(body !== undefined && { body }) });
    return { status: response.status, body: await response.json() as Record<string, any> };
  };
  const usage = async (userId: string): Promise<Usage> => {
    const answer = await api('GET', '/api/usage/current', userId);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    return answer.body as Usage;
  };
  const userPlan = async (userId: string): Promise<Record<string, any>> => {
    const { rows: [row] } = await db.sql.query<Record<string, any>>(
      `select u.*, p.key as plan_key from public.user_plans u join public.plans p on p.id = u.plan_id
        where u.user_id = $1 order by u.created_at desc limit 1`, [userId]);
    assert.ok(row, `user ${userId} has no plan`);
    return row;
  };

  async function subscribe(userId: string, planKey: string): Promise<{ subscriptionId: string; customerId: string }> {
    const started = await api('POST', `/api/plans/${planKey}/subscribe`, userId, {});
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const done = billing.completeSubscriptionCheckout(started.body.checkout_session_id);
    outcomes(await billing.deliver());
    const row = await userPlan(userId);
    assert.equal(row.status, 'active');
    assert.equal(row.plan_key, planKey);
    assert.equal(row.current_period_start.getTime() / 1000, done.subscription.items.data[0]!.current_period_start);
    assert.equal(row.current_period_end.getTime() / 1000, done.subscription.items.data[0]!.current_period_end);
    return { subscriptionId: done.subscription.id, customerId: done.customer.id };
  }

  let calls = 0;
  /** A call of `seconds` from now: started and ended through the store as the agent does, the clocks moving meanwhile. */
  async function call(userId: string, seconds: number): Promise<{ started: SessionState; ended: SessionState }> {
    calls += 1;
    const started = await store().startSession({ userId, externalKey: `month:${userId}:${calls}`, roomName: `room-${calls}` });
    await to(billing.now() + seconds);
    const ended = await store().endSession({ sessionId: started.session_id, reason: 'caller_left' });
    return { started, ended };
  }

  async function deliverMeterEvents(): Promise<void> {
    const sent = await sendDueMeterEvents(store(), stripe, log, SENDER);
    assert.equal(sent.failed, 0, JSON.stringify(sent));
    assert.equal(sent.leftToLease, 0);
    const { rows: [left] } = await db.sql.query<{ n: number }>('select count(*)::int as n from public.meter_event_outbox where delivered_at is null');
    assert.equal(left!.n, 0, 'every meter event is delivered');
  }

  const invoice = async (id: string) => (await stripe.invoices.retrieve(id)) as unknown as BillingInvoice;
  /** Every invoice line Stripe billed the customer for time inside [start, end): usage in arrears, fees in advance, prorations. */
  async function billedFor(customerId: string, start: number, end: number): Promise<{ amount: number; description: string | null; usage: boolean }[]> {
    const all = (await stripe.invoices.list({ customer: customerId, limit: 100 })).data;
    const { rows } = await db.sql.query<{ id: string }>('select stripe_usage_price_id as id from public.plans where stripe_usage_price_id is not null');
    const usagePrices = new Set(rows.map((r) => r.id));
    return all.flatMap((i) => i.lines.data)
      .filter((l) => l.period.start >= start && l.period.end <= end && l.period.end > l.period.start)
      .map((l) => ({ amount: l.amount, description: l.description, usage: usagePrices.has(l.pricing?.price_details?.price as string) }));
  }
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  /**
   * Runs to a minute before the period's end, delivers the meter events and reads the usage API; then closes the
   * period at Stripe. Stripe's lines for the period (its closing invoice's usage, the fee it billed in advance and
   * any prorations) add up to what the usage API said, and the period's invoice is recorded as Stripe has it.
   */
  async function closePeriod(userId: string, customerId: string, subscriptionId: string) {
    const row = await userPlan(userId);
    const start = row.current_period_start.getTime() / 1000;
    const end = row.current_period_end.getTime() / 1000;
    await to(end - MIN);
    await deliverMeterEvents();
    const said = await usage(userId);
    assert.equal(new Date(said.period_start).getTime() / 1000, start);
    assert.equal(new Date(said.period_end!).getTime() / 1000, end);
    assert.equal(sum(said.lines.map((l) => l.amount_cents)), said.plan_cost_cents, 'the lines add up to the period cost');
    assert.equal(said.usage_cents + said.fee_cents, said.plan_cost_cents);
    const closed = await billing.closePeriod(subscriptionId);
    clock.set(new Date(billing.now() * 1000));
    const answers = outcomes(closed.deliveries);
    const closing = await invoice(closed.invoice.id);
    assert.equal(closing.period_start, start);
    assert.equal(closing.period_end, end);
    const lines = await billedFor(customerId, start, end);
    assert.equal(sum(lines.map((l) => l.amount)), said.plan_cost_cents, `Stripe billed for the period ${JSON.stringify(lines)}; we said ${JSON.stringify(said.lines)}`);
    // Usage lines (metered, and usage billed at an old price on a change) are our usage lines; the rest the fee.
    assert.equal(sum(lines.filter((l) => l.usage).map((l) => l.amount)), said.usage_cents);
    assert.equal(sum(lines.filter((l) => !l.usage).map((l) => l.amount)), said.fee_cents);
    // The closing invoice is the period's usage (and prorations) and the next period's fee in advance.
    const next = closing.lines.data.filter((l) => l.period.start >= end);
    assert.ok(closing.lines.data.every((l) => l.period.start >= end || (l.period.start >= start && l.period.end <= end)));
    assert.equal(closing.total, sum(closing.lines.data.map((l) => l.amount)));
    const { rows: [recorded] } = await db.sql.query<Record<string, any>>('select * from public.stripe_invoices where invoice_id = $1', [closing.id]);
    assert.ok(recorded, 'the closing invoice is recorded');
    assert.equal(recorded.user_id, userId);
    assert.equal(recorded.total_cents, closing.total);
    assert.equal(recorded.amount_due_cents, closing.amount_due);
    assert.equal(recorded.status, closing.status);
    return { said, closing, answers, nextFee: sum(next.map((l) => l.amount)), row };
  }

  async function assertBooks(): Promise<void> {
    const books = await store().getBooks();
    assert.ok(books.postpaid);
    assert.equal(books.postpaid.sessions.sessions_out_of_step, 0, JSON.stringify(books.postpaid));
    assert.equal(books.postpaid.meter_events.charges, books.postpaid.meter_events.events);
    assert.equal(books.postpaid.lines.lines_mispriced, 0);
    assert.equal(books.ok, true, JSON.stringify(books));
    assert.deepEqual(await ledgerMismatches(db.sql), []);
  }

  async function refusedWith(userId: string, pattern: RegExp): Promise<void> {
    calls += 1;
    await assert.rejects(store().startSession({ userId, externalKey: `month:${userId}:${calls}`, roomName: 'room-refused' }),
      (error: unknown) => {
        assert.ok(isBillingError(error, 'insufficient_balance'), String(error));
        assert.match(error.message, pattern);
        return true;
      });
  }

  it('pay as you go: a month of calls is invoiced as the usage API said; the cap cuts off a call; a failed invoice suspends calls until paid', async () => {
    await to(START + HOUR);
    const caller = newUserId();
    const { subscriptionId, customerId } = await subscribe(caller, 'payg');

    // Month 1: three calls (7, 13 min 20 s -> 14 billed, 33 min) at 5 cents a minute.
    await to(START + 2 * DAY);
    await call(caller, 7 * MIN);
    await to(START + 9 * DAY);
    await call(caller, 13 * MIN + 20);
    await deliverMeterEvents();
    await to(START + 20 * DAY);
    await call(caller, 33 * MIN);
    const month1 = await closePeriod(caller, customerId, subscriptionId);
    assert.equal(month1.said.plan_cost_cents, (7 + 14 + 33) * 5);
    assert.deepEqual(month1.said.lines.map((l) => [l.kind, l.plan_key, l.amount_cents, l.rated_seconds]), [['usage', 'payg', 270, 54 * MIN]]);
    assert.equal(month1.closing.total, 270);
    assert.equal(month1.closing.status, 'paid');
    assert.deepEqual(month1.answers.filter(([t]) => t.startsWith('invoice.') && t !== 'invoice.payment_succeeded'),
      [['invoice.created', 'invoice_recorded'], ['invoice.finalized', 'invoice_recorded'], ['invoice.paid', 'invoice_recorded']]);
    assert.equal(month1.nextFee, 0);

    // Month 2: the caller lowers the cap to $3.00 (60 minutes); the controller warns at 5 and 1 minutes before it
    // and cuts the call off there; a new call is refused with the cap's reason.
    const capped = await api('PUT', '/api/usage/cap', caller, { cap_cents: 300 });
    assert.equal(capped.status, 200, JSON.stringify(capped.body));
    await to(billing.now() + 3 * DAY);
    const t0 = clock.now().getTime();
    const since = () => (clock.now().getTime() - t0) / 1000;
    const timers = new FakeTimers(clock);
    const controller = new CallController({ store: store(), clock: clock.now, timers });
    const warnings: Array<CallEvents['warning'] & { at: number }> = [];
    const cutOffs: number[] = [];
    controller.on('warning', (w) => warnings.push({ ...w, at: since() }));
    controller.on('cut_off', () => cutOffs.push(since()));
    const joined = await controller.join({ userId: caller, externalKey: `month:${caller}:capped`, roomName: 'room-capped' });
    assert.ok(joined);
    const horizon = (new Date(joined.payable_until).getTime() - t0) / 1000;
    await timers.advance(90 * MIN);
    const { rows: [session] } = await db.sql.query<Record<string, any>>(
      `select s.status, s.billed_seconds, sum(c.rated_seconds)::int as rated, sum(c.amount_exact)::text as exact
         from public.voice_sessions s join public.usage_charges c on c.session_id = s.id where s.id = $1 group by s.id`, [joined.session_id]);
    // The cap is on the rounded line at the price's 12-decimal rate (Stripe's unit_amount_decimal): 3606 s cost
    // 300.4999999988 cents, a line of $3.00; the 3607th second would make it $3.01.
    assert.equal(horizon, 3606);
    assert.deepEqual(session, { status: 'cut_off', billed_seconds: 3606, rated: 3606, exact: '300.499999998798' });
    assert.deepEqual(warnings, [
      { remainingSeconds: 300, thresholdSeconds: 300, at: horizon - 300 },
      { remainingSeconds: 60, thresholdSeconds: 60, at: horizon - 60 },
    ]);
    assert.deepEqual(cutOffs, [horizon]);
    assert.equal(timers.size, 0);
    await level();
    await refusedWith(caller, /spending cap of 3\.00 USD for this period is reached/);
    const atCap = await usage(caller);
    assert.deepEqual([atCap.cap_cents, atCap.cap_used_cents, atCap.cap_left_cents], [300, 300, 0]);
    const month2 = await closePeriod(caller, customerId, subscriptionId);
    assert.equal(month2.said.plan_cost_cents, 300);
    assert.equal(month2.closing.total, 300);

    // Month 3: the card declines. The failed invoice suspends postpaid calls, with its link; paying it lifts that.
    await to(billing.now() + DAY);
    await call(caller, 10 * MIN);
    billing.declinePayments(customerId);
    const month3 = await closePeriod(caller, customerId, subscriptionId);
    assert.equal(month3.closing.total, 50);
    assert.equal(month3.closing.status, 'open');
    assert.ok(month3.answers.some(([t, o]) => t === 'invoice.payment_failed' && o === 'plan_suspended'), JSON.stringify(month3.answers));
    await refusedWith(caller, /suspended because an invoice is unpaid/);
    await refusedWith(caller, new RegExp(month3.closing.hosted_invoice_url!.replace(/[.?]/g, '\\$&')));
    const suspended = await usage(caller);
    assert.equal(suspended.status, 'suspended');
    assert.equal(suspended.hosted_invoice_url, month3.closing.hosted_invoice_url);
    assert.match(suspended.suspended_reason ?? '', new RegExp(`invoice ${month3.closing.id} \\(0\\.50 USD\\) failed`));
    billing.acceptPayments(customerId);
    await stripe.invoices.pay(month3.closing.id, { payment_method: 'pm_card_visa' });
    const paid = outcomes(await billing.deliver());
    assert.ok(paid.some(([t, o]) => t === 'invoice.paid' && o === 'plan_lifted'), JSON.stringify(paid));
    const lifted = await usage(caller);
    assert.equal(lifted.status, 'active');
    assert.equal(lifted.hosted_invoice_url, null);
    const after = await call(caller, 2 * MIN);
    assert.equal(after.ended.plan?.status, 'active');
    assert.equal(after.ended.billed_seconds, 2 * MIN);
    await deliverMeterEvents();
    await assertBooks();
  });
  it('tiered: the month crosses a tier boundary; a call after the period end, before Stripe says the period moved, is billed in the new period as Stripe files it', async () => {
    const caller = newUserId();
    const { subscriptionId, customerId } = await subscribe(caller, 'tiered');
    const row = await userPlan(caller);
    const start = row.current_period_start.getTime() / 1000;
    const end = row.current_period_end.getTime() / 1000;
    // 480 + 40 minutes: 500 at 6 cents, 20 at 4 cents.
    await to(start + 4 * DAY);
    await call(caller, 480 * MIN);
    await to(start + 15 * DAY);
    const second = await call(caller, 40 * MIN);
    assert.equal(second.ended.plan?.period_usage_cents, 3080);

    // A call runs across the period's end, and Stripe's webhooks are late: our row still says the old period.
    billing.setWebhookEndpoint(null);
    try {
      await to(end - 5 * MIN);
      calls += 1;
      const spanning = await store().startSession({ userId: caller, externalKey: `month:${caller}:spanning`, roomName: 'room-spanning' });
      await to(end - MIN);
      await store().meterSession(spanning.session_id);            // 4 increments begun: 240 s, before the end
      await deliverMeterEvents();
      const said = await usage(caller);
      // 500 minutes at 6 cents, 24 at 4 cents.
      assert.equal(said.plan_cost_cents, 3000 + 96);
      assert.deepEqual(said.lines.map((l) => [l.kind, l.plan_key, l.amount_cents, l.rated_seconds]), [['usage', 'tiered', 3096, 524 * MIN]]);
      await to(end + 10 * MIN);
      assert.equal((await userPlan(caller)).current_period_end.getTime() / 1000, end, 'the period has not moved on our side yet');
      const ended = await store().endSession({ sessionId: spanning.session_id, reason: 'caller_left' });
      // The rest (660 s) is charged after the end: in the period that contains it, which starts where the old one
      // ended (its end not known yet), from the first tier again.
      assert.equal(ended.billed_seconds, 15 * MIN);
      assert.equal(new Date(ended.plan!.period_start!).getTime() / 1000, end);
      assert.equal(ended.plan?.period_end, null);
      assert.equal(ended.plan?.period_usage_cents, 66);
      const { rows } = await db.sql.query<{ period_start: Date; seconds: number }>(
        `select period_start, included_seconds + rated_seconds as seconds from public.usage_charges where session_id = $1 order by id`,
        [spanning.session_id]);
      assert.deepEqual(rows.map((r) => [r.period_start.getTime() / 1000, r.seconds]), [[start, 60], [start, 180], [end, 660]]);
      // The usage API shows that period too.
      const rolled = await usage(caller);
      assert.equal(new Date(rolled.period_start).getTime() / 1000, end);
      assert.equal(rolled.period_end, null);
      assert.equal(rolled.plan_cost_cents, 66);
      await deliverMeterEvents();
      await to(end + HOUR + MIN);
    } finally {
      billing.setWebhookEndpoint(endpoint());
    }
    outcomes(await billing.deliver());
    const closing = (await stripe.invoices.list({ customer: customerId, limit: 100 })).data.find((i) => i.period_end === end)!;
    assert.ok(closing);
    assert.equal(closing.status, 'paid');
    assert.equal(closing.total, 3096, 'what was charged after the end is not on the closed period\'s invoice');
    const moved = await usage(caller);
    assert.equal(new Date(moved.period_start).getTime() / 1000, end);
    assert.equal(moved.plan_cost_cents, 66);

    // The next month: the call's last 11 minutes and one more call of 10, at the first tier again.
    await to(end + 3 * DAY);
    await call(caller, 10 * MIN);
    const month2 = await closePeriod(caller, customerId, subscriptionId);
    assert.equal(month2.said.plan_cost_cents, 21 * 6);
    assert.equal(month2.closing.total, 126);
    await assertBooks();
  });

  it('subscription + overage: included minutes then the rate, the fee in advance; cancelled at the period end, later calls are prepaid only', async () => {
    const caller = newUserId();
    const { subscriptionId, customerId } = await subscribe(caller, 'pro_monthly');
    const row = await userPlan(caller);
    await to(row.current_period_start.getTime() / 1000 + 2 * DAY);
    const first = await call(caller, 600 * MIN);
    assert.equal(first.ended.plan?.included_left_seconds, 400 * MIN);
    assert.equal(first.ended.plan?.period_usage_cents, 0);
    await to(billing.now() + 5 * DAY);
    await call(caller, 430 * MIN);
    const month1 = await closePeriod(caller, customerId, subscriptionId);
    // 1,000 minutes included, 30 at 5 cents, the $49 fee (billed in advance, on the first invoice).
    assert.deepEqual(month1.said.lines.map((l) => [l.kind, l.amount_cents]), [['usage', 150], ['fee', 4900]]);
    assert.equal(month1.said.plan_cost_cents, 5050);
    assert.equal(month1.nextFee, 4900);
    assert.equal(month1.closing.total, month1.said.plan_cost_cents - month1.said.fee_cents + month1.nextFee);
    assert.equal(month1.closing.status, 'paid');

    // Month 2: cancelled at the period end. Still active until Stripe ends it at the boundary.
    const cancel = await api('POST', '/api/plans/cancel', caller, {});
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    outcomes(await billing.deliver());
    const canceling = await usage(caller);
    assert.equal(canceling.cancel_at_period_end, true);
    assert.equal(canceling.status, 'active');
    await to(billing.now() + DAY);
    await call(caller, 20 * MIN);
    const periodEnd = (await userPlan(caller)).current_period_end.getTime() / 1000;
    // Webhooks late again: past the boundary, before customer.subscription.deleted lands, the plan pays nothing.
    billing.setWebhookEndpoint(null);
    let month2: Awaited<ReturnType<typeof closePeriod>>;
    try {
      await to(periodEnd - MIN);
      await deliverMeterEvents();
      const said = await usage(caller);
      assert.deepEqual(said.lines.map((l) => [l.kind, l.amount_cents]), [['usage', 0], ['fee', 4900]]);
      await to(periodEnd + MIN);
      await refusedWith(caller, /no conversation time left/);
      assert.equal((await usage(caller)).billing, 'prepaid', 'past the end of a cancelled subscription, before its webhook');
      billing.setWebhookEndpoint(endpoint());
      const closed = await billing.closePeriod(subscriptionId);
      clock.set(new Date(billing.now() * 1000));
      const answers = [...outcomes(await billing.deliver()), ...outcomes(closed.deliveries)];
      assert.ok(answers.some(([t, o]) => t === 'customer.subscription.deleted' && o === 'plan_ended'), JSON.stringify(answers));
      const closing = await invoice(closed.invoice.id);
      assert.equal(closing.total, 0, 'the final invoice: the included usage, no fee for a next period');
      const lines = await billedFor(customerId, row.current_period_end.getTime() / 1000, periodEnd);
      assert.equal(sum(lines.map((l) => l.amount)), said.plan_cost_cents);
      month2 = { said, closing } as never;
    } finally {
      billing.setWebhookEndpoint(endpoint());
    }
    assert.ok(month2);
    const ended = await userPlan(caller);
    assert.equal(ended.status, 'ended');
    assert.equal(ended.ended_at.getTime() / 1000, periodEnd);
    const now = await usage(caller);
    assert.equal(now.billing, 'prepaid');
    // Prepaid only: a card pays the next call, and nothing is metered.
    await store().adjustUserTime({ userId: caller, seconds: 600, reason: 'test credit', idempotencyKey: `${caller}:credit` });
    const prepaid = await call(caller, 3 * MIN);
    assert.equal(prepaid.ended.plan, null);
    assert.equal(prepaid.ended.billed_seconds, 3 * MIN);
    const { rows: [metered] } = await db.sql.query<{ n: number }>('select count(*)::int as n from public.usage_charges where session_id = $1', [prepaid.started.session_id]);
    assert.equal(metered!.n, 0);
    await assertBooks();
  });

  it('an upgrade mid-period (pay as you go to subscription): Stripe bills the usage so far at the old rate and the fee prorated, as the usage API says', async () => {
    const caller = newUserId();
    const { subscriptionId, customerId } = await subscribe(caller, 'payg');
    const row = await userPlan(caller);
    const start = row.current_period_start.getTime() / 1000;
    await to(start + 3 * DAY);
    await call(caller, 30 * MIN);
    await deliverMeterEvents();
    await to(start + 10 * DAY);
    const up = await api('POST', '/api/plans/pro_monthly/change', caller, {});
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.equal(up.body.effective, 'now');
    outcomes(await billing.deliver());
    assert.equal((await userPlan(caller)).plan_key, 'pro_monthly');
    await to(start + 12 * DAY);
    await call(caller, 40 * MIN);
    const month = await closePeriod(caller, customerId, subscriptionId);
    const end = month.row.current_period_end.getTime() / 1000;
    const fee = Math.round(4900 * (end - (start + 10 * DAY)) / (end - start));
    assert.deepEqual(month.said.lines.map((l) => [l.kind, l.plan_key, l.amount_cents]),
      [['usage', 'payg', 150], ['usage', 'pro_monthly', 0], ['fee', 'pro_monthly', fee]]);
    assert.equal(month.closing.total, 150 + fee + 4900);
    assert.equal(month.nextFee, 4900);
    // The month's history shows the period's fee as billed, too.
    const feesOf = async (at: number) => {
      const history = await api('GET', `/api/usage/history?month=${new Date(at * 1000).toISOString().slice(0, 7)}`, caller);
      assert.equal(history.status, 200, JSON.stringify(history.body));
      return (history.body.fees as { plan_key: string; amount_cents: number }[]).map((f) => [f.plan_key, f.amount_cents]);
    };
    assert.deepEqual(await feesOf(start), [['pro_monthly', fee]]);

    // Back down to pay as you go: due at the period end. Stripe renews on the subscription (its fee in advance),
    // then the renewal's event makes the downgrade, which credits that fee in full: the period has no fee.
    await to(billing.now() + 2 * DAY);
    const down = await api('POST', '/api/plans/payg/change', caller, {});
    assert.equal(down.status, 200, JSON.stringify(down.body));
    assert.equal(down.body.effective, 'period_end');
    await call(caller, 1100 * MIN);                       // 1,000 included, 100 at 5 cents
    const month2 = await closePeriod(caller, customerId, subscriptionId);
    assert.deepEqual(month2.said.lines.map((l) => [l.kind, l.plan_key, l.amount_cents]), [['usage', 'pro_monthly', 500], ['fee', 'pro_monthly', 4900]]);
    outcomes(await billing.deliver());
    const downgraded = await userPlan(caller);
    assert.equal(downgraded.plan_key, 'payg');
    await to(billing.now() + DAY);
    await call(caller, 12 * MIN);
    const month3 = await closePeriod(caller, customerId, subscriptionId);
    assert.deepEqual(month3.said.lines.map((l) => [l.kind, l.plan_key, l.amount_cents]), [['usage', 'payg', 60]]);
    assert.equal(month3.said.plan_cost_cents, 60);
    assert.deepEqual(await feesOf(end), [['pro_monthly', 4900]]);
    assert.deepEqual(await feesOf(month3.row.current_period_start.getTime() / 1000), []);
    assert.deepEqual(month3.closing.lines.data.filter((l) => l.amount !== 0).map((l) => l.amount).sort((a, b) => a - b), [-4900, 60]);
    await assertBooks();
  });

  it('the meter drift reconciliation finds no drift after the months', async () => {
    await deliverMeterEvents();
    const run = await reconcileMeterUsage(store(), stripe, log, { settleSeconds: 0 });
    assert.equal(run.meterMissing, false);
    assert.ok(run.compared > 0, JSON.stringify(run));
    assert.deepEqual(run.drift, []);
    const { rows: [open] } = await db.sql.query<{ n: number }>('select count(*)::int as n from public.meter_drift where resolved_at is null');
    assert.equal(open!.n, 0);
  });
});

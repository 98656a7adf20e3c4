// Postpaid plans through Stripe Billing: the catalogue sync, Checkout in subscription mode, plan changes and
// the subscription and invoice webhooks, driven through the real sidecar against the fake Stripe Billing
// (tests/helpers/fake-stripe-billing.ts), whose events are signed and posted to the real webhook route.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import Stripe from 'stripe';
import { createPgliteDatabase, createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { startFakeStripeBilling, type FakeBilling } from './helpers/fake-stripe-billing.ts';
import type { FakeStripe } from './helpers/fake-stripe.ts';
import { startSidecar, WEBHOOK_SECRET, type TestSidecar } from './helpers/sidecar.ts';
import { syncStripeCatalogue } from '../src/payments/stripe-sync.ts';

// 2026-01-31 12:00 UTC: a monthly period runs to Feb 28 12:00.
const START = Date.UTC(2026, 0, 31, 12, 0, 0) / 1000;
const MIN = 60;

// The same SQL on both engines (docs: the rules live in SQL and run on PostgreSQL and PGlite alike).
const ENGINES: [string, () => Promise<TestDatabase>][] = [['PostgreSQL', createPostgresDatabase], ['PGlite', createPgliteDatabase]];

for (const [engine, createDatabase] of ENGINES) describe(`postpaid plans through Stripe Billing (${engine})`, () => {
  let db: TestDatabase;
  let fake: FakeStripe & { billing: FakeBilling };
  let billing: FakeBilling;
  let stripe: Stripe;
  let sidecar: TestSidecar;

  before(async () => {
    db = await createDatabase();
    fake = await startFakeStripeBilling({ billing: { startTime: START } });
    billing = fake.billing;
    stripe = fake.client({ maxNetworkRetries: 0 });
    sidecar = await startSidecar(db, { stripe });
    billing.setWebhookEndpoint({ url: `${sidecar.url}/webhooks/stripe`, secret: WEBHOOK_SECRET, timeoutMs: 10_000 });
  });
  after(async () => {
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  const planRow = async (key: string) =>
    (await db.sql.query<Record<string, string | null>>(
      `select stripe_product_id, stripe_fee_price_id, stripe_usage_price_id from public.plans where key = $1 and status = 'active'`, [key])).rows[0]!;

  const endpoint = () => ({ url: `${sidecar.url}/webhooks/stripe`, secret: WEBHOOK_SECRET, timeoutMs: 10_000 });

  /** The webhook answers: every delivery accepted (2xx), with the outcome the sidecar gave each event. */
  function outcomes(deliveries: { event: { type: string }; status: number; body: string }[]): [string, string][] {
    for (const d of deliveries) assert.equal(d.status, 200, `${d.event.type}: ${d.body}`);
    return deliveries.map((d) => [d.event.type, (JSON.parse(d.body) as { outcome: string }).outcome]);
  }

  const userPlan = async (userId: string): Promise<Record<string, any>> => {
    const { rows: [row] } = await db.sql.query<Record<string, any>>(
      `select u.*, p.key as plan_key from public.user_plans u join public.plans p on p.id = u.plan_id
        where u.user_id = $1 order by u.created_at desc limit 1`, [userId]);
    assert.ok(row, `user ${userId} has no plan row`);
    return row;
  };

  const api = async (method: string, path: string, userId: string, body?: unknown) => {
    const response = await sidecar.request(method, path, { token: await sidecar.tokenFor(userId), ...(body !== undefined && { body }) });
    return { status: response.status, body: await response.json() as Record<string, any> };
  };

  /** The caller subscribes through the sidecar and pays on Checkout's page. */
  async function subscribe(userId: string, planKey: string) {
    const started = await api('POST', `/api/plans/${planKey}/subscribe`, userId, {});
    assert.equal(started.status, 200, JSON.stringify(started.body));
    assert.match(started.body.checkout_url, /^https:\/\//);
    const session = await stripe.checkout.sessions.retrieve(started.body.checkout_session_id);
    assert.equal(session.mode, 'subscription');
    assert.deepEqual(session.metadata, { user_id: userId, plan_id: (await userPlan(userId)).plan_id, plan_key: planKey });
    const done = billing.completeSubscriptionCheckout(session.id);
    return { ...done, sessionId: session.id };
  }

  describe('./launch.sh stripe-sync', () => {
    it('creates the meter, a product per plan and the versioned prices once; a second run creates nothing', async () => {
      const first = await syncStripeCatalogue(stripe, sidecar.store);
      assert.ok(first.created.some((l) => l.startsWith('meter mindbot_voice_seconds')), first.created.join('\n'));
      for (const key of ['payg', 'tiered', 'pro_monthly']) {
        assert.ok(first.created.includes(`product mindbot_plan_${key}`), key);
        assert.ok(first.created.some((l) => l.startsWith(`price mindbot_${key}_v1_usage `)), key);
      }
      assert.ok(first.created.some((l) => l.startsWith('price mindbot_pro_monthly_v1_fee ')));
      assert.ok(!first.created.some((l) => l.includes('mindbot_payg_v1_fee') || l.includes('prepaid')));

      const [meter] = (await stripe.billing.meters.list({ status: 'active' })).data.filter((m) => m.event_name === 'mindbot_voice_seconds');
      assert.ok(meter);
      assert.deepEqual(meter.customer_mapping, { event_payload_key: 'stripe_customer_id', type: 'by_id' });
      assert.deepEqual(meter.default_aggregation, { formula: 'sum' });

      const pro = await planRow('pro_monthly');
      assert.equal(pro.stripe_product_id, 'mindbot_plan_pro_monthly');
      const usage = await stripe.prices.retrieve(pro.stripe_usage_price_id!, { expand: ['tiers'] });
      assert.equal(usage.lookup_key, 'mindbot_pro_monthly_v1_usage');
      assert.equal(usage.recurring?.usage_type, 'metered');
      assert.equal(usage.recurring?.meter, meter.id);
      assert.equal(usage.billing_scheme, 'tiered');
      assert.equal(usage.tiers_mode, 'graduated');
      assert.deepEqual(usage.tiers?.map((t) => [t.up_to, String(t.unit_amount_decimal)]), [[60_000, '0'], [null, '0.083333333333']]);
      const fee = await stripe.prices.retrieve(pro.stripe_fee_price_id!);
      assert.equal(fee.lookup_key, 'mindbot_pro_monthly_v1_fee');
      assert.equal(fee.unit_amount, 4900);
      assert.equal(fee.recurring?.usage_type, 'licensed');
      const tiered = await stripe.prices.retrieve((await planRow('tiered')).stripe_usage_price_id!, { expand: ['tiers'] });
      assert.deepEqual(tiered.tiers?.map((t) => [t.up_to, String(t.unit_amount_decimal)]),
        [[30_000, '0.1'], [120_000, '0.066666666667'], [null, '0.033333333333']]);

      const second = await syncStripeCatalogue(stripe, sidecar.store);
      assert.deepEqual(second.created, []);
      assert.equal(second.left.length, first.created.length - 3, second.left.join('\n')); // less the 3 write-backs
      assert.deepEqual(await planRow('pro_monthly'), pro);
    });

    it('gives a new plan version new prices and deactivates the retired version\'s', async () => {
      const old = await planRow('payg');
      await db.sql.query(`update public.plans set status = 'retired', retired_at = now() where key = 'payg' and version = 1`);
      const { rows: [v2] } = await db.sql.query<{ id: string }>(
        `insert into public.plans (key, version, kind, name, description, default_cap_cents, max_cap_cents, sort_order)
         values ('payg', 2, 'payg', 'Pay as you go', '4 cents a minute', 5000, 50000, 20) returning id`);
      await db.sql.query(`insert into public.plan_rate_tiers (plan_id, position, up_to_seconds, cents_per_minute) values ($1, 1, null, 4.0)`, [v2!.id]);
      const report = await syncStripeCatalogue(stripe, sidecar.store);
      assert.ok(report.created.some((l) => l.startsWith('price mindbot_payg_v2_usage ')), report.created.join('\n'));
      assert.ok(report.created.some((l) => l.startsWith(`deactivated price mindbot_payg_v1_usage (${old.stripe_usage_price_id})`)));
      assert.ok(report.left.includes('product mindbot_plan_payg'));
      const now = await planRow('payg');
      assert.notEqual(now.stripe_usage_price_id, old.stripe_usage_price_id);
      assert.equal((await stripe.prices.retrieve(old.stripe_usage_price_id!)).active, false);
      assert.deepEqual((await syncStripeCatalogue(stripe, sidecar.store)).created, []);
    });
  });
  describe('the stripe-sync command (src/payments/stripe-sync-cli.ts)', () => {
    it('syncs the configured database with the configured Stripe and says what it left', { skip: engine === 'PGlite' && 'needs a database URL' }, async () => {
      const root = fileURLToPath(new URL('..', import.meta.url));
      // The command's entry itself (launch.sh would source a developer's .env, and with it their own Stripe account).
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/payments/stripe-sync-cli.ts'], {
        cwd: root, timeout: 60_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp', DATABASE_URL: db.url!, STRIPE_SECRET_KEY: fake.apiKey, STRIPE_API_BASE: fake.url, LOG_LEVEL: 'error' },
      });
      assert.match(stdout, /^0 created or changed, \d+ left as they were$/m, stdout);
      assert.match(stdout, /^left {5}price mindbot_pro_monthly_v1_fee \(price_\w+\)$/m, stdout);
      assert.match(stdout, /^left {5}inactive price mindbot_payg_v1_usage /m, stdout);
    });
  });

  describe('a subscription through Checkout and its month on the test clock', () => {
    const caller = newUserId();
    let subscriptionId = '';
    let customerId = '';

    it('subscribes through Checkout: pending, then active with Stripe\'s period once the webhooks land', async () => {
      const started = await subscribe(caller, 'pro_monthly');
      subscriptionId = started.subscription.id;
      customerId = started.customer.id;
      const pending = await userPlan(caller);
      assert.equal(pending.status, 'pending');
      assert.equal(pending.stripe_checkout_session_id, started.sessionId);
      assert.equal(pending.spending_cap_cents, 5000);
      const items = await stripe.checkout.sessions.listLineItems(started.sessionId);
      const pro = await planRow('pro_monthly');
      assert.deepEqual(items.data.map((i) => [i.price?.id, i.quantity]), [[pro.stripe_fee_price_id, 1], [pro.stripe_usage_price_id, null]]);

      const answers = outcomes(await billing.deliver());
      // The customer was made by the sidecar before Checkout (and remembered), so Checkout creates none.
      assert.equal(started.customer.id, await sidecar.store.getStripeCustomer(caller));
      assert.deepEqual(answers, [
        ['customer.subscription.created', 'plan_updated'], ['invoice.created', 'invoice_recorded'],
        ['invoice.finalized', 'invoice_recorded'], ['invoice.paid', 'invoice_recorded'], ['invoice.payment_succeeded', 'ignored'],
        ['checkout.session.completed', 'linked'],
      ]);
      const active = await userPlan(caller);
      assert.equal(active.status, 'active');
      assert.equal(active.stripe_subscription_id, subscriptionId);
      assert.equal(active.current_period_start.getTime() / 1000, START);
      assert.equal(active.current_period_end.getTime() / 1000, Date.UTC(2026, 1, 28, 12) / 1000);

      const current = await api('GET', '/api/plans/current', caller);
      assert.equal(current.body.plan.plan_key, 'pro_monthly');
      assert.equal(current.body.plan.status, 'active');
      assert.deepEqual(current.body.invoices.map((i: any) => [i.status, i.total_cents, i.amount_paid_cents]), [['paid', 4900, 4900]]);

      const again = await api('POST', '/api/plans/payg/subscribe', caller, {});
      assert.equal(again.status, 409);
      assert.equal(again.body.error.code, 'plan_conflict');
      const portal = await api('POST', '/api/billing/portal', caller, {});
      assert.equal(portal.status, 200);
      assert.match(portal.body.url, /^https:\/\/billing\.stripe\.com\//);
    });

    it('closes the period: the renewal invoice is recorded created, finalized and paid, and the period moves on', async () => {
      const closed = await billing.closePeriod(subscriptionId);
      const answers = outcomes(closed.deliveries);
      assert.deepEqual(answers.map(([type]) => type), ['customer.subscription.updated', 'invoice.created', 'invoice.finalized', 'invoice.paid', 'invoice.payment_succeeded']);
      assert.deepEqual(answers.slice(1, 4).map(([, outcome]) => outcome), ['invoice_recorded', 'invoice_recorded', 'invoice_recorded']);
      const { rows: [invoice] } = await db.sql.query<Record<string, any>>('select * from public.stripe_invoices where invoice_id = $1', [closed.invoice.id]);
      assert.equal(invoice!.status, 'paid');
      assert.equal(invoice!.total_cents, closed.invoice.total);
      assert.equal(invoice!.amount_paid_cents, 4900);
      assert.equal(invoice!.user_id, caller);
      const row = await userPlan(caller);
      assert.equal(row.status, 'active');
      assert.equal(row.current_period_start.getTime() / 1000, Date.UTC(2026, 1, 28, 12) / 1000);
      assert.equal(row.current_period_end.getTime() / 1000, Date.UTC(2026, 2, 31, 12) / 1000);
    });

    it('a failed renewal suspends the plan with the reason and the hosted invoice; paying it lifts the suspension', async () => {
      billing.declinePayments(customerId);
      const closed = await billing.closePeriod(subscriptionId);
      const answers = outcomes(closed.deliveries);
      assert.ok(answers.some(([type, outcome]) => type === 'invoice.payment_failed' && outcome === 'plan_suspended'), JSON.stringify(answers));
      const suspended = await userPlan(caller);
      assert.equal(suspended.status, 'suspended');
      assert.equal(suspended.suspended_invoice_id, closed.invoice.id);
      assert.equal(suspended.suspended_invoice_url, closed.invoice.hosted_invoice_url);
      assert.match(suspended.suspended_reason, new RegExp(`invoice ${closed.invoice.id} \\(49\\.00 USD\\) failed`));
      const shown = await api('GET', '/api/plans/current', caller);
      assert.equal(shown.body.plan.status, 'suspended');
      assert.equal(shown.body.plan.suspended_invoice_url, closed.invoice.hosted_invoice_url);
      assert.deepEqual(shown.body.invoices[0].status, 'open');
      assert.equal(shown.body.invoices[0].payment_failed, true);
      const change = await api('POST', '/api/plans/payg/change', caller, {});
      assert.equal(change.status, 409);

      billing.acceptPayments(customerId);
      await stripe.invoices.pay(closed.invoice.id, { payment_method: 'pm_card_visa' });
      const paid = outcomes(await billing.deliver());
      assert.ok(paid.some(([type, outcome]) => type === 'invoice.paid' && outcome === 'plan_lifted'), JSON.stringify(paid));
      const lifted = await userPlan(caller);
      assert.equal(lifted.status, 'active');
      assert.equal(lifted.suspended_reason, null);
      assert.equal(lifted.suspended_invoice_url, null);
    });

    it('cancels at the period end: still active until Stripe ends it at the boundary', async () => {
      const cancel = await api('POST', '/api/plans/cancel', caller, {});
      assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
      outcomes(await billing.deliver());
      const canceling = await userPlan(caller);
      assert.equal(canceling.status, 'active');
      assert.equal(canceling.cancel_at_period_end, true);
      const periodEnd = canceling.current_period_end.getTime() / 1000;

      const closed = await billing.closePeriod(subscriptionId);
      const answers = outcomes(closed.deliveries);
      assert.ok(answers.some(([type, outcome]) => type === 'customer.subscription.deleted' && outcome === 'plan_ended'), JSON.stringify(answers));
      const ended = await userPlan(caller);
      assert.equal(ended.status, 'ended');
      assert.equal(ended.ended_at.getTime() / 1000, periodEnd);
      assert.equal((await api('GET', '/api/plans/current', caller)).body.plan, null);
      // Stripe delivering the cancellation's update again changes nothing.
      const update = billing.events((e) => e.type === 'customer.subscription.updated'
        && (e.data.object as { id: string }).id === subscriptionId).at(-1)!;
      const resent = await sidecar.deliver(update);
      assert.equal(((await resent.json()) as { outcome: string }).outcome, 'duplicate_event');
      assert.equal((await userPlan(caller)).status, 'ended');
    });
  });

  describe('what the plan routes refuse', () => {
    it('answers 4xx JSON for plans that are not offered, callers without a plan, and bad input', async () => {
      const caller = newUserId();
      const cases: [string, string, number, string][] = [
        ['POST', '/api/plans/prepaid/subscribe', 404, 'unknown_plan'],
        ['POST', '/api/plans/nosuchplan/subscribe', 404, 'unknown_plan'],
        ['POST', '/api/plans/Bad-Key/subscribe', 400, 'invalid_request'],
        ['POST', '/api/plans/payg/change', 409, 'plan_conflict'],
        ['POST', '/api/plans/cancel', 409, 'plan_conflict'],
        ['POST', '/api/billing/portal', 409, 'no_billing_account'],
      ];
      for (const [method, path, status, code] of cases) {
        const answer = await api(method, path, caller, {});
        assert.equal(answer.status, status, `${path}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error.code, code, path);
      }
      assert.equal((await api('POST', '/api/plans/payg/subscribe', caller, { extra: 1 })).status, 400);
      assert.equal((await sidecar.request('POST', '/api/plans/payg/subscribe', { body: {} })).status, 401);
      assert.deepEqual((await api('GET', '/api/plans/current', caller)).body, { plan: null, invoices: [] });
    });

    it('replaces an abandoned Checkout\'s pending plan with the new one', async () => {
      const caller = newUserId();
      const first = await api('POST', '/api/plans/payg/subscribe', caller, {});
      const second = await api('POST', '/api/plans/tiered/subscribe', caller, {});
      assert.equal(second.status, 200, JSON.stringify(second.body));
      assert.equal(first.status, 200);
      const { rows } = await db.sql.query<{ status: string; stripe_checkout_session_id: string }>(
        'select status, stripe_checkout_session_id from public.user_plans where user_id = $1', [caller]);
      assert.deepEqual(rows.map((r) => [r.status, r.stripe_checkout_session_id]), [['pending', second.body.checkout_session_id]]);
      assert.notEqual(first.body.checkout_session_id, second.body.checkout_session_id);
      assert.equal((await api('GET', '/api/plans/current', caller)).body.plan.plan_key, 'tiered');
    });
  });

  describe('moving between plans', () => {
    it('upgrades mid-period at once (prorated at Stripe); a downgrade waits for the period end', async () => {
      const caller = newUserId();
      const { subscription } = await subscribe(caller, 'payg');
      outcomes(await billing.deliver());
      assert.equal((await userPlan(caller)).plan_key, 'payg');
      await billing.advanceBy(10 * 86_400);

      const up = await api('POST', '/api/plans/pro_monthly/change', caller, {});
      assert.equal(up.status, 200, JSON.stringify(up.body));
      assert.deepEqual(up.body, { direction: 'upgrade', plan_key: 'pro_monthly', effective: 'now', effective_at: null });
      const pro = await planRow('pro_monthly');
      const items = (await stripe.subscriptions.retrieve(subscription.id)).items.data;
      assert.deepEqual(items.map((i) => i.price.id).sort(), [pro.stripe_fee_price_id, pro.stripe_usage_price_id].sort());
      const answers = outcomes(await billing.deliver());
      assert.deepEqual(answers.find(([type]) => type === 'customer.subscription.updated'), ['customer.subscription.updated', 'plan_updated']);
      const upgraded = await userPlan(caller);
      assert.equal(upgraded.plan_key, 'pro_monthly');
      assert.equal(upgraded.status, 'active');

      const down = await api('POST', '/api/plans/payg/change', caller, {});
      assert.equal(down.status, 200, JSON.stringify(down.body));
      assert.equal(down.body.direction, 'downgrade');
      assert.equal(down.body.effective, 'period_end');
      assert.equal(down.body.effective_at, upgraded.current_period_end.toISOString());
      assert.equal((await api('GET', '/api/plans/current', caller)).body.plan.scheduled_plan_key, 'payg');
      assert.equal((await userPlan(caller)).plan_key, 'pro_monthly');
      const same = (await stripe.subscriptions.retrieve(subscription.id)).items.data.map((i) => i.price.id).sort();
      assert.deepEqual(same, [pro.stripe_fee_price_id, pro.stripe_usage_price_id].sort());

      // At the boundary Stripe renews on the old plan; the renewal's event makes the downgrade at Stripe, whose
      // own event then moves the user plan.
      const periodEnd = upgraded.current_period_end.getTime() / 1000;
      const closed = await billing.closePeriod(subscription.id);
      const answers2 = [...outcomes(closed.deliveries), ...outcomes(await billing.deliver())];
      assert.ok(answers2.filter(([type]) => type === 'customer.subscription.updated').length >= 2, JSON.stringify(answers2));
      const payg = await planRow('payg');
      const moved = (await stripe.subscriptions.retrieve(subscription.id)).items.data;
      assert.deepEqual(moved.map((i) => i.price.id), [payg.stripe_usage_price_id]);
      const downgraded = await userPlan(caller);
      assert.equal(downgraded.plan_key, 'payg');
      assert.equal(downgraded.scheduled_plan_id, null);
      assert.equal(downgraded.status, 'active');
      assert.equal(downgraded.current_period_start.getTime() / 1000, periodEnd);
      assert.equal((await api('GET', '/api/plans/current', caller)).body.plan.scheduled_plan_key, null);
      // Stripe had billed the new period's fee in advance at the renewal; the downgrade (prorated) credits all of
      // it on the next invoice.
      const next = await billing.closePeriod(subscription.id);
      outcomes(next.deliveries);
      assert.deepEqual(next.invoice.lines.data.filter((l) => l.amount !== 0).map((l) => l.amount), [-4900]);
      assert.equal((await userPlan(caller)).plan_key, 'payg');
    });
  });

  describe('duplicate, out-of-order and foreign events', () => {
    it('applies each event once, and an older subscription event never undoes a newer one', async () => {
      billing.setWebhookEndpoint(null);
      try {
        const caller = newUserId();
        const { sessionId } = await subscribe(caller, 'payg');
        // Only the Checkout Session's completion lands first: the subscription is linked, the plan still pending.
        const completed = billing.events((e) => e.type === 'checkout.session.completed'
          && (e.data.object as { id: string }).id === sessionId)[0]!;
        const linked = await sidecar.deliver(completed);
        assert.equal(((await linked.json()) as { outcome: string }).outcome, 'linked');
        assert.equal((await userPlan(caller)).status, 'pending');
        await billing.advanceBy(3600);
        const up = await api('POST', '/api/plans/pro_monthly/change', caller, {});
        assert.equal(up.status, 200, JSON.stringify(up.body));

        // Everything else, newest first and each twice.
        const answers = outcomes(await billing.deliver(endpoint(), { order: 'reversed', twice: true }));
        const created = answers.filter(([type]) => type === 'customer.subscription.created').map(([, o]) => o);
        assert.deepEqual(created, ['stale_event', 'duplicate_event']);
        assert.deepEqual(answers.filter(([type]) => type === 'checkout.session.completed').map(([, o]) => o), ['duplicate_event', 'duplicate_event']);
        assert.equal(answers.filter(([, o]) => o === 'duplicate_event').length, answers.length / 2 + 1);
        const row = await userPlan(caller);
        assert.equal(row.plan_key, 'pro_monthly');
        assert.equal(row.status, 'active');
        assert.ok(row.current_period_end > row.current_period_start);
        // The first invoice was paid before its created/finalized events arrived: it stays paid.
        const { rows } = await db.sql.query<{ status: string }>('select status from public.stripe_invoices where user_id = $1', [caller]);
        assert.deepEqual(rows.map((r) => r.status), ['paid']);
      } finally {
        billing.setWebhookEndpoint(endpoint());
      }
    });

    it('a payment failure told after the invoice was paid suspends nothing', async () => {
      billing.setWebhookEndpoint(null);
      try {
        const caller = newUserId();
        const { subscription, customer } = await subscribe(caller, 'pro_monthly');
        outcomes(await billing.deliver(endpoint()));
        billing.declinePayments(customer.id);
        const closed = await billing.closePeriod(subscription.id);
        billing.acceptPayments(customer.id);
        await stripe.invoices.pay(closed.invoice.id, { payment_method: 'pm_card_visa' });
        const deliveries = await billing.deliver(endpoint(), { order: 'reversed' });
        outcomes(deliveries);
        const about = deliveries.filter((d) => (d.event.data.object as { id?: string }).id === closed.invoice.id)
          .map((d) => [d.event.type, (JSON.parse(d.body) as { outcome: string }).outcome]);
        assert.deepEqual(about, [
          ['invoice.payment_succeeded', 'ignored'], ['invoice.paid', 'invoice_recorded'], ['invoice.payment_failed', 'invoice_recorded'],
          ['invoice.finalized', 'invoice_recorded'], ['invoice.created', 'invoice_recorded'],
        ]);
        const row = await userPlan(caller);
        assert.equal(row.status, 'active');
        assert.equal(row.suspended_reason, null);
        const { rows: [invoice] } = await db.sql.query<Record<string, any>>('select status, payment_failed, amount_paid_cents from public.stripe_invoices where invoice_id = $1', [closed.invoice.id]);
        assert.deepEqual(invoice, { status: 'paid', payment_failed: true, amount_paid_cents: 4900 });
      } finally {
        billing.setWebhookEndpoint(endpoint());
      }
    });

    it('keeps a subscription that is no MindBot plan, and invoices of unknown customers, for an administrator', async () => {
      const pro = await planRow('pro_monthly');
      const session = await stripe.checkout.sessions.create({
        mode: 'subscription', line_items: [{ price: pro.stripe_fee_price_id!, quantity: 1 }, { price: pro.stripe_usage_price_id! }],
        success_url: 'https://app.example/ok', customer_email: 'stranger@example.test',
      });
      billing.completeSubscriptionCheckout(session.id);
      const answers = outcomes(await billing.deliver());
      assert.deepEqual(answers.filter(([type]) => type.startsWith('customer.subscription') || type.startsWith('invoice.') && type !== 'invoice.payment_succeeded')
        .map(([, o]) => o), ['needs_attention', 'needs_attention', 'needs_attention', 'needs_attention']);
      const attention = await sidecar.store.listStripeAttention();
      const codes = new Set(attention.items.map((a) => a.code));
      assert.ok(codes.has('unknown_subscription') && codes.has('unknown_customer'), [...codes].join(', '));
    });
  });
});

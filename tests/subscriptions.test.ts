// Postpaid plans through Stripe Billing: the catalogue sync, Checkout in subscription mode, plan changes and
// the subscription and invoice webhooks, driven through the real sidecar against the fake Stripe Billing
// (tests/helpers/fake-stripe-billing.ts), whose events are signed and posted to the real webhook route.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Stripe from 'stripe';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { startFakeStripeBilling, type FakeBilling } from './helpers/fake-stripe-billing.ts';
import type { FakeStripe } from './helpers/fake-stripe.ts';
import { startSidecar, WEBHOOK_SECRET, type TestSidecar } from './helpers/sidecar.ts';
import { syncStripeCatalogue } from '../src/payments/stripe-sync.ts';

// 2026-01-31 12:00 UTC: a monthly period runs to Feb 28 12:00.
const START = Date.UTC(2026, 0, 31, 12, 0, 0) / 1000;
const MIN = 60;

describe('postpaid plans through Stripe Billing', () => {
  let db: TestDatabase;
  let fake: FakeStripe & { billing: FakeBilling };
  let billing: FakeBilling;
  let stripe: Stripe;
  let sidecar: TestSidecar;

  before(async () => {
    db = await createPostgresDatabase();
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
});

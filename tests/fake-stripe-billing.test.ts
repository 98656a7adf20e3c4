import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import Stripe from 'stripe';
import { startFakeStripeBilling, type FakeBilling, type WebhookEndpoint } from './helpers/fake-stripe-billing.ts';
import { dec, periodBoundary, priceAmount, type PriceTerms } from './helpers/fake-stripe-billing-math.ts';
import type { FakeStripe } from './helpers/fake-stripe.ts';

// Stripe Billing on the fake Stripe API, driven through the real `stripe` client (v23) the way the plans work
// will drive it: a meter for voice seconds, metered and licensed prices, Checkout in subscription mode, the
// month on the test clock, invoices, failed payments, the portal. Objects are checked against Stripe's
// published fixtures (tests/fixtures/stripe-billing/).

const { StripeCardError, StripeInvalidRequestError } = Stripe.errors;

async function rejection<E extends Error>(promise: Promise<unknown>, ErrorClass: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    return e;
  }
  assert.fail(`expected ${ErrorClass.name}, but the call succeeded`);
}

const fixture = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`./fixtures/stripe-billing/${name}.json`, import.meta.url), 'utf8'));

/** The object has exactly the published fixture's keys (save the named exceptions). */
function assertFixtureKeys(actual: unknown, fixtureObject: Record<string, unknown>, what: string, options: { absent?: string[]; extra?: string[] } = {}): void {
  const expected = Object.keys(fixtureObject).filter((k) => !(options.absent ?? []).includes(k)).concat(options.extra ?? []).sort();
  assert.deepEqual(Object.keys(actual as object).sort(), expected, `${what} has the keys of Stripe's published ${String(fixtureObject.object ?? what)}`);
}

/** Stripe's `*_decimal` fields arrive as stripe-node Decimal objects; compare them as strings. */
const str = (value: unknown) => (value === null || value === undefined ? value : String(value));

// Start of the test clock: 2026-01-31 12:00 UTC, so a monthly period runs to Feb 28 and then Mar 31.
const START = Date.UTC(2026, 0, 31, 12, 0, 0) / 1000;
const MIN = 60;

interface Received {
  event: Stripe.Event;
  raw: string;
}

/** A webhook endpoint that verifies each delivery with the real stripe library, as the sidecar will. */
async function startReceiver(secret: string) {
  const received: Received[] = [];
  let status = 200;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      try {
        const event = Stripe.webhooks.constructEvent(raw, String(req.headers['stripe-signature']), secret);
        if (status === 200) received.push({ event, raw });
        res.writeHead(status, { 'content-type': 'application/json' }).end('{"received":true}');
      } catch (e) {
        res.writeHead(400).end(String(e));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint: WebhookEndpoint = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`, secret, timeoutMs: 5000 };
  return {
    endpoint,
    received,
    types: () => received.map((r) => r.event.type),
    clear: () => void (received.length = 0),
    answer: (s: number) => void (status = s),
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The catalogue the plans work will sync: one meter of voice seconds, and each plan's prices by lookup key. */
async function createCatalogue(stripe: Stripe) {
  const meter = await stripe.billing.meters.create({
    display_name: 'MindBot voice seconds', event_name: 'mindbot_voice_seconds', default_aggregation: { formula: 'sum' },
    customer_mapping: { type: 'by_id', event_payload_key: 'stripe_customer_id' }, value_settings: { event_payload_key: 'value' },
  });
  const perSecond = (centsPerMinute: number) => (centsPerMinute / 60).toFixed(12);
  const product = await stripe.products.create({ name: 'MindBot voice time', metadata: { plan: 'all' } });
  const payg = await stripe.prices.create({
    product: product.id, currency: 'usd', lookup_key: 'mindbot_payg_v1_usage', nickname: 'Pay as you go',
    recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
    billing_scheme: 'tiered', tiers_mode: 'graduated', tiers: [{ up_to: 'inf', unit_amount_decimal: perSecond(5) as never }],
  });
  const tiered = await stripe.prices.create({
    product: product.id, currency: 'usd', lookup_key: 'mindbot_tiered_v1_usage',
    recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
    billing_scheme: 'tiered', tiers_mode: 'graduated',
    tiers: [
      { up_to: 500 * MIN, unit_amount_decimal: perSecond(6) as never },
      { up_to: 2000 * MIN, unit_amount_decimal: perSecond(4) as never },
      { up_to: 'inf', unit_amount_decimal: perSecond(2) as never },
    ],
  });
  const proFee = await stripe.prices.create({
    product: product.id, currency: 'usd', unit_amount: 4900, lookup_key: 'mindbot_pro_v1_fee', recurring: { interval: 'month' },
  });
  const proUsage = await stripe.prices.create({
    product: product.id, currency: 'usd', lookup_key: 'mindbot_pro_v1_usage',
    recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
    billing_scheme: 'tiered', tiers_mode: 'graduated',
    tiers: [{ up_to: 1000 * MIN, unit_amount_decimal: '0' as never }, { up_to: 'inf', unit_amount_decimal: perSecond(5) as never }],
  });
  return { meter, product, payg, tiered, proFee, proUsage };
}

describe('Stripe Billing on the fake Stripe API', () => {
  let fake: FakeStripe & { billing: FakeBilling };
  let stripe: Stripe;
  let billing: FakeBilling;

  before(async () => {
    fake = await startFakeStripeBilling({ billing: { startTime: START } });
    stripe = fake.client();
    billing = fake.billing;
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  /** A subscriber through Checkout (mode=subscription), as the sidecar will make one. */
  async function subscribe(lineItems: Stripe.Checkout.SessionCreateParams.LineItem[], options: { email?: string; paymentMethod?: string; billingMode?: 'classic' | 'flexible' } = {}) {
    const session = await stripe.checkout.sessions.create({
      mode: 'subscription', line_items: lineItems, success_url: 'https://app.example/plans/done?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://app.example/plans', client_reference_id: 'user-1', customer_email: options.email ?? 'caller@example.test',
      metadata: { user_id: 'user-1' },
      subscription_data: { metadata: { user_id: 'user-1', plan_id: 'plan-1' }, ...(options.billingMode ? { billing_mode: { type: options.billingMode } } : {}) },
    });
    const done = billing.completeSubscriptionCheckout(session.id, { paymentMethod: options.paymentMethod });
    return done;
  }

  /** A meter event the way the outbox will send one: a billed increment with a stable identifier, stamped `at`. */
  async function meterSeconds(customer: string, seconds: number, at: number, identifier: string) {
    return stripe.billing.meterEvents.create({ event_name: 'mindbot_voice_seconds', identifier, timestamp: at, payload: { stripe_customer_id: customer, value: String(seconds) } });
  }

  /** Usage happening at `at`: the clock moves there first (doing whatever falls due on the way), then the event is sent. */
  async function useAt(customer: string, seconds: number, at: number, identifier: string) {
    if (billing.now() < at) await billing.advanceTo(at);
    return meterSeconds(customer, seconds, at, identifier);
  }

  describe('meters and meter events', () => {
    it('creates a meter, finds it by event name, and refuses a second active meter for that name', async () => {
      const { meter } = await createCatalogue(stripe);
      assert.match(meter.id, /^mtr_test_/);
      assertFixtureKeys(meter, fixture('billing.meter'), 'meter');
      assert.deepEqual(meter.customer_mapping, { event_payload_key: 'stripe_customer_id', type: 'by_id' });
      assert.deepEqual(meter.default_aggregation, { formula: 'sum' });
      assert.equal(meter.status, 'active');
      assert.equal(meter.created, START);

      const listed = await stripe.billing.meters.list({ status: 'active' });
      assert.deepEqual(listed.data.filter((m) => m.event_name === 'mindbot_voice_seconds').map((m) => m.id), [meter.id]);
      assert.equal((await stripe.billing.meters.retrieve(meter.id)).display_name, 'MindBot voice seconds');

      const twice = await rejection(stripe.billing.meters.create({ display_name: 'again', event_name: 'mindbot_voice_seconds', default_aggregation: { formula: 'sum' } }), StripeInvalidRequestError);
      assert.equal(twice.param, 'event_name');
      const noFormula = await rejection(stripe.billing.meters.create({ display_name: 'x', event_name: 'other', default_aggregation: { formula: '' } as never }), StripeInvalidRequestError);
      assert.equal(noFormula.code, 'parameter_missing');
      assert.equal(noFormula.param, 'default_aggregation[formula]');
      const badFormula = await rejection(stripe.billing.meters.create({ display_name: 'x', event_name: 'other', default_aggregation: { formula: 'max' } }), StripeInvalidRequestError);
      assert.equal(badFormula.param, 'default_aggregation[formula]');

      const renamed = await stripe.billing.meters.update(meter.id, { display_name: 'Voice seconds' });
      assert.equal(renamed.display_name, 'Voice seconds');
      const off = await stripe.billing.meters.deactivate(meter.id);
      assert.equal(off.status, 'inactive');
      assert.equal(off.status_transitions.deactivated_at, START);
      assert.equal((await stripe.billing.meters.reactivate(meter.id)).status, 'active');
    });

    it('records a meter event and dedupes its identifier like Stripe: a resend is refused with 400, a replay under the same idempotency key is the first answer', async () => {
      const { meter } = await createCatalogue(stripe);
      const customer = await stripe.customers.create({ email: 'c@example.test' });
      const first = await meterSeconds(customer.id, 60, START - 120, 'session-1:charge-1');
      assertFixtureKeys(first, fixture('billing.meter_event'), 'meter event');
      assert.deepEqual(first.payload, { stripe_customer_id: customer.id, value: '60' });
      assert.equal(first.identifier, 'session-1:charge-1');
      assert.equal(first.timestamp, START - 120);
      assert.equal(first.created, START);
      await meterSeconds(customer.id, 60, START - 60, 'session-1:charge-2');

      // The outbox resends after losing the answer: a new request (a new idempotency key) with the same identifier.
      const resend = await rejection(meterSeconds(customer.id, 60, START - 60, 'session-1:charge-2'), StripeInvalidRequestError);
      assert.equal(resend.statusCode, 400);
      assert.equal(resend.message, 'An event already exists with identifier session-1:charge-2.');
      assert.equal(resend.code, undefined);

      // stripe-node's own retry reuses its idempotency key: the first answer is replayed.
      const params = { event_name: 'mindbot_voice_seconds', identifier: 'session-1:charge-3', timestamp: START, payload: { stripe_customer_id: customer.id, value: '60' } };
      const a = await stripe.billing.meterEvents.create(params, { idempotencyKey: 'outbox-row-3' });
      const b = await stripe.billing.meterEvents.create(params, { idempotencyKey: 'outbox-row-3' });
      assert.deepEqual([b.identifier, b.created, b.timestamp, b.payload], [a.identifier, a.created, a.timestamp, a.payload]);
      assert.equal(fake.lastRequest('/v1/billing/meter_events')!.replayed, true);

      assert.equal(billing.usage(meter.id, customer.id, START - 3600, START + 3600), 180);
      assert.equal(billing.meterEvents().length, 3);

      // Stripe promises uniqueness for at least 24 hours; after that a resend would count again.
      await billing.advanceBy(24 * 3600);
      await meterSeconds(customer.id, 60, billing.now(), 'session-1:charge-1');
      assert.equal(billing.usage(meter.id, customer.id, START - 3600, billing.now() + 1), 240);
    });

    it('accepts events Stripe can only validate later, and counts them nowhere', async () => {
      const { meter } = await createCatalogue(stripe);
      const customer = await stripe.customers.create({});
      await meterSeconds('cus_nobody', 60, START, 'e-unknown-customer');
      await stripe.billing.meterEvents.create({ event_name: 'no_such_meter', payload: { stripe_customer_id: customer.id, value: '1' } });
      await stripe.billing.meterEvents.create({ event_name: 'mindbot_voice_seconds', payload: { stripe_customer_id: customer.id, value: 'sixty' } });
      await stripe.billing.meterEvents.create({ event_name: 'mindbot_voice_seconds', payload: { value: '60' } });
      await meterSeconds(customer.id, 60, START - 36 * 86_400, 'e-too-old');
      await meterSeconds(customer.id, 60, START + 600, 'e-future');
      assert.deepEqual(billing.meterEventErrors().map((r) => r.error), [
        'meter_event_customer_not_found', 'no_meter', 'meter_event_invalid_value', 'meter_event_no_customer_defined', 'timestamp_too_far_in_past', 'timestamp_in_future',
      ]);
      assert.equal(billing.usage(meter.id, customer.id, START - 40 * 86_400, START + 3600), 0);

      const noPayload = await rejection(stripe.billing.meterEvents.create({ event_name: 'mindbot_voice_seconds' } as never), StripeInvalidRequestError);
      assert.equal(noPayload.code, 'parameter_missing');
      assert.equal(noPayload.param, 'payload');
      const unknown = await rejection(stripe.billing.meterEvents.create({ event_name: 'x', payload: { value: '1' }, value: 1 } as never), StripeInvalidRequestError);
      assert.equal(unknown.code, 'parameter_unknown');
    });

    it("answers event summaries for a customer and range, whole or by hour, and lags while Stripe's aggregation does", async () => {
      const { meter } = await createCatalogue(stripe);
      const customer = await stripe.customers.create({});
      const hour = START - (START % 3600) - 3 * 3600; // three whole hours ago
      await meterSeconds(customer.id, 60, hour + 10, 'a');
      await meterSeconds(customer.id, 120, hour + 3599, 'b');
      await meterSeconds(customer.id, 30, hour + 3600, 'c');
      const other = await stripe.customers.create({});
      await meterSeconds(other.id, 999, hour + 100, 'd');

      const whole = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: hour, end_time: hour + 3 * 3600 });
      assert.equal(whole.data.length, 1);
      assertFixtureKeys(whole.data[0], fixture('billing.meter_event_summary'), 'meter event summary');
      assert.deepEqual({ ...whole.data[0], id: 'x' }, { aggregated_value: 210, end_time: hour + 3 * 3600, id: 'x', livemode: false, meter: meter.id, object: 'billing.meter_event_summary', start_time: hour });

      const hourly = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: hour, end_time: hour + 3 * 3600, value_grouping_window: 'hour' });
      assert.deepEqual(hourly.data.map((s) => [s.start_time - hour, s.aggregated_value]), [[0, 180], [3600, 30], [7200, 0]]);

      const misaligned = await rejection(stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: hour + 30, end_time: hour + 3600, value_grouping_window: 'hour' }), StripeInvalidRequestError);
      assert.equal(misaligned.param, 'start_time');
      const noCustomer = await rejection(stripe.billing.meters.listEventSummaries(meter.id, { start_time: hour, end_time: hour + 60 } as never), StripeInvalidRequestError);
      assert.equal(noCustomer.param, 'customer');

      billing.holdAggregation();
      await meterSeconds(customer.id, 45, hour + 7300, 'late');
      const lagging = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: hour, end_time: hour + 3 * 3600 });
      assert.equal(lagging.data[0]!.aggregated_value, 210);
      assert.equal(billing.usage(meter.id, customer.id, hour, hour + 3 * 3600), 255); // what the invoice will count
      billing.releaseAggregation();
      const caughtUp = await stripe.billing.meters.listEventSummaries(meter.id, { customer: customer.id, start_time: hour, end_time: hour + 3 * 3600 });
      assert.equal(caughtUp.data[0]!.aggregated_value, 255);
    });
  });

  describe('products and prices', () => {
    it('creates metered graduated prices on a meter with lookup keys; tiers only when expanded', async () => {
      const { product, tiered, proFee } = await createCatalogue(stripe);
      assertFixtureKeys(product, fixture('product'), 'product');
      assertFixtureKeys(tiered, fixture('price'), 'price');
      assert.equal(tiered.billing_scheme, 'tiered');
      assert.equal(tiered.tiers_mode, 'graduated');
      assert.equal(tiered.unit_amount, null);
      assert.equal(tiered.tiers, undefined);
      assertFixtureKeys(tiered.recurring, fixture('price').recurring as Record<string, unknown>, 'price.recurring');
      assert.equal(tiered.recurring?.usage_type, 'metered');
      assert.equal(tiered.lookup_key, 'mindbot_tiered_v1_usage');
      assert.equal(proFee.unit_amount, 4900);
      assert.equal(str(proFee.unit_amount_decimal), '4900');

      const expanded = await stripe.prices.retrieve(tiered.id, { expand: ['tiers'] });
      assert.deepEqual(expanded.tiers?.map((t) => [t.up_to, str(t.unit_amount_decimal), t.unit_amount, t.flat_amount]), [
        [30_000, '0.1', null, null], [120_000, '0.066666666667', null, null], [null, '0.033333333333', null, null],
      ]);
      assert.deepEqual(fake.lastRequest()!.query, { expand: ['tiers'] });
      const perUnit = await stripe.prices.retrieve(proFee.id, { expand: ['tiers'] });
      assert.equal(perUnit.tiers, undefined);

      const byKey = await stripe.prices.list({ lookup_keys: ['mindbot_pro_v1_fee', 'mindbot_pro_v1_usage'], expand: ['data.tiers'] });
      assert.deepEqual(byKey.data.map((p) => p.lookup_key).sort(), ['mindbot_pro_v1_fee', 'mindbot_pro_v1_usage']);
      assert.equal(byKey.data.find((p) => p.lookup_key === 'mindbot_pro_v1_usage')!.tiers?.length, 2);
      assert.equal(byKey.data.find((p) => p.lookup_key === 'mindbot_pro_v1_fee')!.tiers, undefined);
    });

    it('keeps a lookup key on one price: a second one is refused unless transfer_lookup_key moves it', async () => {
      const { product, proFee } = await createCatalogue(stripe);
      const params: Stripe.PriceCreateParams = { product: product.id, currency: 'usd', unit_amount: 5900, lookup_key: 'mindbot_pro_v1_fee', recurring: { interval: 'month' } };
      const taken = await rejection(stripe.prices.create(params), StripeInvalidRequestError);
      assert.equal(taken.param, 'lookup_key');
      assert.match(taken.message, new RegExp(proFee.id));

      const v2 = await stripe.prices.create({ ...params, transfer_lookup_key: true });
      assert.equal(v2.lookup_key, 'mindbot_pro_v1_fee');
      assert.equal((await stripe.prices.retrieve(proFee.id)).lookup_key, null);
      assert.deepEqual((await stripe.prices.list({ lookup_keys: ['mindbot_pro_v1_fee'] })).data.map((p) => p.id), [v2.id]);

      const retired = await stripe.prices.update(proFee.id, { active: false, metadata: { retired: 'yes' } });
      assert.equal(retired.active, false);
      assert.deepEqual(retired.metadata, { retired: 'yes' });
      assert.ok(!(await stripe.prices.list({ product: product.id })).data.some((p) => p.id === proFee.id)); // lists active prices
      assert.ok((await stripe.prices.list({ product: product.id, active: false })).data.some((p) => p.id === proFee.id));

      const back = await stripe.prices.update(proFee.id, { lookup_key: 'mindbot_pro_v1_fee', transfer_lookup_key: true });
      assert.equal(back.lookup_key, 'mindbot_pro_v1_fee');
    });

    it('validates prices like the API', async () => {
      const { meter, product } = await createCatalogue(stripe);
      const noMeter = await rejection(stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 1, recurring: { interval: 'month', usage_type: 'metered' } }), StripeInvalidRequestError);
      assert.equal(noMeter.param, 'recurring[meter]');
      const noMode = await rejection(stripe.prices.create({ product: product.id, currency: 'usd', billing_scheme: 'tiered', tiers: [{ up_to: 'inf', unit_amount: 1 }] }), StripeInvalidRequestError);
      assert.equal(noMode.param, 'tiers_mode');
      const notLast = await rejection(stripe.prices.create({ product: product.id, currency: 'usd', billing_scheme: 'tiered', tiers_mode: 'graduated', tiers: [{ up_to: 10, unit_amount: 1 }] }), StripeInvalidRequestError);
      assert.equal(notLast.param, 'tiers[0][up_to]');
      const transform = await rejection(stripe.prices.create({
        product: product.id, currency: 'usd', billing_scheme: 'tiered', tiers_mode: 'graduated', tiers: [{ up_to: 'inf', unit_amount: 1 }], transform_quantity: { divide_by: 60, round: 'up' },
      }), StripeInvalidRequestError);
      assert.equal(transform.param, 'transform_quantity');
      const missingProduct = await rejection(stripe.prices.create({ currency: 'usd', unit_amount: 100 }), StripeInvalidRequestError);
      assert.equal(missingProduct.code, 'parameter_missing');
      const unknown = await rejection(stripe.prices.create({ product: product.id, currency: 'usd', unit_amount: 1, recurring: { interval: 'month', aggregate_usage: 'sum' } as never }), StripeInvalidRequestError);
      assert.equal(unknown.code, 'parameter_unknown');
      assert.equal(unknown.param, 'recurring[aggregate_usage]');

      // A per-minute price on seconds, billed in whole minutes rounded up.
      const perMinute = await stripe.prices.create({
        product: product.id, currency: 'usd', unit_amount: 5, transform_quantity: { divide_by: 60, round: 'up' }, recurring: { interval: 'month', usage_type: 'metered', meter: meter.id },
      });
      assert.deepEqual(perMinute.transform_quantity, { divide_by: 60, round: 'up' });
      const viaProductData = await stripe.prices.create({ currency: 'usd', unit_amount: 900, product_data: { name: 'Top-up' } });
      assert.equal((await stripe.products.retrieve(String(viaProductData.product))).name, 'Top-up');
    });

    it('computes graduated, volume and transformed amounts exactly, rounding once (pure arithmetic)', () => {
      const graduated: PriceTerms = {
        billing_scheme: 'tiered', tiers_mode: 'graduated', unit_amount_decimal: null, transform_quantity: null,
        tiers: [
          { up_to: 500 * MIN, unit_amount_decimal: '0.1', unit_amount: null, flat_amount: null, flat_amount_decimal: null },
          { up_to: 2000 * MIN, unit_amount_decimal: '0.066666666667', unit_amount: null, flat_amount: null, flat_amount_decimal: null },
          { up_to: null, unit_amount_decimal: '0.033333333333', unit_amount: null, flat_amount: null, flat_amount_decimal: null },
        ],
      };
      assert.equal(priceAmount(graduated, dec(0)), 0);
      assert.equal(priceAmount(graduated, dec(500 * MIN)), 3000); // 500 min × 6¢
      assert.equal(priceAmount(graduated, dec(2000 * MIN)), 9000); // + 1,500 min × 4¢
      assert.equal(priceAmount(graduated, dec(2500 * MIN)), 10000); // + 500 min × 2¢
      assert.equal(priceAmount(graduated, dec(1234 * MIN + 30)), 5938); // 3000 + 734.5 min × 4¢
      assert.equal(priceAmount(graduated, dec(1)), 0); // 0.1¢ rounds to nothing
      assert.equal(priceAmount(graduated, dec(5)), 1); // 0.5¢ rounds half up
      const volume: PriceTerms = { ...graduated, tiers_mode: 'volume' };
      assert.equal(priceAmount(volume, dec(2500 * MIN)), 5000); // every minute at 2¢
      const transformed: PriceTerms = { billing_scheme: 'per_unit', tiers_mode: null, tiers: null, unit_amount_decimal: '5', transform_quantity: { divide_by: 60, round: 'up' } };
      assert.equal(priceAmount(transformed, dec(150 * MIN + 1)), 755); // 151 started minutes × 5¢
      // Billing periods from a 31st: Feb 28, then Mar 31.
      assert.equal(new Date(periodBoundary(START, 'month', 1, 1) * 1000).toISOString(), '2026-02-28T12:00:00.000Z');
      assert.equal(new Date(periodBoundary(START, 'month', 1, 2) * 1000).toISOString(), '2026-03-31T12:00:00.000Z');
    });
  });

  describe('subscriptions through Checkout and the month on the test clock', () => {
    let receiver: Awaited<ReturnType<typeof startReceiver>>;
    before(async () => {
      receiver = await startReceiver('whsec_fake_billing_test');
    });
    after(async () => {
      await receiver.close();
    });
    beforeEach(() => receiver.clear());

    it('subscribes through Checkout in subscription mode: a licensed fee with a quantity, a metered price without one', async () => {
      const { proFee, proUsage, payg } = await createCatalogue(stripe);
      const noQty = await rejection(stripe.checkout.sessions.create({ mode: 'subscription', success_url: 'https://app.example/ok', line_items: [{ price: proFee.id }] }), StripeInvalidRequestError);
      assert.equal(noQty.param, 'line_items[0][quantity]');
      const meteredQty = await rejection(stripe.checkout.sessions.create({ mode: 'subscription', success_url: 'https://app.example/ok', line_items: [{ price: payg.id, quantity: 1 }] }), StripeInvalidRequestError);
      assert.equal(meteredQty.param, 'line_items[0][quantity]');
      const creation = await rejection(stripe.checkout.sessions.create({ mode: 'subscription', success_url: 'https://app.example/ok', customer_creation: 'always', line_items: [{ price: payg.id }] }), StripeInvalidRequestError);
      assert.equal(creation.param, 'customer_creation');

      const session = await stripe.checkout.sessions.create({
        mode: 'subscription', line_items: [{ price: proFee.id, quantity: 1 }, { price: proUsage.id }], success_url: 'https://app.example/ok',
        customer_email: 'pro@example.test', metadata: { user_id: 'u-7' }, subscription_data: { metadata: { user_id: 'u-7' } },
      });
      assertFixtureKeys(session, fixture('checkout.session'), 'checkout session');
      assert.equal(session.mode, 'subscription');
      assert.equal(session.amount_total, 4900);
      assert.equal(session.status, 'open');
      assert.equal(session.subscription, null);
      const items = await stripe.checkout.sessions.listLineItems(session.id);
      assert.deepEqual(items.data.map((i) => [i.price?.id, i.quantity, i.amount_total]), [[proFee.id, 1, 4900], [proUsage.id, null, 0]]);

      assert.throws(() => billing.completeSubscriptionCheckout(session.id, { paymentMethod: 'pm_card_chargeDeclined' }), /declined/);
      const { subscription, invoice, customer } = billing.completeSubscriptionCheckout(session.id);
      assert.equal(customer.email, 'pro@example.test');

      const done = await stripe.checkout.sessions.retrieve(session.id, { expand: ['subscription'] });
      assert.equal(done.status, 'complete');
      assert.equal(done.payment_status, 'paid');
      assert.equal(done.customer, customer.id);
      const sub = done.subscription as Stripe.Subscription;
      assert.equal(sub.id, subscription.id);
      assertFixtureKeys(sub, fixture('subscription'), 'subscription');
      assert.equal(sub.status, 'active');
      assert.deepEqual(sub.metadata, { user_id: 'u-7' });
      assert.equal(sub.billing_mode.type, 'flexible');
      const [fee, usage] = sub.items.data;
      assertFixtureKeys(fee, fixture('subscription_item'), 'licensed subscription item');
      assertFixtureKeys(usage, fixture('subscription_item'), 'metered subscription item', { absent: ['quantity'] });
      assertFixtureKeys(fee!.plan, (fixture('subscription_item').plan as Record<string, unknown>), 'subscription item plan');
      assert.equal(fee!.quantity, 1);
      assert.equal(fee!.current_period_start, START);
      assert.equal(fee!.current_period_end, Date.UTC(2026, 1, 28, 12) / 1000);
      assert.equal(usage!.price.recurring?.meter, proUsage.recurring?.meter);

      // The first invoice bills the fee in advance and is paid at once.
      assertFixtureKeys(invoice, fixture('invoice'), 'invoice');
      assert.equal(invoice.billing_reason, 'subscription_create');
      assert.equal(invoice.status, 'paid');
      assert.equal(invoice.amount_paid, 4900);
      assert.deepEqual(invoice.lines.data.map((l) => [l.amount, l.period.start, l.period.end]), [[4900, START, fee!.current_period_end]]);
      assertFixtureKeys(invoice.lines.data[0], fixture('line_item'), 'invoice line');
      assert.equal(invoice.parent?.subscription_details?.subscription, subscription.id);

      const types = billing.events().map((e) => e.type);
      assert.deepEqual(types, ['customer.created', 'customer.subscription.created', 'invoice.created', 'invoice.finalized', 'invoice.paid', 'invoice.payment_succeeded', 'checkout.session.completed']);
      const deliveries = await billing.deliver(receiver.endpoint);
      assert.ok(deliveries.every((d) => d.status === 200 && d.error === null));
      assert.deepEqual(receiver.types(), types);
      const completed = receiver.received.at(-1)!.event;
      assertFixtureKeys(completed, fixture('event'), 'event');
      assert.equal((completed.data.object as Stripe.Checkout.Session).subscription, subscription.id);
      assert.equal(completed.created, START);
      assert.deepEqual(billing.pendingEvents(), []);

      const listed = await stripe.subscriptions.list({ customer: customer.id });
      assert.deepEqual(listed.data.map((s) => s.id), [subscription.id]);
      const items2 = await stripe.subscriptionItems.list({ subscription: subscription.id });
      assert.equal(items2.data.length, 2);
      assertFixtureKeys(await stripe.subscriptionItems.retrieve(fee!.id), fixture('subscription_item'), 'subscription item');
      const withInvoice = await stripe.subscriptions.retrieve(subscription.id, { expand: ['latest_invoice'] });
      assert.equal((withInvoice.latest_invoice as Stripe.Invoice).id, invoice.id);
    });

    it('closes a month of the tiered plan: the period\'s usage priced by graduated tiers on one line, events in Stripe\'s order, posted signed', async () => {
      const { tiered, meter } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: tiered.id }]);
      const periodEnd = subscription.items.data[0]!.current_period_end;
      // 1,234.5 minutes over the month: 246 five-minute increments and one of four and a half.
      for (let i = 0; i < 246; i++) await useAt(customer.id, 300, START + 600 + i * 7200, `s1:${i}`);
      await useAt(customer.id, 270, billing.now() + 7200, 's1:last');
      await billing.deliver(receiver.endpoint);
      receiver.clear();

      const closed = await billing.closePeriod(subscription.id, { webhook: receiver.endpoint });
      assert.equal(closed.now, periodEnd + 3600);
      const invoice = closed.invoice;
      assert.equal(invoice.billing_reason, 'subscription_cycle');
      assert.equal(invoice.period_start, START);
      assert.equal(invoice.period_end, periodEnd);
      assert.equal(invoice.lines.data.length, 1);
      const usage = invoice.lines.data[0]!;
      assert.equal(usage.quantity, 1234 * MIN + 30);
      assert.equal(usage.amount, 5938); // 500 min × 6¢ + 734.5 min × 4¢
      assert.deepEqual(usage.period, { start: START, end: periodEnd });
      assert.equal(invoice.total, 5938);
      assert.equal(invoice.amount_paid, 5938);
      assert.equal(invoice.status, 'paid');
      assert.match(invoice.hosted_invoice_url ?? '', /^https:\/\/invoice\.stripe\.com\/i\//);
      assert.match(invoice.number ?? '', /^[A-Z0-9]+-0002$/);
      assert.equal(billing.usage(meter.id, customer.id, START, periodEnd), 1234 * MIN + 30);

      // Stripe's order: the new period and the draft at the boundary; an hour later finalization and the charge.
      assert.deepEqual(closed.events.map((e) => [e.type, e.created]), [
        ['customer.subscription.updated', periodEnd], ['invoice.created', periodEnd],
        ['invoice.finalized', periodEnd + 3600], ['invoice.paid', periodEnd + 3600], ['invoice.payment_succeeded', periodEnd + 3600],
      ]);
      assert.deepEqual(receiver.types(), closed.events.map((e) => e.type));
      const updated = receiver.received[0]!.event;
      const newPeriod = (updated.data.object as Stripe.Subscription).items.data[0]!;
      assert.equal(newPeriod.current_period_start, periodEnd);
      assert.equal(newPeriod.current_period_end, Date.UTC(2026, 2, 31, 12) / 1000);
      assert.equal(((updated.data.previous_attributes as { items: Stripe.ApiList<Stripe.SubscriptionItem> }).items.data[0]!).current_period_end, periodEnd);
      const created = receiver.received[1]!.event.data.object as Stripe.Invoice;
      assert.equal(created.status, 'draft');
      assert.equal(created.hosted_invoice_url, null);
      assert.equal(created.automatically_finalizes_at, periodEnd + 3600);

      const viaApi = await stripe.invoices.list({ subscription: subscription.id });
      assert.deepEqual(viaApi.data.map((i) => i.billing_reason), ['subscription_cycle', 'subscription_create']);
      const lines = await stripe.invoices.listLineItems(invoice.id);
      assert.equal(lines.data[0]!.amount, 5938);
      assert.equal(str(lines.data[0]!.quantity_decimal), String(1234 * MIN + 30));
    });

    it('bills the subscription plan: $49 in advance, 1,000 minutes included, then 5¢ a minute; usage reported in the grace hour counts', async () => {
      const { proFee, proUsage } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: proFee.id, quantity: 1 }, { price: proUsage.id }]);
      const periodEnd = subscription.items.data[0]!.current_period_end;
      await useAt(customer.id, 900 * MIN, START + 3600, 'pro:1');
      await useAt(customer.id, 250 * MIN, periodEnd - 60, 'pro:2');
      await billing.advanceTo(periodEnd + 1800);
      // Reported half an hour late, for the closed period: Stripe's grace period still counts it.
      await meterSeconds(customer.id, 50 * MIN, periodEnd - 1, 'pro:3');
      // Usage of the new period is not on this invoice.
      await meterSeconds(customer.id, 10 * MIN, periodEnd + 1700, 'pro:4');
      const { invoice } = await billing.closePeriod(subscription.id);
      assert.deepEqual(invoice.lines.data.map((l) => [l.description.split(' × ')[0], l.amount, l.period.start, l.period.end]), [
        [String(1200 * MIN), 1000, START, periodEnd], // 200 minutes over the 1,000 included
        ['1', 4900, periodEnd, Date.UTC(2026, 2, 31, 12) / 1000],
      ]);
      assert.equal(invoice.total, 5900);
      assert.equal(invoice.amount_due, 5900);
      assert.equal(invoice.amount_paid, 5900);

      // Under the included minutes: the usage line is zero.
      await meterSeconds(customer.id, 500 * MIN, billing.now(), 'pro:5');
      const next = await billing.closePeriod(subscription.id);
      assert.deepEqual(next.invoice.lines.data.map((l) => l.amount), [0, 4900]);
      assert.equal(next.invoice.lines.data[0]!.quantity, 510 * MIN);
    });

    it('previews the upcoming invoice mid-period: usage so far and the next fee', async () => {
      const { proFee, proUsage } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: proFee.id, quantity: 1 }, { price: proUsage.id }]);
      await useAt(customer.id, 1100 * MIN, START + 60, 'p:1');
      await billing.advanceBy(86_400);
      const preview = await stripe.invoices.createPreview({ subscription: subscription.id });
      assert.equal(preview.billing_reason, 'upcoming');
      assert.deepEqual(preview.lines.data.map((l) => l.amount), [500, 4900]);
      assert.equal(preview.amount_due, 5400);
      assert.equal((await stripe.invoices.list({ customer: customer.id })).data.length, 1); // a preview is not stored
    });

    it('upgrades mid-period from pay-as-you-go to the subscription: usage so far billed at the old price, the fee prorated, included minutes from the change', async () => {
      const { payg, proFee, proUsage } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: payg.id }]);
      const periodEnd = subscription.items.data[0]!.current_period_end;
      await useAt(customer.id, 100 * MIN, START + 3600, 'u:1');
      const change = START + 14 * 86_400;
      await billing.advanceTo(change);
      await billing.deliver(receiver.endpoint);
      receiver.clear();

      const metered = subscription.items.data[0]!;
      const updated = await stripe.subscriptions.update(subscription.id, {
        items: [{ id: metered.id, price: proUsage.id }, { price: proFee.id, quantity: 1 }], proration_behavior: 'create_prorations',
        metadata: { plan_id: 'plan-pro' },
      });
      assert.deepEqual(updated.items.data.map((i) => [i.id === metered.id, i.price.id, i.quantity]), [[true, proUsage.id, undefined], [false, proFee.id, 1]]);
      assert.deepEqual(updated.metadata, { user_id: 'user-1', plan_id: 'plan-pro' });
      const [event] = billing.pendingEvents();
      assert.equal(event!.type, 'customer.subscription.updated');
      assert.deepEqual(Object.keys(event!.data.previous_attributes ?? {}).sort(), ['items', 'metadata']);
      assert.equal(event!.request.id, updated.lastResponse.requestId);

      await useAt(customer.id, 300 * MIN, change + 60, 'u:2'); // within the 1,000 included
      const { invoice } = await billing.closePeriod(subscription.id);
      const fraction = (periodEnd - change) / (periodEnd - START);
      const proration = Math.round(4900 * fraction);
      assert.deepEqual(invoice.lines.data.map((l) => [l.amount, l.parent.subscription_item_details.proration, l.parent.subscription_item_details.invoice_item !== null]), [
        [0, false, false], // pro usage since the change: 300 min, included
        [500, false, true], // pay-as-you-go usage before the change: 100 min × 5¢
        [proration, true, true], // the fee for the rest of the period
        [4900, false, false], // next period's fee
      ]);
      assert.equal(invoice.total, 500 + proration + 4900);
      assert.deepEqual(invoice.lines.data[1]!.period, { start: START, end: change });
      assert.equal(invoice.lines.data[0]!.period.start, change);
    });

    it('drops the usage before a price change with proration_behavior=none, and in billing_mode=classic', async () => {
      const { payg, proUsage, proFee } = await createCatalogue(stripe);
      const none = await subscribe([{ price: payg.id }], { email: 'none@example.test' });
      const classic = await subscribe([{ price: payg.id }], { email: 'classic@example.test', billingMode: 'classic' });
      assert.equal(classic.subscription.billing_mode.type, 'classic');
      await meterSeconds(none.customer.id, 100 * MIN, START + 60, 'n:1');
      await meterSeconds(classic.customer.id, 100 * MIN, START + 60, 'c:1');
      await billing.advanceTo(START + 14 * 86_400);
      const upgrade = (s: typeof none) => [{ id: s.subscription.items.data[0]!.id, price: proUsage.id }, { price: proFee.id, quantity: 1 }];
      await stripe.subscriptions.update(none.subscription.id, { items: upgrade(none), proration_behavior: 'none' });
      await stripe.subscriptions.update(classic.subscription.id, { items: upgrade(classic) });
      const closedNone = await billing.closePeriod(none.subscription.id); // the same period end: closes both
      assert.deepEqual(closedNone.invoice.lines.data.map((l) => l.amount), [0, 4900]); // no old usage, no proration
      const [closedClassic] = (await stripe.invoices.list({ subscription: classic.subscription.id, limit: 1 })).data;
      assert.equal(closedClassic!.period_end, closedNone.invoice.period_end);
      assert.deepEqual(closedClassic!.lines.data.map((l) => l.amount), [0, 2450, 4900]); // no old usage; half a month of the fee
    });

    it('cancels at the period end: the final invoice bills the last usage, then customer.subscription.deleted; nothing renews', async () => {
      const { payg } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: payg.id }]);
      const periodEnd = subscription.items.data[0]!.current_period_end;
      await meterSeconds(customer.id, 40 * MIN, START + 60, 'c:1');
      await billing.advanceBy(3600);
      await billing.deliver(receiver.endpoint);
      receiver.clear();

      const canceling = await stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true, cancellation_details: { comment: 'moving to prepaid', feedback: 'too_expensive' } });
      assert.equal(canceling.status, 'active');
      assert.equal(canceling.cancel_at_period_end, true);
      assert.equal(canceling.cancel_at, periodEnd);
      assert.equal(canceling.canceled_at, START + 3600);
      assert.deepEqual(canceling.cancellation_details, { comment: 'moving to prepaid', feedback: 'too_expensive', reason: 'cancellation_requested' });
      const closed = await billing.closePeriod(subscription.id, { webhook: receiver.endpoint });
      assert.deepEqual(receiver.types(), ['customer.subscription.updated', 'invoice.created', 'customer.subscription.deleted', 'invoice.finalized', 'invoice.paid', 'invoice.payment_succeeded']);
      assert.deepEqual((receiver.received[0]!.event.data.previous_attributes as Record<string, unknown>).cancel_at_period_end, false);
      assert.deepEqual(closed.invoice.lines.data.map((l) => l.amount), [200]);
      assert.equal(closed.invoice.status, 'paid');
      assert.equal(closed.subscription.status, 'canceled');
      assert.equal(closed.subscription.ended_at, periodEnd);
      const deleted = receiver.received[2]!.event;
      assert.equal((deleted.data.object as Stripe.Subscription).status, 'canceled');

      assert.deepEqual((await stripe.subscriptions.list({ customer: customer.id })).data, []);
      assert.deepEqual((await stripe.subscriptions.list({ customer: customer.id, status: 'canceled' })).data.map((s) => s.id), [subscription.id]);
      const later = await billing.advanceBy(90 * 86_400);
      assert.deepEqual(later.events, []);
      const refused = await rejection(stripe.subscriptions.update(subscription.id, { items: [{ price: payg.id }] }), StripeInvalidRequestError);
      assert.match(refused.message, /canceled subscription/);
    });

    it('cancels at once: usage is dropped unless invoice_now bills it', async () => {
      const { payg } = await createCatalogue(stripe);
      const a = await subscribe([{ price: payg.id }], { email: 'a@example.test' });
      const b = await subscribe([{ price: payg.id }], { email: 'b@example.test' });
      await meterSeconds(a.customer.id, 20 * MIN, START + 60, 'x:a');
      await meterSeconds(b.customer.id, 20 * MIN, START + 60, 'x:b');
      await billing.advanceBy(600);
      const dropped = await stripe.subscriptions.cancel(a.subscription.id);
      assert.equal(dropped.status, 'canceled');
      assert.equal(dropped.ended_at, START + 600);
      assert.equal((await stripe.invoices.list({ subscription: a.subscription.id })).data.length, 1);
      const billed = await stripe.subscriptions.cancel(b.subscription.id, { invoice_now: true });
      const invoice = await stripe.invoices.retrieve(String(billed.latest_invoice));
      assert.deepEqual(invoice.lines.data.map((l) => l.amount), [100]);
      assert.equal(invoice.status, 'paid');
    });

    it('a declined renewal leaves the invoice open with its hosted link and the subscription past_due; paying it lifts both', async () => {
      const { proFee, proUsage } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: proFee.id, quantity: 1 }, { price: proUsage.id }]);
      await billing.deliver(receiver.endpoint);
      receiver.clear();
      billing.declinePayments(customer.id);

      const closed = await billing.closePeriod(subscription.id, { webhook: receiver.endpoint });
      assert.deepEqual(receiver.types(), ['customer.subscription.updated', 'invoice.created', 'invoice.finalized', 'invoice.payment_failed', 'customer.subscription.updated']);
      const invoice = closed.invoice;
      assert.equal(invoice.status, 'open');
      assert.equal(invoice.amount_due, 4900);
      assert.equal(invoice.amount_remaining, 4900);
      assert.equal(invoice.attempt_count, 1);
      assert.equal(invoice.next_payment_attempt, null);
      assert.match(invoice.hosted_invoice_url ?? '', /^https:\/\/invoice\.stripe\.com\//);
      const pastDue = receiver.received[4]!.event;
      assert.equal((pastDue.data.object as Stripe.Subscription).status, 'past_due');
      assert.deepEqual(pastDue.data.previous_attributes, { status: 'active' });
      assert.equal(closed.subscription.status, 'past_due');
      assert.equal((await stripe.customers.retrieve(customer.id) as Stripe.Customer).delinquent, true);

      // Paying with the same card fails again (402, saved under the idempotency key like any card error).
      receiver.clear();
      const again = await rejection(stripe.invoices.pay(invoice.id, {}, { idempotencyKey: 'pay-1' }), StripeCardError);
      assert.equal(again.statusCode, 402);
      assert.equal(again.code, 'card_declined');
      assert.equal(again.decline_code, 'generic_decline');
      assert.equal((await stripe.invoices.retrieve(invoice.id)).attempt_count, 2);

      // The caller fixes the card (here: pays with another one); the invoice is paid, the subscription active.
      billing.acceptPayments(customer.id);
      const paid = await stripe.invoices.pay(invoice.id, { payment_method: 'pm_card_visa' });
      assert.equal(paid.status, 'paid');
      assert.equal(paid.amount_paid, 4900);
      assert.equal(paid.amount_remaining, 0);
      assert.equal(paid.status_transitions.paid_at, closed.now);
      await billing.deliver(receiver.endpoint);
      assert.deepEqual(receiver.types(), ['invoice.payment_failed', 'invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated']);
      const lifted = receiver.received.at(-1)!.event;
      assert.equal((lifted.data.object as Stripe.Subscription).status, 'active');
      assert.equal((await stripe.subscriptions.retrieve(subscription.id)).default_payment_method, 'pm_card_visa');
      assert.equal((await stripe.customers.retrieve(customer.id) as Stripe.Customer).delinquent, false);
      const twice = await rejection(stripe.invoices.pay(invoice.id), StripeInvalidRequestError);
      assert.match(twice.message, /already paid/);
    });

    it('a declining default card set through the API fails the renewal too, and scheduled retries charge the fixed card', async (t) => {
      const own = await startFakeStripeBilling({ billing: { startTime: START, paymentRetryDays: [3, 5] } });
      t.after(() => own.close());
      const stripe = own.client();
      const billing = own.billing;
      const { proFee } = await createCatalogue(stripe);
      const session = await stripe.checkout.sessions.create({ mode: 'subscription', line_items: [{ price: proFee.id, quantity: 1 }], success_url: 'https://app.example/ok' });
      const { subscription, customer } = billing.completeSubscriptionCheckout(session.id);
      await stripe.subscriptions.update(subscription.id, { default_payment_method: 'pm_card_chargeDeclinedInsufficientFunds' });
      const closed = await billing.closePeriod(subscription.id);
      assert.equal(closed.invoice.status, 'open');
      const finalizedAt = closed.invoice.status_transitions.finalized_at!;
      assert.equal(closed.invoice.next_payment_attempt, finalizedAt + 3 * 86_400);
      const retry1 = await billing.advanceTo(finalizedAt + 3 * 86_400);
      assert.deepEqual(retry1.events.map((e) => e.type), ['invoice.payment_failed']);
      assert.equal(billing.invoices.get(closed.invoice.id)!.next_payment_attempt, finalizedAt + 5 * 86_400);
      await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: 'pm_card_visa' } });
      await stripe.subscriptions.update(subscription.id, { default_payment_method: 'pm_card_visa' });
      const retry2 = await billing.advanceTo(finalizedAt + 5 * 86_400);
      assert.deepEqual(retry2.events.map((e) => e.type), ['invoice.paid', 'invoice.payment_succeeded', 'customer.subscription.updated']);
      assert.equal(billing.subscriptions.get(subscription.id)!.status, 'active');
    });

    it('does not charge an amount under the minimum: the invoice is paid and the amount moves to the next invoice', async () => {
      const { payg } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: payg.id }]);
      await meterSeconds(customer.id, 5 * MIN, START + 60, 'm:1'); // 25¢
      const first = await billing.closePeriod(subscription.id);
      assert.equal(first.invoice.total, 25);
      assert.equal(first.invoice.status, 'paid');
      assert.equal(first.invoice.amount_paid, 0);
      assert.equal(first.invoice.ending_balance, 25);
      assert.equal((await stripe.customers.retrieve(customer.id) as Stripe.Customer).balance, 25);
      await meterSeconds(customer.id, 20 * MIN, billing.now(), 'm:2'); // $1.00
      const second = await billing.closePeriod(subscription.id);
      assert.equal(second.invoice.total, 100);
      assert.equal(second.invoice.starting_balance, 25);
      assert.equal(second.invoice.amount_due, 125);
      assert.equal(second.invoice.amount_paid, 125);
      assert.equal((await stripe.customers.retrieve(customer.id) as Stripe.Customer).balance, 0);
    });

    it('opens billing portal sessions; what the customer does there reaches the subscription and the events', async () => {
      const { payg } = await createCatalogue(stripe);
      const { subscription, customer } = await subscribe([{ price: payg.id }]);
      const portal = await stripe.billingPortal.sessions.create({ customer: customer.id, return_url: 'https://app.example/account' });
      assertFixtureKeys(portal, fixture('billing_portal.session'), 'billing portal session');
      assert.match(portal.url, /^https:\/\/billing\.stripe\.com\/p\/session\/test_/);
      assert.equal(portal.customer, customer.id);
      assert.equal(portal.return_url, 'https://app.example/account');
      assert.equal(portal.flow, null);

      const cancelFlow = await stripe.billingPortal.sessions.create({ customer: customer.id, flow_data: { type: 'subscription_cancel', subscription_cancel: { subscription: subscription.id } } });
      assert.equal(cancelFlow.flow?.type, 'subscription_cancel');
      assert.equal(cancelFlow.flow?.subscription_cancel?.subscription, subscription.id);
      const missingCustomer = await rejection(stripe.billingPortal.sessions.create({} as never), StripeInvalidRequestError);
      assert.equal(missingCustomer.param, 'customer');
      const nobody = await rejection(stripe.billingPortal.sessions.create({ customer: 'cus_nobody' }), StripeInvalidRequestError);
      assert.equal(nobody.code, 'resource_missing');

      await billing.deliver(receiver.endpoint);
      receiver.clear();
      billing.portal.updatePaymentMethod(portal.id, 'pm_card_mastercard');
      billing.portal.cancelAtPeriodEnd(cancelFlow.id, subscription.id);
      await billing.deliver(receiver.endpoint);
      assert.deepEqual(receiver.types(), ['customer.updated', 'customer.subscription.updated', 'customer.subscription.updated']);
      const sub = await stripe.subscriptions.retrieve(subscription.id);
      assert.equal(sub.default_payment_method, 'pm_card_mastercard');
      assert.equal(sub.cancel_at_period_end, true);
      assert.equal((await stripe.customers.retrieve(customer.id) as Stripe.Customer).invoice_settings.default_payment_method, 'pm_card_mastercard');
    });

    it('keeps undelivered events pending until the endpoint takes them, and serves them at /v1/events', async () => {
      const { payg } = await createCatalogue(stripe);
      const { customer } = await subscribe([{ price: payg.id }]);
      receiver.answer(500);
      const failed = await billing.deliver(receiver.endpoint);
      assert.ok(failed.length > 0 && failed.every((d) => d.status === 500 && d.error === 'HTTP 500'));
      assert.equal(billing.pendingEvents().length, failed.length);
      receiver.answer(200);
      const retried = await billing.deliver(receiver.endpoint);
      assert.equal(retried.length, failed.length);
      assert.deepEqual(billing.pendingEvents(), []);
      await stripe.customers.update(customer.id, { name: 'Renamed' }); // one more event, for an endpoint that is down
      const refused = await billing.deliver({ url: 'http://127.0.0.1:1/webhooks/stripe', secret: 'whsec_x', timeoutMs: 2000 });
      assert.equal(refused.length, 1);
      assert.equal(refused[0]!.status, 0);
      assert.match(refused[0]!.error ?? '', /fetch failed|ECONNREFUSED/);
      assert.equal(billing.pendingEvents().length, 1);

      // Stripe promises neither order nor a single delivery: the fake can post out of order and twice.
      receiver.clear();
      await billing.advanceBy(60);
      await stripe.customers.update(customer.id, { name: 'Renamed again' });
      const messy = await billing.deliver(receiver.endpoint, { order: 'reversed', twice: true });
      assert.deepEqual(messy.map((d) => d.event.data.object && (d.event.data.object as { name: string }).name), ['Renamed again', 'Renamed again', 'Renamed', 'Renamed']);
      assert.deepEqual(receiver.received.map((r) => r.event.id), messy.map((d) => d.event.id));

      const created = billing.events('customer.subscription.created')[0]!;
      const viaApi = await stripe.events.retrieve(created.id);
      assert.equal(viaApi.type, 'customer.subscription.created');
      const listed = await stripe.events.list({ type: 'invoice.*' });
      assert.deepEqual(listed.data.map((e) => e.type), ['invoice.payment_succeeded', 'invoice.paid', 'invoice.finalized', 'invoice.created']);
    });
  });

  describe('customers', () => {
    it('have the published keys, update with a default card (customer.updated), and list by email', async () => {
      const customer = await stripe.customers.create({ email: 'k@example.test', name: 'K' });
      assertFixtureKeys(customer, fixture('customer'), 'customer');
      const updated = await stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: 'pm_card_visa' }, metadata: { user_id: 'u-k' } });
      assert.equal(updated.invoice_settings.default_payment_method, 'pm_card_visa');
      const [event] = billing.events('customer.updated');
      assert.deepEqual(Object.keys(event!.data.previous_attributes ?? {}).sort(), ['invoice_settings', 'metadata']);
      await stripe.customers.create({ email: 'other@example.test' });
      assert.deepEqual((await stripe.customers.list({ email: 'k@example.test' })).data.map((c) => c.id), [customer.id]);
      const unknownParam = await rejection(stripe.customers.update(customer.id, { colour: 'blue' } as never), StripeInvalidRequestError);
      assert.equal(unknownParam.code, 'parameter_unknown');
    });
  });
});

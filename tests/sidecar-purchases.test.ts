// Purchases through the real sidecar and the real stripe client, against a local fake of Stripe's API that
// checks the parameters and idempotency keys the sidecar sends.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';
import { charge, startSidecar, WEBHOOK_SECRET, type TestSidecar } from './helpers/sidecar.ts';

describe('purchases through Stripe', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let sidecar: TestSidecar;
  const admin = newUserId();
  before(async () => {
    db = await createPostgresDatabase();
    fake = await startFakeStripe();
    sidecar = await startSidecar(db, { stripe: fake.client({ maxNetworkRetries: 1 }), adminIds: [admin] });
  });
  after(async () => {
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  const purchase = async (userId: string, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const response = await sidecar.request('POST', '/time/purchase', { token: await sidecar.tokenFor(userId), body, headers });
    return { status: response.status, body: await response.json() as Record<string, any> };
  };

  it('creates a Checkout Session with the price, the buyer and the metadata fulfilment needs', async () => {
    const user = newUserId();
    const { status, body } = await purchase(user, { package_id: 'basic_5h' });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.kind, 'checkout');
    assert.match(body.checkout_url, /^https:\/\//);
    const sent = fake.lastRequest('POST /v1/checkout/sessions')!;
    assert.equal(sent.params.mode, 'payment');
    assert.equal(sent.params.client_reference_id, user);
    // What the buyer is shown travels with the purchase: the webhook grants exactly that.
    const metadata = { user_id: user, package_id: 'basic_5h', gift: 'false', seconds: '19800', price_cents: '4499', currency: 'usd', tier_version: '1' };
    assert.deepEqual(sent.params.metadata, metadata);
    assert.deepEqual(sent.params.payment_intent_data, { metadata });
    const lineItems = sent.params.line_items as Array<Record<string, any>>;
    assert.equal(lineItems[0]!.price_data.unit_amount, '4499');
    assert.equal(lineItems[0]!.price_data.currency, 'usd');
    assert.match(sent.params.success_url as string, /\{CHECKOUT_SESSION_ID\}/);
    assert.match(sent.idempotencyKey ?? '', new RegExp(`^checkout:${user}:`));
  });

  it('sends a retried purchase as the same Stripe request, so Stripe replays it instead of making a second', async () => {
    const user = newUserId();
    const key = `retry-${user}`;
    const first = await purchase(user, { package_id: 'starter_1h', gift: true }, { 'idempotency-key': key });
    const second = await purchase(user, { package_id: 'starter_1h', gift: true }, { 'idempotency-key': key });
    assert.equal(second.body.checkout_session_id, first.body.checkout_session_id);
    const sent = fake.requests('POST /v1/checkout/sessions').filter((r) => r.idempotencyKey === `checkout:${user}:${key}`);
    assert.equal(sent.length, 2);
    assert.equal(sent[1]!.replayed, true);
    const conflicting = await purchase(user, { package_id: 'pro_25h' }, { 'idempotency-key': key });
    assert.equal(conflicting.status, 409);
  });

  it('charges a saved payment method through a PaymentIntent for the user\'s one Stripe customer', async () => {
    const user = newUserId();
    const first = await purchase(user, { package_id: 'starter_1h', payment_method_id: 'pm_card_visa', save_payment_method: true });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual([first.body.kind, first.body.status], ['payment_intent', 'succeeded']);
    const second = await purchase(user, { package_id: 'basic_5h', payment_method_id: 'pm_card_visa' });
    assert.equal(second.status, 200);
    const customers = [...fake.customers.values()].filter((c) => (c.metadata as Record<string, string>)?.user_id === user);
    assert.equal(customers.length, 1, 'one customer, created once');
    const intents = fake.requests('POST /v1/payment_intents').filter((r) => (r.params.metadata as Record<string, string>)?.user_id === user);
    assert.equal(intents.length, 2);
    assert.equal(intents[0]!.params.setup_future_usage, 'off_session');
    assert.equal(intents[0]!.params.amount, '999');
    assert.equal(intents[0]!.params.confirm, 'true');
    assert.ok(intents.every((r) => r.idempotencyKey?.startsWith(`intent:${user}:`)));
    assert.equal(intents[0]!.params.customer, intents[1]!.params.customer);
  });

  it('answers a declined card with 402 and the reason', async () => {
    const { status, body } = await purchase(newUserId(), { package_id: 'starter_1h', payment_method_id: 'pm_card_chargeDeclined' });
    assert.equal(status, 402);
    assert.equal(body.error.code, 'payment_declined');
  });

  it('names the packages that exist when asked for one that does not, and refuses bad bodies', async () => {
    const unknown = await purchase(newUserId(), { package_id: 'gold_99h' });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /starter_1h/);
    for (const body of [{}, { package_id: 'starter_1h', extra: 1 }, { package_id: 'starter_1h', payment_method_id: 'card_123' }, { package_id: 5 }]) {
      const response = await purchase(newUserId(), body);
      assert.equal(response.status, 400, JSON.stringify(body));
      assert.equal(response.body.error.code, 'invalid_request');
    }
    const anonymous = await sidecar.request('POST', '/time/purchase', { body: { package_id: 'starter_1h' } });
    assert.equal(anonymous.status, 401);
  });

  it('keeps the old /create-payment-intent path working', async () => {
    const user = newUserId();
    const response = await sidecar.request('POST', '/create-payment-intent', {
      token: await sidecar.tokenFor(user), body: { package_id: 'starter_1h', payment_method_id: 'pm_card_visa' } });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { kind: string }).kind, 'payment_intent');
  });

  it('answers 502 when Stripe cannot be reached, and charges nothing', async () => {
    fake.failNext(2, 500); // the first try and the client's one retry
    const { status, body } = await purchase(newUserId(), { package_id: 'starter_1h' });
    assert.equal(status, 502);
    assert.equal(body.error.code, 'payment_provider_error');
  });

  it('from purchase to card: the checkout completes at Stripe, the signed webhook grants the card', async () => {
    const user = newUserId();
    const started = await purchase(user, { package_id: 'premium_10h' });
    const { session } = fake.completeCheckoutSession(started.body.checkout_session_id);
    const { payload, signature } = fake.signedEvent('checkout.session.completed', session, WEBHOOK_SECRET);
    const response = await fetch(`${sidecar.url}/webhooks/stripe`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'stripe-signature': signature }, body: payload });
    assert.equal(response.status, 200);
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 12 * 3600);
  });

  it('lets an admin refund through Stripe; the card gives back time when Stripe\'s webhook confirms it', async () => {
    const user = newUserId();
    const started = await purchase(user, { package_id: 'starter_1h', payment_method_id: 'pm_card_visa' });
    const intent = fake.paymentIntents.get(started.body.payment_intent_id)!;
    await sidecar.deliver(fake.event('payment_intent.succeeded', intent));
    const { rows } = await db.sql.query<{ id: string }>('select id from public.payments where stripe_payment_intent_id = $1', [intent.id]);
    const paymentId = rows[0]!.id;
    const refund = (token: string, body: unknown) =>
      sidecar.request('POST', `/admin/payments/${paymentId}/refund`, { token, body });

    const adminToken = await sidecar.tokenFor(admin);
    assert.equal((await refund(await sidecar.tokenFor(user), { amount_cents: 500 })).status, 403);
    assert.equal((await refund(adminToken, { amount_cents: 5000 })).status, 409, 'more than was paid');
    const first = await refund(adminToken, { amount_cents: 500, reason: 'requested_by_customer' });
    assert.equal(first.status, 202);
    const again = await refund(adminToken, { amount_cents: 500, reason: 'requested_by_customer' });
    assert.equal(((await again.json()) as { refund_id: string }).refund_id, ((await first.json()) as { refund_id: string }).refund_id,
      'a repeated click before the webhook is the same refund');
    const sent = fake.requests('POST /v1/refunds').filter((r) => r.params.payment_intent === intent.id);
    assert.equal(sent.length, 2);
    assert.equal(sent[0]!.params.amount, '500');
    assert.equal(sent[0]!.idempotencyKey, sent[1]!.idempotencyKey);
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 3600, 'nothing taken before Stripe confirms');

    const chargeObject = fake.charges.get(String(intent.latest_charge))!;
    assert.equal((await sidecar.deliver(fake.event('charge.refunded', chargeObject))).status, 200);
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 3600 - Math.floor((3600 * 500) / 999));
  });

  it('looks up at Stripe a payment it has not seen when a refund for it arrives first, then applies the refund', async () => {
    const user = newUserId();
    const started = await purchase(user, { package_id: 'starter_1h', payment_method_id: 'pm_card_visa' });
    const intent = fake.paymentIntents.get(started.body.payment_intent_id)!;
    const chargeId = String(intent.latest_charge);
    // The payment_intent.succeeded event was lost; the refund of half arrives first, and the charge as
    // current API versions send it does not list its refunds: they are looked up too.
    await fake.client().refunds.create({ payment_intent: intent.id, amount: 500 });
    const response = await sidecar.deliver(fake.event('charge.refunded', fake.charges.get(chargeId)!));
    assert.equal(response.status, 200, await response.clone().text());
    const balance = await sidecar.store.getBalance(user);
    assert.equal(balance.total_seconds, 3600 - Math.floor((3600 * 500) / 999));
    assert.ok(fake.requests(`GET /v1/payment_intents/${intent.id}`).length >= 1, 'looked up at Stripe');
    assert.ok(fake.requests('GET /v1/refunds').length >= 1, 'the refunds looked up at Stripe');
  });
});

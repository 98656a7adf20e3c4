import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import Stripe from 'stripe';
import { decodeStripeForm, startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';

// The fake Stripe API driven through the real `stripe` client (v23), as the billing sidecar will use it.

/** Assert that `promise` rejects with an instance of `ErrorClass` and return the error for further checks. */
async function rejection<E extends Error>(promise: Promise<unknown>, ErrorClass: abstract new (...args: never[]) => E): Promise<E> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof ErrorClass, `expected ${ErrorClass.name}, got ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    return e;
  }
  assert.fail(`expected ${ErrorClass.name}, but the call succeeded`);
}

const { StripeAPIError, StripeAuthenticationError, StripeCardError, StripeIdempotencyError, StripeInvalidRequestError } = Stripe.errors;

describe('decodeStripeForm', () => {
  it('expands bracket paths into nested objects and arrays like the API', () => {
    const body = 'mode=payment&line_items[0][quantity]=1&line_items[0][price_data][unit_amount]=999&line_items[1][price]=price_x'
      + '&metadata[user_id]=u%201&metadata[0]=zero&expand[]=a&expand[]=b&name=Time+card%3A+1+hour&empty=';
    assert.deepEqual(decodeStripeForm(body), {
      mode: 'payment',
      line_items: [{ quantity: '1', price_data: { unit_amount: '999' } }, { price: 'price_x' }],
      metadata: { user_id: 'u 1', 0: 'zero' },
      expand: ['a', 'b'],
      name: 'Time card: 1 hour',
      empty: '',
    });
    assert.deepEqual(decodeStripeForm('a%5Bb%5D=1'), { a: { b: '1' } }); // percent-encoded brackets
    assert.throws(() => decodeStripeForm('a=1&a[b]=2'), /hash/);
  });
});

describe('fake Stripe API through the real stripe client', () => {
  let fake: FakeStripe;
  let stripe: Stripe;

  before(async () => {
    fake = await startFakeStripe();
    stripe = fake.client();
  });
  after(async () => {
    await fake.close();
  });
  beforeEach(() => fake.reset());

  it('creates and retrieves a customer; the request carries the key, the pinned version and an idempotency key', async () => {
    const customer = await stripe.customers.create({ email: 'a@example.test', metadata: { user_id: 'u-1' } });
    assert.match(customer.id, /^cus_\w{14}$/);
    assert.equal(customer.object, 'customer');
    assert.equal(customer.email, 'a@example.test');
    assert.deepEqual(customer.metadata, { user_id: 'u-1' });
    assert.equal(customer.lastResponse.statusCode, 200);
    assert.match(customer.lastResponse.requestId, /^req_/);

    const request = fake.lastRequest('POST /v1/customers')!;
    assert.deepEqual(request.params, { email: 'a@example.test', metadata: { user_id: 'u-1' } });
    assert.equal(request.apiKey, fake.apiKey);
    assert.equal(request.headers.authorization, `Bearer ${fake.apiKey}`);
    assert.equal(request.stripeVersion, Stripe.API_VERSION);
    assert.match(request.idempotencyKey ?? '', /^stripe-node-retry-/); // the client keys every POST

    const again = await stripe.customers.retrieve(customer.id);
    assert.equal((again as Stripe.Customer).email, 'a@example.test');
    assert.equal(fake.lastRequest()!.method, 'GET');
    assert.equal(fake.lastRequest()!.idempotencyKey, null);
    assert.equal(fake.customers.size, 1);
  });

  it('creates a Checkout Session from price_data and metadata, and decodes the form body', async () => {
    const purchaseId = '6f1c2c4e-0000-4000-8000-000000000001';
    const expiresAt = Math.floor(Date.now() / 1000) + 30 * 60 + 60;
    const session = await stripe.checkout.sessions.create({
      mode: 'payment',
      line_items: [{ quantity: 2, price_data: { currency: 'usd', unit_amount: 999, product_data: { name: 'Time card: 1 hour' } } }],
      client_reference_id: purchaseId,
      metadata: { purchase_id: purchaseId, package_id: 'p60' },
      payment_intent_data: { metadata: { purchase_id: purchaseId } },
      success_url: 'https://app.example/billing/success?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://app.example/billing/cancel',
      expires_at: expiresAt,
    }, { idempotencyKey: `checkout:${purchaseId}` });

    assert.match(session.id, /^cs_test_/);
    assert.equal(session.object, 'checkout.session');
    assert.equal(session.url, `https://checkout.stripe.test/c/pay/${session.id}`);
    assert.equal(session.status, 'open');
    assert.equal(session.payment_status, 'unpaid');
    assert.equal(session.amount_total, 1998);
    assert.equal(session.currency, 'usd');
    assert.equal(session.mode, 'payment');
    assert.equal(session.client_reference_id, purchaseId);
    assert.equal(session.customer, null);
    assert.equal(session.payment_intent, null);
    assert.equal(session.expires_at, expiresAt);
    assert.deepEqual(session.metadata, { purchase_id: purchaseId, package_id: 'p60' });

    const request = fake.lastRequest('/v1/checkout/sessions')!;
    assert.equal(request.idempotencyKey, `checkout:${purchaseId}`);
    assert.match(request.rawBody, /line_items\[0\]\[price_data\]\[unit_amount\]=999/);
    assert.deepEqual(request.params, {
      mode: 'payment',
      line_items: [{ quantity: '2', price_data: { currency: 'usd', unit_amount: '999', product_data: { name: 'Time card: 1 hour' } } }],
      client_reference_id: purchaseId,
      metadata: { purchase_id: purchaseId, package_id: 'p60' },
      payment_intent_data: { metadata: { purchase_id: purchaseId } },
      success_url: 'https://app.example/billing/success?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'https://app.example/billing/cancel',
      expires_at: String(expiresAt),
    });

    const retrieved = await stripe.checkout.sessions.retrieve(session.id, { expand: ['line_items'] });
    assert.equal(retrieved.id, session.id);
    assert.equal(retrieved.line_items?.data[0]?.amount_total, 1998);
    assert.equal(retrieved.line_items?.data[0]?.description, 'Time card: 1 hour');
    assert.deepEqual(fake.lastRequest()!.params, { expand: ['line_items'] });
  });

  it('validates Checkout Session parameters like the API (and does not save 400s under the idempotency key)', async () => {
    const good: Stripe.Checkout.SessionCreateParams = {
      mode: 'payment', success_url: 'https://app.example/ok',
      line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'p' } } }],
    };
    const noSuccessUrl = await rejection(stripe.checkout.sessions.create({ ...good, success_url: undefined }, { idempotencyKey: 'k-validate' }), StripeInvalidRequestError);
    assert.equal(noSuccessUrl.statusCode, 400);
    assert.equal(noSuccessUrl.code, 'parameter_missing');
    assert.equal(noSuccessUrl.param, 'success_url');
    assert.equal(noSuccessUrl.message, 'Missing required param: success_url.');

    // payment_method_types is gone from SessionCreateParams in stripe-node 23; the fake calls it unknown.
    const legacy = { ...good, payment_method_types: ['card'] } as Stripe.Checkout.SessionCreateParams;
    const unknown = await rejection(stripe.checkout.sessions.create(legacy), StripeInvalidRequestError);
    assert.equal(unknown.code, 'parameter_unknown');
    assert.equal(unknown.param, 'payment_method_types');

    const noName = await rejection(stripe.checkout.sessions.create({
      ...good, line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 500, product_data: { description: 'no name' } as unknown as { name: string } } }],
    }), StripeInvalidRequestError);
    assert.equal(noName.param, 'line_items[0][price_data][product_data][name]');

    const noCustomer = await rejection(stripe.checkout.sessions.create({ ...good, customer: 'cus_missing' }), StripeInvalidRequestError);
    assert.equal(noCustomer.code, 'resource_missing');
    assert.equal(noCustomer.param, 'customer');
    assert.equal(noCustomer.message, "No such customer: 'cus_missing'");

    const tooSoon = await rejection(stripe.checkout.sessions.create({ ...good, expires_at: Math.floor(Date.now() / 1000) + 60 }), StripeInvalidRequestError);
    assert.equal(tooSoon.param, 'expires_at');

    // The 400 was not saved: the corrected request may use the same key.
    const session = await stripe.checkout.sessions.create(good, { idempotencyKey: 'k-validate' });
    assert.equal(session.status, 'open');
    assert.equal(fake.checkoutSessions.size, 1);
  });

  it('replays an idempotent request byte for byte and rejects the key with other parameters', async () => {
    const params = { email: 'idem@example.test', metadata: { n: '1' } };
    const first = await stripe.customers.create(params, { idempotencyKey: 'cust-1' });
    const second = await stripe.customers.create(params, { idempotencyKey: 'cust-1' });
    assert.equal(second.id, first.id);
    assert.equal(fake.customers.size, 1);
    assert.equal(second.lastResponse.headers['idempotent-replayed'], 'true');
    assert.equal(second.lastResponse.headers['original-request'], first.lastResponse.requestId);
    const [r1, r2] = fake.requests('POST /v1/customers');
    assert.equal(r1!.replayed, false);
    assert.equal(r2!.replayed, true);
    assert.deepEqual(r2!.response, r1!.response);

    const conflict = await rejection(stripe.customers.create({ ...params, metadata: { n: '2' } }, { idempotencyKey: 'cust-1' }), StripeIdempotencyError);
    assert.equal(conflict.statusCode, 400);
    assert.equal(conflict.rawType, 'idempotency_error');
    assert.match(conflict.message, /^Keys for idempotent requests can only be used with the same parameters they were first used with/);

    const otherEndpoint = await rejection(stripe.paymentIntents.create({ amount: 500, currency: 'usd' }, { idempotencyKey: 'cust-1' }), StripeIdempotencyError);
    assert.match(otherEndpoint.message, /same endpoint/);
    assert.equal(fake.customers.size, 1);
    assert.equal(fake.paymentIntents.size, 0);
  });

  it('confirms a PaymentIntent with a card: succeeded with a charge', async () => {
    const customer = await stripe.customers.create({});
    const pi = await stripe.paymentIntents.create({
      amount: 1500, currency: 'usd', customer: customer.id, payment_method: 'pm_card_visa', confirm: true, off_session: true,
      metadata: { purchase_id: 'p-1' },
    }, { idempotencyKey: 'topup:p-1' });
    assert.match(pi.id, /^pi_/);
    assert.equal(pi.status, 'succeeded');
    assert.equal(pi.amount_received, 1500);
    assert.match(String(pi.latest_charge), /^ch_/);
    assert.deepEqual(pi.metadata, { purchase_id: 'p-1' });
    assert.deepEqual(fake.lastRequest()!.params, {
      amount: '1500', currency: 'usd', customer: customer.id, payment_method: 'pm_card_visa', confirm: 'true', off_session: 'true',
      metadata: { purchase_id: 'p-1' },
    });

    const charge = await stripe.charges.retrieve(String(pi.latest_charge));
    assert.equal(charge.status, 'succeeded');
    assert.equal(charge.amount, 1500);
    assert.equal(charge.payment_intent, pi.id);
    assert.deepEqual(charge.metadata, { purchase_id: 'p-1' });

    const expanded = await stripe.paymentIntents.retrieve(pi.id, { expand: ['latest_charge'] });
    assert.equal((expanded.latest_charge as Stripe.Charge).id, charge.id);
    assert.equal(fake.paymentIntents.get(pi.id)!.status, 'succeeded');

    const notConfirmed = await stripe.paymentIntents.create({ amount: 500, currency: 'usd' });
    assert.equal(notConfirmed.status, 'requires_payment_method');
    const tooSmall = await rejection(stripe.paymentIntents.create({ amount: 10, currency: 'usd' }), StripeInvalidRequestError);
    assert.equal(tooSmall.code, 'amount_too_small');
  });

  it('declines pm_card_chargeDeclined with a 402 card_error (StripeCardError), replayed on retry', async () => {
    const params: Stripe.PaymentIntentCreateParams = { amount: 2000, currency: 'usd', payment_method: 'pm_card_chargeDeclined', confirm: true };
    const declined = await rejection(stripe.paymentIntents.create(params, { idempotencyKey: 'decline-1' }), StripeCardError);
    assert.equal(declined.statusCode, 402);
    assert.equal(declined.code, 'card_declined');
    assert.equal(declined.decline_code, 'generic_decline');
    assert.equal(declined.message, 'Your card was declined.');
    assert.match(declined.charge ?? '', /^ch_/);
    const piId = declined.payment_intent!.id;
    assert.equal(declined.payment_intent!.status, 'requires_payment_method');
    assert.equal(fake.paymentIntents.get(piId)!.last_payment_error?.decline_code, 'generic_decline');
    assert.equal(fake.charges.get(declined.charge!)!.status, 'failed');

    // A card error is a result of the endpoint: the same key gets the same answer, nothing new is charged.
    const again = await rejection(stripe.paymentIntents.create(params, { idempotencyKey: 'decline-1' }), StripeCardError);
    assert.equal(again.payment_intent!.id, piId);
    assert.equal(fake.lastRequest()!.replayed, true);
    assert.equal(fake.paymentIntents.size, 1);

    const insufficient = await rejection(stripe.paymentIntents.create({ ...params, payment_method: 'pm_card_chargeDeclinedInsufficientFunds' }), StripeCardError);
    assert.equal(insufficient.decline_code, 'insufficient_funds');
  });

  it('refunds a payment in part and in full', async () => {
    const pi = await stripe.paymentIntents.create({ amount: 1000, currency: 'usd', payment_method: 'pm_card_visa', confirm: true });
    const partial = await stripe.refunds.create({ payment_intent: pi.id, amount: 300 });
    assert.match(partial.id, /^re_/);
    assert.equal(partial.object, 'refund');
    assert.equal(partial.amount, 300);
    assert.equal(partial.status, 'succeeded');
    assert.equal(partial.payment_intent, pi.id);
    assert.equal(partial.charge, pi.latest_charge);

    const tooMuch = await rejection(stripe.refunds.create({ payment_intent: pi.id, amount: 800 }), StripeInvalidRequestError);
    assert.equal(tooMuch.param, 'amount');

    const rest = await stripe.refunds.create({ charge: String(pi.latest_charge) }); // no amount: everything left
    assert.equal(rest.amount, 700);
    const charge = await stripe.charges.retrieve(String(pi.latest_charge));
    assert.equal(charge.amount_refunded, 1000);
    assert.equal(charge.refunded, true);

    const twice = await rejection(stripe.refunds.create({ payment_intent: pi.id }), StripeInvalidRequestError);
    assert.equal(twice.code, 'charge_already_refunded');
    const neither = await rejection(stripe.refunds.create({}), StripeInvalidRequestError);
    assert.equal(neither.code, 'parameter_missing');

    // A charge's refunds, newest first, as the sidecar lists them for a charge.refunded event without them.
    const listed = await stripe.refunds.list({ charge: String(pi.latest_charge), limit: 100 }).autoPagingToArray({ limit: 1000 });
    assert.deepEqual(listed.map((r) => [r.id, r.amount]), [[rest.id, 700], [partial.id, 300]]);
    assert.deepEqual(await stripe.refunds.list({ charge: 'ch_none' }).autoPagingToArray({ limit: 10 }), []);
  });

  it('answers unknown objects and routes with a 404 invalid_request_error', async () => {
    const missing = await rejection(stripe.checkout.sessions.retrieve('cs_test_nope'), StripeInvalidRequestError);
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.code, 'resource_missing');
    assert.equal(missing.param, 'id');
    assert.equal(missing.message, "No such checkout.session: 'cs_test_nope'");
    await rejection(stripe.paymentIntents.retrieve('pi_nope'), StripeInvalidRequestError);

    const route = await rejection(stripe.rawRequest('POST', '/v1/nothing_here', {}), StripeInvalidRequestError);
    assert.equal(route.statusCode, 404);
    assert.equal(route.message, 'Unrecognized request URL (POST: /v1/nothing_here). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.');
  });

  it('refuses requests without a test API key', async () => {
    const res = await fetch(`${fake.url}/v1/customers`, { method: 'POST' });
    assert.equal(res.status, 401);
    const body = (await res.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'invalid_request_error');
    assert.match(body.error.message, /You did not provide an API key/);

    const live = await rejection(fake.client({}, 'sk_live_0123456789abcdef').customers.create({}), StripeAuthenticationError);
    assert.equal(live.statusCode, 401);
    assert.equal(fake.customers.size, 0);
  });

  it('retries injected 5xx with the same idempotency key (maxNetworkRetries: 2) and succeeds', async () => {
    const retrying = fake.client({ maxNetworkRetries: 2 });
    fake.failNext(2, 503);
    const customer = await retrying.customers.create({ email: 'retry@example.test' }, { idempotencyKey: 'retry-key-1' });
    const attempts = fake.requests('POST /v1/customers');
    assert.equal(attempts.length, 3);
    assert.deepEqual(attempts.map((r) => r.status), [503, 503, 200]);
    assert.deepEqual(attempts.map((r) => r.injectedFailure), [true, true, false]);
    assert.deepEqual(attempts.map((r) => r.idempotencyKey), ['retry-key-1', 'retry-key-1', 'retry-key-1']);
    assert.equal(fake.customers.size, 1);
    assert.equal(fake.customers.get(customer.id)!.email, 'retry@example.test');

    // Without a key of ours, the client generates one and reuses it across attempts.
    fake.clearRequests();
    fake.failNext(1, 500);
    await retrying.customers.create({ email: 'auto@example.test' });
    const [a, b] = fake.requests('POST /v1/customers');
    assert.match(a!.idempotencyKey ?? '', /^stripe-node-retry-/);
    assert.equal(b!.idempotencyKey, a!.idempotencyKey);

    // With retries off, the failure reaches the caller.
    fake.failNext(1, 500);
    const error = await rejection(stripe.customers.create({}), StripeAPIError);
    assert.equal(error.statusCode, 500);
  });

  it("replays the saved result when the response of a request that ran was lost (failNext when: 'after')", async () => {
    const retrying = fake.client({ maxNetworkRetries: 1 });
    fake.failNext(1, 500, { when: 'after', path: '/v1/payment_intents' });
    const pi = await retrying.paymentIntents.create({ amount: 700, currency: 'usd', payment_method: 'pm_card_visa', confirm: true }, { idempotencyKey: 'lost-1' });
    assert.equal(pi.status, 'succeeded');
    const attempts = fake.requests('/v1/payment_intents');
    assert.deepEqual(attempts.map((r) => [r.status, r.injectedFailure, r.replayed]), [[500, true, false], [200, false, true]]);
    assert.equal(fake.paymentIntents.size, 1);
    assert.equal(fake.charges.size, 1);

    // A dropped connection after the request ran: stripe-node retries a reset connection once even with
    // maxNetworkRetries 0, and the key makes that retry harmless.
    fake.failNext(1, 0, { when: 'after', dropConnection: true });
    const customer = await stripe.customers.create({ name: 'dropped' }, { idempotencyKey: 'drop-1' });
    assert.equal(fake.customers.size, 1);
    assert.equal(fake.requests('/v1/customers').length, 2);
    assert.equal(fake.lastRequest('/v1/customers')!.replayed, true);
    assert.equal(customer.name, 'dropped');
  });

  it('answers a concurrent request with the same key with a 409 that the client retries into the replay', async () => {
    fake.latencyMs = 150;
    try {
      const retrying = fake.client({ maxNetworkRetries: 3 });
      const [x, y] = await Promise.all([
        retrying.customers.create({ name: 'c' }, { idempotencyKey: 'concurrent-1' }),
        retrying.customers.create({ name: 'c' }, { idempotencyKey: 'concurrent-1' }),
      ]);
      assert.equal(x.id, y.id);
      assert.equal(fake.customers.size, 1);
      assert.ok(fake.requests().some((r) => r.status === 409));
    } finally {
      fake.latencyMs = 0;
    }
  });

  it('completes a Checkout Session and signs a webhook event the stripe library accepts', async () => {
    const session = await stripe.checkout.sessions.create({
      mode: 'payment', success_url: 'https://app.example/ok', customer_creation: 'always', client_reference_id: 'p-9',
      line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'Time card: 1 hour' } } }],
      metadata: { purchase_id: 'p-9' }, payment_intent_data: { metadata: { purchase_id: 'p-9' } },
    });
    const done = fake.completeCheckoutSession(session.id, { email: 'buyer@example.test' });
    assert.equal(done.session.status, 'complete');
    assert.equal(done.session.payment_status, 'paid');
    assert.equal(done.paymentIntent!.status, 'succeeded');
    assert.deepEqual(done.paymentIntent!.metadata, { purchase_id: 'p-9' });
    assert.match(done.session.customer ?? '', /^cus_/);

    const secret = 'whsec_test_fake';
    const { event, payload, signature } = fake.signedEvent('checkout.session.completed', done.session, secret);
    const verified = stripe.webhooks.constructEvent(payload, signature, secret);
    assert.equal(verified.id, event.id);
    assert.equal(verified.type, 'checkout.session.completed');
    const object = verified.data.object as Stripe.Checkout.Session;
    assert.equal(object.payment_intent, done.paymentIntent!.id);
    assert.equal(object.amount_total, 500);

    const viaApi = await stripe.checkout.sessions.retrieve(session.id, { expand: ['payment_intent'] });
    assert.equal((viaApi.payment_intent as Stripe.PaymentIntent).status, 'succeeded');

    const refundEvent = fake.event('charge.refunded', { ...fake.charges.get(String(done.paymentIntent!.latest_charge))!, amount_refunded: 500, refunded: true });
    assert.equal((refundEvent.data.object as { payment_intent: string }).payment_intent, done.paymentIntent!.id);

    const other = await stripe.checkout.sessions.create({
      mode: 'payment', success_url: 'https://app.example/ok',
      line_items: [{ quantity: 1, price_data: { currency: 'usd', unit_amount: 500, product_data: { name: 'x' } } }],
    });
    const expired = await stripe.checkout.sessions.expire(other.id);
    assert.equal(expired.status, 'expired');
    await rejection(stripe.checkout.sessions.expire(other.id), StripeInvalidRequestError);
  });
});

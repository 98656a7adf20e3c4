// src/payments speaks in domain errors (PaymentError with a code), never HTTP: the voice tool reads the code,
// and the sidecar alone turns it into a status (src/sidecar/http-errors.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { PAYMENT_ERROR_CODES, PaymentError } from '../src/payments/errors.ts';
import { startPurchase } from '../src/payments/purchases.ts';
import { verifyStripeEvent } from '../src/payments/stripe-events.ts';
import { HttpError, toHttpError } from '../src/sidecar/http-errors.ts';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';

const log = pino({ level: 'silent' });

describe('payment domain errors', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  before(async () => {
    db = await createPostgresDatabase();
    fake = await startFakeStripe();
  });
  after(async () => {
    await fake?.close();
    await db?.close();
  });

  const refusal = async (promise: Promise<unknown>, code: string) => {
    const error = await promise.then(() => null, (e: unknown) => e);
    assert.ok(error instanceof PaymentError, `expected a PaymentError, got ${String(error)}`);
    assert.ok(!(error instanceof HttpError));
    assert.equal(error.code, code);
    return error;
  };

  it('a purchase refuses with payment codes, not HTTP statuses', async () => {
    const store = db.store();
    try {
      const request = { userId: newUserId(), packageId: 'starter_1h', idempotencyKey: 'k-unconfigured' };
      await refusal(startPurchase({ store, stripe: null, successUrl: 'https://a.test/s', cancelUrl: 'https://a.test/c', log }, request),
        'payments_unavailable');
      const stripe = fake.client({ maxNetworkRetries: 0 });
      const deps = { store, stripe, successUrl: 'https://a.test/s', cancelUrl: 'https://a.test/c', log };
      const unknown = await refusal(startPurchase(deps, { ...request, packageId: 'no_such_pack' }), 'unknown_package');
      assert.match(unknown.message, /starter_1h/, 'names the packages on sale');
      const key = `k-${newUserId()}`;
      await startPurchase(deps, { ...request, idempotencyKey: key });
      await refusal(startPurchase(deps, { ...request, packageId: 'pro_25h', idempotencyKey: key }), 'idempotency_conflict');
    } finally {
      await store.close();
    }
  });

  it('a webhook without configuration or a valid signature is a payment error', () => {
    assert.throws(() => verifyStripeEvent(null, 'whsec_x', Buffer.from('{}'), 't=1,v1=x'),
      (e: unknown) => e instanceof PaymentError && e.code === 'webhooks_unavailable');
    const stripe = fake.client();
    assert.throws(() => verifyStripeEvent(stripe, 'whsec_x', Buffer.from('{}'), undefined),
      (e: unknown) => e instanceof PaymentError && e.code === 'invalid_signature');
    assert.throws(() => verifyStripeEvent(stripe, 'whsec_x', Buffer.from('{}'), 't=1,v1=forged'),
      (e: unknown) => e instanceof PaymentError && e.code === 'invalid_signature');
  });

  it('the sidecar maps every payment code to one status, keeping the code and the message', () => {
    const statuses = Object.fromEntries(PAYMENT_ERROR_CODES.map((code) => [code, toHttpError(new PaymentError(code, `m:${code}`)).status]));
    assert.deepEqual(statuses, {
      payments_unavailable: 503, webhooks_unavailable: 503, invalid_signature: 400, unknown_package: 404,
      payment_declined: 402, idempotency_conflict: 409, payment_rejected: 400, payment_provider_error: 502,
      not_refundable: 409, already_refunded: 409, refund_too_large: 409, exceeds_unused_time: 409, refund_rejected: 409,
      unknown_plan: 404, plan_not_synced: 503, plan_conflict: 409, no_billing_account: 409,
    });
    const http = toHttpError(new PaymentError('payment_declined', 'Your card was declined.'));
    assert.deepEqual([http.code, http.message], ['payment_declined', 'Your card was declined.']);
  });
});

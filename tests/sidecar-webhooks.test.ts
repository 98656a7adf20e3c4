// Stripe webhooks through the real HTTP stack: signed with the real stripe library, applied exactly once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, ledgerMismatches, newUserId, type TestDatabase } from './helpers/test-db.ts';
import {
  charge, checkoutSession, dispute, paymentIntent, purchaseIds, startSidecar, stripeEvent, WEBHOOK_SECRET, type TestSidecar,
} from './helpers/sidecar.ts';
import { refundObject } from './helpers/stripe-payment-objects.ts';

describe('Stripe webhooks', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db);
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const cardsOf = async (userId: string) =>
    (await db.sql.query<{ id: string; status: string; remaining_seconds: number; total_seconds: number; payment_id: string }>(
      'select id, status, remaining_seconds, total_seconds, payment_id from public.time_cards where user_id = $1 or purchaser_id = $1 order by created_at',
      [userId])).rows;
  const paymentOf = async (column: string, value: string) =>
    (await db.sql.query<{ id: string; status: string; amount_cents: number; refunded_cents: number; card_id: string | null; tier_id: string; failure_reason: string | null }>(
      `select * from public.payments where ${column} = $1`, [value])).rows[0];
  const deliverOk = async (event: Record<string, unknown>) => {
    const response = await sidecar.deliver(event);
    const body = await response.json() as { outcome: string };
    assert.equal(response.status, 200, JSON.stringify(body));
    return body.outcome;
  };

  it('grants an active card to the buyer when a checkout is paid, with its ledger row, payment and receipt', async () => {
    const user = newUserId();
    const ids = purchaseIds();
    const outcome = await deliverOk(stripeEvent('checkout.session.completed',
      checkoutSession(ids, { userId: user, packageId: 'basic_5h', amount: 4499 })));
    assert.equal(outcome, 'granted');
    const [card] = await cardsOf(user);
    assert.equal(card!.status, 'active');
    assert.equal(card!.remaining_seconds, 5 * 3600 + 1800);
    const payment = await paymentOf('stripe_checkout_session_id', ids.sessionId);
    assert.deepEqual([payment!.status, payment!.amount_cents, payment!.card_id, payment!.tier_id], ['succeeded', 4499, card!.id, 'basic_5h']);
    const { rows: ledger } = await db.sql.query('select kind, seconds, payment_id from public.ledger_entries where card_id = $1', [card!.id]);
    assert.deepEqual(ledger, [{ kind: 'grant', seconds: 19_800, payment_id: payment!.id }]);
    const { rows: receipts } = await db.sql.query(`select kind from public.notifications where user_id = $1`, [user]);
    assert.deepEqual(receipts, [{ kind: 'purchase' }]);
    const balance = await (await sidecar.request('GET', '/time/balance', { token: await sidecar.tokenFor(user) })).json() as { total_minutes: number };
    assert.equal(balance.total_minutes, 330);
  });

  it('makes a gift a pending card with its activation code, which another user can redeem', async () => {
    const buyer = newUserId();
    const friend = newUserId();
    const ids = purchaseIds();
    await deliverOk(stripeEvent('checkout.session.completed',
      checkoutSession(ids, { userId: buyer, packageId: 'starter_1h', amount: 999, gift: true })));
    const { rows } = await db.sql.query<{ status: string; activation_code: string; user_id: string | null }>(
      'select status, activation_code, user_id from public.time_cards where purchaser_id = $1', [buyer]);
    assert.equal(rows[0]!.status, 'pending');
    assert.equal(rows[0]!.user_id, null);
    const redeemed = await sidecar.request('POST', '/time/activate', {
      token: await sidecar.tokenFor(friend), body: { activation_code: rows[0]!.activation_code.toLowerCase() } });
    assert.equal(redeemed.status, 200);
    assert.equal((await sidecar.store.getBalance(friend)).total_seconds, 3600);
  });

  it('grants one card when the same event arrives 50 times in parallel', async () => {
    const user = newUserId();
    const ids = purchaseIds();
    const event = stripeEvent('checkout.session.completed', checkoutSession(ids, { userId: user, packageId: 'pro_25h', amount: 17_999 }));
    const responses = await Promise.all(Array.from({ length: 50 }, () => sidecar.deliver(event)));
    assert.ok(responses.every((r) => r.status === 200));
    const outcomes = await Promise.all(responses.map(async (r) => ((await r.json()) as { outcome: string }).outcome));
    assert.equal(outcomes.filter((o) => o === 'granted').length, 1);
    assert.equal(outcomes.filter((o) => o === 'duplicate_event').length, 49);
    assert.equal((await cardsOf(user)).length, 1);
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 30 * 3600);
  });

  it('does not grant twice when payment_intent.succeeded follows the checkout of the same payment, in either order', async () => {
    for (const order of ['checkout-first', 'intent-first']) {
      const user = newUserId();
      const ids = purchaseIds();
      const purchase = { userId: user, packageId: 'starter_1h', amount: 999 };
      const events = [
        stripeEvent('checkout.session.completed', checkoutSession(ids, purchase)),
        stripeEvent('payment_intent.succeeded', paymentIntent(ids, purchase)),
      ];
      if (order === 'intent-first') events.reverse();
      assert.deepEqual([await deliverOk(events[0]!), await deliverOk(events[1]!)], ['granted', 'already_granted'], order);
      assert.equal((await cardsOf(user)).length, 1, order);
      const payment = await paymentOf('stripe_payment_intent_id', ids.paymentIntentId);
      assert.equal(payment!.id, (await paymentOf('stripe_checkout_session_id', ids.sessionId))!.id, 'one payment row');
    }
  });

  it('grants a direct purchase on payment_intent.succeeded', async () => {
    const user = newUserId();
    const ids = purchaseIds();
    assert.equal(await deliverOk(stripeEvent('payment_intent.succeeded',
      paymentIntent(ids, { userId: user, packageId: 'premium_10h', amount: 7999 }))), 'granted');
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 12 * 3600);
  });

  it('waits for a delayed payment, grants when it succeeds, and records a failure with a notice', async () => {
    const user = newUserId();
    const ids = purchaseIds();
    const purchase = { userId: user, packageId: 'starter_1h', amount: 999 };
    await deliverOk(stripeEvent('checkout.session.completed', checkoutSession(ids, purchase, { payment_status: 'unpaid' })));
    assert.equal((await cardsOf(user)).length, 0, 'nothing before the money arrives');
    assert.equal(await deliverOk(stripeEvent('checkout.session.async_payment_succeeded', checkoutSession(ids, purchase))), 'granted');
    assert.equal((await cardsOf(user)).length, 1);

    const unlucky = newUserId();
    const failed = purchaseIds();
    await deliverOk(stripeEvent('checkout.session.async_payment_failed',
      checkoutSession(failed, { userId: unlucky, packageId: 'basic_5h', amount: 4499 }, { payment_status: 'unpaid' })));
    const payment = await paymentOf('stripe_checkout_session_id', failed.sessionId);
    assert.equal(payment!.status, 'failed');
    assert.equal((await cardsOf(unlucky)).length, 0);
    const intentFailed = purchaseIds();
    const declined = { userId: unlucky, packageId: 'basic_5h', amount: 4499 };
    await deliverOk(stripeEvent('payment_intent.payment_failed', paymentIntent(intentFailed, declined,
      { status: 'requires_payment_method', amount_received: 0, last_payment_error: { type: 'card_error', message: 'Your card was declined.' } })));
    const attempt = (await paymentOf('stripe_payment_intent_id', intentFailed.paymentIntentId))!;
    assert.deepEqual([attempt.status, attempt.failure_reason, attempt.amount_cents], ['failed', 'Your card was declined.', 4499],
      'a declined try records the price asked, not the 0 received');
    const notices = async () => (await db.sql.query(`select kind from public.notifications where user_id = $1 order by created_at`, [unlucky])).rows;
    assert.deepEqual(await notices(), [{ kind: 'payment_failed' }], 'a declined try is not final: the buyer may try again');
    await deliverOk(stripeEvent('payment_intent.canceled', paymentIntent(intentFailed, declined, { status: 'canceled', amount_received: 0 })));
    assert.deepEqual(await notices(), [{ kind: 'payment_failed' }, { kind: 'payment_failed' }], 'told once the intent is canceled');
    assert.equal((await paymentOf('stripe_payment_intent_id', intentFailed.paymentIntentId))!.status, 'canceled');
  });

  it('takes back unused seconds in proportion to a refund, never below zero and never twice', async () => {
    const user = newUserId();
    const ids = purchaseIds();
    await deliverOk(stripeEvent('checkout.session.completed', checkoutSession(ids, { userId: user, packageId: 'starter_1h', amount: 999 })));
    await sidecar.store.deductTime({ userId: user, seconds: 1000, idempotencyKey: `${user}:use` });

    const first = refundObject({ id: `re_${ids.chargeId.slice(3)}a`, chargeId: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount: 250 });
    const rest = refundObject({ id: `re_${ids.chargeId.slice(3)}b`, chargeId: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount: 749 });
    const quarter = stripeEvent('charge.refunded', charge(ids, 999, 250, [first]));
    assert.equal(await deliverOk(quarter), 'refunded');
    assert.equal(await deliverOk(quarter), 'duplicate_event');
    let [card] = await cardsOf(user);
    assert.equal(card!.remaining_seconds, 3600 - 1000 - 900, 'a quarter of what was paid: 900 s of the card');

    await deliverOk(stripeEvent('charge.refunded', charge(ids, 999, 250, [first])));   // a second event, same refund
    await deliverOk(stripeEvent('refund.updated', first));
    [card] = await cardsOf(user);
    assert.equal(card!.remaining_seconds, 1700, 'the same refund again: nothing more taken');

    await deliverOk(stripeEvent('charge.refunded', charge(ids, 999, 999, [rest, first])));
    [card] = await cardsOf(user);
    assert.equal(card!.remaining_seconds, 0, 'a full refund takes what is left, not more');
    assert.equal(card!.status, 'revoked');
    const payment = await paymentOf('stripe_payment_intent_id', ids.paymentIntentId);
    assert.deepEqual([payment!.status, payment!.refunded_cents], ['refunded', 999]);
    assert.deepEqual(await ledgerMismatches(db.sql), []);
  });

  it('freezes a disputed card and restores it when the dispute is won; a lost one stays frozen', async () => {
    for (const verdict of ['won', 'lost']) {
      const user = newUserId();
      const ids = purchaseIds();
      await deliverOk(stripeEvent('checkout.session.completed', checkoutSession(ids, { userId: user, packageId: 'starter_1h', amount: 999 })));
      await sidecar.store.deductTime({ userId: user, seconds: 600, idempotencyKey: `${user}:use` });
      const disputeId = `dp_${verdict}${Date.now()}`;
      assert.equal(await deliverOk(stripeEvent('charge.dispute.created', dispute(ids, disputeId, 'needs_response'))), 'frozen');
      assert.equal((await sidecar.store.getBalance(user)).total_seconds, 0);
      await deliverOk(stripeEvent('charge.dispute.closed', dispute(ids, disputeId, verdict)));
      assert.equal((await sidecar.store.getBalance(user)).total_seconds, verdict === 'won' ? 3000 : 0, verdict);
      const payment = await paymentOf('stripe_payment_intent_id', ids.paymentIntentId);
      assert.equal(payment!.status, verdict === 'won' ? 'succeeded' : 'disputed');
    }
  });

  it('acknowledges event types it does not handle, once', async () => {
    const event = stripeEvent('customer.created', { id: 'cus_123', object: 'customer' });
    assert.equal(await deliverOk(event), 'ignored');
    assert.equal(await deliverOk(event), 'duplicate_event');
  });

  it('refuses a forged, stale or missing signature with 400 and writes nothing', async () => {
    const user = newUserId();
    const event = stripeEvent('checkout.session.completed', checkoutSession(purchaseIds(), { userId: user, packageId: 'starter_1h', amount: 999 }));
    const before = (await db.sql.query<{ n: number }>('select count(*)::int as n from public.stripe_events')).rows[0]!.n;
    const forged = await sidecar.deliver(event, { secret: 'whsec_someone_else' });
    const stale = await sidecar.deliver(event, { timestamp: Math.floor(Date.now() / 1000) - 3600 });
    const missing = await fetch(`${sidecar.url}/webhooks/stripe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(event) });
    const tampered = await sidecar.deliver(event, {
      signature: sidecar.stripe.webhooks.generateTestHeaderString({ payload: JSON.stringify({ ...event, id: 'evt_other' }), secret: WEBHOOK_SECRET }),
    });
    for (const response of [forged, stale, missing, tampered]) {
      assert.equal(response.status, 400);
      assert.equal(((await response.json()) as { error: { code: string } }).error.code, 'invalid_signature');
    }
    assert.equal((await db.sql.query<{ n: number }>('select count(*)::int as n from public.stripe_events')).rows[0]!.n, before);
    assert.equal((await cardsOf(user)).length, 0);
  });

  it('answers 500 when an event cannot be applied yet, leaving nothing half-written, and applies it on the retry', async () => {
    const user = newUserId();
    const ids = purchaseIds();
    // A refund of a purchase not seen yet: the sidecar must look it up at Stripe, which cannot be reached.
    const refund = stripeEvent('charge.refunded', charge(ids, 999, 999));
    const response = await sidecar.deliver(refund);
    assert.equal(response.status, 500);
    assert.equal((await db.sql.query('select 1 from public.stripe_events where id = $1', [refund.id])).rows.length, 0);
    assert.equal(await paymentOf('stripe_payment_intent_id', ids.paymentIntentId), undefined);
    // The purchase arrives; Stripe's retry of the refund then applies.
    await deliverOk(stripeEvent('checkout.session.completed', checkoutSession(ids, { userId: user, packageId: 'starter_1h', amount: 999 })));
    assert.equal(await deliverOk(refund), 'refunded');
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 0);
  });

  it('acknowledges a purchase naming a package this database lacks once, and lists it for the admin', async () => {
    const user = newUserId();
    const ids = purchaseIds();
    const event = stripeEvent('checkout.session.completed', checkoutSession(ids, { userId: user, packageId: 'gold_99h', amount: 999 }));
    assert.equal(await deliverOk(event), 'needs_attention');
    assert.equal(await deliverOk(event), 'duplicate_event');
    const { rows } = await db.sql.query<{ code: string }>('select code from public.stripe_attention where event_id = $1', [event.id]);
    assert.deepEqual(rows, [{ code: 'unknown_tier' }]);
    assert.equal((await cardsOf(user)).length, 0);
  });

  it('acknowledges an event whose purchase metadata is unusable instead of retrying it forever', async () => {
    const ids = purchaseIds();
    const event = stripeEvent('checkout.session.completed',
      checkoutSession(ids, { userId: newUserId(), packageId: 'starter_1h', amount: 999 }, { metadata: {}, client_reference_id: null }));
    assert.equal(await deliverOk(event), 'needs_attention');
    assert.equal(await deliverOk(event), 'duplicate_event');
  });
});

// Stripe's real payment lifecycles, event by event, through the real sidecar route (signed and verified with
// the real stripe library) over PostgreSQL. Every object posted is Stripe's published object
// (tests/fixtures/stripe-payments) with ids, amounts and statuses overridden. After each step: the payment's
// amounts, the card's seconds and the ledger rows that moved them. The same on PostgreSQL and on PGlite.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createPgliteDatabase, createPostgresDatabase, ledgerMismatches, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';
import { purchaseIds, startSidecar, stripeEvent, type TestSidecar } from './helpers/sidecar.ts';
import {
  chargeObject, checkoutSessionObject, disputeObject, paymentIntentObject, purchaseMetadata, refundObject,
} from './helpers/stripe-payment-objects.ts';

type Json = Record<string, any>;

const BASIC = { id: 'basic_5h', seconds: 5 * 3600 + 1800, price: 4499 };

for (const engine of ['postgres', 'pglite'] as const) describe(`Stripe payment lifecycles (${engine})`, () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let sidecar: TestSidecar;
  const admin = newUserId();
  const logLines: Json[] = [];
  before(async () => {
    db = engine === 'postgres' ? await createPostgresDatabase() : await createPgliteDatabase();
    fake = await startFakeStripe();
    const log = pino({ level: 'info' }, { write: (line: string) => { logLines.push(JSON.parse(line)); } });
    sidecar = await startSidecar(db, { stripe: fake.client({ maxNetworkRetries: 0 }), adminIds: [admin], log });
  });
  after(async () => {
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  /** One purchase's Stripe objects, each Stripe's published object with this purchase's values. */
  function purchaseOf(userId: string, tier = BASIC, options: { metadata?: Record<string, string> } = {}) {
    const ids = purchaseIds();
    const metadata = options.metadata ?? purchaseMetadata({
      userId, packageId: tier.id, seconds: tier.seconds, priceCents: tier.price, currency: 'usd', tierVersion: 1 });
    let refunds = 0;
    return {
      ids,
      session: (values: Partial<Parameters<typeof checkoutSessionObject>[0]> = {}) =>
        checkoutSessionObject({ id: ids.sessionId, paymentIntentId: ids.paymentIntentId, amount: tier.price, metadata, ...values }),
      intent: (status: string, values: Partial<Parameters<typeof paymentIntentObject>[0]> = {}) =>
        paymentIntentObject({ id: ids.paymentIntentId, amount: tier.price, status, metadata,
          latestChargeId: status === 'succeeded' ? ids.chargeId : null, ...values }),
      refund: (amount: number, status = 'succeeded') => refundObject({
        id: `re_${ids.chargeId.slice(3)}r${refunds++}`, chargeId: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount, status }),
      charge: (refundList: Json[] | null, values: Partial<Parameters<typeof chargeObject>[0]> = {}) =>
        chargeObject({ id: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount: tier.price, refunds: refundList, ...values }),
      dispute: (id: string, status: string, kind: 'inquiry' | 'chargeback') =>
        disputeObject({ id, chargeId: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount: tier.price, status, kind }),
    };
  }

  /** Posts the event (signed) and answers the outcome; anything but 200 fails the test. */
  const post = async (type: string, object: Json, event = stripeEvent(type, object)): Promise<string> => {
    const response = await sidecar.deliver(event);
    const body = await response.json() as Json;
    assert.equal(response.status, 200, `${type}: ${JSON.stringify(body)}`);
    return body.outcome;
  };

  const paymentOf = async (paymentIntentId: string) =>
    (await db.sql.query<{ id: string; status: string; amount_cents: number; refunded_cents: number; card_id: string | null }>(
      'select id, status, amount_cents, refunded_cents, card_id from public.payments where stripe_payment_intent_id = $1',
      [paymentIntentId])).rows[0];
  const cardOf = async (cardId: string) =>
    (await db.sql.query<{ status: string; remaining_seconds: number; total_seconds: number }>(
      'select status, remaining_seconds, total_seconds from public.time_cards where id = $1', [cardId])).rows[0]!;
  const ledgerOf = async (cardId: string) =>
    (await db.sql.query<{ kind: string; seconds: number }>(
      'select kind, seconds from public.ledger_entries where card_id = $1 order by id', [cardId])).rows.map((r) => [r.kind, r.seconds]);
  const noticesOf = async (userId: string) =>
    (await db.sql.query<{ kind: string }>('select kind from public.notifications where user_id = $1 order by created_at, kind', [userId]))
      .rows.map((r) => r.kind);
  const use = (userId: string, seconds: number) =>
    sidecar.store.deductTime({ userId, seconds, idempotencyKey: `${userId}:use:${seconds}:${Math.random()}` });

  /** The card's ledger explains its seconds, and the payment's cents are refunded + kept. */
  const assertBooks = async (paymentIntentId: string) => {
    assert.deepEqual(await ledgerMismatches(db.sql), [], 'every card is the sum of its ledger rows');
    const payment = (await paymentOf(paymentIntentId))!;
    const { rows } = await db.sql.query<{ n: number }>(
      `select coalesce(sum(amount_cents) filter (where status not in ('failed', 'canceled')), 0)::int as n
         from public.payment_refunds where payment_id = $1`, [payment.id]);
    assert.equal(payment.refunded_cents, Math.min(rows[0]!.n, payment.amount_cents), 'refunded_cents is what Stripe counts as refunded');
  };

  it('a declined try then a paid one on the same PaymentIntent: the amount received, one card, proportional refunds', async () => {
    const user = newUserId();
    const p = purchaseOf(user);
    const declined = p.intent('requires_payment_method', { declineMessage: 'Your card was declined.' });
    assert.equal(await post('payment_intent.payment_failed', declined), 'recorded_attempt');
    let payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.amount_cents, payment.card_id], ['failed', 4499, null],
      'the price asked is recorded, not the 0 received');
    assert.equal(await post('payment_intent.payment_failed', declined), 'recorded_attempt', 'a second decline');
    assert.deepEqual(await noticesOf(user), [], 'the buyer is not told of a try Checkout lets them repeat');

    assert.equal(await post('payment_intent.succeeded', p.intent('succeeded')), 'granted');
    assert.equal(await post('checkout.session.completed', p.session()), 'already_granted');
    payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.amount_cents], ['succeeded', 4499]);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800]]);
    assert.deepEqual(await noticesOf(user), ['purchase']);

    // A refund of 1000 of the 4499 cents takes 1000/4499 of the card, and the rest stays refundable.
    assert.equal(await post('refund.created', p.refund(1000)), 'refunded');
    const card = await cardOf(payment.card_id!);
    assert.deepEqual([card.remaining_seconds, card.status], [19_800 - 4400, 'active']);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['refund', -4400]]);
    const detail = await sidecar.store.getPayment(payment.id);
    assert.deepEqual([detail.refunded_cents, detail.refundable_cents, detail.status], [1000, 3499, 'partially_refunded']);

    // A late failure of the earlier try changes nothing.
    assert.equal(await post('payment_intent.payment_failed', declined), 'ignored_after_success');
    assert.equal((await paymentOf(p.ids.paymentIntentId))!.amount_cents, 4499);
    await assertBooks(p.ids.paymentIntentId);
  });

  it('a partial refund then the rest, told by refund events and cumulative charge.refunded in any order, never conflicts', async () => {
    for (const order of ['as sent', 'reversed', 'all at once, twice']) {
      const user = newUserId();
      const p = purchaseOf(user);
      await post('checkout.session.completed', p.session());
      await use(user, 1800);
      const first = p.refund(1500);
      const rest = p.refund(2999);
      const events = [
        stripeEvent('refund.created', first),
        stripeEvent('charge.refunded', p.charge([first])),
        stripeEvent('refund.updated', first),
        stripeEvent('refund.created', rest),
        stripeEvent('charge.refunded', p.charge([rest, first])),
        stripeEvent('charge.refunded', p.charge([rest, first])),   // Stripe sends it again as a new event
      ];
      if (order === 'reversed') events.reverse();
      if (order === 'all at once, twice') {
        const outcomes = await Promise.all([...events, ...events].map((event) => post(event.type as string, {}, event)));
        assert.deepEqual(outcomes.filter((o) => o !== 'duplicate_event'), events.map(() => 'refunded'), order);
      } else {
        for (const event of events) assert.equal(await post(event.type as string, {}, event), 'refunded', order);
      }
      const payment = (await paymentOf(p.ids.paymentIntentId))!;
      assert.deepEqual([payment.status, payment.amount_cents, payment.refunded_cents], ['refunded', 4499, 4499], order);
      const card = await cardOf(payment.card_id!);
      assert.deepEqual([card.remaining_seconds, card.status], [0, 'revoked'], order);
      const ledger = await ledgerOf(payment.card_id!);
      assert.deepEqual(ledger.slice(0, 2), [['grant', 19_800], ['usage', -1800]], order);
      assert.equal(ledger.slice(2).reduce((sum, [, s]) => sum + (s as number), 0), -18_000, `${order}: the refunds took what was unused`);
      assert.ok(ledger.slice(2).every(([kind]) => kind === 'refund'), order);
      await assertBooks(p.ids.paymentIntentId);
    }
  });

  it('a refund that fails afterwards gives back what it took; a late "succeeded" of it changes nothing', async () => {
    const user = newUserId();
    const p = purchaseOf(user);
    await post('checkout.session.completed', p.session());
    await use(user, 3600);
    const refund = p.refund(2000, 'pending');
    assert.equal(await post('refund.created', refund), 'refunded');
    let payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.refunded_cents], ['partially_refunded', 2000]);
    assert.equal((await cardOf(payment.card_id!)).remaining_seconds, 19_800 - 3600 - 8801);

    assert.equal(await post('refund.failed', { ...refund, status: 'failed' }), 'refunded');
    payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.refunded_cents, payment.amount_cents], ['succeeded', 0, 4499]);
    assert.equal((await cardOf(payment.card_id!)).remaining_seconds, 19_800 - 3600);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['usage', -3600], ['refund', -8801], ['restore', 8801]]);

    assert.equal(await post('refund.updated', { ...refund, status: 'succeeded' }), 'refunded');
    assert.equal(await post('charge.refunded', p.charge([{ ...refund, status: 'failed' }])), 'refunded');
    assert.equal((await cardOf(payment.card_id!)).remaining_seconds, 19_800 - 3600, 'failed is final');
    assert.equal((await paymentOf(p.ids.paymentIntentId))!.refunded_cents, 0);
    await assertBooks(p.ids.paymentIntentId);
  });

  it('a full refund that fails (charge.refund.updated) makes the revoked card usable again', async () => {
    const user = newUserId();
    const p = purchaseOf(user);
    await post('checkout.session.completed', p.session());
    await use(user, 600);
    const refund = p.refund(4499);
    await post('refund.created', refund);
    let payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, (await cardOf(payment.card_id!)).status], ['refunded', 'revoked']);
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 0);

    assert.equal(await post('charge.refund.updated', { ...refund, status: 'failed' }), 'refunded');
    payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.refunded_cents], ['succeeded', 0]);
    const card = await cardOf(payment.card_id!);
    assert.deepEqual([card.status, card.remaining_seconds], ['active', 19_200]);
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 19_200);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['usage', -600], ['refund', -19_200], ['restore', 19_200]]);
    await assertBooks(p.ids.paymentIntentId);
  });

  it('an inquiry withdraws no funds: it freezes nothing and closes warning_closed with the card untouched', async () => {
    const user = newUserId();
    const p = purchaseOf(user);
    await post('checkout.session.completed', p.session());
    await use(user, 1200);
    const id = `dp_${p.ids.chargeId.slice(3)}i`;
    assert.equal(await post('charge.dispute.created', p.dispute(id, 'warning_needs_response', 'inquiry')), 'dispute_recorded');
    assert.equal(await post('charge.dispute.updated', p.dispute(id, 'warning_under_review', 'inquiry')), 'dispute_recorded');
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 18_600, 'usable during the inquiry');
    assert.equal(await post('charge.dispute.closed', p.dispute(id, 'warning_closed', 'inquiry')), 'dispute_recorded');
    const payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.amount_cents], ['succeeded', 4499]);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['usage', -1200]]);
    await assertBooks(p.ids.paymentIntentId);
  });

  it('an inquiry whose funds were withdrawn after all is frozen, and given back when it closes warning_closed', async () => {
    const user = newUserId();
    const p = purchaseOf(user);
    await post('checkout.session.completed', p.session());
    const id = `dp_${p.ids.chargeId.slice(3)}w`;
    await post('charge.dispute.created', p.dispute(id, 'warning_needs_response', 'inquiry'));
    assert.equal(await post('charge.dispute.funds_withdrawn', p.dispute(id, 'warning_under_review', 'inquiry')), 'frozen');
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 0);
    assert.equal(await post('charge.dispute.closed', p.dispute(id, 'warning_closed', 'inquiry')), 'restored');
    const payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.equal(payment.status, 'succeeded');
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['revoke', -19_800], ['restore', 19_800]]);
    assert.equal((await cardOf(payment.card_id!)).status, 'active');
    await assertBooks(p.ids.paymentIntentId);
  });

  it('a chargeback freezes the card when the funds go and a lost one keeps it frozen', async () => {
    const user = newUserId();
    const p = purchaseOf(user);
    await post('checkout.session.completed', p.session());
    await use(user, 1800);
    const id = `dp_${p.ids.chargeId.slice(3)}l`;
    assert.equal(await post('charge.dispute.created', p.dispute(id, 'needs_response', 'chargeback')), 'frozen');
    assert.equal(await post('charge.dispute.funds_withdrawn', p.dispute(id, 'needs_response', 'chargeback')), 'dispute_recorded',
      'one freeze for the two ways Stripe tells it');
    assert.equal(await post('charge.dispute.closed', p.dispute(id, 'lost', 'chargeback')), 'dispute_recorded');
    const payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.amount_cents], ['disputed', 4499]);
    const card = await cardOf(payment.card_id!);
    assert.deepEqual([card.status, card.remaining_seconds], ['revoked', 0]);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['usage', -1800], ['revoke', -18_000]]);
    await assertBooks(p.ids.paymentIntentId);
  });

  it('a chargeback won gives back what it froze, once, whether funds_reinstated or closed arrives first', async () => {
    for (const order of ['reinstated first', 'closed first']) {
      const user = newUserId();
      const p = purchaseOf(user);
      await post('checkout.session.completed', p.session());
      await use(user, 1800);
      const id = `dp_${p.ids.chargeId.slice(3)}v`;
      assert.equal(await post('charge.dispute.created', p.dispute(id, 'needs_response', 'chargeback')), 'frozen');
      assert.equal(await post('charge.dispute.updated', p.dispute(id, 'under_review', 'chargeback')), 'dispute_recorded');
      const endings = [
        stripeEvent('charge.dispute.funds_reinstated', p.dispute(id, 'won', 'chargeback')),
        stripeEvent('charge.dispute.closed', p.dispute(id, 'won', 'chargeback')),
      ];
      if (order === 'closed first') endings.reverse();
      assert.deepEqual([await post('', {}, endings[0]!), await post('', {}, endings[1]!)], ['restored', 'dispute_recorded'], order);
      // A withdrawal Stripe told us late (older than the verdict) freezes nothing again.
      assert.equal(await post('charge.dispute.funds_withdrawn', p.dispute(id, 'needs_response', 'chargeback')), 'dispute_recorded', order);
      const payment = (await paymentOf(p.ids.paymentIntentId))!;
      assert.deepEqual([payment.status, payment.amount_cents], ['succeeded', 4499], order);
      assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['usage', -1800], ['revoke', -18_000], ['restore', 18_000]], order);
      assert.equal((await sidecar.store.getBalance(user)).total_seconds, 18_000, order);
      await assertBooks(p.ids.paymentIntentId);
    }
  });

  it('a chargeback whose events all arrive at once, twice, ends given back in full, whatever order they were applied in', async () => {
    const user = newUserId();
    const p = purchaseOf(user);
    await post('checkout.session.completed', p.session());
    await use(user, 600);
    const id = `dp_${p.ids.chargeId.slice(3)}p`;
    const events = [
      stripeEvent('charge.dispute.created', p.dispute(id, 'needs_response', 'chargeback')),
      stripeEvent('charge.dispute.funds_withdrawn', p.dispute(id, 'needs_response', 'chargeback')),
      stripeEvent('charge.dispute.updated', p.dispute(id, 'under_review', 'chargeback')),
      stripeEvent('charge.dispute.funds_reinstated', p.dispute(id, 'won', 'chargeback')),
      stripeEvent('charge.dispute.closed', p.dispute(id, 'won', 'chargeback')),
    ];
    const outcomes = await Promise.all([...events, ...events].map((event) => post(event.type as string, {}, event)));
    assert.equal(outcomes.filter((o) => o === 'duplicate_event').length, events.length);
    const payment = (await paymentOf(p.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, (await cardOf(payment.card_id!)).status], ['succeeded', 'active']);
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 19_200);
    const ledger = await ledgerOf(payment.card_id!);
    assert.deepEqual(ledger.slice(0, 2), [['grant', 19_800], ['usage', -600]]);
    assert.ok([0, 2].includes(ledger.length - 2), 'frozen and given back, or never frozen (the verdict came first)');
    assert.equal(ledger.slice(2).reduce((sum, [, s]) => sum + (s as number), 0), 0);
    await assertBooks(p.ids.paymentIntentId);
  });

  it('a delayed (SEPA-like) payment grants only when the money arrives, and a failed one tells the buyer once', async () => {
    const user = newUserId();
    const paid = purchaseOf(user);
    assert.equal(await post('checkout.session.completed', paid.session({ paymentStatus: 'unpaid' })), 'ignored');
    assert.equal(await post('payment_intent.processing', paid.intent('processing')), 'ignored');
    assert.equal(await paymentOf(paid.ids.paymentIntentId), undefined, 'nothing before the money arrives');
    assert.equal(await post('checkout.session.async_payment_succeeded', paid.session()), 'granted');
    assert.equal(await post('payment_intent.succeeded', paid.intent('succeeded')), 'already_granted');
    const payment = (await paymentOf(paid.ids.paymentIntentId))!;
    assert.deepEqual([payment.status, payment.amount_cents], ['succeeded', 4499]);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800]]);

    const buyer = newUserId();
    const failed = purchaseOf(buyer);
    await post('checkout.session.completed', failed.session({ paymentStatus: 'unpaid' }));
    assert.equal(await post('payment_intent.payment_failed', failed.intent('requires_payment_method',
      { declineMessage: 'The bank account could not be debited.' })), 'recorded_attempt');
    assert.deepEqual(await noticesOf(buyer), []);
    assert.equal(await post('checkout.session.async_payment_failed', failed.session({ paymentStatus: 'unpaid' })), 'recorded_failure');
    assert.equal(await post('checkout.session.expired', failed.session({ paymentStatus: 'unpaid', status: 'expired' })), 'recorded_failure');
    const lost = (await paymentOf(failed.ids.paymentIntentId))!;
    assert.deepEqual([lost.status, lost.amount_cents, lost.card_id], ['failed', 4499, null]);
    assert.deepEqual(await noticesOf(buyer), ['payment_failed'], 'told once, on the final outcome');

    const abandoned = purchaseOf(newUserId());
    assert.equal(await post('checkout.session.expired', abandoned.session({ paymentStatus: 'unpaid', status: 'expired', paymentIntentId: null })),
      'expired_untried', 'a checkout nobody tried to pay is no failed payment');
  });

  it('grants the seconds and price shown at Checkout even if the tier is edited before the money arrives', async () => {
    const tierId = `edited_${Date.now().toString(36)}`;
    await sidecar.store.upsertPricingTier({ id: tierId, name: 'Edited Pack', baseSeconds: 3600, priceCents: 1500 });
    const user = newUserId();
    const started = await sidecar.request('POST', '/time/purchase', { token: await sidecar.tokenFor(user), body: { package_id: tierId } });
    assert.equal(started.status, 200);
    const { checkout_session_id: sessionId } = await started.json() as Json;
    const sent = fake.checkoutSessions.get(sessionId)!.metadata as Record<string, string>;
    assert.deepEqual([sent.seconds, sent.price_cents, sent.currency, sent.tier_version], ['3600', '1500', 'usd', '1']);

    // SEPA: the session completes unpaid; the admin doubles the tier while the money is on its way.
    const ids = { ...purchaseIds(), sessionId };
    const session = (paymentStatus: 'paid' | 'unpaid', amount = 1500) =>
      checkoutSessionObject({ id: sessionId, paymentIntentId: ids.paymentIntentId, amount, metadata: sent, paymentStatus });
    await post('checkout.session.completed', session('unpaid'));
    const edit = await sidecar.request('PATCH', `/admin/tiers/${tierId}`, {
      token: await sidecar.tokenFor(admin, { admin: true }), body: { base_seconds: 7200, price_cents: 2500 } });
    assert.equal(((await edit.json()) as Json).tier.version, 2);
    assert.equal(await post('checkout.session.async_payment_succeeded', session('paid')), 'granted');
    const payment = (await paymentOf(ids.paymentIntentId))!;
    assert.deepEqual([payment.amount_cents, (await cardOf(payment.card_id!)).total_seconds], [1500, 3600]);
    assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 3600]]);
    await assertBooks(ids.paymentIntentId);

    // A sale after the edit is at the new price.
    const later = await sidecar.request('POST', '/time/purchase', { token: await sidecar.tokenFor(user), body: { package_id: tierId } });
    const laterSent = fake.checkoutSessions.get(((await later.json()) as Json).checkout_session_id)!.metadata as Record<string, string>;
    assert.deepEqual([laterSent.seconds, laterSent.price_cents, laterSent.tier_version], ['7200', '2500', '2']);
  });

  describe('events that can never apply', () => {
    const attention = async () => {
      const response = await sidecar.request('GET', '/admin/attention', { token: await sidecar.tokenFor(admin, { admin: true }) });
      assert.equal(response.status, 200);
      return await response.json() as { total: number; items: Json[] };
    };
    const errorLinesFor = (eventId: string) => logLines.filter((l) => l.level >= 50 && l.eventId === eventId).length;

    /** Posted twice: acknowledged (2xx) once, a duplicate the second time, listed for the admin, logged once. */
    const assertPoison = async (event: Json, code: string) => {
      assert.equal(await post('', {}, event), 'needs_attention', code);
      assert.equal(await post('', {}, event), 'duplicate_event', code);
      const listed = (await attention()).items.filter((i) => i.event_id === event.id);
      assert.deepEqual(listed.map((i) => i.code), [code]);
      assert.equal(errorLinesFor(event.id), 1, `${code}: exactly one error line`);
      return listed[0]!;
    };

    it('a purchase naming a package this database lacks', async () => {
      const user = newUserId();
      const p = purchaseOf(user, { id: 'platinum_9h', seconds: 9 * 3600, price: 9999 });
      const item = await assertPoison(stripeEvent('checkout.session.completed', p.session()), 'unknown_tier');
      assert.equal(item.user_id, user);
      const payment = (await paymentOf(p.ids.paymentIntentId))!;
      assert.deepEqual([payment.status, payment.amount_cents, payment.card_id], ['succeeded', 9999, null], 'the money is on the books, no card');
    });

    it('a paid amount that is not the price shown', async () => {
      const user = newUserId();
      const p = purchaseOf(user);
      await assertPoison(stripeEvent('checkout.session.completed', p.session({ amount: 999 })), 'amount_mismatch');
      await assertPoison(stripeEvent('payment_intent.succeeded', p.intent('succeeded', { amount: 999 })), 'amount_mismatch');
      const payment = (await paymentOf(p.ids.paymentIntentId))!;
      assert.deepEqual([payment.amount_cents, payment.card_id], [999, null], 'nothing granted silently');
      assert.equal((await sidecar.store.getBalance(user)).total_seconds, 0);
    });

    it('a refund and a dispute of a charge with no PaymentIntent', async () => {
      const chargeId = purchaseIds().chargeId;
      const refund = refundObject({ id: `re_${chargeId.slice(3)}`, chargeId, paymentIntentId: null, amount: 500 });
      await assertPoison(stripeEvent('charge.refunded', chargeObject({ id: chargeId, paymentIntentId: null, amount: 500, refunds: [refund] })),
        'unknown_charge');
      await assertPoison(stripeEvent('refund.created', refund), 'unknown_charge');
      await assertPoison(stripeEvent('charge.dispute.created',
        disputeObject({ id: `dp_${chargeId.slice(3)}`, chargeId, paymentIntentId: null, amount: 500, status: 'needs_response', kind: 'chargeback' })),
        'unknown_charge');
    });

    it('purchase metadata that is missing', async () => {
      const p = purchaseOf(newUserId(), BASIC, { metadata: {} });
      await assertPoison(stripeEvent('checkout.session.completed', p.session({ clientReferenceId: null })), 'unusable_event');
    });

    it('a refund worth more time than is left, then a late cumulative charge.refunded: recorded once, no conflict', async () => {
      const user = newUserId();
      const p = purchaseOf(user);
      await post('checkout.session.completed', p.session());
      await use(user, 18_000);
      const first = p.refund(2000);
      const created = stripeEvent('refund.created', first);
      assert.equal(await post('', {}, created), 'refunded');
      const payment = (await paymentOf(p.ids.paymentIntentId))!;
      assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['usage', -18_000], ['refund', -1800]],
        'its share (8801 s) is capped by the 1800 s left');
      assert.deepEqual((await attention()).items.filter((i) => i.event_id === created.id).map((i) => i.code), ['refund_exceeds_unused_time']);
      assert.equal(errorLinesFor(created.id as string), 0, 'applied, not an error: listed for the admin to see');

      const late = stripeEvent('charge.refunded', p.charge([first]));
      assert.equal(await post('', {}, late), 'refunded');
      assert.equal(await post('', {}, late), 'duplicate_event');
      const rest = p.refund(2499);
      assert.equal(await post('charge.refunded', p.charge([rest, first])), 'refunded');
      const after = (await paymentOf(p.ids.paymentIntentId))!;
      assert.deepEqual([after.status, after.refunded_cents], ['refunded', 4499]);
      assert.deepEqual(await ledgerOf(payment.card_id!), [['grant', 19_800], ['usage', -18_000], ['refund', -1800]]);
      assert.equal(logLines.filter((l) => l.level >= 50 && [late.id, created.id].includes(l.eventId)).length, 0);
      await assertBooks(p.ids.paymentIntentId);
    });

    it('are listed for administrators only and counted in /metrics', async () => {
      const list = await attention();
      assert.ok(list.total >= 1);
      assert.equal(list.items.length, Math.min(list.total, 100));
      const refused = await sidecar.request('GET', '/admin/attention', { token: await sidecar.tokenFor(newUserId()) });
      assert.equal(refused.status, 403);
      const metrics = await (await sidecar.request('GET', '/metrics')).text();
      const gauge = /^mindbot_stripe_events_needing_attention (\d+)$/m.exec(metrics);
      assert.equal(Number(gauge?.[1]), list.total);
      assert.match(metrics, /mindbot_webhook_events_total\{outcome="needs_attention"\} \d+/);
    });
  });
});

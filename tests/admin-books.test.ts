// The books (GET /admin/books, migrations/010_books.sql) and the reports per currency, through the real HTTP
// stack: purchases in two currencies, a gift, a manual credit, a call and an expiry, then the exact figures;
// what a refund may give back (GET /admin/payments/:id); and books that stop balancing when a row is written
// behind the rules' back.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('admin API: the books and the reports per currency', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  const clock = new TestClock('2026-03-10T10:00:00Z');
  const admin = newUserId();
  const alice = newUserId();   // pays in usd and in eur
  const bob = newUserId();     // buys a gift (usd), never redeemed
  let event = 0;
  const pay = (userId: string, tierId: string, amountCents: number, currency: string, gift = false) => {
    event++;
    return sidecar.store.recordPaymentSuccess(
      { id: `evt_books_${event}`, type: 'checkout.session.completed', payload: {} },
      { userId, tierId, gift, amountCents, currency, checkoutSessionId: `cs_books_${event}`, paymentIntentId: `pi_books_${event}` });
  };

  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { clock: clock.now, adminIds: [admin], stripe: null });
    await sidecar.store.upsertPricingTier({ id: 'starter_eur', name: 'Starter (EUR)', baseSeconds: 3600, priceCents: 900, currency: 'eur' });
    // A second apart, so the card bought first also expires first and pays for the call below.
    await pay(alice, 'starter_1h', 999, 'usd');
    clock.advance(1);
    await pay(alice, 'starter_eur', 900, 'eur');
    clock.advance(1);
    await pay(bob, 'basic_5h', 4499, 'usd', true);
    clock.advance(1);
    await sidecar.store.adjustUserTime({ userId: alice, seconds: 600, reason: 'goodwill', idempotencyKey: `${alice}:credit` });
    // A 100-second call, billed two whole minutes, all from alice's usd card.
    const call = await sidecar.store.startSession({ userId: alice, externalKey: `${alice}:call`, roomName: 'books' });
    clock.advance(100);
    await sidecar.store.endSession({ sessionId: call.session_id, reason: 'caller_left' });
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const asAdmin = async (path: string, status = 200) => {
    const response = await sidecar.request('GET', path, { token: await sidecar.tokenFor(admin) });
    const body = (await response.json()) as Json;
    assert.equal(response.status, status, `${path}: ${JSON.stringify(body)}`);
    return body;
  };
  const zeros = {
    adjusted_seconds: 0, used_seconds: 0, expired_seconds: 0, refunded_seconds: 0, revoked_seconds: 0, restored_seconds: 0,
    pending_gift_seconds: 0, awaiting_expiry_seconds: 0, unusable_seconds: 0, difference_seconds: 0, ok: true,
  };

  it('balances seconds per currency of the money that bought them, and in total', async () => {
    const books = await asAdmin('/admin/books');
    assert.equal(books.ok, true);
    assert.equal(books.seconds.cards_out_of_step, 0);
    const gift = 5 * 3600 + 1800;
    assert.deepEqual(books.seconds.by_currency, [
      { ...zeros, currency: 'eur', cards: 1, granted_seconds: 3600, outstanding_seconds: 3600, spendable_seconds: 3600 },
      { ...zeros, currency: 'usd', cards: 2, granted_seconds: 3600 + gift, used_seconds: 120,
        outstanding_seconds: 3480 + gift, spendable_seconds: 3480, pending_gift_seconds: gift },
      { ...zeros, currency: null, cards: 1, granted_seconds: 0, adjusted_seconds: 600, outstanding_seconds: 600, spendable_seconds: 600 },
    ]);
    assert.deepEqual(books.seconds.total, { ...zeros, cards: 4, granted_seconds: 7200 + gift, adjusted_seconds: 600,
      used_seconds: 120, outstanding_seconds: 7200 + gift + 600 - 120, spendable_seconds: 3600 + 3480 + 600, pending_gift_seconds: gift });
    assert.deepEqual(books.cents, { ok: true, by_currency: [
      { currency: 'eur', payments: 1, received_cents: 900, refunded_cents: 0, kept_cents: 900, disputed_cents: 0,
        refunded_unpaid_cents: 0, difference_cents: 0, ok: true },
      { currency: 'usd', payments: 2, received_cents: 999 + 4499, refunded_cents: 0, kept_cents: 999 + 4499, disputed_cents: 0,
        refunded_unpaid_cents: 0, difference_cents: 0, ok: true },
    ] });
  });

  it('reports revenue in one currency at a time and lists the others, never one sum of both', async () => {
    const usd = await asAdmin('/admin/analytics/revenue?days=7');
    assert.deepEqual([usd.currency, usd.currencies, usd.total_revenue_cents, usd.total_transactions],
      ['usd', [{ currency: 'usd', transactions: 2 }, { currency: 'eur', transactions: 1 }], 999 + 4499, 2]);
    const eur = await asAdmin('/admin/analytics/revenue?days=7&currency=EUR');
    assert.deepEqual([eur.currency, eur.total_revenue_cents, eur.net_revenue_cents, eur.total_transactions, eur.package_stats.length],
      ['eur', 900, 900, 1, 1]);
    const none = await asAdmin('/admin/analytics/revenue?days=7&currency=chf');
    assert.deepEqual([none.currency, none.total_revenue_cents, none.total_transactions], ['chf', 0, 0]);
    const bad = await asAdmin('/admin/analytics/revenue?currency=dollars', 400);
    assert.equal(bad.error.code, 'invalid_request');
  });

  it('lists what each user spent per currency, and a user\'s analytics say they paid in several', async () => {
    const users = await asAdmin('/admin/users');
    const byId = new Map<string, Json>(users.users.map((u: Json) => [u.user_id, u]));
    assert.deepEqual(byId.get(alice)!.spent, [{ currency: 'eur', cents: 900 }, { currency: 'usd', cents: 999 }]);
    assert.deepEqual(byId.get(bob)!.spent, [{ currency: 'usd', cents: 4499 }]);
    const mixed = await asAdmin(`/user/${alice}/analytics`);
    assert.deepEqual([mixed.totals.purchases, mixed.totals.currency, mixed.totals.paid_cents, mixed.totals.spent_cents], [2, null, null, null]);
    assert.deepEqual(mixed.totals.money, [
      { currency: 'eur', purchases: 1, paid_cents: 900, refunded_cents: 0, spent_cents: 900 },
      { currency: 'usd', purchases: 1, paid_cents: 999, refunded_cents: 0, spent_cents: 999 },
    ]);
    const single = await asAdmin(`/user/${bob}/analytics`);
    assert.deepEqual([single.totals.currency, single.totals.paid_cents, single.totals.refunded_cents, single.totals.spent_cents],
      ['usd', 4499, 0, 4499]);
  });

  it('says what a refund may give back: the money of the unused time, and all that is left in all', async () => {
    const { rows } = await db.sql.query<{ id: string; tier_id: string }>(
      `select id, tier_id from public.payments where user_id = $1 or user_id = $2`, [alice, bob]);
    const quote = (tier: string) => asAdmin(`/admin/payments/${rows.find((r) => r.tier_id === tier)!.id}`);
    const pick = (q: Json) => [q.currency, q.refundable_cents, q.card_total_seconds, q.card_unused_seconds, q.unused_refundable_cents];
    assert.deepEqual(pick(await quote('starter_1h')), ['usd', 999, 3600, 3480, Math.floor((999 * 3480) / 3600)],
      'two minutes used: the rest of the card is worth its share of the price');
    assert.deepEqual(pick(await quote('starter_eur')), ['eur', 900, 3600, 3600, 900]);
    assert.deepEqual(pick(await quote('basic_5h')), ['usd', 4499, 19_800, 19_800, 4499], 'an unredeemed gift is all unused');
    const missing = await asAdmin(`/admin/payments/${newUserId()}`, 404);
    assert.equal(missing.error.code, 'unknown_payment');
  });

  it('counts what the expiry job has not reached yet apart, then as expired', async () => {
    clock.advance(400 * 86_400);
    const waiting = await asAdmin('/admin/books');
    assert.equal(waiting.ok, true);
    assert.deepEqual([waiting.seconds.total.spendable_seconds, waiting.seconds.total.awaiting_expiry_seconds, waiting.seconds.total.expired_seconds],
      [0, waiting.seconds.total.outstanding_seconds, 0]);
    await sidecar.store.expireCards();
    const expired = await asAdmin('/admin/books');
    const gift = await asAdmin(`/admin/payments/${(await db.sql.query<{ id: string }>(
      `select id from public.payments where user_id = $1`, [bob])).rows[0]!.id}`);
    assert.deepEqual([gift.card_unused_seconds, gift.unused_refundable_cents, gift.refundable_cents], [0, 0, 4499],
      'an expired card has no unused time left to refund');
    assert.equal(expired.ok, true);
    assert.deepEqual([expired.seconds.total.outstanding_seconds, expired.seconds.total.expired_seconds],
      [0, waiting.seconds.total.outstanding_seconds]);
  });

  it('stops balancing when a card or a payment is written behind the rules\' back', async () => {
    await db.sql.query(`update public.time_cards set remaining_seconds = remaining_seconds + 60, status = 'active'
                          where id = (select id from public.time_cards where user_id = $1 and source = 'adjustment')`, [alice]);
    const cards = await asAdmin('/admin/books');
    assert.deepEqual([cards.ok, cards.seconds.ok, cards.seconds.cards_out_of_step, cards.seconds.total.difference_seconds, cards.cents.ok],
      [false, false, 1, -60, true]);
    await db.sql.query(`update public.payments set refunded_cents = 100 where user_id = $1 and currency = 'eur'`, [alice]);
    const money = await asAdmin('/admin/books');
    const eur = money.cents.by_currency.find((m: Json) => m.currency === 'eur');
    assert.deepEqual([money.cents.ok, eur.ok, eur.received_cents, eur.refunded_cents, eur.kept_cents, eur.difference_cents],
      [false, false, 900, 100, 900, -100], 'a succeeded payment with a refund: the cents do not add up');
  });
});

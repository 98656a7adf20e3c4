// Parallel callers on real PostgreSQL, over many connections: nothing is overdrawn, nothing is credited
// twice, and no deadlock or serialization error ever reaches a caller. After every parallel run the books
// (get_books, migrations/010_books.sql) balance: every second sold is used, expired, taken back or still on a
// card, and every cent received is refunded or kept.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isBillingError } from '../src/billing/errors.ts';
import type { BillingStore, SessionState } from '../src/billing/store.ts';
import { createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

describe('billing under concurrency (PostgreSQL)', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createPostgresDatabase();
  });
  after(async () => {
    await db?.close();
  });

  /** The books of the whole database (every test's users): each identity holds, in every currency. */
  const assertBooksBalance = async (store: BillingStore) => {
    const books = await store.getBooks();
    assert.equal(books.ok, true, `the books do not balance: ${JSON.stringify(books)}`);
    assert.equal(books.seconds.cards_out_of_step, 0);
    assert.ok(books.seconds.by_currency.every((g) => g.difference_seconds === 0));
    assert.ok(books.cents.by_currency.every((m) => m.received_cents === m.refunded_cents + m.kept_cents));
    return books;
  };

  it('200 parallel deductions over 10 connections take exactly the balance, never more', async () => {
    const store = db.store(undefined, { poolSize: 10 });
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:a` });
    await store.grantCard({ userId: user, tierId: 'basic_5h', idempotencyKey: `${user}:b` });
    await store.adjustUserTime({ userId: user, seconds: 1234, reason: 'odd amount', idempotencyKey: `${user}:c` });
    const balance = 3600 + 19_800 + 1234;

    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        store.deductTime({ userId: user, seconds: 97 + (i % 60), idempotencyKey: `${user}:d${i}` })),
    );
    const failures = results.filter((r) => r.status === 'rejected');
    assert.deepEqual(failures, [], 'no caller sees an error');
    const answers = results.map((r) => (r as PromiseFulfilledResult<Awaited<ReturnType<typeof store.deductTime>>>).value);
    const requested = answers.reduce((sum, a) => sum + a.deducted_seconds + a.shortfall_seconds, 0);
    const deducted = answers.reduce((sum, a) => sum + a.deducted_seconds, 0);
    assert.ok(requested > balance, 'the calls ask for more than there is');
    assert.equal(deducted, balance);
    assert.ok(answers.every((a) => a.remaining_seconds >= 0));
    assert.equal((await store.getBalance(user)).total_seconds, 0);

    const { rows } = await db.sql.query<{ n: number; total: number; min: number }>(
      `select count(*)::int as n, coalesce(sum(seconds), 0)::int as total, min(remaining_after)::int as min
         from public.ledger_entries where user_id = $1 and kind = 'usage'`, [user]);
    assert.equal(-rows[0]!.total, balance, 'the ledger agrees to the second');
    assert.ok(rows[0]!.min >= 0);
    assert.deepEqual(await ledgerMismatches(db.sql), []);
    await assertBooksBalance(store);
    await store.close();
  });

  it('the same idempotency key sent 50 times in parallel deducts once', async () => {
    const store = db.store(undefined, { poolSize: 10 });
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => store.deductTime({ userId: user, seconds: 300, idempotencyKey: `${user}:same` })),
    );
    assert.equal(answers.filter((a) => !a.replayed).length, 1);
    assert.ok(answers.every((a) => a.deducted_seconds === 300 && a.remaining_seconds === 3300));
    assert.equal((await store.getBalance(user)).total_seconds, 3300);
    const { rows } = await db.sql.query<{ n: number }>(`select count(*)::int as n from public.ledger_entries where user_id = $1 and kind = 'usage'`, [user]);
    assert.equal(rows[0]!.n, 1);
    await assertBooksBalance(store);
    await store.close();
  });

  it('the same purchase granted 50 times in parallel makes one card', async () => {
    const store = db.store(undefined, { poolSize: 10 });
    const user = newUserId();
    const cards = await Promise.all(
      Array.from({ length: 50 }, () => store.grantCard({ userId: user, tierId: 'pro_25h', idempotencyKey: `evt:${user}` })),
    );
    assert.equal(new Set(cards.map((c) => c.id)).size, 1);
    assert.equal((await store.getBalance(user)).total_seconds, 30 * 3600);
    await assertBooksBalance(store);
    await store.close();
  });

  it('three calls of one user on a 3-minute balance are charged 3 minutes in all, never more', async () => {
    const clock = new TestClock('2026-04-01T10:00:00Z');
    const store = db.store(clock.now, { poolSize: 10 });
    const user = newUserId();
    await store.adjustUserTime({ userId: user, seconds: 180, reason: 'three minutes', idempotencyKey: `${user}:c` });

    const starts = await Promise.allSettled(
      [1, 2, 3].map((n) => store.startSession({ userId: user, externalKey: `${user}:${n}`, roomName: `room-${n}` })),
    );
    const sessions = starts.filter((s): s is PromiseFulfilledResult<SessionState> => s.status === 'fulfilled').map((s) => s.value);
    const refused = starts.filter((s) => s.status === 'rejected');
    assert.ok(refused.every((s) => isBillingError((s as PromiseRejectedResult).reason, 'insufficient_balance')));
    assert.equal(sessions.length, 3, 'each of the three starts with one of the three minutes');

    for (let minute = 1; minute <= 4; minute++) {
      clock.advance(61);
      const meters = await Promise.all(sessions.map((s) => store.meterSession(s.session_id)));
      assert.ok(meters.every((m) => m.remaining_seconds === 0));
    }
    const ends = await Promise.all(sessions.map((s) => store.endSession({ sessionId: s.session_id, reason: 'caller_left' })));
    const billed = ends.reduce((sum, e) => sum + e.billed_seconds, 0);
    assert.equal(billed, 180);
    const { rows } = await db.sql.query<{ total: number }>(
      `select coalesce(-sum(seconds), 0)::int as total from public.ledger_entries where user_id = $1 and kind = 'usage'`, [user]);
    assert.equal(rows[0]!.total, 180);
    await assertBooksBalance(store);
    await store.close();
  });

  it('starts beyond the concurrent-call limit are refused even when they race', async () => {
    const store = db.store(undefined, { poolSize: 10 });
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'enterprise_50h', idempotencyKey: `${user}:g` });
    const starts = await Promise.allSettled(
      Array.from({ length: 12 }, (_, n) => store.startSession({ userId: user, externalKey: `${user}:${n}`, roomName: 'r' })),
    );
    const started = starts.filter((s) => s.status === 'fulfilled');
    const refused = starts.filter((s) => s.status === 'rejected' && isBillingError(s.reason, 'too_many_sessions'));
    assert.equal(started.length, 3);
    assert.equal(refused.length, 9);
    await assertBooksBalance(store);
    await store.close();
  });

  it('a gift code redeemed by two users at once goes to exactly one of them', async () => {
    const store = db.store(undefined, { poolSize: 10 });
    const buyer = newUserId();
    const gift = await store.grantCard({ userId: null, purchaserId: buyer, tierId: 'starter_1h', idempotencyKey: `${buyer}:gift` });
    const users = Array.from({ length: 8 }, newUserId);
    const attempts = await Promise.allSettled(users.map((userId) => store.activateCard({ userId, code: gift.activation_code })));
    const winners = attempts.filter((a) => a.status === 'fulfilled');
    assert.equal(winners.length, 1);
    assert.ok(attempts.every((a) => a.status === 'fulfilled' || isBillingError(a.reason, 'code_already_used')));
    await assertBooksBalance(store);
    await store.close();
  });

  it('expiry, refunds and usage of one user racing each other keep every card equal to its ledger', async () => {
    const clock = new TestClock('2025-06-01T00:00:00Z');
    const store = db.store(clock.now, { poolSize: 10 });
    const user = newUserId();
    const cards = [];
    for (let i = 0; i < 6; i++) {
      cards.push(await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g${i}` }));
      clock.advance(30 * 86_400);
    }
    clock.set('2026-07-15T00:00:00Z'); // the first cards have expired, the last ones not
    const work: Promise<unknown>[] = [store.expireCards(), store.expireCards()];
    for (let i = 0; i < 40; i++) work.push(store.deductTime({ userId: user, seconds: 200, idempotencyKey: `${user}:d${i}` }));
    for (const [i, card] of cards.entries()) {
      work.push(store.revokeCardTime({ cardId: card.id, seconds: 500, kind: 'refund', idempotencyKey: `${user}:r${i}` }));
    }
    const results = await Promise.allSettled(work);
    assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
    assert.deepEqual(await ledgerMismatches(db.sql), []);
    const { rows } = await db.sql.query<{ n: number }>(
      `select count(*)::int as n from public.time_cards where user_id = $1 and remaining_seconds < 0`, [user]);
    assert.equal(rows[0]!.n, 0);
    await assertBooksBalance(store);
    await store.close();
  });

  it('payments delivered many times, refund lists of a charge out of order, a dispute and calls racing keep the books', async () => {
    const clock = new TestClock('2026-05-01T09:00:00Z');
    const store = db.store(clock.now, { poolSize: 10 });
    const before = await assertBooksBalance(store);
    const usd = (b: typeof before) => b.cents.by_currency.find((m) => m.currency === 'usd')
      ?? { received_cents: 0, refunded_cents: 0, kept_cents: 0, disputed_cents: 0 };
    const users = Array.from({ length: 6 }, newUserId);
    const ids = users.map((_, i) => ({ checkoutSessionId: `cs_race_${i}_${users[i]!.slice(0, 8)}`,
      paymentIntentId: `pi_race_${i}_${users[i]!.slice(0, 8)}`, chargeId: `ch_race_${i}_${users[i]!.slice(0, 8)}` }));
    // Each purchase told three times at once, by two kinds of event.
    const paid = await Promise.allSettled(users.flatMap((userId, i) => [0, 1, 2].map((n) => store.recordPaymentSuccess(
      { id: `evt_race_pay_${i}_${n}_${userId.slice(0, 8)}`, type: n === 0 ? 'checkout.session.completed' : 'payment_intent.succeeded', payload: {} },
      { userId, tierId: 'starter_1h', gift: false, amountCents: 999, currency: 'usd', ...ids[i]! }))));
    assert.deepEqual(paid.filter((r) => r.status === 'rejected'), []);
    await assertBooksBalance(store);

    // Then at once: calls and deductions of every user, the refund lists of the first three arriving in any
    // order (300, 600 and 999 cents), and a dispute of the fourth.
    const work: Promise<unknown>[] = [];
    for (const [i, userId] of users.entries()) {
      for (let d = 0; d < 8; d++) work.push(store.deductTime({ userId, seconds: 250, idempotencyKey: `${userId}:race${d}` }));
      // A call that a full refund or the chargeback's freeze beat to the card is refused, and nothing else may fail.
      work.push(store.startSession({ userId, externalKey: `${userId}:race-call`, roomName: 'race' })
        .catch((error: unknown) => {
          if (i <= 3 && (error as { code?: string }).code === 'insufficient_balance') return 'refused: the card was taken back first';
          throw error;
        }));
      if (i < 3) {
        // charge.refunded lists the charge's refunds so far: 300, then 300 more, then the last 399.
        const refunds = [300, 300, 399].map((amount, n) => ({ id: `re_race_${i}_${n}_${userId.slice(0, 8)}`, amount, status: 'succeeded' }));
        for (const n of [1, 2, 3]) {
          work.push(store.recordRefunds({ id: `evt_race_refund_${i}_${n}_${userId.slice(0, 8)}`, type: 'charge.refunded', payload: {} },
            { paymentIntentId: ids[i]!.paymentIntentId, chargeId: ids[i]!.chargeId, refunds: refunds.slice(0, n) }));
        }
      }
      if (i === 3) {
        work.push(store.recordDispute({ id: `evt_race_dispute_${userId.slice(0, 8)}`, type: 'charge.dispute.created', payload: {} },
          { paymentIntentId: ids[i]!.paymentIntentId, chargeId: ids[i]!.chargeId, disputeId: `dp_race_${userId.slice(0, 8)}`, status: 'needs_response', inquiry: false }));
      }
    }
    const results = await Promise.allSettled(work);
    assert.deepEqual(results.filter((r) => r.status === 'rejected'), []);
    assert.deepEqual(await ledgerMismatches(db.sql), []);
    const after = await assertBooksBalance(store);
    // Six purchases of 999 cents came in once each; three were refunded in full, one is disputed.
    assert.deepEqual(
      [usd(after).received_cents - usd(before).received_cents, usd(after).refunded_cents - usd(before).refunded_cents,
        usd(after).kept_cents - usd(before).kept_cents, usd(after).disputed_cents - usd(before).disputed_cents],
      [6 * 999, 3 * 999, 3 * 999, 999]);
    await store.close();
  });
});

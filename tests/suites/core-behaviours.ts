// The billing core's behaviours, written once and run on every engine: real PostgreSQL
// (tests/core.postgres.test.ts) and PGlite (tests/core.pglite.test.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseActivationCode } from '../../src/shared/activation-code.ts';
import { isBillingError, type BillingErrorCode } from '../../src/billing/errors.ts';
import type { BillingStore } from '../../src/billing/store.ts';
import { asRole, countRows, ledgerMismatches, newUserId, TestClock, type TestDatabase } from '../helpers/test-db.ts';

const DAY = 86_400;

export async function rejectsWith(promise: Promise<unknown>, code: BillingErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isBillingError(error), `expected a BillingError, got ${String(error)}`);
    assert.equal(error.code, code, `expected ${code}, got ${error.code}: ${error.message}`);
    return true;
  });
}

/** Everything that a bad call must leave untouched. */
async function snapshotCounts(db: TestDatabase): Promise<Record<string, number>> {
  const tables = ['public.time_cards', 'public.ledger_entries', 'public.voice_sessions', 'billing_private.operations',
    'billing_private.activation_failures'];
  const counts: Record<string, number> = {};
  for (const table of tables) counts[table] = await countRows(db.sql, table);
  const { rows } = await db.sql.query<{ s: number }>('select coalesce(sum(remaining_seconds), 0)::int as s from public.time_cards');
  counts.remaining = rows[0]!.s;
  return counts;
}

export function coreBehaviours(engine: string, open: () => Promise<TestDatabase>): void {
  describe(`billing core on ${engine}`, () => {
    let db: TestDatabase;
    before(async () => {
      db = await open();
    });
    after(async () => {
      await db?.close();
    });

    /** A store and clock of the test's own, starting at a fixed instant. */
    const fresh = (start = '2026-03-01T12:00:00Z'): { store: BillingStore; clock: TestClock } => {
      const clock = new TestClock(start);
      return { store: db.store(clock.now), clock };
    };

    describe('pricing tiers', () => {
      it('seeds the five packages of the seeds with their prices and bonus time', async () => {
        const { store } = fresh();
        const tiers = await store.listPricingTiers();
        assert.deepEqual(
          tiers.map((t) => [t.id, t.base_seconds / 3600, t.bonus_seconds / 60, t.price_cents, t.currency]),
          [
            ['starter_1h', 1, 0, 999, 'usd'],
            ['basic_5h', 5, 30, 4499, 'usd'],
            ['premium_10h', 10, 120, 7999, 'usd'],
            ['pro_25h', 25, 300, 17999, 'usd'],
            ['enterprise_50h', 50, 600, 29999, 'usd'],
          ],
        );
      });
    });

    describe('deducting time', () => {
      it('deducts from the card that expires first, across three cards, to the second', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        clock.set('2026-01-01T00:00:00Z');
        const oldest = await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:a` });
        clock.set('2026-02-01T00:00:00Z');
        const middle = await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:b` });
        clock.set('2026-03-01T00:00:00Z');
        const newest = await store.grantCard({ userId: user, tierId: 'basic_5h', idempotencyKey: `${user}:c` });

        const first = await store.deductTime({ userId: user, seconds: 5000, idempotencyKey: `${user}:d1` });
        assert.deepEqual(first.entries, [
          { card_id: oldest.id, seconds: 3600 },
          { card_id: middle.id, seconds: 1400 },
        ]);
        assert.equal(first.deducted_seconds, 5000);
        assert.equal(first.shortfall_seconds, 0);
        assert.equal(first.remaining_seconds, 2200 + 19_800);

        const second = await store.deductTime({ userId: user, seconds: 100_000, idempotencyKey: `${user}:d2` });
        assert.deepEqual(second.entries, [
          { card_id: middle.id, seconds: 2200 },
          { card_id: newest.id, seconds: 19_800 },
        ]);
        assert.equal(second.deducted_seconds, 22_000);
        assert.equal(second.shortfall_seconds, 78_000);
        assert.equal(second.remaining_seconds, 0);

        const { rows } = await db.sql.query<{ id: string; status: string; remaining_seconds: number }>(
          'select id, status, remaining_seconds from public.time_cards where user_id = $1 order by expires_at', [user]);
        assert.deepEqual(rows.map((r) => [r.status, r.remaining_seconds]), [['exhausted', 0], ['exhausted', 0], ['exhausted', 0]]);
        assert.deepEqual(await ledgerMismatches(db.sql), []);
      });

      it('answers a repeated idempotency key with the first answer and changes nothing', async () => {
        const { store } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        const first = await store.deductTime({ userId: user, seconds: 90, idempotencyKey: `${user}:once` });
        const again = await store.deductTime({ userId: user, seconds: 90, idempotencyKey: `${user}:once` });
        assert.equal(first.replayed, false);
        assert.equal(again.replayed, true);
        assert.deepEqual({ ...again, replayed: false }, first);
        assert.equal((await store.getBalance(user)).total_seconds, 3600 - 90);
        await rejectsWith(store.deductTime({ userId: user, seconds: 91, idempotencyKey: `${user}:once` }), 'idempotency_conflict');
      });

      it('ignores expired cards and reports the whole shortfall when nothing is spendable', async () => {
        const { store, clock } = fresh('2025-01-01T00:00:00Z');
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        clock.set('2026-01-01T00:00:01Z');
        const result = await store.deductTime({ userId: user, seconds: 60, idempotencyKey: `${user}:d` });
        assert.equal(result.deducted_seconds, 0);
        assert.equal(result.shortfall_seconds, 60);
        assert.deepEqual(result.entries, []);
      });
    });

    describe('balance', () => {
      it('sums active unexpired cards, counts them and names the next expiry, card by card', async () => {
        const { store, clock } = fresh('2026-01-10T00:00:00Z');
        const user = newUserId();
        const a = await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:a` });
        clock.advance(DAY);
        const b = await store.grantCard({ userId: user, tierId: 'premium_10h', idempotencyKey: `${user}:b` });
        await store.grantCard({ userId: null, purchaserId: user, tierId: 'pro_25h', idempotencyKey: `${user}:gift` });
        const balance = await store.getBalance(user);
        assert.equal(balance.total_seconds, 3600 + 12 * 3600);
        assert.equal(balance.card_count, 2);
        assert.deepEqual(balance.next_expiry, new Date('2027-01-10T00:00:00Z'));
        assert.deepEqual(balance.cards.map((c) => c.card_id), [a.id, b.id]);
      });

      it('is zero, not an error, for a user who never bought anything', async () => {
        const { store } = fresh();
        const balance = await store.getBalance(newUserId());
        assert.equal(balance.total_seconds, 0);
        assert.equal(balance.card_count, 0);
        assert.equal(balance.next_expiry, null);
      });
    });

    describe('granting cards', () => {
      it('activates a bought card for its buyer for one year, and replays a repeated grant', async () => {
        const { store } = fresh('2026-05-01T00:00:00Z');
        const user = newUserId();
        const card = await store.grantCard({ userId: user, tierId: 'basic_5h', idempotencyKey: `${user}:pay1` });
        assert.equal(card.status, 'active');
        assert.equal(card.total_seconds, 5 * 3600 + 30 * 60);
        assert.deepEqual(card.expires_at, new Date('2027-05-01T00:00:00Z'));
        assert.ok(parseActivationCode(card.activation_code).ok, 'the code passes its own check');
        const again = await store.grantCard({ userId: user, tierId: 'basic_5h', idempotencyKey: `${user}:pay1` });
        assert.equal(again.id, card.id);
        assert.equal(again.replayed, true);
        assert.equal((await store.getBalance(user)).total_seconds, 19_800);
      });

      it('grants one card per payment even under two different keys', async () => {
        const { store } = fresh();
        const user = newUserId();
        const { rows } = await db.sql.query<{ id: string }>(
          `insert into public.payments (user_id, tier_id, amount_cents, status) values ($1, 'starter_1h', 999, 'succeeded') returning id`,
          [user]);
        const paymentId = rows[0]!.id;
        const first = await store.grantCard({ userId: user, tierId: 'starter_1h', paymentId, idempotencyKey: `checkout:${paymentId}` });
        const second = await store.grantCard({ userId: user, tierId: 'starter_1h', paymentId, idempotencyKey: `intent:${paymentId}` });
        assert.equal(second.id, first.id);
        const { rows: payment } = await db.sql.query<{ card_id: string }>('select card_id from public.payments where id = $1', [paymentId]);
        assert.equal(payment[0]!.card_id, first.id);
      });
    });

    describe('activation codes', () => {
      it('redeems a gift for the user who enters it, in any case and with spaces or dashes', async () => {
        const { store, clock } = fresh('2026-06-01T00:00:00Z');
        const buyer = newUserId();
        const friend = newUserId();
        const gift = await store.grantCard({ userId: null, purchaserId: buyer, tierId: 'starter_1h', idempotencyKey: `${buyer}:gift` });
        assert.equal(gift.status, 'pending');
        assert.equal(gift.user_id, null);
        assert.equal((await store.getBalance(buyer)).total_seconds, 0, 'a gift does not count for the buyer');
        clock.advance(10 * DAY);
        const typed = gift.activation_code.toLowerCase().replace(/(.{4})(.{4})(.{4})/, '$1 - $2 $3');
        const card = await store.activateCard({ userId: friend, code: typed });
        assert.equal(card.id, gift.id);
        assert.equal(card.user_id, friend);
        assert.equal(card.status, 'active');
        assert.deepEqual(card.expires_at, new Date('2027-06-11T00:00:00Z'), 'a year from redemption');
        assert.equal((await store.getBalance(friend)).total_seconds, 3600);
      });

      it('tells a typo, a malformed code, an unknown code, a used code, a revoked and an expired code apart', async () => {
        const { store, clock } = fresh('2026-06-01T00:00:00Z');
        const buyer = newUserId();
        const user = newUserId();
        const other = newUserId();
        const used = await store.grantCard({ userId: null, purchaserId: buyer, tierId: 'starter_1h', idempotencyKey: `${buyer}:1` });
        await store.activateCard({ userId: other, code: used.activation_code });
        const revoked = await store.grantCard({ userId: null, purchaserId: buyer, tierId: 'starter_1h', idempotencyKey: `${buyer}:2` });
        await store.revokeCardTime({ cardId: revoked.id, seconds: 'all', kind: 'refund', idempotencyKey: `${buyer}:refund` });
        clock.set('2025-01-01T00:00:00Z');
        const stale = await store.grantCard({ userId: null, purchaserId: buyer, tierId: 'starter_1h', idempotencyKey: `${buyer}:3` });
        clock.set('2026-06-01T00:00:00Z');

        const code = used.activation_code;
        const typo = code.slice(0, 3) + (code[3] === 'A' ? 'B' : 'A') + code.slice(4);
        const unknownBody = 'ABCDEFGHJKM';
        const unknown = unknownBody + (await import('../../src/shared/activation-code.ts')).checkSymbol(unknownBody);

        const before = await snapshotCounts(db);
        await rejectsWith(store.activateCard({ userId: user, code: typo }), 'mistyped_code');
        await rejectsWith(store.activateCard({ userId: user, code: 'ABCD-EFGH-IJK0' }), 'malformed_code');
        assert.deepEqual(await snapshotCounts(db), before, 'a code that cannot be ours writes nothing');

        await rejectsWith(store.activateCard({ userId: user, code: unknown }), 'unknown_code');
        await rejectsWith(store.activateCard({ userId: user, code }), 'code_already_used');
        await rejectsWith(store.activateCard({ userId: other, code }), 'code_already_used');
        await rejectsWith(store.activateCard({ userId: user, code: revoked.activation_code }), 'code_revoked');
        await rejectsWith(store.activateCard({ userId: user, code: stale.activation_code }), 'code_expired');
        assert.equal((await store.getBalance(user)).total_seconds, 0);
      });

      it('rate-limits a user who keeps entering wrong codes, and only that user', async () => {
        const { store } = fresh('2026-07-01T00:00:00Z');
        const guesser = newUserId();
        const honest = newUserId();
        await store.updateSettings({ activation_max_failures: 3 });
        try {
          const body = 'QQQQQQQQQQ';
          const { checkSymbol } = await import('../../src/shared/activation-code.ts');
          const guesses = ['2', '3', '4', '5'].map((c) => body + c).map((b) => b + checkSymbol(b));
          for (const guess of guesses.slice(0, 3)) await rejectsWith(store.activateCard({ userId: guesser, code: guess }), 'unknown_code');
          const gift = await store.grantCard({ userId: null, purchaserId: honest, tierId: 'starter_1h', idempotencyKey: `${honest}:g` });
          await rejectsWith(store.activateCard({ userId: guesser, code: gift.activation_code }), 'rate_limited');
          const card = await store.activateCard({ userId: honest, code: gift.activation_code });
          assert.equal(card.user_id, honest);
        } finally {
          await store.updateSettings({ activation_max_failures: 10 });
        }
      });
    });

    describe('taking time back', () => {
      it('refunds part of a card, never below zero, and a won dispute restores a frozen card once', async () => {
        const { store } = fresh();
        const user = newUserId();
        const card = await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        await store.deductTime({ userId: user, seconds: 600, idempotencyKey: `${user}:use` });
        const partial = await store.revokeCardTime({ cardId: card.id, seconds: 1000, kind: 'refund', idempotencyKey: `${user}:r1` });
        assert.equal(partial.revoked_seconds, 1000);
        assert.equal(partial.remaining_seconds, 2000);
        assert.equal(partial.status, 'active');

        const freeze = await store.revokeCardTime({ cardId: card.id, seconds: 'all', kind: 'revoke', idempotencyKey: `${user}:dispute` });
        assert.equal(freeze.revoked_seconds, 2000);
        assert.equal(freeze.status, 'revoked');
        assert.equal((await store.getBalance(user)).total_seconds, 0);

        const big = await store.revokeCardTime({ cardId: card.id, seconds: 5000, kind: 'refund', idempotencyKey: `${user}:r2` });
        assert.equal(big.revoked_seconds, 0, 'nothing left to take');

        const restored = await store.restoreCardTime({ cardId: card.id, revokeIdempotencyKey: `${user}:dispute` });
        assert.equal(restored.restored_seconds, 2000);
        assert.equal(restored.status, 'active');
        const twice = await store.restoreCardTime({ cardId: card.id, revokeIdempotencyKey: `${user}:dispute` });
        assert.equal(twice.replayed, true);
        assert.equal((await store.getBalance(user)).total_seconds, 2000);
        assert.deepEqual(await ledgerMismatches(db.sql), []);
      });

      it('credits and debits by hand with a reason, as ledger rows', async () => {
        const { store } = fresh();
        const user = newUserId();
        const credit = await store.adjustUserTime({ userId: user, seconds: 300, reason: 'apology for an outage', idempotencyKey: `${user}:c` });
        assert.equal(credit.adjusted_seconds, 300);
        const debit = await store.adjustUserTime({ userId: user, seconds: -500, reason: 'duplicate credit', idempotencyKey: `${user}:d` });
        assert.equal(debit.adjusted_seconds, -300);
        assert.equal(debit.shortfall_seconds, 200);
        const { rows } = await db.sql.query<{ kind: string; seconds: number; reason: string }>(
          'select kind, seconds, reason from public.ledger_entries where user_id = $1 order by id', [user]);
        assert.deepEqual(rows, [
          { kind: 'adjustment', seconds: 300, reason: 'apology for an outage' },
          { kind: 'adjustment', seconds: -300, reason: 'duplicate credit' },
        ]);
      });
    });

    describe('metered voice sessions', () => {
      it('charges the first minute up front, a started minute as a whole one, and settles once', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        const start = await store.startSession({ userId: user, externalKey: `${user}:room:job`, roomName: 'room-1' });
        assert.equal(start.charged_seconds, 60);
        assert.deepEqual(start.covered_until, new Date('2026-03-01T12:01:00Z'));
        clock.advance(60);
        assert.equal((await store.meterSession(start.session_id)).charged_seconds, 0, 'the first minute is still running');
        clock.advance(1);
        const second = await store.meterSession(start.session_id);
        assert.equal(second.charged_seconds, 60);
        assert.equal(second.billed_seconds, 120);
        clock.advance(69); // leaves at 2:10
        const end = await store.endSession({ sessionId: start.session_id, reason: 'caller_left' });
        assert.equal(end.status, 'ended');
        assert.equal(end.billed_seconds, 180);
        assert.equal(end.remaining_seconds, 3600 - 180);
        clock.advance(600);
        const again = await store.endSession({ sessionId: start.session_id, reason: 'room_closed' });
        assert.equal(again.replayed, true);
        assert.equal(again.billed_seconds, 180);
        assert.equal(again.end_reason, 'caller_left');
        assert.equal((await store.meterSession(start.session_id)).charged_seconds, 0, 'an ended call is never charged again');
      });

      it('bills until the moment the caller left, not until the worker noticed', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        const start = await store.startSession({ userId: user, externalKey: `${user}:k`, roomName: 'r' });
        const leftAt = clock.advance(70);
        clock.advance(80); // the job lingers
        const end = await store.endSession({ sessionId: start.session_id, reason: 'caller_left', endedAt: leftAt });
        assert.equal(end.billed_seconds, 120);
        assert.deepEqual(end.ended_at, leftAt);
      });

      it('refuses to start with no balance, or beyond the concurrent call limit', async () => {
        const { store } = fresh();
        const broke = newUserId();
        await rejectsWith(store.startSession({ userId: broke, externalKey: `${broke}:k`, roomName: 'r' }), 'insufficient_balance');
        const busy = newUserId();
        await store.grantCard({ userId: busy, tierId: 'starter_1h', idempotencyKey: `${busy}:g` });
        for (const n of [1, 2, 3]) await store.startSession({ userId: busy, externalKey: `${busy}:${n}`, roomName: `r${n}` });
        await rejectsWith(store.startSession({ userId: busy, externalKey: `${busy}:4`, roomName: 'r4' }), 'too_many_sessions');
        const replay = await store.startSession({ userId: busy, externalKey: `${busy}:1`, roomName: 'r1' });
        assert.equal(replay.replayed, true, 'a repeated start of the same call is the same session');
        assert.equal((await store.getBalance(busy)).total_seconds, 3600 - 180);
      });

      it('records the agent that served a call and its numbers; mindbot and none by default; a retry keeps the first', async () => {
        const { store } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        const phone = await store.startSession({ userId: user, externalKey: `${user}:phone`, roomName: 'r1',
          agentName: 'juana', callFrom: '+15105550100', callTo: 'sip:+18449263376@sip.example.com' });
        assert.deepEqual([phone.agent_name, phone.call_from, phone.call_to],
          ['juana', '+15105550100', 'sip:+18449263376@sip.example.com']);
        const app = await store.startSession({ userId: user, externalKey: `${user}:app`, roomName: 'r2' });
        assert.deepEqual([app.agent_name, app.call_from, app.call_to], ['mindbot', null, null]);
        const retried = await store.startSession({ userId: user, externalKey: `${user}:phone`, roomName: 'r1', agentName: 'other' });
        assert.deepEqual([retried.replayed, retried.agent_name, retried.call_from], [true, 'juana', '+15105550100']);
        const ended = await store.endSession({ sessionId: phone.session_id, reason: 'caller_left' });
        assert.deepEqual([ended.agent_name, ended.call_to], ['juana', 'sip:+18449263376@sip.example.com']);
        const listed = await store.listSessions({ userId: user });
        assert.deepEqual(listed.map((s) => [s.room_name, s.agent_name, s.call_from, s.call_to]).sort(),
          [['r1', 'juana', '+15105550100', 'sip:+18449263376@sip.example.com'], ['r2', 'mindbot', null, null]]);
      });

      it('refuses a malformed agent name or number, in the store and in the SQL function, and writes nothing', async () => {
        const { store } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        const before = await snapshotCounts(db);
        const bad = [{ agentName: '' }, { agentName: '-x' }, { agentName: 'a b' }, { agentName: 'a'.repeat(65) },
          { callFrom: '' }, { callFrom: '+1 510 555' }, { callTo: 'x'.repeat(129) }, { callTo: 'line\nbreak' }];
        for (const [n, parties] of bad.entries()) {
          await rejectsWith(store.startSession({ userId: user, externalKey: `${user}:bad${n}`, roomName: 'r', ...parties }),
            'invalid_argument');
        }
        // The SQL function is the rule: it refuses them too when called directly.
        for (const [n, args] of [[`'-x', null, null`], [`null, '', null`], [`null, null, 'a b'`]].entries()) {
          await assert.rejects(db.sql.query(`select public.start_voice_session('${user}', 'direct${n}', 'r', ${args})`),
            /agent name|number/);
        }
        await assert.rejects(db.sql.query(`insert into public.voice_sessions (user_id, external_key, room_name, started_at,
            last_metered_at, increment_seconds, minimum_seconds, call_to) values ('${user}', 'raw', 'r', now(), now(), 60, 60, ' ')`),
          /voice_sessions_call_to_format/);
        assert.deepEqual(await snapshotCounts(db), before);
      });

      it('stops charging at the balance and tells the caller it is exhausted', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        await store.adjustUserTime({ userId: user, seconds: 150, reason: 'trial time', idempotencyKey: `${user}:trial` });
        const start = await store.startSession({ userId: user, externalKey: `${user}:k`, roomName: 'r' });
        clock.advance(61);
        const second = await store.meterSession(start.session_id);
        assert.equal(second.billed_seconds, 120);
        clock.advance(60);
        const third = await store.meterSession(start.session_id);
        assert.equal(third.charged_seconds, 30);
        assert.equal(third.shortfall_seconds, 30);
        assert.equal(third.remaining_seconds, 0);
        assert.deepEqual(third.covered_until, new Date('2026-03-01T12:02:30Z'));
        const end = await store.endSession({ sessionId: start.session_id, reason: 'balance_exhausted', endedAt: third.covered_until });
        assert.equal(end.status, 'cut_off');
        assert.equal(end.billed_seconds, 150);
      });

      it('follows the configured increment and minimum', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        await store.updateSettings({ billing_increment_seconds: 15, minimum_charge_seconds: 30 });
        try {
          const start = await store.startSession({ userId: user, externalKey: `${user}:k`, roomName: 'r' });
          assert.equal(start.billed_seconds, 30);
          clock.advance(31);
          assert.equal((await store.meterSession(start.session_id)).billed_seconds, 45);
          clock.advance(5);
          assert.equal((await store.endSession({ sessionId: start.session_id, reason: 'caller_left' })).billed_seconds, 45);
        } finally {
          await store.updateSettings({ billing_increment_seconds: 60, minimum_charge_seconds: 60 });
        }
      });
    });

    describe('background jobs', () => {
      it('expires cards past their date and writes what was forfeited to the ledger', async () => {
        const { store, clock } = fresh('2024-02-01T00:00:00Z');
        const user = newUserId();
        const card = await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        await store.deductTime({ userId: user, seconds: 600, idempotencyKey: `${user}:d` });
        const gift = await store.grantCard({ userId: null, purchaserId: user, tierId: 'starter_1h', idempotencyKey: `${user}:gift` });
        clock.set('2025-01-31T23:59:59Z');
        await store.expireCards();
        let { rows } = await db.sql.query<{ status: string }>('select status from public.time_cards where id = $1', [card.id]);
        assert.equal(rows[0]!.status, 'active', 'one second before the year is up');
        clock.set('2025-02-01T00:00:00Z');
        const run = await store.expireCards();
        assert.ok(run.expired_cards >= 2);
        ({ rows } = await db.sql.query<{ status: string }>('select status from public.time_cards where id = any($1) order by created_at', [[card.id, gift.id]]));
        assert.deepEqual(rows.map((r) => r.status), ['expired', 'expired']);
        const { rows: ledger } = await db.sql.query<{ card_id: string; seconds: number }>(
          `select card_id, seconds from public.ledger_entries where kind = 'expiry' and card_id = any($1) order by id`, [[card.id, gift.id]]);
        assert.deepEqual(new Map(ledger.map((r) => [r.card_id, r.seconds])), new Map([[card.id, -3000], [gift.id, -3600]]));
        assert.equal((await store.getBalance(user)).total_seconds, 0);
        assert.equal((await store.expireCards()).forfeited_seconds, 0, 'a second run finds nothing');
      });

      it('settles calls whose meter went silent as abandoned, with what was already charged', async () => {
        const { store, clock } = fresh('2026-09-01T00:00:00Z');
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        const crashed = await store.startSession({ userId: user, externalKey: `${user}:crashed`, roomName: 'r1' });
        clock.advance(61);
        await store.meterSession(crashed.session_id);
        const lively = await store.startSession({ userId: user, externalKey: `${user}:lively`, roomName: 'r2' });
        clock.advance(200);
        await store.meterSession(lively.session_id);
        const run = await store.reapStaleSessions(120);
        assert.ok(run.session_ids.includes(crashed.session_id));
        assert.ok(!run.session_ids.includes(lively.session_id));
        const { rows } = await db.sql.query<{ status: string; billed_seconds: number; ended_at: Date }>(
          'select status, billed_seconds, ended_at from public.voice_sessions where id = $1', [crashed.session_id]);
        assert.equal(rows[0]!.status, 'abandoned');
        assert.equal(rows[0]!.billed_seconds, 120);
        assert.deepEqual(rows[0]!.ended_at, new Date('2026-09-01T00:01:01Z'));
        assert.equal((await store.getBalance(user)).total_seconds, 3600 - 120 - 240);
      });
    });

    describe('row level security', () => {
      it('shows an authenticated user only their own cards, sessions, ledger and payments', async () => {
        const { store } = fresh();
        const alice = newUserId();
        const bob = newUserId();
        for (const user of [alice, bob]) {
          await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
          await store.startSession({ userId: user, externalKey: `${user}:s`, roomName: 'r' });
          await db.sql.query(`insert into public.payments (user_id, tier_id, amount_cents) values ($1, 'starter_1h', 999)`, [user]);
        }
        await asRole(db.sql, 'authenticated', { sub: alice }, async (tx) => {
          for (const table of ['time_cards', 'voice_sessions', 'ledger_entries', 'payments']) {
            const { rows } = await tx.query<{ user_id: string }>(`select user_id from public.${table}`);
            assert.ok(rows.length > 0, `alice sees her own ${table}`);
            assert.ok(rows.every((r) => r.user_id === alice), `alice sees only her own ${table}`);
            const { rows: bobs } = await tx.query(`select 1 from public.${table} where user_id = $1`, [bob]);
            assert.equal(bobs.length, 0, `alice cannot see bob's ${table}`);
          }
        });
      });

      it('lets a user read their own balance and redeem for themselves, and nothing for others', async () => {
        const { store } = fresh();
        const alice = newUserId();
        const bob = newUserId();
        await store.grantCard({ userId: bob, tierId: 'starter_1h', idempotencyKey: `${bob}:g` });
        const balance = await asRole(db.sql, 'authenticated', { sub: alice }, async (tx) =>
          (await tx.query<{ b: { total_seconds: number } }>('select public.get_user_time_balance($1) as b', [alice])).rows[0]!.b);
        assert.equal(balance.total_seconds, 0);
        await assert.rejects(
          asRole(db.sql, 'authenticated', { sub: alice }, (tx) => tx.query('select public.get_user_time_balance($1)', [bob])),
          /only act on your own account/);
        await assert.rejects(
          asRole(db.sql, 'authenticated', { sub: alice }, (tx) =>
            tx.query(`select public.get_user_time_balance($1, now() + interval '2 years')`, [alice])),
          /only the service may set the billing clock/);
      });

      it('denies users every service-only function', async () => {
        const user = newUserId();
        const calls = [
          `select public.deduct_user_time('${user}', 10, 'k')`,
          `select public.grant_time_card('${user}', 'starter_1h', null, 'k')`,
          `select public.adjust_user_time('${user}', 10, 'free time', 'k')`,
          `select public.start_voice_session('${user}', 'k', 'r')`,
          `select public.expire_time_cards()`,
          `select public.reap_stale_sessions(60)`,
          `select public.update_billing_settings('{}')`,
        ];
        for (const role of ['authenticated', 'anon'] as const) {
          for (const call of calls) {
            await assert.rejects(asRole(db.sql, role, { sub: user }, (tx) => tx.query(call)), /permission denied/, `${role}: ${call}`);
          }
        }
      });

      it('lets anon read the pricing tiers and nothing else', async () => {
        await asRole(db.sql, 'anon', {}, async (tx) => {
          const { rows } = await tx.query('select id from public.pricing_tiers');
          assert.equal(rows.length, 5);
        });
        for (const table of ['time_cards', 'voice_sessions', 'ledger_entries', 'payments', 'stripe_events', 'notifications', 'billing_settings']) {
          await assert.rejects(asRole(db.sql, 'anon', {}, (tx) => tx.query(`select * from public.${table}`)), /permission denied/, table);
        }
        await assert.rejects(asRole(db.sql, 'authenticated', { sub: newUserId() }, (tx) => tx.query('select * from public.stripe_events')),
          /permission denied/);
      });
    });

    describe('the ledger', () => {
      it('is append-only, for the service role and even for the database owner', async () => {
        const { store } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        await assert.rejects(db.sql.query('update public.ledger_entries set seconds = 1 where user_id = $1', [user]), /append-only/);
        await assert.rejects(db.sql.query('delete from public.ledger_entries where user_id = $1', [user]), /append-only/);
        await assert.rejects(db.sql.query('truncate public.ledger_entries cascade'), /append-only/);
        await assert.rejects(asRole(db.sql, 'service_role', {}, (tx) => tx.query('delete from public.ledger_entries')), /permission denied/);
        await assert.rejects(asRole(db.sql, 'service_role', {}, (tx) =>
          tx.query(`update public.time_cards set remaining_seconds = 999999 where user_id = $1`, [user])), /permission denied/);
      });
    });

    describe('bad input', () => {
      it('raises a clear error and writes nothing', async () => {
        const { store } = fresh();
        const user = newUserId();
        await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
        const before = await snapshotCounts(db);
        const sqlCall = (text: string, params: unknown[]) => db.sql.query(text, params);
        const cases: [string, () => Promise<unknown>, RegExp | BillingErrorCode][] = [
          ['negative seconds (store)', () => store.deductTime({ userId: user, seconds: -5, idempotencyKey: 'x' }), 'invalid_argument'],
          ['negative seconds (SQL)', () => sqlCall('select public.deduct_user_time($1, -5, $2)', [user, 'x']), /positive whole number of seconds/],
          ['zero seconds (SQL)', () => sqlCall('select public.deduct_user_time($1, 0, $2)', [user, 'x']), /positive whole number of seconds/],
          ['unknown user', () => store.deductTime({ userId: newUserId(), seconds: 5, idempotencyKey: 'x' }), 'unknown_user'],
          ['malformed user id', () => store.deductTime({ userId: 'bob', seconds: 5, idempotencyKey: 'x' }), 'invalid_argument'],
          ['unknown tier', () => store.grantCard({ userId: user, tierId: 'gold_99h', idempotencyKey: 'x' }), 'unknown_tier'],
          ['unknown tier (SQL)', () => sqlCall(`select public.grant_time_card($1, 'gold', null, 'x')`, [user]), /no pricing tier 'gold'/],
          ['malformed code', () => store.activateCard({ userId: user, code: 'hello' }), 'malformed_code'],
          ['unknown card', () => store.revokeCardTime({ cardId: newUserId(), seconds: 'all', kind: 'refund', idempotencyKey: 'x' }), 'unknown_card'],
          ['bad revoke kind (SQL)', () => sqlCall(`select public.revoke_card_time($1, 10, 'steal', 'x')`, [newUserId()]), /kind must be refund, revoke or adjustment/],
          ['unknown session', () => store.meterSession(newUserId()), 'unknown_session'],
          ['empty reason', () => store.adjustUserTime({ userId: user, seconds: 60, reason: ' ', idempotencyKey: 'x' }), 'invalid_argument'],
          ['empty key (SQL)', () => sqlCall(`select public.deduct_user_time($1, 5, '')`, [user]), /idempotency key/],
          ['unknown setting', () => sqlCall(`select public.update_billing_settings('{"free_money": true}')`, []), /unknown billing setting/],
        ];
        for (const [name, promise, expected] of cases) {
          if (typeof expected === 'string') await rejectsWith(promise(), expected);
          else await assert.rejects(promise(), expected, name);
        }
        assert.deepEqual(await snapshotCounts(db), before);
      });
    });
  });
}

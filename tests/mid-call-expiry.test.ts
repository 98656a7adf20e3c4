// A card that expires during a call: the start and every meter answer until when the balance can really pay
// (payable_until, walked in SQL over the cards, the first to expire first); the warnings count down to it, the
// call is cut off there, and the greeting never promises the hours that expire first. On real call
// controllers over PostgreSQL with a fake clock, and checked against what metering really does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallController, type CallEvents } from '../src/agent/call-controller.ts';
import { greetingCallerOf, greetingText } from '../src/agent/greeting.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const T0 = new Date('2026-03-02T10:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const since = (date: Date) => (date.getTime() - T0.getTime()) / 1000;

let db: TestDatabase;
let store: BillingStore;
const clock = new TestClock(T0);

before(async () => {
  db = await createPostgresDatabase();
  store = db.store(clock.now, { poolSize: 4 });
});
after(async () => {
  await store?.close();
  await db?.close();
});

let cardsMade = 0;

/** A card of `seconds` that expires at `expiresAt`: credited a card validity (one year, UTC) before. */
async function cardExpiringAt(userId: string, seconds: number, expiresAt: Date): Promise<void> {
  const now = clock.now();
  const credited = new Date(expiresAt);
  credited.setUTCFullYear(credited.getUTCFullYear() - 1);
  clock.set(credited);
  await store.adjustUserTime({ userId, seconds, reason: 'test card', idempotencyKey: `card:${userId}:${++cardsMade}` });
  clock.set(now);
}

const FAR = new Date('2026-12-31T00:00:00Z');

describe('a card that expires mid-call (PostgreSQL, fake clock)', () => {
  test('warnings count down to the real cut-off, the call ends there, the greeting says what expires', async () => {
    clock.set(T0);
    await store.updateSettings({ billing_increment_seconds: 60, minimum_charge_seconds: 60 });
    const user = newUserId();
    // Two hours: 1 h 57 on a card that expires in 3 minutes, 3 minutes on one that lasts.
    await cardExpiringAt(user, 117 * 60, at(180));
    await cardExpiringAt(user, 3 * 60, FAR);
    assert.equal((await store.getBalance(user)).total_seconds, 7200);

    const timers = new FakeTimers(clock);
    const call = new CallController({ store, clock: clock.now, timers });
    const warnings: Array<CallEvents['warning'] & { at: number }> = [];
    const cutOffs: number[] = [];
    call.on('warning', (w) => warnings.push({ ...w, at: since(clock.now()) }));
    call.on('cut_off', () => cutOffs.push(since(clock.now())));
    let greeting = '';
    call.on('started', ({ state, remainingSeconds }) => {
      greeting = greetingText(greetingCallerOf(state, clock.now()));
      assert.equal(remainingSeconds, 360, 'the talk time left is what the cards can pay before they expire');
    });
    const started = await call.join({ userId: user, externalKey: `expiring:${user}`, roomName: 'r' });
    assert.ok(started);
    // The first minute came from the card that expires; two more minutes can, then the other card's three.
    assert.deepEqual([since(started.covered_until), since(started.payable_until)], [60, 360]);
    assert.deepEqual([started.expiring_unused_seconds, since(started.expiring_unused_until!)], [114 * 60, 180]);
    assert.equal(greeting, 'Hi! You have 2 hours of conversation time, but 1 hour 54 minutes of it expires in 3 minutes, ' +
      'before this call can use it, so this call can last about 6 minutes. Consider purchasing more time cards so we ' +
      'can keep talking. How can I help you today?');

    await timers.advance(15 * 60);

    assert.deepEqual(warnings, [
      { remainingSeconds: 300, thresholdSeconds: 300, at: 60 },
      { remainingSeconds: 60, thresholdSeconds: 60, at: 300 },
    ]);
    assert.deepEqual(cutOffs, [360]);
    const { rows } = await db.sql.query<{ status: string; billed_seconds: number; ended_at: Date }>(
      'select status, billed_seconds, ended_at from public.voice_sessions where id = $1', [started.session_id]);
    assert.deepEqual(rows[0], { status: 'cut_off', billed_seconds: 360, ended_at: at(360) });
    // What the call could not use is forfeited with its card, not spent.
    const expired = await store.expireCards();
    assert.ok(expired.forfeited_seconds >= 114 * 60);
    const { rows: ledger } = await db.sql.query<{ kind: string; seconds: number }>(
      `select kind, sum(seconds)::int as seconds from public.ledger_entries where user_id = $1 and kind <> 'adjustment'
        group by kind order by kind`, [user]);
    assert.deepEqual(ledger, [{ kind: 'expiry', seconds: -114 * 60 }, { kind: 'usage', seconds: -360 }]);
    assert.equal(timers.size, 0);
  });

  test('a call whose only card expires is cut off at the last minute the card paid for, with no lead past it', async () => {
    clock.set(T0);
    await store.updateSettings({ billing_increment_seconds: 60, minimum_charge_seconds: 60 });
    const user = newUserId();
    await cardExpiringAt(user, 3600, at(150));
    const timers = new FakeTimers(clock);
    const call = new CallController({ store, clock: clock.now, timers });
    const cutOffs: number[] = [];
    call.on('cut_off', () => cutOffs.push(since(clock.now())));
    const started = await call.join({ userId: user, externalKey: `only:${user}`, roomName: 'r' });
    assert.ok(started);
    // Charged at 0, 60 and 120 (the card is valid then); the minute at 180 finds it expired.
    assert.equal(since(started.payable_until), 180);
    await timers.advance(600);
    assert.deepEqual(cutOffs, [180]);
    const { rows } = await db.sql.query<{ billed_seconds: number; ended_at: Date }>(
      'select billed_seconds, ended_at from public.voice_sessions where id = $1', [started.session_id]);
    assert.deepEqual(rows[0], { billed_seconds: 180, ended_at: at(180) });
  });

  test('payable_until is where metering really ends, for random cards, increments and minimums', async () => {
    let seed = Number(process.env.OUTLOOK_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const firstSeed = seed;
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
    const pick = <T>(items: readonly T[]) => items[int(0, items.length - 1)]!;

    for (let round = 0; round < 40; round++) {
      const increment = pick([60, 60, 45, 300]);
      const minimum = pick([0, 60, 90, increment, 2 * increment]);
      clock.set(T0);
      await store.updateSettings({ billing_increment_seconds: increment, minimum_charge_seconds: minimum });
      const user = newUserId();
      const cards = Array.from({ length: int(1, 4) }, () => ({
        seconds: int(1, 5 * increment),
        // Whole seconds: the meters come half a second after each boundary, never on an expiry.
        expiresIn: pick([int(1, 8 * increment), int(1, 8 * increment), 10 ** 6]),
      }));
      for (const card of cards) await cardExpiringAt(user, card.seconds, at(card.expiresIn));
      const context = `OUTLOOK_SEED=${firstSeed} round ${round}: increment ${increment}, minimum ${minimum}, cards ${JSON.stringify(cards)}`;

      const start = await store.startSession({ userId: user, externalKey: `outlook:${user}`, roomName: 'r' });
      const predicted = since(start.payable_until);
      let state = start;
      // A worker meters just after each boundary while more can be paid, then once at covered_until.
      while (state.payable_until > state.covered_until) {
        clock.set(new Date(state.covered_until.getTime() + 500));
        state = await store.meterSession(state.session_id);
        assert.equal(since(state.payable_until), predicted, `${context}: the outlook changed at ${since(clock.now())} s`);
      }
      clock.set(state.covered_until);
      state = await store.meterSession(state.session_id);
      assert.equal(since(state.covered_until), predicted, `${context}: metering ended elsewhere`);

      // What the start said would expire unused is exactly what is left on cards expired by then.
      const { rows } = await db.sql.query<{ left: number }>(
        `select coalesce(sum(remaining_seconds), 0)::int as left from public.time_cards where user_id = $1 and expires_at <= $2`,
        [user, at(predicted)]);
      assert.equal(start.expiring_unused_seconds, rows[0]!.left, `${context}: unused seconds`);
      await store.endSession({ sessionId: state.session_id, reason: 'caller_left', endedAt: state.covered_until });
    }
    assert.deepEqual(await ledgerMismatches(db.sql), []);
  });
});

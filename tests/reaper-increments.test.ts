// The reaper against live calls at every billing increment: a worker meters once per increment (60 s to an
// hour), so a call is stale only when no meter came within its own increment plus the allowed silence.
// Real call controllers and client heartbeats over PostgreSQL, on a fake clock, with the reaper run every
// 60 s as the sidecar runs it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallController, type Timers } from '../src/agent/call-controller.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const T0 = new Date('2026-04-06T08:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const SILENCE = 180;        // SESSION_MAX_SILENCE_SECONDS's default
const REAP_EVERY = 60;      // REAP_EVERY_SECONDS's default

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

/** A worker's timers that stop firing when the worker dies (its process is gone: nothing of it runs). */
function mortal(timers: FakeTimers): { timers: Timers; die(): void } {
  let alive = true;
  return {
    timers: {
      setTimeout: (fn, ms) => timers.setTimeout(() => (alive ? fn() : undefined), ms),
      clearTimeout: (handle) => timers.clearTimeout(handle),
    },
    die: () => { alive = false; },
  };
}

async function userWith(seconds: number): Promise<string> {
  const user = newUserId();
  await store.adjustUserTime({ userId: user, seconds, reason: 'test credit', idempotencyKey: `credit:${user}` });
  return user;
}

async function row(sessionId: string) {
  const { rows } = await db.sql.query<{ status: string; billed_seconds: number; ended_at: Date | null; end_reason: string | null; last_metered_at: Date }>(
    'select status, billed_seconds, ended_at, end_reason, last_metered_at from public.voice_sessions where id = $1', [sessionId]);
  return rows[0]!;
}

/** The first reaper run (every REAP_EVERY s from T0) strictly past `lastMeter` + increment + silence. */
const firstReapAfter = (lastMeter: number, increment: number) =>
  (Math.floor((lastMeter + increment + SILENCE) / REAP_EVERY) + 1) * REAP_EVERY;

describe('the reaper and live calls (PostgreSQL, fake clock)', () => {
  for (const increment of [60, 300, 3600]) {
    test(`increment ${increment} s: healthy calls are never reaped, dead ones are, right after increment + silence`, async () => {
      clock.set(T0);
      await store.updateSettings({ billing_increment_seconds: increment });
      const timers = new FakeTimers(clock);
      const horizon = 3 * increment + SILENCE + 2 * REAP_EVERY;

      // A worker that lives through the whole test, one that dies after its first meter.
      const healthy = new CallController({ store, clock: clock.now, timers });
      const meters: number[] = [];
      healthy.on('metered', ({ state }) => meters.push((state.last_metered_at.getTime() - T0.getTime()) / 1000));
      const dying = mortal(timers);
      const doomed = new CallController({ store, clock: clock.now, timers: dying.timers });
      const healthyCall = await healthy.join({ userId: await userWith(10 * 3600), externalKey: `w1:${increment}`, roomName: 'r1' });
      const doomedCall = await doomed.join({ userId: await userWith(10 * 3600), externalKey: `w2:${increment}`, roomName: 'r2' });
      assert.ok(healthyCall && doomedCall);

      // Clients running their own calls: one heartbeats once per increment (mid-increment), one goes silent
      // after its second heartbeat.
      const beating = await userWith(10 * 3600);
      const quiet = await userWith(10 * 3600);
      const beatingCall = await store.startClientSession({ userId: beating, clientSessionId: 'beating', roomName: 'c1' });
      const quietCall = await store.startClientSession({ userId: quiet, clientSessionId: 'quiet', roomName: 'c2' });
      const quietBeats = [30, increment + 30];

      const reapedAt = new Map<string, number>();
      for (let t = 30; t <= horizon; t += 30) {
        await timers.advanceTo(at(t));
        if (t > increment) dying.die();   // after its first meter, before its second
        if ((t - 30) % increment === 0) {
          const beat = await store.meterClientSession({ userId: beating, clientSessionId: 'beating' });
          assert.equal(beat.status, 'active', `the beating client's heartbeat at ${t} s`);
        }
        if (quietBeats.includes(t)) await store.meterClientSession({ userId: quiet, clientSessionId: 'quiet' });
        if (t % REAP_EVERY === 0) {
          for (const id of (await store.reapStaleSessions(SILENCE)).session_ids) reapedAt.set(id, t);
        }
      }

      // The live ones metered once per increment, and were never taken for dead.
      assert.equal(reapedAt.get(healthyCall.session_id), undefined);
      assert.equal(reapedAt.get(beatingCall.session_id), undefined);
      assert.equal(healthy.phase, 'active');
      assert.deepEqual(meters, [0, ...Array.from({ length: Math.floor((horizon - 0.5) / increment) }, (_, k) => (k + 1) * increment + 0.5)]);
      // From 300 s up, a healthy call goes longer than the allowed silence between two meters.
      const longestGap = Math.max(...meters.slice(1).map((m, i) => m - meters[i]!));
      assert.equal(longestGap > SILENCE, increment > SILENCE);
      assert.equal((await row(beatingCall.session_id)).status, 'active');

      // The dead worker's call: reaped at the first run past its last meter + increment + silence, not before,
      // settled at that last meter with what it had been charged (the start and the first meter).
      const lastMeter = increment + 0.5;
      assert.equal(reapedAt.get(doomedCall.session_id), firstReapAfter(lastMeter, increment));
      assert.deepEqual(await row(doomedCall.session_id), {
        status: 'abandoned', billed_seconds: 2 * increment, ended_at: at(lastMeter), end_reason: 'worker_silent',
        last_metered_at: at(lastMeter),
      });

      // The silent client: reaped for what its heartbeats proved, the last one and the increment it opened.
      const lastBeat = quietBeats.at(-1)!;
      assert.equal(reapedAt.get(quietCall.session_id), firstReapAfter(lastBeat, increment));
      assert.deepEqual(await row(quietCall.session_id), {
        status: 'abandoned', billed_seconds: 2 * increment, ended_at: at(lastBeat), end_reason: 'worker_silent',
        last_metered_at: at(lastBeat),
      });

      await healthy.leave('caller_left');
      const settled = await row(healthyCall.session_id);
      assert.equal(settled.status, 'ended');
      assert.equal(settled.billed_seconds, Math.ceil(horizon / increment) * increment);
      await store.endClientSession({ userId: beating, clientSessionId: 'beating', claimedSeconds: horizon });
      assert.deepEqual(await ledgerMismatches(db.sql), []);
    });
  }

  test('a worker riding out a store outage for its grace is not reaped; one silent longer is', async () => {
    clock.set(T0);
    await store.updateSettings({ billing_increment_seconds: 300 });
    // The controller's default grace (60 s) and lead (500 ms) are shorter than the silence, as the config
    // demands: a meter that finally gets through at the end of the grace still finds its call running.
    const lastMeter = 0;
    const call = await store.startSession({ userId: await userWith(3600), externalKey: 'outage', roomName: 'r' });
    clock.set(at(lastMeter + 300 + 60 + 0.5));
    assert.deepEqual((await store.reapStaleSessions(SILENCE)).session_ids, []);
    const back = await store.meterSession(call.session_id);
    assert.deepEqual([back.status, back.billed_seconds], ['active', 600]);
    clock.set(at(300 + 60 + 0.5 + 300 + SILENCE + 1));
    assert.deepEqual((await store.reapStaleSessions(SILENCE)).session_ids, [call.session_id]);
  });
});

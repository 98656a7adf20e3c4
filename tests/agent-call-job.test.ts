// The agent's per-call wiring (src/agent/call-job.ts) driven as the LiveKit glue drives it, with a fake room, a
// fake voice and a fake attribute publisher, on the real CallController over real PostgreSQL and fake timers.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { CallRegistry } from '../src/agent/call-controller.ts';
import { CallJob, type Speaker, type SpeakerPlan } from '../src/agent/call-job.ts';
import { ParticipantKind } from '@livekit/rtc-node';
import { callPartiesOf, type CallParties } from '../src/agent/call-parties.ts';
import { readCallAttributes, CALL_ATTRIBUTES } from '../src/shared/call-protocol.ts';
import {
  CAP_CUT_OFF_TEXT, CAP_WARNING_TEXT, CUT_OFF_TEXT, GUEST_OVER_TEXT, GUEST_REFUSED_TEXT, NO_BALANCE_GOODBYE_TEXT, SHUTDOWN_TEXT, STORE_DOWN_TEXT, WARNING_TEXT,
} from '../src/agent/call-speech.ts';
import { BillingError } from '../src/billing/errors.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const T0 = new Date('2026-03-02T10:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const sinceT0 = (date: Date) => (date.getTime() - T0.getTime()) / 1000;

let db: TestDatabase;
const stores: BillingStore[] = [];

before(async () => {
  db = await createPostgresDatabase();
});
after(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  await db.close();
});

interface Said { text: string; allowInterruptions: boolean; at: number }

/** The voice: records what is said and when (seconds since T0); every speech plays out at once. */
class FakeSpeaker implements Speaker {
  readonly said: Said[] = [];
  interrupts = 0;
  constructor(private readonly clock: TestClock) {}
  say(text: string, options: { allowInterruptions: boolean }) {
    this.said.push({ text, allowInterruptions: options.allowInterruptions, at: sinceT0(this.clock.now()) });
    return { waitForPlayout: () => Promise.resolve() };
  }
  interrupt(): void {
    this.interrupts += 1;
  }
  texts(): string[] {
    return this.said.map((s) => s.text);
  }
}

interface CallOptions {
  identity?: string; guestAllowanceSeconds?: number; noBalanceGraceSeconds?: number;
  /** The job's store, instead of the world's (e.g. one that goes down). */
  store?: BillingStore;
  /** Who takes part, as the worker reads it from the job and the caller. */
  parties?: CallParties;
}

function world() {
  const clock = new TestClock(T0);
  const timers = new FakeTimers(clock);
  const store = db.store(clock.now, { poolSize: 4 });
  stores.push(store);
  const registry = new CallRegistry({ store, clock: clock.now, timers });

  function call(userId: string | null, options: CallOptions = {}) {
    const room = new EventEmitter();
    const speaker = new FakeSpeaker(clock);
    const plans: SpeakerPlan[] = [];
    const published: Array<{ at: number; attributes: Record<string, string> }> = [];
    const endings: string[] = [];
    const identity = options.identity ?? userId ?? 'guest-1';
    const job = new CallJob({
      caller: { identity, userId },
      externalKey: `room-sid:${identity}:${crypto.randomUUID()}`,
      roomName: `room-${identity.slice(0, 8)}`,
      ...(options.parties && { parties: options.parties }),
      store: options.store ?? store,
      registry,
      room,
      attributes: {
        setAttributes: async (attributes) => { published.push({ at: sinceT0(clock.now()), attributes }); },
      },
      openSpeaker: async (plan) => { plans.push(plan); return speaker; },
      endJob: (reason) => { endings.push(reason); },
      guestAllowanceSeconds: options.guestAllowanceSeconds ?? 300,
      noBalanceGraceSeconds: options.noBalanceGraceSeconds ?? 60,
      timers,
      clock: clock.now,
      log: { info() {}, warn() {}, error() {} },
    });
    let endedYet = false;
    void job.ended.then(() => { endedYet = true; });
    /** The app's view: each published state with its time left. */
    const states = () => published.map((p) => ({ at: p.at, ...readCallAttributes(p.attributes) }));
    return { job, room, speaker, plans, published, states, endings, hasEnded: () => endedYet };
  }
  return { clock, timers, store, registry, call };
}

async function credit(store: BillingStore, userId: string, seconds: number): Promise<void> {
  await store.adjustUserTime({ userId, seconds, reason: 'test credit', idempotencyKey: `credit:${userId}` });
}

async function sessionRows(userId: string) {
  const { rows } = await db.sql.query<{
    status: string; billed_seconds: number; ended_at: Date | null; end_reason: string | null;
  }>('select status, billed_seconds, ended_at, end_reason from public.voice_sessions where user_id = $1', [userId]);
  return rows;
}

/** Lets the promise chains a room event starts (settlement, attributes) run to their end. */
const settleDown = () => new Promise((resolve) => setTimeout(resolve, 50));

describe('CallJob (fake room and voice, real controller over PostgreSQL)', () => {
  test('greets by the talk time left and tells the app the true time left after each meter', async () => {
    const { timers, store, call } = world();
    const user = newUserId();
    await credit(store, user, 2 * 3600);
    const c = call(user);
    await c.job.start();

    assert.equal(c.speaker.said.length, 1);
    assert.match(c.speaker.said[0]!.text, /You have 2 hours of conversation time remaining/);
    assert.equal(c.plans.length, 1);
    assert.equal(c.plans[0]!.userId, user);
    assert.equal(c.plans[0]!.greeting, c.speaker.said[0]!.text);
    assert.equal(c.plans[0]!.call, c.job.call);

    await timers.advance(130);
    const sessionId = c.job.call!.sessionId;
    assert.ok(sessionId);
    // Meters at 0, 60.5 and 120.5 s: each published with what is truly left then (rounded to the second).
    assert.deepEqual(c.states(), [
      { at: 0, state: 'starting', remainingSeconds: null, sessionId: null },
      { at: 0, state: 'active', remainingSeconds: 7200, sessionId },
      { at: 60.5, state: 'active', remainingSeconds: 7140, sessionId },
      { at: 120.5, state: 'active', remainingSeconds: 7080, sessionId },
    ]);
    // The truth behind the last one: the balance plus what is paid for this call and not yet used.
    const balance = (await store.getBalance(user)).total_seconds;
    const paidAhead = (c.job.call!.state!.covered_until.getTime() - at(120.5).getTime()) / 1000;
    assert.equal(Math.round(balance + paidAhead), 7080);
    assert.equal(c.published[3]!.attributes[CALL_ATTRIBUTES.meteredAt], at(120.5).toISOString());
    await c.job.shutdown();
  });

  test('greets with the time the call can really use when most of the balance expires first', async () => {
    const { clock, timers, store, call } = world();
    const user = newUserId();
    // 1 h 57 credited a year (the card validity) before T0 + 3 minutes, so it expires then; 3 minutes that last.
    clock.set(new Date('2025-03-02T10:03:00Z'));
    await store.adjustUserTime({ userId: user, seconds: 117 * 60, reason: 'expiring credit', idempotencyKey: `soon:${user}` });
    clock.set(T0);
    await store.adjustUserTime({ userId: user, seconds: 3 * 60, reason: 'lasting credit', idempotencyKey: `later:${user}` });
    const c = call(user);
    await c.job.start();
    assert.equal(c.speaker.said[0]!.text, 'Hi! You have 2 hours of conversation time, but 1 hour 54 minutes of it expires ' +
      'in 3 minutes, before this call can use it, so this call can last about 6 minutes. Consider purchasing more time ' +
      'cards so we can keep talking. How can I help you today?');
    // The app's countdown starts from the same six minutes.
    assert.equal(c.states().find((s) => s.state === 'active')!.remainingSeconds, 360);
    await timers.advance(400);
    assert.deepEqual(c.speaker.texts().slice(1), [WARNING_TEXT(300), WARNING_TEXT(60), CUT_OFF_TEXT]);
    assert.deepEqual((await sessionRows(user)).map((r) => [r.status, r.billed_seconds, r.ended_at]), [['cut_off', 360, at(360)]]);
  });

  test('warns once at 5 minutes and once at 1 minute left, queued behind the current speech', async () => {
    const { timers, store, call } = world();
    const user = newUserId();
    await credit(store, user, 7 * 60);
    const c = call(user);
    await c.job.start();
    await timers.advance(400);

    const warnings = c.speaker.said.filter((s) => /Just so you know/.test(s.text));
    assert.deepEqual(warnings.map((w) => [w.at, w.text, w.allowInterruptions]), [
      [120, 'Just so you know, you have about 5 minutes of talk time left.', false],
      [360, 'Just so you know, you have about 1 minute of talk time left.', false],
    ]);
    assert.equal(c.speaker.interrupts, 0);
    assert.equal(c.endings.length, 0);
    await c.job.shutdown();
  });

  test('a 3-minute balance: cut-off goodbye, attribute cut_off, the job ended, exactly 180 s billed', async () => {
    const { timers, store, call } = world();
    const user = newUserId();
    await credit(store, user, 180);
    const c = call(user);
    await c.job.start();
    await timers.advance(300);
    assert.equal(await c.job.ended, 'balance_exhausted');

    // The greeting already tells the time left: the 5-minute warning due at the start is not spoken.
    assert.deepEqual(c.speaker.said.map((s) => [s.at, s.text]), [
      [0, c.speaker.said[0]!.text],
      [120, 'Just so you know, you have about 1 minute of talk time left.'],
      [180, CUT_OFF_TEXT],
    ]);
    assert.match(c.speaker.said[0]!.text, /about 3 minutes left/);
    assert.equal(c.speaker.said[2]!.allowInterruptions, false);
    assert.equal(c.speaker.interrupts, 1);
    assert.deepEqual(c.states().map((s) => [s.at, s.state, s.remainingSeconds]), [
      [0, 'starting', null], [0, 'active', 180], [60.5, 'active', 120], [120.5, 'active', 60], [180, 'active', 0],
      [180, 'cut_off', 0], [180, 'ended', null],
    ]);
    assert.deepEqual(c.endings, ['balance_exhausted']);
    assert.deepEqual(await sessionRows(user),
      [{ status: 'cut_off', billed_seconds: 180, ended_at: at(180), end_reason: 'balance_exhausted' }]);
    assert.equal((await store.getBalance(user)).total_seconds, 0);
    assert.equal(timers.size, 0);
  });

  test('the store down past the grace: the apology, then the job ends at once while the settlement retries', async () => {
    const { timers, store, call } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    let down = false;
    const shaky = new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => down && ['meterSession', 'endSession'].includes(String(prop))
          ? Promise.reject(new BillingError('storage_unavailable', 'the billing database did not answer within 5000 ms'))
          : (value as (...a: unknown[]) => unknown).apply(target, args);
      },
    });
    const c = call(user, { store: shaky });
    await c.job.start();
    await timers.advance(65);
    down = true;
    // Paid until 2:00, grace 60 s: the call ends at 3:00; the settlement's retries (1 s, 2 s, 4 s…) come after.
    await timers.advance(116);

    assert.deepEqual(c.speaker.said.slice(1).map((s) => [s.at, s.text]), [[180, STORE_DOWN_TEXT]]);
    assert.deepEqual(c.endings, ['store_unreachable']);
    assert.equal(await c.job.ended, 'store_unreachable');
    assert.ok(c.states().some((s) => s.state === 'store_unreachable' && s.at === 180));
    down = false;
    await timers.advance(30);
    assert.deepEqual(await sessionRows(user),
      [{ status: 'ended', billed_seconds: 180, ended_at: at(180), end_reason: 'store_unreachable' }]);
    assert.deepEqual(c.endings, ['store_unreachable']);
    assert.equal(timers.size, 0);
  });

  test('records the agent that served the call and the phone caller\'s numbers; the default agent and none otherwise', async () => {
    const { store, call } = world();
    const [phoneUser, appUser] = [newUserId(), newUserId()];
    await credit(store, phoneUser, 3600);
    await credit(store, appUser, 3600);
    const phone = call(phoneUser, { parties: callPartiesOf({ dispatchedAgentName: 'juana', caller: { kind: ParticipantKind.SIP,
      attributes: { 'sip.phoneNumber': '+15105550100', 'sip.trunkPhoneNumber': '+18449263376' } } }) });
    await phone.job.start();
    const app = call(appUser);
    await app.job.start();
    const calls = async (userId: string) => (await store.listSessions({ userId })).map((s) => [s.agent_name, s.call_from, s.call_to]);
    assert.deepEqual(await calls(phoneUser), [['juana', '+15105550100', '+18449263376']]);
    assert.deepEqual(await calls(appUser), [['mindbot', null, null]]);
    await phone.job.jobShutdown();
    await app.job.jobShutdown();
  });

  test('the caller leaves at 2:10 (learned at 2:25): 3 minutes charged, ended once, settled once despite the room closing too', async () => {
    const { timers, store, call } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    const c = call(user);
    await c.job.start();
    let settlements = 0;
    c.job.call!.on('ended', () => { settlements += 1; });
    await timers.advance(145);

    c.room.emit('caller_left', at(130));
    c.room.emit('room_closed', at(146));
    assert.equal(await c.job.ended, 'caller_left');
    await c.job.call!.finished();
    c.room.emit('caller_left', at(150));
    await c.job.jobShutdown(); // the framework's shutdown callback, as the job ends
    await settleDown();

    assert.deepEqual(c.endings, ['caller_left']);
    assert.equal(settlements, 1);
    assert.deepEqual(await sessionRows(user),
      [{ status: 'ended', billed_seconds: 180, ended_at: at(130), end_reason: 'caller_left' }]);
    assert.equal((await store.getBalance(user)).total_seconds, 3600 - 180);
    assert.equal(c.states().at(-1)!.state, 'ended');
    // Nothing said after the hang-up.
    assert.equal(c.speaker.said.length, 1);
    assert.equal(timers.size, 0);
  });

  test('the worker shutting down (SIGTERM) settles at its moment, says a short goodbye and ends the job', async () => {
    const { clock, timers, store, call } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    const c = call(user);
    await c.job.start();
    await timers.advance(90);
    const sigtermAt = clock.now();
    clock.advance(3); // the job process gets round to it a little later
    await c.job.shutdown(sigtermAt);

    assert.deepEqual(c.endings, ['worker_shutdown']);
    assert.equal(c.speaker.said.at(-1)!.text, SHUTDOWN_TEXT);
    assert.equal(c.speaker.interrupts, 1);
    assert.deepEqual(await sessionRows(user),
      [{ status: 'ended', billed_seconds: 120, ended_at: at(90), end_reason: 'worker_shutdown' }]);
    assert.equal(c.states().at(-1)!.state, 'ended');
    assert.equal(timers.size, 0);
  });

  test("the registry's shutdownAll alone also ends each billed job with the goodbye", async () => {
    const { timers, store, registry, call } = world();
    const users = [newUserId(), newUserId()];
    const calls = [];
    for (const user of users) {
      await credit(store, user, 3600);
      const c = call(user);
      await c.job.start();
      calls.push(c);
    }
    await timers.advance(30);
    await registry.shutdownAll('worker_shutdown', at(30));
    for (const [i, c] of calls.entries()) {
      assert.equal(await c.job.ended, 'worker_shutdown');
      assert.equal(c.speaker.said.at(-1)!.text, SHUTDOWN_TEXT);
      assert.deepEqual(await sessionRows(users[i]!),
        [{ status: 'ended', billed_seconds: 60, ended_at: at(30), end_reason: 'worker_shutdown' }]);
    }
    assert.equal(registry.size, 0);
  });

  test("the job's own shutdown settles as worker_shutdown without a word or a second endJob", async () => {
    const { timers, store, call } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    const c = call(user);
    await c.job.start();
    await timers.advance(70);
    await c.job.jobShutdown();
    assert.deepEqual(await sessionRows(user),
      [{ status: 'ended', billed_seconds: 120, ended_at: at(70), end_reason: 'worker_shutdown' }]);
    assert.deepEqual(c.endings, []);
    assert.equal(c.speaker.said.length, 1);
  });

  test('no balance: the packages are offered, the job ends after the grace, nothing is billed', async () => {
    const { timers, call } = world();
    const user = newUserId();
    const c = call(user, { noBalanceGraceSeconds: 60 });
    await c.job.start();
    assert.equal(c.speaker.said.length, 1);
    assert.match(c.speaker.said[0]!.text, /no talk time left/);
    assert.match(c.speaker.said[0]!.text, /Starter Pack/);
    assert.match(c.speaker.said[0]!.text, /I'll stay for 1 minute/);
    assert.equal(c.plans[0]!.call, null);
    assert.equal(c.plans[0]!.greeting, c.speaker.said[0]!.text);

    await timers.advance(59);
    await settleDown();
    assert.equal(c.hasEnded(), false);
    await timers.advance(1);
    assert.equal(await c.job.ended, 'no_balance');
    assert.deepEqual(c.speaker.said.map((s) => [s.at, s.text]).at(-1), [60, NO_BALANCE_GOODBYE_TEXT]);
    assert.deepEqual(c.endings, ['no_balance']);
    assert.deepEqual(c.states().map((s) => s.state), ['starting', 'no_balance', 'ended']);
    assert.deepEqual(await sessionRows(user), []);
    assert.equal(timers.size, 0);
  });

  // A postpaid caller (migrations/017): a plan at 6 cents a minute (0.1 cent a second, exact) and a spending cap.
  async function subscribeSixCents(userId: string, capCents: number, status: 'active' | 'suspended' = 'active') {
    await db.sql.query(
      `insert into public.plans (key, version, kind, name, default_cap_cents, max_cap_cents)
       values ('test_six_cents', 1, 'payg', 'Six cents', 1000, 100000) on conflict do nothing`);
    await db.sql.query(
      `insert into public.plan_rate_tiers (plan_id, position, up_to_seconds, cents_per_minute)
       select id, 1, null, 6.0 from public.plans where key = 'test_six_cents' on conflict do nothing`);
    await db.sql.query('insert into public.stripe_customers (user_id, customer_id) values ($1, $2)',
      [userId, `cus_${userId.replaceAll('-', '').slice(0, 20)}`]);
    await db.sql.query(
      `insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end,
         spending_cap_cents, suspended_reason, suspended_invoice_url)
       select $1, p.id, $2, '2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z', $3, $4, $5
         from public.plans p where p.key = 'test_six_cents'`,
      [userId, status, capCents, status === 'suspended' ? 'invoice.payment_failed' : null,
        status === 'suspended' ? 'https://invoice.stripe.com/i/test' : null]);
  }

  test('a postpaid call speaks of its spending cap: greeting, warnings at 5 and 1 minutes from it, the cap goodbye', async () => {
    const { timers, call } = world();
    const user = newUserId();
    await subscribeSixCents(user, 42); // 424 s fit under 42 cents
    const c = call(user);
    await c.job.start();
    await timers.advance(600);
    assert.equal(await c.job.ended, 'balance_exhausted');
    assert.deepEqual(c.speaker.said.map((s) => [s.at, s.text]), [
      [0, 'Hi! You are about 7 minutes from your spending cap of 42 cents for this billing period. You can raise it in the ' +
        'MindBot app. How can I help you today?'],
      [124, 'Just so you know, you are about 5 minutes from your spending cap of 42 cents for this billing period.'],
      [364, 'Just so you know, you are about 1 minute from your spending cap of 42 cents for this billing period.'],
      [424, "You've reached your spending cap of 42 cents for this billing period, so I have to end our call here. You can " +
        'raise the cap in the MindBot app. Thanks for talking with me, and goodbye!'],
    ]);
    assert.equal(c.speaker.said[1]!.text, CAP_WARNING_TEXT(300, 42, 'usd'));
    assert.equal(c.speaker.said[3]!.text, CAP_CUT_OFF_TEXT(42, 'usd'));
    assert.deepEqual((await sessionRows(user)).map((r) => [r.status, r.billed_seconds]), [['cut_off', 424]]);
  });

  test('a start refused for a suspended plan says so, with the packages as a way to talk meanwhile', async () => {
    const { call } = world();
    const user = newUserId();
    await subscribeSixCents(user, 5000, 'suspended');
    const c = call(user, { noBalanceGraceSeconds: 0 });
    await c.job.start();
    assert.equal(await c.job.ended, 'no_balance');
    assert.equal(c.speaker.said.length, 1);
    assert.match(c.speaker.said[0]!.text, new RegExp(
      "^Hi, I'm MindBot\\. I'm sorry, I can't start our call: calls on your monthly plan are suspended because an invoice " +
      "is unpaid\\. Once it's paid, with the payment link in the MindBot app, we can talk again; a time card works " +
      'meanwhile\\. You can buy the Starter Pack, 1 hour for 9 dollars and 99 cents'));
    assert.doesNotMatch(c.speaker.said[0]!.text, /https?:/, 'the invoice link is for the screen, not the voice');
    assert.deepEqual(c.states().map((s) => s.state), ['starting', 'no_balance', 'ended']);
    assert.deepEqual(await sessionRows(user), []);
  });

  test('a start refused because the spending cap is spent names the cap', async () => {
    const { timers, call } = world();
    const user = newUserId();
    await subscribeSixCents(user, 1); // 14 s fit under 1 cent
    const first = call(user);
    await first.job.start();
    await timers.advance(60);
    assert.equal(await first.job.ended, 'balance_exhausted');
    assert.equal(first.speaker.said.at(-1)!.text, CAP_CUT_OFF_TEXT(1, 'usd'));

    const second = call(user, { noBalanceGraceSeconds: 0 });
    await second.job.start();
    assert.equal(await second.job.ended, 'no_balance');
    assert.match(second.speaker.said[0]!.text, /^Hi, I'm MindBot\. I'm sorry, you've reached your spending cap of 1 cent for this billing period, so I can't start our call\. You can raise the cap in the MindBot app, or use a time card\. You can buy the Starter Pack/);
  });

  test('a guest is refused when the allowance is 0: told so, the job ended, no session', async () => {
    const { call, registry } = world();
    const c = call(null, { identity: 'guest-abc', guestAllowanceSeconds: 0 });
    await c.job.start();
    assert.equal(await c.job.ended, 'guest_refused');
    assert.deepEqual(c.speaker.texts(), [GUEST_REFUSED_TEXT]);
    assert.equal(c.plans[0]!.userId, null);
    assert.equal(c.plans[0]!.greeting, undefined);
    assert.equal(c.job.call, null);
    assert.equal(registry.size, 0);
    assert.deepEqual(c.states().map((s) => [s.state, s.remainingSeconds]), [['starting', null], ['guest', 0], ['ended', null]]);
  });

  test('a guest is greeted as a guest and the job ends after the allowance', async () => {
    const { timers, call } = world();
    const c = call(null, { identity: 'guest-xyz', guestAllowanceSeconds: 300 });
    await c.job.start();
    assert.match(c.speaker.said[0]!.text, /talking as a guest/);
    await settleDown();
    assert.deepEqual(c.states().map((s) => [s.state, s.remainingSeconds]), [['starting', null], ['guest', 300]]);
    await timers.advance(299);
    await settleDown();
    assert.equal(c.hasEnded(), false);
    await timers.advance(1);
    assert.equal(await c.job.ended, 'guest_allowance');
    assert.deepEqual(c.speaker.said.at(-1), { text: GUEST_OVER_TEXT, allowInterruptions: false, at: 300 });
    assert.deepEqual(c.endings, ['guest_allowance']);
    assert.equal(c.states().at(-1)!.state, 'ended');
    assert.equal(timers.size, 0);
  });

  test('a guest who hangs up ends the job at once, with no timer left behind', async () => {
    const { timers, call } = world();
    const c = call(null, { guestAllowanceSeconds: 300 });
    await c.job.start();
    await timers.advance(20);
    c.room.emit('caller_left', at(20));
    assert.equal(await c.job.ended, 'caller_left');
    assert.deepEqual(c.endings, ['caller_left']);
    assert.equal(timers.size, 0);
  });
});

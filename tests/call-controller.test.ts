import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallController, CallRegistry, type CallEventName, type CallEvents } from '../src/agent/call-controller.ts';
import { BillingError } from '../src/billing/errors.ts';
import type { BillingStore } from '../src/billing/store.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';

const T0 = new Date('2026-03-02T10:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

let db: TestDatabase;
const stores: BillingStore[] = [];

before(async () => {
  db = await createPostgresDatabase();
});
after(async () => {
  await Promise.all(stores.map((s) => s.close().catch(() => {})));
  await db.close();
});

function world() {
  const clock = new TestClock(T0);
  const timers = new FakeTimers(clock);
  const store = db.store(clock.now, { poolSize: 4 });
  stores.push(store);
  const controller = (s: BillingStore = store) => new CallController({ store: s, clock: clock.now, timers });
  return { clock, timers, store, controller };
}

async function credit(store: BillingStore, userId: string, seconds: number): Promise<void> {
  await store.adjustUserTime({ userId, seconds, reason: 'test credit', idempotencyKey: `credit:${userId}` });
}

type Recorded = { [K in CallEventName]: { type: K; payload: CallEvents[K]; at: Date } }[CallEventName];

function record(controller: CallController, clock: TestClock) {
  const events: Recorded[] = [];
  const names: CallEventName[] = ['started', 'metered', 'no_balance', 'warning', 'cut_off', 'store_unreachable', 'ended'];
  for (const type of names) {
    controller.on(type, (payload) => events.push({ type, payload, at: clock.now() } as Recorded));
  }
  const of = <K extends CallEventName>(type: K) =>
    events.filter((e) => e.type === type) as Array<{ type: K; payload: CallEvents[K]; at: Date }>;
  return { events, of };
}

async function sessionRow(sessionId: string) {
  const { rows } = await db.sql.query<{
    status: string; billed_seconds: number; ended_at: Date | null; end_reason: string | null;
  }>('select status, billed_seconds, ended_at, end_reason from public.voice_sessions where id = $1', [sessionId]);
  return rows[0]!;
}

/** A store whose session calls fail with storage_unavailable while `down`. */
function flaky(store: BillingStore) {
  const control = { down: false, failures: 0 };
  const wrapped = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (control.down && ['startSession', 'meterSession', 'endSession'].includes(String(prop))) {
          control.failures += 1;
          return Promise.reject(new BillingError('storage_unavailable', 'billing database unreachable: ECONNREFUSED'));
        }
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: wrapped, control };
}

const join = (c: CallController, userId: string) =>
  c.join({ userId, externalKey: `call:${userId}:${crypto.randomUUID()}`, roomName: `room-${userId.slice(0, 8)}` });

describe('CallController (PostgreSQL, fake timers)', () => {
  test('warns once at 5 minutes left and once at 1 minute left, then cuts off at the paid end', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 7 * 60);
    const call = controller();
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);
    assert.equal(rec.of('started')[0]!.payload.remainingSeconds, 420);

    await timers.advance(10 * 60);

    const warnings = rec.of('warning');
    assert.deepEqual(
      warnings.map((w) => ({ ...w.payload, at: w.at.toISOString() })),
      [
        { remainingSeconds: 300, thresholdSeconds: 300, at: at(120).toISOString() },
        { remainingSeconds: 60, thresholdSeconds: 60, at: at(360).toISOString() },
      ],
    );
    assert.equal(rec.of('cut_off').length, 1);
    assert.deepEqual(rec.of('cut_off')[0]!.at, at(420));
    const row = await sessionRow(started.session_id);
    assert.equal(row.status, 'cut_off');
    assert.equal(row.billed_seconds, 420);
    assert.deepEqual(row.ended_at, at(420));
    assert.equal(timers.size, 0);
  });

  test('a 3-minute balance is cut off after exactly 3 billed minutes', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 180);
    const call = controller();
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);

    await timers.advance(300);

    // Already under 5 minutes at the start: one warning then; the 1-minute one at 2:00.
    assert.deepEqual(rec.of('warning').map((w) => [w.payload.thresholdSeconds, w.payload.remainingSeconds, w.at.getTime()]),
      [[300, 180, at(0).getTime()], [60, 60, at(120).getTime()]]);
    assert.equal(rec.of('cut_off').length, 1);
    assert.deepEqual(rec.of('cut_off')[0]!.payload.coveredUntil, at(180));
    const ended = rec.of('ended');
    assert.equal(ended.length, 1);
    assert.equal(ended[0]!.payload.reason, 'balance_exhausted');
    assert.equal(ended[0]!.payload.settled, true);
    const row = await sessionRow(started.session_id);
    assert.deepEqual(row, { status: 'cut_off', billed_seconds: 180, ended_at: at(180), end_reason: 'balance_exhausted' });
    assert.equal((await store.getBalance(user)).total_seconds, 0);
    assert.equal(call.phase, 'ended');
    assert.equal(timers.size, 0);
  });

  test('metered follows every answer of the store with the talk time truly left, then stops with the call', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 180);
    const call = controller();
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);

    await timers.advance(600);

    // At the start, after each increment's meter (half a second into it) and at the last paid second.
    assert.deepEqual(rec.of('metered').map((m) => [(m.at.getTime() - T0.getTime()) / 1000, m.payload.remainingSeconds]),
      [[0, 180], [60.5, 120], [120.5, 60], [180, 0]]);
    for (const m of rec.of('metered')) {
      assert.equal(m.payload.state.session_id, started.session_id);
      assert.equal(m.payload.state.status, 'active');
    }
    assert.deepEqual(rec.of('metered')[0]!.payload, rec.of('started')[0]!.payload);
    // Nothing after the cut-off: the last event is the settlement.
    assert.deepEqual(rec.events.slice(-2).map((e) => e.type), ['cut_off', 'ended']);
  });

  test('leaving at 2:10 charges 3 minutes, settled at the moment of the event even when learned late', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    const call = controller();
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);
    await timers.advance(130);
    const state = await call.leave('caller_left');
    assert.equal(state?.billed_seconds, 180);
    assert.deepEqual(await sessionRow(started.session_id),
      { status: 'ended', billed_seconds: 180, ended_at: at(130), end_reason: 'caller_left' });
    assert.equal(timers.size, 0);
    assert.equal(rec.of('ended').length, 1);

    // The worker learns at 2:25 that the caller left at 2:10 (the 2:00 meter already charged the third minute).
    const user2 = newUserId();
    await credit(store, user2, 3600);
    clock.set(at(1000));
    const late = controller();
    const s2 = await join(late, user2);
    assert.ok(s2);
    await timers.advance(145);
    await late.leave('room_closed', new Date(s2.started_at.getTime() + 130_000));
    const row2 = await sessionRow(s2.session_id);
    assert.equal(row2.billed_seconds, 180);
    assert.deepEqual(row2.ended_at, new Date(s2.started_at.getTime() + 130_000));
    assert.equal((await store.getBalance(user2)).total_seconds, 3600 - 180);
  });

  test('two calls of one user share the balance: both stop when it is gone, never billed beyond it', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 300);
    const a = controller();
    const b = controller();
    const recA = record(a, clock);
    const recB = record(b, clock);
    const sa = await join(a, user);
    await timers.advance(10);
    const sb = await join(b, user);
    assert.ok(sa && sb);

    await timers.advance(600);

    const rowA = await sessionRow(sa.session_id);
    const rowB = await sessionRow(sb.session_id);
    assert.equal(rowA.status, 'cut_off');
    assert.equal(rowB.status, 'cut_off');
    assert.equal(rowA.billed_seconds + rowB.billed_seconds, 300);
    // B learns at its 2:00 meter (2:10 on the clock) that A took the last minute: it ends where it is paid.
    assert.deepEqual(rowB.ended_at, new Date(sb.started_at.getTime() + rowB.billed_seconds * 1000));
    assert.deepEqual(rowA.ended_at, new Date(sa.started_at.getTime() + rowA.billed_seconds * 1000));
    assert.deepEqual([rowA.billed_seconds, rowB.billed_seconds], [180, 120]);
    assert.equal(recA.of('cut_off').length, 1);
    assert.equal(recB.of('cut_off').length, 1);
    assert.equal((await store.getBalance(user)).total_seconds, 0);
    assert.equal(timers.size, 0);
  });

  test('a store outage within the grace loses no billed second', async () => {
    const { clock, timers, store, controller } = world();
    const steady = newUserId();
    const shaky = newUserId();
    await credit(store, steady, 3600);
    await credit(store, shaky, 3600);
    const { store: flakyStore, control } = flaky(store);
    const baseline = controller();
    const call = controller(flakyStore);
    const rec = record(call, clock);
    const s1 = await join(baseline, steady);
    const s2 = await join(call, shaky);
    assert.ok(s1 && s2);

    await timers.advance(65);
    control.down = true; // down from 1:05 to 2:30: the 2:00 meter and its retries fail
    await timers.advance(85);
    assert.ok(control.failures >= 3, `failures: ${control.failures}`);
    assert.equal(call.phase, 'active');
    assert.equal((await sessionRow(s2.session_id)).billed_seconds, 120);
    control.down = false;
    await timers.advance(50);
    assert.equal((await sessionRow(s2.session_id)).billed_seconds, 240);

    await Promise.all([baseline.leave('caller_left'), call.leave('caller_left')]);
    const want = await sessionRow(s1.session_id);
    const got = await sessionRow(s2.session_id);
    assert.equal(want.billed_seconds, 240);
    assert.equal(got.billed_seconds, want.billed_seconds);
    assert.equal(got.status, 'ended');
    assert.equal(rec.of('store_unreachable').length, 0);
    assert.equal(rec.of('cut_off').length, 0);
  });

  test('an outage past the grace ends the call: store_unreachable, no further charging', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    const { store: flakyStore, control } = flaky(store);
    const call = controller(flakyStore);
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);
    await timers.advance(65);
    control.down = true;
    await timers.advance(235); // to 5:00; paid until 2:00, grace 60 s

    const unreachable = rec.of('store_unreachable');
    assert.equal(unreachable.length, 1);
    assert.deepEqual(unreachable[0]!.at, at(180));
    const ended = rec.of('ended');
    assert.equal(ended.length, 1);
    assert.deepEqual(ended[0]!.payload, { reason: 'store_unreachable', state: null, settled: false });
    assert.equal(timers.size, 0);
    assert.equal(call.phase, 'ended');

    control.down = false;
    await timers.advance(600);
    const row = await sessionRow(started.session_id);
    assert.equal(row.billed_seconds, 120);
    assert.equal(row.status, 'active');
    // The server's reaper settles what the worker could not, with what was charged.
    const reaped = await store.reapStaleSessions(120);
    assert.ok(reaped.session_ids.includes(started.session_id));
    assert.deepEqual(await sessionRow(started.session_id),
      { status: 'abandoned', billed_seconds: 120, ended_at: at(60.5), end_reason: 'worker_silent' });
  });

  test('past the grace, a store back during the settlement retries settles the call at the hang-up', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    const { store: flakyStore, control } = flaky(store);
    const call = controller(flakyStore);
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);
    await timers.advance(65);
    control.down = true;
    await timers.advance(117); // 3:02: given up at 3:00, settlement retried at 3:01 and 3:03
    assert.equal(rec.of('store_unreachable').length, 1);
    assert.equal(rec.of('ended').length, 0);
    control.down = false;
    await timers.advance(30);
    const ended = rec.of('ended');
    assert.equal(ended.length, 1);
    assert.equal(ended[0]!.payload.settled, true);
    assert.deepEqual(await sessionRow(started.session_id),
      { status: 'ended', billed_seconds: 180, ended_at: at(180), end_reason: 'store_unreachable' });
    assert.equal(timers.size, 0);
  });

  test('shutdownAll settles every open call once with worker_shutdown', async () => {
    const { clock, timers, store } = world();
    const registry = new CallRegistry({ store, clock: clock.now, timers });
    const users = [newUserId(), newUserId(), newUserId()];
    const calls = [];
    for (const user of users) {
      await credit(store, user, 3600);
      const call = registry.create();
      const rec = record(call, clock);
      const state = await join(call, user);
      assert.ok(state);
      calls.push({ call, rec, state });
    }
    assert.equal(registry.size, 3);
    await timers.advance(90);

    const [first, second] = await Promise.all([registry.shutdownAll(), registry.shutdownAll()]);
    assert.equal(first.length, 3);
    assert.deepEqual(second.map((s) => s?.session_id), first.map((s) => s?.session_id));
    await registry.shutdownAll();
    for (const { call, rec, state } of calls) {
      assert.equal(rec.of('ended').length, 1);
      assert.equal(rec.of('ended')[0]!.payload.reason, 'worker_shutdown');
      assert.equal(call.phase, 'ended');
      assert.deepEqual(await sessionRow(state.session_id),
        { status: 'ended', billed_seconds: 120, ended_at: at(90), end_reason: 'worker_shutdown' });
    }
    assert.equal(registry.size, 0);
    assert.equal(timers.size, 0);
  });

  test('a second leave() is a no-op: concurrent and later calls settle once', async () => {
    const { clock, timers, store, controller } = world();
    const user = newUserId();
    await credit(store, user, 3600);
    const call = controller();
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);
    await timers.advance(30);
    const [one, two] = await Promise.all([call.leave('caller_left'), call.leave('room_closed')]);
    assert.equal(one?.session_id, two?.session_id);
    await timers.advance(100);
    const three = await call.leave('worker_shutdown');
    assert.equal(three?.billed_seconds, 60);
    assert.equal(rec.of('ended').length, 1);
    assert.deepEqual(await sessionRow(started.session_id),
      { status: 'ended', billed_seconds: 60, ended_at: at(30), end_reason: 'caller_left' });
    assert.equal((await store.getBalance(user)).total_seconds, 3600 - 60);
  });

  test('no balance at join: no_balance, no session', async () => {
    const { clock, timers, controller } = world();
    const user = newUserId();
    const call = controller();
    const rec = record(call, clock);
    assert.equal(await join(call, user), null);
    assert.equal(rec.of('no_balance').length, 1);
    assert.deepEqual(rec.of('no_balance')[0]!.payload,
      { userId: user, message: 'no conversation time left: buy or redeem a time card to start a call' });
    assert.equal(rec.of('started').length, 0);
    assert.equal(call.phase, 'not_started');
    const { rows } = await db.sql.query<{ n: number }>(
      'select count(*)::int as n from public.voice_sessions where user_id = $1', [user]);
    assert.equal(rows[0]!.n, 0);
    assert.equal(await call.leave(), null);
    assert.equal(rec.of('ended').length, 0);
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

  test('a postpaid call is warned at 5 and 1 minutes before its spending cap and cut off at the cap', async () => {
    const { clock, timers, controller } = world();
    const user = newUserId();
    // 42 cents: the line rounds above the cap from 42.5 cents on, so 424 s at 0.1 cent a second fit under it.
    await subscribeSixCents(user, 42);
    const call = controller();
    const rec = record(call, clock);
    const started = await join(call, user);
    assert.ok(started);
    assert.equal(started.plan?.cap_cents, 42);
    assert.equal(rec.of('started')[0]!.payload.remainingSeconds, 424);

    await timers.advance(10 * 60);
    assert.deepEqual(rec.of('warning').map((w) => [w.payload.thresholdSeconds, w.payload.remainingSeconds, w.at.getTime()]),
      [[300, 300, at(124).getTime()], [60, 60, at(364).getTime()]]);
    assert.equal(rec.of('cut_off').length, 1);
    assert.deepEqual(rec.of('cut_off')[0]!.at, at(424));
    const row = await sessionRow(started.session_id);
    assert.deepEqual([row.status, row.billed_seconds, row.ended_at], ['cut_off', 424, at(424)]);
    const ended = rec.of('ended')[0]!.payload.state!;
    assert.equal(ended.plan?.period_usage_cents, 42, 'the period reached the cap, not a cent over');
    assert.equal(ended.plan?.cap_left_cents, 0);
    assert.equal(timers.size, 0);
  });

  test('a suspended plan or a spent cap refuses the start with its own reason', async () => {
    const { clock, timers, controller } = world();
    const suspended = newUserId();
    await subscribeSixCents(suspended, 5000, 'suspended');
    const first = controller();
    const rec1 = record(first, clock);
    assert.equal(await join(first, suspended), null);
    assert.match(rec1.of('no_balance')[0]!.payload.message,
      /^calls on your plan are suspended because an invoice is unpaid \(https:\/\/invoice\.stripe\.com\/i\/test\)/);

    const capped = newUserId();
    await subscribeSixCents(capped, 1); // 14 s fit under 1 cent
    const spend = controller();
    assert.ok(await join(spend, capped));
    await timers.advance(60);
    assert.equal((await spend.finished())?.billed_seconds, 14);
    const second = controller();
    const rec2 = record(second, clock);
    assert.equal(await join(second, capped), null);
    assert.match(rec2.of('no_balance')[0]!.payload.message, /^your spending cap of 0\.01 USD for this period is reached/);
  });
});

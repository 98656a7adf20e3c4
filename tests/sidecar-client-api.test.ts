// The client API through the real HTTP stack: calls a client runs itself, history, usage (seed 003) and
// analytics, over data made by the store and by signed Stripe webhooks, billed by a test clock.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { countRows, createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { charge, checkoutSession, purchaseIds, startSidecar, stripeEvent, type TestSidecar } from './helpers/sidecar.ts';

type Json = Record<string, any>;

describe('client API', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  const clock = new TestClock('2026-03-10T12:00:00Z');
  const admin = newUserId();

  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { clock: clock.now, adminIds: [admin] });
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const call = async (method: string, path: string, options: { user?: string; admin?: boolean; body?: unknown } = {}) => {
    const token = options.user ? await sidecar.tokenFor(options.user, { admin: options.admin ?? false }) : undefined;
    const response = await sidecar.request(method, path, { ...(token && { token }), ...(options.body !== undefined && { body: options.body }) });
    return { status: response.status, body: await response.json() as Json };
  };
  const ok = async (method: string, path: string, options: { user?: string; admin?: boolean; body?: unknown } = {}) => {
    const answer = await call(method, path, options);
    assert.equal(answer.status, 200, `${method} ${path}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  const withCard = async (tierId = 'starter_1h') => {
    const user = newUserId();
    await sidecar.store.grantCard({ userId: user, tierId, idempotencyKey: `${user}:grant` });
    return user;
  };
  const balanceOf = async (user: string) => (await sidecar.store.getBalance(user)).total_seconds;
  const sessionRow = async (user: string) =>
    (await db.sql.query<{ status: string; billed_seconds: number; started_at: Date; ended_at: Date | null; end_reason: string | null }>(
      'select status, billed_seconds, started_at, ended_at, end_reason from public.voice_sessions where user_id = $1', [user])).rows;
  const at = (base: Date, seconds: number) => new Date(base.getTime() + seconds * 1000).toISOString();
  const snapshot = async () => Promise.all(['public.voice_sessions', 'public.ledger_entries', 'public.payments',
    'public.time_cards', 'billing_private.operations', 'public.pricing_tiers'].map((t) => countRows(db.sql, t)));

  describe('calls a client runs itself', () => {
    it('starts a call with the first minute charged and answers how far it is paid; a repeated start is the same call', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      const started = await ok('POST', '/time/session/start', { user, body: { session_id: 'session_123', room_name: 'voice_room_456' } });
      assert.equal(started.session_id, 'session_123');
      assert.match(started.server_session_id, /^[0-9a-f-]{36}$/);
      assert.deepEqual([started.status, started.room_name, started.billed_seconds, started.remaining_seconds, started.remaining_minutes],
        ['active', 'voice_room_456', 60, 3540, 59]);
      assert.equal(started.covered_until, at(startedAt, 60));
      assert.equal(started.replayed, false);
      clock.advance(5);
      const again = await ok('POST', '/time/session/start', { user, body: { session_id: 'session_123', room_name: 'voice_room_456' } });
      assert.equal(again.server_session_id, started.server_session_id);
      assert.equal(again.replayed, true);
      assert.equal(await balanceOf(user), 3540, 'the repeat charged nothing');
      const elsewhere = await call('POST', '/time/session/start', { user, body: { session_id: 'session_123', room_name: 'other_room' } });
      assert.equal(elsewhere.status, 409);
      assert.equal(elsewhere.body.error.code, 'session_conflict');
      await ok('POST', '/time/session/end', { user, body: { session_id: 'session_123', duration_seconds: 5 } });
    });

    it('bills by the server clock but never past the claimed duration (a started minute is a charged minute)', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      await ok('POST', '/time/session/start', { user, body: { session_id: 'short-claim', room_name: 'r' } });
      clock.advance(600);    // the server saw ten minutes go by; the client says the call lasted 125 seconds
      const ended = await ok('POST', '/time/session/end', { user, body: { session_id: 'short-claim', duration_seconds: 125 } });
      assert.deepEqual([ended.status, ended.end_reason, ended.billed_seconds, ended.minutes_charged, ended.ended_at],
        ['ended', 'client_ended', 180, 3, at(startedAt, 125)]);
      assert.equal(ended.remaining_seconds, 3600 - 180);
      assert.equal(await balanceOf(user), 3600 - 180);
      const [row] = await sessionRow(user);
      assert.deepEqual([row!.status, row!.billed_seconds, row!.ended_at!.toISOString()], ['ended', 180, at(startedAt, 125)]);
    });

    it('never bills past the server clock, whatever the client claims', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      await ok('POST', '/time/session/start', { user, body: { session_id: 'long-claim', room_name: 'r' } });
      clock.advance(90);     // the client claims an hour after 90 seconds
      const ended = await ok('POST', '/time/session/end', { user, body: { session_id: 'long-claim', duration_seconds: 3600 } });
      assert.deepEqual([ended.billed_seconds, ended.ended_at], [120, at(startedAt, 90)]);
      assert.equal(await balanceOf(user), 3600 - 120);
    });

    it('ends once: a repeated end charges nothing and answers the settled call; a new start of it is refused', async () => {
      const user = await withCard();
      await ok('POST', '/time/session/start', { user, body: { session_id: 'twice', room_name: 'r' } });
      clock.advance(200);
      const first = await ok('POST', '/time/session/end', { user, body: { session_id: 'twice', duration_seconds: 200 } });
      assert.equal(first.billed_seconds, 240);
      clock.advance(1000);
      const second = await ok('POST', '/time/session/end', { user, body: { session_id: 'twice', duration_seconds: 1200 } });
      assert.deepEqual([second.replayed, second.billed_seconds, second.ended_at], [true, 240, first.ended_at]);
      assert.equal(await balanceOf(user), 3600 - 240);
      const restart = await call('POST', '/time/session/start', { user, body: { session_id: 'twice', room_name: 'r' } });
      assert.deepEqual([restart.status, restart.body.error.code], [409, 'session_ended']);
      assert.equal(await balanceOf(user), 3600 - 240);
      assert.deepEqual(await ledgerMismatches(db.sql), []);
    });

    it('charges a long call as it goes on heartbeats, by the server clock', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      await ok('POST', '/time/session/start', { user, body: { session_id: 'beating', room_name: 'r' } });
      clock.advance(150);
      const beat = await ok('POST', '/time/session/heartbeat', { user, body: { session_id: 'beating' } });
      assert.deepEqual([beat.status, beat.billed_seconds, beat.charged_seconds, beat.covered_until], ['active', 180, 120, at(startedAt, 180)]);
      clock.advance(60);
      const ended = await ok('POST', '/time/session/end', { user, body: { session_id: 'beating', duration_seconds: 200 } });
      assert.deepEqual([ended.billed_seconds, ended.charged_seconds], [240, 60]);
      assert.equal(await balanceOf(user), 3600 - 240);
    });

    it('still bills a call the reaper settled as silent (no heartbeats) when the client ends it, once', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      const started = await ok('POST', '/time/session/start', { user, body: { session_id: 'no-heartbeats', room_name: 'r' } });
      clock.advance(600);
      const reaped = await sidecar.store.reapStaleSessions(180);
      assert.ok(reaped.session_ids.includes(started.server_session_id));
      assert.equal((await sessionRow(user))[0]!.status, 'abandoned');
      assert.equal(await balanceOf(user), 3600 - 60, 'the reaper charged only the first minute');
      const ended = await ok('POST', '/time/session/end', { user, body: { session_id: 'no-heartbeats', duration_seconds: 500 } });
      assert.deepEqual([ended.status, ended.end_reason, ended.billed_seconds, ended.ended_at, ended.replayed],
        ['ended', 'client_ended', 540, at(startedAt, 500), false]);
      assert.equal(await balanceOf(user), 3600 - 540);
      const again = await ok('POST', '/time/session/end', { user, body: { session_id: 'no-heartbeats', duration_seconds: 600 } });
      assert.deepEqual([again.replayed, again.billed_seconds], [true, 540]);
      assert.equal(await balanceOf(user), 3600 - 540);
      assert.deepEqual(await ledgerMismatches(db.sql), []);
    });

    it('ends no earlier than the last heartbeat, whatever shorter duration the client claims', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      await ok('POST', '/time/session/start', { user, body: { session_id: 'proved', room_name: 'r' } });
      clock.advance(150);
      const beat = await ok('POST', '/time/session/heartbeat', { user, body: { session_id: 'proved' } });
      assert.deepEqual([beat.billed_seconds, beat.covered_until, beat.payable_until], [180, at(startedAt, 180), at(startedAt, 3600)]);
      clock.advance(60);
      const ended = await ok('POST', '/time/session/end', { user, body: { session_id: 'proved', duration_seconds: 20 } });
      assert.deepEqual([ended.status, ended.ended_at, ended.billed_seconds, ended.charged_seconds], ['ended', at(startedAt, 150), 180, 0]);
      assert.equal(await balanceOf(user), 3600 - 180);
    });

    it('cuts the call off at its last paid second when a heartbeat comes past it with nothing left to charge', async () => {
      const user = newUserId();
      await sidecar.store.adjustUserTime({ userId: user, seconds: 120, reason: 'two minutes', idempotencyKey: `${user}:two` });
      const startedAt = clock.now();
      const started = await ok('POST', '/time/session/start', { user, body: { session_id: 'overrun', room_name: 'r' } });
      assert.equal(started.payable_until, at(startedAt, 120));
      clock.advance(200);
      const beat = await ok('POST', '/time/session/heartbeat', { user, body: { session_id: 'overrun' } });
      assert.deepEqual([beat.status, beat.end_reason, beat.ended_at, beat.billed_seconds, beat.remaining_seconds],
        ['cut_off', 'balance_exhausted', at(startedAt, 120), 120, 0]);
      clock.advance(60);
      const again = await ok('POST', '/time/session/heartbeat', { user, body: { session_id: 'overrun' } });
      assert.deepEqual([again.status, again.replayed], ['cut_off', true]);
      const ended = await ok('POST', '/time/session/end', { user, body: { session_id: 'overrun', duration_seconds: 260 } });
      assert.deepEqual([ended.status, ended.billed_seconds, ended.ended_at, ended.replayed], ['cut_off', 120, at(startedAt, 120), true]);
      assert.equal(await balanceOf(user), 0);
      assert.deepEqual(await ledgerMismatches(db.sql), []);
    });

    it('reaps a silent client for what its heartbeats proved: the last one and the increment it opened', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      const started = await ok('POST', '/time/session/start', { user, body: { session_id: 'went-quiet', room_name: 'r' } });
      clock.advance(90);
      await ok('POST', '/time/session/heartbeat', { user, body: { session_id: 'went-quiet' } });
      // Stale once no heartbeat came within the increment (60 s) plus the allowed silence (180 s).
      clock.advance(240);
      assert.ok(!(await sidecar.store.reapStaleSessions(180)).session_ids.includes(started.server_session_id));
      clock.advance(1);
      assert.ok((await sidecar.store.reapStaleSessions(180)).session_ids.includes(started.server_session_id));
      const [reaped] = await sessionRow(user);
      assert.deepEqual([reaped!.status, reaped!.billed_seconds, reaped!.ended_at!.toISOString()], ['abandoned', 120, at(startedAt, 90)]);
      const ended = await ok('POST', '/time/session/end', { user, body: { session_id: 'went-quiet', duration_seconds: 30 } });
      assert.deepEqual([ended.status, ended.billed_seconds, ended.ended_at], ['ended', 120, at(startedAt, 90)]);
      assert.equal(await balanceOf(user), 3600 - 120);
    });

    it('refuses a call without balance with 402 and writes nothing', async () => {
      const broke = newUserId();
      const before = await snapshot();
      const refused = await call('POST', '/time/session/start', { user: broke, body: { session_id: 'nothing-left', room_name: 'r' } });
      assert.equal(refused.status, 402);
      assert.equal(refused.body.error.code, 'insufficient_balance');
      assert.deepEqual(await snapshot(), before);
    });

    it("answers 404 for a call the user never started, and never touches someone else's call of the same id", async () => {
      const alice = await withCard();
      const bob = await withCard();
      await ok('POST', '/time/session/start', { user: alice, body: { session_id: 'shared-id', room_name: 'r' } });
      clock.advance(300);
      const before = await snapshot();
      for (const [path, body] of [['/time/session/end', { session_id: 'shared-id', duration_seconds: 300 }],
        ['/time/session/heartbeat', { session_id: 'shared-id' }], ['/time/session/end', { session_id: 'never-started', duration_seconds: 1 }]] as const) {
        const answer = await call('POST', path, { user: bob, body });
        assert.equal(answer.status, 404, path);
        assert.equal(answer.body.error.code, 'unknown_session');
      }
      assert.deepEqual(await snapshot(), before);
      assert.equal((await sessionRow(alice))[0]!.status, 'active', "alice's call is untouched");
      await ok('POST', '/time/session/end', { user: alice, body: { session_id: 'shared-id', duration_seconds: 300 } });
    });
  });

  describe('history', () => {
    it('lists the calls newest first, by the client id when the client started them', async () => {
      const user = await withCard('basic_5h');
      const firstAt = clock.now();
      const worker = await sidecar.store.startSession({ userId: user, externalKey: `worker:${user}:1`, roomName: 'agent-room' });
      clock.advance(61);
      await sidecar.store.endSession({ sessionId: worker.session_id, reason: 'caller_left' });
      clock.advance(10);
      await ok('POST', '/time/session/start', { user, body: { session_id: 'mine-1', room_name: 'client-room' } });
      clock.advance(30);
      const body = await ok('GET', '/time/sessions', { user });
      assert.equal(body.sessions.length, 2);
      const [newest, oldest] = body.sessions;
      assert.deepEqual(newest, {
        session_id: 'mine-1', server_session_id: newest.server_session_id, room_name: 'client-room', status: 'active',
        started_at: at(firstAt, 71), ended_at: null, duration_seconds: 30, billed_seconds: 60, minutes_charged: 1, end_reason: null,
      });
      assert.deepEqual(oldest, {
        session_id: worker.session_id, server_session_id: worker.session_id, room_name: 'agent-room', status: 'ended',
        started_at: firstAt.toISOString(), ended_at: at(firstAt, 61), duration_seconds: 61, billed_seconds: 120, minutes_charged: 2,
        end_reason: 'caller_left',
      });
      const limited = await ok('GET', '/time/sessions?limit=1', { user });
      assert.deepEqual(limited.sessions.map((s: Json) => s.session_id), ['mine-1']);
      const stranger = await ok('GET', '/time/sessions', { user: newUserId() });
      assert.deepEqual(stranger, { sessions: [] });
    });

    it('lists the payments newest first, with refunds', async () => {
      const user = newUserId();
      const first = purchaseIds();
      const second = purchaseIds();
      assert.equal((await sidecar.deliver(stripeEvent('checkout.session.completed',
        checkoutSession(first, { userId: user, packageId: 'starter_1h', amount: 999 })))).status, 200);
      clock.advance(60);
      assert.equal((await sidecar.deliver(stripeEvent('checkout.session.completed',
        checkoutSession(second, { userId: user, packageId: 'basic_5h', amount: 4499, gift: true })))).status, 200);
      assert.equal((await sidecar.deliver(stripeEvent('charge.refunded', charge(first, 999, 500)))).status, 200);
      const body = await ok('GET', '/payments', { user });
      assert.equal(body.payments.length, 2);
      const [gift, starter] = body.payments;
      assert.deepEqual(Object.keys(starter).sort(), ['amount_cents', 'card_id', 'created_at', 'currency', 'failure_reason', 'gift',
        'package_id', 'payment_id', 'refunded_cents', 'status'].sort());
      assert.deepEqual([gift.package_id, gift.amount_cents, gift.gift, gift.status, gift.refunded_cents], ['basic_5h', 4499, true, 'succeeded', 0]);
      assert.deepEqual([starter.package_id, starter.amount_cents, starter.currency, starter.status, starter.refunded_cents, starter.gift],
        ['starter_1h', 999, 'usd', 'partially_refunded', 500, false]);
      assert.match(starter.card_id, /^[0-9a-f-]{36}$/);
      assert.ok(new Date(gift.created_at) > new Date(starter.created_at));
      assert.deepEqual((await ok('GET', '/payments?limit=1', { user })).payments.map((p: Json) => p.package_id), ['basic_5h']);
    });
  });

  describe('usage (seed 003)', () => {
    it('answers calls, minutes and cost per month, the cost being what the used seconds were paid for', async () => {
      const user = newUserId();
      // February: a 4,499-cent pack of 19,800 seconds, one call of three minutes.
      clock.set('2026-02-20T10:00:00Z');
      await sidecar.deliver(stripeEvent('checkout.session.completed',
        checkoutSession(purchaseIds(), { userId: user, packageId: 'basic_5h', amount: 4499 })));
      await ok('POST', '/time/session/start', { user, body: { session_id: 'feb-call', room_name: 'r' } });
      clock.advance(170);
      await ok('POST', '/time/session/end', { user, body: { session_id: 'feb-call', duration_seconds: 170 } });
      // March: two calls of 2 and 5 minutes.
      clock.set('2026-03-10T12:00:00Z');
      for (const [id, seconds] of [['mar-1', 100], ['mar-2', 290]] as const) {
        await ok('POST', '/time/session/start', { user, body: { session_id: id, room_name: 'r' } });
        clock.advance(seconds);
        await ok('POST', '/time/session/end', { user, body: { session_id: id, duration_seconds: seconds } });
      }
      const perSecond = 4499 / 19_800;
      const current = await ok('GET', '/api/usage/current', { user });
      // Seed 003's fields, and the plan's terms beside them (tests/usage-api.test.ts).
      for (const field of ['month', 'total_calls', 'total_cost_cents', 'total_cost_usd', 'total_minutes', 'total_seconds']) {
        assert.ok(field in current, field);
      }
      assert.deepEqual([current.billing, current.plan.kind, current.cap_cents], ['prepaid', 'prepaid', null]);
      assert.deepEqual([current.month, current.total_calls, current.total_minutes, current.total_seconds], ['2026-03', 2, 7, 420]);
      assert.equal(current.total_cost_cents, Math.round(420 * perSecond * 100) / 100);
      assert.equal(current.total_cost_usd, Math.round(420 * perSecond) / 100);
      const february = await ok('GET', '/api/usage/history?month=2026-02', { user });
      assert.deepEqual([february.month, february.total_calls, february.total_minutes, february.total_cost_usd],
        ['2026-02', 1, 3, Math.round(180 * perSecond) / 100]);
      const january = await ok('GET', '/api/usage/history?month=2026-01', { user });
      assert.deepEqual([january.month, january.total_calls, january.total_minutes, january.total_seconds, january.total_cost_usd,
        january.total_cost_cents], ['2026-01', 0, 0, 0, 0, 0]);
      assert.equal(january.days.length, 31);

      const calls = (await ok('GET', '/api/usage/calls?limit=50', { user })).calls as Json[];
      assert.deepEqual(calls.map((c) => c.session_id), ['mar-2', 'mar-1', 'feb-call']);
      assert.deepEqual(Object.keys(calls[0]!).sort(), ['agent_name', 'billed_seconds', 'call_from', 'call_to', 'cost_cents', 'cost_usd',
        'duration_seconds', 'end_reason', 'ended_at', 'id', 'minutes_charged', 'room_name', 'session_id', 'started_at', 'status'].sort());
      assert.deepEqual([calls[0]!.duration_seconds, calls[0]!.billed_seconds, calls[0]!.status], [290, 300, 'ended']);
      assert.equal(calls[0]!.cost_usd, Math.round(300 * perSecond * 100) / 10_000);
      assert.equal((await ok('GET', '/api/usage/calls?limit=1', { user })).calls.length, 1);
    });

    it('names the agent that served each call and, for a phone call, the caller and the called number', async () => {
      const user = await withCard();
      const startedAt = clock.now();
      const phone = await sidecar.store.startSession({ userId: user, externalKey: `sip:${user}`, roomName: 'phone-room',
        agentName: 'juana', callFrom: '+15105550100', callTo: '+18449263376' });
      clock.advance(145);
      await sidecar.store.endSession({ sessionId: phone.session_id, reason: 'caller_left' });
      clock.advance(10);
      await ok('POST', '/time/session/start', { user, body: { session_id: 'app-call', room_name: 'app-room' } });
      const calls = (await ok('GET', '/api/usage/calls?limit=10', { user })).calls as Json[];
      assert.deepEqual(calls.map((c) => [c.session_id, c.agent_name, c.call_from, c.call_to, c.status]), [
        ['app-call', 'mindbot', null, null, 'active'],
        [phone.session_id, 'juana', '+15105550100', '+18449263376', 'ended'],
      ]);
      const seed = calls[1]!;
      assert.deepEqual([seed.id, seed.duration_seconds, seed.started_at, seed.ended_at],
        [phone.session_id, 145, startedAt.toISOString(), at(startedAt, 145)]);
      assert.equal(typeof seed.cost_usd, 'number');
      assert.ok(seed.cost_usd > 0, 'three started minutes of a paid card cost something');
    });

    it('refuses a call with a malformed agent name or number and writes nothing', async () => {
      const user = await withCard();
      const before = await snapshot();
      for (const parties of [{ agentName: 'no spaces allowed' }, { callFrom: '+1 510' }, { callTo: '' }]) {
        await assert.rejects(sidecar.store.startSession({ userId: user, externalKey: `bad:${user}`, roomName: 'r', ...parties }),
          (error: any) => error.code === 'invalid_argument');
      }
      assert.deepEqual(await snapshot(), before);
      assert.deepEqual((await ok('GET', '/api/usage/calls', { user })).calls, []);
    });

    it('costs nothing for time an administrator credited', async () => {
      const user = newUserId();
      await sidecar.store.adjustUserTime({ userId: user, seconds: 600, reason: 'goodwill credit', idempotencyKey: `${user}:credit` });
      await ok('POST', '/time/session/start', { user, body: { session_id: 'free', room_name: 'r' } });
      clock.advance(60);
      await ok('POST', '/time/session/end', { user, body: { session_id: 'free', duration_seconds: 60 } });
      const current = await ok('GET', '/api/usage/current', { user });
      assert.deepEqual([current.total_calls, current.total_minutes, current.total_cost_usd], [1, 1, 0]);
    });
  });

  describe('analytics', () => {
    it('answers totals and months for the user themselves and for an administrator, and 403 for anyone else', async () => {
      const user = newUserId();
      clock.set('2026-04-02T09:00:00Z');
      await sidecar.deliver(stripeEvent('checkout.session.completed',
        checkoutSession(purchaseIds(), { userId: user, packageId: 'starter_1h', amount: 999 })));
      for (const [id, seconds] of [['a1', 60], ['a2', 150]] as const) {
        await ok('POST', '/time/session/start', { user, body: { session_id: id, room_name: 'r' } });
        clock.advance(seconds);
        await ok('POST', '/time/session/end', { user, body: { session_id: id, duration_seconds: seconds } });
      }
      const own = await ok('GET', `/user/${user}/analytics`, { user });
      assert.equal(own.user_id, user);
      assert.deepEqual([own.balance_seconds, own.balance_minutes], [3600 - 240, 56]);
      assert.deepEqual(
        [own.totals.calls, own.totals.seconds_used, own.totals.minutes_used, own.totals.average_call_seconds, own.totals.purchases, own.totals.spent_cents],
        [2, 240, 4, 120, 1, 999]);
      assert.equal(own.totals.cost_cents, Math.round(240 * 999 / 3600 * 100) / 100);
      assert.equal(own.monthly_usage.length, 12);
      assert.deepEqual(own.monthly_usage.at(-1), { month: '2026-04', calls: 2, seconds: 240, minutes: 4, cost_cents: own.totals.cost_cents,
        cost_usd: Math.round(own.totals.cost_cents) / 100 });
      assert.deepEqual(own.monthly_usage[0].month, '2025-05');
      assert.equal((await ok('GET', `/user/${user}/analytics?months=3`, { user })).monthly_usage.length, 3);

      assert.deepEqual(await ok('GET', `/user/${user}/analytics`, { user: admin }), own, 'an administrator (ADMIN_USER_IDS) sees the same');
      assert.deepEqual(await ok('GET', `/user/${user}/analytics`, { user: newUserId(), admin: true }), own, 'an admin role claim too');
      const stranger = await call('GET', `/user/${user}/analytics`, { user: newUserId() });
      assert.deepEqual([stranger.status, stranger.body.error.code], [403, 'forbidden']);
      assert.equal((await call('GET', `/user/${user}/analytics`)).status, 401);
      assert.equal((await call('GET', '/user/not-a-uuid/analytics', { user })).status, 400);
    });
  });

  describe('authentication and bad input', () => {
    it('answers 401 without a token on every client route', async () => {
      const user = newUserId();
      for (const [method, path, body] of [
        ['GET', '/time/sessions', undefined], ['GET', '/payments', undefined], ['GET', '/api/usage/current', undefined],
        ['GET', '/api/usage/history?month=2026-01', undefined], ['GET', '/api/usage/calls', undefined],
        ['GET', `/user/${user}/analytics`, undefined],
        ['POST', '/time/session/start', { session_id: 'x', room_name: 'r' }],
        ['POST', '/time/session/heartbeat', { session_id: 'x' }],
        ['POST', '/time/session/end', { session_id: 'x', duration_seconds: 1 }],
      ] as const) {
        const answer = await call(method, path, { body });
        assert.equal(answer.status, 401, `${method} ${path}`);
        assert.equal(answer.body.error.code, 'unauthorized');
      }
    });

    it('answers 400 invalid_request for bad input and writes nothing', async () => {
      const user = await withCard();
      await ok('POST', '/time/session/start', { user, body: { session_id: 'open-call', room_name: 'r' } });
      const before = await snapshot();
      const balance = await balanceOf(user);
      const cases: [string, string, unknown][] = [
        ['POST', '/time/session/start', { session_id: 'has space', room_name: 'r' }],
        ['POST', '/time/session/start', { session_id: 'x'.repeat(101), room_name: 'r' }],
        ['POST', '/time/session/start', { session_id: '', room_name: 'r' }],
        ['POST', '/time/session/start', { session_id: 'ok-id' }],
        ['POST', '/time/session/start', { session_id: 'ok-id', room_name: '' }],
        ['POST', '/time/session/start', { session_id: 'ok-id', room_name: 'r'.repeat(201) }],
        ['POST', '/time/session/start', { session_id: 'ok-id', room_name: 'r', user_id: newUserId() }],
        ['POST', '/time/session/start', { session_id: 42, room_name: 'r' }],
        ['POST', '/time/session/start', 'not json at all'],
        ['POST', '/time/session/start', undefined],
        ['POST', '/time/session/end', { session_id: 'open-call', duration_seconds: -1 }],
        ['POST', '/time/session/end', { session_id: 'open-call', duration_seconds: 1.5 }],
        ['POST', '/time/session/end', { session_id: 'open-call', duration_seconds: '60' }],
        ['POST', '/time/session/end', { session_id: 'open-call', duration_seconds: 10 ** 12 }],
        ['POST', '/time/session/end', { session_id: 'open-call' }],
        ['POST', '/time/session/end', { session_id: 'open-call', duration_seconds: 60, reason: 'x' }],
        ['POST', '/time/session/heartbeat', { session_id: 'open/call' }],
        ['GET', '/time/sessions?limit=0', undefined],
        ['GET', '/time/sessions?limit=101', undefined],
        ['GET', '/time/sessions?limit=abc', undefined],
        ['GET', '/time/sessions?limit=-1', undefined],
        ['GET', '/time/sessions?limit=1&limit=2', undefined],
        ['GET', '/time/sessions?user_id=someone', undefined],
        ['GET', '/payments?limit=1000', undefined],
        ['GET', '/api/usage/current?month=2026-01', undefined],
        ['GET', '/api/usage/history', undefined],
        ['GET', '/api/usage/history?month=2026-13', undefined],
        ['GET', '/api/usage/history?month=2026-1', undefined],
        ['GET', '/api/usage/history?month=26-01', undefined],
        ['GET', '/api/usage/history?month=2026-01-01', undefined],
        ['GET', "/api/usage/history?month=2026-01'%20or%201=1", undefined],
        ['GET', '/api/usage/calls?limit=1.5', undefined],
        ['GET', `/user/${user}/analytics?months=0`, undefined],
        ['GET', `/user/${user}/analytics?months=121`, undefined],
      ];
      for (const [method, path, body] of cases) {
        const answer = await call(method, path, { user, body });
        assert.equal(answer.status, 400, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
        assert.equal(answer.body.error.code, 'invalid_request', `${method} ${path} ${JSON.stringify(body)}`);
        assert.equal(typeof answer.body.error.message, 'string');
      }
      assert.deepEqual(await snapshot(), before, 'nothing was written');
      assert.equal(await balanceOf(user), balance);
      assert.equal((await sessionRow(user))[0]!.status, 'active', 'the open call is untouched');
    });
  });
});

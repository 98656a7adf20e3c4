// Postpaid metering (migrations/017): the SQL that charges a call's increments pays them from included seconds,
// then cards, then the plan's rate under the spending cap, and writes one usage charge and its meter event per
// charge step. Run on real PostgreSQL and on PGlite.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CallController, type CallEvents } from '../src/agent/call-controller.ts';
import { isBillingError } from '../src/billing/errors.ts';
import type { BillingStore } from '../src/billing/store.ts';
import type { SessionState } from '../src/billing/types.ts';
import { FakeTimers } from './helpers/fake-timers.ts';
import {
  createPgliteDatabase, createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase,
} from './helpers/test-db.ts';

const START = '2026-05-10T12:00:00Z';
const PERIOD_START = '2026-05-01T00:00:00Z';
const PERIOD_END = '2026-06-01T00:00:00Z';

interface PlanSpec {
  kind: 'payg' | 'tiered' | 'subscription';
  includedSeconds?: number;
  /** [up_to_seconds | null, cents_per_minute] */
  tiers: Array<[number | null, number]>;
}

interface Charge {
  identifier: string;
  included_seconds: number;
  rated_seconds: number;
  amount_exact: string;
  session_id: string;
}

function postpaidSuite(engine: string, open: () => Promise<TestDatabase>): void {
  describe(`postpaid metering on ${engine}`, () => {
    let db: TestDatabase;
    before(async () => {
      db = await open();
    });
    after(async () => {
      await db?.close();
    });

    const fresh = (): { store: BillingStore; clock: TestClock } => {
      const clock = new TestClock(START);
      return { store: db.store(clock.now), clock };
    };

    let plans = 0;
    async function createPlan(spec: PlanSpec): Promise<string> {
      plans += 1;
      const { rows } = await db.sql.query<{ id: string }>(
        `insert into public.plans (key, version, kind, name, included_seconds, default_cap_cents, max_cap_cents)
         values ($1, 1, $2, 'Test plan', $3, 1000, 100000) returning id`,
        [`test_${engine.toLowerCase()}_${plans}`, spec.kind, spec.includedSeconds ?? 0]);
      const planId = rows[0]!.id;
      for (const [i, [upTo, rate]] of spec.tiers.entries()) {
        await db.sql.query(
          `insert into public.plan_rate_tiers (plan_id, position, up_to_seconds, cents_per_minute) values ($1, $2, $3, $4)`,
          [planId, i + 1, upTo, rate]);
      }
      return planId;
    }

    async function subscribe(userId: string, planId: string, options: {
      capCents?: number; status?: 'active' | 'suspended' | 'pending';
    } = {}): Promise<string> {
      const status = options.status ?? 'active';
      await db.sql.query(`insert into public.stripe_customers (user_id, customer_id) values ($1, $2)`,
        [userId, `cus_${userId.replaceAll('-', '').slice(0, 20)}`]);
      const { rows } = await db.sql.query<{ id: string }>(
        `insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end,
           spending_cap_cents, suspended_reason, suspended_invoice_url)
         values ($1, $2, $3, $4, $5, $6, $7, $8) returning id`,
        [userId, planId, status, status === 'pending' ? null : PERIOD_START, status === 'pending' ? null : PERIOD_END,
          options.capCents ?? 100000, status === 'suspended' ? 'invoice.payment_failed' : null,
          status === 'suspended' ? 'https://invoice.stripe.com/i/test' : null]);
      return rows[0]!.id;
    }

    async function charges(userId: string): Promise<Charge[]> {
      const { rows } = await db.sql.query<Charge>(
        `select identifier, included_seconds, rated_seconds, amount_exact::text as amount_exact, session_id
           from public.usage_charges where user_id = $1 order by id`, [userId]);
      return rows;
    }

    async function outbox(userId: string): Promise<Array<{ identifier: string; value_seconds: number; stripe_customer_id: string;
      event_name: string; due: boolean }>> {
      const { rows } = await db.sql.query<{ identifier: string; value_seconds: number; stripe_customer_id: string;
        event_name: string; due: boolean }>(
        `select o.identifier, o.value_seconds, o.stripe_customer_id, o.event_name, o.next_attempt_at = u.created_at as due
           from public.meter_event_outbox o join public.usage_charges u on u.id = o.usage_charge_id
          where u.user_id = $1 order by u.id`, [userId]);
      return rows;
    }

    async function assertBooks(store: BillingStore): Promise<void> {
      const books = await store.getBooks();
      assert.ok(books.postpaid, 'the books answer with a postpaid block');
      assert.equal(books.postpaid.sessions.sessions_out_of_step, 0, JSON.stringify(books.postpaid));
      assert.equal(books.postpaid.meter_events.charges_without_event, 0);
      assert.equal(books.postpaid.meter_events.charges, books.postpaid.meter_events.events);
      assert.equal(books.postpaid.lines.lines_mispriced, 0);
      assert.equal(books.ok, true, JSON.stringify(books));
      assert.deepEqual(await ledgerMismatches(db.sql), []);
    }

    async function rejectsWithMessage(promise: Promise<unknown>, pattern: RegExp): Promise<void> {
      await assert.rejects(promise, (error: unknown) => {
        assert.ok(isBillingError(error, 'insufficient_balance'), `expected insufficient_balance, got ${String(error)}`);
        assert.match(error.message, pattern);
        return true;
      });
    }

    describe('pricing helpers', () => {
      it('rounds a line half-up once, prices seconds through graduated tiers and finds what fits under a cap', async () => {
        // 1 c/s up to 120 s, 0.5 c/s up to 300 s, 0.1 c/s after.
        const plan = await createPlan({ kind: 'tiered', tiers: [[120, 60], [300, 30], [null, 6]] });
        const one = async (sql: string, params: unknown[]): Promise<string> => {
          const { rows } = await db.sql.query<{ v: string }>(`select (${sql})::text as v`, params);
          return rows[0]!.v;
        };
        assert.equal(await one('billing_private.round_line(0.5)', []), '1');
        assert.equal(await one('billing_private.round_line(2.5)', []), '3');
        assert.equal(await one('billing_private.round_line(0.499999999999)', []), '0');
        const cost = async (position: number, n: number) =>
          Number(await one('billing_private.tier_cost($1, $2, $3)', [plan, position, n]));
        assert.equal(await cost(0, 60), 60);
        assert.equal(await cost(100, 40), 20 + 10);              // 20 s at 1, 20 s at 0.5
        assert.equal(await cost(0, 400), 120 + 90 + 10);         // across both boundaries
        assert.equal(await cost(300, 10), 1);
        assert.equal(await cost(50, 0), 0);
        const fit = async (position: number, amount: string, cap: number) =>
          Number(await one('billing_private.seconds_under_cap($1, $2, $3::numeric, $4)', [plan, position, amount, cap]));
        // 0.4 so far, cap 1: one more second gives 1.4 (rounds to 1), two give 2.4.
        assert.equal(await fit(0, '0.4', 1), 1);
        // Exactly: 100 s cost 100 (rounds to 100 <= 100); the 101st would make 101.
        assert.equal(await fit(0, '0', 100), 100);
        // Across a boundary: 120 s cost 120, then 0.5 c/s: 160 - 120 = 40 more cents + 0.5 budget = 81 s (40.5 < 40.5 is false).
        assert.equal(await fit(0, '0', 160), 120 + 80);
        assert.equal(Number(await cost(0, 200)), 160);
        assert.equal(Number(await cost(0, 201)), 160.5);         // would round to 161 > 160
        // Into the last tier: 210 cents at 300 s, then 0.1 c/s: cap 211 leaves 1.5 -> 14 s (1.4 < 1.5).
        assert.equal(await fit(0, '0', 211), 314);
        // From a position inside the second tier, with what the period already cost.
        assert.equal(await fit(200, '160', 211), 100 + 14);
        // Already above the cap: nothing.
        assert.equal(await fit(10, '5.5', 5), 0);
        // A free tier ahead never limits.
        const free = await createPlan({ kind: 'payg', tiers: [[null, 0]] });
        assert.equal(await one('billing_private.seconds_under_cap($1, 0, 0, 1)', [free]), '2147483647');
        // Past a last tier that ends, nothing is priced: those seconds cannot be rated (nor can any without tiers).
        const bounded = await createPlan({ kind: 'tiered', tiers: [[100, 6]] });
        assert.equal(await one('billing_private.seconds_under_cap($1, 0, 0, 1000)', [bounded]), '100');
        assert.equal(await one('billing_private.seconds_under_cap($1, 40, 0, 1000)', [bounded]), '60');
        assert.equal(await one('billing_private.seconds_under_cap($1, 100, 0, 1000)', [bounded]), '0');
        const none = await createPlan({ kind: 'payg', tiers: [] });
        assert.equal(await one('billing_private.seconds_under_cap($1, 0, 0, 1000)', [none]), '0');
      });
    });

    describe('charging', () => {
      it('pay as you go: each charge step is rated, written once with its meter event, identified by the billed seconds before', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'payg', tiers: [[null, 6]] });          // 0.1 c/s
        await subscribe(user, plan);
        const started = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        assert.equal(started.charged_seconds, 60);
        assert.equal(started.billed_seconds, 60);
        assert.equal(started.plan?.kind, 'payg');
        assert.equal(Number(started.plan?.period_cost_exact), 6);
        assert.equal(started.plan?.period_usage_cents, 6);
        assert.equal(started.plan?.cap_left_cents, 100000 - 6);
        clock.advance(150);
        const metered = await store.meterSession(started.session_id);
        assert.equal(metered.charged_seconds, 120);
        assert.equal(metered.billed_seconds, 180);
        assert.equal(Number(metered.plan?.period_cost_exact), 18);
        const ended = await store.endSession({ sessionId: started.session_id, reason: 'caller_left' });
        assert.equal(ended.status, 'ended');
        assert.deepEqual((await charges(user)).map((c) => [c.identifier, c.included_seconds, c.rated_seconds, Number(c.amount_exact)]), [
          [`${started.session_id}:0`, 0, 60, 6],
          [`${started.session_id}:60`, 0, 120, 12],
        ]);
        const events = await outbox(user);
        assert.deepEqual(events.map((e) => [e.identifier, e.value_seconds, e.event_name, e.due]), [
          [`${started.session_id}:0`, 60, 'mindbot_voice_seconds', true],
          [`${started.session_id}:60`, 120, 'mindbot_voice_seconds', true],
        ]);
        assert.ok(events.every((e) => e.stripe_customer_id.startsWith('cus_')));
        await assertBooks(store);
      });

      it('tiered: a charge that crosses tier boundaries is priced at each tier, from the position the period reached', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'tiered', tiers: [[120, 60], [300, 30], [null, 6]] });
        await subscribe(user, plan);
        const s = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        clock.advance(250);                           // due 300: 60 more at 1 c/s, 180 at 0.5 c/s
        await store.meterSession(s.session_id);
        clock.advance(150);                           // due 420 (400 s begun): 120 at 0.1 c/s
        const last = await store.meterSession(s.session_id);
        assert.deepEqual((await charges(user)).map((c) => [c.rated_seconds, Number(c.amount_exact)]),
          [[60, 60], [240, 60 + 90], [120, 12]]);
        assert.equal(Number(last.plan?.period_cost_exact), 222);
        // A second call continues at the period's position (the cheapest tier), not at the start of the tiers.
        const second = await store.startSession({ userId: user, externalKey: `${user}:b`, roomName: 'room-b' });
        assert.equal(Number(second.plan?.period_cost_exact), 228);
        await assertBooks(store);
      });

      it('subscription: included seconds first, then overage at the rate, in one charge step', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'subscription', includedSeconds: 120, tiers: [[null, 60]] });
        await subscribe(user, plan, { capCents: 1000 });
        const s = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        assert.equal(s.plan?.included_left_seconds, 60);
        // Included 60 left + 1000 cents at 1 c/s (1000.5 budget: 1000 s).
        assert.equal(s.remaining_seconds, 60 + 1000);
        assert.equal(new Date(s.payable_until).getTime(), new Date(START).getTime() + (60 + 60 + 1000) * 1000);
        clock.advance(150);
        await store.meterSession(s.session_id);
        assert.deepEqual((await charges(user)).map((c) => [c.included_seconds, c.rated_seconds, Number(c.amount_exact)]),
          [[60, 0, 0], [60, 60, 60]]);
        assert.deepEqual((await outbox(user)).map((e) => e.value_seconds), [60, 120]);
        await assertBooks(store);
      });

      it('cards pay after included seconds and before the rate', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'subscription', includedSeconds: 60, tiers: [[null, 60]] });
        await subscribe(user, plan, { capCents: 1000 });
        await store.adjustUserTime({ userId: user, seconds: 90, reason: 'test credit', idempotencyKey: `${user}:credit` });
        const s = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        assert.equal((await store.getBalance(user)).total_seconds, 90, 'the first minute was included');
        // included 0 left, cards 90, then 1000 s under the cap.
        assert.equal(s.remaining_seconds, 90 + 1000);
        assert.equal(new Date(s.payable_until).getTime(), new Date(START).getTime() + (60 + 90 + 1000) * 1000);
        clock.advance(61);
        const second = await store.meterSession(s.session_id);
        assert.equal(second.charged_seconds, 60);
        assert.equal((await charges(user)).length, 1, 'the cards paid the second minute: no usage charge');
        clock.advance(60);
        const third = await store.meterSession(s.session_id);
        assert.equal(third.charged_seconds, 60);
        assert.equal((await store.getBalance(user)).total_seconds, 0);
        assert.deepEqual((await charges(user)).map((c) => [c.identifier, c.included_seconds, c.rated_seconds, Number(c.amount_exact)]),
          [[`${s.session_id}:0`, 60, 0, 0], [`${s.session_id}:120`, 0, 30, 30]]);
        await assertBooks(store);
      });

      it('cap reached: the last step is charged in part, payable_until is the cap exactly, a new call is refused in cap terms', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'payg', tiers: [[null, 45]] });          // 0.75 c/s
        await subscribe(user, plan, { capCents: 150 });
        const s = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        // 45 cents so far; 105.5 left to the rounding edge: 140 s (105 < 105.5), the 141st makes 150.75 -> 151.
        assert.equal(s.remaining_seconds, 140);
        const capAt = new Date(START).getTime() + 200 * 1000;
        assert.equal(new Date(s.payable_until).getTime(), capAt);
        clock.advance(61);
        const m1 = await store.meterSession(s.session_id);
        assert.equal(m1.remaining_seconds, 80);
        assert.equal(new Date(m1.payable_until).getTime(), capAt);
        clock.advance(60);
        const m2 = await store.meterSession(s.session_id);
        assert.equal(new Date(m2.payable_until).getTime(), capAt);
        clock.advance(60);
        const m3 = await store.meterSession(s.session_id);       // due 240: only 20 s fit
        assert.equal(m3.charged_seconds, 20);
        assert.equal(m3.shortfall_seconds, 40);
        assert.equal(m3.billed_seconds, 200);
        assert.equal(new Date(m3.covered_until).getTime(), capAt);
        assert.equal(new Date(m3.payable_until).getTime(), capAt);
        assert.equal(m3.remaining_seconds, 0);
        assert.equal(Number(m3.plan?.period_cost_exact), 150);
        assert.equal(m3.plan?.cap_left_cents, 0);
        clock.advance(30);
        const m4 = await store.meterSession(s.session_id);
        assert.equal(m4.charged_seconds, 0);
        assert.equal(m4.shortfall_seconds, 40);
        await store.endSession({ sessionId: s.session_id, reason: 'balance_exhausted', endedAt: new Date(capAt) });
        await rejectsWithMessage(store.startSession({ userId: user, externalKey: `${user}:b`, roomName: 'room-b' }),
          /spending cap of 1\.50 USD for this period is reached/);
        const all = await charges(user);
        assert.equal(all.reduce((sum, c) => sum + Number(c.amount_exact), 0), 150);
        await assertBooks(store);
      });

      it('a suspended plan pays nothing: cards only, and a start without cards names the unpaid invoice', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'payg', tiers: [[null, 6]] });
        await subscribe(user, plan, { status: 'suspended' });
        await store.adjustUserTime({ userId: user, seconds: 90, reason: 'test credit', idempotencyKey: `${user}:credit` });
        const s = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        assert.equal(s.remaining_seconds, 30);
        assert.equal(s.plan?.status, 'suspended');
        assert.equal(s.plan?.seconds_left, 0);
        assert.equal(new Date(s.payable_until).getTime(), new Date(START).getTime() + 90 * 1000);
        clock.advance(61);
        const m = await store.meterSession(s.session_id);
        assert.equal(m.charged_seconds, 30);
        assert.equal(m.shortfall_seconds, 30);
        await store.endSession({ sessionId: s.session_id, reason: 'balance_exhausted' });
        assert.deepEqual(await charges(user), []);
        await rejectsWithMessage(store.startSession({ userId: user, externalKey: `${user}:b`, roomName: 'room-b' }),
          /suspended because an invoice is unpaid \(https:\/\/invoice\.stripe\.com\/i\/test\)/);
        await assertBooks(store);
      });

      it('a pending plan pays nothing either', async () => {
        const { store } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'payg', tiers: [[null, 6]] });
        await subscribe(user, plan, { status: 'pending' });
        await rejectsWithMessage(store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' }),
          /not confirmed yet/);
        assert.deepEqual(await charges(user), []);
      });

      it('retries charge nothing twice: a repeated meter, a replayed start, and the identifier is unique', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'payg', tiers: [[null, 6]] });
        await subscribe(user, plan);
        const s = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        const again = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        assert.equal(again.replayed, true);
        assert.equal(again.charged_seconds, 0);
        clock.advance(90);
        await store.meterSession(s.session_id);
        const repeat = await store.meterSession(s.session_id);
        assert.equal(repeat.charged_seconds, 0);
        await store.endSession({ sessionId: s.session_id, reason: 'caller_left' });
        await store.endSession({ sessionId: s.session_id, reason: 'caller_left' });
        assert.deepEqual((await charges(user)).map((c) => c.identifier), [`${s.session_id}:0`, `${s.session_id}:60`]);
        await assert.rejects(db.sql.query(
          `insert into public.usage_charges (user_id, user_plan_id, plan_id, session_id, period_start, included_seconds,
             rated_seconds, amount_exact, currency, identifier, created_at)
           select user_id, user_plan_id, plan_id, session_id, period_start, 0, 1, 0, currency, identifier, created_at
             from public.usage_charges where identifier = $1`, [`${s.session_id}:0`]), /unique|duplicate/i);
        await assertBooks(store);
      });

      it('meters of two calls of one user, run in parallel, never take the period past the cap', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'payg', tiers: [[null, 60]] });          // 1 c/s
        await subscribe(user, plan, { capCents: 500 });
        const a = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        const b = await store.startSession({ userId: user, externalKey: `${user}:b`, roomName: 'room-b' });
        const states: SessionState[] = [];
        for (let round = 0; round < 6; round += 1) {
          clock.advance(60);
          states.push(...await Promise.all([store.meterSession(a.session_id), store.meterSession(b.session_id),
            store.meterSession(a.session_id), store.meterSession(b.session_id)]));
        }
        const all = await charges(user);
        const total = all.reduce((sum, c) => sum + Number(c.amount_exact), 0);
        assert.equal(total, 500, 'the cap is reached exactly, never passed');
        assert.equal(all.reduce((sum, c) => sum + c.rated_seconds, 0), 500);
        assert.equal(new Set(all.map((c) => c.identifier)).size, all.length);
        assert.ok(states.some((s) => s.shortfall_seconds > 0));
        await assertBooks(store);
      });

      it('the call controller warns at 5 and 1 minutes before the cap and cuts the call off at the cap exactly', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'subscription', includedSeconds: 120, tiers: [[null, 60]] });   // then 1 c/s
        await subscribe(user, plan, { capCents: 480 });
        const since = (date: Date) => (date.getTime() - new Date(START).getTime()) / 1000;
        const timers = new FakeTimers(clock);
        const call = new CallController({ store, clock: clock.now, timers });
        const warnings: Array<CallEvents['warning'] & { at: number }> = [];
        const cutOffs: number[] = [];
        call.on('warning', (w) => warnings.push({ ...w, at: since(clock.now()) }));
        call.on('cut_off', () => cutOffs.push(since(clock.now())));
        const started = await call.join({ userId: user, externalKey: `controller:${user}`, roomName: 'r' });
        assert.ok(started);
        // 2 included minutes, then 480 seconds under the cap: 10 minutes.
        assert.deepEqual([since(started.covered_until), since(started.payable_until)], [60, 600]);
        await timers.advance(15 * 60);
        assert.deepEqual(warnings, [
          { remainingSeconds: 300, thresholdSeconds: 300, at: 300 },
          { remainingSeconds: 60, thresholdSeconds: 60, at: 540 },
        ]);
        assert.deepEqual(cutOffs, [600]);
        const { rows } = await db.sql.query<{ status: string; billed_seconds: number }>(
          'select status, billed_seconds from public.voice_sessions where id = $1', [started.session_id]);
        assert.deepEqual(rows[0], { status: 'cut_off', billed_seconds: 600 });
        const all = await charges(user);
        assert.equal(all.reduce((n, c) => n + c.included_seconds, 0), 120);
        assert.equal(all.reduce((n, c) => n + Number(c.amount_exact), 0), 480);
        assert.equal(timers.size, 0);
        await assertBooks(store);
      });

      it('a plan change mid-period: the new version is its own line, rounded on its own, and the earlier line counts against the cap', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const before = await createPlan({ kind: 'payg', tiers: [[null, 60]] });       // 1 c/s
        const after = await createPlan({ kind: 'payg', tiers: [[null, 30]] });        // 0.5 c/s, its tiers from 0
        const userPlan = await subscribe(user, before, { capCents: 300 });
        const first = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        await store.endSession({ sessionId: first.session_id, reason: 'caller_left' });
        await db.sql.query('update public.user_plans set plan_id = $2 where id = $1', [userPlan, after]);
        clock.advance(60);
        const second = await store.startSession({ userId: user, externalKey: `${user}:b`, roomName: 'room-b' });
        // 60 + 30 cents so far; the new line may reach 300 - 60 = 240: (240.5 - 30) / 0.5 -> 420 more seconds.
        assert.equal(second.remaining_seconds, 420);
        assert.equal(Number(second.plan?.period_cost_exact), 90);
        assert.equal(second.plan?.period_usage_cents, 90);
        assert.equal(second.plan?.cap_left_cents, 210);
        const books = await store.getBooks();
        assert.ok(books.postpaid);
        assert.ok(books.postpaid.lines.lines >= 2);
        await assertBooks(store);
      });

      it('a charge from the period end on, before Stripe\'s webhook moves the period, is in the next period (Stripe files usage by its time)', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        const plan = await createPlan({ kind: 'subscription', includedSeconds: 120, tiers: [[null, 60]] });   // then 1 c/s
        await subscribe(user, plan);
        clock.set(new Date(new Date(PERIOD_END).getTime() - 180 * 1000));
        const before = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        clock.advance(120);
        await store.endSession({ sessionId: before.session_id, reason: 'caller_left' });    // 120 s included, in May
        clock.set(PERIOD_END);
        const after = await store.startSession({ userId: user, externalKey: `${user}:b`, roomName: 'room-b' });
        // A new period from the old one's end: its included seconds are whole again, its end not known yet.
        assert.equal(after.plan?.period_start && new Date(after.plan.period_start).toISOString(), new Date(PERIOD_END).toISOString());
        assert.equal(after.plan?.period_end, null);
        assert.equal(after.plan?.included_left_seconds, 60);
        assert.equal(after.plan?.period_usage_cents, 0);
        const { rows } = await db.sql.query<{ period_start: Date; included_seconds: number; rated_seconds: number }>(
          `select period_start, included_seconds, rated_seconds from public.usage_charges where user_id = $1 order by id`, [user]);
        assert.deepEqual(rows.map((r) => [r.period_start.toISOString(), r.included_seconds, r.rated_seconds]), [
          [new Date(PERIOD_START).toISOString(), 60, 0], [new Date(PERIOD_START).toISOString(), 60, 0],
          [new Date(PERIOD_END).toISOString(), 60, 0],
        ]);
        await store.endSession({ sessionId: after.session_id, reason: 'caller_left' });
        // Cancelled at the period end: past it the plan pays nothing (Stripe ended the subscription there).
        await db.sql.query('update public.user_plans set cancel_at_period_end = true where user_id = $1', [user]);
        clock.advance(60);
        await rejectsWithMessage(store.startSession({ userId: user, externalKey: `${user}:c`, roomName: 'room-c' }), /no conversation time left/);
        clock.set(new Date(new Date(PERIOD_END).getTime() - 60 * 1000));
        const last = await store.startSession({ userId: user, externalKey: `${user}:d`, roomName: 'room-d' });
        assert.equal(last.plan?.period_end && new Date(last.plan.period_end).toISOString(), new Date(PERIOD_END).toISOString());
        await assertBooks(store);
      });

      it('each charge answers with the plan as a fresh read finds it after the charge (the state is read once per charge)', async () => {
        const { store, clock } = fresh();
        const user = newUserId();
        // Included seconds, then a card, then tiers whose per-second rates have no exact decimal (7 and 11 c/min),
        // so the amounts carried forward within a charge must be the stored (numeric(24, 12)) ones.
        const plan = await createPlan({ kind: 'subscription', includedSeconds: 90, tiers: [[200, 7], [null, 11]] });
        await subscribe(user, plan, { capCents: 90 });
        await store.adjustUserTime({ userId: user, seconds: 45, reason: 'test credit', idempotencyKey: `${user}:credit` });
        const keys = [`${user}:a`, `${user}:b`];
        // Timestamps compared as instants: the store parses them, the SQL answers them as text.
        const instants = (plan: unknown) => JSON.parse(JSON.stringify(plan), (k, v) =>
          (k === 'period_start' || k === 'period_end') && v !== null ? new Date(v).getTime() : v);
        const answers: Awaited<ReturnType<BillingStore['meterSession']>>[] = [];
        const checkFresh = async (answer: Awaited<ReturnType<BillingStore['meterSession']>>) => {
          const { rows } = await db.sql.query<{ plan: unknown }>(
            `select billing_private.plan_json(s, billing_private.plan_seconds_left(s)) as plan
               from billing_private.plan_state($1, $2) s`, [user, answer.last_metered_at]);
          assert.deepEqual(instants(answer.plan), instants(rows[0]!.plan), `answer ${answers.length}`);
          answers.push(answer);
        };
        const sessions = [];
        for (const key of keys) {
          const s = await store.startSession({ userId: user, externalKey: key, roomName: `room-${key}` });
          await checkFresh(s);
          sessions.push(s);
        }
        for (let step = 0; step < 8; step++) {
          clock.advance(47);
          for (const s of sessions) await checkFresh(await store.meterSession(s.session_id));
        }
        assert.ok(answers.some((a) => a.plan?.seconds_left === 0 && a.shortfall_seconds > 0), 'the cap is reached within the steps');
        assert.ok(answers.some((a) => (a.plan?.included_left_seconds ?? 1) === 0 && Number(a.plan?.period_cost_exact) > 0));
        const last = answers.slice(-2);
        for (const [i, key] of keys.entries()) {
          const replayed = await store.startSession({ userId: user, externalKey: key, roomName: `room-${key}` });
          assert.equal(replayed.replayed, true);
          assert.deepEqual(replayed.plan, last[i]!.plan);
          assert.equal(new Date(replayed.payable_until).getTime(), new Date(last[i]!.payable_until).getTime());
          assert.equal(replayed.remaining_seconds, last[i]!.remaining_seconds);
        }
        await assertBooks(store);
      });

      it('a prepaid user is charged as before: no plan block, no usage charge', async () => {
        const { store } = fresh();
        const user = newUserId();
        await store.adjustUserTime({ userId: user, seconds: 600, reason: 'test credit', idempotencyKey: `${user}:credit` });
        const s = await store.startSession({ userId: user, externalKey: `${user}:a`, roomName: 'room-a' });
        assert.equal(s.plan, null);
        assert.equal(s.remaining_seconds, 540);
        assert.equal(new Date(s.payable_until).getTime(), new Date(START).getTime() + 600 * 1000);
        assert.deepEqual(await charges(user), []);
      });
    });
  });
}

postpaidSuite('PostgreSQL', () => createPostgresDatabase());
postpaidSuite('PGlite', createPgliteDatabase);

// Usage in the caller's plan terms (migrations/018): the current period with its invoice lines rounded once
// each, included minutes, fee, cap and status; a month's history by day; the spending cap; a call's cost to
// 4 decimals. The SQL on PostgreSQL and PGlite, the API through the real HTTP stack. usage_charges rows are
// written directly, as the metering SQL writes them (docs/plans.md).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { BillingStore } from '../src/billing/store.ts';
import { asRole, createPgliteDatabase, createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { charge, endedCall, planId, subscribe } from './helpers/plan-fixtures.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

type Json = Record<string, any>;
// 5 cents a minute charged per second: the exact decimal Stripe's Price carries (12 places).
const PER_SECOND = '0.083333333333';
const exact = (seconds: number) => (Number(PER_SECOND) * seconds).toFixed(12);

function usageSql(engine: string, open: () => Promise<TestDatabase>) {
  describe(`usage in plan terms (SQL, ${engine})`, () => {
    let db: TestDatabase;
    let store: BillingStore;
    const clock = new TestClock('2026-03-15T12:00:00Z');
    before(async () => {
      db = await open();
      store = db.store(clock.now);
    });
    after(async () => {
      await store?.close();
      await db?.close();
    });

    it('rounds each invoice line once: three charges of a third of a cent are a 1-cent line, not 0', async () => {
      const user = newUserId();
      const payg = await planId(db.sql, 'payg');
      const userPlan = await subscribe(db.sql, { userId: user, planId: payg, start: '2026-03-01T00:00:00Z', end: '2026-04-01T00:00:00Z' });
      for (let i = 0; i < 3; i++) {
        const call = await endedCall(db.sql, { userId: user, at: `2026-03-1${i}T10:00:00Z`, billedSeconds: 4 });
        await charge(db.sql, { userId: user, userPlanId: userPlan, planId: payg, sessionId: call, periodStart: '2026-03-01T00:00:00Z',
          at: `2026-03-1${i}T10:00:04Z`, ratedSeconds: 4, amountExact: exact(4), billedBefore: 0 });
      }
      const usage = await store.getUsageCurrent(user);
      assert.equal(usage.billing, 'postpaid');
      assert.deepEqual([usage.plan?.key, usage.total_calls, usage.total_seconds, usage.rated_seconds], ['payg', 3, 12, 12]);
      assert.equal(usage.usage_exact_cents, 1); // 0.999999999996, shown to 4 decimals
      assert.deepEqual([usage.usage_cents, usage.fee_cents, usage.plan_cost_cents, usage.total_cost_cents], [1, 0, 1, 1]);
      assert.deepEqual(usage.lines.map((l) => [l.kind, l.plan_key, l.plan_version, l.amount_cents]), [['usage', 'payg', 1, 1]]);
      assert.deepEqual([usage.cap_cents, usage.cap_used_cents, usage.cap_left_cents, usage.max_cap_cents], [5000, 1, 4999, 50000]);
      assert.deepEqual([usage.period_start.toISOString(), usage.period_end?.toISOString(), usage.month],
        ['2026-03-01T00:00:00.000Z', '2026-04-01T00:00:00.000Z', '2026-03']);
    });

    it('makes one line per plan version in a period, each rounded once, and leaves other periods out', async () => {
      const user = newUserId();
      const v1 = await planId(db.sql, 'tiered', 1);
      const userPlan = await subscribe(db.sql, { userId: user, planId: v1, start: '2026-03-05T00:00:00Z', end: '2026-04-05T00:00:00Z' });
      const call = await endedCall(db.sql, { userId: user, at: '2026-03-06T10:00:00Z', billedSeconds: 120 });
      // Last period's charge: not this period's cost.
      await charge(db.sql, { userId: user, userPlanId: userPlan, planId: v1, sessionId: call, periodStart: '2026-02-05T00:00:00Z',
        at: '2026-03-04T23:59:00Z', ratedSeconds: 60, amountExact: '6', billedBefore: 999 });
      await charge(db.sql, { userId: user, userPlanId: userPlan, planId: v1, sessionId: call, periodStart: '2026-03-05T00:00:00Z',
        at: '2026-03-06T10:01:00Z', ratedSeconds: 6, amountExact: '0.6', billedBefore: 0 });
      // The charges name another version of the plan (the subscription moved to it mid-period): its own line.
      const v2 = (await store.revisePlan('tiered', { description: 'Volume, second edition' })).plan;
      await charge(db.sql, { userId: user, userPlanId: userPlan, planId: v2.plan_id, sessionId: call,
        periodStart: '2026-03-05T00:00:00Z', at: '2026-03-06T10:02:00Z', ratedSeconds: 6, amountExact: '0.6', billedBefore: 60 });
      const usage = await store.getUsageCurrent(user);
      assert.deepEqual(usage.lines.map((l) => [l.plan_key, l.plan_version, l.amount_exact, l.amount_cents]),
        [['tiered', 1, 0.6, 1], ['tiered', 2, 0.6, 1]]);
      // The user plan still names version 1: the revision moved nobody.
      assert.deepEqual([usage.plan?.version, usage.plan?.status], [1, 'retired']);
      // Two lines of 0.6 are 2 cents, where one sum rounded would be 1.
      assert.deepEqual([usage.usage_cents, usage.usage_exact_cents, usage.rated_seconds], [2, 1.2, 12]);
    });

    it('shows a subscription’s included minutes, its fee line and the cap on the rated usage only', async () => {
      const user = newUserId();
      const pro = await planId(db.sql, 'pro_monthly');
      const userPlan = await subscribe(db.sql, { userId: user, planId: pro, start: '2026-03-10T00:00:00Z', end: '2026-04-10T00:00:00Z', capCents: 2000 });
      const long = await endedCall(db.sql, { userId: user, at: '2026-03-11T10:00:00Z', billedSeconds: 59_940 });
      await charge(db.sql, { userId: user, userPlanId: userPlan, planId: pro, sessionId: long, periodStart: '2026-03-10T00:00:00Z',
        at: '2026-03-12T02:39:00Z', includedSeconds: 59_940, amountExact: '0', billedBefore: 0 });
      const over = await endedCall(db.sql, { userId: user, at: '2026-03-14T10:00:00Z', billedSeconds: 180 });
      await charge(db.sql, { userId: user, userPlanId: userPlan, planId: pro, sessionId: over, periodStart: '2026-03-10T00:00:00Z',
        at: '2026-03-14T10:03:00Z', includedSeconds: 60, ratedSeconds: 120, amountExact: exact(120), billedBefore: 0 });
      const usage = await store.getUsageCurrent(user);
      assert.deepEqual([usage.included_seconds, usage.included_seconds_used, usage.included_seconds_left, usage.rated_seconds],
        [60_000, 60_000, 0, 120]);
      assert.deepEqual(usage.lines.map((l) => [l.kind, l.amount_cents]), [['usage', 10], ['fee', 4900]]);
      assert.deepEqual([usage.usage_cents, usage.fee_cents, usage.plan_cost_cents], [10, 4900, 4910]);
      assert.deepEqual([usage.cap_cents, usage.cap_used_cents, usage.cap_left_cents], [2000, 10, 1990]);
      assert.equal(usage.plan?.price_per_hour.included_cents_per_hour, 294);
    });

    it('answers a prepaid user in card terms, and a pending or suspended plan with its status', async () => {
      const prepaid = newUserId();
      await store.adjustUserTime({ userId: prepaid, seconds: 900, reason: 'test credit', idempotencyKey: `${prepaid}:credit` });
      const usage = await store.getUsageCurrent(prepaid);
      assert.deepEqual([usage.billing, usage.plan?.kind, usage.status, usage.cap_cents, usage.balance_seconds, usage.month],
        ['prepaid', 'prepaid', 'active', null, 900, '2026-03']);
      assert.ok(usage.plan?.packs && usage.plan.packs.length > 0, 'a prepaid plan lists its packs per hour');

      const pending = newUserId();
      await subscribe(db.sql, { userId: pending, planId: await planId(db.sql, 'payg'), start: '', end: '', status: 'pending' });
      const waiting = await store.getUsageCurrent(pending);
      assert.deepEqual([waiting.billing, waiting.plan?.key, waiting.status, waiting.cap_cents], ['prepaid', 'payg', 'pending', null]);

      const suspended = newUserId();
      await subscribe(db.sql, { userId: suspended, planId: await planId(db.sql, 'payg'), start: '2026-03-01T00:00:00Z',
        end: '2026-04-01T00:00:00Z', status: 'suspended', suspendedReason: 'your card was declined',
        invoiceUrl: 'https://invoice.stripe.com/i/acct_1/test_1' });
      const stopped = await store.getUsageCurrent(suspended);
      assert.deepEqual([stopped.billing, stopped.status, stopped.suspended_reason, stopped.hosted_invoice_url],
        ['postpaid', 'suspended', 'your card was declined', 'https://invoice.stripe.com/i/acct_1/test_1']);
    });

    it('sets the cap within the plan’s maximum and refuses anything else, changing nothing', async () => {
      const user = newUserId();
      const userPlan = await subscribe(db.sql, { userId: user, planId: await planId(db.sql, 'payg'), start: '2026-03-01T00:00:00Z',
        end: '2026-04-01T00:00:00Z' });
      const capOf = async () => (await db.sql.query<{ c: number }>(
        `select spending_cap_cents as c from public.user_plans where id = $1`, [userPlan])).rows[0]!.c;
      assert.equal((await store.setSpendingCap({ userId: user, capCents: 12_345 })).cap_cents, 12_345);
      await assert.rejects(store.setSpendingCap({ userId: user, capCents: 50_001 }),
        (e: any) => e.code === 'invalid_argument' && /at most 50000 cents/.test(e.message));
      await assert.rejects(store.setSpendingCap({ userId: user, capCents: 0 }), (e: any) => e.code === 'invalid_argument');
      assert.equal(await capOf(), 12_345);
      await assert.rejects(store.setSpendingCap({ userId: newUserId(), capCents: 100 }), (e: any) => e.code === 'unknown_plan');
    });

    it('answers a month with its days, the fee of a period begun in it, and its lines rounded once', async () => {
      const user = newUserId();
      const pro = await planId(db.sql, 'pro_monthly');
      const userPlan = await subscribe(db.sql, { userId: user, planId: pro, start: '2026-03-10T00:00:00Z', end: '2026-04-10T00:00:00Z' });
      for (const [day, billedBefore] of [['12', 0], ['12', 60], ['20', 0]] as const) {
        const call = await endedCall(db.sql, { userId: user, at: `2026-03-${day}T09:00:00Z`, billedSeconds: 60, agentName: 'juana' });
        await charge(db.sql, { userId: user, userPlanId: userPlan, planId: pro, sessionId: call, periodStart: '2026-03-10T00:00:00Z',
          at: `2026-03-${day}T09:01:00Z`, ratedSeconds: 4, amountExact: exact(4), billedBefore });
      }
      const march = await store.getUsageHistory({ userId: user, month: '2026-03' });
      assert.deepEqual([march.month, march.total_calls, march.total_seconds, march.usage_cents, march.fee_cents, march.plan_cost_cents],
        ['2026-03', 3, 180, 1, 4900, 4901]);
      assert.deepEqual(march.fees.map((f) => [f.plan_key, f.amount_cents, f.period_start.toISOString()]),
        [['pro_monthly', 4900, '2026-03-10T00:00:00.000Z']]);
      // The current month runs to today (the 15th).
      assert.equal(march.days.length, 15);
      const twelfth = march.days.find((d) => d.date === '2026-03-12')!;
      assert.deepEqual([twelfth.calls, twelfth.seconds, twelfth.rated_seconds, twelfth.usage_exact_cents], [2, 120, 8, 0.6667]);
      const february = await store.getUsageHistory({ userId: user, month: '2026-02' });
      assert.deepEqual([february.total_calls, february.plan_cost_cents, february.days.length], [0, 0, 28]);
      await assert.rejects(store.getUsageHistory({ userId: user, month: '2026-13' }), (e: any) => e.code === 'invalid_argument');
    });
  });
}

usageSql('PostgreSQL', createPostgresDatabase);
usageSql('PGlite', createPgliteDatabase);

describe('usage API (HTTP)', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  const clock = new TestClock('2026-03-15T12:00:00Z');
  const alice = newUserId();
  const bob = newUserId();
  let aliceCall = '';

  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { clock: clock.now });
    const payg = await planId(db.sql, 'payg');
    const userPlan = await subscribe(db.sql, { userId: alice, planId: payg, start: '2026-03-01T00:00:00Z', end: '2026-04-01T00:00:00Z' });
    aliceCall = await endedCall(db.sql, { userId: alice, at: '2026-03-14T10:00:00Z', billedSeconds: 60, agentName: 'juana' });
    for (const before of [0, 20, 40]) {
      await charge(db.sql, { userId: alice, userPlanId: userPlan, planId: payg, sessionId: aliceCall, periodStart: '2026-03-01T00:00:00Z',
        at: '2026-03-14T10:01:00Z', ratedSeconds: 4, amountExact: exact(4), billedBefore: before });
    }
    await sidecar.store.adjustUserTime({ userId: bob, seconds: 600, reason: 'test credit', idempotencyKey: `${bob}:credit` });
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const call = async (method: string, path: string, options: { user?: string; body?: unknown } = {}) => {
    const token = options.user ? await sidecar.tokenFor(options.user) : undefined;
    const response = await sidecar.request(method, path, { ...(token && { token }), ...(options.body !== undefined && { body: options.body }) });
    return { status: response.status, body: await response.json() as Json };
  };
  const ok = async (method: string, path: string, options: { user?: string; body?: unknown } = {}) => {
    const answer = await call(method, path, options);
    assert.equal(answer.status, 200, `${method} ${path}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  };

  it('answers the seed’s current month in the plan’s terms, each user only their own', async () => {
    const mine = await ok('GET', '/api/usage/current', { user: alice });
    assert.deepEqual([mine.month, mine.total_calls, mine.total_minutes, mine.total_seconds, mine.total_cost_cents, mine.total_cost_usd],
      ['2026-03', 1, 1, 60, 1, 0.01]);
    assert.deepEqual([mine.billing, mine.plan.key, mine.plan.tiers[0].cents_per_hour, mine.usage_cents, mine.cap_cents, mine.cap_left_cents],
      ['postpaid', 'payg', 300, 1, 5000, 4999]);
    const theirs = await ok('GET', '/api/usage/current', { user: bob });
    assert.deepEqual([theirs.billing, theirs.total_calls, theirs.usage_cents, theirs.balance_seconds, theirs.cap_cents],
      ['prepaid', 0, 0, 600, null]);
  });

  it('shows a postpaid call’s cost to 4 decimals: the exact sum of its charges', async () => {
    const calls = (await ok('GET', '/api/usage/calls?limit=5', { user: alice })).calls as Json[];
    assert.deepEqual(calls.map((c) => [c.id, c.agent_name, c.cost_cents, c.cost_usd]), [[aliceCall, 'juana', 1, 0.01]]);
    assert.deepEqual((await ok('GET', '/api/usage/calls', { user: bob })).calls, []);
    // One charge of a third of a cent: the call shows it exactly, where the invoice line would round it.
    const carol = newUserId();
    const payg = await planId(db.sql, 'payg');
    const userPlan = await subscribe(db.sql, { userId: carol, planId: payg, start: '2026-03-01T00:00:00Z', end: '2026-04-01T00:00:00Z' });
    const short = await endedCall(db.sql, { userId: carol, at: '2026-03-15T09:00:00Z', billedSeconds: 4 });
    await charge(db.sql, { userId: carol, userPlanId: userPlan, planId: payg, sessionId: short, periodStart: '2026-03-01T00:00:00Z',
      at: '2026-03-15T09:00:04Z', ratedSeconds: 4, amountExact: exact(4), billedBefore: 0 });
    const carols = (await ok('GET', '/api/usage/calls', { user: carol })).calls as Json[];
    assert.deepEqual(carols.map((c) => [c.cost_cents, c.cost_usd]), [[0.3333, 0.0033]]);
    const current = await ok('GET', '/api/usage/current', { user: carol });
    assert.deepEqual([current.usage_exact_cents, current.usage_cents, current.lines[0].amount_cents], [0.3333, 0, 0]);
  });

  it('answers a month with its days', async () => {
    const march = await ok('GET', '/api/usage/history?month=2026-03', { user: alice });
    assert.deepEqual([march.month, march.total_calls, march.usage_cents, march.total_cost_usd, march.days.length], ['2026-03', 1, 1, 0.01, 15]);
    assert.deepEqual(march.days[13], { date: '2026-03-14', calls: 1, seconds: 60, minutes: 1, included_seconds: 0, rated_seconds: 12,
      usage_exact_cents: 1 });
    assert.equal((await call('GET', '/api/usage/history?month=2026-3', { user: alice })).status, 400);
  });

  it('sets the cap through PUT /api/usage/cap and refuses bad input with a 4xx JSON error, changing nothing', async () => {
    const set = await ok('PUT', '/api/usage/cap', { user: alice, body: { cap_cents: 2500 } });
    assert.deepEqual([set.cap_cents, set.cap_left_cents], [2500, 2499]);
    for (const body of [{ cap_cents: 50_001 }, { cap_cents: 0 }, { cap_cents: 1.5 }, { cap_cents: '100' }, {}, { cap_cents: 100, extra: 1 }]) {
      const answer = await call('PUT', '/api/usage/cap', { user: alice, body });
      assert.equal(answer.status, 400, JSON.stringify(body));
      assert.equal(typeof answer.body.error.message, 'string');
    }
    const prepaid = await call('PUT', '/api/usage/cap', { user: bob, body: { cap_cents: 100 } });
    assert.deepEqual([prepaid.status, prepaid.body.error.code], [404, 'unknown_plan']);
    assert.equal((await call('PUT', '/api/usage/cap', { body: { cap_cents: 100 } })).status, 401);
    assert.equal((await ok('GET', '/api/usage/current', { user: alice })).cap_cents, 2500);
  });

  it('answers 401 without a token and lists the plans to anyone', async () => {
    for (const path of ['/api/usage/current', '/api/usage/history?month=2026-03']) {
      assert.equal((await call('GET', path)).status, 401);
    }
    const plans = (await ok('GET', '/api/plans')).plans as Json[];
    assert.deepEqual(plans.map((p) => p.key), ['prepaid', 'payg', 'tiered', 'pro_monthly']);
    assert.equal('stripe_product_id' in plans[0]!, false);
    assert.equal((await call('GET', '/api/plans?all=1')).status, 400);
  });

  it('lets the database’s roles read only their own usage rows, and run none of the functions', async () => {
    const own = await asRole(db.sql, 'authenticated', { sub: bob }, (tx) =>
      tx.query<{ n: number }>(`select count(*)::int as n from public.usage_charges`));
    assert.equal(own.rows[0]!.n, 0);
    const alices = await asRole(db.sql, 'authenticated', { sub: alice }, (tx) =>
      tx.query<{ n: number }>(`select count(*)::int as n from public.usage_charges`));
    assert.equal(alices.rows[0]!.n, 3);
    for (const fn of [`public.get_usage_current('${alice}'::uuid, now())`, `public.set_spending_cap('${alice}'::uuid, 100, now())`,
      `public.get_usage_history('${alice}'::uuid, '2026-03', now())`]) {
      await assert.rejects(asRole(db.sql, 'authenticated', { sub: alice }, (tx) => tx.query(`select ${fn}`)),
        (e: any) => e.code === '42501' || /permission denied/.test(String(e.message)));
    }
  });
});

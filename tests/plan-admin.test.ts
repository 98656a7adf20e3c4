// Plan administration (migrations/018): the rules of each kind, versions that keep their users, retirement,
// prices per hour; then the administrators' API through the real HTTP stack: plans, subscribers, MRR per
// currency, usage by plan and by agent, invoices and meter drift, and who may use it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { PlanDefinition } from '../src/billing/plan-types.ts';
import { RpcBillingStore, type BillingStore } from '../src/billing/store.ts';
import { createServiceClient, supabaseTransport } from '../src/billing/supabase-transport.ts';
import { createFakePostgrest, projectKey } from './helpers/fake-postgrest.ts';
import { countRows, createPgliteDatabase, createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { charge, endedCall, planId, subscribe } from './helpers/plan-fixtures.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

type Json = Record<string, any>;
const caps = { default_cap_cents: 5000, max_cap_cents: 20_000 };

function planSql(engine: string, open: () => Promise<TestDatabase>) {
  describe(`plan administration (SQL, ${engine})`, () => {
    let db: TestDatabase;
    let store: BillingStore;
    const clock = new TestClock('2026-05-01T09:00:00Z');
    before(async () => {
      db = await open();
      store = db.store(clock.now);
    });
    after(async () => {
      await store?.close();
      await db?.close();
    });
    const snapshot = async () => [await countRows(db.sql, 'public.plans'), await countRows(db.sql, 'public.plan_rate_tiers'),
      (await db.sql.query(`select key, version, status from public.plans order by key, version`)).rows];

    it('creates a plan of each kind with its tiers and prices per hour', async () => {
      const payg = await store.createPlan({ key: 'cheap_payg', kind: 'payg', name: 'Cheap', ...caps,
        tiers: [{ up_to_seconds: null, cents_per_minute: 2.5 }] });
      assert.deepEqual([payg.plan.version, payg.plan.status, payg.plan.tiers[0]?.cents_per_hour, payg.plan.price_per_hour.rate_cents_per_hour],
        [1, 'active', 150, 150]);
      assert.equal(payg.plan.tiers[0]?.cents_per_second, 0.041666666667);
      const team = await store.createPlan({ key: 'team', kind: 'subscription', name: 'Team', monthly_fee_cents: 9900,
        included_seconds: 2000 * 60, ...caps, tiers: [{ up_to_seconds: null, cents_per_minute: 4 }] });
      assert.deepEqual([team.plan.monthly_fee_cents, team.plan.included_seconds, team.plan.price_per_hour.included_cents_per_hour,
        team.plan.price_per_hour.rate_cents_per_hour], [9900, 120_000, 297, 240]);
      const volume = await store.createPlan({ key: 'volume', kind: 'tiered', name: 'Volume', ...caps, tiers: [
        { up_to_seconds: 600, cents_per_minute: 6 }, { up_to_seconds: 6000, cents_per_minute: 4.0833 },
        { up_to_seconds: null, cents_per_minute: 2 }] });
      assert.deepEqual(volume.plan.tiers.map((t) => [t.position, t.up_to_seconds, t.cents_per_minute]),
        [[1, 600, 6], [2, 6000, 4.0833], [3, null, 2]]);
      const packs = await store.createPlan({ key: 'packs_two', kind: 'prepaid', name: 'Packs' });
      assert.ok(packs.plan.packs!.length > 0 && packs.plan.price_per_hour.cheapest_pack_cents_per_hour! > 0);
      const listed = (await store.listPlans()).plans.map((p) => p.key);
      for (const key of ['cheap_payg', 'team', 'volume', 'packs_two']) assert.ok(listed.includes(key), key);
    });

    it('refuses a definition that breaks its kind’s rules, with a clear message, writing nothing', async () => {
      const before = await snapshot();
      const rate = (cents_per_minute: number, up_to_seconds: number | null = null) => ({ up_to_seconds, cents_per_minute });
      const refused: [Record<string, unknown>, RegExp][] = [
        [{ key: 'p1', kind: 'payg', name: 'x', ...caps, tiers: [rate(5, 60), rate(4)] }, /exactly one rate tier/],
        [{ key: 'p2', kind: 'tiered', name: 'x', ...caps, tiers: [rate(5)] }, /at least two rate tiers/],
        [{ key: 'p3', kind: 'tiered', name: 'x', ...caps, tiers: [rate(5, 600), rate(4, 600), rate(3)] }, /more than the tier before/],
        [{ key: 'p4', kind: 'tiered', name: 'x', ...caps, tiers: [rate(5, 600), rate(4, 1200)] }, /last tier has no upper bound/],
        [{ key: 'p5', kind: 'subscription', name: 'x', included_seconds: 60, ...caps, tiers: [rate(5)] }, /positive monthly_fee_cents/],
        [{ key: 'p6', kind: 'subscription', name: 'x', monthly_fee_cents: 100, ...caps, tiers: [rate(5)] }, /included_seconds/],
        [{ key: 'p7', kind: 'payg', name: 'x', monthly_fee_cents: 100, ...caps, tiers: [rate(5)] }, /only a subscription has a monthly fee/],
        [{ key: 'p8', kind: 'payg', name: 'x', tiers: [rate(5)] }, /default_cap_cents and max_cap_cents/],
        [{ key: 'p9', kind: 'payg', name: 'x', default_cap_cents: 300, max_cap_cents: 200, tiers: [rate(5)] }, /cannot be more than max_cap_cents/],
        [{ key: 'p10', kind: 'payg', name: 'x', ...caps, tiers: [rate(5.00001)] }, /at most 4 decimals/],
        [{ key: 'p11', kind: 'payg', name: 'x', ...caps, tiers: [rate(-1)] }, /zero or more/],
        [{ key: 'p12', kind: 'prepaid', name: 'x', tiers: [rate(1)] }, /no rate tiers/],
        [{ key: 'P13', kind: 'payg', name: 'x', ...caps, tiers: [rate(5)] }, /plan key/],
        [{ key: 'p14', kind: 'flat', name: 'x', ...caps, tiers: [rate(5)] }, /prepaid, payg, tiered or subscription/],
        [{ key: 'p15', kind: 'payg', name: ' ', ...caps, tiers: [rate(5)] }, /name of 1 to 80/],
      ];
      for (const [definition, message] of refused) {
        await assert.rejects(store.createPlan(definition as unknown as PlanDefinition),
          (e: any) => e.code === 'invalid_argument' && message.test(e.message), JSON.stringify(definition));
      }
      await assert.rejects(store.createPlan({ key: 'payg', kind: 'payg', name: 'again', ...caps, tiers: [rate(5)] }),
        (e: any) => e.code === 'plan_conflict' && /exists already/.test(e.message));
      assert.deepEqual(await snapshot(), before);
    });

    it('revises a plan as a new version in one step; its users keep the version they are on', async () => {
      const user = newUserId();
      const v1 = await planId(db.sql, 'payg');
      await subscribe(db.sql, { userId: user, planId: v1, start: '2026-05-01T00:00:00Z', end: '2026-06-01T00:00:00Z' });
      clock.set('2026-05-02T10:00:00Z');
      const revised = await store.revisePlan('payg', { tiers: [{ up_to_seconds: null, cents_per_minute: 4 }], max_cap_cents: 60_000 });
      assert.deepEqual([revised.plan.key, revised.plan.version, revised.plan.status, revised.plan.tiers[0]?.cents_per_minute,
        revised.plan.max_cap_cents, revised.plan.name], ['payg', 2, 'active', 4, 60_000, 'Pay as you go']);
      const old = revised.retired as Json;
      assert.deepEqual([old.version, old.status, old.retired_at.toISOString()], [1, 'retired', '2026-05-02T10:00:00.000Z']);
      const { rows } = await db.sql.query<{ plan_id: string }>(`select plan_id from public.user_plans where user_id = $1`, [user]);
      assert.equal(rows[0]!.plan_id, v1);
      const usage = await store.getUsageCurrent(user);
      assert.deepEqual([usage.plan?.version, usage.plan?.tiers[0]?.cents_per_minute, usage.max_cap_cents], [1, 5, 50_000]);
      // The offer shows the new version only; with retired ones, both.
      assert.deepEqual((await store.listPlans()).plans.filter((p) => p.key === 'payg').map((p) => p.version), [2]);
      assert.deepEqual((await store.listPlans({ includeRetired: true })).plans.filter((p) => p.key === 'payg').map((p) => p.version), [2, 1]);
    });

    it('refuses a bad revision and leaves the offered version offered', async () => {
      const before = await snapshot();
      await assert.rejects(store.revisePlan('tiered', { tiers: [{ up_to_seconds: null, cents_per_minute: 3 }] }),
        (e: any) => e.code === 'invalid_argument' && /at least two rate tiers/.test(e.message));
      await assert.rejects(store.revisePlan('tiered', { default_cap_cents: 1_000_000 }),
        (e: any) => e.code === 'invalid_argument' && /cannot be more than max_cap_cents/.test(e.message));
      await assert.rejects(store.revisePlan('no_such_plan', { name: 'x' }), (e: any) => e.code === 'unknown_plan');
      await assert.rejects(store.revisePlan('tiered', {}), (e: any) => e.code === 'invalid_argument');
      assert.deepEqual(await snapshot(), before);
    });

    it('retires a plan once; a retired plan is neither offered nor revised', async () => {
      const first = await store.retirePlan('tiered');
      assert.deepEqual([first.plan.status, first.retired], ['retired', true]);
      const again = await store.retirePlan('tiered');
      assert.deepEqual([again.plan.version, again.retired], [first.plan.version, false]);
      assert.equal((await store.listPlans()).plans.some((p) => p.key === 'tiered'), false);
      await assert.rejects(store.revisePlan('tiered', { name: 'Back' }), (e: any) => e.code === 'invalid_argument' && /retired/.test(e.message));
      await assert.rejects(store.retirePlan('no_such_plan'), (e: any) => e.code === 'unknown_plan');
      await assert.rejects(store.createPlan({ key: 'tiered', kind: 'payg', name: 'Again', ...caps,
        tiers: [{ up_to_seconds: null, cents_per_minute: 1 }] }), (e: any) => e.code === 'plan_conflict' && /never used again/.test(e.message));
    });
  });
}

planSql('PostgreSQL', createPostgresDatabase);
planSql('PGlite', createPgliteDatabase);

describe('plan administration API (HTTP)', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  const clock = new TestClock('2026-05-20T12:00:00Z');
  const admin = newUserId();
  const users = { a: newUserId(), b: newUserId(), c: newUserId(), d: newUserId(), e: newUserId() };

  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { clock: clock.now, adminIds: [admin] });
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
  const asAdmin = async (method: string, path: string, body?: unknown, status = 200) => {
    const answer = await call(method, path, { user: admin, body });
    assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  const plansSnapshot = async () => (await db.sql.query(
    `select p.key, p.version, p.status, count(t.position)::int as tiers from public.plans p
       left join public.plan_rate_tiers t on t.plan_id = p.id group by p.id order by p.key, p.version`)).rows;

  const ADMIN_ROUTES: [string, string, unknown?][] = [
    ['GET', '/admin/plans'], ['POST', '/admin/plans', { key: 'x1', kind: 'prepaid', name: 'x' }],
    ['POST', '/admin/plans/payg/versions', { name: 'x' }], ['POST', '/admin/plans/payg/retire'],
    ['GET', '/admin/plans/subscribers'], ['GET', '/admin/mrr'], ['GET', '/admin/usage/by-plan'], ['GET', '/admin/usage/by-agent'],
    ['GET', '/admin/invoices'], ['GET', '/admin/meter-drift'],
  ];

  it('answers 401 without a token and 403 to a user who is no administrator, changing nothing', async () => {
    const before = await plansSnapshot();
    for (const [method, path, body] of ADMIN_ROUTES) {
      assert.equal((await call(method, path, { body })).status, 401, `${method} ${path}`);
      const forbidden = await call(method, path, { user: users.a, body });
      assert.deepEqual([forbidden.status, forbidden.body.error?.code], [403, 'forbidden'], `${method} ${path}`);
    }
    assert.deepEqual(await plansSnapshot(), before);
  });

  it('creates, revises and retires plans, in minutes or seconds', async () => {
    const created = await asAdmin('POST', '/admin/plans', {
      key: 'euro_team', kind: 'subscription', name: 'Team (EUR)', currency: 'EUR', monthly_fee_cents: 3000, included_minutes: 500,
      default_cap_cents: 2000, max_cap_cents: 10_000, tiers: [{ cents_per_minute: 4.5 }],
    }, 201);
    assert.deepEqual([created.plan.key, created.plan.version, created.plan.currency, created.plan.included_seconds,
      created.plan.included_minutes, created.plan.price_per_hour.included_cents_per_hour, created.plan.stripe_product_id],
    ['euro_team', 1, 'eur', 30_000, 500, 360, null]);
    const volume = await asAdmin('POST', '/admin/plans', { key: 'volume_b', kind: 'tiered', name: 'Volume B', ...caps,
      tiers: [{ up_to_minutes: 100, cents_per_minute: 6 }, { cents_per_minute: 3 }] }, 201);
    assert.deepEqual(volume.plan.tiers.map((t: Json) => [t.up_to_seconds, t.up_to_minutes, t.cents_per_hour]), [[6000, 100, 360], [null, null, 180]]);
    const revised = await asAdmin('POST', '/admin/plans/volume_b/versions', { name: 'Volume B+' }, 201);
    assert.deepEqual([revised.plan.version, revised.plan.name, revised.retired.version, revised.retired.status], [2, 'Volume B+', 1, 'retired']);
    const retired = await asAdmin('POST', '/admin/plans/volume_b/retire');
    assert.deepEqual([retired.plan.version, retired.plan.status, retired.retired], [2, 'retired', true]);
    const all = (await asAdmin('GET', '/admin/plans')).plans as Json[];
    assert.deepEqual(all.filter((p) => p.key === 'volume_b').map((p) => [p.version, p.status]), [[2, 'retired'], [1, 'retired']]);
    const offered = (await asAdmin('GET', '/admin/plans?include_retired=false')).plans as Json[];
    assert.equal(offered.some((p) => p.key === 'volume_b'), false);
    const publicList = (await call('GET', '/api/plans')).body.plans as Json[];
    assert.ok(publicList.some((p) => p.key === 'euro_team') && !publicList.some((p) => p.key === 'volume_b'));
  });

  it('refuses bad plan input with a 4xx JSON error and changes nothing', async () => {
    const before = await plansSnapshot();
    const bad: [string, string, unknown, number][] = [
      ['POST', '/admin/plans', { key: 'q1', kind: 'payg', name: 'x', ...caps, tiers: [{ cents_per_minute: 5 }, { cents_per_minute: 4 }] }, 400],
      ['POST', '/admin/plans', { key: 'q2', kind: 'payg', name: 'x', ...caps, tiers: [{ cents_per_minute: 5 }], surprise: true }, 400],
      ['POST', '/admin/plans', { key: 'q3', kind: 'subscription', name: 'x', monthly_fee_cents: 10, included_minutes: 5,
        included_seconds: 300, ...caps, tiers: [{ cents_per_minute: 5 }] }, 400],
      ['POST', '/admin/plans', { key: 'q4', kind: 'payg', name: 'x', ...caps, tiers: [{ cents_per_minute: '5' }] }, 400],
      ['POST', '/admin/plans', { key: 'payg', kind: 'payg', name: 'x', ...caps, tiers: [{ cents_per_minute: 5 }] }, 409],
      ['POST', '/admin/plans', 'not json', 400],
      ['POST', '/admin/plans/pro_monthly/versions', {}, 400],
      ['POST', '/admin/plans/pro_monthly/versions', { monthly_fee_cents: 0 }, 400],
      ['POST', '/admin/plans/pro_monthly/versions', { kind: 'payg' }, 400],
      ['POST', '/admin/plans/no_such_plan/versions', { name: 'x' }, 404],
      ['POST', '/admin/plans/Bad-Key/retire', undefined, 400],
      ['POST', '/admin/plans/no_such_plan/retire', undefined, 404],
      ['GET', '/admin/plans?include_retired=yes', undefined, 400],
    ];
    for (const [method, path, body, status] of bad) {
      const answer = await call(method, path, { user: admin, body });
      assert.equal(answer.status, status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
      assert.equal(typeof answer.body.error?.message, 'string');
    }
    assert.deepEqual(await plansSnapshot(), before);
  });

  it('lists who is on which plan, and MRR, usage by plan and by agent per currency', async () => {
    const sql = db.sql;
    const pro = await planId(sql, 'pro_monthly');
    const payg = await planId(sql, 'payg');
    const euro = await planId(sql, 'euro_team');
    const period = { start: '2026-05-10T00:00:00Z', end: '2026-06-10T00:00:00Z' };
    await subscribe(sql, { userId: users.a, planId: pro, ...period });
    await subscribe(sql, { userId: users.b, planId: pro, ...period, status: 'suspended' });
    await subscribe(sql, { userId: users.c, planId: euro, ...period });
    const paygPlan = await subscribe(sql, { userId: users.d, planId: payg, ...period });
    await subscribe(sql, { userId: users.e, planId: payg, ...period, status: 'pending' });
    // d's last complete period: three third-of-a-cent charges, one 1-cent line.
    const old = await endedCall(sql, { userId: users.d, at: '2026-05-01T10:00:00Z', billedSeconds: 60, agentName: 'juana' });
    for (const before of [0, 20, 40]) {
      await charge(sql, { userId: users.d, userPlanId: paygPlan, planId: payg, sessionId: old, periodStart: '2026-04-10T00:00:00Z',
        at: '2026-05-01T10:01:00Z', ratedSeconds: 4, amountExact: '0.333333333332', billedBefore: before });
    }
    // This period: a call with juana (charged) and one with the default agent.
    const now = await endedCall(sql, { userId: users.d, at: '2026-05-19T10:00:00Z', billedSeconds: 120, agentName: 'juana' });
    await charge(sql, { userId: users.d, userPlanId: paygPlan, planId: payg, sessionId: now, periodStart: period.start,
      at: '2026-05-19T10:02:00Z', ratedSeconds: 120, amountExact: '9.99999999996', billedBefore: 0 });
    await endedCall(sql, { userId: users.a, at: '2026-05-19T11:00:00Z', billedSeconds: 60 });

    const subscribers = await asAdmin('GET', '/admin/plans/subscribers');
    assert.equal(subscribers.total, 5);
    assert.deepEqual(subscribers.by_plan.map((g: Json) => [g.plan_key, g.currency, g.pending, g.active, g.suspended]),
      [['euro_team', 'eur', 0, 1, 0], ['payg', 'usd', 1, 1, 0], ['pro_monthly', 'usd', 0, 1, 1]]);
    const onPayg = await asAdmin('GET', '/admin/plans/subscribers?plan=payg&limit=1');
    assert.deepEqual([onPayg.total, onPayg.subscribers.length, onPayg.subscribers[0].plan_key], [2, 1, 'payg']);

    const mrr = await asAdmin('GET', '/admin/mrr');
    assert.deepEqual(mrr.currencies.map((c: Json) => [c.currency, c.subscriptions, c.subscription_fees_cents, c.usage_last_period_cents, c.mrr_cents]),
      [['eur', 1, 3000, 0, 3000], ['usd', 1, 4900, 1, 4901]]);

    const byPlan = await asAdmin('GET', '/admin/usage/by-plan?days=30');
    assert.deepEqual(byPlan.plans.map((p: Json) => [p.plan_key, p.currency, p.users, p.calls, p.rated_seconds, p.amount_cents]),
      [['payg', 'usd', 1, 2, 132, 11]]);
    const lastWeek = await asAdmin('GET', '/admin/usage/by-plan?days=7');
    assert.deepEqual(lastWeek.plans.map((p: Json) => [p.rated_seconds, p.amount_cents]), [[120, 10]]);

    const byAgent = await asAdmin('GET', '/admin/usage/by-agent?days=30');
    assert.deepEqual(byAgent.agents.map((a: Json) => [a.agent_name, a.calls, a.seconds, a.rated_seconds, a.plan_amounts]), [
      ['juana', 2, 180, 132, [{ currency: 'usd', amount_exact_cents: 11 }]],
      ['mindbot', 1, 60, 0, []],
    ]);
    assert.equal((await call('GET', '/admin/usage/by-agent?days=0', { user: admin })).status, 400);
  });

  it('lists outstanding and failed invoices and unresolved meter drift, totals per currency', async () => {
    const sql = db.sql;
    const invoice = (id: string, user: string, status: string, failed: boolean, currency: string, due: number, at: string) => sql.query(
      `insert into public.stripe_invoices (invoice_id, user_id, status, payment_failed, currency, total_cents, amount_due_cents,
         amount_paid_cents, hosted_invoice_url, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, case when $3 = 'paid' then 0 else $6 end, case when $3 = 'paid' then $6 else 0 end,
         'https://invoice.stripe.com/i/' || $1, $7, $7)`, [id, user, status, failed, currency, due, at]);
    await invoice('in_open1', users.a, 'open', false, 'usd', 4900, '2026-05-10T01:00:00Z');
    await invoice('in_failed1', users.b, 'open', true, 'usd', 4910, '2026-05-10T02:00:00Z');
    await invoice('in_paid1', users.d, 'paid', false, 'usd', 12, '2026-05-10T03:00:00Z');
    await invoice('in_eur1', users.c, 'open', false, 'eur', 3000, '2026-05-10T04:00:00Z');

    const outstanding = await asAdmin('GET', '/admin/invoices');
    assert.deepEqual(outstanding.invoices.map((i: Json) => i.invoice_id), ['in_eur1', 'in_failed1', 'in_open1']);
    assert.deepEqual(outstanding.totals.map((t: Json) => [t.currency, t.invoices, t.amount_due_cents]), [['eur', 1, 3000], ['usd', 2, 9810]]);
    const failed = await asAdmin('GET', '/admin/invoices?status=failed');
    assert.deepEqual(failed.invoices.map((i: Json) => [i.invoice_id, i.hosted_invoice_url]), [['in_failed1', 'https://invoice.stripe.com/i/in_failed1']]);
    assert.deepEqual((await asAdmin('GET', '/admin/invoices?status=paid&limit=5')).invoices.map((i: Json) => i.invoice_id), ['in_paid1']);
    assert.equal((await call('GET', '/admin/invoices?status=late', { user: admin })).status, 400);

    const userPlan = (await sql.query<{ id: string }>(`select id from public.user_plans where user_id = $1`, [users.d])).rows[0]!.id;
    await sql.query(
      `insert into public.meter_drift (user_plan_id, period_start, period_end, our_seconds, stripe_seconds, checked_at, resolved_at)
       values ($1, '2026-04-10T00:00:00Z', '2026-05-10T00:00:00Z', 180, 120, '2026-05-11T00:00:00Z', null),
              ($1, '2026-03-10T00:00:00Z', '2026-04-10T00:00:00Z', 60, 0, '2026-04-11T00:00:00Z', '2026-04-12T00:00:00Z')`, [userPlan]);
    const drift = await asAdmin('GET', '/admin/meter-drift');
    assert.deepEqual([drift.unresolved, drift.drift.map((d: Json) => [d.user_id, d.plan_key, d.difference_seconds])],
      [1, [[users.d, 'payg', 60]]]);
    assert.equal((await asAdmin('GET', '/admin/meter-drift?include_resolved=true')).drift.length, 2);
    assert.equal((await call('GET', '/admin/meter-drift?include_resolved=1', { user: admin })).status, 400);
  });

  it("answers the same through Supabase's Data API as through Postgres, jsonb arguments included", async () => {
    const api = createFakePostgrest({ sql: db.sql, apiKeys: [projectKey('service_role')] });
    const overSupabase = new RpcBillingStore(supabaseTransport(createServiceClient({
      url: 'http://supabase.test', serviceRoleKey: projectKey('service_role'), fetch: api.fetch })), clock.now);
    const created = await overSupabase.createPlan({ key: 'over_api', kind: 'payg', name: 'Over the API', ...caps,
      tiers: [{ up_to_seconds: null, cents_per_minute: 1.2345 }] });
    assert.deepEqual([created.plan.version, created.plan.tiers[0]?.cents_per_minute], [1, 1.2345]);
    assert.equal((await overSupabase.revisePlan('over_api', { name: 'Over the API, 2' })).plan.version, 2);
    assert.deepEqual(await overSupabase.listPlans({ includeRetired: true }), await sidecar.store.listPlans({ includeRetired: true }));
    assert.deepEqual(await overSupabase.getUsageCurrent(users.d), await sidecar.store.getUsageCurrent(users.d));
    assert.deepEqual(await overSupabase.getUsageHistory({ userId: users.d, month: '2026-05' }),
      await sidecar.store.getUsageHistory({ userId: users.d, month: '2026-05' }));
    assert.deepEqual(await overSupabase.getMrr(), await sidecar.store.getMrr());
    assert.deepEqual(await overSupabase.listInvoices({ status: 'all' }), await sidecar.store.listInvoices({ status: 'all' }));
    await assert.rejects(overSupabase.retirePlan('no_such_plan'), { code: 'unknown_plan' });
    await assert.rejects(overSupabase.setSpendingCap({ userId: users.d, capCents: 60_000 }), { code: 'invalid_argument' });
  });
});

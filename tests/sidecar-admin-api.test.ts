// The administrators' API through the real HTTP stack: reports over payments made by signed Stripe webhooks
// and calls billed by a test clock, users, the price list and manual adjustments; and who may use it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RpcBillingStore } from '../src/billing/store.ts';
import { createServiceClient, supabaseTransport } from '../src/billing/supabase-transport.ts';
import { createFakePostgrest, projectKey } from './helpers/fake-postgrest.ts';
import { asRole, countRows, createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { charge, checkoutSession, paymentIntent, purchaseIds, startSidecar, stripeEvent, type TestSidecar } from './helpers/sidecar.ts';

type Json = Record<string, any>;

describe('admin API', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  const clock = new TestClock('2026-06-05T12:00:00Z');
  const admin = newUserId();
  // The story the reports tell, written in before(): four buyers, calls on several days.
  const alice = newUserId();
  const bob = newUserId();
  const carol = newUserId();
  const dave = newUserId();   // only a failed payment

  const deliverOk = async (event: Record<string, unknown>) => {
    const response = await sidecar.deliver(event);
    assert.equal(response.status, 200, await response.text());
  };
  const buy = (userId: string, packageId: string, amount: number, ids = purchaseIds()) =>
    deliverOk(stripeEvent('checkout.session.completed', checkoutSession(ids, { userId, packageId, amount })));
  const callFor = async (userId: string, key: string, seconds: number | null) => {
    const started = await sidecar.store.startSession({ userId, externalKey: `${userId}:${key}`, roomName: `room-${key}` });
    if (seconds === null) return;
    clock.advance(seconds);
    await sidecar.store.endSession({ sessionId: started.session_id, reason: 'caller_left' });
  };

  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { clock: clock.now, adminIds: [admin] });
    // 2026-06-05, outside a 7-day window ending 2026-06-15: a purchase, and a credited call.
    await buy(alice, 'starter_1h', 999);
    await sidecar.store.grantCard({ userId: alice, tierId: 'starter_1h', idempotencyKey: `${alice}:grant` });
    await callFor(alice, 'old', 30);
    // 2026-06-12: two purchases, one of them half refunded the next day; alice calls for 125 s (3 minutes billed).
    clock.set('2026-06-12T08:00:00Z');
    await buy(alice, 'basic_5h', 4499);
    const bobs = purchaseIds();
    await buy(bob, 'starter_1h', 999, bobs);
    await callFor(alice, 'june-12', 125);
    clock.set('2026-06-13T08:00:00Z');
    await deliverOk(stripeEvent('charge.refunded', charge(bobs, 999, 500)));
    // 2026-06-14: bob calls for a minute.
    clock.set('2026-06-14T20:00:00Z');
    await callFor(bob, 'june-14', 40);
    // 2026-06-15 (today): carol buys and is on a call right now; dave's payment fails.
    clock.set('2026-06-15T11:00:00Z');
    await buy(carol, 'premium_10h', 7999);
    await callFor(carol, 'now', null);
    await deliverOk(stripeEvent('payment_intent.payment_failed', paymentIntent(purchaseIds(),
      { userId: dave, packageId: 'basic_5h', amount: 4499 }, { status: 'requires_payment_method', last_payment_error: { message: 'declined' } })));
    clock.set('2026-06-15T12:00:00Z');
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const call = async (method: string, path: string, options: { user?: string; admin?: boolean; body?: unknown; headers?: Record<string, string> } = {}) => {
    const token = options.user ? await sidecar.tokenFor(options.user, { admin: options.admin ?? false }) : undefined;
    const response = await sidecar.request(method, path, {
      ...(token && { token }), ...(options.body !== undefined && { body: options.body }), ...(options.headers && { headers: options.headers }) });
    return { status: response.status, body: await response.json() as Json };
  };
  const asAdmin = async (method: string, path: string, body?: unknown, status = 200, headers?: Record<string, string>) => {
    const answer = await call(method, path, { user: admin, body, ...(headers && { headers }) });
    assert.equal(answer.status, status, `${method} ${path}: ${JSON.stringify(answer.body)}`);
    return answer.body;
  };
  const snapshot = async () => Promise.all(['public.voice_sessions', 'public.ledger_entries', 'public.payments',
    'public.time_cards', 'billing_private.operations'].map((t) => countRows(db.sql, t)));
  const tiersSnapshot = async () => (await db.sql.query('select * from public.pricing_tiers order by id')).rows;

  describe('who may use it', () => {
    const routes: [string, string, unknown?][] = [
      ['GET', '/admin/analytics/revenue'], ['GET', '/admin/analytics/usage'], ['GET', '/admin/users'],
      ['GET', `/admin/reports/user/${alice}`], ['GET', '/admin/tiers'], ['GET', '/admin/books'],
      ['POST', '/admin/tiers', { id: 'gate_1h', name: 'Gate', hours: 1, price_cents: 500 }],
      ['PATCH', '/admin/tiers/starter_1h', { price_cents: 1 }],
      ['DELETE', '/admin/tiers/starter_1h'],
      ['POST', `/admin/users/${alice}/adjust`, { seconds: 999_999, reason: 'gift to myself' }],
    ];

    it('answers 401 without a token and 403 to a user who is not an administrator, writing nothing', async () => {
      const before = [await snapshot(), await tiersSnapshot()];
      for (const [method, path, body] of routes) {
        const anonymous = await call(method, path, { body });
        assert.deepEqual([anonymous.status, anonymous.body.error.code], [401, 'unauthorized'], `${method} ${path}`);
        const user = await call(method, path, { user: alice, body });
        assert.deepEqual([user.status, user.body.error.code], [403, 'forbidden'], `${method} ${path}`);
      }
      assert.deepEqual([await snapshot(), await tiersSnapshot()], before);
    });

    it('accepts an administrator named in ADMIN_USER_IDS or carrying the admin role claim', async () => {
      for (const [method, path] of routes.filter(([method]) => method === 'GET')) {
        assert.equal((await call(method, path, { user: admin })).status, 200, `${method} ${path} (ADMIN_USER_IDS)`);
        assert.equal((await call(method, path, { user: newUserId(), admin: true })).status, 200, `${method} ${path} (role claim)`);
      }
    });
  });

  describe('reports', () => {
    it('reports revenue over the last days: paid payments gross, refunds apart, by day and by package', async () => {
      const week = await asAdmin('GET', '/admin/analytics/revenue?days=7');
      assert.deepEqual(
        [week.days, week.since, week.total_revenue_cents, week.refunds_cents, week.net_revenue_cents, week.total_transactions, week.avg_transaction_cents],
        [7, '2026-06-09T00:00:00.000Z', 4499 + 999 + 7999, 500, 4499 + 999 + 7999 - 500, 3, Math.round((4499 + 999 + 7999) / 3)]);
      assert.deepEqual([week.currency, week.currencies], ['usd', [{ currency: 'usd', transactions: 3 }]]);
      assert.equal(week.daily_revenue.length, 7);
      assert.deepEqual(week.daily_revenue[0], { date: '2026-06-09', revenue_cents: 0, refunds_cents: 0, transactions: 0 });
      assert.deepEqual(week.daily_revenue.find((d: Json) => d.date === '2026-06-12'),
        { date: '2026-06-12', revenue_cents: 4499 + 999, refunds_cents: 500, transactions: 2 });
      assert.deepEqual(week.daily_revenue.at(-1), { date: '2026-06-15', revenue_cents: 7999, refunds_cents: 0, transactions: 1 });
      assert.deepEqual(week.package_stats, [
        { package_id: 'premium_10h', name: 'Premium Pack', transactions: 1, revenue_cents: 7999, refunds_cents: 0 },
        { package_id: 'basic_5h', name: 'Basic Pack', transactions: 1, revenue_cents: 4499, refunds_cents: 0 },
        { package_id: 'starter_1h', name: 'Starter Pack', transactions: 1, revenue_cents: 999, refunds_cents: 500 },
      ]);
      const month = await asAdmin('GET', '/admin/analytics/revenue');
      assert.deepEqual([month.days, month.total_transactions, month.total_revenue_cents, month.daily_revenue.length],
        [30, 4, 999 + 4499 + 999 + 7999, 30], 'the failed payment never counts');
      const today = await asAdmin('GET', '/admin/analytics/revenue?days=1');
      assert.deepEqual([today.total_revenue_cents, today.total_transactions, today.daily_revenue.length], [7999, 1, 1]);
    });

    it('reports usage over the last days from billed seconds', async () => {
      const week = await asAdmin('GET', '/admin/analytics/usage?days=7');
      assert.deepEqual(
        [week.active_users, week.total_sessions, week.total_seconds, week.total_hours_used, week.avg_session_minutes, week.active_sessions_now],
        [3, 3, 180 + 60 + 60, Math.round(300 / 36) / 100, Math.round(100 / 60 * 100) / 100, 1]);
      assert.equal(week.daily_usage.length, 7);
      assert.deepEqual(week.daily_usage.find((d: Json) => d.date === '2026-06-12'), { date: '2026-06-12', sessions: 1, active_users: 1, seconds: 180 });
      const month = await asAdmin('GET', '/admin/analytics/usage?days=30');
      assert.deepEqual([month.active_users, month.total_sessions, month.total_seconds], [3, 4, 360]);
    });

    it('lists the users billing knows, most recently active first, with balance and activity', async () => {
      const all = await asAdmin('GET', '/admin/users');
      assert.equal(all.total_users, 4);
      assert.deepEqual(new Set(all.users.map((u: Json) => u.user_id)), new Set([alice, bob, carol, dave]));
      const byId = new Map<string, Json>(all.users.map((u: Json) => [u.user_id, u]));
      const a = byId.get(alice)!;
      assert.deepEqual([a.balance_seconds, a.active_cards, a.total_cards, a.sessions, a.seconds_used, a.purchases, a.spent],
        [3600 + 3600 + 19_800 - 60 - 180, 3, 3, 2, 240, 2, [{ currency: 'usd', cents: 999 + 4499 }]]);
      assert.deepEqual([byId.get(dave)!.balance_seconds, byId.get(dave)!.purchases, byId.get(dave)!.total_cards], [0, 0, 0]);
      assert.deepEqual([byId.get(bob)!.spent, byId.get(carol)!.active_sessions], [[{ currency: 'usd', cents: 499 }], 1]);
      assert.deepEqual(byId.get(dave)!.spent, [], 'a failed payment spent nothing');
      const times = all.users.map((u: Json) => Date.parse(u.last_activity));
      assert.deepEqual(times, [...times].sort((x, y) => y - x), 'most recent first');
      const page = await asAdmin('GET', '/admin/users?limit=2&offset=1');
      assert.deepEqual(page.users.map((u: Json) => u.user_id), all.users.slice(1, 3).map((u: Json) => u.user_id));
      assert.deepEqual([page.total_users, page.limit, page.offset], [4, 2, 1]);
      assert.deepEqual((await asAdmin('GET', '/admin/users?offset=10')).users, []);
    });

    it("reports one user's balance, cards, calls, payments and ledger; 404 for a user billing does not know", async () => {
      const report = await asAdmin('GET', `/admin/reports/user/${alice}`);
      assert.equal(report.user_id, alice);
      assert.equal(report.balance.total_seconds, 3600 + 3600 + 19_800 - 240);
      assert.equal(report.cards.length, 3);
      assert.ok(report.cards.every((c: Json) => !('activation_code' in c)), 'no activation codes in reports');
      assert.deepEqual(report.sessions.map((s: Json) => [s.room_name, s.billed_seconds]), [['room-june-12', 180], ['room-old', 60]]);
      assert.deepEqual(report.payments.map((p: Json) => [p.tier_id, p.amount_cents, p.status]), [['basic_5h', 4499, 'succeeded'], ['starter_1h', 999, 'succeeded']]);
      assert.deepEqual(report.ledger.map((l: Json) => l.kind).sort(), ['grant', 'grant', 'grant', 'usage', 'usage', 'usage'].sort());
      assert.equal(report.ledger.reduce((sum: number, l: Json) => sum + l.seconds, 0), report.balance.total_seconds);
      const unknown = await call('GET', `/admin/reports/user/${newUserId()}`, { user: admin });
      assert.deepEqual([unknown.status, unknown.body.error.code], [404, 'unknown_user']);
      const gifted = await asAdmin('GET', `/admin/reports/user/${dave}`);
      assert.deepEqual([gifted.payments.length, gifted.payments[0].status, gifted.cards.length], [1, 'failed', 0]);
    });
  });

  describe('the price list', () => {
    it('creates, replaces, changes and deactivates a tier, which then leaves the public price list but stays', async () => {
      const created = await asAdmin('POST', '/admin/tiers', {
        id: 'gold_2h', name: 'Gold Pack', description: 'Two golden hours', hours: 2, bonus_seconds: 600, price_cents: 1999,
        currency: 'USD', sort_order: 25, stripe_price_id: 'price_gold123' }, 201);
      assert.deepEqual(created, { created: true, tier: {
        id: 'gold_2h', name: 'Gold Pack', description: 'Two golden hours', base_seconds: 7200, bonus_seconds: 600, total_seconds: 7800,
        price_cents: 1999, currency: 'usd', active: true, sort_order: 25, stripe_price_id: 'price_gold123', version: 1 } });
      const pricing = await (await sidecar.request('GET', '/time/pricing')).json() as Json;
      assert.deepEqual(pricing.pricing_tiers.map((t: Json) => t.id),
        ['starter_1h', 'basic_5h', 'gold_2h', 'premium_10h', 'pro_25h', 'enterprise_50h']);

      const replaced = await asAdmin('POST', '/admin/tiers', { id: 'gold_2h', name: 'Gold Pack', base_seconds: 7200, price_cents: 2499 }, 200);
      assert.deepEqual([replaced.created, replaced.tier.price_cents, replaced.tier.bonus_seconds, replaced.tier.stripe_price_id], [false, 2499, 0, null]);
      assert.equal(replaced.tier.version, 2, 'a new price is a new version of the tier');

      const changed = await asAdmin('PATCH', '/admin/tiers/gold_2h', { price_cents: 2199, hours: 2.5, stripe_price_id: 'price_gold456' });
      assert.deepEqual([changed.tier.price_cents, changed.tier.base_seconds, changed.tier.stripe_price_id, changed.tier.name],
        [2199, 9000, 'price_gold456', 'Gold Pack']);
      const cleared = await asAdmin('PATCH', '/admin/tiers/gold_2h', { stripe_price_id: null, description: '' });
      assert.deepEqual([cleared.tier.stripe_price_id, cleared.tier.description, cleared.tier.price_cents], [null, '', 2199]);
      assert.deepEqual([changed.tier.version, cleared.tier.version], [3, 3], 'what a buyer gets or pays changed once more; a description is no new version');

      // A card sold before a change keeps what it was sold with.
      const buyer = newUserId();
      await sidecar.store.grantCard({ userId: buyer, tierId: 'gold_2h', idempotencyKey: `${buyer}:g` });
      await asAdmin('PATCH', '/admin/tiers/gold_2h', { base_seconds: 60 });
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 9000);

      const removed = await asAdmin('DELETE', '/admin/tiers/gold_2h');
      assert.equal(removed.tier.active, false);
      assert.equal((await asAdmin('DELETE', '/admin/tiers/gold_2h')).tier.active, false, 'deactivating again is a no-op');
      const after = await (await sidecar.request('GET', '/time/pricing')).json() as Json;
      assert.ok(!after.pricing_tiers.some((t: Json) => t.id === 'gold_2h'));
      assert.equal((await db.sql.query(`select 1 from public.pricing_tiers where id = 'gold_2h'`)).rows.length, 1, 'never deleted');
      const listed = await asAdmin('GET', '/admin/tiers');
      assert.equal(listed.pricing_tiers.find((t: Json) => t.id === 'gold_2h').active, false);
      const reactivated = await asAdmin('PATCH', '/admin/tiers/gold_2h', { active: true });
      assert.equal(reactivated.tier.active, true);
      await asAdmin('DELETE', '/admin/tiers/gold_2h');
    });

    it('answers 404 unknown_tier for a tier that does not exist', async () => {
      for (const [method, body] of [['PATCH', { price_cents: 100 }], ['DELETE', undefined]] as const) {
        const answer = await call(method, '/admin/tiers/no_such_tier', { user: admin, body });
        assert.deepEqual([answer.status, answer.body.error.code], [404, 'unknown_tier'], method);
      }
    });

    it('refuses a bad tier with 400 and changes nothing', async () => {
      const before = await tiersSnapshot();
      const valid = { id: 'silver_1h', name: 'Silver', hours: 1, price_cents: 899 };
      const cases: [string, string, unknown][] = [
        ['POST', '/admin/tiers', { ...valid, id: 'Bad-Id' }],
        ['POST', '/admin/tiers', { ...valid, id: 'x' }],
        ['POST', '/admin/tiers', { ...valid, name: '' }],
        ['POST', '/admin/tiers', { ...valid, name: '   ' }],
        ['POST', '/admin/tiers', { id: 'silver_1h', name: 'Silver', price_cents: 899 }],
        ['POST', '/admin/tiers', { ...valid, base_seconds: 3600 }],
        ['POST', '/admin/tiers', { ...valid, hours: 0 }],
        ['POST', '/admin/tiers', { ...valid, hours: 1 / 7 }],
        ['POST', '/admin/tiers', { ...valid, price_cents: 0 }],
        ['POST', '/admin/tiers', { ...valid, price_cents: 9.5 }],
        ['POST', '/admin/tiers', { ...valid, bonus_seconds: -1 }],
        ['POST', '/admin/tiers', { ...valid, currency: 'US' }],
        ['POST', '/admin/tiers', { ...valid, stripe_price_id: 'prod_123' }],
        ['POST', '/admin/tiers', { ...valid, description: 'd'.repeat(501) }],
        ['POST', '/admin/tiers', { ...valid, features: ['x'] }],
        ['POST', '/admin/tiers', { ...valid, active: 'yes' }],
        ['PATCH', '/admin/tiers/starter_1h', {}],
        ['PATCH', '/admin/tiers/starter_1h', { id: 'other_1h' }],
        ['PATCH', '/admin/tiers/starter_1h', { price_cents: -1 }],
        ['PATCH', '/admin/tiers/starter_1h', { hours: 1, base_seconds: 3600 }],
        ['PATCH', '/admin/tiers/starter_1h', { name: null }],
        ['PATCH', '/admin/tiers/Starter', { price_cents: 100 }],
        ['DELETE', '/admin/tiers/a', undefined],
      ];
      for (const [method, path, body] of cases) {
        const answer = await call(method, path, { user: admin, body });
        assert.deepEqual([answer.status, answer.body.error?.code], [400, 'invalid_request'], `${method} ${path} ${JSON.stringify(body)}`);
      }
      assert.deepEqual(await tiersSnapshot(), before);
    });

    it('checks the rules in SQL too, with clear errors, for callers other than the API', async () => {
      const base = { id: 'sql_check', name: 'SQL', baseSeconds: 60, priceCents: 100 };
      await assert.rejects(sidecar.store.upsertPricingTier({ ...base, currency: 'USD' }), { code: 'invalid_argument', message: /three-letter/ });
      await assert.rejects(sidecar.store.upsertPricingTier({ ...base, baseSeconds: 0 }), { code: 'invalid_argument', message: /positive whole number of seconds/ });
      await assert.rejects(sidecar.store.updatePricingTier('starter_1h', { price_cents: 0 }), { code: 'invalid_argument', message: /price/ });
      await assert.rejects(sidecar.store.updatePricingTier('missing_tier', { price_cents: 5 }), { code: 'unknown_tier' });
      await assert.rejects(db.sql.query(`select public.update_pricing_tier('starter_1h', '{"price_cents": "ten"}')`), /price_cents must be a whole number/);
      await assert.rejects(db.sql.query(`select public.update_pricing_tier('starter_1h', '{"colour": "red"}')`), /no field 'colour'/);
      assert.equal((await db.sql.query(`select 1 from public.pricing_tiers where id = 'sql_check'`)).rows.length, 0);
    });
  });

  describe('adjustments', () => {
    it('credits and debits time with a reason and the administrator on the ledger, once per key', async () => {
      const user = newUserId();
      const credit = await asAdmin('POST', `/admin/users/${user}/adjust`, { seconds: 1800, reason: 'support: dropped call', idempotency_key: 'ticket-4711' });
      assert.deepEqual([credit.adjusted_seconds, credit.remaining_seconds, credit.replayed], [1800, 1800, false]);
      const again = await asAdmin('POST', `/admin/users/${user}/adjust`, { seconds: 1800, reason: 'support: dropped call', idempotency_key: 'ticket-4711' });
      assert.deepEqual([again.replayed, again.remaining_seconds], [true, 1800]);
      const debit = await asAdmin('POST', `/admin/users/${user}/adjust`, { seconds: -600, reason: 'double credit' }, 200, { 'idempotency-key': 'ticket-4712' });
      assert.deepEqual([debit.adjusted_seconds, debit.remaining_seconds], [-600, 1200]);
      assert.equal((await sidecar.store.getBalance(user)).total_seconds, 1200);
      const { rows } = await db.sql.query<{ kind: string; seconds: number; reason: string }>(
        'select kind, seconds, reason from public.ledger_entries where user_id = $1 order by id', [user]);
      assert.deepEqual(rows.map((r) => [r.kind, r.seconds]), [['adjustment', 1800], ['adjustment', -600]]);
      assert.equal(rows[0]!.reason, `support: dropped call (by admin ${admin})`);
      const conflict = await call('POST', `/admin/users/${user}/adjust`, { user: admin, body: { seconds: 60, reason: 'other', idempotency_key: 'ticket-4711' } });
      assert.deepEqual([conflict.status, conflict.body.error.code], [409, 'idempotency_conflict']);
      const nobody = await call('POST', `/admin/users/${newUserId()}/adjust`, { user: admin, body: { seconds: -60, reason: 'take some' } });
      assert.deepEqual([nobody.status, nobody.body.error.code], [404, 'unknown_user']);
      assert.deepEqual(await ledgerMismatches(db.sql), []);
    });

    it('refuses bad input with 400 and writes nothing', async () => {
      const before = await snapshot();
      const cases: [string, unknown, Record<string, string>?][] = [
        [`/admin/users/${alice}/adjust`, { seconds: 0, reason: 'nothing at all' }],
        [`/admin/users/${alice}/adjust`, { seconds: 1.5, reason: 'a fraction' }],
        [`/admin/users/${alice}/adjust`, { seconds: '60', reason: 'a string' }],
        [`/admin/users/${alice}/adjust`, { seconds: 3_000_000_000, reason: 'too much' }],
        [`/admin/users/${alice}/adjust`, { seconds: 60 }],
        [`/admin/users/${alice}/adjust`, { seconds: 60, reason: 'ab' }],
        [`/admin/users/${alice}/adjust`, { seconds: 60, reason: 'fine', card_id: 'x' }],
        [`/admin/users/${alice}/adjust`, { seconds: 60, reason: 'fine', idempotency_key: 'short' }],
        [`/admin/users/${alice}/adjust`, { seconds: 60, reason: 'fine' }, { 'idempotency-key': 'bad key with spaces' }],
        ['/admin/users/not-a-user/adjust', { seconds: 60, reason: 'fine' }],
      ];
      for (const [path, body, headers] of cases) {
        const answer = await call('POST', path, { user: admin, body, ...(headers && { headers }) });
        assert.deepEqual([answer.status, answer.body.error?.code], [400, 'invalid_request'], `${path} ${JSON.stringify(body)}`);
      }
      for (const path of ['/admin/analytics/revenue?days=0', '/admin/analytics/revenue?days=367', '/admin/analytics/revenue?days=abc',
        '/admin/analytics/usage?days=-3', '/admin/analytics/usage?days=7&extra=1', '/admin/users?limit=501', '/admin/users?limit=0',
        '/admin/users?offset=-1', '/admin/reports/user/123', '/admin/reports/user/' + alice + '?full=1']) {
        const answer = await call('GET', path, { user: admin });
        assert.deepEqual([answer.status, answer.body.error?.code], [400, 'invalid_request'], path);
      }
      assert.deepEqual(await snapshot(), before);
    });
  });

  describe('the SQL functions behind it', () => {
    it("are the service role's alone: users and anon may call none of them", async () => {
      const calls = [
        `select public.get_user_sessions('${alice}')`, `select public.get_user_payments('${alice}')`,
        `select public.get_user_monthly_usage('${alice}')`, `select public.get_user_analytics('${alice}')`,
        `select public.end_client_session('${alice}', 'client:${alice}:x', 10)`, `select public.meter_client_session('${alice}', 'k')`,
        'select public.get_revenue_report()', 'select public.get_usage_report()', 'select public.list_billing_users()',
        `select public.get_user_report('${alice}')`, `select public.upsert_pricing_tier('free_1h', 'Free', 3600, 1)`,
        `select public.update_pricing_tier('starter_1h', '{"price_cents": 1}')`, `select public.deactivate_pricing_tier('starter_1h')`,
      ];
      for (const role of ['authenticated', 'anon'] as const) {
        for (const sql of calls) {
          await assert.rejects(asRole(db.sql, role, { sub: alice }, (tx) => tx.query(sql)), /permission denied/, `${role}: ${sql}`);
        }
      }
    });

    it("answer the same through Supabase's Data API as through Postgres", async () => {
      const api = createFakePostgrest({ sql: db.sql, apiKeys: [projectKey('service_role')] });
      const overSupabase = new RpcBillingStore(supabaseTransport(createServiceClient({
        url: 'http://supabase.test', serviceRoleKey: projectKey('service_role'), fetch: api.fetch })), clock.now);
      assert.deepEqual(await overSupabase.getUserReport(alice), await sidecar.store.getUserReport(alice));
      assert.deepEqual(await overSupabase.getRevenueReport({ days: 7 }), await sidecar.store.getRevenueReport({ days: 7 }));
      assert.deepEqual(await overSupabase.getUserAnalytics({ userId: bob }), await sidecar.store.getUserAnalytics({ userId: bob }));
      assert.deepEqual(await overSupabase.getMonthlyUsage({ userId: alice, month: '2026-06' }),
        await sidecar.store.getMonthlyUsage({ userId: alice, month: '2026-06' }));
      await assert.rejects(overSupabase.updatePricingTier('missing_tier', { active: false }), { code: 'unknown_tier' });
      await assert.rejects(overSupabase.endClientSession({ userId: bob, clientSessionId: 'nope', claimedSeconds: 1 }), { code: 'unknown_session' });
    });
  });
});

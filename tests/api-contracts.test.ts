// The client API's answers against their contracts (src/shared/api-contracts.ts), through the real sidecar:
// each answer must parse, and parse to itself (zod drops keys a schema does not name, so an answer with a
// field the contract lacks fails too). The web app reads these answers with the same schemas.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { z } from 'zod';
import * as Api from '../src/shared/api-contracts.ts';
import * as Admin from '../src/shared/admin-contracts.ts';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { checkoutSession, purchaseIds, startSidecar, stripeEvent, type TestSidecar } from './helpers/sidecar.ts';
import { startFakeStripe, type FakeStripe } from './helpers/fake-stripe.ts';
import { startFakeStripeBilling, type FakeBilling } from './helpers/fake-stripe-billing.ts';
import { syncStripeCatalogue } from '../src/payments/stripe-sync.ts';
import { WEBHOOK_SECRET } from './helpers/sidecar.ts';

/** The answer exactly as the contract declares it: no field missing, mistyped or extra. */
function assertContract(schema: z.ZodType, body: unknown, what: string): void {
  const parsed = schema.safeParse(body);
  assert.ok(parsed.success, `${what}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
  assert.deepEqual(parsed.data, body, `${what}: the answer has fields its contract does not declare`);
}

describe('API response contracts', () => {
  let db: TestDatabase;
  let fake: FakeStripe;
  let sidecar: TestSidecar;
  const admin = newUserId();

  before(async () => {
    db = await createPostgresDatabase();
    fake = await startFakeStripe();
    sidecar = await startSidecar(db, { stripe: fake.client({ maxNetworkRetries: 1 }), web: false, adminIds: [admin] });
  });
  after(async () => {
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  const answer = async (method: string, path: string, user: string, body?: unknown, headers?: Record<string, string>) => {
    const response = await sidecar.request(method, path, {
      token: await sidecar.tokenFor(user, { admin: user === admin }), ...(body !== undefined && { body }), ...(headers && { headers }) });
    const json: unknown = await response.json();
    assert.ok([200, 201, 202].includes(response.status), `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    return json;
  };

  /** A call of one minute for the user, so the reports have a session and its usage. */
  const oneCall = async (call: typeof answer, user: string) => {
    await call('POST', '/time/session/start', user, { session_id: 'admin-contract-call', room_name: 'r' });
    await call('POST', '/time/session/end', user, { session_id: 'admin-contract-call', duration_seconds: 20 });
  };

  it('every answer the web app reads matches its contract exactly', async () => {
    const buyer = newUserId();
    const friend = newUserId();
    const check = async (schema: z.ZodType, method: string, path: string, user = buyer, body?: unknown, headers?: Record<string, string>) => {
      const json = await answer(method, path, user, body, headers);
      assertContract(schema, json, `${method} ${path}`);
      return json as Record<string, any>;
    };

    await check(Api.PricingResponse, 'GET', '/time/pricing');
    const pending = purchaseIds();
    assert.deepEqual(await check(Api.CheckoutPurchaseResponse, 'GET', `/time/purchase/checkout/${pending.sessionId}`), { found: false });
    const checkout = await check(Api.PurchaseResponse, 'POST', '/time/purchase', buyer, { package_id: 'starter_1h' }, { 'idempotency-key': `contract-${buyer}` });
    assert.equal(checkout.kind, 'checkout');
    const intent = await check(Api.PurchaseResponse, 'POST', '/time/purchase', buyer,
      { package_id: 'starter_1h', payment_method_id: 'pm_card_visa' }, { 'idempotency-key': `contract-pi-${buyer}` });
    assert.equal(intent.kind, 'payment_intent');

    // A card for the buyer and a gift, both landed through signed webhooks.
    const own = purchaseIds();
    const gift = purchaseIds();
    for (const [ids, isGift] of [[own, false], [gift, true]] as const) {
      const delivered = await sidecar.deliver(stripeEvent('checkout.session.completed',
        checkoutSession(ids, { userId: buyer, packageId: 'starter_1h', amount: 999, gift: isGift })));
      assert.equal(delivered.status, 200);
    }
    const landed = await check(Api.CheckoutPurchaseResponse, 'GET', `/time/purchase/checkout/${own.sessionId}`);
    assert.equal(landed.found, true);
    const landedGift = await check(Api.CheckoutPurchaseResponse, 'GET', `/time/purchase/checkout/${gift.sessionId}`);
    const gifts = await check(Api.GiftsResponse, 'GET', '/time/gifts');
    assert.equal(gifts.gifts.length, 1);
    const activated = await check(Api.ActivateResponse, 'POST', '/time/activate', friend, { activation_code: landedGift.card.activation_code });
    assert.equal(activated.card.total_seconds, 3600);

    const balance = await check(Api.BalanceResponse, 'GET', '/time/balance');
    assert.equal(balance.cards.length, 1);
    await check(Api.BalanceResponse, 'GET', `/user/${buyer}/balance`);
    await check(Api.PaymentsResponse, 'GET', '/payments');

    const started = await check(Api.ClientSessionResponse, 'POST', '/time/session/start', buyer, { session_id: 'contract-call', room_name: 'r' });
    assert.equal(started.status, 'active');
    await check(Api.ClientSessionResponse, 'POST', '/time/session/heartbeat', buyer, { session_id: 'contract-call' });
    await check(Api.ClientSessionResponse, 'POST', '/time/session/end', buyer, { session_id: 'contract-call', duration_seconds: 30 });
    const sessions = await check(Api.SessionsResponse, 'GET', '/time/sessions');
    assert.equal(sessions.sessions.length, 1);
    await check(Api.UsageCallsResponse, 'GET', '/api/usage/calls');
    const usage = await check(Api.UsageCurrentResponse, 'GET', '/api/usage/current');
    assert.equal(usage.billing, 'prepaid');
    await check(Api.UsageHistoryResponse, 'GET', '/api/usage/history?month=2026-01');
    const plans = await check(Api.PlansResponse, 'GET', '/api/plans');
    assert.deepEqual(plans.plans.map((p: { kind: string }) => p.kind), ['prepaid', 'payg', 'tiered', 'subscription']);
    assert.deepEqual(await check(Api.CurrentPlanResponse, 'GET', '/api/plans/current'), { plan: null, invoices: [] });
    assert.deepEqual(await check(Api.InvoicesResponse, 'GET', '/api/invoices'), { invoices: [] });
    await check(Api.AnalyticsResponse, 'GET', `/user/${buyer}/analytics?months=2`);
    const token = await check(Api.CallTokenResponse, 'POST', '/token', buyer, {});
    assert.equal(token.identity, buyer);
  });

  it('every answer the admin pages read parses with its contract', async () => {
    // The admin answers are SQL reports passed through: the contracts declare what the pages read, so an
    // answer must parse (a field missing or mistyped fails), and extra report fields are allowed.
    const read = async (schema: z.ZodType, method: string, path: string, body?: unknown) => {
      const json = await answer(method, path, admin, body);
      const parsed = schema.safeParse(json);
      assert.ok(parsed.success, `${method} ${path}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
      return json as Record<string, any>;
    };
    const user = newUserId();
    const ids = purchaseIds();
    assert.equal((await sidecar.deliver(stripeEvent('checkout.session.completed',
      checkoutSession(ids, { userId: user, packageId: 'starter_1h', amount: 999 })))).status, 200);
    // An event no retry can apply: acknowledged, and listed for an administrator.
    assert.equal((await sidecar.deliver(stripeEvent('checkout.session.completed',
      { ...checkoutSession(purchaseIds(), { userId: user, packageId: 'starter_1h', amount: 999 }), metadata: {}, client_reference_id: null }))).status, 200);
    await oneCall(answer, user);

    await read(Admin.RevenueReport, 'GET', '/admin/analytics/revenue?days=30');
    await read(Admin.UsageReport, 'GET', '/admin/analytics/usage?days=30');
    const users = await read(Admin.BillingUserList, 'GET', '/admin/users?limit=50&offset=0');
    assert.ok(users.users.length >= 1);
    const report = await read(Admin.UserReport, 'GET', `/admin/reports/user/${user}`);
    assert.equal(report.payments.length, 1);
    assert.ok(report.sessions.length >= 1 && report.ledger.length >= 2, 'the report has a call and its ledger rows');
    await read(Admin.RefundQuote, 'GET', `/admin/payments/${report.payments[0].payment_id}`);
    const attention = await read(Admin.AttentionList, 'GET', '/admin/attention?limit=50');
    assert.ok(attention.items.length >= 1);
    await read(Admin.Books, 'GET', '/admin/books');
    await read(Admin.PricingTierList, 'GET', '/admin/tiers');
    const tierId = `contract_${Date.now().toString(36)}`;
    await read(Admin.TierWrite, 'POST', '/admin/tiers', { id: tierId, name: 'Contract', hours: 1, price_cents: 100 });
    await read(Admin.TierWrite, 'PATCH', `/admin/tiers/${tierId}`, { price_cents: 200 });
    await read(Admin.TierWrite, 'DELETE', `/admin/tiers/${tierId}`);
    await read(Admin.Adjustment, 'POST', `/admin/users/${user}/adjust`, { seconds: 60, reason: 'contract test' });
  });

  it('a contract refuses an answer with a field missing, mistyped or undeclared', () => {
    const balance = {
      user_id: 'u', total_minutes: 1, total_seconds: 60, card_count: 0, next_expiry: null, cards: [],
    };
    assertContract(Api.BalanceResponse, balance, 'a good balance');
    assert.equal(Api.BalanceResponse.safeParse({ ...balance, total_seconds: '60' }).success, false);
    assert.equal(Api.BalanceResponse.safeParse({ ...balance, next_expiry: 'tomorrow' }).success, false);
    const { card_count: _, ...missing } = balance;
    assert.equal(Api.BalanceResponse.safeParse(missing).success, false);
    assert.throws(() => assertContract(Api.BalanceResponse, { ...balance, secret: 1 }, 'an extra field'),
      /fields its contract does not declare/);
  });
});

describe('API response contracts of postpaid plans', () => {
  let db: TestDatabase;
  let fake: FakeStripe & { billing: FakeBilling };
  let sidecar: TestSidecar;

  before(async () => {
    db = await createPostgresDatabase();
    fake = await startFakeStripeBilling({ billing: { startTime: Date.UTC(2026, 0, 31, 12) / 1000 } });
    const stripe = fake.client({ maxNetworkRetries: 0 });
    sidecar = await startSidecar(db, { stripe, web: false });
    fake.billing.setWebhookEndpoint({ url: `${sidecar.url}/webhooks/stripe`, secret: WEBHOOK_SECRET, timeoutMs: 10_000 });
    await syncStripeCatalogue(stripe, sidecar.store);
  });
  after(async () => {
    await sidecar?.close();
    await fake?.close();
    await db?.close();
  });

  it('every answer of the plan, usage, invoice and portal routes matches its contract exactly', async () => {
    const caller = newUserId();
    const check = async (schema: z.ZodType, method: string, path: string, body?: unknown) => {
      const response = await sidecar.request(method, path, { token: await sidecar.tokenFor(caller), ...(body !== undefined && { body }) });
      const json: unknown = await response.json();
      assert.equal(response.status, 200, `${method} ${path}: ${JSON.stringify(json)}`);
      assertContract(schema, json, `${method} ${path}`);
      return json as Record<string, any>;
    };
    const started = await check(Api.PlanCheckoutResponse, 'POST', '/api/plans/pro_monthly/subscribe', {});
    const pending = await check(Api.CurrentPlanResponse, 'GET', '/api/plans/current');
    assert.equal(pending.plan.status, 'pending');
    fake.billing.completeSubscriptionCheckout(started.checkout_session_id);
    for (const delivery of await fake.billing.deliver()) assert.equal(delivery.status, 200, delivery.body);

    const current = await check(Api.CurrentPlanResponse, 'GET', '/api/plans/current');
    assert.deepEqual([current.plan.plan_key, current.plan.plan_kind, current.plan.status], ['pro_monthly', 'subscription', 'active']);
    assert.equal(current.invoices.length, 1);
    const invoices = await check(Api.InvoicesResponse, 'GET', '/api/invoices?limit=5');
    assert.deepEqual(invoices.invoices, current.invoices);
    assert.match(invoices.invoices[0].hosted_invoice_url, /^https:\/\/invoice\.stripe\.com\//);
    const usage = await check(Api.UsageCurrentResponse, 'GET', '/api/usage/current');
    assert.deepEqual([usage.billing, usage.plan.key, usage.fee_cents, usage.lines.length], ['postpaid', 'pro_monthly', 4900, 1]);
    const capped = await check(Api.UsageCurrentResponse, 'PUT', '/api/usage/cap', { cap_cents: 2500 });
    assert.equal(capped.cap_cents, 2500);
    await check(Api.UsageHistoryResponse, 'GET', '/api/usage/history?month=2026-01');
    const portal = await check(Api.BillingPortalResponse, 'POST', '/api/billing/portal', {});
    assert.match(portal.url, /^https:\/\/billing\.stripe\.com\//);
    const down = await check(Api.PlanChangeResponse, 'POST', '/api/plans/payg/change', {});
    assert.deepEqual([down.direction, down.effective], ['downgrade', 'period_end']);
    const cancel = await check(Api.PlanCancelResponse, 'POST', '/api/plans/cancel', {});
    assert.equal(cancel.ends_at, current.plan.current_period_end);
  });

  it('GET /api/invoices answers each caller only their own, and refuses a bad limit or no token', async () => {
    const stranger = newUserId();
    const mine = await sidecar.request('GET', '/api/invoices', { token: await sidecar.tokenFor(stranger) });
    assert.deepEqual([mine.status, await mine.json()], [200, { invoices: [] }]);
    for (const query of ['?limit=0', '?limit=101', '?limit=x', '?user_id=someone']) {
      const refused = await sidecar.request('GET', `/api/invoices${query}`, { token: await sidecar.tokenFor(stranger) });
      assert.equal(refused.status, 400, query);
      assert.equal(typeof ((await refused.json()) as { error: { message: unknown } }).error.message, 'string');
    }
    assert.equal((await sidecar.request('GET', '/api/invoices')).status, 401);
  });
});

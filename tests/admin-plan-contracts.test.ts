// The plan administration answers (src/sidecar/plan-admin-routes.ts) against their contracts in
// src/shared/admin-contracts.ts, through the real sidecar, with a row in every list: each answer must parse and
// parse to itself (zod drops keys a schema does not name, so a field the contract lacks fails too). The admin
// page reads these answers with the same schemas.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { z } from 'zod';
import * as Admin from '../src/shared/admin-contracts.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { charge, endedCall, planId, subscribe } from './helpers/plan-fixtures.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function assertContract(schema: z.ZodType, body: unknown, what: string): void {
  const parsed = schema.safeParse(body);
  assert.ok(parsed.success, `${what}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues)}`);
  assert.deepEqual(parsed.data, body, `${what}: the answer has fields its contract does not declare`);
}

describe('plan administration answers against their contracts', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  const clock = new TestClock('2026-05-20T12:00:00Z');
  const admin = newUserId();

  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { clock: clock.now, adminIds: [admin] });
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const check = async (schema: z.ZodType, method: string, path: string, body?: unknown): Promise<Json> => {
    const response = await sidecar.request(method, path, { token: await sidecar.tokenFor(admin), ...(body !== undefined && { body }) });
    const json: unknown = await response.json();
    assert.ok([200, 201].includes(response.status), `${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
    assertContract(schema, json, `${method} ${path}`);
    return json as Json;
  };

  it('every plan admin answer matches its contract exactly, with rows in every list', async () => {
    const caps = { default_cap_cents: 5000, max_cap_cents: 20_000 };
    const created = await check(Admin.PlanWrite, 'POST', '/admin/plans', { key: 'contract_tiers', kind: 'tiered', name: 'Contract',
      ...caps, tiers: [{ up_to_minutes: 100, cents_per_minute: 6 }, { cents_per_minute: 3 }] });
    assert.equal(created.retired, undefined);
    const revised = await check(Admin.PlanWrite, 'POST', '/admin/plans/contract_tiers/versions', { name: 'Contract 2' });
    assert.deepEqual([revised.plan.version, revised.retired.version, revised.retired.status], [2, 1, 'retired']);
    const retired = await check(Admin.PlanWrite, 'POST', '/admin/plans/contract_tiers/retire');
    assert.equal(retired.retired, true);
    const plans = await check(Admin.AdminPlanList, 'GET', '/admin/plans');
    // Prepaid plans have packs, postpaid ones tiers: both shapes are in the list.
    assert.ok(plans.plans.some((p: Json) => p.packs !== null) && plans.plans.some((p: Json) => p.packs === null));

    const user = newUserId();
    const payg = await planId(db.sql, 'payg');
    const userPlan = await subscribe(db.sql, { userId: user, planId: payg, start: '2026-05-10T00:00:00Z', end: '2026-06-10T00:00:00Z' });
    // A subscriber of the monthly plan, for MRR.
    await subscribe(db.sql, { userId: newUserId(), planId: await planId(db.sql, 'pro_monthly'), start: '2026-05-10T00:00:00Z', end: '2026-06-10T00:00:00Z' });
    const call = await endedCall(db.sql, { userId: user, at: '2026-05-19T10:00:00Z', billedSeconds: 120, agentName: 'juana' });
    await charge(db.sql, { userId: user, userPlanId: userPlan, planId: payg, sessionId: call, periodStart: '2026-05-10T00:00:00Z',
      at: '2026-05-19T10:02:00Z', ratedSeconds: 120, amountExact: '10', billedBefore: 0 });
    await db.sql.query(
      `insert into public.stripe_invoices (invoice_id, user_id, user_plan_id, status, payment_failed, currency, total_cents,
         amount_due_cents, amount_paid_cents, hosted_invoice_url, period_start, period_end, created_at, updated_at)
       values ('in_contract', $1, $2, 'open', true, 'usd', 10, 10, 0, 'https://invoice.stripe.com/i/in_contract',
               '2026-04-10T00:00:00Z', '2026-05-10T00:00:00Z', '2026-05-10T01:00:00Z', '2026-05-10T01:00:00Z')`, [user, userPlan]);
    await db.sql.query(
      `insert into public.meter_drift (user_plan_id, period_start, period_end, our_seconds, stripe_seconds, checked_at)
       values ($1, '2026-04-10T00:00:00Z', '2026-05-10T00:00:00Z', 180, 120, '2026-05-11T00:00:00Z')`, [userPlan]);

    assert.equal((await check(Admin.PlanSubscribers, 'GET', '/admin/plans/subscribers')).subscribers.length, 2);
    assert.equal((await check(Admin.Mrr, 'GET', '/admin/mrr')).currencies.length, 1);
    assert.equal((await check(Admin.UsageByPlan, 'GET', '/admin/usage/by-plan?days=30')).plans.length, 1);
    assert.equal((await check(Admin.UsageByAgent, 'GET', '/admin/usage/by-agent?days=30')).agents.length, 1);
    const failed = await check(Admin.InvoiceList, 'GET', '/admin/invoices?status=failed');
    assert.deepEqual(failed.invoices.map((i: Json) => i.invoice_id), ['in_contract']);
    assert.equal((await check(Admin.MeterDriftList, 'GET', '/admin/meter-drift')).unresolved, 1);
    const books = await check(Admin.Books.required({ postpaid: true }), 'GET', '/admin/books');
    assert.equal(books.postpaid.lines.lines, 1);
  });

  it('the plan contract refuses a plan with a field missing or mistyped', async () => {
    const plan = (await check(Admin.AdminPlanList, 'GET', '/admin/plans')).plans[0] as Json;
    assert.equal(Admin.AdminPlan.safeParse({ ...plan, kind: 'flat' }).success, false);
    assert.equal(Admin.AdminPlan.safeParse({ ...plan, monthly_fee_cents: 1.5 }).success, false);
    const { stripe_product_id: _, ...missing } = plan;
    assert.equal(Admin.AdminPlan.safeParse(missing).success, false);
  });
});

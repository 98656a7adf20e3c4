// Usage in the caller's plan terms (seed 003's /api/usage/current and /history, grown with the plan, the
// period, included minutes, the cost so far as the invoice will say it, the spending cap and the account's
// status), the spending cap, and the public list of plans. The rules and sums are SQL functions
// (migrations/018_plan_admin_usage.sql); handlers authenticate, validate and shape.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Plan, UsageCurrent, UsageHistory } from '../billing/plan-types.ts';
import { minutes, type RouteDeps } from './client-routes.ts';

const NoQuery = z.strictObject({});
const MonthQuery = z.strictObject({
  month: z.string().regex(/^[12]\d{3}-(0[1-9]|1[0-2])$/, 'a month written YYYY-MM, like 2026-01'),
});
const CapBody = z.strictObject({ cap_cents: z.number().int().positive().max(2_147_483_647) });

/** Cents (possibly fractional) as major units to the given decimals. */
const major = (cents: number, decimals: number) => Math.round((cents / 100) * 10 ** decimals) / 10 ** decimals;
/** Fractional cents to hundredths, as 004's month totals show them. */
const hundredths = (cents: number) => Math.round(cents * 100) / 100;

/** A plan as callers compare them: rates per minute and per hour, included minutes, packs per hour. */
export function planView(plan: Plan, options: { admin?: boolean } = {}) {
  return {
    plan_id: plan.plan_id,
    key: plan.key,
    version: plan.version,
    kind: plan.kind,
    name: plan.name,
    description: plan.description,
    currency: plan.currency,
    status: plan.status,
    sort_order: plan.sort_order,
    monthly_fee_cents: plan.monthly_fee_cents,
    included_seconds: plan.included_seconds,
    included_minutes: minutes(plan.included_seconds),
    default_cap_cents: plan.default_cap_cents,
    max_cap_cents: plan.max_cap_cents,
    tiers: plan.tiers.map((t) => ({
      position: t.position,
      up_to_seconds: t.up_to_seconds,
      up_to_minutes: t.up_to_seconds === null ? null : minutes(t.up_to_seconds),
      cents_per_minute: t.cents_per_minute,
      cents_per_hour: t.cents_per_hour,
    })),
    packs: plan.packs,
    price_per_hour: plan.price_per_hour,
    created_at: plan.created_at.toISOString(),
    retired_at: plan.retired_at?.toISOString() ?? null,
    ...(options.admin && {
      stripe_product_id: plan.stripe_product_id,
      stripe_fee_price_id: plan.stripe_fee_price_id,
      stripe_usage_price_id: plan.stripe_usage_price_id,
    }),
  };
}

/** Seed 003's current month, in the plan's terms. */
export function usageCurrentView(usage: UsageCurrent) {
  return {
    month: usage.month,
    total_calls: usage.total_calls,
    total_minutes: minutes(usage.total_seconds),
    total_seconds: usage.total_seconds,
    total_cost_usd: major(usage.total_cost_cents, 2),
    total_cost_cents: hundredths(usage.total_cost_cents),
    billing: usage.billing,
    plan: usage.plan && planView(usage.plan),
    status: usage.status,
    suspended_reason: usage.suspended_reason,
    hosted_invoice_url: usage.hosted_invoice_url,
    cancel_at_period_end: usage.cancel_at_period_end,
    period_start: usage.period_start.toISOString(),
    period_end: usage.period_end.toISOString(),
    card_seconds: usage.card_seconds,
    included_seconds: usage.included_seconds,
    included_seconds_used: usage.included_seconds_used,
    included_seconds_left: usage.included_seconds_left,
    included_minutes_left: Math.floor(usage.included_seconds_left / 60),
    rated_seconds: usage.rated_seconds,
    currency: usage.currency,
    usage_exact_cents: usage.usage_exact_cents,
    usage_cents: usage.usage_cents,
    fee_cents: usage.fee_cents,
    plan_cost_cents: usage.plan_cost_cents,
    prepaid_cost_cents: usage.prepaid_cost_cents,
    lines: usage.lines,
    cap_cents: usage.cap_cents,
    cap_used_cents: usage.cap_used_cents,
    cap_left_cents: usage.cap_left_cents,
    max_cap_cents: usage.max_cap_cents,
    balance_seconds: usage.balance_seconds,
    balance_minutes: Math.floor(usage.balance_seconds / 60),
  };
}

/** Seed 003's month, in the plan's terms, with its days. */
export function usageHistoryView(usage: UsageHistory) {
  return {
    month: usage.month,
    total_calls: usage.total_calls,
    total_minutes: minutes(usage.total_seconds),
    total_seconds: usage.total_seconds,
    total_cost_usd: major(usage.total_cost_cents, 2),
    total_cost_cents: hundredths(usage.total_cost_cents),
    card_seconds: usage.card_seconds,
    usage_exact_cents: usage.usage_exact_cents,
    usage_cents: usage.usage_cents,
    fee_cents: usage.fee_cents,
    fees: usage.fees.map((f) => ({ ...f, period_start: f.period_start.toISOString() })),
    plan_cost_cents: usage.plan_cost_cents,
    prepaid_cost_cents: usage.prepaid_cost_cents,
    days: usage.days.map((d) => ({ ...d, minutes: minutes(d.seconds) })),
  };
}

export function registerUsageRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { store, principal, input } = deps;

  // The offer, for anyone (the plan picker): no token needed.
  app.get('/api/plans', async (request) => {
    input(NoQuery, request.query);
    return { plans: (await store.listPlans()).plans.map((p) => planView(p)) };
  });

  app.get('/api/usage/current', async (request) => {
    const who = await principal(request);
    input(NoQuery, request.query);
    return usageCurrentView(await store.getUsageCurrent(who.userId));
  });

  app.get('/api/usage/history', async (request) => {
    const who = await principal(request);
    const { month } = input(MonthQuery, request.query);
    return usageHistoryView(await store.getUsageHistory({ userId: who.userId, month }));
  });

  app.put('/api/usage/cap', async (request) => {
    const who = await principal(request);
    const body = input(CapBody, request.body);
    const usage = await store.setSpendingCap({ userId: who.userId, capCents: body.cap_cents });
    request.log.info({ userId: who.userId, capCents: body.cap_cents }, 'spending cap set');
    return usageCurrentView(usage);
  });
}

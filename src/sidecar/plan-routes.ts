// The caller's postpaid plan: subscribe through Checkout, change, cancel, the billing portal, and what the plan
// is now with its invoices. Stripe's part is in src/payments/subscriptions.ts; the rules in migrations/020.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type Stripe from 'stripe';
import { z } from 'zod';
import type { InvoiceRecord, UserPlan } from '../billing/subscription-types.ts';
import type * as Api from '../shared/api-contracts.ts';
import { cancelPlan, changePlan, openBillingPortal, subscribeToPlan, type SubscriptionDeps } from '../payments/subscriptions.ts';
import type { RouteDeps } from './client-routes.ts';

const PlanKeyParam = z.strictObject({ key: z.string().regex(/^[a-z][a-z0-9_]{1,39}$/, 'a plan key of lowercase letters, digits and _') });
const IdempotencyKey = z.string().regex(/^[\w-]{8,100}$/, 'an Idempotency-Key of 8 to 100 letters, digits, _ or -');
const EmptyBody = z.strictObject({}).optional();
const InvoicesQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(100).optional() });

const iso = (date: Date | null) => date?.toISOString() ?? null;

export function userPlanView(plan: UserPlan): Api.UserPlanView {
  return {
    user_plan_id: plan.id,
    plan_key: plan.plan.key,
    plan_version: plan.plan.version,
    plan_kind: planKind(plan.plan.kind),
    plan_name: plan.plan.name,
    status: plan.status,
    current_period_start: iso(plan.current_period_start),
    current_period_end: iso(plan.current_period_end),
    cancel_at_period_end: plan.cancel_at_period_end,
    scheduled_plan_key: plan.scheduled_plan_key,
    spending_cap_cents: plan.spending_cap_cents,
    suspended_reason: plan.suspended_reason,
    suspended_invoice_id: plan.suspended_invoice_id,
    suspended_invoice_url: plan.suspended_invoice_url,
    ended_at: iso(plan.ended_at),
  };
}

/** The database checks a plan's kind; a kind the API does not know is a server bug, not a caller's. */
function planKind(kind: string): Api.PlanKind {
  if (kind === 'prepaid' || kind === 'payg' || kind === 'tiered' || kind === 'subscription') return kind;
  throw new Error(`unknown plan kind ${JSON.stringify(kind)}`);
}

export function invoiceView(i: InvoiceRecord): Api.InvoiceView {
  return {
    invoice_id: i.invoice_id, status: i.status, payment_failed: i.payment_failed, currency: i.currency,
    total_cents: i.total_cents, amount_due_cents: i.amount_due_cents, amount_paid_cents: i.amount_paid_cents,
    hosted_invoice_url: i.hosted_invoice_url, period_start: iso(i.period_start), period_end: iso(i.period_end),
    created_at: i.created_at.toISOString(),
  };
}

export function registerPlanRoutes(app: FastifyInstance, deps: RouteDeps & { stripe: Stripe | null; successUrl: string; cancelUrl: string }): void {
  const { store, principal, input } = deps;
  const subscriptionDeps = (request: FastifyRequest): SubscriptionDeps => ({
    store, stripe: deps.stripe, successUrl: deps.successUrl, cancelUrl: deps.cancelUrl, log: request.log as Logger,
  });
  const idempotencyKey = (request: FastifyRequest) => {
    const header = request.headers['idempotency-key'];
    return header === undefined ? randomUUID() : input(IdempotencyKey, header);
  };

  app.get('/api/plans/current', async (request): Promise<Api.CurrentPlanResponse> => {
    const who = await principal(request);
    const plan = await store.getUserPlan(who.userId);
    const invoices = await store.listUserInvoices({ userId: who.userId });
    return { plan: plan && userPlanView(plan), invoices: invoices.map(invoiceView) };
  });

  // The caller's own Stripe invoices, newest first, with Stripe's hosted pages (public.get_user_invoices, 020).
  app.get('/api/invoices', async (request): Promise<Api.InvoicesResponse> => {
    const who = await principal(request);
    const { limit } = input(InvoicesQuery, request.query);
    const invoices = await store.listUserInvoices({ userId: who.userId, ...(limit !== undefined && { limit }) });
    return { invoices: invoices.map(invoiceView) };
  });

  app.post('/api/plans/:key/subscribe', async (request): Promise<Api.PlanCheckoutResponse> => {
    const who = await principal(request);
    const { key } = input(PlanKeyParam, request.params);
    input(EmptyBody, request.body);
    const result = await subscribeToPlan(subscriptionDeps(request), { userId: who.userId, planKey: key, idempotencyKey: idempotencyKey(request) });
    request.log.info({ userId: who.userId, planKey: key, checkoutSessionId: result.checkout_session_id }, 'plan checkout started');
    return result;
  });

  app.post('/api/plans/:key/change', async (request): Promise<Api.PlanChangeResponse> => {
    const who = await principal(request);
    const { key } = input(PlanKeyParam, request.params);
    input(EmptyBody, request.body);
    const result = await changePlan(subscriptionDeps(request), { userId: who.userId, planKey: key, idempotencyKey: idempotencyKey(request) });
    request.log.info({ userId: who.userId, planKey: key, direction: result.direction }, 'plan change requested');
    return result;
  });

  app.post('/api/plans/cancel', async (request): Promise<Api.PlanCancelResponse> => {
    const who = await principal(request);
    input(EmptyBody, request.body);
    return cancelPlan(subscriptionDeps(request), { userId: who.userId });
  });

  app.post('/api/billing/portal', async (request): Promise<Api.BillingPortalResponse> => {
    const who = await principal(request);
    input(EmptyBody, request.body);
    return openBillingPortal(subscriptionDeps(request), { userId: who.userId, returnUrl: deps.cancelUrl });
  });
}

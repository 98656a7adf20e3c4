// The administrators' API over plans and postpaid billing: plans (create, edit as a new version, retire), who
// is on which plan, MRR, usage by plan and by agent, Stripe invoices and meter drift. Same auth as
// admin-routes.ts: 401 without a token, 403 unless an administrator. The rules are SQL functions
// (migrations/018_plan_admin_usage.sql); handlers authenticate, validate and shape.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Principal } from '../auth/verify-token.ts';
import { INVOICE_FILTERS, type Plan, type PlanChanges, type PlanDefinition, type PlanWrite } from '../billing/plan-types.ts';
import type * as Admin from '../shared/admin-contracts.ts';
import { queryInt, type RouteDeps } from './client-routes.ts';
import { HttpError } from './http-errors.ts';
import { planView } from './usage-routes.ts';

const MAX_SECONDS = 2_000_000_000;
const PlanKey = z.string().regex(/^[a-z][a-z0-9_]{1,39}$/, 'a plan key of 2 to 40 lower-case letters, digits or _, like pro_monthly');
const PlanKeyParam = z.strictObject({ key: PlanKey });
const NoQuery = z.strictObject({});
const flag = z.enum(['true', 'false']).transform((v) => v === 'true');

// Minutes or seconds, never both: an administrator thinks in minutes, Stripe's tiers count seconds.
const tierBody = z.strictObject({
  up_to_seconds: z.number().int().positive().max(MAX_SECONDS).nullable().optional(),
  up_to_minutes: z.number().int().positive().max(MAX_SECONDS / 60).nullable().optional(),
  cents_per_minute: z.number().min(0).max(99_999_999.9999),
}).refine((t) => t.up_to_seconds == null || t.up_to_minutes == null, { message: 'give up_to_seconds or up_to_minutes, not both' });
const planFields = {
  name: z.string().trim().min(1).max(80),
  description: z.string().max(500),
  currency: z.string().regex(/^[A-Za-z]{3}$/, 'a three-letter ISO currency code, like usd').transform((c) => c.toLowerCase()),
  monthly_fee_cents: z.number().int().min(0).max(100_000_000),
  included_seconds: z.number().int().min(0).max(MAX_SECONDS),
  included_minutes: z.number().int().min(0).max(MAX_SECONDS / 60),
  default_cap_cents: z.number().int().positive().max(100_000_000).nullable(),
  max_cap_cents: z.number().int().positive().max(100_000_000).nullable(),
  sort_order: z.number().int().min(-1_000_000).max(1_000_000),
  tiers: z.array(tierBody).min(1).max(20),
};
const notBoth = (p: { included_seconds?: number | undefined; included_minutes?: number | undefined }) =>
  p.included_seconds === undefined || p.included_minutes === undefined;
const CreatePlanBody = z.strictObject({
  key: PlanKey,
  kind: z.enum(['prepaid', 'payg', 'tiered', 'subscription']),
  name: planFields.name,
  description: planFields.description.optional(),
  currency: planFields.currency.optional(),
  monthly_fee_cents: planFields.monthly_fee_cents.optional(),
  included_seconds: planFields.included_seconds.optional(),
  included_minutes: planFields.included_minutes.optional(),
  default_cap_cents: planFields.default_cap_cents.optional(),
  max_cap_cents: planFields.max_cap_cents.optional(),
  sort_order: planFields.sort_order.optional(),
  tiers: planFields.tiers.optional(),
}).refine(notBoth, { message: 'give included_seconds or included_minutes, not both', path: ['included_minutes'] });
const RevisePlanBody = z.strictObject({
  name: planFields.name.optional(),
  description: planFields.description.optional(),
  currency: planFields.currency.optional(),
  monthly_fee_cents: planFields.monthly_fee_cents.optional(),
  included_seconds: planFields.included_seconds.optional(),
  included_minutes: planFields.included_minutes.optional(),
  default_cap_cents: planFields.default_cap_cents.optional(),
  max_cap_cents: planFields.max_cap_cents.optional(),
  sort_order: planFields.sort_order.optional(),
  tiers: planFields.tiers.optional(),
})
  .refine(notBoth, { message: 'give included_seconds or included_minutes, not both', path: ['included_minutes'] })
  .refine((p) => Object.values(p).some((v) => v !== undefined), { message: 'nothing to change' });

const PlansQuery = z.strictObject({ include_retired: flag.default(true) });
const SubscribersQuery = z.strictObject({
  plan: PlanKey.optional(), limit: queryInt(1, 1000, 100), offset: queryInt(0, 1_000_000_000, 0),
});
const DaysQuery = z.strictObject({ days: queryInt(1, 366, 30) });
const InvoicesQuery = z.strictObject({ status: z.enum(INVOICE_FILTERS).default('outstanding'), limit: queryInt(1, 1000, 100) });
const DriftQuery = z.strictObject({ include_resolved: flag.default(false), limit: queryInt(1, 1000, 100) });

type PlanBody = z.infer<typeof RevisePlanBody>;

/** The body's fields in the SQL function's terms (seconds), leaving out what was not given. */
function planFieldsOf(body: PlanBody): PlanChanges {
  const changes: PlanChanges = {};
  if (body.name !== undefined) changes.name = body.name;
  if (body.description !== undefined) changes.description = body.description;
  if (body.currency !== undefined) changes.currency = body.currency;
  if (body.monthly_fee_cents !== undefined) changes.monthly_fee_cents = body.monthly_fee_cents;
  const included = body.included_seconds ?? (body.included_minutes === undefined ? undefined : body.included_minutes * 60);
  if (included !== undefined) changes.included_seconds = included;
  if (body.default_cap_cents !== undefined) changes.default_cap_cents = body.default_cap_cents;
  if (body.max_cap_cents !== undefined) changes.max_cap_cents = body.max_cap_cents;
  if (body.sort_order !== undefined) changes.sort_order = body.sort_order;
  if (body.tiers !== undefined) {
    changes.tiers = body.tiers.map((t) => ({
      up_to_seconds: t.up_to_seconds ?? (t.up_to_minutes == null ? null : t.up_to_minutes * 60),
      cents_per_minute: t.cents_per_minute,
    }));
  }
  return changes;
}

/** A plan as administrators see it: the public view and its Stripe ids. */
const adminPlanView = (plan: Plan): Admin.AdminPlan => ({
  ...planView(plan),
  stripe_product_id: plan.stripe_product_id,
  stripe_fee_price_id: plan.stripe_fee_price_id,
  stripe_usage_price_id: plan.stripe_usage_price_id,
});

const writeView = (result: PlanWrite): Admin.PlanWrite => ({
  plan: adminPlanView(result.plan),
  ...(typeof result.retired === 'object' && { retired: adminPlanView(result.retired) }),
  ...(typeof result.retired === 'boolean' && { retired: result.retired }),
});

/** An SQL report as JSON carries it: its timestamps as ISO strings (what the contracts declare). */
type Wire<T> = T extends Date ? string : T extends readonly (infer U)[] ? Wire<U>[] : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;
function wire<T>(value: T): Wire<T> {
  if (value instanceof Date) return value.toISOString() as Wire<T>;
  if (Array.isArray(value)) return value.map(wire) as Wire<T>;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, wire(v)])) as Wire<T>;
  }
  return value as Wire<T>;
}

export function registerPlanAdminRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { store, principal, input } = deps;
  const admin = async (request: FastifyRequest): Promise<Principal> => {
    const who = await principal(request);
    if (!who.isAdmin) throw new HttpError(403, 'forbidden', 'administrators only');
    return who;
  };

  app.get('/admin/plans', async (request): Promise<Admin.AdminPlanList> => {
    await admin(request);
    const { include_retired } = input(PlansQuery, request.query);
    return { plans: (await store.listPlans({ includeRetired: include_retired })).plans.map(adminPlanView) };
  });

  app.post('/admin/plans', async (request, reply) => {
    const who = await admin(request);
    const body = input(CreatePlanBody, request.body);
    const definition: PlanDefinition = { key: body.key, kind: body.kind, name: body.name, ...planFieldsOf(body) };
    const result = await store.createPlan(definition);
    request.log.info({ adminId: who.userId, planKey: result.plan.key, version: result.plan.version }, 'plan created');
    return reply.status(201).send(writeView(result));
  });

  // An edit is a new version: the offered one is retired with it, and its subscribers keep it.
  app.post('/admin/plans/:key/versions', async (request, reply) => {
    const who = await admin(request);
    const { key } = input(PlanKeyParam, request.params);
    const body = input(RevisePlanBody, request.body);
    const result = await store.revisePlan(key, planFieldsOf(body));
    request.log.info({ adminId: who.userId, planKey: key, version: result.plan.version }, 'plan revised');
    return reply.status(201).send(writeView(result));
  });

  app.post('/admin/plans/:key/retire', async (request): Promise<Admin.PlanWrite> => {
    const who = await admin(request);
    const { key } = input(PlanKeyParam, request.params);
    const result = await store.retirePlan(key);
    request.log.info({ adminId: who.userId, planKey: key, retired: result.retired }, 'plan retired');
    return writeView(result);
  });

  app.get('/admin/plans/subscribers', async (request): Promise<Admin.PlanSubscribers> => {
    await admin(request);
    const { plan, limit, offset } = input(SubscribersQuery, request.query);
    return wire(await store.listPlanSubscribers({ planKey: plan, limit, offset }));
  });

  app.get('/admin/mrr', async (request): Promise<Admin.Mrr> => {
    await admin(request);
    input(NoQuery, request.query);
    return wire(await store.getMrr());
  });

  app.get('/admin/usage/by-plan', async (request): Promise<Admin.UsageByPlan> => {
    await admin(request);
    const { days } = input(DaysQuery, request.query);
    return wire(await store.getUsageByPlan({ days }));
  });

  app.get('/admin/usage/by-agent', async (request): Promise<Admin.UsageByAgent> => {
    await admin(request);
    const { days } = input(DaysQuery, request.query);
    return wire(await store.getUsageByAgent({ days }));
  });

  app.get('/admin/invoices', async (request): Promise<Admin.InvoiceList> => {
    await admin(request);
    const { status, limit } = input(InvoicesQuery, request.query);
    return wire(await store.listInvoices({ status, limit }));
  });

  app.get('/admin/meter-drift', async (request): Promise<Admin.MeterDriftList> => {
    await admin(request);
    const { include_resolved, limit } = input(DriftQuery, request.query);
    return wire(await store.listMeterDrift({ includeResolved: include_resolved, limit }));
  });
}

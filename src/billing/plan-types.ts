import { z } from 'zod';

// The shapes the plan and usage SQL functions answer with (migrations/018_plan_admin_usage.sql). Amounts
// are integer cents except where named *_exact_* or cents_per_*: those are exact decimals of a cent (at
// most 4 places shown) that are never charged as such (docs/plans.md: the one rounding rule).

const timestamp = z.string().transform((value, ctx) => {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a timestamp: ${value}` });
    return z.NEVER;
  }
  return date;
});
const cents = z.number().int();
const decimalCents = z.number();
const count = z.number().int();
const currency = z.string().regex(/^[a-z]{3}$/);
const planKind = z.enum(['prepaid', 'payg', 'tiered', 'subscription']);

export const PlanTierSchema = z.object({
  position: count,
  up_to_seconds: count.nullable(),
  cents_per_minute: decimalCents,
  cents_per_second: decimalCents,
  cents_per_hour: decimalCents,
});

export const PlanSchema = z.object({
  plan_id: z.string(),
  key: z.string(),
  version: count,
  kind: planKind,
  name: z.string(),
  description: z.string(),
  currency,
  monthly_fee_cents: cents,
  included_seconds: count,
  default_cap_cents: cents.nullable(),
  max_cap_cents: cents.nullable(),
  status: z.enum(['active', 'retired']),
  sort_order: count,
  stripe_product_id: z.string().nullable(),
  stripe_fee_price_id: z.string().nullable(),
  stripe_usage_price_id: z.string().nullable(),
  created_at: timestamp,
  retired_at: timestamp.nullable(),
  tiers: z.array(PlanTierSchema),
  /** A prepaid plan's packs, each with its price per hour; null for a postpaid plan. */
  packs: z.array(z.object({
    package_id: z.string(), name: z.string(), price_cents: cents, currency, total_seconds: count, cents_per_hour: decimalCents,
  })).nullable(),
  price_per_hour: z.object({
    rate_cents_per_hour: decimalCents.nullable(),
    included_cents_per_hour: decimalCents.nullable(),
    cheapest_pack_cents_per_hour: decimalCents.nullable(),
  }),
});
export type Plan = z.infer<typeof PlanSchema>;

export const PlanListSchema = z.object({ plans: z.array(PlanSchema) });
export type PlanList = z.infer<typeof PlanListSchema>;

export const PlanWriteSchema = z.object({
  plan: PlanSchema,
  /** The version a revision retired. */
  retired: z.union([PlanSchema, z.boolean()]).optional(),
  created: z.boolean().optional(),
});
export type PlanWrite = z.infer<typeof PlanWriteSchema>;

/** A plan as an administrator defines it (create_plan); the SQL function checks every rule of its kind. */
export interface PlanDefinition {
  key: string;
  kind: 'prepaid' | 'payg' | 'tiered' | 'subscription';
  name: string;
  description?: string | undefined;
  currency?: string | undefined;
  monthly_fee_cents?: number | undefined;
  included_seconds?: number | undefined;
  default_cap_cents?: number | null | undefined;
  max_cap_cents?: number | null | undefined;
  sort_order?: number | undefined;
  tiers?: { up_to_seconds: number | null; cents_per_minute: number }[] | undefined;
}
export type PlanChanges = Partial<Omit<PlanDefinition, 'key' | 'kind'>>;

const InvoiceLineSchema = z.object({
  kind: z.enum(['usage', 'fee']),
  plan_key: z.string(),
  plan_version: count,
  currency,
  included_seconds: count.optional(),
  rated_seconds: count.optional(),
  amount_exact: decimalCents.optional(),
  amount_cents: cents,
});

export const UsageCurrentSchema = z.object({
  user_id: z.string(),
  billing: z.enum(['prepaid', 'postpaid']),
  plan: PlanSchema.nullable(),
  status: z.enum(['pending', 'active', 'suspended']),
  suspended_reason: z.string().nullable(),
  hosted_invoice_url: z.string().nullable(),
  cancel_at_period_end: z.boolean(),
  month: z.string().regex(/^\d{4}-\d{2}$/),
  period_start: timestamp,
  period_end: timestamp,
  total_calls: count,
  total_seconds: count,
  card_seconds: count,
  included_seconds: count,
  included_seconds_used: count,
  included_seconds_left: count,
  rated_seconds: count,
  usage_exact_cents: decimalCents,
  usage_cents: cents,
  fee_cents: cents,
  plan_cost_cents: cents,
  prepaid_cost_cents: decimalCents,
  total_cost_cents: decimalCents,
  currency,
  lines: z.array(InvoiceLineSchema),
  cap_cents: cents.nullable(),
  cap_used_cents: cents.nullable(),
  cap_left_cents: cents.nullable(),
  max_cap_cents: cents.nullable(),
  balance_seconds: count,
});
export type UsageCurrent = z.infer<typeof UsageCurrentSchema>;

export const UsageHistorySchema = z.object({
  user_id: z.string(),
  month: z.string().regex(/^\d{4}-\d{2}$/),
  total_calls: count,
  total_seconds: count,
  card_seconds: count,
  usage_exact_cents: decimalCents,
  usage_cents: cents,
  fee_cents: cents,
  fees: z.array(z.object({ plan_key: z.string(), plan_version: count, period_start: timestamp, currency, amount_cents: cents })),
  plan_cost_cents: cents,
  prepaid_cost_cents: decimalCents,
  total_cost_cents: decimalCents,
  days: z.array(z.object({
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    calls: count,
    seconds: count,
    included_seconds: count,
    rated_seconds: count,
    usage_exact_cents: decimalCents,
  })),
});
export type UsageHistory = z.infer<typeof UsageHistorySchema>;

export const PlanSubscribersSchema = z.object({
  total: count,
  limit: count,
  offset: count,
  by_plan: z.array(z.object({
    plan_key: z.string(), plan_version: count, kind: planKind, currency, pending: count, active: count, suspended: count,
  })),
  subscribers: z.array(z.object({
    user_id: z.string(),
    user_plan_id: z.string(),
    plan_key: z.string(),
    plan_version: count,
    plan_name: z.string(),
    kind: planKind,
    status: z.enum(['pending', 'active', 'suspended']),
    current_period_start: timestamp.nullable(),
    current_period_end: timestamp.nullable(),
    spending_cap_cents: cents,
    cancel_at_period_end: z.boolean(),
    scheduled_plan_key: z.string().nullable(),
    stripe_subscription_id: z.string().nullable(),
    created_at: timestamp,
  })),
});
export type PlanSubscribers = z.infer<typeof PlanSubscribersSchema>;

export const MrrSchema = z.object({
  generated_at: timestamp,
  currencies: z.array(z.object({
    currency,
    subscriptions: count,
    subscription_fees_cents: cents,
    usage_users: count,
    usage_last_period_cents: cents,
    mrr_cents: cents,
  })),
});
export type Mrr = z.infer<typeof MrrSchema>;

const window = { days: count, since: timestamp, until: timestamp };

export const UsageByPlanSchema = z.object({
  ...window,
  plans: z.array(z.object({
    plan_key: z.string(), plan_version: count, kind: planKind, currency, users: count, calls: count,
    included_seconds: count, rated_seconds: count, amount_exact_cents: decimalCents, amount_cents: cents,
  })),
  prepaid: z.object({ users: count, calls: count, card_seconds: count }),
});
export type UsageByPlan = z.infer<typeof UsageByPlanSchema>;

export const UsageByAgentSchema = z.object({
  ...window,
  agents: z.array(z.object({
    agent_name: z.string(), calls: count, users: count, seconds: count, included_seconds: count, rated_seconds: count,
    plan_amounts: z.array(z.object({ currency, amount_exact_cents: decimalCents })),
  })),
});
export type UsageByAgent = z.infer<typeof UsageByAgentSchema>;

export const INVOICE_FILTERS = ['outstanding', 'failed', 'paid', 'void', 'uncollectible', 'all'] as const;
export type InvoiceFilter = (typeof INVOICE_FILTERS)[number];

export const InvoiceListSchema = z.object({
  status: z.enum(INVOICE_FILTERS),
  totals: z.array(z.object({
    currency, invoices: count, total_cents: cents, amount_due_cents: cents, amount_paid_cents: cents,
  })),
  invoices: z.array(z.object({
    invoice_id: z.string(),
    user_id: z.string(),
    user_plan_id: z.string().nullable(),
    stripe_subscription_id: z.string().nullable(),
    status: z.enum(['draft', 'open', 'paid', 'uncollectible', 'void']),
    payment_failed: z.boolean(),
    currency,
    total_cents: cents,
    amount_due_cents: cents,
    amount_paid_cents: cents,
    hosted_invoice_url: z.string().nullable(),
    period_start: timestamp.nullable(),
    period_end: timestamp.nullable(),
    created_at: timestamp,
    updated_at: timestamp,
  })),
});
export type InvoiceList = z.infer<typeof InvoiceListSchema>;

export const MeterDriftListSchema = z.object({
  unresolved: count,
  drift: z.array(z.object({
    id: count,
    user_id: z.string(),
    user_plan_id: z.string(),
    plan_key: z.string(),
    plan_version: count,
    period_start: timestamp,
    period_end: timestamp,
    our_seconds: count,
    stripe_seconds: count,
    difference_seconds: count,
    checked_at: timestamp,
    resolved_at: timestamp.nullable(),
  })),
});
export type MeterDriftList = z.infer<typeof MeterDriftListSchema>;

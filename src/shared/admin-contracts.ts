// The admin API's answers as the browser reads them. src/sidecar/admin-routes.ts passes the SQL reports of
// migrations/004_reports.sql and 010_books.sql through (their server-side shapes: src/billing/types.ts, with
// Date where these have ISO strings); these declare the part the admin pages read, and the pages parse every
// answer with them. Objects are not strict: the reports carry more than the pages show.
import { z } from 'zod';
import { CardSource, CardStatus, PaymentStatus, SessionStatus } from './api-contracts.ts';

const timestamp = z.string();
const int = z.number().int();

/** GET /admin/analytics/revenue?days=&currency= (every figure in the one currency named) */
export const RevenueReport = z.object({
  days: int,
  since: timestamp,
  until: timestamp,
  currency: z.string(),
  /** The currencies paid in over the period, the most used first. */
  currencies: z.array(z.object({ currency: z.string(), transactions: int })),
  total_revenue_cents: int,
  refunds_cents: int,
  net_revenue_cents: int,
  total_transactions: int,
  avg_transaction_cents: z.number(),
  daily_revenue: z.array(z.object({ date: z.string(), revenue_cents: int, refunds_cents: int, transactions: int })),
  package_stats: z.array(z.object({
    package_id: z.string().nullable(), name: z.string().nullable(), transactions: int, revenue_cents: int, refunds_cents: int,
  })),
});
export type RevenueReport = z.infer<typeof RevenueReport>;

/** GET /admin/analytics/usage?days= */
export const UsageReport = z.object({
  days: int,
  since: timestamp,
  until: timestamp,
  active_users: int,
  total_sessions: int,
  total_seconds: int,
  total_hours_used: z.number(),
  avg_session_minutes: z.number(),
  active_sessions_now: int,
  daily_usage: z.array(z.object({ date: z.string(), sessions: int, active_users: int, seconds: int })),
});
export type UsageReport = z.infer<typeof UsageReport>;

/** GET /admin/users?limit=&offset= */
export const BillingUserList = z.object({
  total_users: int,
  limit: int,
  offset: int,
  users: z.array(z.object({
    user_id: z.string(),
    balance_seconds: int,
    active_cards: int,
    total_cards: int,
    sessions: int,
    active_sessions: int,
    seconds_used: int,
    purchases: int,
    /** Per currency: cents of different currencies are never added together. */
    spent: z.array(z.object({ currency: z.string(), cents: int })),
    last_activity: timestamp.nullable(),
  })),
});
export type BillingUserList = z.infer<typeof BillingUserList>;

export const PaymentRecord = z.object({
  payment_id: z.string(),
  tier_id: z.string().nullable(),
  gift: z.boolean(),
  amount_cents: int,
  currency: z.string(),
  status: PaymentStatus,
  refunded_cents: int,
  card_id: z.string().nullable(),
  failure_reason: z.string().nullable(),
  created_at: timestamp,
});
export type PaymentRecord = z.infer<typeof PaymentRecord>;

/** GET /admin/reports/user/:id */
export const UserReport = z.object({
  user_id: z.string(),
  generated_at: timestamp,
  balance: z.object({ user_id: z.string(), total_seconds: int, card_count: int, next_expiry: timestamp.nullable() }),
  cards: z.array(z.object({
    card_id: z.string(),
    tier_id: z.string().nullable(),
    source: CardSource,
    status: CardStatus,
    total_seconds: int,
    remaining_seconds: int,
    activated_at: timestamp.nullable(),
    expires_at: timestamp,
    payment_id: z.string().nullable(),
    note: z.string().nullable(),
    created_at: timestamp,
  })),
  sessions: z.array(z.object({
    session_id: z.string(),
    room_name: z.string(),
    status: SessionStatus,
    started_at: timestamp,
    ended_at: timestamp.nullable(),
    end_reason: z.string().nullable(),
    billed_seconds: int,
    /** Until now for a call still open. */
    duration_seconds: int,
    cost_cents: z.number(),
  })),
  payments: z.array(PaymentRecord),
  ledger: z.array(z.object({
    id: int,
    card_id: z.string(),
    kind: z.enum(['grant', 'usage', 'expiry', 'refund', 'revoke', 'restore', 'adjustment']),
    seconds: int,
    remaining_before: int,
    remaining_after: int,
    reason: z.string().nullable(),
    created_at: timestamp,
  })),
});
export type UserReport = z.infer<typeof UserReport>;

/** One row of GET /admin/tiers (inactive tiers included). */
export const PricingTier = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  base_seconds: int,
  bonus_seconds: int,
  total_seconds: int,
  price_cents: int,
  currency: z.string(),
  active: z.boolean(),
  sort_order: int,
  stripe_price_id: z.string().nullable(),
});
export type PricingTier = z.infer<typeof PricingTier>;

/** GET /admin/tiers */
export const PricingTierList = z.object({ pricing_tiers: z.array(PricingTier) });
export type PricingTierList = z.infer<typeof PricingTierList>;

/** POST /admin/tiers, PATCH and DELETE /admin/tiers/:id */
export const TierWrite = z.object({ tier: PricingTier, created: z.boolean() });
export type TierWrite = z.infer<typeof TierWrite>;

/** POST /admin/users/:id/adjust */
export const Adjustment = z.object({
  user_id: z.string(),
  adjusted_seconds: int,
  shortfall_seconds: int,
  card_id: z.string().nullable(),
  remaining_seconds: int,
  replayed: z.boolean(),
});
export type Adjustment = z.infer<typeof Adjustment>;

/** POST /admin/payments/:id/refund (202) */
export const RefundAnswer = z.object({
  refund_id: z.string(),
  status: z.string().nullable(),
  payment_id: z.string(),
  amount_cents: int,
  note: z.string(),
});
export type RefundAnswer = z.infer<typeof RefundAnswer>;

/** GET /admin/attention: Stripe events that can never apply, acknowledged to Stripe and kept here. */
export const AttentionList = z.object({
  total: int,
  items: z.array(z.object({
    id: int,
    event_id: z.string(),
    event_type: z.string(),
    code: z.string(),
    message: z.string(),
    payment_id: z.string().nullable(),
    user_id: z.string().nullable(),
    object_id: z.string().nullable(),
    created_at: timestamp,
  })),
});
export type AttentionList = z.infer<typeof AttentionList>;

/** GET /admin/payments/:id: what a refund of the payment may give back. */
export const RefundQuote = z.object({
  payment_id: z.string(),
  user_id: z.string().nullable(),
  status: z.string(),
  currency: z.string(),
  amount_cents: int,
  refunded_cents: int,
  /** Everything not refunded yet. */
  refundable_cents: int,
  /** The money of the card's unused time: a refund up to this needs no override. */
  unused_refundable_cents: int,
  card_total_seconds: int.nullable(),
  card_unused_seconds: int.nullable(),
  refundable_through_stripe: z.boolean(),
});
export type RefundQuote = z.infer<typeof RefundQuote>;

export const SecondsFigures = z.object({
  currency: z.string().nullable().optional(),
  cards: int,
  granted_seconds: int,
  adjusted_seconds: int,
  used_seconds: int,
  expired_seconds: int,
  refunded_seconds: int,
  revoked_seconds: int,
  restored_seconds: int,
  outstanding_seconds: int,
  spendable_seconds: int,
  pending_gift_seconds: int,
  awaiting_expiry_seconds: int,
  unusable_seconds: int,
  difference_seconds: int,
  ok: z.boolean(),
});
export type SecondsFigures = z.infer<typeof SecondsFigures>;

/** GET /admin/books (migrations/010_books.sql) */
export const Books = z.object({
  generated_at: timestamp,
  ok: z.boolean(),
  seconds: z.object({ ok: z.boolean(), cards_out_of_step: int, total: SecondsFigures, by_currency: z.array(SecondsFigures) }),
  cents: z.object({
    ok: z.boolean(),
    by_currency: z.array(z.object({
      currency: z.string(),
      payments: int,
      received_cents: int,
      refunded_cents: int,
      kept_cents: int,
      disputed_cents: int,
      refunded_unpaid_cents: int,
      difference_cents: int,
      ok: z.boolean(),
    })),
  }),
  /**
   * Postpaid identities (migrations/017_postpaid_metering.sql): each call's billed seconds are its card usage
   * plus its plan's seconds; every usage charge has its one meter event; every invoice line is priced through
   * its plan's tiers. Absent from a database older than 017.
   */
  postpaid: z.object({
    ok: z.boolean(),
    sessions: z.object({ billed_seconds: int, card_seconds: int, plan_seconds: int, sessions_out_of_step: int }),
    meter_events: z.object({ charges: int, events: int, charges_without_event: int }),
    lines: z.object({
      lines: int,
      rated_seconds: int,
      /** Exact cents, as a decimal string (never rounded: the rounding is per line, at invoicing). */
      amount_exact: z.string(),
      lines_mispriced: int,
      /** Lines above the user's cap of today (a cap lowered mid-period): reported, not a fault of the books. */
      lines_over_cap: int,
    }),
  }).optional(),
});
export type Books = z.infer<typeof Books>;

// ---------- plans and postpaid billing (src/sidecar/plan-admin-routes.ts, migrations/018_plan_admin_usage.sql) ----------
// Declared whole: the plan routes shape their answers themselves, so the contract test checks them exactly.

export const PlanKind = z.enum(['prepaid', 'payg', 'tiered', 'subscription']);
export type PlanKind = z.infer<typeof PlanKind>;
const currency = z.string();
/** Exact decimals of a cent (at most 4 places), never charged as such: docs/plans.md's one rounding rule. */
const decimalCents = z.number();

/** A plan version as administrators see it: the public plan view plus its Stripe ids. */
export const AdminPlan = z.object({
  plan_id: z.string(),
  key: z.string(),
  version: int,
  kind: PlanKind,
  name: z.string(),
  description: z.string(),
  currency,
  status: z.enum(['active', 'retired']),
  sort_order: int,
  monthly_fee_cents: int,
  included_seconds: int,
  included_minutes: z.number(),
  default_cap_cents: int.nullable(),
  max_cap_cents: int.nullable(),
  /** Graduated by the period's seconds; the last tier (up_to_seconds null) prices the rest. */
  tiers: z.array(z.object({
    position: int,
    up_to_seconds: int.nullable(),
    up_to_minutes: z.number().nullable(),
    cents_per_minute: decimalCents,
    cents_per_hour: decimalCents,
  })),
  /** A prepaid plan's packs; null for a postpaid plan. */
  packs: z.array(z.object({
    package_id: z.string(), name: z.string(), price_cents: int, currency, total_seconds: int, cents_per_hour: decimalCents,
  })).nullable(),
  price_per_hour: z.object({
    rate_cents_per_hour: decimalCents.nullable(),
    included_cents_per_hour: decimalCents.nullable(),
    cheapest_pack_cents_per_hour: decimalCents.nullable(),
  }),
  created_at: timestamp,
  retired_at: timestamp.nullable(),
  stripe_product_id: z.string().nullable(),
  stripe_fee_price_id: z.string().nullable(),
  stripe_usage_price_id: z.string().nullable(),
});
export type AdminPlan = z.infer<typeof AdminPlan>;

/** GET /admin/plans?include_retired= (newest version first within a key) */
export const AdminPlanList = z.object({ plans: z.array(AdminPlan) });
export type AdminPlanList = z.infer<typeof AdminPlanList>;

/**
 * POST /admin/plans (201), POST /admin/plans/:key/versions (201: retired is the version it replaced),
 * POST /admin/plans/:key/retire (retired: false when it was retired already).
 */
export const PlanWrite = z.object({ plan: AdminPlan, retired: z.union([AdminPlan, z.boolean()]).optional() });
export type PlanWrite = z.infer<typeof PlanWrite>;

const subscriptionStatus = z.enum(['pending', 'active', 'suspended']);

/** GET /admin/plans/subscribers?plan=&limit=&offset= */
export const PlanSubscribers = z.object({
  total: int,
  limit: int,
  offset: int,
  by_plan: z.array(z.object({
    plan_key: z.string(), plan_version: int, kind: PlanKind, currency, pending: int, active: int, suspended: int,
  })),
  subscribers: z.array(z.object({
    user_id: z.string(),
    user_plan_id: z.string(),
    plan_key: z.string(),
    plan_version: int,
    plan_name: z.string(),
    kind: PlanKind,
    status: subscriptionStatus,
    current_period_start: timestamp.nullable(),
    current_period_end: timestamp.nullable(),
    spending_cap_cents: int,
    cancel_at_period_end: z.boolean(),
    scheduled_plan_key: z.string().nullable(),
    stripe_subscription_id: z.string().nullable(),
    created_at: timestamp,
  })),
});
export type PlanSubscribers = z.infer<typeof PlanSubscribers>;

/** GET /admin/mrr: one row per currency, never added across currencies. */
export const Mrr = z.object({
  generated_at: timestamp,
  currencies: z.array(z.object({
    currency,
    subscriptions: int,
    subscription_fees_cents: int,
    usage_users: int,
    usage_last_period_cents: int,
    mrr_cents: int,
  })),
});
export type Mrr = z.infer<typeof Mrr>;

/** GET /admin/usage/by-plan?days= */
export const UsageByPlan = z.object({
  days: int,
  since: timestamp,
  until: timestamp,
  plans: z.array(z.object({
    plan_key: z.string(), plan_version: int, kind: PlanKind, currency, users: int, calls: int,
    included_seconds: int, rated_seconds: int, amount_exact_cents: decimalCents, amount_cents: int,
  })),
  prepaid: z.object({ users: int, calls: int, card_seconds: int }),
});
export type UsageByPlan = z.infer<typeof UsageByPlan>;

/** GET /admin/usage/by-agent?days=: an agent's plan money per currency. */
export const UsageByAgent = z.object({
  days: int,
  since: timestamp,
  until: timestamp,
  agents: z.array(z.object({
    agent_name: z.string(), calls: int, users: int, seconds: int, included_seconds: int, rated_seconds: int,
    plan_amounts: z.array(z.object({ currency, amount_exact_cents: decimalCents })),
  })),
});
export type UsageByAgent = z.infer<typeof UsageByAgent>;

export const INVOICE_FILTERS = ['outstanding', 'failed', 'paid', 'void', 'uncollectible', 'all'] as const;
export const InvoiceFilter = z.enum(INVOICE_FILTERS);
export type InvoiceFilter = z.infer<typeof InvoiceFilter>;

/** GET /admin/invoices?status=&limit=: Stripe's invoices as its webhooks told them, totals per currency. */
export const InvoiceList = z.object({
  status: InvoiceFilter,
  totals: z.array(z.object({ currency, invoices: int, total_cents: int, amount_due_cents: int, amount_paid_cents: int })),
  invoices: z.array(z.object({
    invoice_id: z.string(),
    user_id: z.string(),
    user_plan_id: z.string().nullable(),
    stripe_subscription_id: z.string().nullable(),
    status: z.enum(['draft', 'open', 'paid', 'uncollectible', 'void']),
    payment_failed: z.boolean(),
    currency,
    total_cents: int,
    amount_due_cents: int,
    amount_paid_cents: int,
    hosted_invoice_url: z.string().nullable(),
    period_start: timestamp.nullable(),
    period_end: timestamp.nullable(),
    created_at: timestamp,
    updated_at: timestamp,
  })),
});
export type InvoiceList = z.infer<typeof InvoiceList>;

/** GET /admin/meter-drift?include_resolved=&limit=: periods where our seconds and Stripe's meter differ. */
export const MeterDriftList = z.object({
  unresolved: int,
  drift: z.array(z.object({
    id: int,
    user_id: z.string(),
    user_plan_id: z.string(),
    plan_key: z.string(),
    plan_version: int,
    period_start: timestamp,
    period_end: timestamp,
    our_seconds: int,
    stripe_seconds: int,
    difference_seconds: int,
    checked_at: timestamp,
    resolved_at: timestamp.nullable(),
  })),
});
export type MeterDriftList = z.infer<typeof MeterDriftList>;

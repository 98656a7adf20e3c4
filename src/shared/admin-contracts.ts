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
});
export type Books = z.infer<typeof Books>;

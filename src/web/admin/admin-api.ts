// The admin API's answers as the browser receives them (src/sidecar/admin-routes.ts passes the SQL reports of
// migrations/004_reports.sql through; see src/billing/types.ts). Timestamps arrive as ISO strings.

/** GET /admin/analytics/revenue?days=&currency= (every figure in the one currency named) */
export interface RevenueReport {
  days: number;
  since: string;
  until: string;
  currency: string;
  /** The currencies paid in over the period, the most used first. */
  currencies: Array<{ currency: string; transactions: number }>;
  total_revenue_cents: number;
  refunds_cents: number;
  net_revenue_cents: number;
  total_transactions: number;
  avg_transaction_cents: number;
  daily_revenue: Array<{ date: string; revenue_cents: number; refunds_cents: number; transactions: number }>;
  package_stats: Array<{ package_id: string | null; name: string | null; transactions: number; revenue_cents: number; refunds_cents: number }>;
}

/** GET /admin/analytics/usage?days= */
export interface UsageReport {
  days: number;
  since: string;
  until: string;
  active_users: number;
  total_sessions: number;
  total_seconds: number;
  total_hours_used: number;
  avg_session_minutes: number;
  active_sessions_now: number;
  daily_usage: Array<{ date: string; sessions: number; active_users: number; seconds: number }>;
}

/** GET /admin/users?limit=&offset= */
export interface BillingUserList {
  total_users: number;
  limit: number;
  offset: number;
  users: Array<{
    user_id: string;
    balance_seconds: number;
    active_cards: number;
    total_cards: number;
    sessions: number;
    active_sessions: number;
    seconds_used: number;
    purchases: number;
    /** Per currency: cents of different currencies are never added together. */
    spent: Array<{ currency: string; cents: number }>;
    last_activity: string | null;
  }>;
}

export type CardSource = 'purchase' | 'gift' | 'adjustment';
export type CardStatus = 'pending' | 'active' | 'exhausted' | 'expired' | 'revoked';

export interface PaymentRecord {
  payment_id: string;
  tier_id: string | null;
  gift: boolean;
  amount_cents: number;
  currency: string;
  status: 'pending' | 'succeeded' | 'failed' | 'canceled' | 'refunded' | 'partially_refunded' | 'disputed';
  refunded_cents: number;
  card_id: string | null;
  failure_reason: string | null;
  created_at: string;
}

/** GET /admin/reports/user/:id */
export interface UserReport {
  user_id: string;
  generated_at: string;
  balance: { user_id: string; total_seconds: number; card_count: number; next_expiry: string | null };
  cards: Array<{
    card_id: string;
    tier_id: string | null;
    source: CardSource;
    status: CardStatus;
    total_seconds: number;
    remaining_seconds: number;
    activated_at: string | null;
    expires_at: string;
    payment_id: string | null;
    note: string | null;
    created_at: string;
  }>;
  sessions: Array<{
    session_id: string;
    room_name: string;
    status: 'active' | 'ended' | 'cut_off' | 'abandoned';
    started_at: string;
    ended_at: string | null;
    end_reason: string | null;
    billed_seconds: number;
    duration_seconds: number;
    cost_cents: number;
  }>;
  payments: PaymentRecord[];
  ledger: Array<{
    id: number;
    card_id: string;
    kind: 'grant' | 'usage' | 'expiry' | 'refund' | 'revoke' | 'restore' | 'adjustment';
    seconds: number;
    remaining_before: number;
    remaining_after: number;
    reason: string | null;
    created_at: string;
  }>;
}

/** One row of GET /admin/tiers (inactive tiers included). */
export interface PricingTier {
  id: string;
  name: string;
  description: string;
  base_seconds: number;
  bonus_seconds: number;
  total_seconds: number;
  price_cents: number;
  currency: string;
  active: boolean;
  sort_order: number;
  stripe_price_id: string | null;
}

/** POST /admin/tiers, PATCH and DELETE /admin/tiers/:id */
export interface TierWrite {
  tier: PricingTier;
  created: boolean;
}

/** POST /admin/users/:id/adjust */
export interface Adjustment {
  user_id: string;
  adjusted_seconds: number;
  shortfall_seconds: number;
  card_id: string | null;
  remaining_seconds: number;
  replayed: boolean;
}

/** POST /admin/payments/:id/refund (202) */
export interface RefundAnswer {
  refund_id: string;
  status: string | null;
  payment_id: string;
  amount_cents: number;
  note: string;
}

/** GET /admin/attention: Stripe events that can never apply, acknowledged to Stripe and kept here. */
export interface AttentionList {
  total: number;
  items: Array<{
    id: number;
    event_id: string;
    event_type: string;
    code: string;
    message: string;
    payment_id: string | null;
    user_id: string | null;
    object_id: string | null;
    created_at: string;
  }>;
}

/** GET /admin/payments/:id: what a refund of the payment may give back. */
export interface RefundQuote {
  payment_id: string;
  user_id: string | null;
  status: string;
  currency: string;
  amount_cents: number;
  refunded_cents: number;
  /** Everything not refunded yet. */
  refundable_cents: number;
  /** The money of the card's unused time: a refund up to this needs no override. */
  unused_refundable_cents: number;
  card_total_seconds: number | null;
  card_unused_seconds: number | null;
  refundable_through_stripe: boolean;
}

export interface SecondsFigures {
  currency?: string | null;
  cards: number;
  granted_seconds: number;
  adjusted_seconds: number;
  used_seconds: number;
  expired_seconds: number;
  refunded_seconds: number;
  revoked_seconds: number;
  restored_seconds: number;
  outstanding_seconds: number;
  spendable_seconds: number;
  pending_gift_seconds: number;
  awaiting_expiry_seconds: number;
  unusable_seconds: number;
  difference_seconds: number;
  ok: boolean;
}

/** GET /admin/books (migrations/010_books.sql) */
export interface Books {
  generated_at: string;
  ok: boolean;
  seconds: { ok: boolean; cards_out_of_step: number; total: SecondsFigures; by_currency: SecondsFigures[] };
  cents: {
    ok: boolean;
    by_currency: Array<{
      currency: string;
      payments: number;
      received_cents: number;
      refunded_cents: number;
      kept_cents: number;
      disputed_cents: number;
      refunded_unpaid_cents: number;
      difference_cents: number;
      ok: boolean;
    }>;
  };
}

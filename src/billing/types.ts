import { z } from 'zod';
// The states the API shows are the states the database stores: one list each, shared with the web app.
import { CardSource, CardStatus, PaymentStatus, SessionStatus } from '../shared/api-contracts.ts';

// The shapes the SQL functions answer with. Parsing them checks the boundary: a migration that changed a
// field's meaning fails loudly here instead of leaking a wrong number into a call.

const timestamp = z.string().transform((value, ctx) => {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    ctx.addIssue({ code: 'custom', message: `not a timestamp: ${value}` });
    return z.NEVER;
  }
  return date;
});
const seconds = z.number().int();
const id = z.string().min(1);

export const CardSchema = z.object({
  id,
  user_id: id.nullable(),
  purchaser_id: id.nullable(),
  tier_id: z.string().nullable(),
  source: CardSource,
  activation_code: z.string(),
  total_seconds: seconds,
  remaining_seconds: seconds,
  status: CardStatus,
  activated_at: timestamp.nullable(),
  expires_at: timestamp,
  payment_id: id.nullable(),
  note: z.string().nullable(),
  created_at: timestamp,
  replayed: z.boolean().optional(),
});
export type Card = z.infer<typeof CardSchema>;

export const BalanceSchema = z.object({
  user_id: id,
  total_seconds: seconds,
  card_count: z.number().int(),
  next_expiry: timestamp.nullable(),
  cards: z.array(
    z.object({
      card_id: id,
      tier_id: z.string().nullable(),
      source: CardSource,
      remaining_seconds: seconds,
      total_seconds: seconds,
      activated_at: timestamp.nullable(),
      expires_at: timestamp,
    }),
  ),
});
export type Balance = z.infer<typeof BalanceSchema>;

export const PricingTierSchema = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  base_seconds: seconds,
  bonus_seconds: seconds,
  total_seconds: seconds,
  price_cents: z.number().int(),
  currency: z.string(),
  active: z.boolean(),
  sort_order: z.number().int(),
  stripe_price_id: z.string().nullable(),
  /** Counts changes of the seconds, price or currency; a purchase carries the version it was sold at. */
  version: z.number().int().positive().optional(),
});
export type PricingTier = z.infer<typeof PricingTierSchema>;

const LedgerSplitSchema = z.object({ card_id: id, seconds });

export const DeductionSchema = z.object({
  user_id: id,
  deducted_seconds: seconds,
  shortfall_seconds: seconds,
  remaining_seconds: seconds,
  entries: z.array(LedgerSplitSchema),
  replayed: z.boolean(),
});
export type Deduction = z.infer<typeof DeductionSchema>;

export const RevocationSchema = z.object({
  card_id: id,
  user_id: id.nullable(),
  revoked_seconds: seconds,
  remaining_seconds: seconds,
  status: CardSchema.shape.status,
  replayed: z.boolean(),
});
export type Revocation = z.infer<typeof RevocationSchema>;

export const RestorationSchema = z.object({
  card_id: id,
  user_id: id.nullable(),
  restored_seconds: seconds,
  forfeited_seconds: seconds,
  remaining_seconds: seconds,
  status: CardSchema.shape.status,
  replayed: z.boolean(),
});
export type Restoration = z.infer<typeof RestorationSchema>;

export const AdjustmentSchema = z.object({
  user_id: id,
  adjusted_seconds: seconds,
  shortfall_seconds: seconds,
  card_id: id.nullable(),
  remaining_seconds: seconds,
  replayed: z.boolean(),
});
export type Adjustment = z.infer<typeof AdjustmentSchema>;

/** A postpaid user's plan as a session's answer tells it (migrations/017). */
export const SessionPlanSchema = z.object({
  user_plan_id: id,
  plan_id: id,
  kind: z.enum(['payg', 'tiered', 'subscription']),
  status: z.enum(['pending', 'active', 'suspended']),
  currency: z.string(),
  period_start: timestamp.nullable(),
  period_end: timestamp.nullable(),
  /** The period's rated usage, exact (minor units, as a decimal string: never rounded before the invoice). */
  period_cost_exact: z.string().regex(/^\d+(\.\d+)?$/),
  /** The period's usage lines, each rounded once (the one rounding rule). */
  period_usage_cents: z.number().int(),
  cap_cents: z.number().int(),
  cap_left_cents: z.number().int(),
  included_left_seconds: seconds,
  /** What the plan can still pay this period: included seconds left plus what fits under the cap. */
  seconds_left: seconds,
  suspended_reason: z.string().nullable(),
  suspended_invoice_url: z.string().nullable(),
});
export type SessionPlan = z.infer<typeof SessionPlanSchema>;

export const SessionStateSchema = z.object({
  session_id: id,
  user_id: id,
  external_key: z.string(),
  room_name: z.string(),
  /** The agent that served the call (the name it was dispatched under; 'mindbot' by default). */
  agent_name: z.string(),
  /** The caller's and the called number, when the room gave them (a phone call); else null. */
  call_from: z.string().nullable(),
  call_to: z.string().nullable(),
  status: SessionStatus,
  started_at: timestamp,
  last_metered_at: timestamp,
  ended_at: timestamp.nullable(),
  end_reason: z.string().nullable(),
  billed_seconds: seconds,
  /** The call is paid up to this moment; past it, with nothing left, the call must end. */
  covered_until: timestamp,
  increment_seconds: seconds,
  /** Charged by this call of the function. */
  charged_seconds: seconds,
  /** What this call could not charge because the balance ran out. */
  shortfall_seconds: seconds,
  /** The user's spendable balance after this call (shared with their other sessions). */
  remaining_seconds: seconds,
  /**
   * How far the balance can really pay for this call if it goes on alone: covered_until plus what the cards
   * can still be charged for before each expires (migrations/008). The call is cut off here.
   */
  payable_until: timestamp,
  /** Of the balance, the seconds on cards that expire before this call could use them... */
  expiring_unused_seconds: seconds,
  /** ...and the last of those expiries (null when there are none). */
  expiring_unused_until: timestamp.nullable(),
  replayed: z.boolean(),
  /**
   * The user's postpaid plan and its period so far (migrations/017); null for a prepaid user. remaining_seconds
   * and payable_until already count what the plan can still pay (included seconds, then up to the cap).
   */
  plan: SessionPlanSchema.nullable().optional(),
});
export type SessionState = z.infer<typeof SessionStateSchema>;

export const ExpiryRunSchema = z.object({
  expired_cards: z.number().int(),
  forfeited_seconds: seconds,
  skipped_cards: z.number().int(),
  /** The batch was full: another call may find more. */
  more: z.boolean(),
});
export type ExpiryRun = z.infer<typeof ExpiryRunSchema>;

export const ReapRunSchema = z.object({
  reaped_sessions: z.number().int(),
  session_ids: z.array(id),
  skipped_sessions: z.number().int(),
  /** The batch was full: another call may find more. */
  more: z.boolean(),
});
export type ReapRun = z.infer<typeof ReapRunSchema>;

export const BillingSettingsSchema = z.object({
  billing_increment_seconds: seconds,
  minimum_charge_seconds: seconds,
  max_concurrent_sessions: z.number().int(),
  card_validity: z.string(),
  gift_redeem_window: z.string(),
  activation_max_failures: z.number().int(),
  activation_failure_window: z.string(),
  updated_at: timestamp,
});
export type BillingSettings = z.infer<typeof BillingSettingsSchema>;

export const ActivationAnswerSchema = z.discriminatedUnion('ok', [
  z.object({ ok: z.literal(true), card: CardSchema }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string() }) }),
]);

/** What applying one Stripe event did: 'duplicate_event' when it had been applied before. */
export const StripeEventOutcomeSchema = z.looseObject({
  event_id: z.string(),
  outcome: z.string(),
  payment_id: id.nullish(),
});
export type StripeEventOutcome = z.infer<typeof StripeEventOutcomeSchema>;

export const ClaimedNotificationSchema = z.object({
  id,
  user_id: id.nullable(),
  kind: z.enum(['low_balance', 'card_expiring', 'balance_exhausted', 'purchase', 'payment_failed']),
  payload: z.record(z.string(), z.unknown()),
  created_at: z.string(),
  attempts: z.number().int(),
});
export type ClaimedNotification = z.infer<typeof ClaimedNotificationSchema>;

export const NotificationScanSchema = z.object({
  low_balance: z.number().int(),
  card_expiring: z.number().int(),
  balance_exhausted: z.number().int(),
  users_scanned: z.number().int(),
  /** Where the next batch of card owners starts; null when this one was the last. */
  next_user: id.nullable(),
});
export type NotificationScan = z.infer<typeof NotificationScanSchema>;

export const BillingMetricsSchema = z.record(z.string(), z.number());

// ---------- reports (migrations/004_reports.sql) ----------

const count = z.number().int();
/** Cents of usage cost: fractional (to hundredths of a cent), see the top of 004_reports.sql. */
const costCents = z.number();
const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);
const month = z.string().regex(/^\d{4}-\d{2}$/);

/** One call as a user's history shows it. */
export const SessionRecordSchema = z.object({
  session_id: id,
  /** The client's own id when the call was started through the client API, else null. */
  client_session_id: z.string().nullable(),
  room_name: z.string(),
  agent_name: SessionStateSchema.shape.agent_name,
  call_from: SessionStateSchema.shape.call_from,
  call_to: SessionStateSchema.shape.call_to,
  status: SessionStateSchema.shape.status,
  started_at: timestamp,
  ended_at: timestamp.nullable(),
  end_reason: z.string().nullable(),
  billed_seconds: seconds,
  /** From start to end (to now while it runs), by the server's clock. */
  duration_seconds: seconds,
  cost_cents: costCents,
});
export type SessionRecord = z.infer<typeof SessionRecordSchema>;

export const PaymentRecordSchema = z.object({
  payment_id: id,
  tier_id: z.string().nullable(),
  gift: z.boolean(),
  amount_cents: count,
  currency: z.string(),
  status: PaymentStatus,
  refunded_cents: count,
  card_id: id.nullable(),
  failure_reason: z.string().nullable(),
  created_at: timestamp,
});
export type PaymentRecord = z.infer<typeof PaymentRecordSchema>;

/** A gift card as its purchaser sees it; the code only while it waits to be redeemed. */
export const GiftRecordSchema = z.object({
  card_id: id,
  payment_id: id.nullable(),
  tier_id: z.string().nullable(),
  total_seconds: seconds,
  status: CardStatus,
  redeemed: z.boolean(),
  activation_code: z.string().nullable(),
  expires_at: timestamp,
  created_at: timestamp,
});
export type GiftRecord = z.infer<typeof GiftRecordSchema>;

/** A Checkout Session's purchase for its buyer: not found until the webhook recorded it. */
export const CheckoutPurchaseSchema = z.discriminatedUnion('found', [
  z.object({ found: z.literal(false) }),
  z.object({
    found: z.literal(true),
    payment: PaymentRecordSchema,
    card: z.object({
      card_id: id,
      tier_id: z.string().nullable(),
      source: CardSource,
      status: CardStatus,
      total_seconds: seconds,
      remaining_seconds: seconds,
      expires_at: timestamp,
      activation_code: z.string().nullable(),
    }).nullable(),
  }),
]);
export type CheckoutPurchase = z.infer<typeof CheckoutPurchaseSchema>;

export const MonthUsageSchema = z.object({ month, calls: count, seconds, cost_cents: costCents });
export type MonthUsage = z.infer<typeof MonthUsageSchema>;

export const MonthlyUsageSchema = MonthUsageSchema.extend({ user_id: id });
export type MonthlyUsage = z.infer<typeof MonthlyUsageSchema>;

export const UserAnalyticsSchema = z.object({
  user_id: id,
  balance_seconds: seconds,
  totals: z.object({
    calls: count,
    seconds_used: seconds,
    average_call_seconds: z.number(),
    cost_cents: costCents,
    first_call_at: timestamp.nullable(),
    last_call_at: timestamp.nullable(),
    purchases: count,
    /** The user's one currency and their figures in it; all null when they paid in several (see money). */
    currency: z.string().nullable(),
    paid_cents: count.nullable(),
    refunded_cents: count.nullable(),
    spent_cents: count.nullable(),
    money: z.array(z.object({
      currency: z.string(),
      purchases: count,
      paid_cents: count,
      refunded_cents: count,
      spent_cents: count,
    })),
  }),
  /** Oldest first, the current month last. */
  months: z.array(MonthUsageSchema),
});
export type UserAnalytics = z.infer<typeof UserAnalyticsSchema>;

export const RevenueReportSchema = z.object({
  days: count,
  since: timestamp,
  until: timestamp,
  /** Every figure below is in this one currency; currencies lists those paid in over the period. */
  currency: z.string(),
  currencies: z.array(z.object({ currency: z.string(), transactions: count })),
  total_revenue_cents: count,
  refunds_cents: count,
  net_revenue_cents: count,
  total_transactions: count,
  avg_transaction_cents: count,
  daily_revenue: z.array(z.object({ date: day, revenue_cents: count, refunds_cents: count, transactions: count })),
  package_stats: z.array(z.object({
    package_id: z.string().nullable(),
    name: z.string().nullable(),
    transactions: count,
    revenue_cents: count,
    refunds_cents: count,
  })),
});
export type RevenueReport = z.infer<typeof RevenueReportSchema>;

// ---------- the books (migrations/010_books.sql) ----------

const SecondsFiguresSchema = z.object({
  cards: count,
  granted_seconds: seconds,
  adjusted_seconds: seconds,
  used_seconds: seconds,
  expired_seconds: seconds,
  refunded_seconds: seconds,
  revoked_seconds: seconds,
  restored_seconds: seconds,
  outstanding_seconds: seconds,
  spendable_seconds: seconds,
  pending_gift_seconds: seconds,
  awaiting_expiry_seconds: seconds,
  unusable_seconds: seconds,
  /** (granted + adjusted) - (used + expired + refunded + revoked - restored + outstanding): zero when it holds. */
  difference_seconds: seconds,
  ok: z.boolean(),
});
export type SecondsFigures = z.infer<typeof SecondsFiguresSchema>;

export const BooksSchema = z.object({
  generated_at: timestamp,
  /** Every identity holds, in every currency, and every card agrees with its ledger. */
  ok: z.boolean(),
  seconds: z.object({
    ok: z.boolean(),
    /** Cards whose remaining seconds are not the sum of their ledger rows (or whose grants are not their total). */
    cards_out_of_step: count,
    total: SecondsFiguresSchema,
    /** By the currency of the money that bought the card; null: time no money bought (manual credits). */
    by_currency: z.array(SecondsFiguresSchema.extend({ currency: z.string().nullable() })),
  }),
  cents: z.object({
    ok: z.boolean(),
    /** received = refunded + kept, per currency (cents of different currencies are never added). */
    by_currency: z.array(z.object({
      currency: z.string(),
      payments: count,
      received_cents: count,
      refunded_cents: count,
      kept_cents: count,
      disputed_cents: count,
      refunded_unpaid_cents: count,
      difference_cents: count,
      ok: z.boolean(),
    })),
  }),
  /**
   * Postpaid identities (migrations/017): each session's billed seconds are its card usage plus its usage
   * charges' included and rated seconds; every usage charge has its one meter event; every line is priced
   * through its plan's tiers. Optional: an older database answers without it.
   */
  postpaid: z.object({
    ok: z.boolean(),
    sessions: z.object({
      billed_seconds: seconds,
      card_seconds: seconds,
      plan_seconds: seconds,
      sessions_out_of_step: count,
    }),
    meter_events: z.object({ charges: count, events: count, charges_without_event: count }),
    lines: z.object({
      lines: count,
      rated_seconds: seconds,
      amount_exact: z.string(),
      lines_mispriced: count,
      /** Lines above the user's cap of today (a cap lowered mid-period): reported, not a fault of the books. */
      lines_over_cap: count,
    }),
  }).optional(),
});
export type Books = z.infer<typeof BooksSchema>;

export const UsageReportSchema = z.object({
  days: count,
  since: timestamp,
  until: timestamp,
  active_users: count,
  total_sessions: count,
  total_seconds: seconds,
  total_hours_used: z.number(),
  avg_session_minutes: z.number(),
  active_sessions_now: count,
  daily_usage: z.array(z.object({ date: day, sessions: count, active_users: count, seconds })),
});
export type UsageReport = z.infer<typeof UsageReportSchema>;

export const BillingUserListSchema = z.object({
  total_users: count,
  limit: count,
  offset: count,
  users: z.array(z.object({
    user_id: id,
    balance_seconds: seconds,
    active_cards: count,
    total_cards: count,
    sessions: count,
    active_sessions: count,
    seconds_used: seconds,
    purchases: count,
    /** What the user kept paid, per currency (never one sum across currencies). */
    spent: z.array(z.object({ currency: z.string(), cents: count })),
    last_activity: timestamp.nullable(),
  })),
});
export type BillingUserList = z.infer<typeof BillingUserListSchema>;

export const UserReportSchema = z.object({
  user_id: id,
  generated_at: timestamp,
  balance: BalanceSchema,
  cards: z.array(z.object({
    card_id: id,
    user_id: id.nullable(),
    purchaser_id: id.nullable(),
    tier_id: z.string().nullable(),
    source: CardSchema.shape.source,
    status: CardSchema.shape.status,
    total_seconds: seconds,
    remaining_seconds: seconds,
    activated_at: timestamp.nullable(),
    expires_at: timestamp,
    payment_id: id.nullable(),
    note: z.string().nullable(),
    created_at: timestamp,
  })),
  sessions: z.array(SessionRecordSchema),
  payments: z.array(PaymentRecordSchema),
  ledger: z.array(z.object({
    id: count,
    card_id: id,
    kind: z.enum(['grant', 'usage', 'expiry', 'refund', 'revoke', 'restore', 'adjustment']),
    seconds,
    remaining_before: seconds,
    remaining_after: seconds,
    session_id: id.nullable(),
    payment_id: id.nullable(),
    reason: z.string().nullable(),
    created_at: timestamp,
  })),
});
export type UserReport = z.infer<typeof UserReportSchema>;

export const TierWriteSchema = z.object({ tier: PricingTierSchema, created: z.boolean() });
export type TierWrite = z.infer<typeof TierWriteSchema>;

/** One payment, for an administrator's refund. */
export const PaymentDetailSchema = z.looseObject({
  payment_id: id,
  user_id: id.nullable(),
  tier_id: z.string().nullable(),
  amount_cents: z.number().int(),
  refunded_cents: z.number().int(),
  refundable_cents: z.number().int(),
  /** Of refundable_cents, the money that matches the card's unused time (more needs an explicit override). */
  unused_refundable_cents: z.number().int(),
  card_total_seconds: z.number().int().nullable(),
  card_unused_seconds: z.number().int().nullable(),
  currency: z.string(),
  status: z.string(),
  stripe_payment_intent_id: z.string().nullable(),
  stripe_charge_id: z.string().nullable(),
});
export type PaymentDetail = z.infer<typeof PaymentDetailSchema>;

/** Stripe events that can never apply, kept for an administrator (newest first) and how many in all. */
export const StripeAttentionListSchema = z.object({
  total: z.number().int(),
  items: z.array(z.object({
    id: z.number().int(),
    event_id: z.string(),
    event_type: z.string(),
    code: z.string(),
    message: z.string(),
    payment_id: id.nullable(),
    user_id: id.nullable(),
    object_id: z.string().nullable(),
    created_at: z.string(),
  })),
});
export type StripeAttentionList = z.infer<typeof StripeAttentionListSchema>;

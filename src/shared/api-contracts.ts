// The JSON the client API answers with, declared once. The sidecar types its answers with these (a field
// added to a view and not here, or the other way round, fails to compile), and the web app parses every
// answer with them instead of trusting a cast. Objects are not strict: an older web app ignores a field a
// newer sidecar adds. Timestamps travel as ISO 8601 strings, money as integer cents (the *_usd figures are
// seed 003's rounded dollars), time as integer seconds (minutes are for display: whole, or to hundredths).
import { z } from 'zod';

const timestamp = z.iso.datetime({ offset: true });
const count = z.number().int().min(0);
const seconds = z.number().int();
/** Seconds as minutes, to hundredths. */
const minutes = z.number();

export const CardSource = z.enum(['purchase', 'gift', 'adjustment']);
export const CardStatus = z.enum(['pending', 'active', 'exhausted', 'expired', 'revoked']);
export const SessionStatus = z.enum(['active', 'ended', 'cut_off', 'abandoned']);
export const PaymentStatus = z.enum(['pending', 'succeeded', 'failed', 'canceled', 'refunded', 'partially_refunded', 'disputed']);

/** GET /time/balance, GET /user/:id/balance: whole minutes left, rounded down. */
export const BalanceResponse = z.object({
  user_id: z.string(),
  total_minutes: count,
  total_seconds: seconds,
  card_count: count,
  next_expiry: timestamp.nullable(),
  cards: z.array(z.object({
    card_id: z.string(),
    package_id: z.string().nullable(),
    source: CardSource,
    remaining_seconds: seconds,
    remaining_minutes: count,
    total_seconds: seconds,
    activated_at: timestamp.nullable(),
    expires_at: timestamp,
  })),
});
export type BalanceResponse = z.infer<typeof BalanceResponse>;

/** One package on sale as the seeds' clients read it. */
export const PricingTierView = z.object({
  id: z.string(),
  name: z.string(),
  hours: z.number(),
  price_cents: count,
  price_display: z.string(),
  currency: z.string(),
  bonus_minutes: count,
  total_minutes: count,
  description: z.string(),
  /** The price of one hour of talk time, bonus included, rounded to the cent: what makes packages comparable. */
  price_per_hour_cents: count,
  price_per_hour_display: z.string(),
});
export type PricingTierView = z.infer<typeof PricingTierView>;

/** GET /time/pricing */
export const PricingResponse = z.object({ pricing_tiers: z.array(PricingTierView) });
export type PricingResponse = z.infer<typeof PricingResponse>;

/** POST /time/purchase, POST /create-payment-intent: a Checkout Session, or a PaymentIntent confirmed at once. */
export const PurchaseResponse = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('checkout'),
    checkout_url: z.string(),
    checkout_session_id: z.string(),
    package_id: z.string(),
    gift: z.boolean(),
  }),
  z.object({
    kind: z.literal('payment_intent'),
    payment_intent_id: z.string(),
    status: z.string(),
    client_secret: z.string().nullable(),
    package_id: z.string(),
    gift: z.boolean(),
  }),
]);
export type PurchaseResponse = z.infer<typeof PurchaseResponse>;

/** POST /time/activate */
export const ActivateResponse = z.object({
  success: z.literal(true),
  card: z.object({
    card_id: z.string(),
    package_id: z.string().nullable(),
    total_seconds: seconds,
    remaining_seconds: seconds,
    expires_at: timestamp,
  }),
  balance: BalanceResponse,
});
export type ActivateResponse = z.infer<typeof ActivateResponse>;

/** POST /token: what the browser needs to join its call. */
export const CallTokenResponse = z.object({
  server_url: z.string(),
  room_name: z.string(),
  identity: z.string(),
  participant_token: z.string(),
  expires_at: timestamp,
  balance_seconds: seconds,
});
export type CallTokenResponse = z.infer<typeof CallTokenResponse>;

/** A call as the client knows it: by its own id when it started the call itself. */
export const SessionView = z.object({
  session_id: z.string(),
  server_session_id: z.string(),
  room_name: z.string(),
  status: SessionStatus,
  started_at: timestamp,
  ended_at: timestamp.nullable(),
  duration_seconds: seconds.nullable(),
  billed_seconds: seconds,
  minutes_charged: minutes,
  end_reason: z.string().nullable(),
});
export type SessionView = z.infer<typeof SessionView>;

/** GET /time/sessions */
export const SessionsResponse = z.object({ sessions: z.array(SessionView) });
export type SessionsResponse = z.infer<typeof SessionsResponse>;

/** POST /time/session/start, /heartbeat, /end: a call the client runs itself, as the server bills it. */
export const ClientSessionResponse = z.object({
  session_id: z.string(),
  server_session_id: z.string(),
  room_name: z.string(),
  status: SessionStatus,
  started_at: timestamp,
  ended_at: timestamp.nullable(),
  end_reason: z.string().nullable(),
  billed_seconds: seconds,
  minutes_charged: minutes,
  /** Paid up to here; past it, with no balance left, the call must end. */
  covered_until: timestamp,
  /**
   * The balance can pay for the call up to here (cards that expire first count only for what they can pay
   * before they expire): a heartbeat past it with nothing left to charge cuts the call off.
   */
  payable_until: timestamp,
  charged_seconds: seconds,
  remaining_seconds: seconds,
  remaining_minutes: count,
  replayed: z.boolean(),
});
export type ClientSessionResponse = z.infer<typeof ClientSessionResponse>;

export const PaymentView = z.object({
  payment_id: z.string(),
  package_id: z.string().nullable(),
  amount_cents: count,
  currency: z.string(),
  status: PaymentStatus,
  refunded_cents: count,
  gift: z.boolean(),
  card_id: z.string().nullable(),
  failure_reason: z.string().nullable(),
  created_at: timestamp,
});
export type PaymentView = z.infer<typeof PaymentView>;

/** GET /payments */
export const PaymentsResponse = z.object({ payments: z.array(PaymentView) });
export type PaymentsResponse = z.infer<typeof PaymentsResponse>;

/** GET /time/gifts: the code only while nobody has redeemed it. */
export const GiftsResponse = z.object({
  gifts: z.array(z.object({
    card_id: z.string(),
    payment_id: z.string().nullable(),
    package_id: z.string().nullable(),
    total_seconds: seconds,
    status: CardStatus,
    redeemed: z.boolean(),
    activation_code: z.string().nullable(),
    expires_at: timestamp,
    created_at: timestamp,
  })),
});
export type GiftsResponse = z.infer<typeof GiftsResponse>;

/** GET /time/purchase/checkout/:sessionId: found: false until Stripe's webhook has landed. */
export const CheckoutPurchaseResponse = z.discriminatedUnion('found', [
  z.object({ found: z.literal(false) }),
  z.object({
    found: z.literal(true),
    payment: PaymentView,
    card: z.object({
      card_id: z.string(),
      package_id: z.string().nullable(),
      source: CardSource,
      status: CardStatus,
      total_seconds: seconds,
      remaining_seconds: seconds,
      expires_at: timestamp,
      activation_code: z.string().nullable(),
    }).nullable(),
  }),
]);
export type CheckoutPurchaseResponse = z.infer<typeof CheckoutPurchaseResponse>;

/** GET /api/usage/current, GET /api/usage/history?month=: seed 003's month of usage (both answers grow it). */
export const MonthlyUsageResponse = z.object({
  month: z.string(),
  total_calls: count,
  total_minutes: minutes,
  total_seconds: seconds,
  total_cost_usd: z.number(),
  total_cost_cents: z.number(),
});
export type MonthlyUsageResponse = z.infer<typeof MonthlyUsageResponse>;

// Plans (docs/plans.md). Amounts are integer cents except *_exact_* and cents_per_*: exact decimals of a cent
// (at most 4 places) that are shown, never charged as such; an invoice line is rounded once, by the server.
const cents = z.number().int();
const decimalCents = z.number();
const currency = z.string().regex(/^[a-z]{3}$/);

export const PlanKind = z.enum(['prepaid', 'payg', 'tiered', 'subscription']);
export type PlanKind = z.infer<typeof PlanKind>;
export const UserPlanStatus = z.enum(['pending', 'active', 'suspended', 'ended']);
export const InvoiceStatus = z.enum(['draft', 'open', 'paid', 'uncollectible', 'void']);

/** A plan as callers compare them: rates per minute and per hour, included minutes, a prepaid plan's packs. */
export const PlanView = z.object({
  plan_id: z.string(),
  key: z.string(),
  version: count,
  kind: PlanKind,
  name: z.string(),
  description: z.string(),
  currency,
  status: z.enum(['active', 'retired']),
  sort_order: count,
  monthly_fee_cents: cents,
  included_seconds: seconds,
  included_minutes: minutes,
  default_cap_cents: cents.nullable(),
  max_cap_cents: cents.nullable(),
  /** Graduated over the period's billable seconds (after the included ones); the last has no end. */
  tiers: z.array(z.object({
    position: count,
    up_to_seconds: seconds.nullable(),
    up_to_minutes: minutes.nullable(),
    cents_per_minute: decimalCents,
    cents_per_hour: decimalCents,
  })),
  /** A prepaid plan's packs, each with its price per hour; null for a postpaid plan. */
  packs: z.array(z.object({
    package_id: z.string(), name: z.string(), price_cents: cents, currency, total_seconds: seconds, cents_per_hour: decimalCents,
  })).nullable(),
  /** What makes the plans comparable: an hour at the (first) rate, an hour of the fee's included time, the cheapest pack's hour. */
  price_per_hour: z.object({
    rate_cents_per_hour: decimalCents.nullable(),
    included_cents_per_hour: decimalCents.nullable(),
    cheapest_pack_cents_per_hour: decimalCents.nullable(),
  }),
  created_at: timestamp,
  retired_at: timestamp.nullable(),
});
export type PlanView = z.infer<typeof PlanView>;

/** GET /api/plans: the offer, for anyone. */
export const PlansResponse = z.object({ plans: z.array(PlanView) });
export type PlansResponse = z.infer<typeof PlansResponse>;

/** One line of the period's invoice: usage per plan version (rounded once), or the subscription's fee. */
export const InvoiceLineView = z.object({
  kind: z.enum(['usage', 'fee']),
  plan_key: z.string(),
  plan_version: count,
  currency,
  included_seconds: seconds.optional(),
  rated_seconds: seconds.optional(),
  amount_exact: decimalCents.optional(),
  amount_cents: cents,
});
export type InvoiceLineView = z.infer<typeof InvoiceLineView>;

/**
 * GET /api/usage/current, PUT /api/usage/cap: this period in the plan's terms. A prepaid caller (billing
 * 'prepaid') has no cap (the cap fields are null) and pays with cards only.
 */
export const UsageCurrentResponse = MonthlyUsageResponse.extend({
  billing: z.enum(['prepaid', 'postpaid']),
  plan: PlanView.nullable(),
  status: z.enum(['pending', 'active', 'suspended']),
  suspended_reason: z.string().nullable(),
  hosted_invoice_url: z.string().nullable(),
  cancel_at_period_end: z.boolean(),
  period_start: timestamp,
  /** null between a period's end and Stripe's word on the next one. */
  period_end: timestamp.nullable(),
  card_seconds: seconds,
  included_seconds: seconds,
  included_seconds_used: seconds,
  included_seconds_left: seconds,
  included_minutes_left: count,
  rated_seconds: seconds,
  currency,
  usage_exact_cents: decimalCents,
  /** The usage lines, each rounded once, summed. */
  usage_cents: cents,
  fee_cents: cents,
  /** What the invoice will say so far: usage_cents + fee_cents. */
  plan_cost_cents: cents,
  prepaid_cost_cents: decimalCents,
  lines: z.array(InvoiceLineView),
  cap_cents: cents.nullable(),
  cap_used_cents: cents.nullable(),
  cap_left_cents: cents.nullable(),
  max_cap_cents: cents.nullable(),
  balance_seconds: seconds,
  balance_minutes: count,
});
export type UsageCurrentResponse = z.infer<typeof UsageCurrentResponse>;

/** GET /api/usage/history?month=YYYY-MM: the month, its subscription fees and its days. */
export const UsageHistoryResponse = MonthlyUsageResponse.extend({
  card_seconds: seconds,
  usage_exact_cents: decimalCents,
  usage_cents: cents,
  fee_cents: cents,
  fees: z.array(z.object({ plan_key: z.string(), plan_version: count, period_start: timestamp, currency, amount_cents: cents })),
  plan_cost_cents: cents,
  prepaid_cost_cents: decimalCents,
  days: z.array(z.object({
    date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
    calls: count,
    seconds: seconds,
    minutes: minutes,
    included_seconds: seconds,
    rated_seconds: seconds,
    usage_exact_cents: decimalCents,
  })),
});
export type UsageHistoryResponse = z.infer<typeof UsageHistoryResponse>;

/** The caller's postpaid plan (one Stripe subscription). */
export const UserPlanView = z.object({
  user_plan_id: z.string(),
  plan_key: z.string(),
  plan_version: count,
  plan_kind: PlanKind,
  plan_name: z.string(),
  status: UserPlanStatus,
  current_period_start: timestamp.nullable(),
  current_period_end: timestamp.nullable(),
  cancel_at_period_end: z.boolean(),
  /** A downgrade waiting for the period's end. */
  scheduled_plan_key: z.string().nullable(),
  spending_cap_cents: cents,
  suspended_reason: z.string().nullable(),
  suspended_invoice_id: z.string().nullable(),
  suspended_invoice_url: z.string().nullable(),
  ended_at: timestamp.nullable(),
});
export type UserPlanView = z.infer<typeof UserPlanView>;

/** A Stripe invoice of the caller, with Stripe's hosted page (null until Stripe finalizes it). */
export const InvoiceView = z.object({
  invoice_id: z.string(),
  status: InvoiceStatus,
  payment_failed: z.boolean(),
  currency,
  total_cents: cents,
  amount_due_cents: cents,
  amount_paid_cents: cents,
  hosted_invoice_url: z.string().nullable(),
  period_start: timestamp.nullable(),
  period_end: timestamp.nullable(),
  created_at: timestamp,
});
export type InvoiceView = z.infer<typeof InvoiceView>;

/** GET /api/plans/current: null plan for a prepaid caller. */
export const CurrentPlanResponse = z.object({ plan: UserPlanView.nullable(), invoices: z.array(InvoiceView) });
export type CurrentPlanResponse = z.infer<typeof CurrentPlanResponse>;

/** GET /api/invoices?limit=: newest first. */
export const InvoicesResponse = z.object({ invoices: z.array(InvoiceView) });
export type InvoicesResponse = z.infer<typeof InvoicesResponse>;

/** POST /api/plans/:key/subscribe: Stripe Checkout in subscription mode; the plan is pending until Stripe confirms. */
export const PlanCheckoutResponse = z.object({
  checkout_url: z.string(),
  checkout_session_id: z.string(),
  plan_key: z.string(),
  user_plan_id: z.string(),
});
export type PlanCheckoutResponse = z.infer<typeof PlanCheckoutResponse>;

/** POST /api/plans/:key/change: an upgrade applies now (prorated), a downgrade at the period's end. */
export const PlanChangeResponse = z.object({
  direction: z.enum(['upgrade', 'downgrade']),
  plan_key: z.string(),
  effective: z.enum(['now', 'period_end']),
  effective_at: timestamp.nullable(),
});
export type PlanChangeResponse = z.infer<typeof PlanChangeResponse>;

/** POST /api/plans/cancel: at the period's end, which Stripe confirms with its own event. */
export const PlanCancelResponse = z.object({ cancel_at_period_end: z.literal(true), ends_at: timestamp.nullable() });
export type PlanCancelResponse = z.infer<typeof PlanCancelResponse>;

/** POST /api/billing/portal: Stripe's customer portal (change card, invoices, cancel). */
export const BillingPortalResponse = z.object({ url: z.string() });
export type BillingPortalResponse = z.infer<typeof BillingPortalResponse>;

/** Seed 003's call (agent_name, call_from, call_to, duration, cost, start, end, status) with the app's fields. */
export const CallView = z.object({
  id: z.string(),
  session_id: z.string(),
  room_name: z.string(),
  agent_name: z.string(),
  call_from: z.string().nullable(),
  call_to: z.string().nullable(),
  status: SessionStatus,
  duration_seconds: seconds.nullable(),
  billed_seconds: seconds,
  minutes_charged: minutes,
  cost_cents: z.number(),
  cost_usd: z.number(),
  started_at: timestamp,
  ended_at: timestamp.nullable(),
  end_reason: z.string().nullable(),
});
export type CallView = z.infer<typeof CallView>;

/** GET /api/usage/calls?limit= */
export const UsageCallsResponse = z.object({ calls: z.array(CallView) });
export type UsageCallsResponse = z.infer<typeof UsageCallsResponse>;

/** GET /user/:id/analytics?months= */
export const AnalyticsResponse = z.object({
  user_id: z.string(),
  balance_seconds: seconds,
  balance_minutes: z.number().int(),
  totals: z.object({
    calls: count,
    seconds_used: seconds,
    minutes_used: minutes,
    average_call_seconds: z.number(),
    cost_cents: z.number(),
    purchases: count,
    /** The user's one currency and its figures; null when they paid in several (then read money). */
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
    first_call_at: timestamp.nullable(),
    last_call_at: timestamp.nullable(),
  }),
  /** Oldest first, the current month last. */
  monthly_usage: z.array(z.object({
    month: z.string(),
    calls: count,
    seconds: seconds,
    minutes: minutes,
    cost_cents: z.number(),
    cost_usd: z.number(),
  })),
});
export type AnalyticsResponse = z.infer<typeof AnalyticsResponse>;

/** POST /auth/dev-sign-in (the local sign-in of a development server). */
export const DevSignInResponse = z.object({
  access_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.number().int(),
  user_id: z.string(),
  admin: z.boolean(),
});
export type DevSignInResponse = z.infer<typeof DevSignInResponse>;

/** GET /app/config: what the sidecar tells the browser at start (public values only). */
export const AppConfigResponse = z.object({
  auth: z.discriminatedUnion('mode', [
    z.object({ mode: z.literal('local') }),
    z.object({ mode: z.literal('supabase'), supabase_url: z.string(), supabase_anon_key: z.string() }),
    z.object({ mode: z.literal('none'), reason: z.string() }),
  ]),
  calls: z.object({ enabled: z.boolean(), livekit_url: z.string().nullable() }),
  purchases: z.object({ enabled: z.boolean() }),
  version: z.string(),
});
export type AppConfigResponse = z.infer<typeof AppConfigResponse>;

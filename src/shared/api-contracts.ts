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

/** GET /api/usage/current, GET /api/usage/history?month=: seed 003's month of usage. */
export const MonthlyUsageResponse = z.object({
  month: z.string(),
  total_calls: count,
  total_minutes: minutes,
  total_seconds: seconds,
  total_cost_usd: z.number(),
  total_cost_cents: z.number(),
});
export type MonthlyUsageResponse = z.infer<typeof MonthlyUsageResponse>;

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

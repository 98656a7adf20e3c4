import { z } from 'zod';
import { BILLING_ERROR_CODES, BillingError, type BillingErrorCode } from './errors.ts';
import { unstorableTextAt } from './storable-text.ts';
import {
  ClaimedMeterEventSchema, MeterEventReportSchema, MeterEventResultSchema, MeterOutboxStatsSchema, ReconciliationPeriodSchema,
  ReconciliationRecordSchema, type ClaimedMeterEvent, type MeterEventReport, type MeterEventResult, type MeterOutboxStats,
  type ReconciliationPeriod, type ReconciliationRecord,
} from './meter-outbox.ts';
import {
  ActivationAnswerSchema, AdjustmentSchema, BalanceSchema, BillingSettingsSchema, CardSchema, DeductionSchema,
  ExpiryRunSchema, PricingTierSchema, ReapRunSchema, RestorationSchema, RevocationSchema, SessionStateSchema,
  StripeEventOutcomeSchema, type StripeEventOutcome,
  BillingMetricsSchema, ClaimedNotificationSchema, PaymentDetailSchema, type PaymentDetail, NotificationScanSchema, type ClaimedNotification, type NotificationScan,
  type Adjustment, type Balance, type BillingSettings, type Card, type Deduction, type ExpiryRun, type PricingTier,
  type ReapRun, type Restoration, type Revocation, type SessionState,
  BillingUserListSchema, MonthlyUsageSchema, PaymentRecordSchema, RevenueReportSchema, SessionRecordSchema,
  TierWriteSchema, UsageReportSchema, UserAnalyticsSchema, UserReportSchema, GiftRecordSchema, CheckoutPurchaseSchema,
  type GiftRecord, type CheckoutPurchase, StripeAttentionListSchema, type StripeAttentionList, BooksSchema, type Books,
  type BillingUserList, type MonthlyUsage, type PaymentRecord, type RevenueReport, type SessionRecord, type TierWrite,
  type UsageReport, type UserAnalytics, type UserReport,
} from './types.ts';
import {
  INVOICE_FILTERS, InvoiceListSchema, MeterDriftListSchema, MrrSchema, PlanListSchema, PlanSubscribersSchema, PlanWriteSchema,
  UsageByAgentSchema, UsageByPlanSchema, UsageCurrentSchema, UsageHistorySchema,
  type InvoiceFilter, type InvoiceList, type MeterDriftList, type Mrr, type PlanChanges, type PlanDefinition, type PlanList,
  type PlanSubscribers, type PlanWrite, type UsageByAgent, type UsageByPlan, type UsageCurrent, type UsageHistory,
} from './plan-types.ts';

export type { Adjustment, Balance, BillingSettings, Card, Deduction, ExpiryRun, PricingTier, ReapRun, Restoration,
  Revocation, SessionState, StripeEventOutcome, ClaimedNotification, NotificationScan };
export type { InvoiceFilter, InvoiceList, MeterDriftList, Mrr, PlanChanges, PlanDefinition, PlanList, PlanSubscribers,
  PlanWrite, UsageByAgent, UsageByPlan, UsageCurrent, UsageHistory };
export type { BillingUserList, MonthlyUsage, PaymentRecord, RevenueReport, SessionRecord, TierWrite, UsageReport,
  UserAnalytics, UserReport, PaymentDetail, GiftRecord, CheckoutPurchase, StripeAttentionList, Books };

/** The external key of a call a client runs itself and started through the client API. */
export function clientSessionKey(userId: string, clientSessionId: string): string {
  return `client:${userId}:${clientSessionId}`;
}

/** A pricing tier as an administrator defines it (a whole definition: omitted fields take their defaults). */
export interface TierDefinition {
  id: string;
  name: string;
  baseSeconds: number;
  priceCents: number;
  description?: string | undefined;
  bonusSeconds?: number | undefined;
  currency?: string | undefined;
  sortOrder?: number | undefined;
  stripePriceId?: string | null | undefined;
  active?: boolean | undefined;
}

/** Some fields of a tier to change; stripe_price_id null clears it. */
export interface TierChanges {
  name?: string;
  description?: string;
  base_seconds?: number;
  bonus_seconds?: number;
  price_cents?: number;
  currency?: string;
  sort_order?: number;
  stripe_price_id?: string | null;
  active?: boolean;
}

/** The Stripe event being applied: its id makes the application idempotent; the payload is kept. */
export interface StripeEventRef {
  id: string;
  type: string;
  payload: unknown;
}

export interface PaymentFacts {
  userId: string;
  tierId: string;
  gift: boolean;
  amountCents: number;
  currency: string;
  checkoutSessionId?: string | null;
  paymentIntentId?: string | null;
  chargeId?: string | null;
  customerId?: string | null;
  /** What the buyer was shown at purchase (the Checkout metadata); absent: the tier's current values. */
  seconds?: number | null;
  priceCents?: number | null;
  priceCurrency?: string | null;
}

/** How final a failed payment is: only a final one tells the buyer (see record_payment_failure). */
export type PaymentFailureStage = 'attempt' | 'failed' | 'expired' | 'canceled';

/** One refund as Stripe reports it. */
export interface RefundObject {
  id: string;
  amount: number;
  status: string;
}

export interface RefundFacts {
  paymentIntentId: string | null;
  chargeId: string | null;
  /** The refunds of the charge this event tells about (one for refund.* events, the charge's list for charge.refunded). */
  refunds: RefundObject[];
}

export interface DisputeFacts {
  paymentIntentId: string | null;
  chargeId: string | null;
  disputeId: string;
  status: string;
  /** An inquiry (no funds withdrawn when it opens), not a chargeback. */
  inquiry: boolean;
}

/** Why an event can never apply: kept for an administrator. */
export interface AttentionFacts {
  code: string;
  message: string;
  objectId?: string | null;
}

/** A call to start: who, under which key, in which room, and who takes part. */
export interface SessionStart {
  userId: string;
  externalKey: string;
  roomName: string;
  agentName?: string | undefined;
  callFrom?: string | null | undefined;
  callTo?: string | null | undefined;
}

/** The billing clock. Absent, the database's own now() bills; tests and benchmarks pass a fake one. */
export type Clock = () => Date;

/**
 * The one billing port. Everything above src/billing (the agent, the tools, the sidecar) talks to this and
 * nothing else; the rules themselves live in the SQL functions it calls.
 */
export interface BillingStore {
  getBalance(userId: string): Promise<Balance>;
  listPricingTiers(options?: { includeInactive?: boolean }): Promise<PricingTier[]>;
  deductTime(input: { userId: string; seconds: number; idempotencyKey: string }): Promise<Deduction>;
  grantCard(input: {
    userId: string | null;
    tierId: string;
    paymentId?: string | null;
    purchaserId?: string | null;
    idempotencyKey: string;
  }): Promise<Card>;
  activateCard(input: { userId: string; code: string }): Promise<Card>;
  revokeCardTime(input: {
    cardId: string;
    seconds: number | 'all';
    kind: 'refund' | 'revoke' | 'adjustment';
    idempotencyKey: string;
    reason?: string;
  }): Promise<Revocation>;
  restoreCardTime(input: { cardId: string; revokeIdempotencyKey: string }): Promise<Restoration>;
  adjustUserTime(input: { userId: string; seconds: number; reason: string; idempotencyKey: string }): Promise<Adjustment>;
  /**
   * Starts a metered call. agentName is the agent serving it ('mindbot' when absent); callFrom and callTo the
   * caller's and the called number when the room gives them (E.164, a SIP URI: 1 to 128 characters, no spaces).
   */
  startSession(input: SessionStart): Promise<SessionState>;
  meterSession(sessionId: string): Promise<SessionState>;
  endSession(input: { sessionId: string; reason: string; endedAt?: Date }): Promise<SessionState>;
  expireCards(options?: { limit?: number }): Promise<ExpiryRun>;
  /** One batch (at most `limit` calls, one transaction); `more` says whether to call again. */
  reapStaleSessions(maxSilenceSeconds: number, options?: { limit?: number }): Promise<ReapRun>;
  updateSettings(changes: SettingsChanges): Promise<BillingSettings>;

  // Stripe: each call applies one event exactly once (a repeated event id answers 'duplicate_event').
  recordPaymentSuccess(event: StripeEventRef, payment: PaymentFacts): Promise<StripeEventOutcome>;
  recordPaymentFailure(event: StripeEventRef,
    payment: Partial<PaymentFacts> & { reason: string; stage: PaymentFailureStage }): Promise<StripeEventOutcome>;
  recordRefunds(event: StripeEventRef, refund: RefundFacts): Promise<StripeEventOutcome>;
  recordDispute(event: StripeEventRef, dispute: DisputeFacts): Promise<StripeEventOutcome>;
  recordIgnoredStripeEvent(event: StripeEventRef): Promise<StripeEventOutcome>;
  /** An event that can never apply: acknowledged once, listed for an administrator. */
  recordStripeAttention(event: StripeEventRef, attention: AttentionFacts): Promise<StripeEventOutcome>;
  /** Events that needed attention, newest first, and how many in all. */
  listStripeAttention(options?: { limit?: number }): Promise<StripeAttentionList>;
  getStripeCustomer(userId: string): Promise<string | null>;
  getPayment(paymentId: string): Promise<PaymentDetail>;
  /** Stores the user's Stripe customer unless one is stored already; answers the stored one. */
  rememberStripeCustomer(userId: string, customerId: string): Promise<string>;

  // The notification outbox and the figures behind /metrics.
  /** Scans one batch of card owners (those after `afterUser`); `next_user` is where the next batch starts. */
  enqueueBalanceNotifications(options?: NotificationScanOptions): Promise<NotificationScan>;
  claimNotifications(options: { limit: number; leaseSeconds: number }): Promise<ClaimedNotification[]>;
  reportNotification(report: {
    id: string; delivered: boolean; error?: string | undefined; retrySeconds: number; maxAttempts: number;
  }): Promise<{ id: string; state: 'delivered' | 'retrying' | 'dead' }>;
  billingMetrics(): Promise<Record<string, number>>;
  /** Leases up to `limit` due meter events to `owner` (migration 019). */
  claimMeterEvents(options: { limit: number; leaseSeconds: number; owner: string }): Promise<ClaimedMeterEvent[]>;
  /** A sender's batch of outcomes, in one call. */
  reportMeterEvents(input: { owner: string; results: MeterEventResult[] }): Promise<MeterEventReport>;
  meterOutboxStats(): Promise<MeterOutboxStats>;
  /** Periods settled on our side, ready to compare with Stripe's meter event summaries. */
  meterReconciliationPeriods(options?: { settleSeconds?: number; lookbackDays?: number; limit?: number }): Promise<ReconciliationPeriod[]>;
  recordMeterReconciliation(results: (ReconciliationPeriod & { stripe_seconds: number })[]): Promise<ReconciliationRecord>;

  // Calls a client runs itself, known by the client's own id (1-100 letters, digits, _ or -).
  startClientSession(input: { userId: string; clientSessionId: string; roomName: string }): Promise<SessionState>;
  /**
   * Charges every increment begun so far by the server's clock (a client's heartbeat). A heartbeat past the
   * paid time with nothing left to charge cuts the call off at its last paid second (status cut_off).
   */
  meterClientSession(input: { userId: string; clientSessionId: string }): Promise<SessionState>;
  /**
   * Ends it at least(now, greatest(start + claimedSeconds, last heartbeat)): never past the server's clock,
   * never before what a heartbeat proved; what the heartbeats charged stays charged.
   */
  endClientSession(input: { userId: string; clientSessionId: string; claimedSeconds: number }): Promise<SessionState>;

  // A user's own history (for the user, or an administrator).
  listSessions(input: { userId: string; limit?: number }): Promise<SessionRecord[]>;
  listPayments(input: { userId: string; limit?: number }): Promise<PaymentRecord[]>;
  /** The gifts the user bought, with each code while it waits to be redeemed. */
  listGifts(input: { userId: string; limit?: number }): Promise<GiftRecord[]>;
  /** The user's purchase through one Stripe Checkout Session ({found: false} until its webhook landed). */
  getCheckoutPurchase(input: { userId: string; checkoutSessionId: string }): Promise<CheckoutPurchase>;
  /** One calendar month (YYYY-MM, UTC) of the user's calls; without a month, the current one. */
  getMonthlyUsage(input: { userId: string; month?: string | undefined }): Promise<MonthlyUsage>;
  getUserAnalytics(input: { userId: string; months?: number }): Promise<UserAnalytics>;

  // Plans and usage in a plan's terms (migrations/018_plan_admin_usage.sql, docs/plans.md).
  /** The offered plans (with retired versions when asked), each with its tiers and prices per hour. */
  listPlans(options?: { includeRetired?: boolean }): Promise<PlanList>;
  /** Version 1 of a new plan key; the SQL function checks the rules of its kind. */
  createPlan(definition: PlanDefinition): Promise<PlanWrite>;
  /** A new version of the key (the offered one retired in the same transaction; its users keep it). */
  revisePlan(key: string, changes: PlanChanges): Promise<PlanWrite>;
  retirePlan(key: string): Promise<PlanWrite>;
  /** This period: plan, minutes, included left, cost so far (rounded once per invoice line), cap, status. */
  getUsageCurrent(userId: string): Promise<UsageCurrent>;
  /** One UTC calendar month (YYYY-MM) with its days. */
  getUsageHistory(input: { userId: string; month: string }): Promise<UsageHistory>;
  /** Sets the postpaid period's spending cap (within the plan's maximum); answers the period as it now is. */
  setSpendingCap(input: { userId: string; capCents: number }): Promise<UsageCurrent>;
  listPlanSubscribers(options?: { planKey?: string | undefined; limit?: number; offset?: number }): Promise<PlanSubscribers>;
  /** Per currency, never summed across currencies. */
  getMrr(): Promise<Mrr>;
  getUsageByPlan(options?: { days?: number }): Promise<UsageByPlan>;
  getUsageByAgent(options?: { days?: number }): Promise<UsageByAgent>;
  listInvoices(options?: { status?: InvoiceFilter; limit?: number }): Promise<InvoiceList>;
  listMeterDrift(options?: { includeResolved?: boolean; limit?: number }): Promise<MeterDriftList>;

  // Administration.
  /** One currency's revenue (by default the one most paid in over the period). */
  getRevenueReport(options?: { days?: number; currency?: string | undefined }): Promise<RevenueReport>;
  /** The books: whether seconds and cents balance, per currency and in total (migrations/010_books.sql). */
  getBooks(): Promise<Books>;
  getUsageReport(options?: { days?: number }): Promise<UsageReport>;
  listBillingUsers(options?: { limit?: number; offset?: number }): Promise<BillingUserList>;
  getUserReport(userId: string): Promise<UserReport>;
  /** Creates a tier or replaces its whole definition; `created` says which. */
  upsertPricingTier(tier: TierDefinition): Promise<TierWrite>;
  updatePricingTier(tierId: string, changes: TierChanges): Promise<TierWrite>;
  /** Takes a tier off the price list; tiers are never deleted. */
  deactivatePricingTier(tierId: string): Promise<TierWrite>;

  close(): Promise<void>;
}

export interface NotificationScanOptions {
  lowBalanceSeconds?: number;
  expiringWithinDays?: number;
  afterUser?: string | null;
  limit?: number;
}

export interface SettingsChanges {
  billing_increment_seconds?: number;
  minimum_charge_seconds?: number;
  max_concurrent_sessions?: number;
  card_validity?: string;
  gift_redeem_window?: string;
  activation_max_failures?: number;
  activation_failure_window?: string;
}

/**
 * What an adapter provides: call one SQL function with named arguments and return its JSON answer, or throw
 * a BillingError. Arguments that are undefined are left out so the function's default applies.
 */
export interface RpcTransport {
  call(fn: string, args: Record<string, unknown>): Promise<unknown>;
  close(): Promise<void>;
}

const userId = z.guid({ message: 'a user id must be a uuid' });
const uuid = z.guid({ message: 'must be a uuid' });
const key = z.string().min(1).max(200);
const positiveSeconds = z.number().int().positive().max(2_000_000_000);
/** A calling or called number as the telephony side gives it: E.164, a SIP URI (shown, never dialled). */
const callParty = z.string().regex(/^[^\s\p{Cc}]{1,128}$/u, 'a number of 1 to 128 characters without spaces');

const inputs = {
  userId,
  deduct: z.object({ userId, seconds: positiveSeconds, idempotencyKey: key }),
  grant: z.object({
    userId: userId.nullable(),
    tierId: z.string().min(1).max(40),
    paymentId: uuid.nullish(),
    purchaserId: userId.nullish(),
    idempotencyKey: key,
  }),
  activate: z.object({ userId, code: z.string().max(64) }),
  revoke: z.object({
    cardId: uuid,
    seconds: z.union([positiveSeconds, z.literal('all')]),
    kind: z.enum(['refund', 'revoke', 'adjustment']),
    idempotencyKey: key,
    reason: z.string().max(500).optional(),
  }),
  restore: z.object({ cardId: uuid, revokeIdempotencyKey: key }),
  adjust: z.object({
    userId,
    seconds: z.number().int().min(-2_000_000_000).max(2_000_000_000).refine((s) => s !== 0, 'must not be zero'),
    reason: z.string().trim().min(3).max(500),
    idempotencyKey: key,
  }),
  start: z.object({
    userId,
    externalKey: z.string().min(1).max(400),
    roomName: z.string().min(1).max(200),
    // The formats of migrations/014 (the SQL function checks them too, with its own message).
    agentName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'an agent name of 1 to 64 letters, digits, _, . or -').optional(),
    callFrom: callParty.nullish(),
    callTo: callParty.nullish(),
  }),
  sessionId: uuid,
  end: z.object({ sessionId: uuid, reason: z.string().regex(/^[a-z][a-z0-9_]{0,39}$/), endedAt: z.date().optional() }),
  limit: z.number().int().min(1).max(100_000),
  /** A background job's batch: what one transaction may lock. */
  batch: z.number().int().min(1).max(5000),
  silence: positiveSeconds,
  event: z.object({ id: z.string().regex(/^evt_\w{1,250}$/), type: z.string().min(1).max(100), payload: z.unknown() }),
  stripeId: z.string().min(3).max(255).nullish(),
  cents: z.number().int().min(0).max(100_000_000),
  currency: z.string().regex(/^[A-Za-z]{3}$/),
  refunds: z.array(z.object({
    id: z.string().regex(/^(re|pyr)_\w{1,250}$/),
    amount: z.number().int().min(0).max(100_000_000),
    status: z.string().min(1).max(40),
  })).max(1000),
  clientSession: z.object({
    userId,
    clientSessionId: z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'a session id of 1 to 100 letters, digits, _ or -'),
  }),
  roomName: z.string().min(1).max(200),
  claimedSeconds: z.number().int().min(0).max(2_000_000_000),
  listing: z.object({ userId, limit: z.number().int().min(1).max(1000).optional() }),
  checkout: z.object({ userId, checkoutSessionId: z.string().regex(/^cs_\w{1,200}$/, 'a Checkout Session id like cs_...') }),
  month: z.string().regex(/^[12]\d{3}-(0[1-9]|1[0-2])$/, 'a month like 2026-01').optional(),
  months: z.number().int().min(1).max(120).optional(),
  days: z.number().int().min(1).max(366).optional(),
  usersPage: z.object({
    limit: z.number().int().min(1).max(500).optional(),
    offset: z.number().int().min(0).max(1_000_000_000).optional(),
  }),
  tierId: z.string().regex(/^[a-z0-9][a-z0-9_]{1,39}$/, 'a tier id like starter_1h'),
  // Shapes only: the rules of a tier are checked by the SQL function, with its own messages.
  tier: z.object({
    id: z.string(),
    name: z.string(),
    baseSeconds: z.number().int(),
    priceCents: z.number().int(),
    description: z.string().optional(),
    bonusSeconds: z.number().int().optional(),
    currency: z.string().optional(),
    sortOrder: z.number().int().optional(),
    stripePriceId: z.string().nullable().optional(),
    active: z.boolean().optional(),
  }).strict(),
  tierChanges: z
    .object({
      name: z.string(),
      description: z.string(),
      base_seconds: z.number().int(),
      bonus_seconds: z.number().int(),
      price_cents: z.number().int(),
      currency: z.string(),
      sort_order: z.number().int(),
      stripe_price_id: z.string().nullable(),
      active: z.boolean(),
    })
    .partial()
    .strict()
    .refine((changes) => Object.keys(changes).length > 0, 'at least one field to change'),
  settings: z
    .object({
      billing_increment_seconds: z.number().int().min(1).max(3600),
      minimum_charge_seconds: z.number().int().min(0).max(86400),
      max_concurrent_sessions: z.number().int().min(1).max(100),
      card_validity: z.string().min(1),
      gift_redeem_window: z.string().min(1),
      activation_max_failures: z.number().int().min(1).max(1000),
      activation_failure_window: z.string().min(1),
    })
    .partial()
    .strict(),
};

// Shapes only: the rules of a plan of each kind are checked by the SQL functions, with their own messages.
const planTier = z.object({ up_to_seconds: z.number().int().nullable(), cents_per_minute: z.number() }).strict();
const planFields = {
  name: z.string(),
  description: z.string(),
  currency: z.string(),
  monthly_fee_cents: z.number().int(),
  included_seconds: z.number().int(),
  default_cap_cents: z.number().int().nullable(),
  max_cap_cents: z.number().int().nullable(),
  sort_order: z.number().int(),
  tiers: z.array(planTier).max(20),
};
const planInputs = {
  key: z.string().regex(/^[a-z][a-z0-9_]{1,39}$/, 'a plan key like pro_monthly'),
  definition: z.object({
    key: z.string(),
    kind: z.enum(['prepaid', 'payg', 'tiered', 'subscription']),
    ...planFields,
  }).partial({ description: true, currency: true, monthly_fee_cents: true, included_seconds: true,
    default_cap_cents: true, max_cap_cents: true, sort_order: true, tiers: true }).strict(),
  changes: z.object(planFields).partial().strict()
    .refine((changes) => Object.values(changes).some((v) => v !== undefined), 'at least one field to change'),
  month: z.string().regex(/^[12]\d{3}-(0[1-9]|1[0-2])$/, 'a month like 2026-01'),
  cap: z.number().int().positive().max(2_147_483_647),
  limit: z.number().int().min(1).max(1000),
};

function validated<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const detail = parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ');
    throw new BillingError('invalid_argument', `invalid billing request: ${detail}`);
  }
  return parsed.data;
}

function answer<T>(schema: z.ZodType<T>, fn: string, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    throw new BillingError('internal', `unexpected answer from ${fn}: ${parsed.error.message}`);
  }
  return parsed.data;
}

const KNOWN_CODES = new Set<string>(BILLING_ERROR_CODES);

/** The store over any transport: validates input, adds the clock, parses the answer. */
export class RpcBillingStore implements BillingStore {
  constructor(
    private readonly transport: RpcTransport,
    private readonly clock?: Clock,
  ) {}

  private async call<T>(fn: string, args: Record<string, unknown>, schema: z.ZodType<T>, clocked = true): Promise<T> {
    // Whoever calls (the API, a tool the model drives, a Stripe event): such text is their mistake, not a fault.
    const unstorable = unstorableTextAt(args);
    if (unstorable !== null) {
      throw new BillingError('invalid_argument',
        `invalid billing request: ${unstorable.replace(/^p_/, '').replace(/[^\x20-\x7e]/g, '?')}: text with a NUL character or an unpaired UTF-16 surrogate cannot be stored`);
    }
    const withClock = clocked && this.clock ? { ...args, p_now: this.clock() } : args;
    return answer(schema, fn, await this.transport.call(fn, withClock));
  }

  async getBalance(id: string): Promise<Balance> {
    return this.call('get_user_time_balance', { p_user_id: validated(inputs.userId, id) }, BalanceSchema);
  }

  async listPricingTiers(options: { includeInactive?: boolean } = {}): Promise<PricingTier[]> {
    return this.call('get_pricing_tiers', { p_include_inactive: options.includeInactive ?? false },
      z.array(PricingTierSchema), false);
  }

  async deductTime(input: { userId: string; seconds: number; idempotencyKey: string }): Promise<Deduction> {
    const v = validated(inputs.deduct, input);
    return this.call('deduct_user_time',
      { p_user_id: v.userId, p_seconds: v.seconds, p_idempotency_key: v.idempotencyKey }, DeductionSchema);
  }

  async grantCard(input: Parameters<BillingStore['grantCard']>[0]): Promise<Card> {
    const v = validated(inputs.grant, input);
    return this.call('grant_time_card', {
      p_user_id: v.userId,
      p_tier_id: v.tierId,
      p_payment_id: v.paymentId ?? null,
      p_idempotency_key: v.idempotencyKey,
      p_purchaser_id: v.purchaserId ?? undefined,
    }, CardSchema);
  }

  async activateCard(input: { userId: string; code: string }): Promise<Card> {
    const v = validated(inputs.activate, input);
    const result = await this.call('activate_time_card', { p_user_id: v.userId, p_code: v.code }, ActivationAnswerSchema);
    if (result.ok) return result.card;
    const code: BillingErrorCode = KNOWN_CODES.has(result.error.code) ? (result.error.code as BillingErrorCode) : 'internal';
    throw new BillingError(code, result.error.message);
  }

  async revokeCardTime(input: Parameters<BillingStore['revokeCardTime']>[0]): Promise<Revocation> {
    const v = validated(inputs.revoke, input);
    return this.call('revoke_card_time', {
      p_card_id: v.cardId,
      p_seconds: v.seconds === 'all' ? null : v.seconds,
      p_kind: v.kind,
      p_idempotency_key: v.idempotencyKey,
      p_reason: v.reason ?? null,
    }, RevocationSchema);
  }

  async restoreCardTime(input: { cardId: string; revokeIdempotencyKey: string }): Promise<Restoration> {
    const v = validated(inputs.restore, input);
    return this.call('restore_card_time',
      { p_card_id: v.cardId, p_revoke_idempotency_key: v.revokeIdempotencyKey }, RestorationSchema);
  }

  async adjustUserTime(input: { userId: string; seconds: number; reason: string; idempotencyKey: string }): Promise<Adjustment> {
    const v = validated(inputs.adjust, input);
    return this.call('adjust_user_time', {
      p_user_id: v.userId, p_seconds: v.seconds, p_reason: v.reason, p_idempotency_key: v.idempotencyKey,
    }, AdjustmentSchema);
  }

  async startSession(input: SessionStart): Promise<SessionState> {
    const v = validated(inputs.start, input);
    return this.call('start_voice_session', {
      p_user_id: v.userId, p_external_key: v.externalKey, p_room_name: v.roomName,
      p_agent_name: v.agentName ?? null, p_call_from: v.callFrom ?? null, p_call_to: v.callTo ?? null,
    }, SessionStateSchema);
  }

  async meterSession(sessionId: string): Promise<SessionState> {
    return this.call('meter_voice_session', { p_session_id: validated(inputs.sessionId, sessionId) }, SessionStateSchema);
  }

  async endSession(input: { sessionId: string; reason: string; endedAt?: Date }): Promise<SessionState> {
    const v = validated(inputs.end, input);
    return this.call('end_voice_session',
      { p_session_id: v.sessionId, p_reason: v.reason, p_ended_at: v.endedAt ?? null }, SessionStateSchema);
  }

  async expireCards(options: { limit?: number } = {}): Promise<ExpiryRun> {
    return this.call('expire_time_cards', { p_limit: validated(inputs.batch, options.limit ?? 500) }, ExpiryRunSchema);
  }

  async reapStaleSessions(maxSilenceSeconds: number, options: { limit?: number } = {}): Promise<ReapRun> {
    return this.call('reap_stale_sessions', {
      p_max_silence_seconds: validated(inputs.silence, maxSilenceSeconds),
      p_limit: validated(inputs.batch, options.limit ?? 500),
    }, ReapRunSchema);
  }

  async updateSettings(changes: SettingsChanges): Promise<BillingSettings> {
    return this.call('update_billing_settings', { p_changes: validated(inputs.settings, changes) },
      BillingSettingsSchema, false);
  }

  async recordPaymentSuccess(event: StripeEventRef, payment: PaymentFacts): Promise<StripeEventOutcome> {
    return this.call('record_payment_success', {
      ...this.eventArgs(event),
      p_user_id: validated(inputs.userId, payment.userId),
      p_tier_id: payment.tierId,
      p_gift: payment.gift,
      p_amount_cents: validated(inputs.cents, payment.amountCents),
      p_currency: payment.currency,
      ...this.stripeIds(payment),
      p_charge_id: validated(inputs.stripeId, payment.chargeId) ?? null,
      p_customer_id: validated(inputs.stripeId, payment.customerId) ?? null,
      p_seconds: validated(positiveSeconds.nullish(), payment.seconds) ?? null,
      p_price_cents: validated(inputs.cents.nullish(), payment.priceCents) ?? null,
      p_price_currency: validated(inputs.currency.nullish(), payment.priceCurrency) ?? null,
    }, StripeEventOutcomeSchema);
  }

  async recordPaymentFailure(event: StripeEventRef,
    payment: Partial<PaymentFacts> & { reason: string; stage: PaymentFailureStage }): Promise<StripeEventOutcome> {
    return this.call('record_payment_failure', {
      ...this.eventArgs(event),
      p_user_id: payment.userId === undefined ? null : validated(inputs.userId, payment.userId),
      p_tier_id: payment.tierId ?? null,
      p_gift: payment.gift ?? false,
      p_amount_cents: validated(inputs.cents, payment.amountCents ?? 0),
      p_currency: payment.currency ?? 'usd',
      ...this.stripeIds(payment),
      p_reason: payment.reason.slice(0, 500),
      p_stage: validated(z.enum(['attempt', 'failed', 'expired', 'canceled']), payment.stage),
    }, StripeEventOutcomeSchema);
  }

  async recordRefunds(event: StripeEventRef, refund: RefundFacts): Promise<StripeEventOutcome> {
    return this.call('record_refunds', {
      ...this.eventArgs(event),
      p_payment_intent_id: validated(inputs.stripeId, refund.paymentIntentId) ?? null,
      p_charge_id: validated(inputs.stripeId, refund.chargeId) ?? null,
      p_refunds: validated(inputs.refunds, refund.refunds),
    }, StripeEventOutcomeSchema);
  }

  async recordDispute(event: StripeEventRef, dispute: DisputeFacts): Promise<StripeEventOutcome> {
    return this.call('record_dispute', {
      ...this.eventArgs(event),
      p_payment_intent_id: validated(inputs.stripeId, dispute.paymentIntentId) ?? null,
      p_charge_id: validated(inputs.stripeId, dispute.chargeId) ?? null,
      p_dispute_id: dispute.disputeId,
      p_status: validated(z.string().min(1).max(40), dispute.status),
      p_inquiry: dispute.inquiry,
    }, StripeEventOutcomeSchema);
  }

  async recordStripeAttention(event: StripeEventRef, attention: AttentionFacts): Promise<StripeEventOutcome> {
    return this.call('record_stripe_attention', {
      ...this.eventArgs(event),
      p_code: validated(z.string().regex(/^[a-z][a-z_]{2,59}$/), attention.code),
      p_message: attention.message.slice(0, 1000),
      p_object_id: validated(inputs.stripeId, attention.objectId) ?? null,
    }, StripeEventOutcomeSchema);
  }

  async listStripeAttention(options: { limit?: number } = {}): Promise<StripeAttentionList> {
    return this.call('list_stripe_attention', { p_limit: validated(z.number().int().min(1).max(1000), options.limit ?? 100) },
      StripeAttentionListSchema, false);
  }

  async recordIgnoredStripeEvent(event: StripeEventRef): Promise<StripeEventOutcome> {
    return this.call('record_ignored_stripe_event', this.eventArgs(event), StripeEventOutcomeSchema);
  }

  async getPayment(paymentId: string): Promise<PaymentDetail> {
    return this.call('get_payment', { p_payment_id: validated(inputs.sessionId, paymentId) }, PaymentDetailSchema);
  }

  async getStripeCustomer(userId: string): Promise<string | null> {
    return this.call('get_stripe_customer', { p_user_id: validated(inputs.userId, userId) }, z.string().nullable(), false);
  }

  async rememberStripeCustomer(userId: string, customerId: string): Promise<string> {
    return this.call('remember_stripe_customer', {
      p_user_id: validated(inputs.userId, userId),
      p_customer_id: validated(z.string().min(3).max(255), customerId),
    }, z.string(), false);
  }

  async enqueueBalanceNotifications(options: NotificationScanOptions = {}): Promise<NotificationScan> {
    return this.call('enqueue_balance_notifications', {
      p_low_balance_seconds: validated(inputs.silence, options.lowBalanceSeconds ?? 1800),
      p_expiring_within_days: validated(z.number().int().min(1).max(365), options.expiringWithinDays ?? 7),
      p_after_user: validated(inputs.userId.nullable(), options.afterUser ?? null),
      p_limit: validated(z.number().int().min(1).max(10_000), options.limit ?? 1000),
    }, NotificationScanSchema);
  }

  async claimNotifications(options: { limit: number; leaseSeconds: number }): Promise<ClaimedNotification[]> {
    return this.call('claim_notifications', {
      p_limit: validated(z.number().int().min(1).max(1000), options.limit),
      p_lease_seconds: validated(inputs.silence, options.leaseSeconds),
    }, z.array(ClaimedNotificationSchema));
  }

  async reportNotification(report: {
    id: string; delivered: boolean; error?: string | undefined; retrySeconds: number; maxAttempts: number;
  }): Promise<{ id: string; state: 'delivered' | 'retrying' | 'dead' }> {
    return this.call('report_notification', {
      p_id: validated(inputs.sessionId, report.id),
      p_delivered: report.delivered,
      p_error: report.error?.slice(0, 1000) ?? null,
      p_retry_seconds: validated(inputs.silence, report.retrySeconds),
      p_max_attempts: validated(z.number().int().min(1).max(100), report.maxAttempts),
    }, z.object({ id: z.string(), state: z.enum(['delivered', 'retrying', 'dead']) }));
  }

  async billingMetrics(): Promise<Record<string, number>> {
    return this.call('billing_metrics', {}, BillingMetricsSchema);
  }

  async claimMeterEvents(options: { limit: number; leaseSeconds: number; owner: string }): Promise<ClaimedMeterEvent[]> {
    return this.call('claim_meter_events', {
      p_limit: validated(z.number().int().min(1).max(5000), options.limit),
      p_lease_seconds: validated(z.number().int().min(1).max(86400), options.leaseSeconds),
      p_owner: validated(z.string().min(1).max(200), options.owner),
    }, z.array(ClaimedMeterEventSchema));
  }

  async reportMeterEvents(input: { owner: string; results: MeterEventResult[] }): Promise<MeterEventReport> {
    return this.call('report_meter_events', {
      p_results: validated(z.array(MeterEventResultSchema).max(5000), input.results),
      p_owner: validated(z.string().min(1).max(200), input.owner),
    }, MeterEventReportSchema);
  }

  async meterOutboxStats(): Promise<MeterOutboxStats> {
    return this.call('meter_outbox_stats', {}, MeterOutboxStatsSchema);
  }

  async meterReconciliationPeriods(options: { settleSeconds?: number; lookbackDays?: number; limit?: number } = {}): Promise<ReconciliationPeriod[]> {
    return this.call('meter_reconciliation_periods', {
      p_settle_seconds: validated(z.number().int().min(0).max(86400), options.settleSeconds ?? 300),
      p_lookback_days: validated(z.number().int().min(1).max(400), options.lookbackDays ?? 40),
      p_limit: validated(z.number().int().min(1).max(10_000), options.limit ?? 500),
    }, z.array(ReconciliationPeriodSchema));
  }

  async recordMeterReconciliation(results: (ReconciliationPeriod & { stripe_seconds: number })[]): Promise<ReconciliationRecord> {
    return this.call('record_meter_reconciliation', {
      p_results: validated(z.array(ReconciliationPeriodSchema.extend({ stripe_seconds: z.number().int().min(0) })).max(10_000), results),
    }, ReconciliationRecordSchema);
  }

  async startClientSession(input: { userId: string; clientSessionId: string; roomName: string }): Promise<SessionState> {
    const v = validated(inputs.clientSession, { userId: input.userId, clientSessionId: input.clientSessionId });
    return this.startSession({ userId: v.userId, externalKey: clientSessionKey(v.userId, v.clientSessionId),
      roomName: validated(inputs.roomName, input.roomName) });
  }

  async meterClientSession(input: { userId: string; clientSessionId: string }): Promise<SessionState> {
    const v = validated(inputs.clientSession, input);
    return this.call('meter_client_session',
      { p_user_id: v.userId, p_external_key: clientSessionKey(v.userId, v.clientSessionId) }, SessionStateSchema);
  }

  async endClientSession(input: { userId: string; clientSessionId: string; claimedSeconds: number }): Promise<SessionState> {
    const v = validated(inputs.clientSession, { userId: input.userId, clientSessionId: input.clientSessionId });
    return this.call('end_client_session', {
      p_user_id: v.userId,
      p_external_key: clientSessionKey(v.userId, v.clientSessionId),
      p_claimed_seconds: validated(inputs.claimedSeconds, input.claimedSeconds),
    }, SessionStateSchema);
  }

  async listSessions(input: { userId: string; limit?: number }): Promise<SessionRecord[]> {
    const v = validated(inputs.listing, input);
    return this.call('get_user_sessions', { p_user_id: v.userId, p_limit: v.limit }, z.array(SessionRecordSchema));
  }

  async listPayments(input: { userId: string; limit?: number }): Promise<PaymentRecord[]> {
    const v = validated(inputs.listing, input);
    return this.call('get_user_payments', { p_user_id: v.userId, p_limit: v.limit }, z.array(PaymentRecordSchema), false);
  }

  async listGifts(input: { userId: string; limit?: number }): Promise<GiftRecord[]> {
    const v = validated(inputs.listing, input);
    return this.call('get_user_gifts', { p_user_id: v.userId, p_limit: v.limit }, z.array(GiftRecordSchema), false);
  }

  async getCheckoutPurchase(input: { userId: string; checkoutSessionId: string }): Promise<CheckoutPurchase> {
    const v = validated(inputs.checkout, input);
    return this.call('get_checkout_purchase',
      { p_user_id: v.userId, p_checkout_session_id: v.checkoutSessionId }, CheckoutPurchaseSchema, false);
  }

  async getMonthlyUsage(input: { userId: string; month?: string | undefined }): Promise<MonthlyUsage> {
    return this.call('get_user_monthly_usage', {
      p_user_id: validated(inputs.userId, input.userId),
      p_month: validated(inputs.month, input.month) ?? null,
    }, MonthlyUsageSchema);
  }

  async getUserAnalytics(input: { userId: string; months?: number }): Promise<UserAnalytics> {
    return this.call('get_user_analytics', {
      p_user_id: validated(inputs.userId, input.userId),
      p_months: validated(inputs.months, input.months),
    }, UserAnalyticsSchema);
  }

  async listPlans(options: { includeRetired?: boolean } = {}): Promise<PlanList> {
    return this.call('list_plans', { p_include_retired: options.includeRetired ?? false }, PlanListSchema, false);
  }

  async createPlan(definition: PlanDefinition): Promise<PlanWrite> {
    return this.call('create_plan', { p_definition: validated(planInputs.definition, definition) }, PlanWriteSchema);
  }

  async revisePlan(key: string, changes: PlanChanges): Promise<PlanWrite> {
    return this.call('revise_plan', {
      p_key: validated(planInputs.key, key), p_changes: validated(planInputs.changes, changes),
    }, PlanWriteSchema);
  }

  async retirePlan(key: string): Promise<PlanWrite> {
    return this.call('retire_plan', { p_key: validated(planInputs.key, key) }, PlanWriteSchema);
  }

  async getUsageCurrent(userId: string): Promise<UsageCurrent> {
    return this.call('get_usage_current', { p_user_id: validated(inputs.userId, userId) }, UsageCurrentSchema);
  }

  async getUsageHistory(input: { userId: string; month: string }): Promise<UsageHistory> {
    return this.call('get_usage_history', {
      p_user_id: validated(inputs.userId, input.userId),
      p_month: validated(planInputs.month, input.month),
    }, UsageHistorySchema);
  }

  async setSpendingCap(input: { userId: string; capCents: number }): Promise<UsageCurrent> {
    return this.call('set_spending_cap', {
      p_user_id: validated(inputs.userId, input.userId),
      p_cap_cents: validated(planInputs.cap, input.capCents),
    }, UsageCurrentSchema);
  }

  async listPlanSubscribers(options: { planKey?: string | undefined; limit?: number; offset?: number } = {}): Promise<PlanSubscribers> {
    return this.call('list_plan_subscribers', {
      p_plan_key: validated(planInputs.key.optional(), options.planKey) ?? null,
      p_limit: validated(planInputs.limit, options.limit ?? 100),
      p_offset: validated(inputs.usersPage.shape.offset, options.offset ?? 0),
    }, PlanSubscribersSchema, false);
  }

  async getMrr(): Promise<Mrr> {
    return this.call('get_mrr', {}, MrrSchema);
  }

  async getUsageByPlan(options: { days?: number } = {}): Promise<UsageByPlan> {
    return this.call('get_usage_by_plan', { p_days: validated(inputs.days, options.days) }, UsageByPlanSchema);
  }

  async getUsageByAgent(options: { days?: number } = {}): Promise<UsageByAgent> {
    return this.call('get_usage_by_agent', { p_days: validated(inputs.days, options.days) }, UsageByAgentSchema);
  }

  async listInvoices(options: { status?: InvoiceFilter; limit?: number } = {}): Promise<InvoiceList> {
    return this.call('list_stripe_invoices', {
      p_status: validated(z.enum(INVOICE_FILTERS), options.status ?? 'outstanding'),
      p_limit: validated(planInputs.limit, options.limit ?? 100),
    }, InvoiceListSchema, false);
  }

  async listMeterDrift(options: { includeResolved?: boolean; limit?: number } = {}): Promise<MeterDriftList> {
    return this.call('list_meter_drift', {
      p_include_resolved: options.includeResolved ?? false,
      p_limit: validated(planInputs.limit, options.limit ?? 100),
    }, MeterDriftListSchema, false);
  }

  async getRevenueReport(options: { days?: number; currency?: string | undefined } = {}): Promise<RevenueReport> {
    return this.call('get_revenue_report', {
      p_days: validated(inputs.days, options.days),
      p_currency: validated(z.string().regex(/^[a-z]{3}$/, 'a currency like usd').optional(), options.currency),
    }, RevenueReportSchema);
  }

  async getBooks(): Promise<Books> {
    return this.call('get_books', {}, BooksSchema);
  }

  async getUsageReport(options: { days?: number } = {}): Promise<UsageReport> {
    return this.call('get_usage_report', { p_days: validated(inputs.days, options.days) }, UsageReportSchema);
  }

  async listBillingUsers(options: { limit?: number; offset?: number } = {}): Promise<BillingUserList> {
    const v = validated(inputs.usersPage, options);
    return this.call('list_billing_users', { p_limit: v.limit, p_offset: v.offset }, BillingUserListSchema);
  }

  async getUserReport(userId: string): Promise<UserReport> {
    return this.call('get_user_report', { p_user_id: validated(inputs.userId, userId) }, UserReportSchema);
  }

  async upsertPricingTier(tier: TierDefinition): Promise<TierWrite> {
    const v = validated(inputs.tier, tier);
    return this.call('upsert_pricing_tier', {
      p_id: v.id,
      p_name: v.name,
      p_base_seconds: v.baseSeconds,
      p_price_cents: v.priceCents,
      p_description: v.description,
      p_bonus_seconds: v.bonusSeconds,
      p_currency: v.currency,
      p_sort_order: v.sortOrder,
      p_stripe_price_id: v.stripePriceId,
      p_active: v.active,
    }, TierWriteSchema);
  }

  async updatePricingTier(tierId: string, changes: TierChanges): Promise<TierWrite> {
    return this.call('update_pricing_tier', {
      p_id: validated(inputs.tierId, tierId),
      p_changes: validated(inputs.tierChanges, changes),
    }, TierWriteSchema);
  }

  async deactivatePricingTier(tierId: string): Promise<TierWrite> {
    return this.call('deactivate_pricing_tier', { p_id: validated(inputs.tierId, tierId) }, TierWriteSchema);
  }

  private eventArgs(event: StripeEventRef): Record<string, unknown> {
    const v = validated(inputs.event, event);
    return { p_event_id: v.id, p_event_type: v.type, p_payload: v.payload ?? {} };
  }

  private stripeIds(payment: Partial<PaymentFacts>): Record<string, unknown> {
    return {
      p_checkout_session_id: validated(inputs.stripeId, payment.checkoutSessionId) ?? null,
      p_payment_intent_id: validated(inputs.stripeId, payment.paymentIntentId) ?? null,
    };
  }

  async close(): Promise<void> {
    return this.transport.close();
  }
}

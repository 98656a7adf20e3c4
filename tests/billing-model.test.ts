// Model-based random test of the billing rules.
//
// Thousands of seeded random operations over a handful of users and a moving clock run against the SQL
// functions (through the store) and against a small in-memory reference model written here from the
// documented rules. After every step the test compares the operation's answer, every user's balance, every
// card, every payment and every voice session with the model, checks that the ledger still adds up, and that
// the books (get_books: seconds sold + adjusted = used + expired + taken back + outstanding, cents received =
// refunded + kept, per currency) hold and say what the model says. Besides the store's own operations the walk
// pays through Stripe's events (in two currencies, gifts too), refunds and disputes them, and runs calls the
// client runs itself (/time/session: start, heartbeat, end). Two of the users are postpaid (migrations/017): one
// on a subscription with included seconds and graduated overage, one on a tiered plan; the walk suspends and lifts
// their plans, moves their caps and starts new periods, and the model predicts every usage charge (included then
// cards then the rate under the cap, priced exactly through the tiers) and the postpaid books.
//
// Replay a failure with the seed printed in the test name and the assertion message:
//   MODEL_SEED=123 node --import tsx --test tests/billing-model.test.ts
// (add --test-name-pattern=PostgreSQL or =PGlite to run one pass). MODEL_STEPS sets the PostgreSQL pass's
// length (default 3000), MODEL_PGLITE_STEPS the PGlite pass's (default 400), MODEL_TRACE=1 prints every
// operation. A replay draws the same operations with the same arguments. The one thing a seed does not fix is
// the database's uuids: cards of one user with the same expiry and creation time are spent in the order of
// their random ids, so how many seconds each of those holds can differ between two runs (the walk picks its
// arguments without looking at that, but a refund of such a card can, rarely, change what later steps find).

import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { BillingError } from '../src/billing/errors.ts';
import type { SqlClient } from '../src/billing/sql-client.ts';
import type { Balance, BillingStore, Card, SessionState } from '../src/billing/store.ts';
import {
  createPgliteDatabase, createPostgresDatabase, ledgerMismatches, TestClock, type TestDatabase,
} from './helpers/test-db.ts';

// ---------------------------------------------------------------------------------------------------------
// Deterministic randomness

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[Math.floor(this.next() * items.length)]!;
  }
  weighted<T>(entries: ReadonlyArray<readonly [T, number]>): T {
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let roll = this.next() * total;
    for (const [value, weight] of entries) {
      roll -= weight;
      if (roll < 0) return value;
    }
    return entries[entries.length - 1]![0];
  }
  uuid(): string {
    let hex = '';
    for (let i = 0; i < 32; i++) hex += Math.floor(this.next() * 16).toString(16);
    const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }
}

function seedFromEnv(): number {
  const raw = process.env.MODEL_SEED;
  if (raw === undefined || raw === '') return Math.floor(Math.random() * 2 ** 32);
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) throw new Error(`MODEL_SEED must be an integer in [0, 2^32), got ${raw}`);
  return seed;
}

function stepsFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const steps = Number(raw);
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`${name} must be a positive integer, got ${raw}`);
  return steps;
}

const SEED = seedFromEnv();
const PG_STEPS = stepsFromEnv('MODEL_STEPS', 3000);
const PGLITE_STEPS = stepsFromEnv('MODEL_PGLITE_STEPS', 400);
const TRACE = process.env.MODEL_TRACE === '1';

// ---------------------------------------------------------------------------------------------------------
// The reference model: the documented rules, written independently of the SQL.

/** Seconds of each seeded pricing tier (base + bonus), from the schema's price list. */
const TIER_SECONDS: Record<string, number> = {
  starter_1h: 3600,
  basic_5h: 5 * 3600 + 30 * 60,
  premium_10h: 10 * 3600 + 2 * 3600,
  pro_25h: 25 * 3600 + 5 * 3600,
  enterprise_50h: 50 * 3600 + 10 * 3600,
  starter_eur: 3600,       // made by the test: a second currency
};

/** Each tier's price and currency: what a Stripe payment for it brings in. */
const TIER_PRICE: Record<string, [number, string]> = {
  starter_1h: [999, 'usd'], basic_5h: [4499, 'usd'], premium_10h: [7999, 'usd'], pro_25h: [17999, 'usd'],
  enterprise_50h: [29999, 'usd'], starter_eur: [900, 'eur'],
};

const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
const CODE_SHAPE = /^[2-9A-HJKMNP-Z]{12}$/;

function codeCheckSymbol(code: string): string {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum += (i + 1) * CODE_ALPHABET.indexOf(code.charAt(i));
  return CODE_ALPHABET.charAt(sum % 31);
}

function isValidCode(code: unknown): code is string {
  return typeof code === 'string' && CODE_SHAPE.test(code) && code.charAt(11) === codeCheckSymbol(code);
}

/** t + 1 calendar year in UTC, the last day of the month when the day does not exist (29 Feb). */
function plusOneYear(t: number): number {
  const d = new Date(t * 1000);
  const year = d.getUTCFullYear() + 1;
  const month = d.getUTCMonth();
  const daysInMonth = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  return Date.UTC(year, month, Math.min(d.getUTCDate(), daysInMonth), d.getUTCHours(), d.getUTCMinutes(),
    d.getUTCSeconds()) / 1000;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

type CardStatus = 'pending' | 'active' | 'exhausted' | 'expired' | 'revoked';
type SessionStatus = 'active' | 'ended' | 'cut_off' | 'abandoned';
type RevokeKind = 'refund' | 'revoke' | 'adjustment';
type LedgerKind = 'grant' | 'usage' | 'expiry' | 'refund' | 'revoke' | 'restore' | 'adjustment';
type PaymentStatus = 'succeeded' | 'partially_refunded' | 'refunded' | 'disputed';

const noFlows = (): Record<LedgerKind, number> =>
  ({ grant: 0, usage: 0, expiry: 0, refund: 0, revoke: 0, restore: 0, adjustment: 0 });

interface MCard {
  id: string;
  userId: string | null;
  purchaserId: string | null;
  tierId: string | null;
  source: 'purchase' | 'gift' | 'adjustment';
  /** Null until read back (an adjustment's card answer does not carry its code). */
  code: string | null;
  total: number;
  remaining: number;
  status: CardStatus;
  activatedAt: number | null;
  expiresAt: number;
  createdAt: number;
  note: string | null;
  grantKey: string;
  paymentId: string | null;
  /** Its payment's currency; null for time no money bought. */
  currency: string | null;
  /** The signed sum of the card's ledger rows of each kind. */
  flows: Record<LedgerKind, number>;
}

interface MPayment {
  id: string;
  userId: string;
  tierId: string;
  gift: boolean;
  amount: number;
  currency: string;
  status: PaymentStatus;
  refunded: number;
  cardId: string;
  paymentIntentId: string;
  checkoutSessionId: string;
}

/** A refund as Stripe lists it in an event. */
interface MRefundObject {
  id: string;
  amount: number;
  status: string;
}

interface MRefund {
  paymentId: string;
  createdAt: number;
  amount: number;
  status: string;
  taken: number;
  returned: number;
  applied: boolean;
}

type MDisputeEvent = 'created' | 'funds_withdrawn' | 'funds_reinstated' | 'closed';

interface MDispute {
  paymentId: string;
  status: string;
  withdrawn: boolean;
  reinstated: boolean;
  frozen: boolean;
  freezes: number;
}

interface MSession {
  id: string;
  userId: string;
  externalKey: string;
  roomName: string;
  status: SessionStatus;
  startedAt: number;
  lastMeteredAt: number;
  endedAt: number | null;
  endReason: string | null;
  billed: number;
  increment: number;
  minimum: number;
}

/** Exact amounts in units of 1e-12 minor units: the scale of cents_per_second and of usage_charges.amount_exact. */
const EXACT = 10n ** 12n;
const INT_MAX = 2147483647;

/** A postpaid user's plan (migrations/016, 017), rates per second in EXACT units. */
interface MPlan {
  userPlanId: string;
  planId: string;
  includedSeconds: number;
  tiers: Array<{ upTo: number | null; perSecond: bigint }>;
  capCents: number;
  status: 'active' | 'suspended';
  /** Stripe's period as the user plan row has it (the webhooks move it). */
  periodStart: number;
  periodEnd: number;
}

/** A plan in the period that contains a moment, with that period's usage so far. */
interface MPeriodPlan extends MPlan {
  includedUsed: number;
  rated: number;
  amount: bigint;
}

interface MCharge {
  identifier: string;
  userId: string;
  sessionId: string;
  periodStart: number;
  included: number;
  rated: number;
  amount: bigint;
}

/** The exact cost of n billable seconds from position p through graduated tiers: each second at its own tier. */
function tierCost(plan: MPlan, position: number, n: number): bigint {
  let cost = 0n;
  let lower = 0;
  for (const tier of plan.tiers) {
    const upper = tier.upTo ?? Number.MAX_SAFE_INTEGER;
    const overlap = Math.max(0, Math.min(position + n, upper) - Math.max(position, lower));
    cost += BigInt(overlap) * tier.perSecond;
    lower = upper;
  }
  return cost;
}

/** The one rounding rule: half-up to whole minor units. */
const roundLine = (amount: bigint): bigint => (amount + EXACT / 2n) / EXACT;

const formatExact = (amount: bigint): string => `${amount / EXACT}.${(amount % EXACT).toString().padStart(12, '0')}`;

type Outcome = { ok: true; value: unknown } | { ok: false; code: string };
const ok = (value: unknown): Outcome => ({ ok: true, value });
const fail = (code: string): Outcome => ({ ok: false, code });

interface RecordedOp {
  kind: string;
  request: string;
  result: Record<string, unknown>;
}

interface NewIds {
  id: string;
  code?: string;
}

class Model {
  readonly cards = new Map<string, MCard>();
  readonly sessions = new Map<string, MSession>();
  readonly payments = new Map<string, MPayment>();
  /** Stripe refunds and disputes by their ids. */
  readonly refunds = new Map<string, MRefund>();
  readonly disputes = new Map<string, MDispute>();
  /** Stripe events applied, by id: a repeated one changes nothing. */
  readonly stripeEvents = new Set<string>();
  readonly ops = new Map<string, RecordedOp>();
  /** Postpaid plans by user, the usage charges they wrote, and what cards paid of each session. */
  readonly plans = new Map<string, MPlan>();
  readonly charges: MCharge[] = [];
  readonly sessionCardSeconds = new Map<string, number>();
  readonly failures: Array<{ userId: string; at: number }> = [];
  settings = { increment: 60, minimum: 60, maxConcurrent: 3, maxFailures: 10, failureWindow: 15 * 60 };
  /** Oddities the SQL allows and the model mirrors, counted for the report. */
  readonly notes = new Map<string, number>();
  /** How often the interesting branches of the rules were taken, for the report. */
  readonly coverage = new Map<string, number>();

  constructor(public now: number) {}

  note(what: string): void {
    this.notes.set(what, (this.notes.get(what) ?? 0) + 1);
  }

  cover(what: string): void {
    this.coverage.set(what, (this.coverage.get(what) ?? 0) + 1);
  }

  // ----- reading

  /** The cards a balance shows: active, not past expiry, first to expire first. */
  spendableCards(userId: string): MCard[] {
    return [...this.cards.values()]
      .filter((c) => c.userId === userId && c.status === 'active' && c.expiresAt > this.now)
      .sort((a, b) => a.expiresAt - b.expiresAt || a.createdAt - b.createdAt || compareIds(a.id, b.id));
  }

  spendable(userId: string): number {
    return this.spendableCards(userId).reduce((sum, c) => sum + c.remaining, 0);
  }

  hasAnyCard(userId: string): boolean {
    for (const c of this.cards.values()) if (c.userId === userId) return true;
    return false;
  }

  balance(userId: string): unknown {
    const cards = this.spendableCards(userId);
    return {
      user_id: userId,
      total_seconds: cards.reduce((sum, c) => sum + c.remaining, 0),
      card_count: cards.length,
      next_expiry: cards[0]?.expiresAt ?? null,
      cards: cards.map((c) => ({
        card_id: c.id, tier_id: c.tierId, source: c.source, remaining_seconds: c.remaining, total_seconds: c.total,
        activated_at: c.activatedAt, expires_at: c.expiresAt,
      })),
    };
  }

  cardJson(c: MCard, replayed: boolean | null): Record<string, unknown> {
    return {
      id: c.id, user_id: c.userId, purchaser_id: c.purchaserId, tier_id: c.tierId, source: c.source,
      activation_code: c.code, total_seconds: c.total, remaining_seconds: c.remaining, status: c.status,
      activated_at: c.activatedAt, expires_at: c.expiresAt, payment_id: c.paymentId, note: c.note, created_at: c.createdAt,
      replayed,
    };
  }

  sessionJson(s: MSession, charged: number, shortfall: number, replayed: boolean): Record<string, unknown> {
    return {
      session_id: s.id, user_id: s.userId, external_key: s.externalKey, room_name: s.roomName, status: s.status,
      started_at: s.startedAt, last_metered_at: s.lastMeteredAt, ended_at: s.endedAt, end_reason: s.endReason,
      billed_seconds: s.billed, covered_until: s.startedAt + s.billed, increment_seconds: s.increment,
      charged_seconds: charged, shortfall_seconds: shortfall,
      // The plan block is of the period containing the session's latest charge (017's session_json).
      remaining_seconds: Math.min(INT_MAX, this.spendable(s.userId) + this.planLeft(s.userId, s.lastMeteredAt)), replayed,
      plan: this.planJson(s.userId, s.lastMeteredAt),
    };
  }

  /**
   * The user's plan in the period that contains `at`, as Stripe files usage by its time: from the row's period
   * end on (before the webhook moves the period) the next period, which starts there; with its usage so far.
   */
  planAt(userId: string, at: number): MPeriodPlan | undefined {
    const plan = this.plans.get(userId);
    if (!plan) return undefined;
    const periodStart = at >= plan.periodEnd ? plan.periodEnd : plan.periodStart;
    const view: MPeriodPlan = { ...plan, periodStart, includedUsed: 0, rated: 0, amount: 0n };
    for (const c of this.charges) {
      if (c.userId !== userId || c.periodStart !== periodStart) continue;
      view.includedUsed += c.included;
      view.rated += c.rated;
      view.amount += c.amount;
    }
    return view;
  }

  /** The plan block of a session's answer: the period so far in the plan's terms; null for a prepaid user. */
  planJson(userId: string, at: number): Record<string, unknown> | null {
    const plan = this.planAt(userId, at);
    if (!plan) return null;
    const charged = this.charges.some((c) => c.userId === userId && c.periodStart === plan.periodStart);
    const usage = Number(roundLine(plan.amount));
    return {
      status: plan.status, period_cost_exact: charged ? formatExact(plan.amount) : '0', period_usage_cents: usage,
      cap_cents: plan.capCents, cap_left_cents: Math.max(0, plan.capCents - usage),
      included_left_seconds: plan.includedSeconds - plan.includedUsed, seconds_left: this.planLeft(userId, at),
    };
  }

  /** The most rated seconds the period can still take with its usage line rounding to at most the cap. */
  underCap(plan: MPeriodPlan): number {
    const fits = (n: number) => roundLine(plan.amount + tierCost(plan, plan.rated, n)) <= BigInt(plan.capCents);
    if (!fits(0)) return 0;
    if (fits(INT_MAX)) return INT_MAX;
    let lo = 0;
    let hi = INT_MAX;       // fits(lo), !fits(hi)
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (fits(mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  }

  /** What the plan can still pay: included seconds left, then up to the cap; nothing while suspended. */
  planLeft(userId: string, at: number): number {
    const plan = this.planAt(userId, at);
    if (!plan || plan.status !== 'active') return 0;
    return Math.min(INT_MAX, plan.includedSeconds - plan.includedUsed + this.underCap(plan));
  }

  // ----- the rules

  /** Changes a card's remaining seconds: an active card that reaches zero is exhausted, and back. */
  private move(card: MCard, delta: number, kind: LedgerKind): void {
    card.remaining += delta;
    card.flows[kind] += delta;
    if (card.remaining < 0) throw new Error(`model bug: card ${card.id} below zero`);
    if (card.status === 'active' && card.remaining === 0) card.status = 'exhausted';
    else if (card.status === 'exhausted' && card.remaining > 0) card.status = 'active';
  }

  /** FIFO by expiry, then creation, then id; never below zero, the rest is the shortfall. */
  private spend(userId: string, seconds: number, kind: LedgerKind): { deducted: number; shortfall: number; entries: unknown[] } {
    let left = seconds;
    const entries: unknown[] = [];
    const cards = this.spendableCards(userId).filter((c) => c.remaining > 0);
    for (const [i, card] of cards.entries()) {
      if (left === 0) break;
      const next = cards[i + 1];
      if (next && next.expiresAt === card.expiresAt && next.createdAt === card.createdAt) {
        this.cover('spend-fifo-tie-broken-by-id');
      } else if (next && next.expiresAt === card.expiresAt) {
        this.cover('spend-fifo-tie-broken-by-created_at');
      }
      const take = Math.min(left, card.remaining);
      this.move(card, -take, kind);
      left -= take;
      entries.push({ card_id: card.id, seconds: take });
    }
    if (entries.length > 1) this.cover('spend-across-cards');
    if (left > 0) this.cover(left === seconds ? 'spend-nothing-available' : 'spend-partial-shortfall');
    if (this.spendableCards(userId).some((c) => c.expiresAt > this.now) &&
        [...this.cards.values()].some((c) => c.userId === userId && c.status === 'active' && c.expiresAt <= this.now && c.remaining > 0)) {
      this.cover('spend-skipped-card-past-expiry');
    }
    return { deducted: seconds - left, shortfall: left, entries };
  }

  private replay(key: string, kind: string, request: string): Outcome | null {
    const op = this.ops.get(key);
    if (!op) return null;
    if (op.kind !== kind || op.request !== request) return fail('idempotency_conflict');
    return ok({ ...structuredClone(op.result), replayed: true });
  }

  private remember(key: string, kind: string, request: string, result: Record<string, unknown>): Outcome {
    this.ops.set(key, { kind, request, result: structuredClone(result) });
    return ok({ ...result, replayed: false });
  }

  grant(input: { userId: string | null; tierId: string; purchaserId: string | null; key: string },
    fresh?: NewIds, payment?: { id: string; currency: string }): Outcome {
    const seconds = TIER_SECONDS[input.tierId];
    if (seconds === undefined) return fail('unknown_tier');
    const existing = [...this.cards.values()].find((c) => c.grantKey === input.key);
    if (existing) {
      const conflict = existing.tierId !== input.tierId
        || (input.userId === null) !== (existing.source === 'gift')
        || (input.userId !== null && existing.userId !== input.userId);
      return conflict ? fail('idempotency_conflict') : ok(this.cardJson(existing, true));
    }
    const gift = input.userId === null;
    const card: MCard = {
      id: fresh?.id ?? '<no id>', userId: input.userId, purchaserId: input.purchaserId ?? input.userId,
      tierId: input.tierId, source: gift ? 'gift' : 'purchase', code: fresh?.code ?? null, total: seconds,
      remaining: seconds, status: gift ? 'pending' : 'active', activatedAt: gift ? null : this.now,
      expiresAt: plusOneYear(this.now), createdAt: this.now, note: null, grantKey: input.key,
      paymentId: payment?.id ?? null, currency: payment?.currency ?? null, flows: { ...noFlows(), grant: seconds },
    };
    this.cards.set(card.id, card);
    return ok(this.cardJson(card, false));
  }

  activate(userId: string, input: string): Outcome {
    const code = input.replace(/[\s-]/g, '').toUpperCase();
    if (!CODE_SHAPE.test(code)) return fail('malformed_code');
    if (code.charAt(11) !== codeCheckSymbol(code)) return fail('mistyped_code');
    const recent = this.failures.filter((f) => f.userId === userId && f.at > this.now - this.settings.failureWindow);
    if (recent.length < this.settings.maxFailures && this.failures.filter((f) => f.userId === userId
        && f.at >= this.now - this.settings.failureWindow).length >= this.settings.maxFailures) {
      this.cover('activate-just-out-of-the-rate-limit');
    }
    if (recent.length >= this.settings.maxFailures) return fail('rate_limited');
    const card = [...this.cards.values()].find((c) => c.code === code);
    let error: string;
    if (!card) error = 'unknown_code';
    else if (card.status === 'expired' || (card.status === 'pending' && card.expiresAt <= this.now)) error = 'code_expired';
    else if (card.status === 'revoked') error = 'code_revoked';
    else if (card.status !== 'pending') error = 'code_already_used';
    else {
      card.userId = userId;
      card.status = 'active';
      card.activatedAt = this.now;
      card.expiresAt = plusOneYear(this.now);
      this.cover(card.remaining < card.total ? 'activate-partly-refunded-gift' : 'activate-gift');
      if (card.remaining === 0) this.note('gift activated with 0 seconds left stays active, not exhausted');
      return ok(this.cardJson(card, null));
    }
    this.failures.push({ userId, at: this.now });
    return fail(error);
  }

  deduct(userId: string, seconds: number, key: string): Outcome {
    const request = `${userId}|${seconds}`;
    const replayed = this.replay(key, 'deduct', request);
    if (replayed) return replayed;
    if (!this.hasAnyCard(userId)) return fail('unknown_user');
    const spent = this.spend(userId, seconds, 'usage');
    return this.remember(key, 'deduct', request, {
      user_id: userId, deducted_seconds: spent.deducted, shortfall_seconds: spent.shortfall,
      remaining_seconds: this.spendable(userId), entries: spent.entries,
    });
  }

  revoke(cardId: string, seconds: number | 'all', kind: RevokeKind, key: string): Outcome {
    const card = this.cards.get(cardId);
    if (!card) return fail('unknown_card');
    const request = `${cardId}|${seconds}|${kind}`;
    const replayed = this.replay(key, 'revoke', request);
    if (replayed) return replayed;
    const before = card.remaining;
    const take = Math.min(seconds === 'all' ? before : seconds, before);
    if (take > 0) {
      this.cover(`revoke-${take === before ? 'all' : 'part'}-of-${card.status}`);
      this.move(card, -take, kind);
      if (take === before && (kind !== 'adjustment' || card.status === 'pending')) card.status = 'revoked';
    } else {
      this.cover('revoke-nothing-left');
    }
    return this.remember(key, 'revoke', request, {
      card_id: card.id, user_id: card.userId, revoked_seconds: take, remaining_seconds: card.remaining,
      status: card.status,
    });
  }

  restore(cardId: string, revokeKey: string): Outcome {
    const card = this.cards.get(cardId);
    if (!card) return fail('unknown_card');
    const revocation = this.ops.get(revokeKey);
    if (!revocation || revocation.kind !== 'revoke' || revocation.result.card_id !== cardId) return fail('unknown_revocation');
    const key = `restore:${revokeKey}`;
    const request = cardId;
    const replayed = this.replay(key, 'restore', request);
    if (replayed) return replayed;
    const give = Math.min(revocation.result.revoked_seconds as number, card.total - card.remaining);
    let forfeited = 0;
    if (give > 0) {
      this.move(card, give, 'restore');
      if (card.status === 'revoked') card.status = card.userId === null ? 'pending' : 'active';
      this.cover('restore-gave-back');
      if (card.expiresAt <= this.now) {
        this.cover('restore-forfeited-at-once');
        // A card past its expiry forfeits at once what the restoration gave back (and all it still held).
        forfeited = card.remaining;
        card.flows.expiry -= card.remaining;
        card.remaining = 0;
        card.status = 'expired';
      }
    }
    return this.remember(key, 'restore', request, {
      card_id: card.id, user_id: card.userId, restored_seconds: give, forfeited_seconds: forfeited,
      remaining_seconds: card.remaining, status: card.status,
    });
  }

  adjust(userId: string, seconds: number, reason: string, key: string, fresh?: NewIds): Outcome {
    const request = `${userId}|${seconds}|${reason}`;
    const replayed = this.replay(key, 'adjust', request);
    if (replayed) return replayed;
    if (seconds > 0) {
      const card: MCard = {
        id: fresh?.id ?? '<no id>', userId, purchaserId: null, tierId: null, source: 'adjustment', code: null,
        total: seconds, remaining: seconds, status: 'active', activatedAt: this.now, expiresAt: plusOneYear(this.now),
        createdAt: this.now, note: reason, grantKey: `adjust:${key}`,
        paymentId: null, currency: null, flows: { ...noFlows(), adjustment: seconds },
      };
      this.cards.set(card.id, card);
      return this.remember(key, 'adjust', request, {
        user_id: userId, adjusted_seconds: seconds, shortfall_seconds: 0, card_id: card.id,
        remaining_seconds: this.spendable(userId),
      });
    }
    if (!this.hasAnyCard(userId)) return fail('unknown_user');
    const spent = this.spend(userId, -seconds, 'adjustment');
    return this.remember(key, 'adjust', request, {
      user_id: userId, adjusted_seconds: -spent.deducted, shortfall_seconds: spent.shortfall, card_id: null,
      remaining_seconds: this.spendable(userId),
    });
  }

  /** What a session owes at a moment: max(minimum, increment, every increment begun). */
  private due(s: MSession, at: number): number {
    return Math.max(s.minimum, s.increment, Math.ceil((at - s.startedAt) / s.increment) * s.increment);
  }

  private charge(s: MSession, at: number): { charged: number; shortfall: number } {
    const owed = this.due(s, at) - s.billed;
    let charged = 0;
    let shortfall = 0;
    if (owed > 0) {
      // Included seconds, then cards, then the rate under the cap (docs/plans.md).
      const plan = this.planAt(s.userId, this.now);
      const pays = plan !== undefined && plan.status === 'active';
      const included = pays ? Math.min(owed, plan.includedSeconds - plan.includedUsed) : 0;
      const spent = this.spend(s.userId, owed - included, 'usage');
      this.sessionCardSeconds.set(s.id, (this.sessionCardSeconds.get(s.id) ?? 0) + spent.deducted);
      const rest = owed - included - spent.deducted;
      const rated = pays && rest > 0 ? Math.min(rest, this.underCap(plan)) : 0;
      if (plan && included + rated > 0) {
        const amount = tierCost(plan, plan.rated, rated);
        this.charges.push({ identifier: `${s.id}:${s.billed}`, userId: s.userId, sessionId: s.id,
          periodStart: plan.periodStart, included, rated, amount });
        if (plan.periodStart !== this.plans.get(s.userId)!.periodStart) this.cover('postpaid-charge-past-period-end');
        if (included > 0) this.cover('postpaid-included');
        if (rated > 0) this.cover('postpaid-rated');
        if (included > 0 && spent.deducted > 0) this.cover('postpaid-included-then-cards');
        if (spent.deducted > 0 && rated > 0) this.cover('postpaid-cards-then-rate');
        if (rated < rest) this.cover('postpaid-cap-reached');
      } else if (plan && rest > 0) {
        this.cover(plan.status === 'suspended' ? 'postpaid-suspended-short' : 'postpaid-cap-exhausted');
      }
      charged = included + spent.deducted + rated;
      shortfall = rest - rated;
      this.cover(shortfall > 0 ? 'session-charge-short' : 'session-charge-full');
    } else {
      this.cover('session-charge-nothing-owed');
    }
    s.billed += charged;
    s.lastMeteredAt = Math.max(s.lastMeteredAt, this.now);
    return { charged, shortfall };
  }

  startSession(userId: string, externalKey: string, roomName: string, fresh?: NewIds): Outcome {
    const existing = [...this.sessions.values()].find((s) => s.externalKey === externalKey);
    if (existing) {
      if (existing.userId !== userId) return fail('idempotency_conflict');
      return ok(this.sessionJson(existing, 0, 0, true));
    }
    const active = [...this.sessions.values()].filter((s) => s.userId === userId && s.status === 'active').length;
    if (active >= this.settings.maxConcurrent) return fail('too_many_sessions');
    if (this.spendable(userId) + this.planLeft(userId, this.now) === 0) return fail('insufficient_balance');
    const session: MSession = {
      id: fresh?.id ?? '<no id>', userId, externalKey, roomName, status: 'active', startedAt: this.now,
      lastMeteredAt: this.now, endedAt: null, endReason: null, billed: 0, increment: this.settings.increment,
      minimum: this.settings.minimum,
    };
    this.sessions.set(session.id, session);
    const { charged, shortfall } = this.charge(session, this.now);
    return ok(this.sessionJson(session, charged, shortfall, false));
  }

  meter(sessionId: string): Outcome {
    const s = this.sessions.get(sessionId);
    if (!s) return fail('unknown_session');
    if (s.status !== 'active') return ok(this.sessionJson(s, 0, 0, true));
    const { charged, shortfall } = this.charge(s, this.now);
    return ok(this.sessionJson(s, charged, shortfall, false));
  }

  end(sessionId: string, reason: string, endedAt: number | undefined): Outcome {
    const s = this.sessions.get(sessionId);
    if (!s) return fail('unknown_session');
    if (s.status !== 'active') return ok(this.sessionJson(s, 0, 0, true));
    const at = Math.min(this.now, Math.max(s.startedAt, endedAt ?? this.now));
    const { charged, shortfall } = this.charge(s, at);
    s.status = reason === 'balance_exhausted' ? 'cut_off' : 'ended';
    if (at < this.now) this.cover('session-end-in-the-past');
    s.endedAt = at;
    s.endReason = reason;
    return ok(this.sessionJson(s, charged, shortfall, false));
  }

  expire(): Outcome {
    let expired = 0;
    let forfeited = 0;
    for (const card of this.cards.values()) {
      if ((card.status === 'active' || card.status === 'pending') && card.expiresAt <= this.now) {
        this.cover(`expire-${card.status}-card${card.remaining > 0 ? '-with-seconds' : ''}`);
        forfeited += card.remaining;
        card.flows.expiry -= card.remaining;
        card.remaining = 0;
        card.status = 'expired';
        expired++;
      }
    }
    return ok({ expired_cards: expired, forfeited_seconds: forfeited, skipped_cards: 0, more: false });
  }

  reap(maxSilence: number): Outcome {
    const stale = [...this.sessions.values()]
      // A healthy call is metered once per increment: stale only past its increment plus the silence.
      .filter((s) => s.status === 'active' && s.lastMeteredAt < this.now - s.increment - maxSilence)
      .sort((a, b) => a.lastMeteredAt - b.lastMeteredAt || compareIds(a.id, b.id));
    for (const s of stale) {
      s.status = 'abandoned';
      s.endedAt = s.lastMeteredAt;
      s.endReason = 'worker_silent';
    }
    return ok({ reaped_sessions: stale.length, session_ids: stale.map((s) => s.id), skipped_sessions: 0, more: false });
  }

  // ----- calls a client runs itself (/time/session/*, migrations 004 and 008)

  private clientSession(userId: string, clientSessionId: string): MSession | undefined {
    const key = `client:${userId}:${clientSessionId}`;
    return [...this.sessions.values()].find((s) => s.externalKey === key && s.userId === userId);
  }

  /** A heartbeat meters like the worker; past the paid time with nothing left to charge, it cuts the call off. */
  clientMeter(userId: string, clientSessionId: string): Outcome {
    const s = this.clientSession(userId, clientSessionId);
    if (!s) return fail('unknown_session');
    if (s.status !== 'active') return ok(this.sessionJson(s, 0, 0, true));
    const { charged, shortfall } = this.charge(s, this.now);
    if (s.startedAt + s.billed < this.now) {
      this.cover('client-heartbeat-cut-off');
      return this.end(s.id, 'balance_exhausted', s.startedAt + s.billed);
    }
    return ok(this.sessionJson(s, charged, shortfall, false));
  }

  /** Ends at least(now, greatest(start + claimed, last heartbeat)); a reaped call is still settled by it. */
  clientEnd(userId: string, clientSessionId: string, claimed: number): Outcome {
    const s = this.clientSession(userId, clientSessionId);
    if (!s) return fail('unknown_session');
    const at = Math.min(this.now, Math.max(s.startedAt + claimed, s.lastMeteredAt));
    if (s.status === 'abandoned' && s.endReason === 'worker_silent') {
      this.cover('client-end-after-reaped');
      const { charged, shortfall } = this.charge(s, at);
      s.status = 'ended';
      s.endedAt = at;
      s.endReason = 'client_ended';
      return ok(this.sessionJson(s, charged, shortfall, false));
    }
    if (s.status === 'active' && at < s.startedAt + claimed) this.cover('client-end-clamped-to-now');
    if (s.status === 'active' && s.lastMeteredAt > s.startedAt + claimed) this.cover('client-end-at-last-heartbeat');
    return this.end(s.id, 'client_ended', at);
  }

  // ----- Stripe (migrations/003_payments.sql, 009_payment_lifecycles.sql): payments, refunds, disputes

  /** A paid purchase: the payment and its card (a gift stays pending with its code), once per payment. */
  pay(eventId: string, input: { userId: string; tierId: string; gift: boolean; checkoutSessionId: string; paymentIntentId: string },
    fresh?: { paymentId: string; cardId: string; code?: string }): Outcome {
    if (this.stripeEvents.has(eventId)) return ok({ outcome: 'duplicate_event' });
    this.stripeEvents.add(eventId);
    const existing = [...this.payments.values()].find((p) => p.paymentIntentId === input.paymentIntentId);
    if (existing) {
      this.cover('stripe-payment-already-granted');
      return ok({ outcome: 'already_granted' });
    }
    const [amount, currency] = TIER_PRICE[input.tierId]!;
    const payment: MPayment = {
      id: fresh?.paymentId ?? '<no id>', userId: input.userId, tierId: input.tierId, gift: input.gift, amount, currency,
      status: 'succeeded', refunded: 0, cardId: fresh?.cardId ?? '<no id>', paymentIntentId: input.paymentIntentId,
      checkoutSessionId: input.checkoutSessionId,
    };
    this.payments.set(payment.id, payment);
    this.grant({ userId: input.gift ? null : input.userId, tierId: input.tierId, purchaserId: input.userId, key: `payment:${payment.id}` },
      fresh && { id: fresh.cardId, ...(fresh.code !== undefined ? { code: fresh.code } : {}) }, { id: payment.id, currency });
    this.cover(input.gift ? `stripe-paid-gift-${currency}` : `stripe-paid-${currency}`);
    return ok({ outcome: 'granted' });
  }

  /**
   * Refund objects as an event lists them (migrations/009_payment_lifecycles.sql, record_refunds), each applied
   * once by its id: one that counts takes its share of the card (from the amount paid) as far as unused, one
   * that fails afterwards gives back what it took while the card can be used; refunded = what counts.
   */
  refundPayment(eventId: string, paymentId: string, list: MRefundObject[]): Outcome {
    if (this.stripeEvents.has(eventId)) return ok({ outcome: 'duplicate_event' });
    this.stripeEvents.add(eventId);
    const p = this.payments.get(paymentId)!;
    const card = this.cards.get(p.cardId)!;
    const counts = (r: { status: string }) => r.status !== 'failed' && r.status !== 'canceled';
    const ofPayment = () => [...this.refunds.values()].filter((r) => r.paymentId === p.id);
    for (const item of list) {
      let r = this.refunds.get(item.id);
      if (!r) {
        r = { paymentId: p.id, amount: item.amount, status: item.status, taken: 0, returned: 0, applied: false, createdAt: this.now };
        this.refunds.set(item.id, r);
      } else if (counts(r)) {
        r.status = item.status;   // failed and canceled are final
      }
      const counted = ofPayment().filter(counts).reduce((n, x) => n + x.amount, 0);
      const netTaken = ofPayment().reduce((n, x) => n + x.taken - x.returned, 0);
      if (counts(r) && !r.applied) {
        const target = counted <= 0 ? 0 : p.amount <= 0 || counted >= p.amount ? card.total : Math.floor((card.total * counted) / p.amount);
        const owed = target - netTaken;
        if (owed > 0) {
          const before = card.remaining;
          const revoked = this.revoke(card.id, owed, 'refund', `refund:${item.id}`);
          r.taken = (revoked as { value: { revoked_seconds: number } }).value.revoked_seconds;
          this.cover(owed > before ? 'stripe-refund-capped-by-unused' : 'stripe-refund-took-its-share');
        }
        r.applied = true;
      } else if (!counts(r) && r.taken > r.returned) {
        const frozen = [...this.disputes.values()].some((d) => d.paymentId === p.id && d.frozen);
        if (card.expiresAt > this.now && card.status !== 'expired' && !frozen) {
          if (this.giveBackFailedRefund(card, r) > 0) this.cover('stripe-refund-failed-gave-back');
        } else {
          this.cover('stripe-refund-failed-card-unusable');
        }
      }
    }
    const counted = ofPayment().filter(counts).reduce((n, x) => n + x.amount, 0);
    p.refunded = Math.min(counted, p.amount);
    this.settlePaymentStatus(p);
    return ok({ outcome: 'refunded' });
  }

  /** When the last freeze lifts: what refunds that failed meanwhile still owe the card (015), while it can be used. */
  private returnFailedRefunds(p: MPayment): void {
    if ([...this.disputes.values()].some((d) => d.paymentId === p.id && d.frozen)) return;
    const card = this.cards.get(p.cardId)!;
    const owing = [...this.refunds.entries()]
      .filter(([, r]) => r.paymentId === p.id && (r.status === 'failed' || r.status === 'canceled') && r.taken > r.returned)
      .sort(([a, x], [b, y]) => x.createdAt - y.createdAt || compareIds(a, b));
    for (const [, r] of owing) {
      if (card.expiresAt <= this.now || card.status === 'expired') break;
      if (this.giveBackFailedRefund(card, r) > 0) this.cover('stripe-refund-failed-while-frozen-given-back');
    }
  }

  /** What a failed refund took and has not returned, as far as the card has room: a revoked card is usable again. */
  private giveBackFailedRefund(card: MCard, r: MRefund): number {
    const give = Math.min(r.taken - r.returned, card.total - card.remaining);
    if (give <= 0) return 0;
    this.move(card, give, 'restore');
    if (card.status === 'revoked') card.status = card.userId === null ? 'pending' : 'active';
    r.returned += give;
    return give;
  }

  /** A payment's status from its refunds and disputes, as record_refunds and record_dispute write it. */
  private settlePaymentStatus(p: MPayment): void {
    const disputed = [...this.disputes.values()].some((d) => d.paymentId === p.id && (d.frozen || d.status === 'lost'));
    p.status = disputed ? 'disputed' : p.refunded >= p.amount && p.amount > 0 ? 'refunded'
      : p.refunded > 0 ? 'partially_refunded' : 'succeeded';
  }

  /**
   * A dispute follows Stripe's money (record_dispute, 009): frozen while the funds are withdrawn (funds_withdrawn,
   * or a chargeback's created), given back when reinstated, won or warning_closed; lost keeps it frozen.
   */
  dispute(eventId: string, paymentId: string, disputeId: string, event: MDisputeEvent, status: string, inquiry: boolean): Outcome {
    if (this.stripeEvents.has(eventId)) return ok({ outcome: 'duplicate_event' });
    this.stripeEvents.add(eventId);
    const p = this.payments.get(paymentId)!;
    let d = this.disputes.get(disputeId);
    if (!d) {
      d = { paymentId, status, withdrawn: false, reinstated: false, frozen: false, freezes: 0 };
      this.disputes.set(disputeId, d);
    }
    if (!['won', 'lost', 'warning_closed'].includes(d.status)) d.status = status;
    d.withdrawn ||= event === 'funds_withdrawn' || (event === 'created' && !inquiry);
    d.reinstated ||= event === 'funds_reinstated';
    const shouldFreeze = d.status === 'lost' || (d.withdrawn && !d.reinstated && d.status !== 'won' && d.status !== 'warning_closed');
    let outcome = 'dispute_recorded';
    if (shouldFreeze && !d.frozen) {
      this.revoke(p.cardId, 'all', 'revoke', `dispute:${disputeId}${d.freezes > 0 ? `:${d.freezes + 1}` : ''}`);
      d.frozen = true;
      d.freezes += 1;
      outcome = 'frozen';
      this.cover(d.freezes > 1 ? 'stripe-dispute-froze-again' : 'stripe-dispute-froze');
    } else if (!shouldFreeze && d.frozen) {
      const key = `dispute:${disputeId}${d.freezes > 1 ? `:${d.freezes}` : ''}`;
      if (this.ops.has(key)) this.restore(p.cardId, key);
      d.frozen = false;
      outcome = 'restored';
      this.cover(`stripe-dispute-restored-${d.status}`);
      this.returnFailedRefunds(p);
    } else {
      this.cover(inquiry && !d.withdrawn ? 'stripe-inquiry-froze-nothing' : `stripe-dispute-${event}-changed-nothing`);
    }
    this.settlePaymentStatus(p);
    return ok({ outcome });
  }

  /** What get_books must answer, from the model's own cards and payments. */
  books(): unknown {
    const groups = new Map<string | null, MCard[]>();
    for (const c of this.cards.values()) groups.set(c.currency, [...(groups.get(c.currency) ?? []), c]);
    const figures = (cards: MCard[]) => {
      const sum = (f: (c: MCard) => number) => cards.reduce((n, c) => n + f(c), 0);
      const live = (c: MCard) => c.expiresAt > this.now;
      return {
        cards: cards.length,
        granted_seconds: sum((c) => c.flows.grant),
        adjusted_seconds: sum((c) => c.flows.adjustment),
        used_seconds: -sum((c) => c.flows.usage),
        expired_seconds: -sum((c) => c.flows.expiry),
        refunded_seconds: -sum((c) => c.flows.refund),
        revoked_seconds: -sum((c) => c.flows.revoke),
        restored_seconds: sum((c) => c.flows.restore),
        outstanding_seconds: sum((c) => c.remaining),
        spendable_seconds: sum((c) => (c.status === 'active' && live(c) ? c.remaining : 0)),
        pending_gift_seconds: sum((c) => (c.status === 'pending' && live(c) ? c.remaining : 0)),
        awaiting_expiry_seconds: sum((c) => ((c.status === 'active' || c.status === 'pending') && !live(c) ? c.remaining : 0)),
        unusable_seconds: sum((c) => (c.status === 'active' || c.status === 'pending' ? 0 : c.remaining)),
        difference_seconds: 0,
        ok: true,
      };
    };
    const currencies = [...groups.keys()].sort((a, b) => (a === null ? 1 : b === null ? -1 : compareIds(a, b)));
    const money = new Map<string, MPayment[]>();
    for (const p of this.payments.values()) money.set(p.currency, [...(money.get(p.currency) ?? []), p]);
    const lines = new Map<string, { userId: string; rated: number; amount: bigint }>();
    for (const c of this.charges) {
      const key = `${c.userId}:${c.periodStart}`;
      const line = lines.get(key) ?? { userId: c.userId, rated: 0, amount: 0n };
      line.rated += c.rated;
      line.amount += c.amount;
      lines.set(key, line);
    }
    const sessions = [...this.sessions.values()];
    const totalAmount = [...lines.values()].reduce((n, l) => n + l.amount, 0n);
    const postpaid = {
      ok: true,
      sessions: {
        billed_seconds: sessions.reduce((n, s) => n + s.billed, 0),
        card_seconds: sessions.reduce((n, s) => n + (this.sessionCardSeconds.get(s.id) ?? 0), 0),
        plan_seconds: this.charges.reduce((n, c) => n + c.included + c.rated, 0),
        sessions_out_of_step: 0,
      },
      meter_events: { charges: this.charges.length, events: this.charges.length, charges_without_event: 0 },
      lines: {
        lines: lines.size,
        rated_seconds: [...lines.values()].reduce((n, l) => n + l.rated, 0),
        amount_exact: lines.size === 0 ? '0' : formatExact(totalAmount),
        lines_mispriced: 0,
        lines_over_cap: [...lines.values()].filter((l) => roundLine(l.amount) > BigInt(this.plans.get(l.userId)!.capCents)).length,
      },
    };
    return {
      ok: true,
      postpaid,
      seconds: {
        ok: true,
        cards_out_of_step: 0,
        total: figures([...this.cards.values()]),
        by_currency: currencies.map((currency) => ({ currency, ...figures(groups.get(currency)!) })),
      },
      cents: {
        ok: true,
        by_currency: [...money.keys()].sort(compareIds).map((currency) => {
          const list = money.get(currency)!;
          const sum = (f: (p: MPayment) => number) => list.reduce((n, p) => n + f(p), 0);
          return {
            currency,
            payments: list.length,
            received_cents: sum((p) => p.amount),
            refunded_cents: sum((p) => p.refunded),
            kept_cents: sum((p) => p.amount - p.refunded),
            disputed_cents: sum((p) => (p.status === 'disputed' ? p.amount - p.refunded : 0)),
            refunded_unpaid_cents: 0,
            difference_cents: 0,
            ok: true,
          };
        }),
      },
    };
  }

  updateSettings(increment: number, minimum: number): Outcome {
    this.settings.increment = increment;
    this.settings.minimum = minimum;
    return ok({ billing_increment_seconds: increment, minimum_charge_seconds: minimum,
      max_concurrent_sessions: this.settings.maxConcurrent });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reading the database's side

const secondsOf = (d: Date | null): number | null => (d === null ? null : d.getTime() / 1000);

function projectCard(c: Card): unknown {
  return {
    id: c.id, user_id: c.user_id, purchaser_id: c.purchaser_id, tier_id: c.tier_id, source: c.source,
    activation_code: c.activation_code, total_seconds: c.total_seconds, remaining_seconds: c.remaining_seconds,
    status: c.status, activated_at: secondsOf(c.activated_at), expires_at: secondsOf(c.expires_at),
    payment_id: c.payment_id, note: c.note, created_at: secondsOf(c.created_at), replayed: c.replayed ?? null,
  };
}

function projectSession(s: SessionState): unknown {
  return {
    session_id: s.session_id, user_id: s.user_id, external_key: s.external_key, room_name: s.room_name,
    status: s.status, started_at: secondsOf(s.started_at), last_metered_at: secondsOf(s.last_metered_at),
    ended_at: secondsOf(s.ended_at), end_reason: s.end_reason, billed_seconds: s.billed_seconds,
    covered_until: secondsOf(s.covered_until), increment_seconds: s.increment_seconds,
    charged_seconds: s.charged_seconds, shortfall_seconds: s.shortfall_seconds, remaining_seconds: s.remaining_seconds,
    replayed: s.replayed,
    plan: s.plan ? {
      status: s.plan.status, period_cost_exact: s.plan.period_cost_exact, period_usage_cents: s.plan.period_usage_cents,
      cap_cents: s.plan.cap_cents, cap_left_cents: s.plan.cap_left_cents, included_left_seconds: s.plan.included_left_seconds,
      seconds_left: s.plan.seconds_left,
    } : null,
  };
}

function projectBalance(b: Balance): unknown {
  return {
    user_id: b.user_id, total_seconds: b.total_seconds, card_count: b.card_count, next_expiry: secondsOf(b.next_expiry),
    cards: b.cards.map((c) => ({
      card_id: c.card_id, tier_id: c.tier_id, source: c.source, remaining_seconds: c.remaining_seconds,
      total_seconds: c.total_seconds, activated_at: secondsOf(c.activated_at), expires_at: secondsOf(c.expires_at),
    })),
  };
}

const plain = <T>(value: T): unknown => JSON.parse(JSON.stringify(value)) as unknown;

// One round trip for every card and every session.
const SNAPSHOT_SQL = `
select
  (select coalesce(json_agg(json_build_object(
      'id', c.id, 'user_id', c.user_id, 'purchaser_id', c.purchaser_id, 'tier_id', c.tier_id, 'source', c.source,
      'code', c.activation_code, 'total', c.total_seconds, 'remaining', c.remaining_seconds, 'status', c.status,
      'activated_at', extract(epoch from c.activated_at)::float8, 'expires_at', extract(epoch from c.expires_at)::float8,
      'created_at', extract(epoch from c.created_at)::float8, 'note', c.note, 'payment_id', c.payment_id)
    order by c.id), '[]'::json) from public.time_cards c) as cards,
  (select coalesce(json_agg(json_build_object(
      'id', s.id, 'user_id', s.user_id, 'external_key', s.external_key, 'room_name', s.room_name, 'status', s.status,
      'started_at', extract(epoch from s.started_at)::float8,
      'last_metered_at', extract(epoch from s.last_metered_at)::float8,
      'ended_at', extract(epoch from s.ended_at)::float8, 'end_reason', s.end_reason, 'billed', s.billed_seconds,
      'increment', s.increment_seconds, 'minimum', s.minimum_seconds)
    order by s.id), '[]'::json) from public.voice_sessions s) as sessions,
  (select coalesce(json_agg(json_build_object(
      'id', p.id, 'user_id', p.user_id, 'tier_id', p.tier_id, 'gift', p.gift, 'amount', p.amount_cents,
      'currency', p.currency, 'status', p.status, 'refunded', p.refunded_cents, 'card_id', p.card_id,
      'payment_intent_id', p.stripe_payment_intent_id, 'checkout_session_id', p.stripe_checkout_session_id)
    order by p.id), '[]'::json) from public.payments p) as payments`;

interface CardRow {
  id: string; user_id: string | null; purchaser_id: string | null; tier_id: string | null; source: string; code: string;
  total: number; remaining: number; status: string; activated_at: number | null; expires_at: number;
  created_at: number; note: string | null; payment_id: string | null;
}

interface PaymentRow {
  id: string; user_id: string; tier_id: string; gift: boolean; amount: number; currency: string; status: string;
  refunded: number; card_id: string | null; payment_intent_id: string; checkout_session_id: string;
}

interface SessionRow {
  id: string; user_id: string; external_key: string; room_name: string; status: string; started_at: number;
  last_metered_at: number; ended_at: number | null; end_reason: string | null; billed: number; increment: number;
  minimum: number;
}

async function readTables(sql: SqlClient): Promise<{ cards: CardRow[]; sessions: SessionRow[]; payments: PaymentRow[] }> {
  const { rows } = await sql.query<{ cards: unknown; sessions: unknown; payments: unknown }>(SNAPSHOT_SQL);
  const row = rows[0]!;
  const parse = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
  return { cards: parse(row.cards) as CardRow[], sessions: parse(row.sessions) as SessionRow[],
    payments: parse(row.payments) as PaymentRow[] };
}

function modelPaymentRow(p: MPayment): PaymentRow {
  return {
    id: p.id, user_id: p.userId, tier_id: p.tierId, gift: p.gift, amount: p.amount, currency: p.currency, status: p.status,
    refunded: p.refunded, card_id: p.cardId, payment_intent_id: p.paymentIntentId, checkout_session_id: p.checkoutSessionId,
  };
}

function modelCardRow(c: MCard, code: string): CardRow {
  return {
    id: c.id, user_id: c.userId, purchaser_id: c.purchaserId, tier_id: c.tierId, source: c.source, code,
    total: c.total, remaining: c.remaining, status: c.status, activated_at: c.activatedAt, expires_at: c.expiresAt,
    created_at: c.createdAt, note: c.note, payment_id: c.paymentId,
  };
}

function modelSessionRow(s: MSession): SessionRow {
  return {
    id: s.id, user_id: s.userId, external_key: s.externalKey, room_name: s.roomName, status: s.status,
    started_at: s.startedAt, last_metered_at: s.lastMeteredAt, ended_at: s.endedAt, end_reason: s.endReason,
    billed: s.billed, increment: s.increment, minimum: s.minimum,
  };
}

type Got<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

async function capture<T>(promise: Promise<T>): Promise<Got<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    if (error instanceof BillingError) return { ok: false, code: error.code, message: error.message };
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The random walk

const DAY = 86400;

interface RunResult {
  stats: Map<string, number>;
  notes: Map<string, number>;
  coverage: Map<string, number>;
  span: { from: number; to: number };
}

/**
 * Puts a user on a postpaid plan as the Stripe webhooks will (that path is built elsewhere): a plan version with
 * its tiers (integer cents per minute), a Stripe customer and an active user plan whose period begins now.
 */
async function setUpPlan(sql: SqlClient, model: Model, userId: string, spec: {
  key: string; kind: 'payg' | 'tiered' | 'subscription'; includedSeconds: number; tiers: Array<[number | null, number]>;
  capCents: number;
}): Promise<void> {
  const { rows } = await sql.query<{ id: string }>(
    `insert into public.plans (key, version, kind, name, included_seconds, default_cap_cents, max_cap_cents)
     values ($1, 1, $2, $1, $3, $4, 100000) returning id`, [spec.key, spec.kind, spec.includedSeconds, spec.capCents]);
  const planId = rows[0]!.id;
  for (const [i, [upTo, centsPerMinute]] of spec.tiers.entries()) {
    await sql.query(`insert into public.plan_rate_tiers (plan_id, position, up_to_seconds, cents_per_minute) values ($1, $2, $3, $4)`,
      [planId, i + 1, upTo, centsPerMinute]);
  }
  await sql.query(`insert into public.stripe_customers (user_id, customer_id) values ($1, $2)`, [userId, `cus_${spec.key}`]);
  const created = await sql.query<{ id: string }>(
    `insert into public.user_plans (user_id, plan_id, status, current_period_start, current_period_end, spending_cap_cents)
     values ($1, $2, 'active', to_timestamp($3), to_timestamp($4), $5) returning id`,
    [userId, planId, model.now, model.now + 30 * DAY, spec.capCents]);
  model.plans.set(userId, {
    userPlanId: created.rows[0]!.id, planId, includedSeconds: spec.includedSeconds, capCents: spec.capCents,
    // cents_per_second is cents_per_minute / 60 rounded half-up to 12 decimals (016's generated column).
    tiers: spec.tiers.map(([upTo, cpm]) => ({ upTo, perSecond: (BigInt(cpm) * EXACT * 2n + 60n) / 120n })),
    status: 'active', periodStart: model.now, periodEnd: model.now + 30 * DAY,
  });
}

interface ChargeRow {
  identifier: string; user_id: string; session_id: string; period_start: number; included_seconds: number;
  rated_seconds: number; amount_exact: string;
}

async function runModel(
  t: TestContext, db: TestDatabase, label: string, seed: number, steps: number, replay: string,
): Promise<RunResult> {
  const rng = new Rng(seed);
  const start = Date.UTC(2026, 0, 1) / 1000 + rng.int(0, 730) * DAY + rng.int(0, DAY - 1);
  const clock = new TestClock(new Date(start * 1000));
  const store: BillingStore = db.store(clock.now);
  const model = new Model(start);
  // A second currency on the price list, so the books are checked per currency.
  await store.upsertPricingTier({ id: 'starter_eur', name: 'Starter (EUR)', baseSeconds: 3600, priceCents: 900, currency: 'eur' });
  const users = Array.from({ length: 5 }, () => rng.uuid());
  const stranger = rng.uuid();
  // u3 and u4 are postpaid: a subscription (10 minutes included, then 60 c/min up to 20 minutes and 5 c/min, a rate
  // whose per-second price is rounded to 12 decimals) and a tiered plan; the caps are small so the walk hits them.
  const postpaidUsers = [users[3]!, users[4]!];
  await setUpPlan(db.sql, model, users[3]!, { key: 'model_sub', kind: 'subscription', includedSeconds: 600,
    tiers: [[1200, 60], [null, 5]], capCents: 1500 });
  await setUpPlan(db.sql, model, users[4]!, { key: 'model_tiered', kind: 'tiered', includedSeconds: 0,
    tiers: [[300, 45], [900, 7], [null, 3]], capCents: 800 });
  const who = (id: string | null): string => {
    if (id === null) return 'nobody';
    const i = users.indexOf(id);
    return i >= 0 ? `u${i}` : id === stranger ? 'stranger' : id.slice(0, 8);
  };
  const stats = new Map<string, number>();
  const count = (what: string) => stats.set(what, (stats.get(what) ?? 0) + 1);

  // What the walk remembers to repeat later.
  const grants: Array<{ key: string; userId: string | null; tierId: string; purchaserId: string | null }> = [];
  const deducts: Array<{ key: string; userId: string; seconds: number }> = [];
  const revokes: Array<{ key: string; cardId: string; seconds: number | 'all'; kind: RevokeKind }> = [];
  const adjusts: Array<{ key: string; userId: string; seconds: number; reason: string }> = [];
  const sessionKeys: Array<{ key: string; userId: string }> = [];
  const cardOrder: string[] = [];     // card ids in creation order, so picks do not depend on the random ids
  const paymentOrder: string[] = [];  // payment ids in creation order
  const stripeEventsSent: Array<() => Promise<Got<unknown>>> = [];  // to deliver again (a duplicate changes nothing)
  const disputes: Array<{ id: string; paymentId: string; closed: boolean; inquiry: boolean }> = [];
  const clientCalls: Array<{ userId: string; clientSessionId: string }> = [];
  const sessionOrder: string[] = [];

  let step = 0;
  let desc = '';
  const recent: string[] = [];
  const where = (detail = ''): string =>
    `[${label}] seed=${seed} step=${step} of ${steps}: ${desc}${detail ? `\n  ${detail}` : ''}\n` +
    `  replay: ${replay}\n` +
    `  recent operations (oldest first):\n    ${recent.join('\n    ')}`;

  function check<T>(got: Got<T>, expected: Outcome, project: (value: T) => unknown): void {
    const actual = got.ok ? { ok: true, value: plain(project(got.value)) } : { ok: false, code: got.code };
    assert.deepStrictEqual(actual, plain(expected),
      where(`answer differs from the model${got.ok ? '' : ` (database said: ${got.message})`}`));
    count(`${desc.split(' ')[0]}:${expected.ok ? 'ok' : expected.code}`);
  }

  function freshCard(got: Got<{ id: string; activation_code?: string }>): NewIds | undefined {
    // A replay answers with a card the model knows; only an unseen id is a new card.
    if (!got.ok || model.cards.has(got.value.id)) return undefined;
    if (got.value.activation_code !== undefined) {
      assert.ok(isValidCode(got.value.activation_code), where(`bad activation code ${got.value.activation_code}`));
    }
    cardOrder.push(got.value.id);
    return { id: got.value.id, ...(got.value.activation_code !== undefined ? { code: got.value.activation_code } : {}) };
  }

  async function verify(): Promise<void> {
    const [tables, mismatches, books, ...balances] = await Promise.all([
      readTables(db.sql), ledgerMismatches(db.sql), store.getBooks(), ...users.map((u) => store.getBalance(u)),
    ]);
    assert.deepStrictEqual(mismatches, [], where('the ledger does not add up to the cards'));
    // The books: every identity holds, with the figures the model counts on its own.
    assert.equal(books.ok, true, where(`the books do not balance: ${JSON.stringify(books)}`));
    const { generated_at: generatedAt, ...figures } = books;
    assert.equal(generatedAt.getTime() / 1000, model.now, where('the books are not read at the billing clock'));
    assert.deepStrictEqual(plain(figures), plain(model.books()), where('the books differ from the model'));

    const modelPayments = [...model.payments.values()].sort((a, b) => compareIds(a.id, b.id));
    assert.deepStrictEqual(tables.payments, modelPayments.map(modelPaymentRow), where('payments differ'));

    const modelCards = [...model.cards.values()].sort((a, b) => compareIds(a.id, b.id));
    const dbCards = [...tables.cards].sort((a, b) => compareIds(a.id, b.id));
    assert.deepStrictEqual(dbCards.map((c) => c.id), modelCards.map((c) => c.id), where('card ids differ'));
    const codes = new Set<string>();
    for (let i = 0; i < dbCards.length; i++) {
      const row = dbCards[i]!;
      const card = modelCards[i]!;
      if (card.code === null) {
        assert.ok(isValidCode(row.code), where(`card ${row.id} has a bad activation code ${row.code}`));
        card.code = row.code;
      }
      assert.ok(!codes.has(row.code), where(`activation code ${row.code} appears twice`));
      codes.add(row.code);
      assert.deepStrictEqual(row, modelCardRow(card, card.code), where(`card ${row.id} (${who(row.user_id)}) differs`));
    }

    const modelSessions = [...model.sessions.values()].sort((a, b) => compareIds(a.id, b.id));
    const dbSessions = [...tables.sessions].sort((a, b) => compareIds(a.id, b.id));
    assert.deepStrictEqual(dbSessions.map((s) => s.id), modelSessions.map((s) => s.id), where('session ids differ'));
    for (let i = 0; i < dbSessions.length; i++) {
      assert.deepStrictEqual(dbSessions[i], modelSessionRow(modelSessions[i]!), where(`session ${dbSessions[i]!.id} differs`));
    }

    users.forEach((u, i) => {
      assert.deepStrictEqual(plain(projectBalance(balances[i]!)), plain(model.balance(u)),
        where(`balance of ${who(u)} differs`));
    });

    const { rows: chargeRows } = await db.sql.query<ChargeRow>(
      `select identifier, user_id, session_id, extract(epoch from period_start)::float8 as period_start, included_seconds,
              rated_seconds, amount_exact::text as amount_exact
         from public.usage_charges`);
    const byIdentifier = (a: ChargeRow, b: ChargeRow) => compareIds(a.identifier, b.identifier);
    assert.deepStrictEqual(chargeRows.sort(byIdentifier), model.charges.map((c): ChargeRow => ({
      identifier: c.identifier, user_id: c.userId, session_id: c.sessionId, period_start: c.periodStart,
      included_seconds: c.included, rated_seconds: c.rated, amount_exact: formatExact(c.amount),
    })).sort(byIdentifier), where('usage charges differ'));
  }

  const pickTier = () => rng.weighted([
    ['starter_1h', 50], ['basic_5h', 25], ['premium_10h', 13], ['pro_25h', 8], ['enterprise_50h', 4],
  ] as const);
  const pickSeconds = () => rng.weighted([
    [() => rng.int(1, 600), 50], [() => rng.int(601, 5_000), 35], [() => rng.int(5_001, 60_000), 15],
  ] as const)();
  const formatCode = (code: string) => rng.weighted([
    [() => code, 50],
    [() => `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8)}`.toLowerCase(), 25],
    [() => ` ${code.slice(0, 4)} ${code.slice(4, 8)} ${code.slice(8)} `, 25],
  ] as const)();
  const randomValidCode = () => {
    let body = '';
    for (let i = 0; i < 11; i++) body += rng.pick([...CODE_ALPHABET]);
    return body + codeCheckSymbol(body);
  };
  const mistype = (code: string) => {
    const at = rng.int(0, 11);
    const others = [...CODE_ALPHABET].filter((ch) => ch !== code.charAt(at));
    return code.slice(0, at) + rng.pick(others) + code.slice(at + 1);
  };
  const knownCards = () => cardOrder.map((id) => model.cards.get(id)!).filter((c) => c.code !== null);
  const activeSessions = () => sessionOrder.map((id) => model.sessions.get(id)!).filter((s) => s.status === 'active');
  const pickSession = (): string => {
    const active = activeSessions();
    const roll = rng.float();
    if (roll < 0.05 || sessionOrder.length === 0) return rng.uuid();
    if (roll < 0.85 && active.length > 0) return rng.pick(active).id;
    return rng.pick(sessionOrder);
  };

  async function activateOnce(userId: string, input: string): Promise<void> {
    const got = await capture(store.activateCard({ userId, code: input }));
    check(got, model.activate(userId, input), projectCard);
  }

  // Each operation picks its arguments, calls the store and checks the answer against the model's. One that
  // finds nothing to act on answers false and another is drawn.
  const operations: ReadonlyArray<readonly [string, number, () => Promise<boolean | void>]> = [
    ['grant', 10, async () => {
      const userId = rng.pick(users);
      const tierId = pickTier();
      const key = `g${step}`;
      desc = `grant ${tierId} to ${who(userId)} key=${key}`;
      grants.push({ key, userId, tierId, purchaserId: null });
      const got = await capture(store.grantCard({ userId, tierId, idempotencyKey: key }));
      check(got, model.grant({ userId, tierId, purchaserId: null, key }, freshCard(got)), projectCard);
    }],
    ['gift', 4, async () => {
      const purchaserId = rng.chance(0.8) ? rng.pick(users) : stranger;
      const tierId = pickTier();
      const key = `gift${step}`;
      desc = `gift ${tierId} bought by ${who(purchaserId)} key=${key}`;
      grants.push({ key, userId: null, tierId, purchaserId });
      const got = await capture(store.grantCard({ userId: null, tierId, purchaserId, idempotencyKey: key }));
      check(got, model.grant({ userId: null, tierId, purchaserId, key }, freshCard(got)), projectCard);
    }],
    ['regrant', 1.5, async () => {
      if (grants.length === 0) return false;
      const original = rng.pick(grants);
      let { userId, tierId } = original;
      const change = rng.weighted([['none', 70], ['tier', 10], ['user', 10], ['gift-ness', 5], ['unknown-tier', 5]] as const);
      if (change === 'tier') tierId = rng.pick(Object.keys(TIER_SECONDS).filter((t) => t !== tierId));
      if (change === 'user') userId = rng.pick(users.filter((u) => u !== userId));
      if (change === 'gift-ness') userId = userId === null ? rng.pick(users) : null;
      if (change === 'unknown-tier') tierId = 'no_such_tier';
      const purchaserId = userId === null ? (original.purchaserId ?? rng.pick(users)) : null;
      desc = `regrant key=${original.key} (${change}) ${tierId} to ${who(userId)}`;
      const got = await capture(store.grantCard({ userId, tierId, purchaserId, idempotencyKey: original.key }));
      const expected = model.grant({ userId, tierId, purchaserId, key: original.key }, freshCard(got));
      check(got, expected, projectCard);
    }],
    ['activate', 7, async () => {
      // Often the user who failed last, so the rate limit and its window get reached.
      const lastFailure = model.failures[model.failures.length - 1];
      const userId = lastFailure && rng.chance(0.3) ? lastFailure.userId : rng.pick(users);
      const cards = knownCards();
      const pending = cards.filter((c) => c.status === 'pending');
      const kind = rng.weighted([['pending', 45], ['any', 25], ['unknown', 12], ['malformed', 8], ['mistyped', 10]] as const);
      let input: string;
      if (kind === 'pending' && pending.length > 0) input = formatCode(rng.pick(pending).code!);
      else if ((kind === 'any' || kind === 'pending') && cards.length > 0) input = formatCode(rng.pick(cards).code!);
      else if (kind === 'malformed') input = rng.pick(['ABCD-EFGH', 'OOOO-0000-1111', 'ABCD-EFGH-JK2L', '', 'ABCDEFGHJKMNP']);
      else if (kind === 'mistyped') input = formatCode(mistype(cards.length > 0 ? rng.pick(cards).code! : randomValidCode()));
      else input = formatCode(randomValidCode());
      const mode = rng.weighted([['one', 84], ['burst', 10], ['window-edge', 6]] as const);
      if (mode === 'burst') {
        // A burst of wrong codes from one user, to reach the rate limit.
        const tries = rng.int(3, 12);
        desc = `activate burst of ${tries} unknown codes by ${who(userId)}, then ${JSON.stringify(input)}`;
        for (let i = 0; i < tries; i++) await activateOnce(userId, randomValidCode());
      } else if (mode === 'window-edge') {
        // Enough wrong codes to be limited, then a try just before, at or just after their window's end.
        const tries = rng.int(8, 11);
        const wait = model.settings.failureWindow + rng.pick([-1, 0, 1]);
        desc = `activate burst of ${tries} unknown codes by ${who(userId)}, wait ${wait}s, then ${JSON.stringify(input)}`;
        for (let i = 0; i < tries; i++) await activateOnce(userId, randomValidCode());
        clock.advance(wait);
        model.now += wait;
      } else {
        desc = `activate ${JSON.stringify(input)} (${kind}) by ${who(userId)}`;
      }
      await activateOnce(userId, input);
    }],
    ['deduct', 10, async () => {
      const userId = rng.pick(users);
      const seconds = pickSeconds();
      const key = `d${step}`;
      desc = `deduct ${seconds}s from ${who(userId)} key=${key}`;
      deducts.push({ key, userId, seconds });
      const got = await capture(store.deductTime({ userId, seconds, idempotencyKey: key }));
      check(got, model.deduct(userId, seconds, key), (v) => v);
    }],
    ['rededuct', 3, async () => {
      if (deducts.length === 0) return false;
      const original = rng.pick(deducts);
      let { userId, seconds } = original;
      const change = rng.weighted([['none', 75], ['seconds', 15], ['user', 10]] as const);
      if (change === 'seconds') seconds += rng.int(1, 100);
      if (change === 'user') userId = rng.pick(users.filter((u) => u !== userId));
      desc = `rededuct key=${original.key} (${change}) ${seconds}s from ${who(userId)}`;
      const got = await capture(store.deductTime({ userId, seconds, idempotencyKey: original.key }));
      check(got, model.deduct(userId, seconds, original.key), (v) => v);
    }],
    ['start', 8, async () => {
      let userId = rng.pick(users);
      let key = `s${step}`;
      const roll = rng.float();
      if (roll < 0.12 && sessionKeys.length > 0) ({ key, userId } = rng.pick(sessionKeys));
      else if (roll < 0.15 && sessionKeys.length > 0) {
        const other = rng.pick(sessionKeys);
        key = other.key;
        userId = rng.pick(users.filter((u) => u !== other.userId));
      }
      const burst = rng.chance(0.15) ? rng.int(2, 4) : 1;
      desc = `start session key=${key} for ${who(userId)}${burst > 1 ? `, then ${burst - 1} more` : ''}`;
      for (let i = 0; i < burst; i++) {
        const externalKey = i === 0 ? key : `${key}-${i}`;
        const roomName = `room-${step}-${i}`;
        const got = await capture(store.startSession({ userId, externalKey, roomName }));
        const isNew = got.ok && !model.sessions.has(got.value.session_id);
        if (isNew && got.ok) {
          sessionOrder.push(got.value.session_id);
          sessionKeys.push({ key: externalKey, userId });
        }
        check(got, model.startSession(userId, externalKey, roomName, isNew && got.ok ? { id: got.value.session_id } : undefined),
          projectSession);
      }
    }],
    ['plan', 3, async () => {
      // What the plan webhooks will do (suspend on a failed invoice, lift on a paid one, a new period), and the user
      // moving their cap, written straight to the user plan.
      const userId = rng.pick(postpaidUsers);
      const plan = model.plans.get(userId)!;
      const change = rng.weighted([['suspend-or-lift', 40], ['cap', 35], ['new-period', 25]] as const);
      if (change === 'suspend-or-lift') {
        plan.status = plan.status === 'active' ? 'suspended' : 'active';
        desc = `plan of ${who(userId)}: ${plan.status}`;
        await db.sql.query(
          `update public.user_plans set status = $2,
                  suspended_reason = case when $2 = 'suspended' then 'invoice.payment_failed' end
            where id = $1`, [plan.userPlanId, plan.status]);
      } else if (change === 'cap') {
        plan.capCents = rng.int(1, 3000);
        desc = `plan of ${who(userId)}: cap ${plan.capCents} cents`;
        await db.sql.query(`update public.user_plans set spending_cap_cents = $2 where id = $1`, [plan.userPlanId, plan.capCents]);
      } else {
        desc = `plan of ${who(userId)}: new period from now`;
        Object.assign(plan, { periodStart: model.now, periodEnd: model.now + 30 * DAY });
        await db.sql.query(
          `update public.user_plans set current_period_start = to_timestamp($2), current_period_end = to_timestamp($3)
            where id = $1`, [plan.userPlanId, model.now, model.now + 30 * DAY]);
      }
      count(`plan:${change}`);
    }],
    ['meter', 10, async () => {
      const sessionId = pickSession();
      const s = model.sessions.get(sessionId);
      desc = `meter session ${sessionId.slice(0, 8)} (${s ? `${s.status}, ${who(s.userId)}` : 'unknown'})`;
      const got = await capture(store.meterSession(sessionId));
      check(got, model.meter(sessionId), projectSession);
    }],
    ['end', 6, async () => {
      const sessionId = pickSession();
      const s = model.sessions.get(sessionId);
      const reason = rng.weighted([['caller_left', 50], ['balance_exhausted', 25], ['agent_hangup', 25]] as const);
      const endedAt = rng.weighted([
        [undefined, 50], [model.now - rng.int(0, 600), 25], [model.now - rng.int(0, 30 * DAY), 15], [model.now + rng.int(1, 3600), 10],
      ] as const);
      desc = `end session ${sessionId.slice(0, 8)} (${s ? `${s.status}, ${who(s.userId)}` : 'unknown'}) reason=${reason}` +
        ` endedAt=${endedAt === undefined ? 'none' : `now${endedAt - model.now >= 0 ? '+' : ''}${endedAt - model.now}s`}`;
      const got = await capture(store.endSession({
        sessionId, reason, ...(endedAt === undefined ? {} : { endedAt: new Date(endedAt * 1000) }),
      }));
      check(got, model.end(sessionId, reason, endedAt), projectSession);
    }],
    ['expire', 4, async () => {
      desc = 'expire cards';
      const got = await capture(store.expireCards());
      check(got, model.expire(), (v) => v);
      if (got.ok && got.value.expired_cards > 0) count('expire:some');
    }],
    ['reap', 4, async () => {
      // Sometimes exactly as long as a running call has been silent past its increment, or a second either side.
      const running = activeSessions().filter((s) => model.now - s.lastMeteredAt - s.increment >= 2);
      const silence = rng.chance(0.3) && running.length > 0
        ? (({ lastMeteredAt, increment }) => model.now - lastMeteredAt - increment)(rng.pick(running)) + rng.pick([-1, 0, 0, 1])
        : rng.pick([30, 60, 300, 3600, DAY, 7 * DAY]);
      desc = `reap sessions silent > ${silence}s`;
      const got = await capture(store.reapStaleSessions(silence));
      check(got, model.reap(silence), (v) => v);
      if (got.ok && got.value.reaped_sessions > 0) count('reap:some');
    }],
    ['refund', 6, async () => {
      if (cardOrder.length === 0 && revokes.length === 0) return false;
      let cardId: string;
      let seconds: number | 'all';
      let kind: RevokeKind;
      let key: string;
      if (rng.chance(0.1) && revokes.length > 0) {
        const original = rng.pick(revokes);
        ({ cardId, seconds, kind, key } = original);
        if (rng.chance(0.2)) seconds = seconds === 'all' ? 1 : 'all';
      } else {
        // Mostly a recent card, as those still hold seconds. (Not "a card with seconds left": how much a card
        // holds can depend on the random ids of cards granted in the same second, and a replay must not.)
        const roll = rng.float();
        if (roll < 0.05 || cardOrder.length === 0) cardId = rng.uuid();
        else if (roll < 0.65) cardId = rng.pick(cardOrder.slice(-12));
        else cardId = rng.pick(cardOrder);
        seconds = rng.chance(0.35) ? 'all' : rng.weighted([
          [() => rng.int(1, 100), 30], [() => rng.int(101, 5000), 50], [() => rng.int(5001, 300_000), 20],
        ] as const)();
        kind = rng.weighted([['refund', 70], ['revoke', 20], ['adjustment', 10]] as const);
        key = `r${step}`;
        revokes.push({ key, cardId, seconds, kind });
      }
      const card = model.cards.get(cardId);
      desc = `revoke:${kind} ${seconds} of card ${cardId.slice(0, 8)} (${card ? `${card.status} ${card.remaining}s, ${who(card.userId)}` : 'unknown'}) key=${key}`;
      const got = await capture(store.revokeCardTime({ cardId, seconds, kind, idempotencyKey: key, reason: 'model test' }));
      check(got, model.revoke(cardId, seconds, kind, key), (v) => v);
    }],
    ['restore', 2, async () => {
      if (revokes.length === 0) return false;
      const original = rng.pick(revokes);
      let cardId = original.cardId;
      let key = original.key;
      const roll = rng.float();
      if (roll < 0.1 && cardOrder.length > 1) cardId = rng.pick(cardOrder.filter((id) => id !== cardId));
      else if (roll < 0.2) key = `r-none-${step}`;
      const card = model.cards.get(cardId);
      desc = `restore revocation ${key} on card ${cardId.slice(0, 8)} (${card ? `${card.status} ${card.remaining}s` : 'unknown'})`;
      const got = await capture(store.restoreCardTime({ cardId, revokeIdempotencyKey: key }));
      check(got, model.restore(cardId, key), (v) => v);
    }],
    ['adjust', 4, async () => {
      let userId = rng.pick(users);
      let seconds = rng.chance(0.5) ? rng.int(1, 7200) : -pickSeconds();
      let reason = rng.pick(['goodwill credit', 'support correction', 'billing fix']);
      let key = `a${step}`;
      const roll = rng.float();
      if (roll < 0.1 && adjusts.length > 0) ({ userId, seconds, reason, key } = rng.pick(adjusts));
      else if (roll < 0.13 && deducts.length > 0) key = rng.pick(deducts).key;   // a key another kind used
      else adjusts.push({ key, userId, seconds, reason });
      desc = `adjust ${who(userId)} by ${seconds}s key=${key}`;
      const got = await capture(store.adjustUserTime({ userId, seconds, reason, idempotencyKey: key }));
      const fresh = got.ok && got.value.card_id !== null && !got.value.replayed ? freshCard({ ok: true, value: { id: got.value.card_id } }) : undefined;
      check(got, model.adjust(userId, seconds, reason, key, fresh), (v) => v);
    }],
    ['client-start', 3, async () => {
      const userId = rng.pick(users);
      const clientSessionId = rng.chance(0.1) && clientCalls.length > 0 ? rng.pick(clientCalls).clientSessionId : `c${step}`;
      const roomName = `client-room-${step}`;
      desc = `client-start ${clientSessionId} for ${who(userId)}`;
      const got = await capture(store.startClientSession({ userId, clientSessionId, roomName }));
      const isNew = got.ok && !model.sessions.has(got.value.session_id);
      if (isNew && got.ok) {
        sessionOrder.push(got.value.session_id);
        clientCalls.push({ userId, clientSessionId });
      }
      check(got, model.startSession(userId, `client:${userId}:${clientSessionId}`, roomName,
        isNew && got.ok ? { id: got.value.session_id } : undefined), projectSession);
    }],
    ['client-heartbeat', 5, async () => {
      if (clientCalls.length === 0) return false;
      let { userId, clientSessionId } = rng.pick(clientCalls);
      if (rng.chance(0.05)) userId = rng.pick(users.filter((u) => u !== userId));   // not theirs: unknown to them
      desc = `client-heartbeat ${clientSessionId} by ${who(userId)}`;
      const got = await capture(store.meterClientSession({ userId, clientSessionId }));
      check(got, model.clientMeter(userId, clientSessionId), projectSession);
    }],
    ['client-end', 3, async () => {
      if (clientCalls.length === 0) return false;
      const { userId, clientSessionId } = rng.pick(clientCalls);
      const s = [...model.sessions.values()].find((x) => x.externalKey === `client:${userId}:${clientSessionId}`);
      const elapsed = s ? model.now - s.startedAt : 0;
      // Sometimes less than its last heartbeat proved: the heartbeat wins.
      const beforeHeartbeat = () => Math.max(0, (s ? s.lastMeteredAt - s.startedAt : 0) - rng.int(1, 120));
      const claimed = rng.weighted([
        [() => elapsed, 35], [() => rng.int(0, Math.max(0, elapsed)), 25], [beforeHeartbeat, 15],
        [() => elapsed + rng.int(1, 3600), 15], [() => 0, 10],
      ] as const)();
      desc = `client-end ${clientSessionId} of ${who(userId)} claiming ${claimed}s (${s ? `${s.status}, ${elapsed}s in` : 'unknown'})`;
      const got = await capture(store.endClientSession({ userId, clientSessionId, claimedSeconds: claimed }));
      check(got, model.clientEnd(userId, clientSessionId, claimed), projectSession);
    }],
    ['stripe-pay', 5, async () => {
      const userId = rng.pick(users);
      const tierId = rng.weighted([['starter_1h', 40], ['starter_eur', 30], ['basic_5h', 20], ['premium_10h', 10]] as const);
      const gift = rng.chance(0.25);
      const [amount, currency] = TIER_PRICE[tierId]!;
      const ids = { checkoutSessionId: `cs_model_${step}`, paymentIntentId: `pi_model_${step}`, chargeId: `ch_model_${step}` };
      const eventId = `evt_model_pay_${step}`;
      desc = `stripe-pay ${tierId}${gift ? ' (gift)' : ''} for ${who(userId)} event=${eventId}`;
      const deliver = (id: string, type: string) => () => capture(store.recordPaymentSuccess(
        { id, type, payload: { model_step: step } }, { userId, tierId, gift, amountCents: amount, currency, ...ids }));
      const got = await deliver(eventId, 'checkout.session.completed')();
      const answer = got.ok ? (got.value as { payment_id?: string; card?: { id: string; activation_code?: string } }) : null;
      const fresh = answer?.payment_id && answer.card && !model.payments.has(answer.payment_id)
        ? { paymentId: answer.payment_id, cardId: answer.card.id, code: answer.card.activation_code } : undefined;
      if (fresh) {
        paymentOrder.push(fresh.paymentId);
        cardOrder.push(fresh.cardId);
        if (fresh.code !== undefined) assert.ok(isValidCode(fresh.code), where(`bad activation code ${fresh.code}`));
      }
      check(got, model.pay(eventId, { userId, tierId, gift, ...ids },
        fresh && { paymentId: fresh.paymentId, cardId: fresh.cardId, ...(fresh.code !== undefined ? { code: fresh.code } : {}) }),
        (v) => ({ outcome: v.outcome }));
      // The same purchase told again by another event (payment_intent.succeeded): granted once.
      if (rng.chance(0.3)) {
        const second = `evt_model_pi_${step}`;
        check(await deliver(second, 'payment_intent.succeeded')(), model.pay(second, { userId, tierId, gift, ...ids }),
          (v) => ({ outcome: v.outcome }));
      }
      stripeEventsSent.push(deliver(eventId, 'checkout.session.completed'));
    }],
    ['stripe-refund', 3, async () => {
      // A refund that succeeded failing afterwards (refund.failed), or a new one: told alone (refund.created)
      // or in the charge's list of all its refunds so far (charge.refunded), which repeats the earlier ones.
      const succeeded = [...model.refunds.entries()].filter(([, r]) => r.status === 'succeeded');
      let p: MPayment;
      let list: MRefundObject[];
      let type: string;
      if (succeeded.length > 0 && rng.chance(0.25)) {
        const [id, r] = rng.pick(succeeded);
        p = model.payments.get(r.paymentId)!;
        list = [{ id, amount: r.amount, status: 'failed' }];
        type = rng.pick(['refund.failed', 'charge.refund.updated']);
      } else {
        const open = paymentOrder.map((id) => model.payments.get(id)!).filter((x) => x.refunded < x.amount);
        if (open.length === 0) return false;
        p = rng.pick(open);
        const amount = rng.chance(0.3) ? p.amount - p.refunded : rng.int(1, p.amount - p.refunded);
        const fresh = { id: `re_model_${step}`, amount, status: 'succeeded' };
        const earlier = [...model.refunds.entries()].filter(([, r]) => r.paymentId === p.id)
          .map(([id, r]) => ({ id, amount: r.amount, status: r.status }));
        list = rng.chance(0.5) ? [...earlier, fresh] : [fresh];
        type = list.length > 1 ? 'charge.refunded' : 'refund.created';
      }
      const eventId = `evt_model_refund_${step}`;
      const card = model.cards.get(p.cardId)!;
      desc = `stripe-refund ${type} ${JSON.stringify(list)} of ${p.amount} ${p.currency} (was ${p.refunded}; card ${card.status} ${card.remaining}s) event=${eventId}`;
      const deliver = () => capture(store.recordRefunds({ id: eventId, type, payload: { model_step: step } },
        { paymentIntentId: p.paymentIntentId, chargeId: p.paymentIntentId.replace(/^pi_/, 'ch_'), refunds: list }));
      check(await deliver(), model.refundPayment(eventId, p.id, list), (v) => ({ outcome: v.outcome }));
      stripeEventsSent.push(deliver);
    }],
    ['stripe-dispute', 2, async () => {
      // Chargebacks and inquiries, their events in any order (Stripe's may come late or twice).
      const undisputed = paymentOrder.filter((id) => !disputes.some((d) => d.paymentId === id));
      const open = disputes.filter((d) => !d.closed);
      const opening = open.length === 0 || (undisputed.length > 0 && rng.chance(0.4));
      if (opening && undisputed.length === 0) return false;
      const dispute = opening
        ? { id: `dp_model_${step}`, paymentId: rng.pick(undisputed), closed: false, inquiry: rng.chance(0.4) }
        : rng.pick(open);
      const event: MDisputeEvent = opening ? 'created' : rng.pick(['funds_withdrawn', 'funds_reinstated', 'closed', 'closed'] as const);
      const status = event === 'closed'
        ? rng.pick(dispute.inquiry ? ['warning_closed', 'won', 'lost'] : ['won', 'lost'])
        : dispute.inquiry && event === 'created' ? 'warning_needs_response' : 'needs_response';
      const p = model.payments.get(dispute.paymentId)!;
      const eventId = `evt_model_dispute_${step}`;
      desc = `stripe-dispute ${dispute.id}${dispute.inquiry ? ' (inquiry)' : ''} ${event} ${status} on a ${p.status} payment (card ${model.cards.get(p.cardId)!.remaining}s) event=${eventId}`;
      if (opening) disputes.push(dispute);
      else if (event === 'closed') dispute.closed = true;
      const deliver = () => capture(store.recordDispute(
        { id: eventId, type: `charge.dispute.${event}`, payload: { model_step: step } },
        { paymentIntentId: p.paymentIntentId, chargeId: p.paymentIntentId.replace(/^pi_/, 'ch_'), disputeId: dispute.id,
          status, inquiry: dispute.inquiry }));
      check(await deliver(), model.dispute(eventId, p.id, dispute.id, event, status, dispute.inquiry), (v) => ({ outcome: v.outcome }));
      stripeEventsSent.push(deliver);
    }],
    ['stripe-redeliver', 1, async () => {
      if (stripeEventsSent.length === 0) return false;
      desc = 'stripe-redeliver an earlier event';
      check(await rng.pick(stripeEventsSent)(), ok({ outcome: 'duplicate_event' }), (v) => ({ outcome: (v as { outcome: string }).outcome }));
    }],
    ['settings', 0.7, async () => {
      const increment = rng.pick([1, 15, 30, 60, 60, 60, 120, 600]);
      const minimum = rng.pick([0, 0, 30, 60, 60, 120, 300]);
      desc = `settings increment=${increment} minimum=${minimum}`;
      const got = await capture(store.updateSettings({ billing_increment_seconds: increment, minimum_charge_seconds: minimum }));
      check(got, model.updateSettings(increment, minimum), (v) => ({
        billing_increment_seconds: v.billing_increment_seconds, minimum_charge_seconds: v.minimum_charge_seconds,
        max_concurrent_sessions: v.max_concurrent_sessions,
      }));
    }],
    ['advance', 15, async () => {
      let seconds = rng.weighted([
        [() => rng.int(1, 120), 34], [() => rng.int(121, 3600), 24], [() => rng.int(3601, DAY), 13],
        [() => rng.int(DAY + 1, 30 * DAY), 10], [() => rng.int(30 * DAY + 1, 120 * DAY), 5], [() => -1, 14],
      ] as const)();
      let why = '';
      if (seconds < 0) {
        // To a moment where a rule flips, or a second either side: a card's expiry, the end of a failed
        // activation's rate-limit window, the start of a running call's next increment.
        const now = model.now;
        const targets: Array<[string, number]> = [];
        const expiries = cardOrder.map((id) => model.cards.get(id)!.expiresAt).filter((at) => at > now);
        const soon = expiries.filter((at) => at - now <= 30 * DAY);
        if (expiries.length > 0 && (soon.length > 0 || rng.chance(0.2))) targets.push(['the next card expiry', Math.min(...expiries)]);
        if (soon.length > 0) targets.push(['a card expiry', rng.pick(soon)]);
        const edges = model.failures.map((f) => f.at + model.settings.failureWindow).filter((at) => at > now);
        if (edges.length > 0) targets.push(['an activation failure leaving the window', rng.pick(edges)]);
        const running = activeSessions();
        if (running.length > 0) {
          const s = rng.pick(running);
          targets.push(['a call\'s next increment', s.startedAt + (Math.floor((now - s.startedAt) / s.increment) + 1) * s.increment]);
        }
        if (targets.length === 0) targets.push(['nothing in particular', now + 60]);
        const [what, at] = rng.pick(targets);
        const nudge = rng.pick([-1, 0, 0, 1]);
        seconds = Math.max(0, at - now + nudge);
        why = ` (to ${what}${nudge === 0 ? '' : nudge < 0 ? ' - 1s' : ' + 1s'})`;
      }
      desc = `advance the clock ${seconds}s${why}`;
      clock.advance(seconds);
      model.now += seconds;
      count('advance');
    }],
  ];
  const table = operations.map(([name, weight, run]) => [{ name, run }, weight] as const);

  try {
    await verify();
    for (step = 1; step <= steps; step++) {
      while ((await rng.weighted(table).run()) === false);
      recent.push(`#${step} ${desc}`);
      if (recent.length > 15) recent.shift();
      if (TRACE) t.diagnostic(`#${step} ${desc}`);
      await verify();
    }
  } finally {
    await store.close();
  }
  return { stats, notes: model.notes, coverage: model.coverage, span: { from: start, to: model.now } };
}

/**
 * The model adds calendar years in UTC and so must the database, whatever the session's time zone: run it in
 * a zone with daylight saving time, where adding '1 year' in local time would move expiries by an hour.
 */
async function useDaylightSavingZone(db: TestDatabase): Promise<void> {
  if (db.engine === 'pglite') {
    await db.sql.exec(`set timezone to 'America/New_York'`);     // one shared connection
  } else {
    // The store's pool connects after this, so it starts in that zone.
    await db.sql.exec(`do $$ begin execute format('alter database %I set timezone to %L', current_database(), 'America/New_York'); end $$`);
  }
}

async function runPass(t: TestContext, engine: 'postgres' | 'pglite', seed: number, steps: number): Promise<void> {
  const db = engine === 'postgres' ? await createPostgresDatabase() : await createPgliteDatabase();
  const replay = `MODEL_SEED=${SEED} node --import tsx --test --test-name-pattern=${engine === 'postgres' ? 'PostgreSQL' : 'PGlite'}` +
    ` tests/billing-model.test.ts`;
  try {
    await useDaylightSavingZone(db);
    const began = Date.now();
    const { stats, notes, coverage, span } = await runModel(t, db, engine, seed, steps, replay);
    const years = ((span.to - span.from) / (365.25 * DAY)).toFixed(1);
    t.diagnostic(`${engine}: ${steps} steps, seed ${seed}, ${years} years of billing clock, ${Date.now() - began} ms`);
    t.diagnostic(`outcomes: ${[...stats.entries()].sort().map(([k, v]) => `${k}=${v}`).join(' ')}`);
    t.diagnostic(`rules exercised: ${[...coverage.entries()].sort().map(([k, v]) => `${k}=${v}`).join(' ')}`);
    for (const [what, n] of notes) t.diagnostic(`note: ${what} (${n}x)`);
  } finally {
    await db.close();
  }
}

test(`billing rules match the reference model on PostgreSQL (${PG_STEPS} steps, MODEL_SEED=${SEED})`, async (t) => {
  await runPass(t, 'postgres', SEED, PG_STEPS);
});

test(`billing rules match the reference model on PGlite (${PGLITE_STEPS} steps, MODEL_SEED=${SEED})`, async (t) => {
  // Another walk than the PostgreSQL pass's, from the same seed.
  await runPass(t, 'pglite', (SEED ^ 0x5bd1e995) >>> 0, PGLITE_STEPS);
});

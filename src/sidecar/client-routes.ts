// The client API over a user's own account: calls a client runs itself, call and payment history, usage per
// month (seed 003) and analytics. Handlers only authenticate, validate and shape: the rules and the queries
// live in the SQL functions of migrations/004_reports.sql, reached through the BillingStore.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Principal } from '../auth/verify-token.ts';
import type { BillingStore, PaymentRecord, SessionRecord, SessionState } from '../billing/store.ts';
import { HttpError } from './http-errors.ts';

/** What the route modules need from the app: the store and the app's own auth and validation helpers. */
export interface RouteDeps {
  store: BillingStore;
  /** The caller, from the bearer token (401 without a valid one). */
  principal(request: FastifyRequest): Promise<Principal>;
  /** The caller when it is userId or an administrator (403 otherwise). */
  ownOrAdmin(request: FastifyRequest, userId: string): Promise<Principal>;
  /** Parses with zod; bad input is a 400 invalid_request. */
  input<T>(schema: z.ZodType<T>, value: unknown): T;
}

/** A whole number in a query string, with bounds and a default. */
export function queryInt(min: number, max: number, fallback: number) {
  return z.string()
    .regex(/^\d{1,10}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .default(fallback);
}

export const UserIdParam = z.strictObject({
  id: z.guid({ message: 'a user id must be a uuid' }).transform((id) => id.toLowerCase()),
});

const ClientSessionId = z.string().regex(/^[A-Za-z0-9_-]{1,100}$/, 'a session id of 1 to 100 letters, digits, _ or -');
const StartBody = z.strictObject({ session_id: ClientSessionId, room_name: z.string().min(1).max(200) });
const EndBody = z.strictObject({
  session_id: ClientSessionId,
  // At most 31 days: anything longer is no call (and the server's clock bounds the bill anyway).
  duration_seconds: z.number().int().min(0).max(31 * 86_400),
});
const HeartbeatBody = z.strictObject({ session_id: ClientSessionId });
const LimitQuery = (fallback: number) => z.strictObject({ limit: queryInt(1, 100, fallback) });
const CheckoutParam = z.strictObject({ sessionId: z.string().regex(/^cs_\w{1,200}$/, 'a Checkout Session id like cs_...') });
const AnalyticsQuery = z.strictObject({ months: queryInt(1, 120, 12) });

const iso = (date: Date | null) => date?.toISOString() ?? null;
/** Seconds as minutes, to hundredths. */
export const minutes = (seconds: number) => Math.round((seconds / 60) * 100) / 100;
/** Cents of cost (fractional) as dollars, to the given decimals. */
const dollars = (cents: number, decimals: number) => Math.round((cents / 100) * 10 ** decimals) / 10 ** decimals;

/** A call as the client knows it: by its own id when it started the call itself. */
export function sessionView(record: SessionRecord) {
  return {
    session_id: record.client_session_id ?? record.session_id,
    server_session_id: record.session_id,
    room_name: record.room_name,
    status: record.status,
    started_at: record.started_at.toISOString(),
    ended_at: iso(record.ended_at),
    duration_seconds: record.duration_seconds,
    billed_seconds: record.billed_seconds,
    minutes_charged: minutes(record.billed_seconds),
    end_reason: record.end_reason,
  };
}

/** Seed 003's call (agent_name, call_from, call_to, duration, cost, start, end, status) with the app's fields. */
function callView(record: SessionRecord) {
  return {
    id: record.session_id,
    session_id: record.client_session_id ?? record.session_id,
    room_name: record.room_name,
    agent_name: record.agent_name,
    call_from: record.call_from,
    call_to: record.call_to,
    status: record.status,
    duration_seconds: record.duration_seconds,
    billed_seconds: record.billed_seconds,
    minutes_charged: minutes(record.billed_seconds),
    cost_cents: record.cost_cents,
    cost_usd: dollars(record.cost_cents, 4),
    started_at: record.started_at.toISOString(),
    ended_at: iso(record.ended_at),
    end_reason: record.end_reason,
  };
}

function clientSessionView(clientSessionId: string, state: SessionState) {
  return {
    session_id: clientSessionId,
    server_session_id: state.session_id,
    room_name: state.room_name,
    status: state.status,
    started_at: state.started_at.toISOString(),
    ended_at: iso(state.ended_at),
    end_reason: state.end_reason,
    billed_seconds: state.billed_seconds,
    minutes_charged: minutes(state.billed_seconds),
    /** Paid up to here; past it, with no balance left, the call must end. */
    covered_until: state.covered_until.toISOString(),
    /**
     * The balance can pay for the call up to here (cards that expire first count only for what they can pay
     * before they expire): a heartbeat past it with nothing left to charge cuts the call off.
     */
    payable_until: state.payable_until.toISOString(),
    charged_seconds: state.charged_seconds,
    remaining_seconds: state.remaining_seconds,
    remaining_minutes: Math.floor(state.remaining_seconds / 60),
    replayed: state.replayed,
  };
}

export function paymentView(payment: PaymentRecord) {
  return {
    payment_id: payment.payment_id,
    package_id: payment.tier_id,
    amount_cents: payment.amount_cents,
    currency: payment.currency,
    status: payment.status,
    refunded_cents: payment.refunded_cents,
    gift: payment.gift,
    card_id: payment.card_id,
    failure_reason: payment.failure_reason,
    created_at: payment.created_at.toISOString(),
  };
}

export function registerClientRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { store, principal, ownOrAdmin, input } = deps;

  app.get('/time/sessions', async (request) => {
    const who = await principal(request);
    const { limit } = input(LimitQuery(20), request.query);
    return { sessions: (await store.listSessions({ userId: who.userId, limit })).map(sessionView) };
  });

  // Calls a client runs itself. The server bills them by its own clock: the start charges the first
  // increment, a heartbeat everything begun since, and the end never more than the claimed duration.
  app.post('/time/session/start', async (request) => {
    const who = await principal(request);
    const body = input(StartBody, request.body);
    const state = await store.startClientSession({ userId: who.userId, clientSessionId: body.session_id, roomName: body.room_name });
    if (state.replayed && state.status !== 'active') {
      throw new HttpError(409, 'session_ended', `call ${body.session_id} has already ended; start a new call with a new session_id`);
    }
    if (state.replayed && state.room_name !== body.room_name) {
      throw new HttpError(409, 'session_conflict', `call ${body.session_id} was started in another room`);
    }
    if (!state.replayed) request.log.info({ userId: who.userId, sessionId: state.session_id }, 'client call started');
    return clientSessionView(body.session_id, state);
  });

  app.post('/time/session/heartbeat', async (request) => {
    const who = await principal(request);
    const body = input(HeartbeatBody, request.body);
    return clientSessionView(body.session_id,
      await store.meterClientSession({ userId: who.userId, clientSessionId: body.session_id }));
  });

  app.post('/time/session/end', async (request) => {
    const who = await principal(request);
    const body = input(EndBody, request.body);
    const state = await store.endClientSession({
      userId: who.userId, clientSessionId: body.session_id, claimedSeconds: body.duration_seconds });
    if (!state.replayed) {
      request.log.info({ userId: who.userId, sessionId: state.session_id, billedSeconds: state.billed_seconds,
        claimedSeconds: body.duration_seconds }, 'client call ended');
    }
    return clientSessionView(body.session_id, state);
  });

  app.get('/payments', async (request) => {
    const who = await principal(request);
    const { limit } = input(LimitQuery(50), request.query);
    return { payments: (await store.listPayments({ userId: who.userId, limit })).map(paymentView) };
  });

  // The gifts the caller bought: the code to pass on, while nobody has redeemed it.
  app.get('/time/gifts', async (request) => {
    const who = await principal(request);
    const { limit } = input(LimitQuery(50), request.query);
    return {
      gifts: (await store.listGifts({ userId: who.userId, limit })).map((g) => ({
        card_id: g.card_id, payment_id: g.payment_id, package_id: g.tier_id, total_seconds: g.total_seconds,
        status: g.status, redeemed: g.redeemed, activation_code: g.activation_code,
        expires_at: g.expires_at.toISOString(), created_at: g.created_at.toISOString(),
      })),
    };
  });

  // Back from Stripe Checkout: has the webhook landed? (found: false until it has; the app polls.)
  app.get('/time/purchase/checkout/:sessionId', async (request) => {
    const who = await principal(request);
    const { sessionId } = input(CheckoutParam, request.params);
    const answer = await store.getCheckoutPurchase({ userId: who.userId, checkoutSessionId: sessionId });
    if (!answer.found) return { found: false };
    const card = answer.card;
    return {
      found: true,
      payment: paymentView(answer.payment),
      card: card && {
        card_id: card.card_id, package_id: card.tier_id, source: card.source, status: card.status,
        total_seconds: card.total_seconds, remaining_seconds: card.remaining_seconds,
        expires_at: card.expires_at.toISOString(), activation_code: card.activation_code,
      },
    };
  });

  // Seed 003's /api/usage/current and /history answer in the plan's terms: usage-routes.ts.
  app.get('/api/usage/calls', async (request) => {
    const who = await principal(request);
    const { limit } = input(LimitQuery(20), request.query);
    return { calls: (await store.listSessions({ userId: who.userId, limit })).map(callView) };
  });

  app.get('/user/:id/analytics', async (request) => {
    const { id } = input(UserIdParam, request.params);
    await ownOrAdmin(request, id);
    const { months } = input(AnalyticsQuery, request.query);
    const analytics = await store.getUserAnalytics({ userId: id, months });
    const { totals } = analytics;
    return {
      user_id: analytics.user_id,
      balance_seconds: analytics.balance_seconds,
      balance_minutes: Math.floor(analytics.balance_seconds / 60),
      totals: {
        calls: totals.calls,
        seconds_used: totals.seconds_used,
        minutes_used: minutes(totals.seconds_used),
        average_call_seconds: totals.average_call_seconds,
        cost_cents: totals.cost_cents,
        purchases: totals.purchases,
        // The user's one currency and its figures (null when they paid in several: then read money).
        currency: totals.currency,
        paid_cents: totals.paid_cents,
        refunded_cents: totals.refunded_cents,
        spent_cents: totals.spent_cents,
        money: totals.money,
        first_call_at: iso(totals.first_call_at),
        last_call_at: iso(totals.last_call_at),
      },
      monthly_usage: analytics.months.map((m) => ({
        month: m.month,
        calls: m.calls,
        seconds: m.seconds,
        minutes: minutes(m.seconds),
        cost_cents: m.cost_cents,
        cost_usd: dollars(m.cost_cents, 2),
      })),
    };
  });
}

import { randomUUID } from 'node:crypto';
import cors from '@fastify/cors';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type Stripe from 'stripe';
import { z } from 'zod';
import type { Principal, TokenVerifier } from '../auth/verify-token.ts';
import { BillingError, toBillingError } from '../billing/errors.ts';
import { unstorableTextAt, withStorableText } from '../billing/storable-text.ts';
import type { BillingStore, Balance } from '../billing/store.ts';
import type { SqlClient } from '../billing/sql-client.ts';
import { migrationStatus } from '../billing/migrate.ts';
import { HttpError, installErrorHandling, parseInput } from './http-errors.ts';
import { pricingTierView } from './pricing-display.ts';
import { startPurchase } from './purchases.ts';
import { applyStripeEvent } from './stripe-events.ts';
import { createMetrics, installMetrics } from './metrics.ts';
import { mintCallToken, roomNameFor, type LiveKitSettings } from './livekit-token.ts';
import { registerClientRoutes, UserIdParam } from './client-routes.ts';
import { registerAdminRoutes } from './admin-routes.ts';
import { registerPlanRoutes } from './plan-routes.ts';
import { registerUsageRoutes } from './usage-routes.ts';
import { registerWebApp, type WebAppSettings } from './web-app.ts';

export interface SidecarDeps {
  store: BillingStore;
  /** Direct SQL for the health check; absent behind Supabase's HTTP API only. */
  sql: SqlClient | undefined;
  stripe: Stripe | null;
  webhookSecret: string | undefined;
  verifier: TokenVerifier;
  log: Logger;
  successUrl: string;
  cancelUrl: string;
  corsOrigins: string[];
  version: string;
  /** Absent: POST /token answers 503 and says which variables are missing. */
  livekit?: LiveKitSettings | undefined;
  /** GET /metrics answers only this bearer token; absent: /metrics is not served. */
  metricsToken?: string | undefined;
  /** The web app and its configuration; absent: the API alone. */
  web?: WebAppSettings | undefined;
}

const input = parseInput;

const PurchaseBody = z.strictObject({
  package_id: z.string().min(1).max(40),
  payment_method_id: z.string().regex(/^pm_\w{1,200}$/, 'a Stripe payment method id like pm_...').optional(),
  save_payment_method: z.boolean().optional(),
  gift: z.boolean().optional(),
});
const ActivateBody = z.strictObject({ activation_code: z.string().min(1).max(64) });
const TokenBody = z.strictObject({ room_name: z.string().regex(/^[\w-]{1,100}$/, 'a room name of letters, digits, _ or -').optional() });
const IdempotencyKey = z.string().regex(/^[\w-]{8,100}$/, 'an Idempotency-Key of 8 to 100 letters, digits, _ or -');

/** The balance as the seeds' clients read it: whole minutes left, rounded down. */
export function balanceView(balance: Balance) {
  return {
    user_id: balance.user_id,
    total_minutes: Math.floor(balance.total_seconds / 60),
    total_seconds: balance.total_seconds,
    card_count: balance.card_count,
    next_expiry: balance.next_expiry?.toISOString() ?? null,
    cards: balance.cards.map((c) => ({
      card_id: c.card_id,
      package_id: c.tier_id,
      source: c.source,
      remaining_seconds: c.remaining_seconds,
      remaining_minutes: Math.floor(c.remaining_seconds / 60),
      total_seconds: c.total_seconds,
      activated_at: c.activated_at?.toISOString() ?? null,
      expires_at: c.expires_at.toISOString(),
    })),
  };
}

export async function buildSidecar(deps: SidecarDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: 64 * 1024,
    genReqId: () => randomUUID(),
  });
  installErrorHandling(app);
  const metrics = createMetrics(deps.store);
  installMetrics(app, metrics, deps.metricsToken);
  await app.register(cors, { origin: deps.corsOrigins.length > 0 ? deps.corsOrigins : false });

  const principal = (request: FastifyRequest): Promise<Principal> => deps.verifier.verify(request.headers.authorization);
  const ownOrAdmin = async (request: FastifyRequest, userId: string): Promise<Principal> => {
    const who = await principal(request);
    if (who.userId !== userId && !who.isAdmin) throw new HttpError(403, 'forbidden', 'you may only read your own account');
    return who;
  };

  app.get('/health', async (_request, reply) => {
    const checks: Record<string, unknown> = { version: deps.version };
    try {
      // Side by side: each is bounded by the store's deadline, so the answer comes within one deadline.
      const [, status] = await Promise.all([deps.store.listPricingTiers(), deps.sql ? migrationStatus(deps.sql) : null]);
      checks.database = 'ok';
      if (status) checks.migrations = status.current ? 'current' : `behind (latest applied ${status.latest})`;
    } catch (error) {
      const billing = toBillingError(error);
      // An outage is expected news, one line; anything else is a fault worth its stack.
      if (billing.code === 'storage_unavailable') deps.log.warn({ code: billing.code, reason: billing.message }, 'health check: database unreachable');
      else deps.log.error({ err: error }, 'health check failed');
      checks.database = billing.code === 'storage_unavailable' ? 'unreachable' : 'error';
    }
    const healthy = checks.database === 'ok' && (checks.migrations === undefined || checks.migrations === 'current');
    return reply.status(healthy ? 200 : 503).send({ status: healthy ? 'ok' : 'degraded', ...checks });
  });

  app.get('/time/pricing', async () => {
    const tiers = await deps.store.listPricingTiers();
    return { pricing_tiers: tiers.map(pricingTierView) };
  });

  app.get('/time/balance', async (request) => {
    const who = await principal(request);
    return balanceView(await deps.store.getBalance(who.userId));
  });

  app.get('/user/:id/balance', async (request) => {
    const { id } = input(UserIdParam, request.params);
    await ownOrAdmin(request, id);
    return balanceView(await deps.store.getBalance(id));
  });

  // Call and payment history, usage, analytics, calls a client runs itself; then the administrators' API.
  if (deps.web) await registerWebApp(app, deps.web);
  registerClientRoutes(app, { store: deps.store, principal, ownOrAdmin, input });
  registerAdminRoutes(app, { store: deps.store, principal, ownOrAdmin, input, stripe: deps.stripe });
  registerUsageRoutes(app, { store: deps.store, principal, ownOrAdmin, input });
  registerPlanRoutes(app, { store: deps.store, principal, ownOrAdmin, input });

  app.post('/token', async (request) => {
    const who = await principal(request);
    const body = input(TokenBody, request.body ?? {});
    if (!deps.livekit) {
      throw new HttpError(503, 'calls_unavailable', 'calls are not configured: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET');
    }
    // A room the client names is still the caller's own: it is prefixed with their id.
    const roomName = body.room_name ? `mindbot-${who.userId.slice(0, 8)}-${body.room_name}` : roomNameFor(who.userId);
    const token = await mintCallToken(deps.store, deps.livekit, who.userId, roomName);
    request.log.info({ userId: who.userId, roomName }, 'call token minted');
    return token;
  });

  app.post('/time/activate', async (request) => {
    const who = await principal(request);
    const body = input(ActivateBody, request.body);
    const card = await deps.store.activateCard({ userId: who.userId, code: body.activation_code });
    request.log.info({ userId: who.userId, cardId: card.id }, 'activation code redeemed');
    return {
      success: true,
      card: { card_id: card.id, package_id: card.tier_id, total_seconds: card.total_seconds,
        remaining_seconds: card.remaining_seconds, expires_at: card.expires_at.toISOString() },
      balance: balanceView(await deps.store.getBalance(who.userId)),
    };
  });

  const purchase = async (request: FastifyRequest) => {
    const who = await principal(request);
    const body = input(PurchaseBody, request.body);
    const header = request.headers['idempotency-key'];
    const idempotencyKey = header === undefined ? randomUUID() : input(IdempotencyKey, header);
    const result = await startPurchase(
      { store: deps.store, stripe: deps.stripe, successUrl: deps.successUrl, cancelUrl: deps.cancelUrl, log: request.log as Logger },
      { userId: who.userId, packageId: body.package_id, paymentMethodId: body.payment_method_id,
        savePaymentMethod: body.save_payment_method, gift: body.gift, idempotencyKey },
    );
    request.log.info({ userId: who.userId, packageId: body.package_id, kind: result.kind }, 'purchase started');
    metrics.purchases.inc({ kind: result.kind });
    return result;
  };
  app.post('/time/purchase', purchase);
  // Seed 002's name for the same operation.
  app.post('/create-payment-intent', purchase);

  // The webhook reads the raw bytes: the signature is over the body exactly as Stripe sent it.
  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 512 * 1024 }, (_request, body, done) => done(null, body));
    scope.post('/webhooks/stripe', async (request, reply) => {
      if (!deps.webhookSecret || !deps.stripe) {
        throw new HttpError(503, 'webhooks_unavailable', 'webhooks are not configured (STRIPE_WEBHOOK_SECRET / STRIPE_SECRET_KEY)');
      }
      const signature = request.headers['stripe-signature'];
      if (typeof signature !== 'string' || !Buffer.isBuffer(request.body)) {
        throw new HttpError(400, 'invalid_signature', 'missing Stripe-Signature header or body');
      }
      let event: Stripe.Event;
      try {
        event = deps.stripe.webhooks.constructEvent(request.body, signature, deps.webhookSecret);
      } catch {
        metrics.webhookEvents.inc({ outcome: 'invalid_signature' });
        throw new HttpError(400, 'invalid_signature', 'the Stripe signature does not match this body, or is too old');
      }
      const log = request.log.child({ eventId: event.id, eventType: event.type });
      const unstorable = unstorableTextAt(event);
      if (unstorable !== null) {
        // Signed, so Stripe's own, and maybe money paid: refusing it would have Stripe retry it for days and then
        // drop it. The text is stored with U+FFFD in its place; fields the billing rules read are still checked.
        log.warn({ at: unstorable.replace(/[^\x20-\x7e]/g, '?') },
          'Stripe event holds text PostgreSQL cannot store: applied with U+FFFD in its place');
        event = withStorableText(event);
      }
      const stripe = deps.stripe;
      let outcome;
      try {
        outcome = await applyStripeEvent(event, {
          store: deps.store,
          retrievePaymentIntent: (id) => stripe.paymentIntents.retrieve(id),
          listChargeRefunds: (charge) => stripe.refunds.list({ charge, limit: 100 }).autoPagingToArray({ limit: 1000 }),
          log: log as Logger,
        });
      } catch (error) {
        // Whatever went wrong was rolled back; a 5xx makes Stripe deliver the event again later.
        log.error({ err: error }, 'Stripe event could not be applied; Stripe will retry');
        const unavailable = error instanceof BillingError && error.code === 'storage_unavailable';
        metrics.webhookEvents.inc({ outcome: 'failed' });
        throw new HttpError(unavailable ? 503 : 500, 'webhook_failed', 'the event could not be applied; it will be retried');
      }
      if (outcome.outcome === 'needs_attention') {
        // Acknowledged (a retry could never apply it) and kept for an administrator: GET /admin/attention.
        log.error({ outcome: outcome.outcome, paymentId: outcome.payment_id, attention: outcome.attention },
          'Stripe event cannot be applied: recorded for attention');
      } else {
        log.info({ outcome: outcome.outcome, paymentId: outcome.payment_id }, 'Stripe event applied');
      }
      metrics.webhookEvents.inc({ outcome: outcome.outcome });
      return reply.send({ received: true, outcome: outcome.outcome });
    });
  });

  return app;
}

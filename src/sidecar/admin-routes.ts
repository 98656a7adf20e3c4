// The administrators' API: revenue and usage reports, users, one user's full report, the price list and manual
// time adjustments. Every route needs a token whose user is an administrator (ADMIN_USER_IDS, or the admin
// role claim): 401 without a token, 403 for anyone else. The reports and the rules are SQL functions
// (migrations/004_reports.sql, 002 for adjustments); the handlers authenticate, validate and pass through.
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type Stripe from 'stripe';
import { z } from 'zod';
import type { Principal } from '../auth/verify-token.ts';
import type { TierChanges } from '../billing/store.ts';
import { queryInt, UserIdParam, type RouteDeps } from './client-routes.ts';
import { HttpError } from './http-errors.ts';
import { refundPayment, refundQuote } from '../payments/refunds.ts';

const PaymentIdParam = z.strictObject({ id: z.guid({ message: 'a payment id is a uuid' }) });
const RefundBody = z.strictObject({
  amount_cents: z.number().int().positive().max(100_000_000).optional(),
  reason: z.enum(['duplicate', 'fraudulent', 'requested_by_customer']).optional(),
  /** The override: refund more than the money of the card's unused time (time already talked). */
  allow_more_than_unused: z.boolean().optional(),
});
const DaysQuery = z.strictObject({ days: queryInt(1, 366, 30) });
const RevenueQuery = z.strictObject({
  days: queryInt(1, 366, 30),
  currency: z.string().regex(/^[A-Za-z]{3}$/, 'a three-letter ISO currency code, like usd').transform((c) => c.toLowerCase()).optional(),
});
const UsersQuery = z.strictObject({ limit: queryInt(1, 500, 50), offset: queryInt(0, 1_000_000_000, 0) });
const NoQuery = z.strictObject({});
const AttentionQuery = z.strictObject({ limit: queryInt(1, 1000, 100) });
const TierIdParam = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_]{1,39}$/, 'a tier id of 2 to 40 lower-case letters, digits or _, like starter_1h'),
});

const MAX_SECONDS = 2_000_000_000;
// Hours may be fractional (1.5 hours) as long as they make whole seconds.
const hours = z.number().positive().max(MAX_SECONDS / 3600)
  .refine((h) => Math.abs(h * 3600 - Math.round(h * 3600)) < 1e-6, 'hours must make a whole number of seconds');
const tierFields = {
  name: z.string().trim().min(1).max(80),
  description: z.string().max(500),
  hours,
  base_seconds: z.number().int().positive().max(MAX_SECONDS),
  bonus_seconds: z.number().int().min(0).max(MAX_SECONDS),
  price_cents: z.number().int().positive().max(100_000_000),
  currency: z.string().regex(/^[A-Za-z]{3}$/, 'a three-letter ISO currency code, like usd').transform((c) => c.toLowerCase()),
  sort_order: z.number().int().min(-1_000_000).max(1_000_000),
  stripe_price_id: z.string().regex(/^price_\w{1,250}$/, 'a Stripe price id like price_...').nullable(),
  active: z.boolean(),
};
const notBoth = (tier: { hours?: number | undefined; base_seconds?: number | undefined }) =>
  tier.hours === undefined || tier.base_seconds === undefined;
const CreateTierBody = z.strictObject({
  id: TierIdParam.shape.id,
  name: tierFields.name,
  description: tierFields.description.optional(),
  hours: tierFields.hours.optional(),
  base_seconds: tierFields.base_seconds.optional(),
  bonus_seconds: tierFields.bonus_seconds.optional(),
  price_cents: tierFields.price_cents,
  currency: tierFields.currency.optional(),
  sort_order: tierFields.sort_order.optional(),
  stripe_price_id: tierFields.stripe_price_id.optional(),
  active: tierFields.active.optional(),
})
  .refine(notBoth, { message: 'give hours or base_seconds, not both', path: ['hours'] })
  .refine((t) => t.hours !== undefined || t.base_seconds !== undefined, { message: 'hours or base_seconds is required', path: ['hours'] });
const UpdateTierBody = z.strictObject({
  name: tierFields.name.optional(),
  description: tierFields.description.optional(),
  hours: tierFields.hours.optional(),
  base_seconds: tierFields.base_seconds.optional(),
  bonus_seconds: tierFields.bonus_seconds.optional(),
  price_cents: tierFields.price_cents.optional(),
  currency: tierFields.currency.optional(),
  sort_order: tierFields.sort_order.optional(),
  stripe_price_id: tierFields.stripe_price_id.optional(),
  active: tierFields.active.optional(),
})
  .refine(notBoth, { message: 'give hours or base_seconds, not both', path: ['hours'] })
  .refine((t) => Object.values(t).some((v) => v !== undefined), { message: 'nothing to change' });

const AdjustBody = z.strictObject({
  seconds: z.number().int().min(-MAX_SECONDS).max(MAX_SECONDS).refine((s) => s !== 0, 'must not be zero'),
  reason: z.string().trim().min(3).max(400),
  idempotency_key: z.string().regex(/^[\w:.-]{8,150}$/, 'an idempotency key of 8 to 150 letters, digits, _, :, . or -').optional(),
});
const IdempotencyHeader = z.string().regex(/^[\w:.-]{8,150}$/, 'an Idempotency-Key of 8 to 150 letters, digits, _, :, . or -');

const baseSeconds = (tier: { hours?: number | undefined; base_seconds?: number | undefined }) =>
  tier.base_seconds ?? (tier.hours === undefined ? undefined : Math.round(tier.hours * 3600));

export function registerAdminRoutes(app: FastifyInstance, deps: RouteDeps & { stripe: Stripe | null }): void {
  const { store, principal, input } = deps;
  const admin = async (request: FastifyRequest): Promise<Principal> => {
    const who = await principal(request);
    if (!who.isAdmin) throw new HttpError(403, 'forbidden', 'administrators only');
    return who;
  };

  app.get('/admin/analytics/revenue', async (request) => {
    await admin(request);
    const { days, currency } = input(RevenueQuery, request.query);
    return store.getRevenueReport({ days, currency });
  });

  // The books: whether every second sold is accounted for and every cent received is refunded or kept.
  app.get('/admin/books', async (request) => {
    await admin(request);
    input(NoQuery, request.query);
    return store.getBooks();
  });

  app.get('/admin/analytics/usage', async (request) => {
    await admin(request);
    const { days } = input(DaysQuery, request.query);
    return store.getUsageReport({ days });
  });

  app.get('/admin/users', async (request) => {
    await admin(request);
    const { limit, offset } = input(UsersQuery, request.query);
    return store.listBillingUsers({ limit, offset });
  });

  app.get('/admin/reports/user/:id', async (request) => {
    await admin(request);
    const { id } = input(UserIdParam, request.params);
    input(NoQuery, request.query);
    return store.getUserReport(id);
  });

  app.get('/admin/tiers', async (request) => {
    await admin(request);
    input(NoQuery, request.query);
    return { pricing_tiers: await store.listPricingTiers({ includeInactive: true }) };
  });

  // Creates a tier, or replaces the whole definition of an existing one: 201 when created, 200 when replaced.
  app.post('/admin/tiers', async (request, reply) => {
    const who = await admin(request);
    const body = input(CreateTierBody, request.body);
    const result = await store.upsertPricingTier({
      id: body.id,
      name: body.name,
      baseSeconds: baseSeconds(body)!,
      priceCents: body.price_cents,
      description: body.description,
      bonusSeconds: body.bonus_seconds,
      currency: body.currency,
      sortOrder: body.sort_order,
      stripePriceId: body.stripe_price_id,
      active: body.active,
    });
    request.log.info({ adminId: who.userId, tierId: result.tier.id, created: result.created }, 'pricing tier written');
    return reply.status(result.created ? 201 : 200).send(result);
  });

  app.patch('/admin/tiers/:id', async (request) => {
    const who = await admin(request);
    const { id } = input(TierIdParam, request.params);
    const body = input(UpdateTierBody, request.body);
    const changes: TierChanges = {};
    if (body.name !== undefined) changes.name = body.name;
    if (body.description !== undefined) changes.description = body.description;
    const seconds = baseSeconds(body);
    if (seconds !== undefined) changes.base_seconds = seconds;
    if (body.bonus_seconds !== undefined) changes.bonus_seconds = body.bonus_seconds;
    if (body.price_cents !== undefined) changes.price_cents = body.price_cents;
    if (body.currency !== undefined) changes.currency = body.currency;
    if (body.sort_order !== undefined) changes.sort_order = body.sort_order;
    if (body.stripe_price_id !== undefined) changes.stripe_price_id = body.stripe_price_id;
    if (body.active !== undefined) changes.active = body.active;
    const result = await store.updatePricingTier(id, changes);
    request.log.info({ adminId: who.userId, tierId: id, changes: Object.keys(changes) }, 'pricing tier changed');
    return result;
  });

  // Never deletes: cards and payments reference their tier. It leaves the price list.
  app.delete('/admin/tiers/:id', async (request) => {
    const who = await admin(request);
    const { id } = input(TierIdParam, request.params);
    const result = await store.deactivatePricingTier(id);
    request.log.info({ adminId: who.userId, tierId: id }, 'pricing tier deactivated');
    return result;
  });

  // Stripe events that can never apply (a purchase naming an unknown package, a paid amount that is not the
  // price, a refund of a charge that is no purchase…): acknowledged to Stripe and listed here, newest first.
  app.get('/admin/attention', async (request) => {
    await admin(request);
    const { limit } = input(AttentionQuery, request.query);
    return store.listStripeAttention({ limit });
  });

  // One payment with what a refund of it may give back (the refund form reads it).
  app.get('/admin/payments/:id', async (request) => {
    await admin(request);
    const { id } = input(PaymentIdParam, request.params);
    input(NoQuery, request.query);
    return refundQuote(await store.getPayment(id));
  });

  // A refund through Stripe; the card follows when Stripe's refund events arrive.
  app.post('/admin/payments/:id/refund', async (request, reply) => {
    const who = await admin(request);
    const { id } = input(PaymentIdParam, request.params);
    const body = input(RefundBody, request.body ?? {});
    const header = request.headers['idempotency-key'];
    const result = await refundPayment(store, deps.stripe, request.log as Logger, {
      paymentId: id, amountCents: body.amount_cents, reason: body.reason, adminId: who.userId,
      allowMoreThanUnused: body.allow_more_than_unused ?? false,
      idempotencyKey: header === undefined ? undefined : input(IdempotencyHeader, header),
    });
    return reply.status(202).send(result);
  });

  // A manual correction: a credit becomes a card of its own, a debit is taken like usage (never below zero).
  // The ledger row carries the reason and the administrator. The key (body, or Idempotency-Key header) makes
  // a retried request the same adjustment; without one, every request is a new adjustment.
  app.post('/admin/users/:id/adjust', async (request) => {
    const who = await admin(request);
    const { id } = input(UserIdParam, request.params);
    const body = input(AdjustBody, request.body);
    const header = request.headers['idempotency-key'];
    const key = body.idempotency_key ?? (header === undefined ? randomUUID() : input(IdempotencyHeader, header));
    const adjustment = await store.adjustUserTime({
      userId: id,
      seconds: body.seconds,
      reason: `${body.reason} (by admin ${who.userId})`,
      idempotencyKey: `admin-adjust:${id}:${key}`,
    });
    request.log.info({ adminId: who.userId, userId: id, seconds: body.seconds, replayed: adjustment.replayed }, 'time adjusted');
    return adjustment;
  });
}

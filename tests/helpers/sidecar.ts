import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import Stripe from 'stripe';
import type { FastifyInstance } from 'fastify';
import { createTokenVerifier, signLocalToken } from '../../src/auth/verify-token.ts';
import type { BillingStore, Clock } from '../../src/billing/store.ts';
import type { SqlClient } from '../../src/billing/sql-client.ts';
import { buildSidecar } from '../../src/sidecar/app.ts';
import type { TestDatabase } from './test-db.ts';
import {
  chargeObject, checkoutSessionObject, disputeObject, eventObject, paymentIntentObject, purchaseMetadata, refundObject,
} from './stripe-payment-objects.ts';

export const WEBHOOK_SECRET = 'whsec_test_mindbot_sidecar';
/** Where `npm run build` puts the web app (./launch.sh test builds it before the tests). */
export const WEB_DIST_DIR = fileURLToPath(new URL('../../dist/web', import.meta.url));
const JWT_SECRET = 'test-jwt-secret-for-the-sidecar-tests-0123456789';
/** The scrape token of the test sidecars' GET /metrics. */
export const METRICS_TOKEN = 'test-metrics-token-0123456789abcdef0123';

export interface TestSidecar {
  url: string;
  app: FastifyInstance;
  store: BillingStore;
  /**
   * The sidecar's Stripe client. Started with `stripe: null`, the sidecar has none (purchases answer 503); this
   * is then a client to a closed port that the sidecar never sees, kept only to sign test webhooks (deliver).
   */
  stripe: Stripe;
  /** A bearer token for the user (admin when asked). */
  tokenFor(userId: string, options?: { admin?: boolean }): Promise<string>;
  /** Posts the event to /webhooks/stripe with a valid signature (or the given header). */
  deliver(event: object, options?: { signature?: string; secret?: string; timestamp?: number }): Promise<Response>;
  request(method: string, path: string, options?: { token?: string; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  close(): Promise<void>;
}

/** The real sidecar on a loopback port, over the test database. */
export const LIVEKIT = { url: 'wss://livekit.mindbot.test', apiKey: 'APItestkey', apiSecret: 'livekit-test-secret-0123456789abcdef', ttlSeconds: 600 };

export async function startSidecar(db: TestDatabase, options: {
  clock?: Clock; adminIds?: string[];
  /** Stripe's client; null: no Stripe at all (purchases not configured: they answer 503, and the web app says they are off). */
  stripe?: Stripe | null; livekit?: typeof LIVEKIT | null;
  /** Serve the built web app (dist/web) with the development sign-in, signing with the tests' secret. */
  web?: boolean;
  /** Where Checkout sends the buyer back; a function of this sidecar's own URL (known only once it listens). */
  successUrl?: string | ((sidecarUrl: string) => string);
  /**
   * Production sign-in: with `web`, the app signs in with Supabase Auth at `url` (a fake GoTrue), and the verifier
   * also accepts tokens signed with the project's HS256 `jwtSecret`. SUPABASE_URL is set as in production, so the
   * verifier knows a JWKS URL too; it only fetches it for ES256/RS256 tokens. tokenFor keeps signing local tokens.
   */
  supabaseAuth?: { url: string; anonKey: string; jwtSecret: string };
  /** The sidecar's store and health-check SQL, instead of the test database's own (e.g. through a fault proxy). */
  storage?: { store: BillingStore; sql: SqlClient | undefined };
  /** The sidecar's logger (default: silent, or TEST_LOG_LEVEL). */
  log?: Logger;
  /** GET /metrics's bearer token (default METRICS_TOKEN); null: none configured, /metrics is not served. */
  metricsToken?: string | null;
} = {}): Promise<TestSidecar> {
  const store = options.storage?.store ?? db.store(options.clock);
  let url = '';
  const successUrl = options.successUrl ?? 'https://app.mindbot.test/purchase/success?session_id={CHECKOUT_SESSION_ID}';
  // Without a fake (or with none at all: null), a client pointed at a closed port: any accidental Stripe call fails fast and visibly.
  const stripe = options.stripe ?? new Stripe('sk_test_unreachable', { host: '127.0.0.1', port: 9, protocol: 'http', maxNetworkRetries: 0 });
  const app = await buildSidecar({
    store,
    sql: options.storage ? options.storage.sql : db.sql,
    stripe: options.stripe === null ? null : stripe,
    webhookSecret: WEBHOOK_SECRET,
    verifier: createTokenVerifier({
      NODE_ENV: 'test', JWT_SECRET, ADMIN_USER_IDS: options.adminIds ?? [],
      ...(options.supabaseAuth && { SUPABASE_URL: options.supabaseAuth.url, SUPABASE_JWT_SECRET: options.supabaseAuth.jwtSecret }),
    }),
    log: options.log ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    // Read when a purchase starts, by then the sidecar listens and its URL is known.
    get successUrl() { return typeof successUrl === 'function' ? successUrl(url) : successUrl; },
    cancelUrl: 'https://app.mindbot.test/purchase/cancel',
    corsOrigins: ['https://app.mindbot.test'],
    version: 'test',
    metricsToken: options.metricsToken === null ? undefined : options.metricsToken ?? METRICS_TOKEN,
    livekit: options.livekit === null ? undefined : options.livekit ?? LIVEKIT,
    web: options.web ? {
      distDir: WEB_DIST_DIR,
      auth: options.supabaseAuth
        ? { mode: 'supabase', supabaseUrl: options.supabaseAuth.url, anonKey: options.supabaseAuth.anonKey }
        : { mode: 'local', signingSecret: JWT_SECRET },
      livekitUrl: options.livekit === null ? undefined : (options.livekit ?? LIVEKIT).url,
      purchasesEnabled: options.stripe !== null,
      version: 'test',
    } : undefined,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  url = `http://127.0.0.1:${address.port}`;
  const request: TestSidecar['request'] = (method, path, opts = {}) =>
    fetch(`${url}${path}`, {
      method,
      headers: {
        ...(opts.body !== undefined && { 'content-type': 'application/json' }),
        ...(opts.token && { authorization: `Bearer ${opts.token}` }),
        ...opts.headers,
      },
      body: opts.body === undefined ? undefined : typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body),
    });
  return {
    url,
    app,
    store,
    stripe,
    tokenFor: (userId, o) => signLocalToken({ userId, admin: o?.admin ?? false }, JWT_SECRET),
    async deliver(event, o = {}) {
      const payload = JSON.stringify(event, null, 2);
      const signature = o.signature ?? stripe.webhooks.generateTestHeaderString({
        payload, secret: o.secret ?? WEBHOOK_SECRET, ...(o.timestamp !== undefined && { timestamp: o.timestamp }),
      });
      return fetch(`${url}/webhooks/stripe`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'stripe-signature': signature },
        body: payload,
      });
    },
    request,
    async close() {
      await app.close();
      await store.close();
    },
  };
}

let counter = 0;
const unique = (prefix: string) => `${prefix}_test${Date.now().toString(36)}${(counter++).toString(36)}${Math.random().toString(36).slice(2, 8)}`;

/** A webhook event: Stripe's published event object wrapping `object`. */
export function stripeEvent(type: string, object: Record<string, unknown>, id = unique('evt')): Record<string, unknown> {
  return eventObject(type, object, id);
}

export interface PurchaseIds {
  sessionId: string;
  paymentIntentId: string;
  chargeId: string;
}

export function purchaseIds(): PurchaseIds {
  return { sessionId: unique('cs'), paymentIntentId: unique('pi'), chargeId: unique('ch') };
}

type Purchase = { userId: string; packageId: string; amount: number; gift?: boolean };

/** A paid Checkout Session of the purchase (Stripe's published object; values and extra fields overridden). */
export function checkoutSession(ids: PurchaseIds, purchase: Purchase, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return checkoutSessionObject({ id: ids.sessionId, paymentIntentId: ids.paymentIntentId, amount: purchase.amount,
    metadata: purchaseMetadata(purchase) }, overrides);
}

/** The purchase's succeeded PaymentIntent (Stripe's published object). */
export function paymentIntent(ids: PurchaseIds, purchase: Purchase, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return paymentIntentObject({ id: ids.paymentIntentId, amount: purchase.amount, status: 'succeeded',
    latestChargeId: ids.chargeId, metadata: purchaseMetadata(purchase) }, overrides);
}

/**
 * The purchase's Charge with `amountRefunded` refunded, as one refund (re_<charge id>) listed on it unless
 * `refunds` lists them (Stripe's published charge and refund objects).
 */
export function charge(ids: PurchaseIds, amount: number, amountRefunded: number, refunds?: Record<string, unknown>[]): Record<string, unknown> {
  const list = refunds ?? (amountRefunded > 0
    ? [refundObject({ id: `re_${ids.chargeId.slice(3)}`, chargeId: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount: amountRefunded })]
    : []);
  return chargeObject({ id: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount, refunds: list });
}

/** A dispute of the purchase's charge: a chargeback unless its status is an inquiry's (warning_*). */
export function dispute(ids: PurchaseIds, disputeId: string, status: string, amount = 0): Record<string, unknown> {
  return disputeObject({ id: disputeId, chargeId: ids.chargeId, paymentIntentId: ids.paymentIntentId, amount, status,
    kind: status.startsWith('warning_') ? 'inquiry' : 'chargeback' });
}

import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { BillingStore } from '../billing/store.ts';

/** What the sidecar counts itself; balances and sessions are read from the database at each scrape. */
export interface SidecarMetrics {
  registry: Registry;
  webhookEvents: Counter<'outcome'>;
  purchases: Counter<'kind'>;
}

export function createMetrics(store: BillingStore): SidecarMetrics {
  const registry = new Registry();
  const webhookEvents = new Counter({
    name: 'mindbot_webhook_events_total', help: 'Stripe webhook deliveries by outcome', labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const purchases = new Counter({
    name: 'mindbot_purchases_started_total', help: 'Purchases started at Stripe by kind (checkout, payment_intent)',
    labelNames: ['kind'] as const, registers: [registry],
  });
  new Histogram({
    name: 'mindbot_http_request_duration_seconds', help: 'HTTP request latency by route',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // One query serves every database gauge of a scrape.
  let snapshot: Promise<Record<string, number>> | null = null;
  const fromDatabase = (name: string, help: string, field: string) =>
    new Gauge({
      name, help, registers: [registry],
      async collect() {
        snapshot ??= store.billingMetrics().finally(() => setTimeout(() => { snapshot = null; }, 0));
        this.set((await snapshot)[field] ?? 0);
      },
    });
  fromDatabase('mindbot_seconds_granted', 'Seconds granted on time cards, all time', 'seconds_granted');
  fromDatabase('mindbot_seconds_charged', 'Seconds charged for calls, all time', 'seconds_charged');
  fromDatabase('mindbot_active_sessions', 'Calls being metered now', 'active_sessions');
  fromDatabase('mindbot_notifications_pending', 'Notifications waiting for delivery', 'notifications_pending');
  fromDatabase('mindbot_notifications_dead', 'Notifications given up after their last retry', 'notifications_dead');
  // The meter event outbox and reconciliation (migration 019), one query per scrape.
  let outbox: Promise<Record<string, number>> | null = null;
  const fromOutbox = (name: string, help: string, field: string) =>
    new Gauge({
      name, help, registers: [registry],
      async collect() {
        outbox ??= store.meterOutboxStats().finally(() => setTimeout(() => { outbox = null; }, 0));
        this.set((await outbox)[field] ?? 0);
      },
    });
  fromOutbox('mindbot_meter_events_pending', 'Meter events not yet delivered to Stripe', 'pending');
  fromOutbox('mindbot_meter_events_retrying', 'Meter events waiting for a retry after a failed delivery', 'retrying');
  fromOutbox('mindbot_meter_events_oldest_pending_seconds', 'Age of the oldest meter event not yet delivered', 'oldest_pending_seconds');
  fromOutbox('mindbot_meter_drift_open', 'Periods where Stripe counted other seconds than we billed (table meter_drift)', 'drift_open');
  new Gauge({
    name: 'mindbot_stripe_events_needing_attention', help: 'Stripe events that can never apply, kept for an administrator (GET /admin/attention)',
    registers: [registry],
    async collect() {
      this.set((await store.listStripeAttention({ limit: 1 })).total);
    },
  });
  return { registry, webhookEvents, purchases };
}

/** The bearer header that /metrics asks for, compared in constant time. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const expected = Buffer.from(`Bearer ${token}`);
  const given = Buffer.from(header ?? '');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The request latency histogram for every route, and GET /metrics. Balances and payments are business data, so
 * /metrics answers only a scraper holding METRICS_TOKEN; without a token configured it does not exist (404).
 */
export function installMetrics(app: FastifyInstance, metrics: SidecarMetrics, token: string | undefined): void {
  const latency = metrics.registry.getSingleMetric('mindbot_http_request_duration_seconds') as Histogram<'method' | 'route' | 'status'>;
  app.addHook('onResponse', async (request, reply) => {
    // The route's pattern, not the URL: /user/:id/balance is one series, not one per user.
    const route = request.routeOptions.url ?? 'unmatched';
    latency.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  if (token === undefined) return;
  app.get('/metrics', async (request, reply) => {
    if (!bearerMatches(request.headers.authorization, token)) {
      return reply.status(401).header('www-authenticate', 'Bearer realm="metrics"')
        .send({ error: { code: 'unauthorized', message: 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>' } });
    }
    reply.header('content-type', metrics.registry.contentType);
    return metrics.registry.metrics();
  });
}

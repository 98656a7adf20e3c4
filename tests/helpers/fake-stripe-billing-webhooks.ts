import Stripe from 'stripe';
import type { FakeEvent } from './fake-stripe.ts';
import type { WebhookDelivery, WebhookEndpoint } from './fake-stripe-billing-objects.ts';

// Posting events to a webhook endpoint as Stripe does: one POST per event, the JSON payload signed in the
// `Stripe-Signature` header with the endpoint's secret, a 2xx answer within the deadline counting as delivered.

export interface DeliveryOptions {
  /** 'created' (default): in the order the events happened. Stripe does not promise an order; 'reversed' tests that. */
  order?: 'created' | 'reversed';
  /** Post every event twice, as Stripe may (at-least-once delivery). */
  twice?: boolean;
}

/** Posts one event; never throws (a failure is in the answer). */
export async function postEvent(event: FakeEvent, endpoint: WebhookEndpoint): Promise<WebhookDelivery> {
  const payload = JSON.stringify(event, null, 2);
  // Signed with the real time: the receiver checks the signature's age against its own clock, not the test clock.
  const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret: endpoint.secret });
  try {
    const res = await fetch(endpoint.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', 'stripe-signature': signature, 'user-agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
      body: payload,
      signal: AbortSignal.timeout(endpoint.timeoutMs ?? 10_000),
    });
    const body = await res.text();
    const ok = res.status >= 200 && res.status < 300;
    return { event, status: res.status, error: ok ? null : `HTTP ${res.status}`, body };
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? ` (${e.cause.message})` : '';
    return { event, status: 0, error: e instanceof Error ? `${e.name}: ${e.message}${cause}` : String(e), body: '' };
  }
}

/** Posts the events one after another (each waits for the endpoint's answer, as Stripe's next attempt would). */
export async function postEvents(events: FakeEvent[], endpoint: WebhookEndpoint, options: DeliveryOptions = {}): Promise<WebhookDelivery[]> {
  const ordered = options.order === 'reversed' ? [...events].reverse() : events;
  const out: WebhookDelivery[] = [];
  for (const event of ordered) {
    out.push(await postEvent(event, endpoint));
    if (options.twice) out.push(await postEvent(event, endpoint));
  }
  return out;
}

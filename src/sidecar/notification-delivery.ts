import { createHmac } from 'node:crypto';
import type { Logger } from 'pino';
import type { BillingStore, ClaimedNotification } from '../billing/store.ts';

export interface DeliveryOptions {
  url: string;
  /** Signs each body (HMAC-SHA256) so the receiver can tell it came from us. */
  secret?: string | undefined;
  batchSize?: number;
  leaseSeconds?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** Exponential backoff from 30 s, at most an hour. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(3600, 30 * 2 ** Math.max(0, attempts - 1));
}

export function signatureHeader(body: string, secret: string, timestamp: number): string {
  const digest = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${digest}`;
}

/**
 * Claims due notifications and posts each to the configured URL. The notification id travels as the
 * Idempotency-Key, so a receiver that sees a retry (a lost answer, a sidecar that died mid-delivery) can
 * tell it from a new notice; once a 2xx is recorded the notification is never sent again.
 */
export async function deliverDueNotifications(store: BillingStore, log: Logger, options: DeliveryOptions): Promise<{
  delivered: number; failed: number;
}> {
  const doFetch = options.fetch ?? fetch;
  const claimed = await store.claimNotifications({ limit: options.batchSize ?? 50, leaseSeconds: options.leaseSeconds ?? 60 });
  let delivered = 0;
  let failed = 0;
  for (const notification of claimed) {
    const error = await post(doFetch, notification, options);
    const report = await store.reportNotification({
      id: notification.id,
      delivered: error === null,
      error: error ?? undefined,
      retrySeconds: retryDelaySeconds(notification.attempts),
      maxAttempts: options.maxAttempts ?? 10,
    });
    if (error === null) delivered++;
    else {
      failed++;
      log.warn({ notificationId: notification.id, kind: notification.kind, userId: notification.user_id,
        attempts: notification.attempts, state: report.state, error }, 'notification not delivered');
    }
  }
  return { delivered, failed };
}

async function post(doFetch: typeof fetch, notification: ClaimedNotification, options: DeliveryOptions): Promise<string | null> {
  const body = JSON.stringify({
    id: notification.id, kind: notification.kind, user_id: notification.user_id,
    payload: notification.payload, created_at: notification.created_at,
  });
  const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': notification.id };
  if (options.secret) headers['x-mindbot-signature'] = signatureHeader(body, options.secret, Math.floor(Date.now() / 1000));
  try {
    const response = await doFetch(options.url, {
      method: 'POST', headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 5000),
    });
    await response.arrayBuffer().catch(() => undefined);
    return response.ok ? null : `HTTP ${response.status}`;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

// The sidecar's background work: expiry, reaping, the notification outbox; and its health and metrics.
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { startBackgroundJobs } from '../src/sidecar/jobs.ts';
import { deliverDueNotifications } from '../src/sidecar/notification-delivery.ts';
import { createPostgresDatabase, newUserId, TestClock, type TestDatabase } from './helpers/test-db.ts';
import { checkoutSession, METRICS_TOKEN, purchaseIds, startSidecar, stripeEvent } from './helpers/sidecar.ts';

const silent = pino({ level: 'silent' });

/** A receiver for notifications on loopback that answers with the statuses it is given. */
async function startReceiver(statuses: number[] = []) {
  const received: { headers: http.IncomingHttpHeaders; body: string }[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => { body += chunk; });
    request.on('end', () => {
      received.push({ headers: request.headers, body });
      response.statusCode = statuses.shift() ?? 204;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/notify`, received, close: () => new Promise((r) => server.close(r)) };
}

describe('notifications', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createPostgresDatabase();
  });
  after(async () => {
    await db?.close();
  });

  const notificationsOf = async (userId: string) =>
    (await db.sql.query<{ kind: string; delivered_at: Date | null; attempts: number; dead_at: Date | null }>(
      'select kind, delivered_at, attempts, dead_at from public.notifications where user_id = $1 order by kind', [userId])).rows;

  it('announces a low balance, a card about to expire and a balance run out, each once', async () => {
    const clock = new TestClock('2026-05-01T00:00:00Z');
    const store = db.store(clock.now);
    const low = newUserId();
    await store.adjustUserTime({ userId: low, seconds: 20 * 60, reason: 'twenty minutes', idempotencyKey: `${low}:c` });
    const expiring = newUserId();
    clock.set('2025-05-05T00:00:00Z');
    await store.grantCard({ userId: expiring, tierId: 'basic_5h', idempotencyKey: `${expiring}:g` });
    clock.set('2026-05-01T00:00:00Z');
    const broke = newUserId();
    await store.adjustUserTime({ userId: broke, seconds: 60, reason: 'one minute', idempotencyKey: `${broke}:c` });
    await store.deductTime({ userId: broke, seconds: 60, idempotencyKey: `${broke}:d` });

    const first = await store.enqueueBalanceNotifications();
    assert.ok(first.low_balance >= 1 && first.card_expiring >= 1 && first.balance_exhausted >= 1, JSON.stringify(first));
    await store.enqueueBalanceNotifications();
    assert.deepEqual((await notificationsOf(low)).map((n) => n.kind), ['low_balance']);
    assert.deepEqual((await notificationsOf(expiring)).map((n) => n.kind), ['card_expiring']);
    assert.deepEqual((await notificationsOf(broke)).map((n) => n.kind), ['balance_exhausted']);
    await store.close();
  });

  it('delivers each notification once, signed, with its id as the idempotency key, even with two deliverers', async () => {
    const store = db.store();
    const other = db.store();
    const user = newUserId();
    await store.adjustUserTime({ userId: user, seconds: 300, reason: 'five minutes', idempotencyKey: `${user}:c` });
    await store.enqueueBalanceNotifications();
    const receiver = await startReceiver();
    const options = { url: receiver.url, secret: 'notify-secret-0123456789' };
    const results = await Promise.all([deliverDueNotifications(store, silent, options), deliverDueNotifications(other, silent, options)]);
    const again = await deliverDueNotifications(store, silent, options);
    assert.equal(again.delivered, 0, 'nothing is sent twice');
    const mine = receiver.received.filter((r) => JSON.parse(r.body).user_id === user);
    assert.equal(mine.length, 1);
    assert.equal(results.reduce((n, r) => n + r.delivered, 0), receiver.received.length);
    const { id, kind } = JSON.parse(mine[0]!.body) as { id: string; kind: string };
    assert.equal(kind, 'low_balance');
    assert.equal(mine[0]!.headers['idempotency-key'], id);
    const [, t, v1] = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(mine[0]!.headers['x-mindbot-signature']))!;
    assert.equal(v1, createHmac('sha256', options.secret).update(`${t}.${mine[0]!.body}`).digest('hex'));
    assert.ok((await notificationsOf(user)).every((n) => n.delivered_at !== null));
    await receiver.close();
    await store.close();
    await other.close();
  });

  it('retries a failed delivery later with backoff, and gives up after the last attempt', async () => {
    const clock = new TestClock('2026-06-01T00:00:00Z');
    const store = db.store(clock.now);
    const user = newUserId();
    await store.adjustUserTime({ userId: user, seconds: 300, reason: 'five minutes', idempotencyKey: `${user}:c` });
    await store.enqueueBalanceNotifications();
    // Deliver only this user's notice: others in the database get a 204 from a second receiver.
    const failing = await startReceiver([500, 500, 500]);
    const only = (url: string) => (input: string | URL | Request, init?: RequestInit) => fetch(url, init);
    const options = { url: failing.url, maxAttempts: 3, fetch: only(failing.url) as typeof fetch };
    await deliverDueNotifications(store, silent, options);
    let [notice] = await notificationsOf(user);
    assert.deepEqual([notice!.attempts, notice!.delivered_at], [1, null]);
    assert.equal((await deliverDueNotifications(store, silent, options)).failed, 0, 'not due again before its backoff');
    clock.advance(31);
    await deliverDueNotifications(store, silent, options);
    clock.advance(61);
    await deliverDueNotifications(store, silent, options);
    [notice] = await notificationsOf(user);
    assert.equal(notice!.attempts, 3);
    assert.ok(notice!.dead_at, 'dead after the last attempt');
    clock.advance(86_400);
    assert.equal((await deliverDueNotifications(store, silent, options)).failed, 0, 'a dead notice is not retried');
    await failing.close();
    await store.close();
  });
});

describe('background jobs', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createPostgresDatabase();
  });
  after(async () => {
    await db?.close();
  });

  it('expire cards and settle the calls of a crashed worker', async () => {
    const clock = new TestClock('2025-01-01T00:00:00Z');
    const store = db.store(clock.now);
    const user = newUserId();
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:old` });
    clock.set('2025-12-31T23:00:00Z');
    await store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:new` });
    const call = await store.startSession({ userId: user, externalKey: `${user}:call`, roomName: 'r' });
    clock.set('2026-01-01T00:10:00Z');
    const jobs = startBackgroundJobs(store, silent, {
      expireEverySeconds: 3600, reapEverySeconds: 3600, maxSilenceSeconds: 180, notifyEverySeconds: 3600,
      lowBalanceSeconds: 1800, delivery: null,
    });
    await jobs.runOnce();
    await jobs.stop();
    const { rows: cards } = await db.sql.query<{ status: string }>('select status from public.time_cards where user_id = $1 order by created_at', [user]);
    assert.deepEqual(cards.map((c) => c.status), ['expired', 'active']);
    const { rows: calls } = await db.sql.query<{ status: string }>('select status from public.voice_sessions where id = $1', [call.session_id]);
    assert.equal(calls[0]!.status, 'abandoned');
    await store.close();
  });
});

describe('health and metrics', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createPostgresDatabase();
  });
  after(async () => {
    await db?.close();
  });

  it('reports a reachable, current database and counts webhooks, purchases and balances', async () => {
    const sidecar = await startSidecar(db);
    try {
      const health = await sidecar.request('GET', '/health');
      assert.equal(health.status, 200);
      assert.deepEqual(await health.json(), { status: 'ok', version: 'test', database: 'ok', migrations: 'current' });
      const user = newUserId();
      await sidecar.deliver(stripeEvent('checkout.session.completed',
        checkoutSession(purchaseIds(), { userId: user, packageId: 'starter_1h', amount: 999 })));
      await sidecar.deliver(stripeEvent('customer.created', { id: 'cus_1' }), { secret: 'whsec_forged' });
      await sidecar.store.startSession({ userId: user, externalKey: `${user}:k`, roomName: 'r' });
      const text = await (await sidecar.request('GET', '/metrics', { token: METRICS_TOKEN })).text();
      assert.match(text, /mindbot_webhook_events_total\{outcome="granted"\} 1/);
      assert.match(text, /mindbot_webhook_events_total\{outcome="invalid_signature"\} 1/);
      assert.match(text, /mindbot_seconds_granted 3600/);
      assert.match(text, /mindbot_seconds_charged 60/);
      assert.match(text, /mindbot_active_sessions 1/);
      assert.match(text, /mindbot_http_request_duration_seconds_count\{method="GET",route="\/health",status="200"\} 1/);
    } finally {
      await sidecar.close();
    }
  });

  it('serves /metrics only to the holder of METRICS_TOKEN, and not at all without one', async () => {
    const sidecar = await startSidecar(db);
    const open = await startSidecar(db, { metricsToken: null });
    try {
      for (const headers of [{} as Record<string, string>, { authorization: `Bearer ${METRICS_TOKEN.slice(0, -1)}x` }, { authorization: METRICS_TOKEN },
        { authorization: `Bearer ${await sidecar.tokenFor(newUserId(), { admin: true })}` }]) {
        const refused = await sidecar.request('GET', '/metrics', { headers });
        assert.equal(refused.status, 401);
        assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'unauthorized');
        assert.match(refused.headers.get('www-authenticate') ?? '', /^Bearer/);
      }
      const scraped = await sidecar.request('GET', '/metrics', { token: METRICS_TOKEN });
      assert.equal(scraped.status, 200);
      assert.match(await scraped.text(), /mindbot_seconds_granted/);
      const none = await open.request('GET', '/metrics', { token: METRICS_TOKEN });
      assert.equal(none.status, 404);
      assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'not_found');
    } finally {
      await sidecar.close();
      await open.close();
    }
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import net from 'node:net';
import { createClient } from '@supabase/supabase-js';
import pg from 'pg';
import ws from 'ws';
import { BillingError } from '../src/billing/errors.ts';
import { pgPoolClient } from '../src/billing/sql-client.ts';
import { RpcBillingStore, type RpcTransport } from '../src/billing/store.ts';
import { createServiceClient, supabaseTransport } from '../src/billing/supabase-transport.ts';
import {
  createFakePostgrest, projectKey, userAccessToken, type FakePostgrest,
} from './helpers/fake-postgrest.ts';
import {
  createPostgresDatabase, ledgerMismatches, newUserId, TestClock, type TestDatabase,
} from './helpers/test-db.ts';

// The store over supabase-js, answered by a PostgREST emulation running every call on a real database as the
// role the bearer token names. See tests/helpers/fake-postgrest.ts for what is emulated.

const SUPABASE_URL = 'http://supabase.test';
const SERVICE_KEY = projectKey('service_role');
const ANON_KEY = projectKey('anon');

let db: TestDatabase;

before(async () => {
  db = await createPostgresDatabase();
});

after(async () => {
  await db?.close();
});

function fakeApi(): FakePostgrest {
  return createFakePostgrest({ sql: db.sql, apiKeys: [ANON_KEY, SERVICE_KEY] });
}

/** What the billing core runs in production: the service-role client. */
function serviceStack(clock?: TestClock) {
  const api = fakeApi();
  const transport = supabaseTransport(createServiceClient({ url: SUPABASE_URL, serviceRoleKey: SERVICE_KEY, fetch: api.fetch }));
  return { api, transport, store: new RpcBillingStore(transport, clock?.now) };
}

/** A client acting for a signed-in user: the project's anon key plus the user's access token. */
function userStack(userId: string) {
  const api = fakeApi();
  const client = createClient(SUPABASE_URL, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: api.fetch, headers: { Authorization: `Bearer ${userAccessToken(userId)}` } },
    realtime: { transport: ws as never },
  });
  const transport = supabaseTransport(client);
  return { api, transport, store: new RpcBillingStore(transport) };
}

function anonStack() {
  const api = fakeApi();
  const client = createClient(SUPABASE_URL, ANON_KEY, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { fetch: api.fetch },
    realtime: { transport: ws as never },
  });
  return { api, transport: supabaseTransport(client) };
}

/** A transport whose requests are answered by `answer` instead of the fake. */
function transportOver(answer: typeof fetch): RpcTransport {
  return supabaseTransport(createServiceClient({ url: SUPABASE_URL, serviceRoleKey: SERVICE_KEY, fetch: answer }));
}

async function rejectsWith(promise: Promise<unknown>, code: BillingError['code']): Promise<BillingError> {
  let caught: unknown;
  await assert.rejects(promise, (error) => {
    caught = error;
    return true;
  });
  assert.ok(caught instanceof BillingError, `expected a BillingError, got ${String(caught)}`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  return caught;
}

async function spendableSeconds(userId: string): Promise<number> {
  const { rows } = await db.sql.query<{ n: number }>(
    `select coalesce(sum(remaining_seconds), 0)::int as n from public.time_cards where user_id = $1 and status = 'active'`,
    [userId]);
  return rows[0]!.n;
}

async function ledgerRows(userId: string): Promise<number> {
  const { rows } = await db.sql.query<{ n: number }>(`select count(*)::int as n from public.ledger_entries where user_id = $1`, [userId]);
  return rows[0]!.n;
}

/** A gift card (pending, with its code) bought by someone for whoever redeems it. */
async function giftCode(store: RpcBillingStore): Promise<string> {
  const gift = await store.grantCard({ userId: null, tierId: 'starter_1h', purchaserId: newUserId(), idempotencyKey: `gift-${newUserId()}` });
  assert.equal(gift.status, 'pending');
  return gift.activation_code;
}

const ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';

describe('the billing store over the Supabase Data API (service role)', () => {
  it('grants, reads, deducts, meters a call and redeems a gift, and the database holds the same state', async () => {
    const clock = new TestClock('2026-03-01T10:00:00Z');
    const { store, api } = serviceStack(clock);
    const userId = newUserId();

    const card = await store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `buy-${userId}` });
    assert.equal(card.status, 'active');
    assert.equal(card.user_id, userId);
    assert.equal(card.remaining_seconds, 3600);
    assert.equal(card.replayed, false);

    const balance = await store.getBalance(userId);
    assert.equal(balance.total_seconds, 3600);
    assert.equal(balance.card_count, 1);
    assert.equal(balance.cards[0]!.card_id, card.id);

    const deduction = await store.deductTime({ userId, seconds: 90, idempotencyKey: `deduct-${userId}` });
    assert.equal(deduction.deducted_seconds, 90);
    assert.equal(deduction.shortfall_seconds, 0);
    assert.equal(deduction.remaining_seconds, 3510);
    assert.deepEqual(deduction.entries, [{ card_id: card.id, seconds: 90 }]);

    const started = await store.startSession({ userId, externalKey: `call-${userId}`, roomName: 'room-1' });
    assert.equal(started.status, 'active');
    assert.equal(started.charged_seconds, 60);
    assert.equal(started.started_at.toISOString(), '2026-03-01T10:00:00.000Z');
    clock.advance(150);
    const metered = await store.meterSession(started.session_id);
    assert.equal(metered.charged_seconds, 120);
    assert.equal(metered.billed_seconds, 180);
    clock.advance(30);
    const ended = await store.endSession({ sessionId: started.session_id, reason: 'caller_left' });
    assert.equal(ended.status, 'ended');
    assert.equal(ended.charged_seconds, 0);
    assert.equal(ended.billed_seconds, 180);
    assert.equal(ended.remaining_seconds, 3600 - 90 - 180);

    const code = await giftCode(store);
    const redeemed = await store.activateCard({ userId, code });
    assert.equal(redeemed.status, 'active');
    assert.equal(redeemed.user_id, userId);
    assert.equal(redeemed.source, 'gift');
    assert.equal((await store.getBalance(userId)).total_seconds, 3600 - 90 - 180 + 3600);

    // What the direct connection sees.
    assert.equal(await spendableSeconds(userId), 3600 - 90 - 180 + 3600);
    const { rows: sessions } = await db.sql.query<{ status: string; billed_seconds: number; started_at: Date; ended_at: Date }>(
      `select status, billed_seconds, started_at, ended_at from public.voice_sessions where id = $1`, [started.session_id]);
    assert.equal(sessions[0]!.status, 'ended');
    assert.equal(sessions[0]!.billed_seconds, 180);
    assert.equal(sessions[0]!.started_at.toISOString(), '2026-03-01T10:00:00.000Z');
    assert.equal(sessions[0]!.ended_at.toISOString(), '2026-03-01T10:03:00.000Z');
    const { rows: ledger } = await db.sql.query<{ kind: string; seconds: number }>(
      `select kind, seconds from public.ledger_entries where user_id = $1 order by id`, [userId]);
    assert.deepEqual(ledger.map((r) => [r.kind, r.seconds]), [['grant', 3600], ['usage', -90], ['usage', -60], ['usage', -120]]);
    assert.deepEqual(await ledgerMismatches(db.sql), []);

    // Every call went over HTTP, as the service role, and succeeded.
    assert.deepEqual(api.requests.map((r) => r.fn), [
      'grant_time_card', 'get_user_time_balance', 'deduct_user_time', 'start_voice_session', 'meter_voice_session',
      'end_voice_session', 'grant_time_card', 'activate_time_card', 'get_user_time_balance',
    ]);
    assert.ok(api.requests.every((r) => r.role === 'service_role' && r.status === 200 && r.method === 'POST'));
  });

  it('sends deduct_user_time as POST /rest/v1/rpc/deduct_user_time with exactly the named arguments and the service key', async () => {
    const clock = new TestClock('2026-04-02T08:30:00Z');
    const { store, api } = serviceStack(clock);
    const userId = newUserId();
    await store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `buy-${userId}` });

    await store.deductTime({ userId, seconds: 42, idempotencyKey: `deduct-${userId}` });

    const [request] = api.callsTo('deduct_user_time');
    assert.ok(request);
    assert.equal(request.method, 'POST');
    assert.equal(request.url, `${SUPABASE_URL}/rest/v1/rpc/deduct_user_time`);
    assert.deepEqual(Object.keys(request.body as object).sort(), ['p_idempotency_key', 'p_now', 'p_seconds', 'p_user_id']);
    assert.deepEqual(request.body, {
      p_user_id: userId, p_seconds: 42, p_idempotency_key: `deduct-${userId}`, p_now: '2026-04-02T08:30:00.000Z',
    });
    assert.equal(request.headers.apikey, SERVICE_KEY);
    assert.equal(request.headers.authorization, `Bearer ${SERVICE_KEY}`);
    assert.equal(request.headers['content-profile'], 'public');
    assert.match(request.headers['content-type'] ?? '', /^application\/json/);
    assert.equal(request.role, 'service_role');

    // The clock it sent is the one the ledger carries.
    const { rows } = await db.sql.query<{ created_at: Date }>(
      `select created_at from public.ledger_entries where user_id = $1 and kind = 'usage'`, [userId]);
    assert.equal(rows[0]!.created_at.toISOString(), '2026-04-02T08:30:00.000Z');
  });

  it('leaves p_now out when the store has no clock, so the database bills by its own now()', async () => {
    const { store, api } = serviceStack();
    const userId = newUserId();
    await store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `buy-${userId}` });

    const before = Date.now();
    await store.deductTime({ userId, seconds: 10, idempotencyKey: `deduct-${userId}` });

    assert.deepEqual(Object.keys(api.callsTo('deduct_user_time')[0]!.body as object).sort(),
      ['p_idempotency_key', 'p_seconds', 'p_user_id']);
    const { rows } = await db.sql.query<{ created_at: Date }>(
      `select created_at from public.ledger_entries where user_id = $1 and kind = 'usage'`, [userId]);
    assert.ok(Math.abs(rows[0]!.created_at.getTime() - before) < 60_000, 'billed at the database clock');
  });

  it('omits arguments that are undefined so the SQL default applies, and sends null ones as JSON null', async () => {
    const { store, api } = serviceStack(new TestClock());
    const userId = newUserId();

    await store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `buy-${userId}` });

    const body = api.callsTo('grant_time_card')[0]!.body as Record<string, unknown>;
    assert.equal('p_purchaser_id' in body, false);
    assert.equal(body.p_payment_id, null);
    assert.deepEqual(Object.keys(body).sort(), ['p_idempotency_key', 'p_now', 'p_payment_id', 'p_tier_id', 'p_user_id']);
  });

  it('replays a repeated deduction over HTTP without charging twice', async () => {
    const { store } = serviceStack(new TestClock());
    const userId = newUserId();
    await store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `buy-${userId}` });

    const first = await store.deductTime({ userId, seconds: 30, idempotencyKey: `deduct-${userId}` });
    const again = await store.deductTime({ userId, seconds: 30, idempotencyKey: `deduct-${userId}` });

    assert.equal(first.replayed, false);
    assert.equal(again.replayed, true);
    assert.equal(again.remaining_seconds, 3570);
    assert.equal(await spendableSeconds(userId), 3570);
  });
});

describe('domain errors over the Supabase Data API', () => {
  it('refuses to start a call with a zero balance as insufficient_balance (HTTP 400, code in the hint)', async () => {
    const { store, api } = serviceStack(new TestClock());
    const userId = newUserId();

    await rejectsWith(store.startSession({ userId, externalKey: `call-${userId}`, roomName: 'room' }), 'insufficient_balance');

    const request = api.callsTo('start_voice_session')[0]!;
    assert.equal(request.status, 400);
    assert.deepEqual(request.response, {
      code: 'P0001', details: null, hint: 'insufficient_balance',
      message: 'no conversation time left: buy or redeem a time card to start a call',
    });
    const { rows } = await db.sql.query(`select 1 from public.voice_sessions where user_id = $1`, [userId]);
    assert.equal(rows.length, 0, 'the refused call left no session behind');
  });

  it('refuses a grant of a tier that does not exist as unknown_tier', async () => {
    const { store, api } = serviceStack(new TestClock());
    const userId = newUserId();

    const error = await rejectsWith(store.grantCard({ userId, tierId: 'no_such_tier', idempotencyKey: `buy-${userId}` }), 'unknown_tier');

    assert.match(error.message, /no pricing tier 'no_such_tier'/);
    assert.equal(api.callsTo('grant_time_card')[0]!.status, 400);
    assert.equal(await spendableSeconds(userId), 0);
  });

  it('reports negative seconds that reach the SQL function as invalid_argument', async () => {
    const { store, transport, api } = serviceStack(new TestClock());
    const userId = newUserId();
    await store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `buy-${userId}` });

    // The store refuses it itself, before any request…
    await rejectsWith(store.deductTime({ userId, seconds: -5, idempotencyKey: `neg-${userId}` }), 'invalid_argument');
    assert.equal(api.callsTo('deduct_user_time').length, 0);
    // …and the SQL function refuses it when it arrives anyway.
    const error = await rejectsWith(
      transport.call('deduct_user_time', { p_user_id: userId, p_seconds: -5, p_idempotency_key: `neg-${userId}` }),
      'invalid_argument');

    assert.match(error.message, /seconds to deduct must be a positive whole number of seconds, got -5/);
    const request = api.callsTo('deduct_user_time')[0]!;
    assert.equal(request.status, 400);
    assert.equal((request.response as { hint: string }).hint, 'invalid_argument');
    assert.equal(await spendableSeconds(userId), 3600);
  });

  it('reports an argument of the wrong type as invalid_argument (22P02 from the argument cast)', async () => {
    const { transport, api } = serviceStack();

    await rejectsWith(transport.call('get_user_time_balance', { p_user_id: 'not-a-uuid' }), 'invalid_argument');

    const request = api.callsTo('get_user_time_balance')[0]!;
    assert.equal(request.status, 400);
    assert.equal((request.response as { code: string }).code, '22P02');
  });

  it('reports a code with one wrong symbol as mistyped_code and records nothing', async () => {
    const { store, api } = serviceStack(new TestClock());
    const userId = newUserId();
    const code = await giftCode(store);
    const wrong = ALPHABET[(ALPHABET.indexOf(code[0]!) + 1) % ALPHABET.length]! + code.slice(1);

    await rejectsWith(store.activateCard({ userId, code: wrong }), 'mistyped_code');

    assert.equal(api.callsTo('activate_time_card')[0]!.status, 400);
    const { rows } = await db.sql.query(`select 1 from billing_private.activation_failures where user_id = $1`, [userId]);
    assert.equal(rows.length, 0);
  });

  it('reports a code redeemed before as code_already_used, which arrives in a 200 answer, not an HTTP error', async () => {
    const { store, api } = serviceStack(new TestClock());
    const first = newUserId();
    const second = newUserId();
    const code = await giftCode(store);
    await store.activateCard({ userId: first, code });

    const error = await rejectsWith(store.activateCard({ userId: second, code }), 'code_already_used');

    assert.equal(error.message, 'this activation code has already been redeemed');
    const request = api.callsTo('activate_time_card')[1]!;
    assert.equal(request.status, 200);
    assert.equal((request.response as { ok: boolean }).ok, false);
    assert.equal(await spendableSeconds(first), 3600);
    assert.equal(await spendableSeconds(second), 0);
    // The failed attempt was committed (it counts toward the rate limit), which a raised error would undo.
    const { rows } = await db.sql.query<{ error_code: string }>(
      `select error_code from billing_private.activation_failures where user_id = $1`, [second]);
    assert.deepEqual(rows.map((r) => r.error_code), ['code_already_used']);
  });

  it('reports a call to a function the API does not have (PGRST202, HTTP 404) as invalid_argument', async () => {
    const { transport, api } = serviceStack();

    await rejectsWith(transport.call('no_such_function', { p_user_id: newUserId() }), 'invalid_argument');
    // An unknown argument name is the same miss: PostgREST picks a function by its argument names.
    await rejectsWith(transport.call('deduct_user_time', { p_user: newUserId(), p_seconds: 1, p_idempotency_key: 'k' }),
      'invalid_argument');

    assert.deepEqual(api.requests.map((r) => [r.status, (r.response as { code: string }).code, r.sqlRan]),
      [[404, 'PGRST202', false], [404, 'PGRST202', false]]);
  });
});

describe('when Supabase or its database cannot be reached', () => {
  it('maps a fetch that throws (no network) to storage_unavailable', async () => {
    const unreachable = (async () => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' }) });
    }) as typeof fetch;
    const store = new RpcBillingStore(transportOver(unreachable), new TestClock().now);

    await rejectsWith(store.getBalance(newUserId()), 'storage_unavailable');
    await rejectsWith(store.deductTime({ userId: newUserId(), seconds: 1, idempotencyKey: 'k' }), 'storage_unavailable');
  });

  it('maps a gateway error page without a JSON body (502) to storage_unavailable', async () => {
    const badGateway = (async () => new Response('<html><body>502 Bad Gateway</body></html>', {
      status: 502, headers: { 'content-type': 'text/html' },
    })) as typeof fetch;

    await rejectsWith(transportOver(badGateway).call('get_user_time_balance', { p_user_id: newUserId() }), 'storage_unavailable');
  });

  it('maps PostgREST losing its database (503 PGRST000) to storage_unavailable', async () => {
    const deadPool = new pg.Pool({ connectionString: 'postgres://postgres@127.0.0.1:1/nowhere', connectionTimeoutMillis: 2000 });
    deadPool.on('error', () => {});
    const api = createFakePostgrest({ sql: pgPoolClient(deadPool), apiKeys: [SERVICE_KEY] });
    try {
      const transport = transportOver(api.fetch);

      await rejectsWith(transport.call('get_user_time_balance', { p_user_id: newUserId() }), 'storage_unavailable');

      assert.equal(api.requests[0]!.status, 503);
      assert.equal((api.requests[0]!.response as { code: string }).code, 'PGRST000');
    } finally {
      await deadPool.end();
    }
  });

  it('aborts a request the API never answers after STORE_TIMEOUT_MS, as storage_unavailable', async () => {
    // A Data API that accepts the connection and then says nothing (a frozen gateway): the real fetch.
    const held = new Set<net.Socket>();
    const frozen = net.createServer((socket) => { held.add(socket); socket.on('error', () => {}); });
    await new Promise<void>((resolve) => frozen.listen(0, '127.0.0.1', resolve));
    const { port } = frozen.address() as net.AddressInfo;
    try {
      const store = new RpcBillingStore(supabaseTransport(createServiceClient({
        url: `http://127.0.0.1:${port}`, serviceRoleKey: SERVICE_KEY, timeoutMs: 300,
      })));
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        store.getBalance(newUserId()).then(() => 'answered', (error: unknown) => error),
        new Promise((resolve) => { timer = setTimeout(() => resolve('still waiting after 20 s'), 20_000); }),
      ]);
      clearTimeout(timer);
      assert.ok(outcome instanceof BillingError && outcome.code === 'storage_unavailable', String(outcome));
      assert.ok(held.size >= 1, 'the request reached the frozen API');
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => frozen.close(() => resolve()));
    }
  });

  it('maps PostgREST timing out on its connection pool (504 PGRST003) to storage_unavailable', async () => {
    const poolTimeout = (async () => new Response(JSON.stringify({
      code: 'PGRST003', details: null, hint: null, message: 'Timed out acquiring connection from connection pool.',
    }), { status: 504, headers: { 'content-type': 'application/json' } })) as typeof fetch;

    await rejectsWith(transportOver(poolTimeout).call('get_user_time_balance', { p_user_id: newUserId() }), 'storage_unavailable');
  });
});

describe('API roles, enforced by the grants as PostgREST applies them', () => {
  it('refuses a user token calling a service-only function (deduct_user_time) as forbidden (42501, HTTP 403)', async () => {
    const userId = newUserId();
    await serviceStack().store.grantCard({ userId, tierId: 'starter_1h', idempotencyKey: `buy-${userId}` });
    const { store, api } = userStack(userId);

    await rejectsWith(store.deductTime({ userId, seconds: 60, idempotencyKey: `self-${userId}` }), 'forbidden');

    const request = api.callsTo('deduct_user_time')[0]!;
    assert.equal(request.role, 'authenticated');
    assert.equal(request.claims?.sub, userId);
    assert.equal(request.headers.apikey, ANON_KEY);
    assert.equal(request.status, 403);
    assert.equal((request.response as { code: string }).code, '42501');
    assert.match((request.response as { message: string }).message, /permission denied for function deduct_user_time/);
    assert.equal(await spendableSeconds(userId), 3600);
    assert.equal(await ledgerRows(userId), 1);
  });

  it('refuses the anon key calling a service-only function as forbidden (42501, HTTP 401)', async () => {
    const { transport, api } = anonStack();

    await rejectsWith(transport.call('grant_time_card', {
      p_user_id: newUserId(), p_tier_id: 'starter_1h', p_payment_id: null, p_idempotency_key: 'anon-grant',
    }), 'forbidden');

    assert.equal(api.requests[0]!.role, 'anon');
    assert.equal(api.requests[0]!.status, 401);
  });

  it('lets a user read their own balance through get_user_time_balance', async () => {
    const userId = newUserId();
    await serviceStack().store.grantCard({ userId, tierId: 'basic_5h', idempotencyKey: `buy-${userId}` });
    const { store, api } = userStack(userId);

    const balance = await store.getBalance(userId);

    assert.equal(balance.user_id, userId);
    assert.equal(balance.total_seconds, 5 * 3600 + 30 * 60);
    assert.equal(api.requests[0]!.role, 'authenticated');
    assert.deepEqual(Object.keys(api.requests[0]!.body as object), ['p_user_id']);
  });

  it("refuses a user reading another user's balance as forbidden", async () => {
    const me = newUserId();
    const someoneElse = newUserId();
    await serviceStack().store.grantCard({ userId: someoneElse, tierId: 'starter_1h', idempotencyKey: `buy-${someoneElse}` });
    const { store, api } = userStack(me);

    const error = await rejectsWith(store.getBalance(someoneElse), 'forbidden');

    assert.equal(error.message, 'you may only act on your own account');
    assert.equal(api.requests[0]!.status, 403);
    assert.equal((api.requests[0]!.response as { hint: string }).hint, 'forbidden');
  });

  it('refuses a user who sets the billing clock, even on their own account', async () => {
    const userId = newUserId();
    const api = fakeApi();
    const client = createClient(SUPABASE_URL, ANON_KEY, {
      auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      global: { fetch: api.fetch, headers: { Authorization: `Bearer ${userAccessToken(userId)}` } },
      realtime: { transport: ws as never },
    });
    const clocked = new RpcBillingStore(supabaseTransport(client), new TestClock().now);

    const error = await rejectsWith(clocked.getBalance(userId), 'forbidden');

    assert.equal(error.message, 'only the service may set the billing clock');
  });

  it('lets a user redeem a gift code for themself, but not for another user', async () => {
    const me = newUserId();
    const someoneElse = newUserId();
    const service = serviceStack();
    const { store } = userStack(me);

    await rejectsWith(store.activateCard({ userId: someoneElse, code: await giftCode(service.store) }), 'forbidden');
    const card = await store.activateCard({ userId: me, code: await giftCode(service.store) });

    assert.equal(card.user_id, me);
    assert.equal(await spendableSeconds(me), 3600);
    assert.equal(await spendableSeconds(someoneElse), 0);
  });

  it('refuses a key the project does not know at the gateway, before any SQL runs', async () => {
    const api = fakeApi();
    const stranger = projectKey('service_role', 'another-project');
    const transport = supabaseTransport(createServiceClient({ url: SUPABASE_URL, serviceRoleKey: stranger, fetch: api.fetch }));

    // A misconfigured key is our fault, not the caller's: not retryable, not forbidden to the user.
    await rejectsWith(transport.call('get_user_time_balance', { p_user_id: newUserId() }), 'internal');

    assert.equal(api.requests[0]!.status, 401);
    assert.equal(api.requests[0]!.sqlRan, false);
  });
});

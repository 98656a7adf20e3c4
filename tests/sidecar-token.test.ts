// POST /token: a Supabase JWT in, a LiveKit room token out, for that user only, with the agent dispatched.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { jwtVerify } from 'jose';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { LIVEKIT, startSidecar, type TestSidecar } from './helpers/sidecar.ts';

describe('POST /token', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db);
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  it('mints a token whose identity is the caller, for one room, dispatching the mindbot agent', async () => {
    const user = newUserId();
    await sidecar.store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
    const response = await sidecar.request('POST', '/token', { token: await sidecar.tokenFor(user), body: {} });
    assert.equal(response.status, 200);
    const body = await response.json() as { participant_token: string; room_name: string; server_url: string; identity: string };
    assert.equal(body.server_url, LIVEKIT.url);
    assert.equal(body.identity, user);
    const { payload } = await jwtVerify(body.participant_token, new TextEncoder().encode(LIVEKIT.apiSecret));
    const claims = payload as Record<string, any>;
    assert.equal(claims.sub, user);
    assert.equal(claims.iss, LIVEKIT.apiKey);
    assert.equal(claims.video.roomJoin, true);
    assert.equal(claims.video.room, body.room_name);
    assert.match(body.room_name, new RegExp(`^mindbot-${user.slice(0, 8)}-`));
    assert.equal(claims.roomConfig.agents[0].agentName, 'mindbot');
    assert.ok(Number(claims.exp) - Number(claims.iat ?? claims.nbf ?? Math.floor(Date.now() / 1000)) <= LIVEKIT.ttlSeconds + 5);
  });

  it('keeps a room name the client asks for inside the caller\'s own namespace', async () => {
    const user = newUserId();
    await sidecar.store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
    const response = await sidecar.request('POST', '/token', { token: await sidecar.tokenFor(user), body: { room_name: 'kitchen' } });
    assert.equal(((await response.json()) as { room_name: string }).room_name, `mindbot-${user.slice(0, 8)}-kitchen`);
    const bad = await sidecar.request('POST', '/token', { token: await sidecar.tokenFor(user), body: { room_name: '../other' } });
    assert.equal(bad.status, 400);
  });

  it('refuses a caller with no time left, and anyone without a token', async () => {
    const broke = await sidecar.request('POST', '/token', { token: await sidecar.tokenFor(newUserId()), body: {} });
    assert.equal(broke.status, 402);
    assert.equal(((await broke.json()) as { error: { code: string } }).error.code, 'insufficient_balance');
    assert.equal((await sidecar.request('POST', '/token', { body: {} })).status, 401);
  });

  it('says which variables are missing when LiveKit is not configured', async () => {
    const bare = await startSidecar(db, { livekit: null });
    try {
      const response = await bare.request('POST', '/token', { token: await bare.tokenFor(newUserId()), body: {} });
      assert.equal(response.status, 503);
      assert.match(((await response.json()) as { error: { message: string } }).error.message, /LIVEKIT_URL/);
    } finally {
      await bare.close();
    }
  });

  it('is minted the same way by ./launch.sh token for trying a call by hand', async () => {
    const run = promisify(execFile);
    const user = newUserId();
    await sidecar.store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
    const env = { ...process.env, DATABASE_URL: db.url!, LIVEKIT_URL: LIVEKIT.url, LIVEKIT_API_KEY: LIVEKIT.apiKey,
      LIVEKIT_API_SECRET: LIVEKIT.apiSecret, LOG_LEVEL: 'silent' };
    const { stdout } = await run('./launch.sh', ['token', user], { env });
    const minted = JSON.parse(stdout) as { participant_token: string; room_name: string; identity: string };
    const { payload } = await jwtVerify(minted.participant_token, new TextEncoder().encode(LIVEKIT.apiSecret));
    assert.equal(payload.sub, user);
    assert.equal((payload as Record<string, any>).roomConfig.agents[0].agentName, 'mindbot');
    await assert.rejects(run('./launch.sh', ['token', 'bob'], { env }), (error: { code?: number }) => error.code === 2);
    await assert.rejects(run('./launch.sh', ['token', newUserId()], { env }), /no conversation time left/);
  });
});

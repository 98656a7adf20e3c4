// What the sidecar adds for the web app, over HTTP: the pages and their security headers, /app/config, the
// development sign-in (and where it is refused), and the buyer's views of gifts and of a Checkout Session.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { HttpError, installErrorHandling } from '../src/sidecar/http-errors.ts';
import { contentSecurityPolicy, registerWebApp, WEB_PAGES } from '../src/sidecar/web-app.ts';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { checkoutSession, purchaseIds, startSidecar, stripeEvent, type TestSidecar } from './helpers/sidecar.ts';
import { ensureWebBuilt } from './helpers/browser.ts';

type Json = Record<string, any>;

describe('sidecar: web app routes', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  before(async () => {
    ensureWebBuilt();
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { web: true });
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const json = async (response: Response) => ({ status: response.status, body: await response.json() as Json });

  it('serves every page as the app with a strict content security policy, and hashed assets as immutable', async () => {
    for (const page of WEB_PAGES) {
      const response = await fetch(`${sidecar.url}${page}`);
      assert.equal(response.status, 200, page);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
      const csp = response.headers.get('content-security-policy') ?? '';
      for (const directive of ["default-src 'self'", "script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "base-uri 'none'"]) {
        assert.ok(csp.includes(directive), `${page}: ${directive} in ${csp}`);
      }
      assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
      const html = await response.text();
      assert.match(html, /<div id="root"><\/div>/);
      const script = /<script type="module" crossorigin src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(script, 'the page loads its bundle from /assets/');
      const asset = await fetch(`${sidecar.url}${script}`);
      assert.equal(asset.status, 200);
      assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
      const code = await asset.text();
      // No server secret reaches the bundle.
      assert.ok(!code.includes('whsec_'), 'no webhook secret in the bundle');
      assert.ok(!code.includes('sk_test_'), 'no Stripe key in the bundle');
      assert.ok(!code.includes('livekit-test-secret'), 'no LiveKit secret in the bundle');
    }
    // The API keeps its own paths: /admin is a page, /admin/users is the API (401 without a token).
    const api = await json(await fetch(`${sidecar.url}/admin/users`));
    assert.equal(api.status, 401);
    assert.equal(typeof api.body.error.code, 'string');
  });

  it('allows connections only to itself and the LiveKit server (and Supabase when it signs in)', () => {
    const local = contentSecurityPolicy({ auth: { mode: 'local', signingSecret: 'x'.repeat(32) }, livekitUrl: 'wss://lk.example.com' });
    assert.match(local, /connect-src 'self' wss:\/\/lk\.example\.com https:\/\/lk\.example\.com;/);
    const supabase = contentSecurityPolicy({
      auth: { mode: 'supabase', supabaseUrl: 'https://abc.supabase.co', anonKey: 'anon' }, livekitUrl: undefined,
    });
    assert.match(supabase, /connect-src 'self' https:\/\/abc\.supabase\.co wss:\/\/abc\.supabase\.co;/);
  });

  it('tells the browser how to sign in and whether calls and purchases work, with public values only', async () => {
    const { status, body } = await json(await fetch(`${sidecar.url}/app/config`));
    assert.equal(status, 200);
    assert.deepEqual(body, {
      auth: { mode: 'local' },
      calls: { enabled: true, livekit_url: 'wss://livekit.mindbot.test' },
      purchases: { enabled: true },
      version: 'test',
    });
  });

  it('signs in locally as a given or a new user, and the token works on the API', async () => {
    const user = newUserId();
    const signed = await json(await fetch(`${sidecar.url}/auth/dev-sign-in`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user_id: user.toUpperCase() }),
    }));
    assert.equal(signed.status, 200, JSON.stringify(signed.body));
    assert.equal(signed.body.user_id, user);
    assert.equal(signed.body.admin, false);
    const balance = await json(await sidecar.request('GET', '/time/balance', { token: signed.body.access_token }));
    assert.equal(balance.status, 200);
    assert.equal(balance.body.user_id, user);
    assert.equal(balance.body.total_seconds, 0);

    const fresh = await json(await sidecar.request('POST', '/auth/dev-sign-in', { body: { admin: true } }));
    assert.match(fresh.body.user_id, /^[0-9a-f-]{36}$/);
    assert.equal(fresh.body.admin, true);
    const admin = await sidecar.request('GET', '/admin/users', { token: fresh.body.access_token });
    assert.equal(admin.status, 200);

    const bad = await json(await sidecar.request('POST', '/auth/dev-sign-in', { body: { user_id: 'alice' } }));
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_request');
    const extra = await json(await sidecar.request('POST', '/auth/dev-sign-in', { body: { role: 'admin' } }));
    assert.equal(extra.status, 400);
  });

  it('answers the development sign-in only on loopback: not from another address, a relay or a foreign host name', async () => {
    const dist = mkdtempSync(join(tmpdir(), 'mindbot-web-'));
    const app = Fastify({ loggerInstance: pino({ level: 'silent' }) as FastifyBaseLogger });
    try {
      installErrorHandling(app);
      await registerWebApp(app, { distDir: dist, auth: { mode: 'local', signingSecret: 'x'.repeat(32) }, purchasesEnabled: false, version: 't' });
      const signIn = (remoteAddress: string, headers: Record<string, string> = {}) =>
        app.inject({ method: 'POST', url: '/auth/dev-sign-in', payload: { admin: true }, remoteAddress, headers: { host: 'localhost:8001', ...headers } });
      for (const [address, host] of [['127.0.0.1', 'localhost:8001'], ['127.0.0.1', '127.0.0.1:8001'], ['::1', '[::1]:8001'],
        ['::ffff:127.0.0.1', 'mindbot.localhost:8001']]) {
        const ok = await signIn(address!, { host: host! });
        assert.equal(ok.statusCode, 200, `${address} ${host}: ${ok.body}`);
        assert.equal(ok.json().admin, true);
      }
      const refusals: [string, Record<string, string>][] = [
        ['192.168.1.20', {}], ['10.0.0.7', { host: '10.0.0.7:8001' }], ['::ffff:192.168.1.20', {}], ['2001:db8::1', {}],
        // A local tunnel (ngrok, cloudflared) or reverse proxy connects from loopback for someone else.
        ['127.0.0.1', { 'x-forwarded-for': '203.0.113.9' }], ['127.0.0.1', { forwarded: 'for=203.0.113.9' }],
        ['127.0.0.1', { 'x-real-ip': '203.0.113.9' }],
        // DNS rebinding: a foreign page whose name now points at 127.0.0.1.
        ['127.0.0.1', { host: 'evil.example:8001' }], ['127.0.0.1', { host: 'localhost.evil.example' }],
      ];
      for (const [address, headers] of refusals) {
        const refused = await signIn(address, headers);
        assert.equal(refused.statusCode, 403, `${address} ${JSON.stringify(headers)}`);
        assert.equal(refused.json().error.code, 'forbidden');
        assert.doesNotMatch(refused.body, /access_token/);
      }
    } finally {
      await app.close();
      rmSync(dist, { recursive: true, force: true });
    }
  });

  it('offers no development sign-in with Supabase Auth or in production, and says why', async () => {
    const dist = mkdtempSync(join(tmpdir(), 'mindbot-web-'));
    try {
      for (const auth of [
        { mode: 'supabase' as const, supabaseUrl: 'https://abc.supabase.co', anonKey: 'public-anon-key' },
        { mode: 'none' as const, reason: 'sign-in is not configured: set SUPABASE_URL and SUPABASE_ANON_KEY' },
      ]) {
        const app = Fastify({ loggerInstance: pino({ level: 'silent' }) as FastifyBaseLogger });
        installErrorHandling(app);
        await registerWebApp(app, { distDir: dist, auth, purchasesEnabled: false, version: 't' });
        const refused = await app.inject({ method: 'POST', url: '/auth/dev-sign-in', payload: { admin: true } });
        assert.equal(refused.statusCode, 404);
        assert.equal(refused.json().error.code, 'not_found');
        const config = (await app.inject({ method: 'GET', url: '/app/config' })).json();
        assert.equal(config.auth.mode, auth.mode);
        if (auth.mode === 'supabase') assert.equal(config.auth.supabase_anon_key, 'public-anon-key');
        // Not built: the pages say how to build instead of a bare 404.
        const page = await app.inject({ method: 'GET', url: '/' });
        assert.equal(page.statusCode, 503);
        assert.equal(page.json().error.code, 'web_app_not_built');
        await app.close();
      }
    } finally {
      rmSync(dist, { recursive: true, force: true });
    }
  });

  it('serves the app once it is built, without a restart, and the last complete page while a rebuild replaces it', async () => {
    const dist = mkdtempSync(join(tmpdir(), 'mindbot-web-'));
    const lines: Json[] = [];
    const sink = new Writable({ write(chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done(); } });
    const app = Fastify({ loggerInstance: pino({ level: 'info' }, sink) as FastifyBaseLogger });
    installErrorHandling(app);
    try {
      await registerWebApp(app, { distDir: dist, auth: { mode: 'local', signingSecret: 'x'.repeat(32) }, purchasesEnabled: false, version: 't' });
      const before = await app.inject({ method: 'GET', url: '/' });
      assert.equal(before.statusCode, 503);
      assert.equal(before.json().error.code, 'web_app_not_built');
      // The expected 503 is one warning line: no error level, no stack.
      const logged = lines.filter((l) => l.code === 'web_app_not_built');
      assert.equal(logged.length, 1);
      assert.equal(logged[0]!.level, 40);
      assert.equal(logged[0]!.err, undefined);
      assert.ok(!lines.some((l) => l.level >= 50), 'nothing at error level');

      // The build lands after the sidecar started (./launch.sh dev starts both at once).
      mkdirSync(join(dist, 'assets'));
      writeFileSync(join(dist, 'assets', 'app-1.js'), 'console.log(1)');
      const first = '<!doctype html><html><body><div id="root"></div><script type="module" src="/assets/app-1.js"></script></body></html>\n';
      writeFileSync(join(dist, 'index.html'), first);
      const built = await app.inject({ method: 'GET', url: '/admin' });
      assert.equal(built.statusCode, 200);
      assert.equal(built.body, first);
      assert.equal((await app.inject({ method: 'GET', url: '/assets/app-1.js' })).statusCode, 200);

      // A rebuild: the page is gone for a moment, then half-written; the last complete page is served meanwhile.
      rmSync(join(dist, 'index.html'));
      assert.equal((await app.inject({ method: 'GET', url: '/' })).body, first);
      writeFileSync(join(dist, 'index.html'), '<!doctype html><html><body><div id="ro');
      assert.equal((await app.inject({ method: 'GET', url: '/' })).body, first);
      const second = first.replace(/app-1/g, 'app-2');
      writeFileSync(join(dist, 'index.html'), second);
      assert.equal((await app.inject({ method: 'GET', url: '/' })).body, second);
    } finally {
      await app.close();
      rmSync(dist, { recursive: true, force: true });
    }
  });

  it('logs a fault nobody expected with its stack, at error level', async () => {
    const lines: Json[] = [];
    const sink = new Writable({ write(chunk, _encoding, done) { lines.push(JSON.parse(String(chunk))); done(); } });
    const app = Fastify({ loggerInstance: pino({ level: 'info' }, sink) as FastifyBaseLogger });
    installErrorHandling(app);
    app.get('/broken', async () => { throw new TypeError('cannot read properties of undefined'); });
    app.get('/missing', async () => { throw new HttpError(404, 'not_found', 'no such thing'); });
    try {
      const broken = await app.inject({ method: 'GET', url: '/broken' });
      assert.deepEqual(broken.json(), { error: { code: 'internal', message: 'internal error' } });
      const fault = lines.find((l) => l.level === 50);
      assert.match(fault?.err?.stack ?? '', /TypeError: cannot read properties of undefined/);
      lines.length = 0;
      assert.equal((await app.inject({ method: 'GET', url: '/missing' })).statusCode, 404);
      const answer = lines.filter((l) => l.code === 'not_found');
      assert.equal(answer.length, 1);
      assert.equal(answer[0]!.level, 30);
      assert.ok(!lines.some((l) => l.err !== undefined || l.level >= 40), 'a 4xx is no warning and has no stack');
    } finally {
      await app.close();
    }
  });

  it('shows the buyer their purchase once its webhook lands, and another user nothing', async () => {
    const buyer = newUserId();
    const other = newUserId();
    const ids = purchaseIds();
    const token = await sidecar.tokenFor(buyer);
    const before = await json(await sidecar.request('GET', `/time/purchase/checkout/${ids.sessionId}`, { token }));
    assert.deepEqual([before.status, before.body], [200, { found: false }]);

    const delivered = await sidecar.deliver(stripeEvent('checkout.session.completed',
      checkoutSession(ids, { userId: buyer, packageId: 'starter_1h', amount: 999 })));
    assert.equal(delivered.status, 200);
    const after = await json(await sidecar.request('GET', `/time/purchase/checkout/${ids.sessionId}`, { token }));
    assert.equal(after.status, 200);
    assert.equal(after.body.found, true);
    assert.equal(after.body.payment.status, 'succeeded');
    assert.equal(after.body.payment.amount_cents, 999);
    assert.equal(after.body.card.package_id, 'starter_1h');
    assert.equal(after.body.card.status, 'active');
    assert.equal(after.body.card.total_seconds, 3600);
    assert.equal(after.body.card.activation_code, null, 'a card for oneself shows no code');

    const stranger = await json(await sidecar.request('GET', `/time/purchase/checkout/${ids.sessionId}`, { token: await sidecar.tokenFor(other) }));
    assert.deepEqual(stranger.body, { found: false });
    const malformed = await json(await sidecar.request('GET', '/time/purchase/checkout/not-a-session', { token }));
    assert.equal(malformed.status, 400);
    const anonymous = await sidecar.request('GET', `/time/purchase/checkout/${ids.sessionId}`);
    assert.equal(anonymous.status, 401);
  });

  it('shows a gift\'s code to its buyer until someone redeems it', async () => {
    const buyer = newUserId();
    const friend = newUserId();
    const ids = purchaseIds();
    const token = await sidecar.tokenFor(buyer);
    assert.deepEqual((await json(await sidecar.request('GET', '/time/gifts', { token }))).body, { gifts: [] });
    await sidecar.deliver(stripeEvent('checkout.session.completed',
      checkoutSession(ids, { userId: buyer, packageId: 'starter_1h', amount: 999, gift: true })));

    const landed = await json(await sidecar.request('GET', `/time/purchase/checkout/${ids.sessionId}`, { token }));
    assert.equal(landed.body.card.source, 'gift');
    assert.equal(landed.body.card.status, 'pending');
    assert.match(landed.body.card.activation_code, /^[2-9A-HJKMNP-Z]{12}$/);
    const code = landed.body.card.activation_code as string;
    const { body: listed } = await json(await sidecar.request('GET', '/time/gifts', { token }));
    assert.equal(listed.gifts.length, 1);
    assert.equal(listed.gifts[0].activation_code, code);
    assert.equal(listed.gifts[0].redeemed, false);
    // The buyer's own balance is unchanged: the gift is for someone else.
    assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 0);
    // Nobody else sees it.
    assert.deepEqual((await json(await sidecar.request('GET', '/time/gifts', { token: await sidecar.tokenFor(friend) }))).body, { gifts: [] });

    const redeemed = await sidecar.request('POST', '/time/activate', { token: await sidecar.tokenFor(friend), body: { activation_code: code } });
    assert.equal(redeemed.status, 200);
    const { body: afterwards } = await json(await sidecar.request('GET', '/time/gifts', { token }));
    assert.equal(afterwards.gifts[0].redeemed, true);
    assert.equal(afterwards.gifts[0].status, 'active');
    assert.equal(afterwards.gifts[0].activation_code, null, 'a redeemed gift is the friend\'s card: its code is no longer shown');
    const again = await json(await sidecar.request('GET', `/time/purchase/checkout/${ids.sessionId}`, { token }));
    assert.equal(again.body.card.activation_code, null);
  });
});

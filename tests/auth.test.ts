import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { ConfigError, parseConfig } from '../src/shared/config.ts';
import {
  AuthError, createTokenVerifier, DEV_ONLY_JWT_SECRET, localSigningSecret, signLocalToken, type AuthConfig,
} from '../src/auth/verify-token.ts';

const run = promisify(execFile);

const SECRET = 'test-secret-0123456789-0123456789-0123456789';
const OTHER_SECRET = 'other-secret-0123456789-0123456789-012345678';
const USER = '6f1c2a9e-5b0d-4c8e-9a3f-2d7b1e4c5a60';
const now = () => Math.floor(Date.now() / 1000);

const hsConfig = (env: Record<string, string> = {}): AuthConfig => parseConfig({ NODE_ENV: 'test', JWT_SECRET: SECRET, ...env });

/** Signs arbitrary claims (no defaults) with an HS256 secret. */
function hs256(claims: JWTPayload, secret = SECRET): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(secret));
}

const baseClaims = (extra: JWTPayload = {}): JWTPayload => ({
  sub: USER, aud: 'authenticated', role: 'authenticated', iat: now(), exp: now() + 600, ...extra,
});

async function rejects401(promise: Promise<unknown>, message: RegExp, token?: string): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof AuthError, `expected AuthError, got ${String(error)}`);
    assert.equal(error.status, 401);
    assert.equal(error.code, 'unauthorized');
    assert.match(error.message, message);
    if (token) {
      for (const part of token.split('.').filter((p) => p.length > 8)) assert.ok(!error.message.includes(part), 'message leaks the token');
    }
    return true;
  });
}

describe('token verification (HS256)', () => {
  const verifier = createTokenVerifier(hsConfig());

  it('turns a valid token into a principal', async () => {
    const token = await signLocalToken({ userId: USER, email: 'ann@example.com' }, SECRET);
    const principal = await verifier.verify(`Bearer ${token}`);
    assert.equal(principal.userId, USER);
    assert.equal(principal.isAdmin, false);
    assert.equal(principal.email, 'ann@example.com');
    assert.equal(principal.claims.aud, 'authenticated');
    assert.equal(principal.claims.role, 'authenticated');
    assert.deepEqual(verifier.keySources, ['HS256 JWT_SECRET']);
    assert.equal(verifier.usesDevSecret, false);
  });

  it('accepts the scheme in any case and a lower-cased user id', async () => {
    const token = await hs256(baseClaims({ sub: USER.toUpperCase() }));
    assert.equal((await verifier.verify(`bearer ${token}`)).userId, USER);
    assert.equal((await verifier.verify(`  BEARER   ${token} `)).userId, USER);
  });

  it('accepts a token expired by less than the clock tolerance', async () => {
    const token = await hs256(baseClaims({ exp: now() - 10 }));
    assert.equal((await verifier.verify(`Bearer ${token}`)).userId, USER);
  });

  it('refuses a missing header, another scheme, and malformed tokens', async () => {
    await rejects401(verifier.verify(undefined), /missing Authorization header/);
    await rejects401(verifier.verify(''), /missing Authorization header/);
    await rejects401(verifier.verify('Basic dXNlcjpwYXNz'), /Bearer scheme/);
    await rejects401(verifier.verify('Bearer'), /missing bearer token/);
    await rejects401(verifier.verify('Bearer a b'), /Bearer scheme/);
    await rejects401(verifier.verify('Bearer not-a-jwt'), /malformed/);
    await rejects401(verifier.verify('Bearer abc.def.ghi'), /malformed/);
    await rejects401(verifier.verify(`Bearer ${'a'.repeat(9000)}.b.c`), /too long/);
  });

  it('refuses a token signed with another secret without echoing it', async () => {
    const token = await hs256(baseClaims(), OTHER_SECRET);
    await rejects401(verifier.verify(`Bearer ${token}`), /signature is invalid/, token);
  });

  it('refuses an expired token, and one without exp', async () => {
    const expired = await hs256(baseClaims({ exp: now() - 120 }));
    await rejects401(verifier.verify(`Bearer ${expired}`), /expired/, expired);
    const { exp: _exp, ...noExp } = baseClaims();
    await rejects401(verifier.verify(`Bearer ${await hs256(noExp)}`), /no "exp" claim/);
  });

  it('refuses alg none', async () => {
    const header = base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = base64url.encode(JSON.stringify(baseClaims()));
    await rejects401(verifier.verify(`Bearer ${header}.${payload}.`), /algorithm "none" is not accepted/);
    // The same with a signature part that is not empty.
    await rejects401(verifier.verify(`Bearer ${header}.${payload}.c2ln`), /algorithm "none" is not accepted/);
  });

  it('refuses an asymmetric token when no JWKS is configured', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const token = await new SignJWT(baseClaims()).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    await rejects401(verifier.verify(`Bearer ${token}`), /ES256 tokens are not accepted: no JWKS/);
  });

  it('refuses a subject that is not a uuid, or none', async () => {
    await rejects401(verifier.verify(`Bearer ${await hs256(baseClaims({ sub: 'service-role' }))}`), /not a user uuid/);
    const { sub: _sub, ...noSub } = baseClaims();
    await rejects401(verifier.verify(`Bearer ${await hs256(noSub)}`), /no "sub" claim/);
  });

  it('refuses a wrong or missing audience', async () => {
    await rejects401(verifier.verify(`Bearer ${await hs256(baseClaims({ aud: 'anon' }))}`), /audience/);
    const { aud: _aud, ...noAud } = baseClaims();
    await rejects401(verifier.verify(`Bearer ${await hs256(noAud)}`), /no "aud" claim/);
  });

  it('checks the issuer when JWT_ISSUER is set', async () => {
    const issuer = 'https://abc.supabase.co/auth/v1';
    const strict = createTokenVerifier(hsConfig({ JWT_ISSUER: issuer }));
    assert.equal((await strict.verify(`Bearer ${await hs256(baseClaims({ iss: issuer }))}`)).userId, USER);
    await rejects401(strict.verify(`Bearer ${await hs256(baseClaims({ iss: 'https://evil.example/auth/v1' }))}`), /issuer/);
    await rejects401(strict.verify(`Bearer ${await signLocalToken({ userId: USER }, SECRET)}`), /no "iss" claim/);
    assert.equal((await strict.verify(`Bearer ${await signLocalToken({ userId: USER, issuer }, SECRET)}`)).userId, USER);
  });

  it('accepts both SUPABASE_JWT_SECRET and JWT_SECRET when both are set', async () => {
    const both = createTokenVerifier(hsConfig({ SUPABASE_JWT_SECRET: OTHER_SECRET }));
    assert.equal((await both.verify(`Bearer ${await hs256(baseClaims(), OTHER_SECRET)}`)).userId, USER);
    assert.equal((await both.verify(`Bearer ${await hs256(baseClaims(), SECRET)}`)).userId, USER);
    await rejects401(both.verify(`Bearer ${await hs256(baseClaims(), 'x'.repeat(40))}`), /signature is invalid/);
    await rejects401(both.verify(`Bearer ${await hs256(baseClaims({ exp: now() - 120 }), OTHER_SECRET)}`), /expired/);
  });
});

describe('admin principals', () => {
  const ADMIN = randomUUID();
  const verifier = createTokenVerifier(hsConfig({ ADMIN_USER_IDS: `${randomUUID()}, ${ADMIN.toUpperCase()}` }));
  const isAdmin = async (claims: JWTPayload) => (await verifier.verify(`Bearer ${await hs256(baseClaims(claims))}`)).isAdmin;

  it('are the users listed in ADMIN_USER_IDS', async () => {
    assert.equal(await isAdmin({ sub: ADMIN }), true);
    assert.equal(await isAdmin({ sub: randomUUID() }), false);
  });

  it('are users with an admin role claim', async () => {
    assert.equal(await isAdmin({ app_metadata: { provider: 'email', role: 'admin' } }), true);
    assert.equal(await isAdmin({ app_metadata: { roles: ['support', 'admin'] } }), true);
    assert.equal(await isAdmin({ user_role: 'admin' }), true);
    assert.equal((await verifier.verify(`Bearer ${await signLocalToken({ userId: USER, admin: true }, SECRET)}`)).isAdmin, true);
  });

  it('are not users with only a top-level role or user-writable metadata saying admin', async () => {
    assert.equal(await isAdmin({ role: 'admin' }), false);
    assert.equal(await isAdmin({ user_metadata: { role: 'admin' } }), false);
    assert.equal(await isAdmin({ app_metadata: { role: 'user', roles: 'admin' } }), false);
    assert.equal(await isAdmin({ app_metadata: ['admin'] }), false);
  });
});

describe('token verification through a JWKS (ES256)', () => {
  let server: Server;
  let jwksUrl: string;
  let privateKey: CryptoKey;
  let requests = 0;
  const kid = 'test-key-1';

  before(async () => {
    const pair = await generateKeyPair('ES256');
    privateKey = pair.privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid, alg: 'ES256', use: 'sig' };
    server = createServer((req, res) => {
      requests += 1;
      if (req.url !== '/auth/v1/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    jwksUrl = `http://127.0.0.1:${port}/auth/v1/.well-known/jwks.json`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const es256 = (key: CryptoKey, keyId = kid, claims = baseClaims()) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: keyId, typ: 'JWT' }).sign(key);

  it('verifies a token signed with the published key', async () => {
    const verifier = createTokenVerifier(parseConfig({ NODE_ENV: 'production', SUPABASE_JWKS_URL: jwksUrl }));
    assert.deepEqual(verifier.keySources, [`ES256/RS256 JWKS ${jwksUrl}`]);
    const principal = await verifier.verify(`Bearer ${await es256(privateKey, kid, baseClaims({ email: 'bo@example.com' }))}`);
    assert.equal(principal.userId, USER);
    assert.equal(principal.email, 'bo@example.com');
    assert.equal(principal.isAdmin, false);
    // The key set is fetched once and cached.
    const before = requests;
    await verifier.verify(`Bearer ${await es256(privateKey)}`);
    assert.equal(requests, before);
  });

  it('derives the JWKS URL from SUPABASE_URL', async () => {
    const supabaseUrl = jwksUrl.replace('/auth/v1/.well-known/jwks.json', '');
    const verifier = createTokenVerifier(parseConfig({ NODE_ENV: 'production', SUPABASE_URL: supabaseUrl }));
    assert.equal((await verifier.verify(`Bearer ${await es256(privateKey)}`)).userId, USER);
  });

  it('refuses a token signed by another key', async () => {
    const verifier = createTokenVerifier(parseConfig({ NODE_ENV: 'production', SUPABASE_JWKS_URL: jwksUrl }));
    const other = (await generateKeyPair('ES256')).privateKey;
    const sameKid = await es256(other);
    await rejects401(verifier.verify(`Bearer ${sameKid}`), /signature is invalid/, sameKid);
    await rejects401(verifier.verify(`Bearer ${await es256(other, 'unknown-kid')}`), /unknown key/);
  });

  it('still checks the claims of a well-signed token', async () => {
    const verifier = createTokenVerifier(parseConfig({ NODE_ENV: 'production', SUPABASE_JWKS_URL: jwksUrl }));
    await rejects401(verifier.verify(`Bearer ${await es256(privateKey, kid, baseClaims({ exp: now() - 120 }))}`), /expired/);
    await rejects401(verifier.verify(`Bearer ${await es256(privateKey, kid, baseClaims({ aud: 'anon' }))}`), /audience/);
  });

  it('refuses HS256 tokens when only a JWKS is configured (no dev secret with real keys)', async () => {
    const verifier = createTokenVerifier(parseConfig({ NODE_ENV: 'development', SUPABASE_JWKS_URL: jwksUrl }));
    assert.equal(verifier.usesDevSecret, false);
    await rejects401(verifier.verify(`Bearer ${await hs256(baseClaims(), DEV_ONLY_JWT_SECRET)}`), /HS256 tokens are not accepted/);
  });

  it('answers 503 when the JWKS cannot be fetched', async () => {
    const verifier = createTokenVerifier(parseConfig({ NODE_ENV: 'production', SUPABASE_JWKS_URL: jwksUrl.replace('jwks.json', 'missing.json') }));
    await assert.rejects(verifier.verify(`Bearer ${await es256(privateKey)}`), (error: unknown) =>
      error instanceof AuthError && error.status === 503 && error.code === 'auth_unavailable' && /JWKS/.test(error.message));
  });
});

describe('verifier configuration', () => {
  it('throws in production without any verification key', () => {
    assert.throws(() => createTokenVerifier(parseConfig({ NODE_ENV: 'production' })),
      (error: unknown) => error instanceof ConfigError && /no API token verification key configured/.test(error.message));
    assert.throws(() => localSigningSecret(parseConfig({ NODE_ENV: 'production' })), ConfigError);
  });

  it('throws without any verification key unless the development sign-in is on: `start` never accepts the public secret', () => {
    for (const NODE_ENV of ['development', 'test', undefined]) {
      assert.throws(() => createTokenVerifier(parseConfig({ ...(NODE_ENV && { NODE_ENV }), DEV_SIGN_IN: 'false' })),
        (error: unknown) => error instanceof ConfigError && /no API token verification key configured/.test(error.message));
      assert.throws(() => createTokenVerifier(parseConfig({ ...(NODE_ENV && { NODE_ENV }) })), ConfigError);
    }
  });

  it('falls back to the dev-only secret with the development sign-in on and no key at all', async () => {
    for (const NODE_ENV of ['development', 'test']) {
      const config = parseConfig({ NODE_ENV, DEV_SIGN_IN: 'true' });
      const verifier = createTokenVerifier(config);
      assert.equal(verifier.usesDevSecret, true);
      assert.equal(localSigningSecret(config), DEV_ONLY_JWT_SECRET);
      const token = await signLocalToken({ userId: USER }, DEV_ONLY_JWT_SECRET);
      assert.equal((await verifier.verify(`Bearer ${token}`)).userId, USER);
    }
    // With a real secret, the dev secret is no longer accepted.
    const verifier = createTokenVerifier(hsConfig({ NODE_ENV: 'development' }));
    await rejects401(verifier.verify(`Bearer ${await signLocalToken({ userId: USER }, DEV_ONLY_JWT_SECRET)}`), /signature is invalid/);
  });

  it('validates the auth variables', () => {
    assert.throws(() => parseConfig({ JWT_SECRET: 'short' }), /JWT_SECRET: must be at least 32 characters/);
    assert.throws(() => parseConfig({ ADMIN_USER_IDS: `${USER},bob` }), /ADMIN_USER_IDS: must be a comma-separated list of user uuids/);
    assert.deepEqual(parseConfig({ ADMIN_USER_IDS: '' }).ADMIN_USER_IDS, []);
    assert.equal(parseConfig({}).JWT_AUDIENCE, 'authenticated');
  });

  it('signLocalToken refuses a non-uuid user id', async () => {
    await assert.rejects(signLocalToken({ userId: 'bob' }, SECRET), /uuid/);
  });
});

describe('token CLI', () => {
  // A clean environment: no key from the developer's shell leaks in.
  const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) =>
    !/^(SUPABASE_|JWT_|ADMIN_USER_IDS$|NODE_ENV$)/.test(name)));
  const cli = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, ['--import', 'tsx', 'src/auth/token-cli.ts', ...args], { env: { ...baseEnv, ...env } });

  it('prints a token the verifier accepts', async () => {
    const { stdout, stderr } = await cli([USER, '--ttl', '120'], { JWT_SECRET: SECRET, NODE_ENV: 'test' });
    const token = stdout.trim();
    assert.doesNotMatch(token, /\s/);
    assert.doesNotMatch(stderr, new RegExp(SECRET));
    const principal = await createTokenVerifier(hsConfig()).verify(`Bearer ${token}`);
    assert.equal(principal.userId, USER);
    assert.equal(principal.isAdmin, false);
    const exp = principal.claims.exp!;
    assert.ok(exp > now() + 100 && exp <= now() + 121, `exp ${exp}`);
  });

  it('prints an admin token signed with the dev-only secret when nothing is configured', async () => {
    const { stdout, stderr } = await cli([USER, '--admin'], { NODE_ENV: 'development' });
    assert.match(stderr, /dev-only secret/);
    const principal = await createTokenVerifier(parseConfig({ NODE_ENV: 'development', DEV_SIGN_IN: 'true' })).verify(`Bearer ${stdout.trim()}`);
    assert.equal(principal.isAdmin, true);
  });

  it('exits 2 on a user id that is not a uuid, or a bad --ttl', async () => {
    await assert.rejects(cli(['bob'], { JWT_SECRET: SECRET }), (error: { code?: number; stderr?: string; stdout?: string }) =>
      error.code === 2 && /"bob" is not a uuid/.test(error.stderr ?? '') && error.stdout === '');
    await assert.rejects(cli([USER, '--ttl', 'soon'], { JWT_SECRET: SECRET }), (error: { code?: number }) => error.code === 2);
  });

  it('exits 1 in production without JWT_SECRET', async () => {
    await assert.rejects(cli([USER], { NODE_ENV: 'production' }), (error: { code?: number; stderr?: string }) =>
      error.code === 1 && /JWT_SECRET is not set/.test(error.stderr ?? ''));
  });
});

// Random requests at every route of the sidecar: whatever arrives, the answer is never a 5xx and nothing is
// written. Routes are read from the app itself, so a new route is fuzzed without touching this file.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

/** Parses Fastify's printRoutes({commonPrefix: false}) tree into [method, path] pairs. */
export function routesOf(tree: string): [string, string][] {
  const routes: [string, string][] = [];
  const stack: string[] = [];
  for (const line of tree.split('\n')) {
    const match = /^((?:│   |    )*)(?:├── |└── )(\S+)(?: \(([^)]+)\))?$/.exec(line);
    if (!match) continue;
    const depth = match[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + match[2]!;
    stack[depth] = path;
    for (const method of (match[3] ?? '').split(', ').filter((m) => m && m !== 'HEAD' && m !== 'OPTIONS')) {
      routes.push([method, path]);
    }
  }
  return routes;
}

const TABLES = ['public.payments', 'public.time_cards', 'public.ledger_entries', 'public.voice_sessions', 'public.stripe_events',
  'public.notifications', 'public.pricing_tiers', 'public.stripe_customers', 'public.billing_settings',
  'billing_private.operations', 'billing_private.activation_failures'];

describe('random requests at every route', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  let routes: [string, string][];
  let tokens: Record<string, string | undefined>;
  before(async () => {
    db = await createPostgresDatabase();
    const admin = newUserId();
    sidecar = await startSidecar(db, { adminIds: [admin] });
    routes = routesOf(sidecar.app.printRoutes({ commonPrefix: false }));
    const user = newUserId();
    // Some state to read, made before the fuzzing starts.
    await sidecar.store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:g` });
    tokens = {
      none: undefined,
      user: await sidecar.tokenFor(user),
      stranger: await sidecar.tokenFor(newUserId()),
      admin: await sidecar.tokenFor(admin),
      garbage: 'not.a.token',
    };
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const snapshot = async () => {
    const parts = await Promise.all(TABLES.map(async (table) =>
      (await db.sql.query<{ n: string }>(`select count(*)::text || ':' || coalesce(md5(string_agg(t::text, '|' order by t::text)), '') as n from ${table} t`)).rows[0]!.n));
    return Object.fromEntries(TABLES.map((table, i) => [table, parts[i]]));
  };

  it('finds the routes to fuzz', () => {
    assert.ok(routes.length >= 10, JSON.stringify(routes));
    assert.ok(routes.some(([m, p]) => m === 'POST' && p === '/webhooks/stripe'));
  });

  it('never answers 5xx and never writes, whatever the body, query, path or token', async () => {
    // Text PostgreSQL cannot store (NUL, UTF-16 surrogates without their pair), alone or inside other text.
    const unstorable = fc.constantFrom('\u0000', '\ud800', '\udfff', '\ud83d', '\ude00\ud83d');
    const text = fc.oneof(
      { weight: 3, arbitrary: fc.string() },
      { weight: 1, arbitrary: fc.tuple(fc.string({ maxLength: 10 }), unstorable, fc.string({ maxLength: 10 })).map((p) => p.join('')) },
    );
    const json = fc.jsonValue({ maxDepth: 3 }).chain((value) => fc.oneof(
      fc.constant(value),
      // The same value with unstorable text in a string and in a key.
      fc.tuple(text, text).map(([k, v]) => ({ [k]: v, nested: [value, v] })),
    ));
    const knownKeys = fc.dictionary(
      fc.constantFrom('package_id', 'payment_method_id', 'gift', 'save_payment_method', 'activation_code', 'session_id',
        'room_name', 'duration_seconds', 'seconds', 'reason', 'idempotency_key', 'name', 'price_cents', 'active', 'id',
        'base_seconds', 'bonus_seconds', 'hours', 'currency', 'description', 'sort_order', 'stripe_price_id'),
      fc.oneof(json, text, fc.integer(), fc.double(), fc.boolean(), fc.constant(null)), { maxKeys: 5 });
    const body = fc.oneof(
      fc.constant(undefined),
      json.map((v) => JSON.stringify(v)),
      knownKeys.map((v) => JSON.stringify(v)),
      fc.string({ maxLength: 200 }),
      text.map((t) => JSON.stringify({ text: t })),
      fc.constant('{"unterminated": '),
      fc.constant('x'.repeat(70 * 1024)),
    );
    // encodeURIComponent throws on a lone surrogate: paths and queries get NUL (%00), bodies get both.
    const segment = fc.oneof(fc.uuid(), fc.string({ minLength: 1, maxLength: 30 }),
      fc.constantFrom('starter_1h', '0', '-1', '%00', '..', '\u0000', 'cs_\u0000', 'starter\u00001h'));
    const query = fc.dictionary(fc.constantFrom('limit', 'month', 'days', 'id', 'x'),
      fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String), fc.constantFrom('2026-13', '2026-01', '-5', '1e9', '', '\u0000', '5\u0000')), { maxKeys: 3 });
    const request = fc.record({
      route: fc.nat({ max: 10_000 }),
      segments: fc.array(segment, { minLength: 3, maxLength: 3 }),
      query,
      body,
      contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', undefined),
      token: fc.constantFrom('none', 'user', 'stranger', 'admin', 'garbage'),
      idempotencyKey: fc.option(fc.string({ maxLength: 120 }), { nil: undefined }),
      signature: fc.option(fc.string({ maxLength: 120 }), { nil: undefined }),
    });

    const before = await snapshot();
    const seen = new Set<string>();
    await fc.assert(fc.asyncProperty(request, async (r) => {
      const [method, pattern] = routes[r.route % routes.length]!;
      // An admin's valid change is a legitimate write: admin-only changes are fuzzed as a plain user (403),
      // and their input checks are covered in tests/sidecar-admin-api.test.ts.
      if (r.token === 'admin' && method !== 'GET' && pattern.startsWith('/admin/')) r = { ...r, token: 'user' };
      let n = 0;
      const path = pattern.replace(/:\w+/g, () => encodeURIComponent(r.segments[n++ % r.segments.length]!));
      const qs = new URLSearchParams(r.query).toString();
      const headers: Record<string, string> = {};
      if (r.contentType && r.body !== undefined) headers['content-type'] = r.contentType;
      if (tokens[r.token]) headers.authorization = `Bearer ${tokens[r.token]}`;
      if (r.idempotencyKey !== undefined) headers['idempotency-key'] = r.idempotencyKey.replace(/[^\x20-\x7e]/g, '');
      if (r.signature !== undefined) headers['stripe-signature'] = r.signature.replace(/[^\x20-\x7e]/g, '');
      const response = await fetch(`${sidecar.url}${path}${qs ? `?${qs}` : ''}`, {
        method, headers, body: method === 'GET' || method === 'DELETE' && r.body === undefined ? undefined : r.body,
      });
      const text = await response.text();
      seen.add(`${method} ${pattern}`);
      assert.ok(response.status < 500, `${method} ${path}?${qs} [${r.token}] -> ${response.status} ${text.slice(0, 300)}`);
      if (response.status >= 400) {
        const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
        assert.equal(typeof parsed.error?.code, 'string', `${method} ${path}: error body ${text.slice(0, 200)}`);
        assert.equal(typeof parsed.error?.message, 'string');
      }
    }), { numRuns: Number(process.env.FUZZ_RUNS ?? 600), seed: process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : undefined });
    assert.deepEqual(await snapshot(), before, 'nothing was written');
    assert.ok(seen.size >= Math.min(routes.length, 10), `fuzzed ${seen.size} of ${routes.length} routes`);
  });
});

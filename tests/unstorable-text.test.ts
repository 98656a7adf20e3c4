// Text PostgreSQL cannot store (a NUL character; a UTF-16 surrogate without its pair, which has no UTF-8 form) is
// the caller's mistake: a 400 that names where it was, never a 500, and nothing written. Checked at every route that
// takes free text, at the store itself (the agent's tools reach it without HTTP), and for signed Stripe events.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BillingError } from '../src/billing/errors.ts';
import { unstorableTextAt, withStorableText } from '../src/billing/storable-text.ts';
import { countRows, createPostgresDatabase, newUserId, type TestDatabase } from './helpers/test-db.ts';
import { checkoutSession, purchaseIds, startSidecar, stripeEvent, type TestSidecar } from './helpers/sidecar.ts';

const UNSTORABLE = ['\u0000', 'before\u0000after', '\ud800', 'lone \udfff low', 'cut \ud83d'];
const STORABLE = ['plain', 'emoji 😀 pair', 'é ü 漢字', '\u0001\u001f controls', ''];
const TABLES = ['public.time_cards', 'public.ledger_entries', 'public.voice_sessions', 'public.pricing_tiers',
  'public.stripe_events', 'public.payments', 'billing_private.operations', 'billing_private.activation_failures'];

describe('text PostgreSQL cannot store', () => {
  let db: TestDatabase;
  let sidecar: TestSidecar;
  const admin = newUserId();
  before(async () => {
    db = await createPostgresDatabase();
    sidecar = await startSidecar(db, { adminIds: [admin] });
  });
  after(async () => {
    await sidecar?.close();
    await db?.close();
  });

  const counts = async () => Object.fromEntries(await Promise.all(TABLES.map(async (t) => [t, await countRows(db.sql, t)])));

  it('is found anywhere in a value, keys included, and storable text is not mistaken for it', () => {
    for (const bad of UNSTORABLE) {
      assert.equal(unstorableTextAt(bad), '');
      assert.equal(unstorableTextAt({ a: [1, { b: bad }] }), 'a.1.b');
      assert.equal(unstorableTextAt({ a: { [bad]: 1 } }), `a.${bad}`);
    }
    for (const good of STORABLE) assert.equal(unstorableTextAt({ a: [good, { [good]: good }] }), null);
    // Deep nesting is walked without recursion.
    let deep: unknown = '\u0000';
    for (let i = 0; i < 100_000; i++) deep = [deep];
    assert.equal(typeof unstorableTextAt(deep), 'string');
  });

  it('is a 400 naming the field on every route that takes free text, and changes nothing', async () => {
    const user = newUserId();
    const userToken = await sidecar.tokenFor(user);
    const adminToken = await sidecar.tokenFor(admin, { admin: true });
    await sidecar.store.grantCard({ userId: user, tierId: 'starter_1h', idempotencyKey: `${user}:grant` });
    const before = await counts();
    for (const bad of UNSTORABLE) {
      const attempts: [string, string, string, unknown, string][] = [
        ['POST', '/time/session/start', userToken, { session_id: 'call-1', room_name: `room ${bad}` }, 'room_name'],
        ['POST', '/time/activate', userToken, { activation_code: `MB-${bad}` }, 'activation_code'],
        ['POST', '/time/purchase', userToken, { package_id: `starter${bad}` }, 'package_id'],
        ['POST', '/admin/tiers', adminToken, { id: 'nul_tier', name: `Tier ${bad}`, hours: 1, price_cents: 100 }, 'name'],
        ['PATCH', '/admin/tiers/starter_1h', adminToken, { description: `text ${bad}` }, 'description'],
        ['POST', `/admin/users/${user}/adjust`, adminToken, { seconds: 60, reason: `goodwill ${bad}` }, 'reason'],
        ['POST', `/admin/users/${user}/adjust`, adminToken, { seconds: 60, reason: 'goodwill', [`x${bad}`]: 1 }, 'x'],
      ];
      for (const [method, path, token, body, field] of attempts) {
        const response = await sidecar.request(method, path, { token, body });
        const text = await response.text();
        assert.equal(response.status, 400, `${method} ${path} ${JSON.stringify(bad)}: ${text}`);
        const error = (JSON.parse(text) as { error: { code: string; message: string } }).error;
        assert.equal(error.code, 'invalid_request');
        assert.match(error.message, new RegExp(`^${field}`), error.message);
      }
      // In the query string and the path (percent-encoded NUL; surrogates cannot be percent-encoded).
      if (bad.includes('\u0000')) {
        for (const path of [`/admin/users?limit=5${encodeURIComponent(bad)}`, `/admin/tiers/${encodeURIComponent(bad)}`,
          `/time/purchase/checkout/${encodeURIComponent(`cs_${bad}`)}`]) {
          const response = await sidecar.request(path.startsWith('/admin/tiers/') ? 'DELETE' : 'GET', path,
            { token: path.startsWith('/admin') ? adminToken : userToken });
          assert.equal(response.status, 400, `${path}: ${await response.clone().text()}`);
        }
      }
    }
    assert.deepEqual(await counts(), before);
  });

  it('is refused by the store itself as invalid_argument before any SQL', async () => {
    const user = newUserId();
    for (const bad of UNSTORABLE) {
      await assert.rejects(sidecar.store.startSession({ userId: user, externalKey: `${user}:${bad}`, roomName: 'r' }),
        (error: unknown) => error instanceof BillingError && error.code === 'invalid_argument' && /externalKey|external_key/.test(error.message));
      await assert.rejects(sidecar.store.adjustUserTime({ userId: user, seconds: 60, reason: bad, idempotencyKey: `${user}:adj` }),
        (error: unknown) => error instanceof BillingError && error.code === 'invalid_argument');
    }
    assert.equal((await sidecar.store.getBalance(user)).total_seconds, 0);
  });

  it('in a signed Stripe event is stored as U+FFFD and the payment still applies (money paid is never refused over a note)', async () => {
    for (const bad of UNSTORABLE) {
      const buyer = newUserId();
      const event = stripeEvent('checkout.session.completed', checkoutSession(purchaseIds(),
        { userId: buyer, packageId: 'starter_1h', amount: 999 }, { custom_fields: [{ key: 'note', text: { value: `hi ${bad}` } }] }));
      const response = await sidecar.deliver(event);
      assert.equal(response.status, 200, await response.clone().text());
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 3600);
      const { rows } = await db.sql.query<{ note: string }>(
        `select payload #>> '{data,object,custom_fields,0,text,value}' as note from public.stripe_events where id = $1`, [event.id]);
      assert.equal(rows[0]!.note, `hi ${bad.replace(/\u0000|[\ud800-\udfff]/g, '\ufffd')}`);
      // Delivered again: the same event, applied once.
      assert.equal((await sidecar.deliver(event)).status, 200);
      assert.equal((await sidecar.store.getBalance(buyer)).total_seconds, 3600);
    }
  });

  it('is replaced by U+FFFD in values and keys alike, storable text untouched', () => {
    assert.deepEqual(withStorableText({ a: ['x\u0000y', { ['k\ud800']: 'lone \udfff' }], n: 1, ok: 'hi 😀' }),
      { a: ['x\ufffdy', { ['k\ufffd']: 'lone \ufffd' }], n: 1, ok: 'hi 😀' });
    for (const good of STORABLE) assert.equal(withStorableText(good), good);
  });
});

// The README's examples are what a reader copies: its activation codes must be codes the app accepts, and its
// adjustment request must be one the admin API takes as written.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parseActivationCode } from '../src/shared/activation-code.ts';
import { createPostgresDatabase, type TestDatabase } from './helpers/test-db.ts';
import { startSidecar, type TestSidecar } from './helpers/sidecar.ts';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('the README\'s examples', () => {
  it('shows only activation codes that pass the format and check symbol', () => {
    // Three groups of four, not inside a longer id (a UUID has such groups too).
    const codes = [...README.matchAll(/(?<![\w-])[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}(?![\w-])/g)].map((m) => m[0]);
    assert.ok(codes.length > 0, 'the README shows what a code looks like');
    for (const code of codes) {
      const parsed = parseActivationCode(code);
      assert.ok(parsed.ok, `${code} in README.md: ${parsed.ok ? '' : parsed.message}`);
    }
  });

  describe('the adjustment request', () => {
    let db: TestDatabase;
    let sidecar: TestSidecar;
    const adminId = '6f1c2a9e-0000-4000-8000-00000000000a';
    before(async () => {
      db = await createPostgresDatabase();
      sidecar = await startSidecar(db, { adminIds: [adminId] });
    });
    after(async () => {
      await sidecar?.close();
      await db?.close();
    });

    it('is taken by the admin API as written, for a user billing knew nothing of, and once on a retry', async () => {
      const example = /curl -X POST localhost:8001(\/admin\/users\/([0-9a-f-]{36})\/adjust) \\\n[^\n]*\n\s*-d '(\{[^']*\})'/.exec(README);
      assert.ok(example, 'README.md shows a curl request to /admin/users/{id}/adjust with its JSON body');
      const [, path, userId, body] = example;
      const token = await sidecar.tokenFor(adminId, { admin: true });
      const send = () => sidecar.request('POST', path!, { token, body: JSON.parse(body!) });
      const first = await send();
      assert.equal(first.status, 200, await first.clone().text());
      const answer = await first.json() as { adjusted_seconds: number; remaining_seconds: number; replayed: boolean };
      assert.equal((await sidecar.store.getBalance(userId!)).total_seconds, answer.remaining_seconds);
      assert.ok(answer.adjusted_seconds > 0 && !answer.replayed);
      const again = await (await send()).json() as { replayed: boolean; remaining_seconds: number };
      assert.deepEqual([again.replayed, again.remaining_seconds], [true, answer.remaining_seconds], 'its idempotency key makes a retry the same adjustment');
      const shown = /# → (\{.*\})/.exec(README.slice(example.index))?.[1] ?? '';
      assert.match(shown, new RegExp(`"adjusted_seconds":${answer.adjusted_seconds},"shortfall_seconds":0,.*"remaining_seconds":${answer.remaining_seconds},"replayed":false`),
        'the answer the README shows is the one the API gives');
    });
  });
});

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { checkSymbol, CODE_ALPHABET, formatCode, normalizeCode, parseActivationCode } from '../src/shared/activation-code.ts';
import { createPostgresDatabase, type TestDatabase } from './helpers/test-db.ts';

describe('activation codes, read without the database', () => {
  it('accepts any case, spaces and dashes', () => {
    const body = 'ABCD2345XYZ';
    const code = body + checkSymbol(body);
    for (const typed of [code, code.toLowerCase(), formatCode(code), ` ${formatCode(code).toLowerCase().replace(/-/g, ' - ')} `]) {
      assert.deepEqual(parseActivationCode(typed), { ok: true, code, display: formatCode(code) }, typed);
    }
  });

  it('calls a code with a look-alike, a wrong length or a foreign character malformed', () => {
    for (const typed of ['', 'ABCD-EFGH-JK2', 'ABCD-EFGH-JK234', 'ABCD-EFGH-JK20', 'OBCD-EFGH-JK23', 'ABCD-EFGH-JKL3', 'ABCD_EFGH_JK23']) {
      const parsed = parseActivationCode(typed);
      assert.equal(parsed.ok ? 'ok' : parsed.error, 'malformed_code', typed);
    }
  });

  it('catches every single mistyped symbol and every swap of two different neighbours', () => {
    const body = 'QW3RT7YUP8M';
    const code = body + checkSymbol(body);
    let checked = 0;
    for (let i = 0; i < code.length; i++) {
      for (const symbol of CODE_ALPHABET) {
        if (symbol === code[i]) continue;
        const typo = code.slice(0, i) + symbol + code.slice(i + 1);
        assert.equal((parseActivationCode(typo) as { error?: string }).error, 'mistyped_code', typo);
        checked++;
      }
      if (i + 1 < code.length && code[i] !== code[i + 1]) {
        const swapped = code.slice(0, i) + code[i + 1] + code[i] + code.slice(i + 2);
        assert.equal((parseActivationCode(swapped) as { error?: string }).error, 'mistyped_code', swapped);
      }
    }
    assert.equal(checked, 12 * 30);
  });

  it('normalizes before it checks', () => {
    assert.equal(normalizeCode(' ab-cd ef\tgh '), 'ABCDEFGH');
  });
});

describe('activation codes made by the database', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createPostgresDatabase();
  });
  after(async () => {
    await db?.close();
  });

  it('are 12 symbols of the alphabet, pass the TypeScript check and are spread evenly', async () => {
    const { rows } = await db.sql.query<{ code: string }>(
      'select billing_private.new_activation_code() as code from generate_series(1, 5000)');
    const counts = new Map<string, number>();
    for (const { code } of rows) {
      assert.ok(parseActivationCode(code).ok, code);
      for (const symbol of code.slice(0, 11)) counts.set(symbol, (counts.get(symbol) ?? 0) + 1);
    }
    assert.equal(new Set(rows.map((r) => r.code)).size, rows.length, 'no repeats in 5000');
    assert.equal(counts.size, 31, 'every symbol appears');
    const expected = (5000 * 11) / 31;
    for (const [symbol, n] of counts) {
      // 10 standard deviations: fails only for a biased generator, never by chance.
      assert.ok(Math.abs(n - expected) < 10 * Math.sqrt(expected), `${symbol} appears ${n} times, expected about ${expected}`);
    }
  });

  it('agree with the TypeScript check symbol on random bodies, and the SQL parser agrees on typos', async () => {
    const bodies = Array.from({ length: 300 }, () =>
      Array.from({ length: 11 }, () => CODE_ALPHABET[Math.floor(Math.random() * CODE_ALPHABET.length)]).join(''));
    const { rows } = await db.sql.query<{ body: string; check: string }>(
      'select b as body, billing_private.code_check_symbol(b) as check from unnest($1::text[]) b', [bodies]);
    for (const { body, check } of rows) assert.equal(check, checkSymbol(body), body);

    const good = bodies[0]! + checkSymbol(bodies[0]!);
    const bad = good.slice(0, 11) + (good[11] === '2' ? '3' : '2');
    const { rows: parsed } = await db.sql.query<{ code: string }>('select billing_private.parse_activation_code($1) as code',
      [formatCode(good).toLowerCase()]);
    assert.equal(parsed[0]!.code, good);
    await assert.rejects(db.sql.query('select billing_private.parse_activation_code($1)', [bad]), /typo/);
    await assert.rejects(db.sql.query('select billing_private.parse_activation_code($1)', ['ABCD-EFGH-JKL0']), /12 letters and digits/);
  });
});

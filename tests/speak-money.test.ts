// Money in a plan's terms: spoken amounts and a call's cost to 4 decimals (pure functions, one table each).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { centsOfExact, showCost4, speakExactMoney, speakMoney, speakPerHour } from '../src/tools/speak-money.ts';

describe('centsOfExact (half-up once, on digits)', () => {
  const cases: Array<[string | number, number]> = [
    ['0', 0], ['0.4999999999', 0], ['0.5', 1], ['210', 210], ['210.4999', 210], ['210.5', 211],
    ['2.500000000000', 3], [0.15 + 0.35, 1], [1234.4, 1234],
  ];
  for (const [exact, cents] of cases) it(`${exact} → ${cents}`, () => assert.equal(centsOfExact(exact), cents));
  it('refuses what is not an amount', () => {
    assert.throws(() => centsOfExact('-1'), RangeError);
    assert.throws(() => centsOfExact('1e3'), RangeError);
  });
});

describe('speakMoney and speakExactMoney', () => {
  const cases: Array<[number, string, string]> = [
    [210, 'usd', '2 dollars and 10 cents'], [5000, 'usd', '50 dollars'], [1, 'usd', '1 cent'], [0, 'usd', '0 dollars'],
    [4900, 'eur', '49 euros'], [105, 'gbp', '1 pound and 5 pence'],
  ];
  for (const [cents, currency, words] of cases) {
    it(`${cents} ${currency} → "${words}"`, () => assert.equal(speakMoney(cents, currency), words));
  }
  it('an exact amount is rounded once, and a sliver above nothing is "less than a cent"', () => {
    assert.equal(speakExactMoney('209.5', 'usd'), '2 dollars and 10 cents');
    assert.equal(speakExactMoney('0.25', 'usd'), 'less than a cent');
    assert.equal(speakExactMoney('0.25', 'gbp'), 'less than a penny');
    assert.equal(speakExactMoney('0', 'usd'), '0 dollars');
    assert.equal(speakPerHour(300, 'usd'), '3 dollars an hour');
    assert.equal(speakPerHour('293.9988', 'usd'), '2 dollars and 94 cents an hour');
  });
});

describe('showCost4 (a call\'s cost as text, 4 decimals of the major unit)', () => {
  const cases: Array<[string | number, string, string]> = [
    ['25', 'usd', '$0.2500'], ['2.5', 'usd', '$0.0250'], ['1234.56789', 'usd', '$12.3457'], ['0.004999', 'usd', '$0.0000'],
    ['0.005', 'usd', '$0.0001'], [15, 'eur', '€0.1500'], ['100', 'chf', '1.0000 CHF'], ['0', 'usd', '$0.0000'],
  ];
  for (const [exact, currency, text] of cases) {
    it(`${exact} ${currency} → ${text}`, () => assert.equal(showCost4(exact, currency), text));
  }
});

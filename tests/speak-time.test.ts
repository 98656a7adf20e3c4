// The voice's wording of durations, dates and prices: pure functions, one table each.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { speakDuration, speakList, speakMinutesCharged, speakPrice, speakWhen } from '../src/shared/speak-time.ts';

describe('speakDuration (never overstates)', () => {
  const cases: Array<[number, string]> = [
    [0, 'no time'],
    [-5, 'no time'],
    [Number.NaN, 'no time'],
    [1, 'less than a minute'],
    [59, 'less than a minute'],
    [60, '1 minute'],
    [61, 'about 1 minute'],
    [119, 'about 1 minute'],
    [120, '2 minutes'],
    [45 * 60, '45 minutes'],
    [3600, '1 hour'],
    [3600 + 60, '1 hour and 1 minute'],
    [2 * 3600 + 5 * 60, '2 hours and 5 minutes'],
    [2 * 3600 + 5 * 60 + 30, 'about 2 hours and 5 minutes'],
    [2 * 3600 + 5 * 60 + 59.9, 'about 2 hours and 5 minutes'],
    [5 * 3600, '5 hours'],
    [10 * 3600 - 1, 'about 9 hours and 59 minutes'],
    [10 * 3600, '10 hours'],
    [25 * 3600 + 1, 'over 25 hours'],
    [30 * 3600, '30 hours'],
  ];
  for (const [seconds, words] of cases) {
    it(`${seconds} s → "${words}"`, () => assert.equal(speakDuration(seconds), words));
  }
});

describe('speakMinutesCharged (begun minutes)', () => {
  const cases: Array<[number, string]> = [
    [0, '0 minutes'],
    [1, '1 minute'],
    [60, '1 minute'],
    [61, '2 minutes'],
    [3600, '1 hour'],
    [3660, '1 hour and 1 minute'],
    [7200 + 120, '2 hours and 2 minutes'],
  ];
  for (const [seconds, words] of cases) {
    it(`${seconds} s → "${words}"`, () => assert.equal(speakMinutesCharged(seconds), words));
  }
});

describe('speakWhen', () => {
  const now = new Date('2026-01-01T10:00:00Z'); // a Thursday
  const cases: Array<[string, string, string?]> = [
    ['2026-01-01T09:00:00Z', 'already'],
    ['2026-01-01T23:59:00Z', 'today'],
    ['2026-01-02T00:30:00Z', 'tomorrow'],
    ['2026-01-04T12:00:00Z', 'in 3 days, on Sunday, January 4'],
    ['2026-01-07T12:00:00Z', 'in 6 days, on Wednesday, January 7'],
    ['2026-01-08T12:00:00Z', 'on January 8'],
    ['2026-03-05T00:00:00Z', 'on March 5'],
    ['2027-01-01T00:00:00Z', 'on January 1, 2027'],
    // In New York it is still Jan 1 at 04:00 UTC on Jan 2: the same day there.
    ['2026-01-02T04:00:00Z', 'today', 'America/New_York'],
    ['2026-01-02T04:00:00Z', 'tomorrow', 'UTC'],
  ];
  for (const [at, words, zone] of cases) {
    it(`${at}${zone ? ` (${zone})` : ''} → "${words}"`, () => assert.equal(speakWhen(new Date(at), now, zone), words));
  }
});

describe('speakPrice', () => {
  const cases: Array<[number, string, string]> = [
    [999, 'usd', '9 dollars and 99 cents'],
    [4499, 'USD', '44 dollars and 99 cents'],
    [1000, 'usd', '10 dollars'],
    [100, 'usd', '1 dollar'],
    [101, 'usd', '1 dollar and 1 cent'],
    [5, 'usd', '5 cents'],
    [0, 'usd', '0 dollars'],
    [1250, 'eur', '12 euros and 50 cents'],
    [201, 'gbp', '2 pounds and 1 penny'],
    [1999, 'jpy', '19.99 JPY'],
  ];
  for (const [cents, currency, words] of cases) {
    it(`${cents} ${currency} → "${words}"`, () => assert.equal(speakPrice(cents, currency), words));
  }
});

describe('speakList', () => {
  const cases: Array<[string[], string]> = [
    [[], ''],
    [['a'], 'a'],
    [['a', 'b'], 'a and b'],
    [['a', 'b', 'c'], 'a, b and c'],
  ];
  for (const [items, words] of cases) {
    it(`${JSON.stringify(items)} → "${words}"`, () => assert.equal(speakList(items), words));
  }
});

// Pure wording for money in a plan's terms (docs/plans.md): amounts a voice can say, and a call's cost as text to
// 4 decimals. Exact amounts arrive as decimal strings of minor units (never floats: 0.1 + 0.2 must not leak into
// an invoice figure), so the rounding below works on digits, half-up like the SQL's one rounding rule.

import { speakPrice } from '../shared/speak-time.ts';

const DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/** Scaled integer of a non-negative decimal (string or number) to `places` decimals, rounded half-up. */
function scaled(value: string | number, places: number): bigint {
  const text = typeof value === 'number' ? (Number.isFinite(value) ? Math.max(0, value).toFixed(12) : '0') : value.trim();
  const match = DECIMAL.exec(text);
  if (!match) throw new RangeError(`not a non-negative decimal amount: ${String(value)}`);
  const whole = match[1]!;
  const fraction = (match[2] ?? '').padEnd(places + 1, '0');
  const kept = BigInt(whole + fraction.slice(0, places));
  return fraction[places]! >= '5' ? kept + 1n : kept;
}

/** An exact amount of minor units ("210.4999") as integer minor units, half-up once (210). */
export function centsOfExact(exact: string | number): number {
  return Number(scaled(exact, 0));
}

/**
 * Whole minor units as a voice says them: 210 usd → "2 dollars and 10 cents", 5000 → "50 dollars", 0 →
 * "0 dollars". Never digits with a currency sign, so the text-to-speech voice cannot misread them.
 */
export function speakMoney(cents: number, currency: string): string {
  return speakPrice(Math.max(0, Math.round(cents)), currency);
}

/** An exact amount spoken: rounded half-up to the minor unit, and "less than a cent" for a little above 0. */
export function speakExactMoney(exact: string | number, currency: string): string {
  const cents = centsOfExact(exact);
  if (cents === 0 && scaled(exact, 8) > 0n) {
    return currency.toLowerCase() === 'gbp' ? 'less than a penny' : 'less than a cent';
  }
  return speakMoney(cents, currency);
}

const SYMBOLS: Record<string, string> = { usd: '$', eur: '€', gbp: '£', cad: 'CA$', aud: 'A$' };

/**
 * An exact amount of minor units as text in major units to 4 decimals, as the seed shows a call's cost:
 * "25" usd → "$0.2500", "1234.56789" → "$12.3457". A currency without a symbol: "0.2500 CHF".
 */
export function showCost4(exact: string | number, currency: string): string {
  // 4 decimals of the major unit are 2 decimals of the minor unit.
  const hundredths = scaled(exact, 2);
  const digits = (hundredths / 10000n).toString() + '.' + (hundredths % 10000n).toString().padStart(4, '0');
  const symbol = SYMBOLS[currency.toLowerCase()];
  return symbol ? `${symbol}${digits}` : `${digits} ${currency.toUpperCase()}`;
}

/** A rate per hour (possibly fractional minor units, e.g. 299.4 cents) spoken to the cent: "3 dollars an hour". */
export function speakPerHour(centsPerHour: string | number, currency: string): string {
  return `${speakExactMoney(centsPerHour, currency)} an hour`;
}

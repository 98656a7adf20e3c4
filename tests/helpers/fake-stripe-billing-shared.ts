import {
  asInt, asMetadata, asObject, asString, copy, invalid, noSuch, sub, type FakeCustomer, type Metadata, type ParamValue, type Params,
} from './fake-stripe.ts';
import { dec, decimalString } from './fake-stripe-billing-math.ts';

// Helpers the fake Stripe's billing modules share: refusing what is not modelled, Stripe's decimals, metadata
// updates, previous_attributes, lists.

export const PAGINATION = ['ending_before', 'expand', 'limit', 'starting_after'];

/** A parameter Stripe has but this fake does not model: refused rather than silently ignored. */
export const notImplemented = (param: string) => invalid(`fake-stripe: ${param} is not implemented`, param);

export function refuseUnmodelled(p: Params, names: readonly string[], prefix = ''): void {
  for (const name of names) if (p[name] !== undefined && p[name] !== '') throw notImplemented(sub(prefix, name));
}

export const DAY = 86_400;

/** Stripe's rule for `*_decimal` strings: digits, an optional fraction, at most 12 decimal places. */
export function asDecimal(value: ParamValue | undefined, param: string): string | undefined {
  const s = asString(value, param);
  if (s === undefined) return undefined;
  if (!/^\d+(\.\d{1,12})?$/.test(s)) throw invalid(`Invalid decimal: ${s}`, param, 'parameter_invalid_string');
  return decimalString(dec(s));
}

export function mergeMetadata(existing: Metadata, raw: ParamValue | undefined, param = 'metadata'): Metadata {
  if (raw === undefined) return existing;
  if (raw === '') return {};
  const obj = asObject(raw, param) ?? {};
  const out = { ...existing };
  asMetadata(obj, param); // validates sizes and value types
  for (const [key, value] of Object.entries(obj)) {
    if (value === '') delete out[key];
    else out[key] = value as string;
  }
  return out;
}

/** The top-level keys whose values differ, with their old values (Stripe's `previous_attributes`). */
export function changed(before: Record<string, unknown>, after: Record<string, unknown>): Record<string, unknown> | undefined {
  const previous: Record<string, unknown> = {};
  for (const key of Object.keys(before)) if (JSON.stringify(before[key]) !== JSON.stringify(after[key])) previous[key] = before[key];
  return Object.keys(previous).length > 0 ? previous : undefined;
}

export function isoDate(t: number): string {
  return new Date(t * 1000).toISOString().slice(0, 10);
}

export function money(amount: number, currency: string): string {
  const sign = amount < 0 ? '-' : '';
  return `${sign}${currency === 'usd' ? '$' : ''}${(Math.abs(amount) / 100).toFixed(2)}${currency === 'usd' ? '' : ` ${currency}`}`;
}

export const getOr404 = <T>(map: Map<string, T>, kind: string) => (id: string): T => {
  const found = map.get(id);
  if (!found) throw noSuch(kind, id, 'id', 404);
  return found;
};

export function requireCustomer(customers: Map<string, FakeCustomer>, id: string, param: string): FakeCustomer {
  const customer = customers.get(id);
  if (!customer) throw noSuch('customer', id, param);
  return customer;
}

export function paginate<T extends { id: string }>(all: T[], p: Params, url: string, kind: string): { object: 'list'; data: T[]; has_more: boolean; url: string } {
  const limit = asInt(p.limit, 'limit') ?? 10;
  if (limit < 1 || limit > 100) throw invalid('Invalid integer: limit must be between 1 and 100', 'limit', 'parameter_invalid_integer');
  const after = asString(p.starting_after, 'starting_after');
  const before = asString(p.ending_before, 'ending_before');
  let data = all;
  if (after !== undefined) {
    const i = all.findIndex((x) => x.id === after);
    if (i < 0) throw noSuch(kind, after, 'starting_after');
    data = all.slice(i + 1);
    return { object: 'list', data: copy(data.slice(0, limit)), has_more: data.length > limit, url };
  }
  if (before !== undefined) {
    const i = all.findIndex((x) => x.id === before);
    if (i < 0) throw noSuch(kind, before, 'ending_before');
    data = all.slice(Math.max(0, i - limit), i);
    return { object: 'list', data: copy(data), has_more: i - limit > 0, url };
  }
  return { object: 'list', data: copy(data.slice(0, limit)), has_more: data.length > limit, url };
}

/** Lists are newest first, like Stripe's. */
export const newestFirst = <T extends { created: number }>(values: Iterable<T>) => [...values].reverse().sort((a, b) => b.created - a.created);

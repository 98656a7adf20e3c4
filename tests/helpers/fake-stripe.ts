import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import Stripe from 'stripe';

// A small fake of the Stripe REST API (v1) on node:http, for tests that drive the real `stripe` client
// (`new Stripe(key, { host: '127.0.0.1', port, protocol: 'http' })`). It does what the API does to a
// request, in the same order, for the handful of endpoints the billing sidecar uses:
//   1. authentication: `Authorization: Bearer sk_test_…` (or Basic with the key as user name); a missing or
//      unknown key is a 401 `invalid_request_error` (the client raises StripeAuthenticationError);
//   2. routing: an unknown path is a 404 "Unrecognized request URL (POST: /v1/…)" `invalid_request_error`
//      (no `code`, like the real API); an unknown object id is a 404 `resource_missing` with `param: 'id'`;
//   3. parameters: the form body (`a[b][0][c]=v`, `expand[]=x`) is decoded into nested objects/arrays of
//      strings and checked like the API does: unknown parameters (e.g. `payment_method_types`, removed from
//      Checkout Sessions and PaymentIntents in API 2026-09-30 / stripe-node 23) → 400 `parameter_unknown`,
//      missing ones → 400 `parameter_missing`, bad integers/booleans/enums/URLs → 400 with `param`;
//   4. idempotency (POST only, scoped per API key): a key seen before with the same endpoint and the same
//      decoded parameters replays the first response byte for byte (`Idempotent-Replayed: true`,
//      `Original-Request: req_…`); with other parameters → 400 `idempotency_error`; while the first request
//      is still running → 409 `idempotency_error`. As documented by Stripe, a result is saved only when the
//      endpoint started executing: 2xx answers and card errors (402) are saved, validation errors (400/404)
//      and 401s are not, so a corrected retry with the same key works.
// Test-mode payment methods: any `pm_…` id is a chargeable card except the documented test tokens below
// (`pm_card_chargeDeclined` → 402 card_declined/generic_decline, …). Every request is recorded, failures
// can be injected in front of (or behind) the API to exercise the client's retries, and the objects created
// are kept in Maps (plus helpers to complete a Checkout Session and to build/sign webhook events).

// ---------- public types ----------

export type ParamValue = string | ParamValue[] | Params;
export interface Params {
  [key: string]: ParamValue;
}

export interface RecordedStripeRequest {
  /** 1-based arrival order. */
  seq: number;
  method: string;
  /** The path without the query string, e.g. /v1/checkout/sessions. */
  path: string;
  /** The decoded query string. */
  query: Params;
  /** The decoded parameters: the form body for POST, the query string otherwise. */
  params: Params;
  rawBody: string;
  /** All request headers, names in lower case. */
  headers: Record<string, string>;
  /** The API key from the Authorization header (null when absent). */
  apiKey: string | null;
  idempotencyKey: string | null;
  stripeVersion: string | null;
  stripeAccount: string | null;
  /** The HTTP status sent back (0 when the connection was dropped on purpose). */
  status: number;
  /** The request-id header sent back. */
  requestId: string;
  /** The answer is a replay of an earlier one (same idempotency key). */
  replayed: boolean;
  /** The answer was an injected failure (see failNext). */
  injectedFailure: boolean;
  /** The parsed JSON answer (undefined when the connection was dropped). */
  response: unknown;
}

export interface StripeErrorBody {
  type: 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
  doc_url?: string;
  request_log_url?: string;
  charge?: string;
  payment_intent?: unknown;
  payment_method?: unknown;
  [extra: string]: unknown;
}

export interface FailureOptions {
  /** Only requests to this path (exact string, 'METHOD /path', or RegExp on the path) count and fail. */
  path?: string | RegExp;
  /**
   * 'before' (default): the failure happens in front of the API (e.g. a load balancer): nothing runs and
   * nothing is saved under the idempotency key. 'after': the request runs (and its result is saved under
   * the idempotency key) but the answer is replaced by the failure — the "lost response" case, where a
   * retry with the same key must get the replay and must not create a second object.
   */
  when?: 'before' | 'after';
  /** Close the socket instead of answering (the client sees ECONNRESET). */
  dropConnection?: boolean;
  /** Fields merged into the error body. */
  error?: Partial<StripeErrorBody>;
  /** Extra response headers, e.g. { 'Stripe-Should-Retry': 'false' }. */
  headers?: Record<string, string>;
}

export interface FakeStripeOptions {
  /** Accepted API keys; by default any sk_test_… / rk_test_… key. The first one is used by client(). */
  apiKeys?: string[];
  /** Delay before each request is executed (makes concurrent requests overlap). */
  latencyMs?: number;
  /** More endpoints plugged into the same server (e.g. fake-stripe-billing.ts); see FakeStripeExtension. */
  extensions?: FakeStripeExtensionFactory[];
}

// ---------- extensions (more endpoints on the same server, same authentication, validation and idempotency) ----------

/** A handler returns PASS to hand the request on to the next route matching the same method and path. */
export const PASS: unique symbol = Symbol('fake-stripe: pass');

/** An extension's expand() returns OMIT for a field that expands to nothing (it stays out of the object). */
export const OMIT: unique symbol = Symbol('fake-stripe: omit');

export type Handler = (params: Params, ctx: { id: string; apiVersion: string; requestId: string; idempotencyKey: string | null }) => unknown;

export interface Route {
  method: string;
  /** The first capture group, if any, is the object id given to the handler as ctx.id. */
  pattern: RegExp;
  handler: Handler;
}

export interface FakeStripeExtension {
  /** Tried before the core's routes, extensions in the order given. */
  routes?: Route[];
  /** An object by id, for `expand` of a string field. */
  lookup?(id: string): unknown;
  /** A field this extension expands itself (e.g. a price's includable `tiers`); undefined when it does not, OMIT to leave it out. */
  expand?(object: Record<string, unknown>, path: string): unknown;
  reset?(): void;
}

/** What an extension sees of the core: its object maps and the customer constructor. */
export interface FakeStripeCore {
  fake: FakeStripe;
  customers: Map<string, FakeCustomer>;
  /** Prices by id; extensions may store fuller Price objects here so Checkout can name them. */
  prices: Map<string, FakePrice>;
  checkoutSessions: Map<string, FakeCheckoutSession>;
  lineItems: Map<string, FakeLineItem[]>;
  createCustomer(fields: Partial<FakeCustomer>): FakeCustomer;
}

export type FakeStripeExtensionFactory = (core: FakeStripeCore) => FakeStripeExtension;

export type Metadata = Record<string, string>;

/** The keys of Stripe's published customer fixture (tests/fixtures/stripe-billing/customer.json). */
export interface FakeCustomer {
  id: string;
  object: 'customer';
  address: Record<string, string | null> | null;
  balance: number;
  created: number;
  currency: string | null;
  default_source: string | null;
  delinquent: boolean;
  description: string | null;
  discount: unknown;
  email: string | null;
  invoice_prefix: string;
  invoice_settings: { custom_fields: unknown; default_payment_method: string | null; footer: string | null; rendering_options: unknown };
  livemode: false;
  metadata: Metadata;
  name: string | null;
  next_invoice_sequence: number;
  phone: string | null;
  preferred_locales: string[];
  shipping: unknown;
  tax_exempt: 'none' | 'exempt' | 'reverse';
  test_clock: string | null;
}

export interface FakePrice {
  id: string;
  object: 'price';
  active: boolean;
  currency: string;
  unit_amount: number;
  product: string;
  recurring: { interval: string; interval_count: number } | null;
  type: 'one_time' | 'recurring';
  livemode: false;
  metadata: Metadata;
}

export interface FakeLineItem {
  id: string;
  object: 'item';
  amount_subtotal: number;
  amount_total: number;
  currency: string;
  description: string;
  quantity: number;
  price: FakePrice;
  metadata: Metadata;
}

export interface FakeCheckoutSession {
  id: string;
  object: 'checkout.session';
  amount_subtotal: number | null;
  amount_total: number | null;
  cancel_url: string | null;
  client_reference_id: string | null;
  created: number;
  currency: string | null;
  customer: string | null;
  customer_creation: 'always' | 'if_required' | null;
  customer_details: { email: string | null } | null;
  customer_email: string | null;
  expires_at: number;
  livemode: false;
  metadata: Metadata;
  mode: 'payment' | 'setup' | 'subscription';
  payment_intent: string | null;
  payment_status: 'paid' | 'unpaid' | 'no_payment_required';
  status: 'open' | 'complete' | 'expired';
  success_url: string | null;
  ui_mode: string;
  url: string | null;
}

export interface FakePaymentIntent {
  id: string;
  object: 'payment_intent';
  amount: number;
  amount_received: number;
  capture_method: string;
  client_secret: string;
  confirmation_method: string;
  created: number;
  currency: string;
  customer: string | null;
  description: string | null;
  last_payment_error: StripeErrorBody | null;
  latest_charge: string | null;
  livemode: false;
  metadata: Metadata;
  next_action: { type: string } | null;
  payment_method: string | null;
  receipt_email: string | null;
  setup_future_usage: string | null;
  status: 'requires_payment_method' | 'requires_confirmation' | 'requires_action' | 'processing' | 'succeeded' | 'canceled';
}

export interface FakeCharge {
  id: string;
  object: 'charge';
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  captured: boolean;
  created: number;
  currency: string;
  customer: string | null;
  description: string | null;
  failure_code: string | null;
  failure_message: string | null;
  livemode: false;
  metadata: Metadata;
  outcome: { type: string; seller_message: string; reason: string | null };
  paid: boolean;
  payment_intent: string | null;
  payment_method: string | null;
  refunded: boolean;
  status: 'succeeded' | 'pending' | 'failed';
}

export interface FakeRefund {
  id: string;
  object: 'refund';
  amount: number;
  charge: string;
  created: number;
  currency: string;
  metadata: Metadata;
  payment_intent: string | null;
  reason: string | null;
  status: 'succeeded';
}

export interface FakeEvent<T = unknown> {
  id: string;
  object: 'event';
  api_version: string;
  created: number;
  data: { object: T; previous_attributes?: Record<string, unknown> };
  livemode: false;
  pending_webhooks: number;
  request: { id: string | null; idempotency_key: string | null };
  type: string;
}

export interface CompleteCheckoutOptions {
  /** 'paid' (default) creates a succeeded PaymentIntent and Charge; 'unpaid' a processing PaymentIntent (delayed methods). */
  paymentStatus?: 'paid' | 'unpaid';
  paymentMethod?: string;
  /** The buyer's e-mail (customer_details.email). */
  email?: string;
}

export interface FakeStripe {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The key client() uses. */
  readonly apiKey: string;
  /** Delay before each request runs; may be changed at any time. */
  latencyMs: number;
  /** A real stripe client pointed at the fake (maxNetworkRetries 0, telemetry off, 5 s timeout unless overridden). */
  client(config?: Stripe.StripeConfig, apiKey?: string): Stripe;
  /** Recorded requests, optionally only those matching a path ('/v1/customers'), 'METHOD /path', a RegExp on the path or a predicate. */
  requests(filter?: RequestFilter): RecordedStripeRequest[];
  lastRequest(filter?: RequestFilter): RecordedStripeRequest | undefined;
  clearRequests(): void;
  /** The next n (matching) requests fail with `status` (default 500) and a Stripe error body. Calls queue up. */
  failNext(n: number, status?: number, options?: FailureOptions): void;
  readonly customers: Map<string, FakeCustomer>;
  readonly prices: Map<string, FakePrice>;
  readonly checkoutSessions: Map<string, FakeCheckoutSession>;
  readonly paymentIntents: Map<string, FakePaymentIntent>;
  readonly charges: Map<string, FakeCharge>;
  readonly refunds: Map<string, FakeRefund>;
  /** Line items of each Checkout Session. */
  readonly lineItems: Map<string, FakeLineItem[]>;
  /** Register a Price that line_items[][price] can name. */
  addPrice(price: { id?: string; unit_amount: number; currency: string; product?: string; recurring?: { interval: string; interval_count?: number } }): FakePrice;
  /**
   * What Stripe does when the buyer pays on the hosted page: the session becomes complete, a PaymentIntent
   * (metadata from payment_intent_data.metadata) and a Charge are created, and a Customer when
   * customer_creation is 'always'. Returns copies of the objects.
   */
  completeCheckoutSession(id: string, options?: CompleteCheckoutOptions): { session: FakeCheckoutSession; paymentIntent: FakePaymentIntent | null; charge: FakeCharge | null };
  /** The session expires (status 'expired'); like POST /v1/checkout/sessions/:id/expire. */
  expireCheckoutSession(id: string): FakeCheckoutSession;
  /** An Event object wrapping a copy of `object`, as Stripe sends to webhooks. */
  event<T>(type: string, object: T, extra?: { id?: string; created?: number; previous_attributes?: Record<string, unknown>; request?: { id: string | null; idempotency_key: string | null } }): FakeEvent<T>;
  /** An event plus its exact JSON payload and a valid Stripe-Signature header for `secret`. */
  signedEvent<T>(type: string, object: T, secret: string, extra?: Parameters<FakeStripe['event']>[2]): { event: FakeEvent<T>; payload: string; signature: string };
  /** Forget all objects, idempotency results, recorded requests and pending failures. */
  reset(): void;
  close(): Promise<void>;
}

export type RequestFilter = string | RegExp | ((request: RecordedStripeRequest) => boolean);

// ---------- form decoding (Stripe's bracket notation) ----------

export class FormDecodeError extends Error {
  constructor(message: string, readonly param: string) {
    super(message);
  }
}

const setOwn = (target: Params, key: string, value: ParamValue) =>
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });

/**
 * Decode `application/x-www-form-urlencoded` with bracket paths into nested objects/arrays of strings:
 * `line_items[0][price_data][unit_amount]=999&metadata[k]=v&expand[]=a` →
 * `{ line_items: [{ price_data: { unit_amount: '999' } }], metadata: { k: 'v' }, expand: ['a'] }`.
 * Objects whose keys are all indexes become arrays (except metadata, whose keys are user data).
 */
export function decodeStripeForm(body: string): Params {
  const root: Params = {};
  for (const [rawKey, value] of new URLSearchParams(body)) {
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(rawKey);
    const segments = match ? [match[1]!, ...[...match[2]!.matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1]!)] : [rawKey];
    let container: Params = root;
    for (let i = 0; i < segments.length; i++) {
      let segment = segments[i]!;
      if (segment === '') segment = String(Object.keys(container).length); // `[]`: append
      const last = i === segments.length - 1;
      const existing = Object.hasOwn(container, segment) ? container[segment] : undefined;
      if (last) {
        if (existing !== undefined && typeof existing !== 'string') throw new FormDecodeError(`Invalid value for ${rawKey}: both a hash and a value were given`, rawKey);
        setOwn(container, segment, value);
      } else {
        if (existing === undefined) {
          const child: Params = {};
          setOwn(container, segment, child);
          container = child;
        } else if (typeof existing === 'string' || Array.isArray(existing)) {
          throw new FormDecodeError(`Invalid hash for ${rawKey}: both a value and a hash were given`, rawKey);
        } else {
          container = existing;
        }
      }
    }
  }
  return arrayify(root, '') as Params;
}

function arrayify(value: ParamValue, key: string): ParamValue {
  if (typeof value === 'string' || Array.isArray(value)) return value;
  const keys = Object.keys(value);
  for (const k of keys) setOwn(value, k, arrayify(value[k]!, k));
  if (key !== 'metadata' && key !== '' && keys.length > 0 && keys.every((k) => /^(0|[1-9]\d*)$/.test(k))) {
    return keys.map(Number).sort((a, b) => a - b).map((i) => value[String(i)]!);
  }
  return value;
}

/** A canonical string of decoded parameters (object keys sorted), for idempotency comparisons. */
function canonical(value: ParamValue): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k]!)}`).join(',')}}`;
}

// ---------- errors ----------

class ApiError extends Error {
  /** Whether the result is saved under the idempotency key (the endpoint started executing). */
  readonly saved: boolean;
  constructor(readonly status: number, readonly body: StripeErrorBody, saved = false) {
    super(body.message);
    this.saved = saved;
  }
}

const docUrl = (code: string) => `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`;

function invalid(message: string, param?: string, code?: string, status = 400): ApiError {
  const body: StripeErrorBody = { type: 'invalid_request_error', message };
  if (code) {
    body.code = code;
    body.doc_url = docUrl(code);
  }
  if (param !== undefined) body.param = param;
  return new ApiError(status, body);
}

const missing = (param: string) => invalid(`Missing required param: ${param}.`, param, 'parameter_missing');
const unknownParam = (param: string) => invalid(`Received unknown parameter: ${param}`, param, 'parameter_unknown');
const noSuch = (kind: string, id: string, param: string, status = 400) => invalid(`No such ${kind}: '${id}'`, param, 'resource_missing', status);

// ---------- parameter readers ----------

const sub = (prefix: string, key: string | number) => (prefix ? `${prefix}[${key}]` : String(key));

function checkKeys(obj: Params, allowed: readonly string[], prefix: string): void {
  for (const key of Object.keys(obj)) if (!allowed.includes(key)) throw unknownParam(sub(prefix, key));
}

function asObject(value: ParamValue | undefined, param: string): Params | undefined {
  if (value === undefined || value === '') return undefined;
  if (typeof value === 'string' || Array.isArray(value)) throw invalid(`Invalid object`, param);
  return value;
}

function asArray(value: ParamValue | undefined, param: string): ParamValue[] | undefined {
  if (value === undefined || value === '') return undefined;
  if (!Array.isArray(value)) throw invalid(`Invalid array`, param);
  return value;
}

function asString(value: ParamValue | undefined, param: string): string | undefined {
  if (value === undefined || value === '') return undefined; // an empty value unsets
  if (typeof value !== 'string') throw invalid(`Invalid string: ${JSON.stringify(value)}`, param, 'parameter_invalid_string');
  return value;
}

function reqString(value: ParamValue | undefined, param: string): string {
  const s = asString(value, param);
  if (s === undefined) throw missing(param);
  return s;
}

function asInt(value: ParamValue | undefined, param: string): number | undefined {
  const s = asString(value, param);
  if (s === undefined) return undefined;
  if (!/^-?\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw invalid(`Invalid integer: ${s}`, param, 'parameter_invalid_integer');
  return Number(s);
}

function asBool(value: ParamValue | undefined, param: string): boolean | undefined {
  const s = asString(value, param);
  if (s === undefined) return undefined;
  if (s !== 'true' && s !== 'false') throw invalid(`Invalid boolean: ${s}`, param);
  return s === 'true';
}

function asEnum<T extends string>(value: ParamValue | undefined, param: string, allowed: readonly T[]): T | undefined {
  const s = asString(value, param);
  if (s === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(s)) {
    const list = allowed.length > 1 ? `${allowed.slice(0, -1).join(', ')}, or ${allowed[allowed.length - 1]}` : allowed[0];
    throw invalid(`Invalid ${param}: must be one of ${list}`, param);
  }
  return s as T;
}

function asUrl(value: ParamValue | undefined, param: string): string | undefined {
  const s = asString(value, param);
  if (s === undefined) return undefined;
  let ok = false;
  try {
    const u = new URL(s);
    ok = u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    ok = false;
  }
  if (!ok) throw invalid('Not a valid URL', param, 'url_invalid');
  return s;
}

function asCurrency(value: ParamValue | undefined, param: string): string {
  const s = reqString(value, param).toLowerCase();
  if (!/^[a-z]{3}$/.test(s)) throw invalid(`Invalid currency: ${s}. Stripe currently supports these currencies: usd, eur, gbp, …`, param, 'parameter_invalid_string');
  return s;
}

function asMetadata(value: ParamValue | undefined, param = 'metadata'): Metadata {
  const obj = asObject(value, param);
  const out: Metadata = {};
  if (!obj) return out;
  const keys = Object.keys(obj);
  if (keys.length > 50) throw invalid('Invalid metadata: metadata can have at most 50 keys', param);
  for (const key of keys) {
    const v = obj[key]!;
    if (typeof v !== 'string') throw invalid(`Invalid value for ${sub(param, key)}: metadata values must be strings`, sub(param, key));
    if (key.length > 40) throw invalid(`Metadata keys can have up to 40 characters, but you passed in a key that is ${key.length} characters. Invalid key: ${key}`, sub(param, key));
    if (v.length > 500) throw invalid(`Metadata values can have up to 500 characters, but you passed in a value that is ${v.length} characters.`, sub(param, key));
    if (v !== '') out[key] = v; // an empty value unsets the key
  }
  return out;
}

// Minimum charge amounts (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts), a subset.
const MINIMUM_AMOUNT: Record<string, [number, string]> = { usd: [50, '$0.50 usd'], eur: [50, '€0.50 eur'], gbp: [30, '£0.30 gbp'], cad: [50, '$0.50 cad'], aud: [50, '$0.50 aud'] };

// ---------- allowed parameters (from stripe-node 23.1.0's *CreateParams types) ----------

const EXPANDABLE = ['expand'] as const;
const CUSTOMER_CREATE = ['address', 'balance', 'business_name', 'cash_balance', 'description', 'email', 'expand', 'individual_name', 'invoice_prefix', 'invoice_settings', 'metadata', 'name', 'next_invoice_sequence', 'payment_method', 'phone', 'preferred_locales', 'shipping', 'source', 'tax', 'tax_exempt', 'tax_id_data', 'test_clock', 'validate'];
const SESSION_CREATE = ['adaptive_pricing', 'after_expiration', 'allow_promotion_codes', 'allowed_payment_method_types', 'automatic_tax', 'billing_address_collection', 'branding_settings', 'cancel_url', 'client_reference_id', 'consent_collection', 'currency', 'custom_fields', 'custom_text', 'customer', 'customer_account', 'customer_creation', 'customer_email', 'customer_update', 'discounts', 'excluded_payment_method_types', 'expand', 'expires_at', 'integration_identifier', 'invoice_creation', 'line_items', 'locale', 'managed_payments', 'metadata', 'mode', 'name_collection', 'optional_items', 'origin_context', 'payment_intent_data', 'payment_method_collection', 'payment_method_configuration', 'payment_method_data', 'payment_method_options', 'permissions', 'phone_number_collection', 'redirect_on_completion', 'return_url', 'saved_payment_method_options', 'setup_intent_data', 'shipping_address_collection', 'shipping_options', 'submit_type', 'subscription_data', 'success_url', 'tax_id_collection', 'ui_mode', 'wallet_options'];
const LINE_ITEM = ['adjustable_quantity', 'metadata', 'price', 'price_data', 'quantity', 'tax_rates'];
const PRICE_DATA = ['currency', 'product', 'product_data', 'recurring', 'tax_behavior', 'unit_amount', 'unit_amount_decimal'];
const PRODUCT_DATA = ['description', 'images', 'metadata', 'name', 'tax_code', 'tax_details', 'unit_label'];
const PAYMENT_INTENT_DATA = ['application_fee_amount', 'capture_method', 'description', 'metadata', 'on_behalf_of', 'receipt_email', 'setup_future_usage', 'shipping', 'statement_descriptor', 'statement_descriptor_suffix', 'transfer_data', 'transfer_group'];
const PAYMENT_INTENT_CREATE = ['amount', 'currency', 'allowed_payment_method_types', 'amount_details', 'application_fee_amount', 'automatic_payment_methods', 'capture_method', 'confirm', 'confirmation_method', 'confirmation_token', 'customer', 'customer_account', 'description', 'error_on_requires_action', 'excluded_payment_method_types', 'expand', 'hooks', 'mandate', 'mandate_data', 'metadata', 'off_session', 'on_behalf_of', 'payment_details', 'payment_method', 'payment_method_configuration', 'payment_method_data', 'payment_method_options', 'radar_options', 'receipt_email', 'return_url', 'setup_future_usage', 'shipping', 'statement_descriptor', 'statement_descriptor_suffix', 'transfer_data', 'transfer_group', 'use_stripe_sdk'];
const REFUND_CREATE = ['amount', 'charge', 'currency', 'customer', 'expand', 'instructions_email', 'metadata', 'origin', 'payment_intent', 'reason', 'refund_application_fee', 'reverse_transfer'];

// Test payment methods that fail (https://docs.stripe.com/testing#declined-payments).
interface Decline { code: string; decline_code: string; message: string; needsAuth?: boolean }
const DECLINES: Record<string, Decline> = {
  pm_card_chargeDeclined: { code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' },
  pm_card_visa_chargeDeclined: { code: 'card_declined', decline_code: 'generic_decline', message: 'Your card was declined.' },
  pm_card_chargeDeclinedInsufficientFunds: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  pm_card_visa_chargeDeclinedInsufficientFunds: { code: 'card_declined', decline_code: 'insufficient_funds', message: 'Your card has insufficient funds.' },
  pm_card_chargeDeclinedFraudulent: { code: 'card_declined', decline_code: 'fraudulent', message: 'Your card was declined.' },
  pm_card_visa_chargeDeclinedFraudulent: { code: 'card_declined', decline_code: 'fraudulent', message: 'Your card was declined.' },
  pm_card_chargeDeclinedLostCard: { code: 'card_declined', decline_code: 'lost_card', message: 'Your card was declined.' },
  pm_card_chargeDeclinedStolenCard: { code: 'card_declined', decline_code: 'stolen_card', message: 'Your card was declined.' },
  pm_card_chargeDeclinedExpiredCard: { code: 'expired_card', decline_code: 'expired_card', message: 'Your card has expired.' },
  pm_card_chargeDeclinedIncorrectCvc: { code: 'incorrect_cvc', decline_code: 'incorrect_cvc', message: "Your card's security code is incorrect." },
  pm_card_chargeDeclinedProcessingError: { code: 'processing_error', decline_code: 'processing_error', message: 'An error occurred while processing your card. Try again in a little bit.' },
  pm_card_authenticationRequired: { code: 'authentication_required', decline_code: 'authentication_required', message: 'Your card was declined. This transaction requires authentication.', needsAuth: true },
  pm_card_authenticationRequiredOnSetup: { code: 'authentication_required', decline_code: 'authentication_required', message: 'Your card was declined. This transaction requires authentication.', needsAuth: true },
};

// ---------- helpers ----------

const ALPHANUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomId(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALPHANUM[b % ALPHANUM.length];
  return out;
}

const randomHex = (length: number) => randomBytes(Math.ceil(length / 2)).toString('hex').slice(0, length);

const now = () => Math.floor(Date.now() / 1000);
const copy = <T>(value: T): T => structuredClone(value);

function lowerHeaders(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

function apiKeyFrom(authorization: string | undefined): string | null {
  if (!authorization) return null;
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization);
  if (bearer) return bearer[1]!;
  const basic = /^Basic\s+(\S+)$/i.exec(authorization);
  if (basic) return Buffer.from(basic[1]!, 'base64').toString('utf8').split(':')[0] || null;
  return null;
}

const maskKey = (key: string) => (key.length > 12 ? `${key.slice(0, 8)}${'*'.repeat(Math.max(0, key.length - 12))}${key.slice(-4)}` : key);

function matches(filter: RequestFilter | undefined, r: RecordedStripeRequest): boolean {
  if (filter === undefined) return true;
  if (typeof filter === 'function') return filter(r);
  if (filter instanceof RegExp) return filter.test(r.path);
  const sp = filter.indexOf(' ');
  if (sp > 0) return r.method === filter.slice(0, sp).toUpperCase() && r.path === filter.slice(sp + 1);
  return r.path === filter;
}

interface Saved {
  endpoint: string;
  fingerprint: string;
  status: number;
  headers: Record<string, string>;
  body: string;
  requestId: string;
}

interface PendingFailure extends FailureOptions {
  remaining: number;
  status: number;
}

interface Outcome {
  status: number;
  body: unknown;
  /** Saved under the idempotency key. */
  saved: boolean;
}

// ---------- the fake ----------

export async function startFakeStripe(options: FakeStripeOptions = {}): Promise<FakeStripe> {
  const acceptedKeys = options.apiKeys ?? null;
  const defaultKey = acceptedKeys?.[0] ?? 'sk_test_fake_mindbot_0000000000';
  const recorded: RecordedStripeRequest[] = [];
  const failures: PendingFailure[] = [];
  const idempotency = new Map<string, Saved>();
  const inFlight = new Set<string>();
  const customers = new Map<string, FakeCustomer>();
  const prices = new Map<string, FakePrice>();
  const sessions = new Map<string, FakeCheckoutSession>();
  const sessionExtras = new Map<string, { paymentIntentData: { metadata: Metadata; description: string | null; setup_future_usage: string | null; receipt_email: string | null } }>();
  const lineItems = new Map<string, FakeLineItem[]>();
  const paymentIntents = new Map<string, FakePaymentIntent>();
  const charges = new Map<string, FakeCharge>();
  const refunds = new Map<string, FakeRefund>();
  let seq = 0;
  const extensions: FakeStripeExtension[] = [];

  /** Any object by id, for `expand`. */
  const lookup = (id: string): unknown => {
    const own = customers.get(id) ?? sessions.get(id) ?? paymentIntents.get(id) ?? charges.get(id) ?? refunds.get(id) ?? prices.get(id);
    if (own !== undefined) return own;
    for (const ext of extensions) {
      const found = ext.lookup?.(id);
      if (found !== undefined) return found;
    }
    return undefined;
  };

  function lineItemList(sessionId: string) {
    return { object: 'list', data: copy(lineItems.get(sessionId) ?? []), has_more: false, url: `/v1/checkout/sessions/${sessionId}/line_items` };
  }

  function expand(object: Record<string, unknown>, params: Params): Record<string, unknown> {
    const paths = asArray(params.expand, 'expand') ?? [];
    const out = copy(object);
    paths.forEach((p, i) => {
      const path = reqString(p, `expand[${i}]`);
      if (out.object === 'checkout.session' && path === 'line_items') {
        out.line_items = lineItemList(String(out.id));
        return;
      }
      for (const ext of extensions) {
        const expanded = ext.expand?.(out, path);
        if (expanded === OMIT) return;
        if (expanded !== undefined) {
          out[path] = expanded;
          return;
        }
      }
      if (path.includes('.') || !Object.hasOwn(out, path)) throw invalid(`This property cannot be expanded (${path}).`, `expand[${i}]`);
      const value = out[path];
      if (typeof value === 'string') {
        const target = lookup(value);
        if (target !== undefined) out[path] = copy(target);
      } else if (value !== null && typeof value !== 'object') {
        throw invalid(`This property cannot be expanded (${path}).`, `expand[${i}]`);
      }
    });
    return out;
  }

  function requireCustomer(id: string | undefined, param: string): string | null {
    if (id === undefined) return null;
    if (!customers.has(id)) throw noSuch('customer', id, param);
    return id;
  }

  function createCustomer(fields: Partial<FakeCustomer>): FakeCustomer {
    const customer: FakeCustomer = {
      id: `cus_${randomId(14)}`, object: 'customer', address: null, balance: 0, created: now(), currency: null, default_source: null,
      delinquent: false, description: null, discount: null, email: null, invoice_prefix: randomHex(8).toUpperCase(),
      invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null }, livemode: false,
      metadata: {}, name: null, next_invoice_sequence: 1, phone: null, preferred_locales: [], shipping: null, tax_exempt: 'none',
      test_clock: null, ...fields,
    };
    customers.set(customer.id, customer);
    return customer;
  }

  function createCharge(pi: FakePaymentIntent, decline: Decline | null): FakeCharge {
    const charge: FakeCharge = {
      id: `ch_${randomId(24)}`, object: 'charge', amount: pi.amount, amount_captured: decline ? 0 : pi.amount, amount_refunded: 0,
      captured: !decline, created: now(), currency: pi.currency, customer: pi.customer, description: pi.description,
      failure_code: decline ? decline.code : null, failure_message: decline ? decline.message : null, livemode: false,
      metadata: { ...pi.metadata },
      outcome: decline
        ? { type: 'issuer_declined', seller_message: 'The bank did not return any further details with this decline.', reason: decline.decline_code }
        : { type: 'authorized', seller_message: 'Payment complete.', reason: null },
      paid: !decline, payment_intent: pi.id, payment_method: pi.payment_method, refunded: false, status: decline ? 'failed' : 'succeeded',
    };
    charges.set(charge.id, charge);
    return charge;
  }

  function newPaymentIntent(fields: Pick<FakePaymentIntent, 'amount' | 'currency'> & Partial<FakePaymentIntent>): FakePaymentIntent {
    const id = `pi_${randomId(24)}`;
    const pi: FakePaymentIntent = {
      id, object: 'payment_intent', amount_received: 0, capture_method: 'automatic_async', client_secret: `${id}_secret_${randomId(25)}`,
      confirmation_method: 'automatic', created: now(), customer: null, description: null, last_payment_error: null, latest_charge: null,
      livemode: false, metadata: {}, next_action: null, payment_method: null, receipt_email: null, setup_future_usage: null,
      status: 'requires_payment_method', ...fields,
    };
    paymentIntents.set(pi.id, pi);
    return pi;
  }

  // ----- endpoints -----

  const createCustomerEndpoint: Handler = (p) => {
    checkKeys(p, CUSTOMER_CREATE, '');
    const balance = asInt(p.balance, 'balance');
    return createCustomer({
      email: asString(p.email, 'email') ?? null,
      name: asString(p.name, 'name') ?? null,
      description: asString(p.description, 'description') ?? null,
      phone: asString(p.phone, 'phone') ?? null,
      balance: balance ?? 0,
      metadata: asMetadata(p.metadata),
    });
  };

  const createSession: Handler = (p) => {
    checkKeys(p, SESSION_CREATE, '');
    const mode = asEnum(p.mode, 'mode', ['payment', 'setup', 'subscription'] as const);
    if (!mode) throw missing('mode');
    const successUrl = asUrl(p.success_url, 'success_url');
    const uiMode = asString(p.ui_mode, 'ui_mode') ?? 'hosted_page';
    if (successUrl === undefined && uiMode === 'hosted_page') throw missing('success_url');
    const cancelUrl = asUrl(p.cancel_url, 'cancel_url') ?? null;
    const customer = requireCustomer(asString(p.customer, 'customer'), 'customer');
    const customerCreation = asEnum(p.customer_creation, 'customer_creation', ['always', 'if_required'] as const) ?? null;
    const customerEmail = asString(p.customer_email, 'customer_email') ?? null;
    if (customer && customerCreation) throw invalid('You may only specify one of these parameters: customer, customer_creation.', 'customer_creation');
    if (customer && customerEmail) throw invalid('You may only specify one of these parameters: customer, customer_email.', 'customer_email');
    if (customerCreation && mode === 'subscription') throw invalid('`customer_creation` can only be used in `payment` and `setup` mode.', 'customer_creation');
    const clientReferenceId = asString(p.client_reference_id, 'client_reference_id') ?? null;
    if (clientReferenceId && clientReferenceId.length > 200) throw invalid('client_reference_id must be at most 200 characters', 'client_reference_id');
    const metadata = asMetadata(p.metadata);
    const created = now();
    const expiresAt = asInt(p.expires_at, 'expires_at') ?? created + 24 * 3600;
    if (expiresAt < created + 30 * 60 - 5) throw invalid('The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.', 'expires_at');
    if (expiresAt > created + 24 * 3600 + 5) throw invalid('The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.', 'expires_at');

    const pidRaw = asObject(p.payment_intent_data, 'payment_intent_data');
    if (pidRaw && mode !== 'payment') throw invalid('You can only specify `payment_intent_data` in `payment` mode.', 'payment_intent_data');
    if (pidRaw) checkKeys(pidRaw, PAYMENT_INTENT_DATA, 'payment_intent_data');
    const pidCapture = pidRaw ? asEnum(pidRaw.capture_method, 'payment_intent_data[capture_method]', ['automatic', 'automatic_async', 'manual'] as const) : undefined;
    if (pidCapture === 'manual') throw invalid('fake-stripe: payment_intent_data[capture_method]=manual is not implemented', 'payment_intent_data[capture_method]');
    const paymentIntentData = {
      metadata: asMetadata(pidRaw?.metadata, 'payment_intent_data[metadata]'),
      description: asString(pidRaw?.description, 'payment_intent_data[description]') ?? null,
      setup_future_usage: (pidRaw ? asEnum(pidRaw.setup_future_usage, 'payment_intent_data[setup_future_usage]', ['on_session', 'off_session'] as const) : undefined) ?? null,
      receipt_email: asString(pidRaw?.receipt_email, 'payment_intent_data[receipt_email]') ?? null,
    };

    const rawItems = asArray(p.line_items, 'line_items');
    if (mode !== 'setup' && (!rawItems || rawItems.length === 0)) throw missing('line_items');
    const items: FakeLineItem[] = [];
    (rawItems ?? []).forEach((raw, i) => {
      const name = `line_items[${i}]`;
      const item = asObject(raw, name);
      if (!item) throw missing(name);
      checkKeys(item, LINE_ITEM, name);
      const quantity = asInt(item.quantity, `${name}[quantity]`);
      if (quantity === undefined) throw missing(`${name}[quantity]`);
      if (quantity < 1) throw invalid(`This value must be greater than or equal to 1.`, `${name}[quantity]`, 'parameter_invalid_integer');
      const priceId = asString(item.price, `${name}[price]`);
      const priceData = asObject(item.price_data, `${name}[price_data]`);
      if (priceId && priceData) throw invalid('You may only specify one of these parameters: price, price_data.', `${name}[price_data]`);
      let price: FakePrice;
      let description: string;
      if (priceId) {
        const found = prices.get(priceId);
        if (!found) throw noSuch('price', priceId, `${name}[price]`);
        price = copy(found);
        description = found.product;
      } else if (priceData) {
        const pd = `${name}[price_data]`;
        checkKeys(priceData, PRICE_DATA, pd);
        const currency = asCurrency(priceData.currency, `${pd}[currency]`);
        const unitAmount = asInt(priceData.unit_amount, `${pd}[unit_amount]`) ?? (() => {
          const decimal = asString(priceData.unit_amount_decimal, `${pd}[unit_amount_decimal]`);
          if (decimal === undefined) throw missing(`${pd}[unit_amount]`);
          if (!/^\d+(\.\d+)?$/.test(decimal)) throw invalid(`Invalid decimal: ${decimal}`, `${pd}[unit_amount_decimal]`);
          return Math.round(Number(decimal));
        })();
        if (unitAmount < 0) throw invalid('This value must be greater than or equal to 0.', `${pd}[unit_amount]`, 'parameter_invalid_integer');
        const product = asString(priceData.product, `${pd}[product]`);
        const productData = asObject(priceData.product_data, `${pd}[product_data]`);
        if (product && productData) throw invalid('You may only specify one of these parameters: product, product_data.', `${pd}[product_data]`);
        if (!product && !productData) throw missing(`${pd}[product_data]`);
        if (productData) {
          checkKeys(productData, PRODUCT_DATA, `${pd}[product_data]`);
          description = reqString(productData.name, `${pd}[product_data][name]`);
          asMetadata(productData.metadata, `${pd}[product_data][metadata]`);
        } else {
          description = product!;
        }
        const recurringRaw = asObject(priceData.recurring, `${pd}[recurring]`);
        const interval = recurringRaw ? asEnum(recurringRaw.interval, `${pd}[recurring][interval]`, ['day', 'week', 'month', 'year'] as const) : undefined;
        if (recurringRaw && !interval) throw missing(`${pd}[recurring][interval]`);
        price = {
          id: `price_${randomId(24)}`, object: 'price', active: false, currency, unit_amount: unitAmount,
          product: product ?? `prod_${randomId(14)}`,
          recurring: interval ? { interval, interval_count: asInt(recurringRaw!.interval_count, `${pd}[recurring][interval_count]`) ?? 1 } : null,
          type: interval ? 'recurring' : 'one_time', livemode: false, metadata: {},
        };
      } else {
        throw invalid('You must specify either `price` or `price_data` for each line item.', `${name}[price]`);
      }
      items.push({
        id: `li_${randomId(24)}`, object: 'item', amount_subtotal: price.unit_amount * quantity, amount_total: price.unit_amount * quantity,
        currency: price.currency, description, quantity, price, metadata: asMetadata(item.metadata, `${name}[metadata]`),
      });
    });
    if (mode === 'payment' && items.some((it) => it.price.recurring)) {
      throw invalid('You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.', 'line_items');
    }
    if (mode === 'subscription' && !items.some((it) => it.price.recurring)) {
      throw invalid('You must provide at least one recurring price in `subscription` mode when using prices.', 'line_items');
    }
    const currencies = new Set(items.map((it) => it.currency));
    if (currencies.size > 1) throw invalid('All line items must use the same currency.', 'line_items');
    const currency = items[0]?.currency ?? asString(p.currency, 'currency')?.toLowerCase() ?? null;
    const total = mode === 'setup' ? null : items.reduce((sum, it) => sum + it.amount_total, 0);
    const minimum = currency ? MINIMUM_AMOUNT[currency] : undefined;
    if (mode === 'payment' && total !== null && total > 0 && minimum && total < minimum[0]) {
      throw invalid(`The Checkout Session's total amount due must add up to at least ${minimum[1]}`, 'line_items', 'amount_too_small');
    }

    const id = `cs_test_a1${randomId(56)}`;
    const session: FakeCheckoutSession = {
      id, object: 'checkout.session', amount_subtotal: total, amount_total: total, cancel_url: cancelUrl, client_reference_id: clientReferenceId,
      created, currency, customer, customer_creation: customer ? null : customerCreation ?? (mode === 'subscription' ? null : 'if_required'),
      customer_details: customerEmail ? { email: customerEmail } : null, customer_email: customerEmail, expires_at: expiresAt, livemode: false,
      metadata, mode, payment_intent: null, payment_status: total === 0 ? 'no_payment_required' : 'unpaid', status: 'open',
      success_url: successUrl ?? null, ui_mode: uiMode, url: uiMode === 'hosted_page' ? `https://checkout.stripe.test/c/pay/${id}` : null,
    };
    sessions.set(id, session);
    sessionExtras.set(id, { paymentIntentData });
    lineItems.set(id, items);
    return session;
  };

  const getOrThrow = <T>(map: Map<string, T>, kind: string) => (id: string): T => {
    const found = map.get(id);
    if (!found) throw noSuch(kind, id, 'id', 404);
    return found;
  };
  const getSession = getOrThrow(sessions, 'checkout.session');
  const getPaymentIntent = getOrThrow(paymentIntents, 'payment_intent');

  function expireSession(id: string): FakeCheckoutSession {
    const session = getSession(id);
    if (session.status !== 'open') throw invalid(`Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status}".`, undefined, 'checkout_session_unexpected_state');
    session.status = 'expired';
    session.url = null;
    return session;
  }

  const createPaymentIntent: Handler = (p) => {
    checkKeys(p, PAYMENT_INTENT_CREATE, '');
    const amount = asInt(p.amount, 'amount');
    if (amount === undefined) throw missing('amount');
    const currency = asCurrency(p.currency, 'currency');
    if (amount < 1) throw invalid('This value must be greater than or equal to 1.', 'amount', 'parameter_invalid_integer');
    const minimum = MINIMUM_AMOUNT[currency];
    if (minimum && amount < minimum[0]) throw invalid(`Amount must be at least ${minimum[1]}`, 'amount', 'amount_too_small');
    const customer = requireCustomer(asString(p.customer, 'customer'), 'customer');
    const paymentMethod = asString(p.payment_method, 'payment_method') ?? null;
    if (paymentMethod && !paymentMethod.startsWith('pm_')) throw noSuch('PaymentMethod', paymentMethod, 'payment_method');
    const confirm = asBool(p.confirm, 'confirm') ?? false;
    const offSessionRaw = asString(p.off_session, 'off_session');
    let offSession = false;
    if (offSessionRaw !== undefined) {
      if (!['true', 'false', 'one_off', 'recurring'].includes(offSessionRaw)) throw invalid(`Invalid off_session: must be one of true, false, one_off, or recurring`, 'off_session');
      offSession = offSessionRaw !== 'false';
      if (!confirm) throw invalid('You can only use `off_session` when `confirm` is set to `true`.', 'off_session');
    }
    const setupFutureUsage = asEnum(p.setup_future_usage, 'setup_future_usage', ['on_session', 'off_session'] as const) ?? null;
    const captureMethod = asEnum(p.capture_method, 'capture_method', ['automatic', 'automatic_async', 'manual'] as const) ?? 'automatic_async';
    if (captureMethod === 'manual') throw invalid('fake-stripe: capture_method=manual is not implemented', 'capture_method');
    const metadata = asMetadata(p.metadata);
    if (confirm && !paymentMethod) {
      throw invalid("You cannot confirm this PaymentIntent because it's missing a payment method. To confirm the PaymentIntent with a payment method, pass `payment_method`.", 'payment_method', 'payment_intent_unexpected_state');
    }
    const pi = newPaymentIntent({
      amount, currency, customer, payment_method: paymentMethod, metadata, capture_method: captureMethod, setup_future_usage: setupFutureUsage,
      description: asString(p.description, 'description') ?? null, receipt_email: asString(p.receipt_email, 'receipt_email') ?? null,
      status: paymentMethod ? 'requires_confirmation' : 'requires_payment_method',
    });
    if (!confirm || !paymentMethod) return pi;

    const decline = DECLINES[paymentMethod] ?? null;
    if (decline?.needsAuth && !offSession) {
      pi.status = 'requires_action';
      pi.next_action = { type: 'use_stripe_sdk' };
      return pi;
    }
    if (decline) {
      const charge = decline.needsAuth ? null : createCharge(pi, decline);
      const error: StripeErrorBody = {
        type: 'card_error', code: decline.code, decline_code: decline.decline_code, message: decline.message, doc_url: docUrl(decline.code),
        payment_method: { id: paymentMethod, object: 'payment_method', type: 'card' },
      };
      if (charge) error.charge = charge.id;
      pi.status = 'requires_payment_method';
      pi.last_payment_error = copy(error);
      pi.latest_charge = charge?.id ?? null;
      pi.payment_method = null;
      error.payment_intent = copy(pi);
      throw new ApiError(402, error, true);
    }
    const charge = createCharge(pi, null);
    pi.status = 'succeeded';
    pi.amount_received = amount;
    pi.latest_charge = charge.id;
    return pi;
  };

  const createRefund: Handler = (p) => {
    checkKeys(p, REFUND_CREATE, '');
    const piId = asString(p.payment_intent, 'payment_intent');
    const chargeId = asString(p.charge, 'charge');
    if (!piId && !chargeId) throw invalid('One of the following params should be provided for this request: payment_intent or charge.', 'payment_intent', 'parameter_missing');
    let charge: FakeCharge | undefined;
    if (chargeId) {
      charge = charges.get(chargeId);
      if (!charge) throw noSuch('charge', chargeId, 'charge');
      if (piId && charge.payment_intent !== piId) throw invalid(`The charge ${chargeId} does not belong to the PaymentIntent ${piId}.`, 'charge');
    } else {
      const pi = paymentIntents.get(piId!);
      if (!pi) throw noSuch('payment_intent', piId!, 'payment_intent');
      charge = pi.latest_charge ? charges.get(pi.latest_charge) : undefined;
      if (!charge || pi.status !== 'succeeded') throw invalid(`This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, 'payment_intent', 'charge_not_refundable');
    }
    if (charge.status !== 'succeeded') throw invalid(`Charge ${charge.id} has not succeeded and cannot be refunded.`, 'charge', 'charge_not_refundable');
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining <= 0) throw invalid(`Charge ${charge.id} has already been refunded.`, 'charge', 'charge_already_refunded');
    const amount = asInt(p.amount, 'amount') ?? remaining;
    if (amount < 1) throw invalid('This value must be greater than or equal to 1.', 'amount', 'parameter_invalid_integer');
    if (amount > remaining) {
      const fmt = (n: number) => `${(n / 100).toFixed(2)} ${charge!.currency}`;
      throw invalid(`Refund amount (${fmt(amount)}) is greater than unrefunded amount on charge (${fmt(remaining)})`, 'amount', 'amount_too_large');
    }
    const reason = asEnum(p.reason, 'reason', ['duplicate', 'fraudulent', 'requested_by_customer'] as const) ?? null;
    const refund: FakeRefund = {
      id: `re_${randomId(24)}`, object: 'refund', amount, charge: charge.id, created: now(), currency: charge.currency,
      metadata: asMetadata(p.metadata), payment_intent: charge.payment_intent, reason, status: 'succeeded',
    };
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded >= charge.amount;
    refunds.set(refund.id, refund);
    return refund;
  };

  const onlyExpand = (p: Params) => checkKeys(p, EXPANDABLE, '');

  // GET /v1/refunds?charge=…|payment_intent=…: newest first, one page (the fake never has more than a page).
  const listRefunds = (p: Params) => {
    const matching = [...refunds.values()]
      .filter((r) => (p.charge === undefined || r.charge === p.charge) && (p.payment_intent === undefined || r.payment_intent === p.payment_intent))
      .reverse();
    return { object: 'list', data: copy(matching), has_more: false, url: '/v1/refunds' };
  };

  const coreRoutes: Route[] = [
    { method: 'POST', pattern: /^\/v1\/customers$/, handler: createCustomerEndpoint },
    { method: 'GET', pattern: /^\/v1\/customers\/([^/]+)$/, handler: (p, c) => (onlyExpand(p), getOrThrow(customers, 'customer')(c.id)) },
    { method: 'POST', pattern: /^\/v1\/checkout\/sessions$/, handler: createSession },
    { method: 'GET', pattern: /^\/v1\/checkout\/sessions\/([^/]+)$/, handler: (p, c) => (onlyExpand(p), getSession(c.id)) },
    { method: 'GET', pattern: /^\/v1\/checkout\/sessions\/([^/]+)\/line_items$/, handler: (p, c) => (checkKeys(p, ['expand', 'limit', 'starting_after', 'ending_before'], ''), getSession(c.id), lineItemList(c.id)) },
    { method: 'POST', pattern: /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/, handler: (p, c) => (onlyExpand(p), expireSession(c.id)) },
    { method: 'POST', pattern: /^\/v1\/payment_intents$/, handler: createPaymentIntent },
    { method: 'GET', pattern: /^\/v1\/payment_intents\/([^/]+)$/, handler: (p, c) => (checkKeys(p, ['expand', 'client_secret'], ''), getPaymentIntent(c.id)) },
    { method: 'POST', pattern: /^\/v1\/refunds$/, handler: createRefund },
    { method: 'GET', pattern: /^\/v1\/refunds$/, handler: (p) => (checkKeys(p, ['charge', 'payment_intent', 'created', 'expand', 'limit', 'starting_after', 'ending_before'], ''), listRefunds(p)) },
    { method: 'GET', pattern: /^\/v1\/refunds\/([^/]+)$/, handler: (p, c) => (onlyExpand(p), getOrThrow(refunds, 'refund')(c.id)) },
    { method: 'GET', pattern: /^\/v1\/charges\/([^/]+)$/, handler: (p, c) => (onlyExpand(p), getOrThrow(charges, 'charge')(c.id)) },
  ];

  // ----- HTTP -----

  const readBody = (req: http.IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  function errorOutcome(e: unknown): Outcome {
    if (e instanceof ApiError) return { status: e.status, body: { error: e.body }, saved: e.saved };
    if (e instanceof FormDecodeError) return { status: 400, body: { error: { type: 'invalid_request_error', message: e.message, param: e.param } }, saved: false };
    const message = e instanceof Error ? e.message : String(e);
    return { status: 500, body: { error: { type: 'api_error', message: `fake-stripe internal error: ${message}` } }, saved: false };
  }

  function takeFailure(method: string, path: string, when: 'before' | 'after'): PendingFailure | null {
    const probe = { method, path } as RecordedStripeRequest;
    const index = failures.findIndex((f) => (f.when ?? 'before') === when && matches(f.path, probe));
    if (index < 0) return null;
    const failure = failures[index]!;
    failure.remaining -= 1;
    if (failure.remaining <= 0) failures.splice(index, 1);
    return failure;
  }

  function failureBody(failure: PendingFailure): Record<string, unknown> {
    const s = failure.status;
    const base: StripeErrorBody =
      s === 409 ? { type: 'invalid_request_error', code: 'lock_timeout', message: 'This object cannot be accessed right now because another API request or Stripe process is currently accessing it. If you see this error intermittently, retry the request.' }
        : s === 429 ? { type: 'invalid_request_error', code: 'rate_limit', message: 'Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.' }
          : s >= 500 ? { type: 'api_error', message: 'An unknown error occurred' }
            : { type: 'invalid_request_error', message: `Injected failure (${s})` };
    return { error: { ...base, ...failure.error } };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const rawBody = await readBody(req);
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname;
    const headers = lowerHeaders(req);
    const apiKey = apiKeyFrom(headers.authorization);
    const idempotencyKey = method === 'POST' ? headers['idempotency-key'] ?? null : null;
    const stripeVersion = headers['stripe-version'] ?? null;
    const requestId = `req_${randomId(14)}`;
    let query: Params = {};
    let params: Params = {};
    let decodeError: unknown = null;
    try {
      query = decodeStripeForm(url.search.slice(1));
      params = method === 'POST' ? decodeStripeForm(rawBody) : query;
    } catch (e) {
      decodeError = e;
    }
    const record: RecordedStripeRequest = {
      seq: ++seq, method, path, query, params, rawBody, headers, apiKey, idempotencyKey, stripeVersion,
      stripeAccount: headers['stripe-account'] ?? null, status: 0, requestId, replayed: false, injectedFailure: false, response: undefined,
    };
    recorded.push(record);

    const send = (status: number, body: string, extra: Record<string, string> = {}) => {
      record.status = status;
      try {
        record.response = JSON.parse(body);
      } catch {
        record.response = body;
      }
      const out: Record<string, string> = {
        'Content-Type': 'application/json', 'Request-Id': requestId, 'Stripe-Version': stripeVersion ?? Stripe.API_VERSION,
        'Content-Length': String(Buffer.byteLength(body)), ...extra,
      };
      if (idempotencyKey !== null) out['Idempotency-Key'] = idempotencyKey;
      res.writeHead(status, out);
      res.end(body);
    };
    const sendJson = (status: number, body: unknown, extra?: Record<string, string>) => send(status, JSON.stringify(body, null, 2), extra);
    const sendError = (o: Outcome) => {
      const err = (o.body as { error: StripeErrorBody }).error;
      if (err.type !== 'idempotency_error') err.request_log_url = `https://dashboard.stripe.com/test/logs/${requestId}`;
      sendJson(o.status, o.body);
    };
    const fail = (failure: PendingFailure) => {
      record.injectedFailure = true;
      if (failure.dropConnection) {
        record.status = 0;
        req.socket.destroy();
        return;
      }
      sendJson(failure.status, failureBody(failure), failure.headers);
    };

    // 1. authentication
    if (!apiKey) {
      return sendError(errorOutcome(invalid("You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.", undefined, undefined, 401)));
    }
    const keyOk = acceptedKeys ? acceptedKeys.includes(apiKey) : /^(sk|rk)_test_\w+$/.test(apiKey);
    if (!keyOk) return sendError(errorOutcome(invalid(`Invalid API Key provided: ${maskKey(apiKey)}`, undefined, undefined, 401)));

    // 2. injected failures in front of the API
    const before = takeFailure(method, path, 'before');
    if (before) return fail(before);

    // 3. routing (extensions first; a handler answering PASS hands the request to the next matching route)
    const handlers: { handler: Handler; id: string }[] = [];
    for (const route of [...extensions.flatMap((ext) => ext.routes ?? []), ...coreRoutes]) {
      const m = route.pattern.exec(path);
      if (m && route.method === method) handlers.push({ handler: route.handler, id: decodeURIComponent(m[1] ?? '') });
    }
    if (handlers.length === 0) return sendError(errorOutcome(invalid(`Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`, undefined, undefined, 404)));
    if (decodeError) return sendError(errorOutcome(decodeError));

    // 4. idempotency
    const endpoint = `${method} ${path}`;
    const fingerprint = canonical(params);
    const scopeKey = idempotencyKey !== null ? `${apiKey}\n${idempotencyKey}` : null;
    if (idempotencyKey !== null && idempotencyKey.length > 255) {
      return sendError(errorOutcome(invalid('Invalid Idempotency-Key: keys can be at most 255 characters long.', undefined, 'idempotency_key_too_long')));
    }
    if (scopeKey !== null) {
      const saved = idempotency.get(scopeKey);
      if (saved) {
        if (saved.endpoint !== endpoint) {
          return sendJson(400, { error: { type: 'idempotency_error', message: `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${saved.endpoint}' vs '${endpoint}'). Try using a key other than '${idempotencyKey}' if you meant to execute a different request.` } });
        }
        if (saved.fingerprint !== fingerprint) {
          return sendJson(400, { error: { type: 'idempotency_error', message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.` } });
        }
        record.replayed = true;
        const after = takeFailure(method, path, 'after');
        if (after) return fail(after);
        return send(saved.status, saved.body, { ...saved.headers, 'Idempotent-Replayed': 'true', 'Original-Request': saved.requestId });
      }
      if (inFlight.has(scopeKey)) {
        return sendJson(409, { error: { type: 'idempotency_error', message: `There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ${idempotencyKey}. Please try again later.` } });
      }
      inFlight.add(scopeKey);
    }

    // 5. execution
    let outcome: Outcome;
    try {
      if (fake.latencyMs > 0) await new Promise((r) => setTimeout(r, fake.latencyMs));
      let result: unknown = PASS;
      for (const { handler, id } of handlers) {
        result = handler(params, { id, apiVersion: stripeVersion ?? Stripe.API_VERSION, requestId, idempotencyKey });
        if (result !== PASS) break;
      }
      if (result === PASS) throw invalid(`Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`, undefined, undefined, 404);
      const body = result && typeof result === 'object' && !Array.isArray(result) && (result as { object?: unknown }).object !== 'list'
        ? expand(result as Record<string, unknown>, params)
        : copy(result);
      outcome = { status: 200, body, saved: true };
    } catch (e) {
      outcome = errorOutcome(e);
    } finally {
      if (scopeKey !== null) inFlight.delete(scopeKey);
    }
    if (outcome.status !== 200) {
      const err = (outcome.body as { error: StripeErrorBody }).error;
      err.request_log_url = `https://dashboard.stripe.com/test/logs/${requestId}`;
    }
    const body = JSON.stringify(outcome.body, null, 2);
    if (scopeKey !== null && outcome.saved) {
      idempotency.set(scopeKey, { endpoint, fingerprint, status: outcome.status, headers: { 'Stripe-Version': stripeVersion ?? Stripe.API_VERSION }, body, requestId });
    }
    const after = takeFailure(method, path, 'after');
    if (after) return fail(after);
    send(outcome.status, body);
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'api_error', message: `fake-stripe crashed: ${e instanceof Error ? e.message : String(e)}` } }));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const fake: FakeStripe = {
    port,
    url: `http://127.0.0.1:${port}`,
    apiKey: defaultKey,
    latencyMs: options.latencyMs ?? 0,
    client(config = {}, apiKey = defaultKey) {
      return new Stripe(apiKey, { host: '127.0.0.1', port, protocol: 'http', maxNetworkRetries: 0, telemetry: false, timeout: 5000, ...config });
    },
    requests: (filter) => recorded.filter((r) => matches(filter, r)),
    lastRequest(filter) {
      for (let i = recorded.length - 1; i >= 0; i--) if (matches(filter, recorded[i]!)) return recorded[i];
      return undefined;
    },
    clearRequests() {
      recorded.length = 0;
    },
    failNext(n, status = 500, failureOptions = {}) {
      if (!Number.isInteger(n) || n < 1) throw new Error('failNext: n must be a positive integer');
      failures.push({ ...failureOptions, remaining: n, status });
    },
    customers,
    prices,
    checkoutSessions: sessions,
    paymentIntents,
    charges,
    refunds,
    lineItems,
    addPrice(input) {
      const price: FakePrice = {
        id: input.id ?? `price_${randomId(24)}`, object: 'price', active: true, currency: input.currency.toLowerCase(), unit_amount: input.unit_amount,
        product: input.product ?? `prod_${randomId(14)}`,
        recurring: input.recurring ? { interval: input.recurring.interval, interval_count: input.recurring.interval_count ?? 1 } : null,
        type: input.recurring ? 'recurring' : 'one_time', livemode: false, metadata: {},
      };
      prices.set(price.id, price);
      return copy(price);
    },
    completeCheckoutSession(id, opts = {}) {
      const session = sessions.get(id);
      if (!session) throw new Error(`fake-stripe: no checkout session ${id}`);
      if (session.status !== 'open') throw new Error(`fake-stripe: checkout session ${id} is ${session.status}`);
      if (session.mode !== 'payment') throw new Error('fake-stripe: completeCheckoutSession supports mode=payment only');
      const extras = sessionExtras.get(id)!;
      const email = opts.email ?? session.customer_email ?? (session.customer ? customers.get(session.customer)?.email ?? null : null) ?? 'buyer@example.test';
      if (!session.customer && session.customer_creation === 'always') session.customer = createCustomer({ email }).id;
      session.customer_details = { email };
      session.status = 'complete';
      session.url = null;
      if (session.payment_status === 'no_payment_required') return { session: copy(session), paymentIntent: null, charge: null };
      const pi = newPaymentIntent({
        amount: session.amount_total ?? 0, currency: session.currency ?? 'usd', customer: session.customer, metadata: { ...extras.paymentIntentData.metadata },
        description: extras.paymentIntentData.description, receipt_email: extras.paymentIntentData.receipt_email,
        setup_future_usage: extras.paymentIntentData.setup_future_usage, payment_method: opts.paymentMethod ?? `pm_${randomId(24)}`,
      });
      session.payment_intent = pi.id;
      let charge: FakeCharge | null = null;
      if ((opts.paymentStatus ?? 'paid') === 'paid') {
        charge = createCharge(pi, null);
        pi.status = 'succeeded';
        pi.amount_received = pi.amount;
        pi.latest_charge = charge.id;
        session.payment_status = 'paid';
      } else {
        pi.status = 'processing';
        session.payment_status = 'unpaid';
      }
      return { session: copy(session), paymentIntent: copy(pi), charge: charge && copy(charge) };
    },
    expireCheckoutSession(id) {
      try {
        return copy(expireSession(id));
      } catch (e) {
        throw e instanceof ApiError ? new Error(`fake-stripe: ${e.body.message}`) : e;
      }
    },
    event(type, object, extra = {}) {
      const ev: FakeEvent<typeof object> = {
        id: extra.id ?? `evt_${randomId(24)}`, object: 'event', api_version: Stripe.API_VERSION, created: extra.created ?? now(),
        data: { object: copy(object) }, livemode: false, pending_webhooks: 1, request: extra.request ?? { id: null, idempotency_key: null }, type,
      };
      if (extra.previous_attributes) ev.data.previous_attributes = copy(extra.previous_attributes);
      return ev;
    },
    signedEvent(type, object, secret, extra) {
      const event = fake.event(type, object, extra);
      const payload = JSON.stringify(event, null, 2);
      const signature = Stripe.webhooks.generateTestHeaderString({ payload, secret });
      return { event, payload, signature };
    },
    reset() {
      recorded.length = 0;
      failures.length = 0;
      idempotency.clear();
      for (const m of [customers, prices, sessions, sessionExtras, lineItems, paymentIntents, charges, refunds]) m.clear();
      for (const ext of extensions) ext.reset?.();
      seq = 0;
    },
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()));
        server.closeAllConnections();
      });
    },
  };
  for (const factory of options.extensions ?? []) {
    extensions.push(factory({ fake, customers, prices, checkoutSessions: sessions, lineItems, createCustomer }));
  }
  return fake;
}

// ---------- for extensions (fake-stripe-billing.ts): the same error bodies and parameter readers ----------

export {
  ApiError, invalid, missing, unknownParam, noSuch, docUrl, sub, checkKeys, asObject, asArray, asString, reqString, asInt, asBool, asEnum,
  asUrl, asCurrency, asMetadata, randomId, copy, matches, DECLINES, MINIMUM_AMOUNT, SESSION_CREATE, LINE_ITEM,
};
export type { Decline };

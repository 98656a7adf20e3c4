import {
  ApiError, DECLINES, LINE_ITEM, MINIMUM_AMOUNT, PASS, SESSION_CREATE, asArray, asBool, asEnum, asInt, asMetadata, asObject, asString, asUrl,
  checkKeys, copy, docUrl, invalid, missing, noSuch, randomId, reqString, startFakeStripe,
  type Decline, type FakeCustomer, type FakeEvent, type FakeStripe, type FakeStripeCore, type FakeStripeExtension, type FakeStripeOptions,
  type Handler, type Metadata, type ParamValue, type Params, type Route,
} from './fake-stripe.ts';
import { createCatalog } from './fake-stripe-billing-catalog.ts';
import { dec, periodBoundary, priceCharge, roundMinor, type Dec, type Interval } from './fake-stripe-billing-math.ts';
import type {
  BillingInvoice, BillingInvoiceLine, BillingMeter, BillingPlan, BillingPortalSession, BillingPrice, BillingProduct, BillingReason, BillingSubscription,
  BillingSubscriptionItem, RecordedMeterEvent, WebhookDelivery, WebhookEndpoint,
} from './fake-stripe-billing-objects.ts';
import {
  DAY, PAGINATION, changed, getOr404, isoDate, mergeMetadata, money, newestFirst, notImplemented, paginate, refuseUnmodelled, requireCustomer,
} from './fake-stripe-billing-shared.ts';
import { postEvents, type DeliveryOptions } from './fake-stripe-billing-webhooks.ts';

export type * from './fake-stripe-billing-objects.ts';
export type { DeliveryOptions } from './fake-stripe-billing-webhooks.ts';

// Stripe Billing on the fake Stripe API (tests/helpers/fake-stripe.ts), for the real `stripe` client: Billing
// Meters and meter events, products and prices (metered, tiered, lookup keys), Checkout in subscription mode,
// subscriptions, invoices and the billing portal, with every object carrying the keys of Stripe's published
// fixture (tests/fixtures/stripe-billing/). Time is a test clock the test moves (`billing.advanceTo`); moving it
// past a period's end does what Stripe does there:
//   at the period end  customer.subscription.updated (the new period) and invoice.created (a draft holding the
//                      period's metered usage, the next period's licensed fees and pending prorations);
//                      after cancel_at_period_end instead a final usage invoice and customer.subscription.deleted;
//   one hour later     (Stripe's finalization grace, during which late usage for the period still counts)
//                      invoice.finalized, then the automatic charge: invoice.paid + invoice.payment_succeeded,
//                      or invoice.payment_failed and the subscription past_due (customer.subscription.updated).
// Events are kept in order and posted, signed, to a webhook endpoint (`billing.deliver`, or as the clock runs
// when an endpoint is set). Behaviour this fake takes from Stripe's documents and observed answers:
//   - a meter event whose identifier was seen within the last 24 hours (the window Stripe guarantees) is
//     refused with 400 "An event already exists with identifier <id>." (no error code); everything else about
//     an event (no meter, unknown customer, bad value, timestamp out of range) is validated asynchronously by
//     Stripe: the event is accepted and then counted nowhere (see billing.meterEventErrors());
//   - metered usage is billed in arrears, licensed fees in advance; amounts are exact decimals rounded half-up
//     once per invoice line; changing a metered item's price mid-period in billing_mode=flexible (the default of
//     this API version) bills the usage so far at the old price as an invoice item (classic: drops it);
//   - an amount due under the currency's minimum charge is not charged: the invoice is marked paid and the
//     amount is carried on the customer's balance to the next invoice.

// ---------- the test's API ----------

export interface AdvanceResult {
  /** The test clock afterwards. */
  now: number;
  /** Events that happened on the way, in order. */
  events: FakeEvent[];
  /** Deliveries made on the way (only when a webhook endpoint is set or given). */
  deliveries: WebhookDelivery[];
}

export interface ClosePeriodResult extends AdvanceResult {
  /** The invoice for the period that closed (usage of the period, and the next period's fees when it renews). */
  invoice: BillingInvoice;
  subscription: BillingSubscription;
}

export interface CompleteSubscriptionCheckoutOptions {
  /** The card the buyer enters (default pm_card_visa). A declining test card throws: the session stays open. */
  paymentMethod?: string;
  /** The buyer's e-mail when the session names no customer. */
  email?: string;
}

export interface FakeBillingOptions {
  /** Unix seconds the test clock starts at (default: now). */
  startTime?: number;
  /** Seconds an automatic invoice stays a draft before it is finalized and charged (default 3600, Stripe's default grace period). */
  finalizationGraceSeconds?: number;
  /** How long a meter-event identifier is remembered (default 24 h, the window Stripe guarantees). */
  identifierWindowSeconds?: number;
  /** Days after a failed automatic charge on which it is retried (default none: the invoice stays open until paid). */
  paymentRetryDays?: number[];
  /** Posted to as the clock runs (also settable with setWebhookEndpoint). */
  webhook?: WebhookEndpoint;
}

export interface FakeBilling {
  /** The test clock, Unix seconds. */
  now(): number;
  /**
   * Move the clock forward to `time`, doing everything due on the way in time order (renewals, finalizations,
   * charges, retries); after each step the new events are posted to the webhook endpoint, if one is set or given.
   */
  advanceTo(time: number, options?: { webhook?: WebhookEndpoint }): Promise<AdvanceResult>;
  advanceBy(seconds: number, options?: { webhook?: WebhookEndpoint }): Promise<AdvanceResult>;
  /**
   * Close the subscription's current period: move the clock to the period's end plus the finalization grace, so
   * its invoice is created, finalized and charged (or the subscription ends after cancel_at_period_end).
   */
  closePeriod(subscriptionId: string, options?: { webhook?: WebhookEndpoint }): Promise<ClosePeriodResult>;
  /** What the buyer does on Checkout's page for a mode=subscription session: the customer, the subscription, its first invoice paid. */
  completeSubscriptionCheckout(sessionId: string, options?: CompleteSubscriptionCheckoutOptions): { session: Record<string, unknown>; subscription: BillingSubscription; invoice: BillingInvoice; customer: FakeCustomer };
  /** Every automatic or requested charge of this customer's invoices declines (default: generic_decline) until acceptPayments. */
  declinePayments(customerId: string, card?: keyof typeof DECLINES): void;
  acceptPayments(customerId: string): void;
  /** What the customer does in the billing portal. */
  portal: {
    updatePaymentMethod(sessionId: string, paymentMethod: string): void;
    cancelAtPeriodEnd(sessionId: string, subscriptionId: string): BillingSubscription;
  };
  setWebhookEndpoint(endpoint: WebhookEndpoint | null): void;
  /** Post the events not yet delivered, in order (or as options say), signed; failed ones stay pending (Stripe retries them). */
  deliver(endpoint?: WebhookEndpoint, options?: DeliveryOptions): Promise<WebhookDelivery[]>;
  /** All events so far, in order. */
  events(filter?: string | ((event: FakeEvent) => boolean)): FakeEvent[];
  pendingEvents(): FakeEvent[];
  /** Stripe's aggregate of a meter for a customer over [from, to) (what invoices and summaries count). */
  usage(meterId: string, customerId: string, from: number, to: number): number;
  meterEvents(): RecordedMeterEvent[];
  meterEventErrors(): RecordedMeterEvent[];
  /** Summaries stop seeing new events (Stripe aggregates asynchronously) until releaseAggregation. */
  holdAggregation(): void;
  releaseAggregation(): void;
  readonly meters: ReadonlyMap<string, BillingMeter>;
  readonly products: ReadonlyMap<string, BillingProduct>;
  readonly subscriptions: ReadonlyMap<string, BillingSubscription>;
  readonly invoices: ReadonlyMap<string, BillingInvoice>;
  readonly portalSessions: ReadonlyMap<string, BillingPortalSession>;
}

// ---------- allowed parameters (stripe-node 23.1.0's *Params types) ----------

const SUBSCRIPTION_DATA = ['application_fee_percent', 'billing_cycle_anchor', 'billing_cycle_anchor_config', 'billing_mode', 'default_tax_rates', 'description', 'invoice_settings', 'metadata', 'on_behalf_of', 'pending_invoice_item_interval', 'proration_behavior', 'transfer_data', 'trial_end', 'trial_period_days', 'trial_settings'];
const SUBSCRIPTION_UPDATE = ['add_invoice_items', 'application_fee_percent', 'automatic_tax', 'billing_cycle_anchor', 'billing_schedules', 'billing_thresholds', 'cancel_at', 'cancel_at_period_end', 'cancellation_details', 'collection_method', 'days_until_due', 'default_payment_method', 'default_source', 'default_tax_rates', 'description', 'discounts', 'expand', 'invoice_settings', 'items', 'metadata', 'off_session', 'on_behalf_of', 'pause_collection', 'payment_behavior', 'payment_settings', 'pending_invoice_item_interval', 'proration_behavior', 'proration_date', 'transfer_data', 'trial_end', 'trial_from_plan', 'trial_settings'];
const SUBSCRIPTION_UPDATE_ITEM = ['billing_thresholds', 'clear_usage', 'current_trial', 'deleted', 'discounts', 'id', 'metadata', 'plan', 'price', 'price_data', 'quantity', 'tax_rates'];
const SUBSCRIPTION_CANCEL = ['cancellation_details', 'expand', 'invoice_now', 'prorate'];
const SUBSCRIPTION_LIST = [...PAGINATION, 'automatic_tax', 'collection_method', 'created', 'current_period_end', 'current_period_start', 'customer', 'customer_account', 'plan', 'price', 'status', 'test_clock'];
const SUBSCRIPTION_ITEM_LIST = [...PAGINATION, 'subscription'];
const INVOICE_LIST = [...PAGINATION, 'collection_method', 'created', 'customer', 'customer_account', 'due_date', 'status', 'subscription'];
const INVOICE_PAY = ['expand', 'forgive', 'mandate', 'off_session', 'paid_out_of_band', 'payment_method', 'source'];
const INVOICE_FINALIZE = ['auto_advance', 'expand'];
const INVOICE_PREVIEW = ['automatic_tax', 'currency', 'customer', 'customer_account', 'customer_details', 'discounts', 'expand', 'invoice_items', 'issuer', 'on_behalf_of', 'preview_mode', 'schedule', 'schedule_details', 'subscription', 'subscription_details'];
const PORTAL_SESSION_CREATE = ['after_expiration', 'configuration', 'customer', 'customer_account', 'expand', 'flow_data', 'locale', 'on_behalf_of', 'return_url'];
const CUSTOMER_UPDATE = ['address', 'balance', 'business_name', 'cash_balance', 'default_source', 'description', 'email', 'expand', 'individual_name', 'invoice_prefix', 'invoice_settings', 'metadata', 'name', 'next_invoice_sequence', 'phone', 'preferred_locales', 'shipping', 'source', 'tax', 'tax_exempt', 'validate'];
const CUSTOMER_LIST = [...PAGINATION, 'created', 'email', 'test_clock'];
const EVENT_LIST = [...PAGINATION, 'created', 'delivery_success', 'type', 'types'];

const ACCOUNT = 'acct_1FakeMindBot00';

// ---------- the extension ----------

export function createFakeBilling(core: FakeStripeCore, options: FakeBillingOptions = {}): { extension: FakeStripeExtension; billing: FakeBilling } {
  const startTime = options.startTime ?? Math.floor(Date.now() / 1000);
  const grace = options.finalizationGraceSeconds ?? 3600;
  const retryDays = options.paymentRetryDays ?? [];
  const { customers } = core;
  const fake = core.fake;

  let clock = startTime;
  let webhook: WebhookEndpoint | null = options.webhook ?? null;
  let seq = 0;
  let currentRequest: { id: string | null; idempotency_key: string | null } = { id: null, idempotency_key: null };

  const catalog = createCatalog({ core, now: () => clock, identifierWindowSeconds: options.identifierWindowSeconds ?? DAY });
  const { requirePrice, termsOf, productName, meterUsage } = catalog;
  const subscriptions = new Map<string, BillingSubscription>();
  const invoices = new Map<string, BillingInvoice>();
  const portalSessions = new Map<string, BillingPortalSession>();
  const events: FakeEvent[] = [];
  const delivered = new Set<string>();
  const declines = new Map<string, Decline>();
  const portalConfiguration = `bpc_${randomId(24)}`;

  interface SubState {
    anchor: number;
    interval: Interval;
    intervalCount: number;
    /** The current period is [boundary(cycle), boundary(cycle + 1)). */
    cycle: number;
    /** Metered items: usage from this time on is billed on the item's current price. */
    usageFrom: Map<string, number>;
  }
  const subStates = new Map<string, SubState>();

  interface PendingItem {
    id: string;
    subscription: string;
    subscriptionItem: string;
    price: BillingPrice;
    amount: number;
    quantity: number | null;
    quantityDecimal: string | null;
    description: string;
    period: { start: number; end: number };
    proration: boolean;
  }
  const pendingItems: PendingItem[] = [];

  interface MeteredLine {
    lineId: string;
    customer: string;
    price: BillingPrice;
    from: number;
    to: number;
  }
  /** Metered lines of draft invoices, recomputed when the invoice is finalized (late usage in the grace period counts). */
  const meteredLines = new Map<string, MeteredLine[]>();

  interface Scheduled {
    at: number;
    seq: number;
    kind: 'cycle' | 'finalize' | 'retry';
    ref: string;
  }
  let scheduled: Scheduled[] = [];
  const schedule = (at: number, kind: Scheduled['kind'], ref: string) => scheduled.push({ at, seq: ++seq, kind, ref });
  const unschedule = (kind: Scheduled['kind'], ref: string) => {
    scheduled = scheduled.filter((s) => !(s.kind === kind && s.ref === ref));
  };

  // ----- events -----

  function emit(type: string, object: unknown, previous?: Record<string, unknown>): FakeEvent {
    const event = fake.event(type, object, { created: clock, request: { ...currentRequest }, ...(previous ? { previous_attributes: previous } : {}) });
    events.push(event);
    return event;
  }

  const withRequest = (handler: Handler): Handler => (p, ctx) => {
    currentRequest = { id: ctx.requestId, idempotency_key: ctx.idempotencyKey };
    try {
      return handler(p, ctx);
    } finally {
      currentRequest = { id: null, idempotency_key: null };
    }
  };

  async function deliver(endpoint: WebhookEndpoint | null = webhook, deliveryOptions: DeliveryOptions = {}): Promise<WebhookDelivery[]> {
    if (!endpoint) throw new Error('fake-stripe billing: no webhook endpoint (setWebhookEndpoint or pass one)');
    const deliveries = await postEvents(events.filter((e) => !delivered.has(e.id)), endpoint, deliveryOptions);
    for (const d of deliveries) if (d.error === null) delivered.add(d.event.id);
    return deliveries;
  }

  // ----- lookups -----

  const getSubscription = getOr404(subscriptions, 'subscription');
  const getInvoice = getOr404(invoices, 'invoice');

  function lookup(id: string): unknown {
    return catalog.lookup(id) ?? subscriptions.get(id) ?? invoices.get(id) ?? portalSessions.get(id);
  }

  // ========== Checkout in subscription mode ==========

  interface CheckoutExtras {
    lines: { price: BillingPrice; quantity: number | null }[];
    subscriptionData: { description: string | null; metadata: Metadata; billingMode: 'classic' | 'flexible' };
  }
  const checkoutExtras = new Map<string, CheckoutExtras>();

  const createSubscriptionCheckout: Handler = (p) => {
    if (p.mode !== 'subscription') return PASS; // payment and setup mode stay with the core
    checkKeys(p, SESSION_CREATE, '');
    refuseUnmodelled(p, ['adaptive_pricing', 'after_expiration', 'allow_promotion_codes', 'automatic_tax', 'billing_address_collection', 'consent_collection', 'currency',
      'custom_fields', 'custom_text', 'customer_update', 'discounts', 'invoice_creation', 'optional_items', 'payment_intent_data', 'payment_method_data',
      'payment_method_options', 'phone_number_collection', 'saved_payment_method_options', 'setup_intent_data', 'shipping_address_collection', 'shipping_options',
      'tax_id_collection']);
    if (p.customer_creation !== undefined) throw invalid('`customer_creation` can only be used in `payment` and `setup` mode.', 'customer_creation');
    const uiMode = asString(p.ui_mode, 'ui_mode') ?? 'hosted_page';
    const successUrl = asUrl(p.success_url, 'success_url');
    if (successUrl === undefined && uiMode === 'hosted_page') throw missing('success_url');
    const cancelUrl = asUrl(p.cancel_url, 'cancel_url') ?? null;
    const customerId = asString(p.customer, 'customer');
    if (customerId) requireCustomer(customers, customerId, 'customer');
    const customerEmail = asString(p.customer_email, 'customer_email') ?? null;
    if (customerId && customerEmail) throw invalid('You may only specify one of these parameters: customer, customer_email.', 'customer_email');
    const clientReferenceId = asString(p.client_reference_id, 'client_reference_id') ?? null;
    const metadata = asMetadata(p.metadata);
    const created = clock;
    const expiresAt = asInt(p.expires_at, 'expires_at') ?? created + DAY;
    if (expiresAt < created + 30 * 60 - 5) throw invalid('The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.', 'expires_at');
    if (expiresAt > created + DAY + 5) throw invalid('The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.', 'expires_at');
    const collection = asEnum(p.payment_method_collection, 'payment_method_collection', ['always', 'if_required'] as const) ?? 'always';

    const sdRaw = asObject(p.subscription_data, 'subscription_data');
    if (sdRaw) {
      checkKeys(sdRaw, SUBSCRIPTION_DATA, 'subscription_data');
      refuseUnmodelled(sdRaw, SUBSCRIPTION_DATA.filter((k) => !['billing_mode', 'description', 'metadata'].includes(k)), 'subscription_data');
    }
    const bmRaw = sdRaw ? asObject(sdRaw.billing_mode, 'subscription_data[billing_mode]') : undefined;
    if (bmRaw) checkKeys(bmRaw, ['flexible', 'type'], 'subscription_data[billing_mode]');
    const billingMode = bmRaw ? asEnum(bmRaw.type, 'subscription_data[billing_mode][type]', ['classic', 'flexible'] as const) ?? 'flexible' : 'flexible';

    const rawItems = asArray(p.line_items, 'line_items');
    if (!rawItems || rawItems.length === 0) throw missing('line_items');
    const lines: CheckoutExtras['lines'] = [];
    rawItems.forEach((raw, i) => {
      const at = `line_items[${i}]`;
      const item = asObject(raw, at);
      if (!item) throw missing(at);
      checkKeys(item, LINE_ITEM, at);
      refuseUnmodelled(item, ['adjustable_quantity', 'price_data', 'tax_rates'], at);
      const priceId = asString(item.price, `${at}[price]`);
      if (!priceId) throw invalid('You must specify either `price` or `price_data` for each line item.', `${at}[price]`);
      const price = requirePrice(priceId, `${at}[price]`);
      if (!price.active) throw invalid(`The price specified (${priceId}) is inactive. This field only accepts active prices.`, `${at}[price]`);
      if (!price.recurring) throw invalid('fake-stripe: one-time prices in subscription mode are not implemented', `${at}[price]`);
      const quantity = asInt(item.quantity, `${at}[quantity]`);
      if (price.recurring.usage_type === 'metered') {
        if (quantity !== undefined) throw invalid(`Quantity should not be specified where usage_type is \`metered\`. Remove quantity from \`${at}\`.`, `${at}[quantity]`);
      } else {
        if (quantity === undefined) throw invalid(`Quantity is required. Add \`quantity\` to \`${at}\`.`, `${at}[quantity]`, 'parameter_missing');
        if (quantity < 1) throw invalid('This value must be greater than or equal to 1.', `${at}[quantity]`, 'parameter_invalid_integer');
      }
      if (lines.some((l) => l.price.id === price.id)) throw invalid(`The price \`${price.id}\` appears in more than one line item; use one line item with a quantity.`, `${at}[price]`);
      lines.push({ price, quantity: quantity ?? null });
    });
    const first = lines[0]!.price;
    if (lines.some((l) => l.price.currency !== first.currency)) throw invalid('All line items must use the same currency.', 'line_items');
    if (lines.some((l) => l.price.recurring!.interval !== first.recurring!.interval || l.price.recurring!.interval_count !== first.recurring!.interval_count)) {
      throw invalid('Checkout does not support multiple prices with different billing intervals.', 'line_items');
    }
    const total = lines.reduce((sum, l) => sum + (l.quantity === null ? 0 : roundMinor(priceCharge(termsOf(l.price), dec(l.quantity)).exact)), 0);
    const id = `cs_test_a1${randomId(56)}`;
    const session = {
      after_expiration: null, allow_promotion_codes: null, amount_subtotal: total, amount_total: total,
      automatic_tax: { enabled: false, liability: null, status: null, provider: null }, billing_address_collection: null, cancel_url: cancelUrl,
      client_reference_id: clientReferenceId, client_secret: null, consent: null, consent_collection: null, created, currency: first.currency,
      custom_fields: [], custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
      customer: customerId ?? null, customer_creation: null, customer_details: customerEmail ? { address: null, email: customerEmail, name: null, phone: null, tax_exempt: 'none', tax_ids: null, business_name: null, individual_name: null } : null,
      customer_email: customerEmail, expires_at: expiresAt, id, invoice: null, invoice_creation: null, livemode: false, locale: null, metadata, mode: 'subscription',
      object: 'checkout.session', payment_intent: null, payment_link: null, payment_method_collection: collection, payment_method_configuration_details: null,
      payment_method_options: {}, payment_method_types: ['card'], payment_status: 'unpaid', phone_number_collection: { enabled: false }, recovered_from: null,
      saved_payment_method_options: null, setup_intent: null, shipping_address_collection: null, shipping_cost: null, shipping_options: [], status: 'open',
      submit_type: null, subscription: null, success_url: successUrl ?? null, total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
      ui_mode: uiMode, url: uiMode === 'hosted_page' ? `https://checkout.stripe.test/c/pay/${id}` : null, adaptive_pricing: null, discounts: [],
      collected_information: null, permissions: null, wallet_options: null, origin_context: null, currency_conversion: null, customer_account: null,
      integration_identifier: null, managed_payments: null,
    };
    core.checkoutSessions.set(id, session as never);
    core.lineItems.set(id, lines.map((l) => {
      const amount = l.quantity === null ? 0 : roundMinor(priceCharge(termsOf(l.price), dec(l.quantity)).exact);
      return {
        id: `li_${randomId(24)}`, object: 'item', amount_discount: 0, amount_subtotal: amount, amount_tax: 0, amount_total: amount, currency: l.price.currency,
        description: productName(l.price.product), metadata: {}, price: copy(l.price), quantity: l.quantity,
      } as never;
    }));
    checkoutExtras.set(id, { lines, subscriptionData: { description: sdRaw ? asString(sdRaw.description, 'subscription_data[description]') ?? null : null, metadata: sdRaw ? asMetadata(sdRaw.metadata, 'subscription_data[metadata]') : {}, billingMode } });
    return session;
  };

  // ========== subscriptions ==========

  const planOf = (price: BillingPrice): BillingPlan => ({
    active: price.active, amount: price.unit_amount, amount_decimal: price.unit_amount_decimal, billing_scheme: price.billing_scheme, created: price.created,
    currency: price.currency, id: price.id, interval: price.recurring!.interval, interval_count: price.recurring!.interval_count, livemode: false,
    metadata: { ...price.metadata }, meter: price.recurring!.meter, nickname: price.nickname, object: 'plan', product: price.product, tiers_mode: price.tiers_mode,
    transform_usage: price.transform_quantity ? { ...price.transform_quantity } : null, trial_period_days: null, usage_type: price.recurring!.usage_type,
  });

  const isMetered = (price: BillingPrice) => price.recurring?.usage_type === 'metered';

  function newItem(subscription: BillingSubscription, price: BillingPrice, quantity: number | null, period: [number, number], metadata: Metadata = {}): BillingSubscriptionItem {
    const item: BillingSubscriptionItem = {
      created: clock, discounts: [], id: `si_${randomId(14)}`, metadata, object: 'subscription_item', price: copy(price), subscription: subscription.id,
      tax_rates: [], plan: planOf(price), current_period_end: period[1], current_period_start: period[0], billing_thresholds: null,
    };
    if (!isMetered(price)) item.quantity = quantity ?? 1;
    return item;
  }

  function periodOf(subscriptionId: string): [number, number] {
    const state = subStates.get(subscriptionId)!;
    return [periodBoundary(state.anchor, state.interval, state.intervalCount, state.cycle), periodBoundary(state.anchor, state.interval, state.intervalCount, state.cycle + 1)];
  }

  /** The exact charge of a licensed item for a whole period. */
  const licensedCharge = (price: BillingPrice, quantity: number) => priceCharge(termsOf(price), dec(quantity));

  function createSubscription(customer: FakeCustomer, lines: CheckoutExtras['lines'], data: CheckoutExtras['subscriptionData'], paymentMethod: string | null): BillingSubscription {
    const first = lines[0]!.price;
    const id = `sub_${randomId(24)}`;
    const state: SubState = { anchor: clock, interval: first.recurring!.interval, intervalCount: first.recurring!.interval_count, cycle: 0, usageFrom: new Map() };
    subStates.set(id, state);
    const subscription: BillingSubscription = {
      application: null, application_fee_percent: null, automatic_tax: { enabled: false, liability: null, disabled_reason: null }, billing_cycle_anchor: clock,
      billing_cycle_anchor_config: null, cancel_at: null, canceled_at: null, cancellation_details: { comment: null, feedback: null, reason: null },
      collection_method: 'charge_automatically', created: clock, currency: first.currency, customer: customer.id, days_until_due: null,
      default_payment_method: paymentMethod, default_source: null, default_tax_rates: [], description: data.description, discounts: [], ended_at: null, id,
      invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } }, items: { data: [], has_more: false, object: 'list', url: `/v1/subscription_items?subscription=${id}` },
      latest_invoice: null, livemode: false, metadata: { ...data.metadata }, next_pending_invoice_item_invoice: null, object: 'subscription', on_behalf_of: null,
      pause_collection: null, payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
      pending_invoice_item_interval: null, pending_setup_intent: null, pending_update: null, schedule: null, start_date: clock, status: 'active', test_clock: null,
      transfer_data: null, trial_end: null, trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } }, trial_start: null,
      cancel_at_period_end: false, billing_thresholds: null,
      billing_mode: { type: data.billingMode, flexible: data.billingMode === 'flexible' ? { proration_discounts: 'included' } : null }, customer_account: null,
      managed_payments: null, billing_schedules: [],
    };
    subscriptions.set(id, subscription);
    const period = periodOf(id);
    for (const line of lines) {
      const item = newItem(subscription, line.price, line.quantity, period);
      subscription.items.data.push(item);
      if (isMetered(line.price)) state.usageFrom.set(item.id, clock);
    }
    schedule(period[1], 'cycle', id);
    return subscription;
  }

  // ----- invoices -----

  function newInvoice(customer: FakeCustomer, subscription: BillingSubscription | null, reason: BillingReason, periodStart: number, periodEnd: number, id = `in_${randomId(24)}`): BillingInvoice {
    return {
      account_country: 'US', account_name: 'MindBot (fake Stripe)', account_tax_ids: null, amount_due: 0, amount_paid: 0, amount_remaining: 0, amount_shipping: 0,
      application: null, attempt_count: 0, attempted: false, auto_advance: true,
      automatic_tax: { enabled: false, liability: null, status: null, disabled_reason: null, provider: null }, billing_reason: reason,
      collection_method: 'charge_automatically', created: clock, currency: subscription?.currency ?? 'usd', custom_fields: null, customer: customer.id,
      customer_address: null, customer_email: customer.email, customer_name: customer.name, customer_phone: customer.phone, customer_shipping: null,
      customer_tax_exempt: customer.tax_exempt, customer_tax_ids: [], default_payment_method: null, default_source: null, default_tax_rates: [],
      description: null, discounts: [], due_date: null, effective_at: null, ending_balance: null, footer: null, from_invoice: null, hosted_invoice_url: null, id,
      invoice_pdf: null, issuer: { type: 'self' }, last_finalization_error: null, latest_revision: null,
      lines: { data: [], has_more: false, object: 'list', url: `/v1/invoices/${id}/lines` }, livemode: false, metadata: {}, next_payment_attempt: null,
      number: null, object: 'invoice', on_behalf_of: null, payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
      period_end: periodEnd, period_start: periodStart, post_payment_credit_notes_amount: 0, pre_payment_credit_notes_amount: 0, receipt_number: null,
      rendering: null, shipping_cost: null, shipping_details: null, starting_balance: 0, statement_descriptor: null, status: 'draft',
      status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null }, subscription: null, subtotal: 0,
      subtotal_excluding_tax: 0, test_clock: null, total: 0, total_discount_amounts: [], total_excluding_tax: 0, webhooks_delivered_at: null,
      automatically_finalizes_at: null, total_pretax_credit_amounts: [], total_taxes: [], amount_overpaid: 0,
      parent: subscription ? { quote_details: null, subscription_details: { metadata: { ...subscription.metadata }, subscription: subscription.id }, type: 'subscription_details' } : null,
      customer_account: null,
    };
  }

  function line(invoice: BillingInvoice, fields: { amount: number; description: string; price: BillingPrice; quantity: Dec | null; period: [number, number]; subscription: string; subscriptionItem: string; invoiceItem: string | null; proration: boolean }): BillingInvoiceLine {
    const q = fields.quantity;
    const integral = q !== null && /^-?\d+$/.test(q.toString());
    return {
      amount: fields.amount, currency: invoice.currency, description: fields.description, discount_amounts: [], discountable: !fields.proration, discounts: [],
      id: `il_${randomId(24)}`, invoice: invoice.id, livemode: false, metadata: {}, object: 'line_item', period: { end: fields.period[1], start: fields.period[0] },
      quantity: integral ? Number(q!.toString()) : null, subscription: fields.subscription, pretax_credit_amounts: [], taxes: [],
      parent: {
        invoice_item_details: null,
        subscription_item_details: { invoice_item: fields.invoiceItem, proration: fields.proration, proration_details: { credited_items: null }, subscription: fields.subscription, subscription_item: fields.subscriptionItem },
        type: 'subscription_item_details',
      },
      pricing: { price_details: { price: fields.price.id, product: fields.price.product }, type: 'price_details', unit_amount_decimal: fields.price.billing_scheme === 'per_unit' ? fields.price.unit_amount_decimal : null },
      subtotal: fields.amount, quantity_decimal: q === null ? null : q.toString(),
    };
  }

  function usageDescription(price: BillingPrice, quantity: Dec): string {
    const name = productName(price.product);
    if (price.billing_scheme === 'tiered') return `${quantity.toString()} × ${name} (tiered, ${price.tiers_mode})`;
    return `${quantity.toString()} × ${name} (at ${money(Number(price.unit_amount_decimal ?? 0), price.currency)} per unit)`;
  }

  function addMeteredLine(invoice: BillingInvoice, subscription: BillingSubscription, item: BillingSubscriptionItem, from: number, to: number): void {
    const quantity = meterUsage(item.price.recurring!.meter!, subscription.customer, from, to);
    const amount = roundMinor(priceCharge(termsOf(item.price), quantity).exact);
    const l = line(invoice, { amount, description: usageDescription(item.price, quantity), price: item.price, quantity, period: [from, to], subscription: subscription.id, subscriptionItem: item.id, invoiceItem: null, proration: false });
    invoice.lines.data.push(l);
    const list = meteredLines.get(invoice.id) ?? [];
    list.push({ lineId: l.id, customer: subscription.customer, price: copy(item.price), from, to });
    meteredLines.set(invoice.id, list);
  }

  function addLicensedLine(invoice: BillingInvoice, subscription: BillingSubscription, item: BillingSubscriptionItem, period: [number, number]): void {
    const quantity = item.quantity ?? 1;
    const amount = roundMinor(licensedCharge(item.price, quantity).exact);
    const description = `${quantity} × ${productName(item.price.product)} (at ${money(Number(item.price.unit_amount_decimal ?? 0), item.price.currency)} / ${item.price.recurring!.interval})`;
    invoice.lines.data.push(line(invoice, { amount, description, price: item.price, quantity: dec(quantity), period, subscription: subscription.id, subscriptionItem: item.id, invoiceItem: null, proration: false }));
  }

  function takePendingItems(invoice: BillingInvoice, subscriptionId: string): void {
    for (let i = 0; i < pendingItems.length;) {
      const pending = pendingItems[i]!;
      if (pending.subscription !== subscriptionId) {
        i++;
        continue;
      }
      pendingItems.splice(i, 1);
      invoice.lines.data.push(line(invoice, {
        amount: pending.amount, description: pending.description, price: pending.price,
        quantity: pending.quantityDecimal !== null ? dec(pending.quantityDecimal) : pending.quantity !== null ? dec(pending.quantity) : null,
        period: [pending.period.start, pending.period.end], subscription: pending.subscription, subscriptionItem: pending.subscriptionItem, invoiceItem: pending.id, proration: pending.proration,
      }));
    }
  }

  function computeTotals(invoice: BillingInvoice): void {
    const subtotal = invoice.lines.data.reduce((s, l) => s + l.amount, 0);
    invoice.subtotal = subtotal;
    invoice.subtotal_excluding_tax = subtotal;
    invoice.total = subtotal;
    invoice.total_excluding_tax = subtotal;
    invoice.amount_due = Math.max(0, subtotal);
    invoice.amount_remaining = invoice.amount_due - invoice.amount_paid;
  }

  /** Invoice created as a draft: automatic ones are finalized and charged after the grace period. */
  function openDraft(invoice: BillingInvoice): void {
    computeTotals(invoice);
    invoice.automatically_finalizes_at = clock + grace;
    invoices.set(invoice.id, invoice);
    emit('invoice.created', invoice);
    schedule(clock + grace, 'finalize', invoice.id);
  }

  function finalize(invoice: BillingInvoice): void {
    unschedule('finalize', invoice.id);
    // Late usage reported during the grace period still counts for the period.
    for (const m of meteredLines.get(invoice.id) ?? []) {
      const l = invoice.lines.data.find((x) => x.id === m.lineId)!;
      const quantity = meterUsage(m.price.recurring!.meter!, m.customer, m.from, m.to);
      l.amount = roundMinor(priceCharge(termsOf(m.price), quantity).exact);
      l.subtotal = l.amount;
      l.description = usageDescription(m.price, quantity);
      l.quantity = /^-?\d+$/.test(quantity.toString()) ? Number(quantity.toString()) : null;
      l.quantity_decimal = quantity.toString();
    }
    meteredLines.delete(invoice.id);
    computeTotals(invoice);
    const customer = customers.get(invoice.customer)!;
    // The customer's balance (positive: owed, negative: credit) is applied to the invoice.
    invoice.starting_balance = customer.balance;
    const applied = invoice.total + customer.balance;
    invoice.amount_due = Math.max(0, applied);
    invoice.amount_remaining = invoice.amount_due;
    invoice.ending_balance = applied < 0 ? applied : 0;
    customer.balance = invoice.ending_balance;
    invoice.status = 'open';
    invoice.number = `${customer.invoice_prefix}-${String(customer.next_invoice_sequence).padStart(4, '0')}`;
    customer.next_invoice_sequence += 1;
    const token = randomId(40);
    invoice.hosted_invoice_url = `https://invoice.stripe.com/i/${ACCOUNT}/test_${token}?s=ap`;
    invoice.invoice_pdf = `https://pay.stripe.com/invoice/${ACCOUNT}/test_${token}/pdf?s=ap`;
    invoice.status_transitions.finalized_at = clock;
    invoice.effective_at = clock;
    invoice.automatically_finalizes_at = null;
    invoice.webhooks_delivered_at = clock;
    emit('invoice.finalized', invoice);
  }

  function subscriptionOf(invoice: BillingInvoice): BillingSubscription | null {
    const id = invoice.parent?.subscription_details?.subscription;
    return id ? subscriptions.get(id) ?? null : null;
  }

  /** The card an invoice is charged on: the one given, the subscription's default, the customer's default. */
  function cardFor(invoice: BillingInvoice, given: string | undefined): string | null {
    return given ?? subscriptionOf(invoice)?.default_payment_method ?? customers.get(invoice.customer)?.invoice_settings.default_payment_method ?? null;
  }

  type PaymentOutcome = { ok: true } | { ok: false; error: { code: string; decline_code?: string; message: string } };

  /** Charge an open invoice (automatically, or POST /v1/invoices/{id}/pay). */
  function attemptPayment(invoice: BillingInvoice, given?: string, outOfBand = false): PaymentOutcome {
    const customer = customers.get(invoice.customer)!;
    const minimum = MINIMUM_AMOUNT[invoice.currency]?.[0] ?? 50;
    let outcome: PaymentOutcome = { ok: true };
    if (!outOfBand && invoice.amount_due >= minimum) {
      const card = cardFor(invoice, given);
      const decline = declines.get(customer.id) ?? (card ? DECLINES[card] : undefined);
      if (!card) outcome = { ok: false, error: { code: 'invoice_no_customer_payment_method', message: 'This customer has no attached payment source or default payment method.' } };
      else if (decline) outcome = { ok: false, error: { code: decline.code, decline_code: decline.decline_code, message: decline.message } };
    }
    invoice.attempted = true;
    if (invoice.amount_due > 0 && !outOfBand) invoice.attempt_count += 1;
    const subscription = subscriptionOf(invoice);
    if (!outcome.ok) {
      const retryIndex = invoice.attempt_count - 1;
      invoice.next_payment_attempt = retryIndex < retryDays.length ? invoice.status_transitions.finalized_at! + retryDays[retryIndex]! * DAY : null;
      unschedule('retry', invoice.id);
      if (invoice.next_payment_attempt !== null) schedule(invoice.next_payment_attempt, 'retry', invoice.id);
      customer.delinquent = true;
      emit('invoice.payment_failed', invoice);
      if (subscription && subscription.status === 'active' && invoice.billing_reason !== 'subscription_create') {
        const before = copy(subscription);
        subscription.status = 'past_due';
        emit('customer.subscription.updated', subscription, changed(before as never, subscription as never));
      }
      return outcome;
    }
    if (invoice.amount_due > 0 && invoice.amount_due < minimum && !outOfBand) {
      // Under the minimum charge Stripe does not charge: the invoice is paid and the amount moves to the customer's balance.
      customer.balance += invoice.amount_due;
      invoice.ending_balance = customer.balance;
      invoice.amount_remaining = 0;
    } else {
      invoice.amount_paid = invoice.amount_due;
      invoice.amount_remaining = 0;
    }
    invoice.status = 'paid';
    invoice.auto_advance = false;
    invoice.next_payment_attempt = null;
    invoice.status_transitions.paid_at = clock;
    unschedule('retry', invoice.id);
    if (![...invoices.values()].some((x) => x.customer === customer.id && x.status === 'open')) customer.delinquent = false;
    emit('invoice.paid', invoice);
    emit('invoice.payment_succeeded', invoice);
    if (subscription && subscription.status === 'past_due' && ![...invoices.values()].some((x) => subscriptionOf(x)?.id === subscription.id && x.status === 'open')) {
      const before = copy(subscription);
      subscription.status = 'active';
      emit('customer.subscription.updated', subscription, changed(before as never, subscription as never));
    }
    return outcome;
  }

  /** An invoice billed at once (subscription_create, always_invoice, invoice_now): created, finalized and charged now. */
  function invoiceNow(invoice: BillingInvoice, paymentMethod?: string): PaymentOutcome {
    computeTotals(invoice);
    invoices.set(invoice.id, invoice);
    emit('invoice.created', invoice);
    finalize(invoice);
    return attemptPayment(invoice, paymentMethod);
  }

  // ----- the period boundary -----

  function cycle(subscriptionId: string): void {
    const subscription = subscriptions.get(subscriptionId);
    if (!subscription || subscription.status === 'canceled') return;
    const state = subStates.get(subscriptionId)!;
    const customer = customers.get(subscription.customer)!;
    const [start, end] = periodOf(subscriptionId);
    const ending = subscription.cancel_at_period_end || (subscription.cancel_at !== null && subscription.cancel_at <= end);
    const before = copy(subscription);
    const invoice = newInvoice(customer, subscription, 'subscription_cycle', start, end);
    for (const item of subscription.items.data) {
      if (isMetered(item.price)) addMeteredLine(invoice, subscription, item, state.usageFrom.get(item.id) ?? start, end);
    }
    takePendingItems(invoice, subscriptionId);
    if (ending) {
      subscription.status = 'canceled';
      subscription.ended_at = end;
      subscription.latest_invoice = invoice.id;
      openDraft(invoice);
      emit('customer.subscription.deleted', subscription, changed(before as never, subscription as never));
      return;
    }
    state.cycle += 1;
    const next = periodOf(subscriptionId);
    for (const item of subscription.items.data) {
      item.current_period_start = next[0];
      item.current_period_end = next[1];
      if (isMetered(item.price)) state.usageFrom.set(item.id, next[0]);
      else addLicensedLine(invoice, subscription, item, next);
    }
    subscription.latest_invoice = invoice.id;
    emit('customer.subscription.updated', subscription, changed(before as never, subscription as never));
    openDraft(invoice);
    schedule(next[1], 'cycle', subscriptionId);
  }

  function runScheduled(action: Scheduled): void {
    if (action.kind === 'cycle') return cycle(action.ref);
    const invoice = invoices.get(action.ref);
    if (!invoice) return;
    if (action.kind === 'finalize' && invoice.status === 'draft') {
      finalize(invoice);
      attemptPayment(invoice);
    } else if (action.kind === 'retry' && invoice.status === 'open') {
      attemptPayment(invoice);
    }
  }

  async function advanceTo(time: number, opts: { webhook?: WebhookEndpoint } = {}): Promise<AdvanceResult> {
    if (!Number.isInteger(time)) throw new Error('fake-stripe billing: advanceTo takes whole Unix seconds');
    if (time < clock) throw new Error(`fake-stripe billing: the clock only moves forward (now ${clock}, asked ${time})`);
    const endpoint = opts.webhook ?? webhook;
    const firstEvent = events.length;
    const deliveries: WebhookDelivery[] = [];
    for (;;) {
      const due = scheduled.filter((s) => s.at <= time).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      scheduled = scheduled.filter((s) => s !== due);
      clock = Math.max(clock, due.at);
      runScheduled(due);
      // Stripe waits for the endpoint's answer to invoice.created before it finalizes; deliver each step's events before the next step.
      if (endpoint) deliveries.push(...await deliver(endpoint));
    }
    clock = time;
    return { now: clock, events: events.slice(firstEvent), deliveries };
  }

  // ----- subscription endpoints -----

  function prorationItem(subscription: BillingSubscription, item: BillingSubscriptionItem, price: BillingPrice, quantity: number, sign: 1 | -1, period: [number, number]): PendingItem {
    const fraction = dec(period[1] - clock).div(dec(period[1] - period[0]), 20, 'half-even');
    const amount = sign * roundMinor(licensedCharge(price, quantity).exact.mul(fraction));
    const name = productName(price.product);
    return {
      id: `ii_${randomId(24)}`, subscription: subscription.id, subscriptionItem: item.id, price: copy(price), amount, quantity, quantityDecimal: null,
      description: sign < 0 ? `Unused time on ${quantity} × ${name} after ${isoDate(clock)}` : `Remaining time on ${quantity} × ${name} after ${isoDate(clock)}`,
      period: { start: clock, end: period[1] }, proration: true,
    };
  }

  /** Flexible billing mode: the usage of a metered price being replaced or removed is billed as an invoice item. */
  function flushUsage(subscription: BillingSubscription, item: BillingSubscriptionItem, state: SubState, period: [number, number]): PendingItem | null {
    const from = state.usageFrom.get(item.id) ?? period[0];
    const quantity = meterUsage(item.price.recurring!.meter!, subscription.customer, from, clock);
    return {
      id: `ii_${randomId(24)}`, subscription: subscription.id, subscriptionItem: item.id, price: copy(item.price),
      amount: roundMinor(priceCharge(termsOf(item.price), quantity).exact), quantity: null, quantityDecimal: quantity.toString(),
      description: usageDescription(item.price, quantity), period: { start: from, end: clock }, proration: false,
    };
  }

  const updateSubscription: Handler = (p, c) => {
    checkKeys(p, SUBSCRIPTION_UPDATE, '');
    const subscription = getSubscription(c.id);
    if (subscription.status === 'canceled') {
      const allowed = ['cancellation_details', 'metadata', 'expand'];
      if (Object.keys(p).some((k) => !allowed.includes(k))) throw invalid('A canceled subscription can only update its cancellation_details and metadata.', undefined);
    }
    refuseUnmodelled(p, SUBSCRIPTION_UPDATE.filter((k) => !['cancel_at', 'cancel_at_period_end', 'cancellation_details', 'default_payment_method', 'description', 'expand', 'items', 'metadata', 'payment_behavior', 'proration_behavior'].includes(k)));
    if (p.cancel_at !== undefined && p.cancel_at !== '') throw notImplemented('cancel_at');
    const paymentBehavior = asEnum(p.payment_behavior, 'payment_behavior', ['allow_incomplete', 'default_incomplete', 'error_if_incomplete', 'pending_if_incomplete'] as const);
    if (paymentBehavior && paymentBehavior !== 'allow_incomplete') throw notImplemented('payment_behavior');
    const proration = asEnum(p.proration_behavior, 'proration_behavior', ['always_invoice', 'create_prorations', 'none'] as const) ?? 'create_prorations';
    const cancelAtPeriodEnd = asBool(p.cancel_at_period_end, 'cancel_at_period_end');
    const detailsRaw = asObject(p.cancellation_details, 'cancellation_details');
    if (detailsRaw) checkKeys(detailsRaw, ['comment', 'feedback'], 'cancellation_details');
    const feedback = detailsRaw ? asEnum(detailsRaw.feedback, 'cancellation_details[feedback]', ['customer_service', 'low_quality', 'missing_features', 'other', 'switched_service', 'too_complex', 'too_expensive', 'unused'] as const) : undefined;
    const defaultPm = asString(p.default_payment_method, 'default_payment_method');
    if (defaultPm !== undefined && !defaultPm.startsWith('pm_')) throw noSuch('PaymentMethod', defaultPm, 'default_payment_method');

    // Validate every item change before changing anything.
    const state = subStates.get(subscription.id)!;
    const period = periodOf(subscription.id);
    interface ItemChange { item: BillingSubscriptionItem | null; price: BillingPrice | null; quantity: number | undefined; deleted: boolean; metadata: ParamValue | undefined }
    const changes: ItemChange[] = [];
    const rawItems = asArray(p.items, 'items') ?? [];
    rawItems.forEach((raw, i) => {
      const at = `items[${i}]`;
      const it = asObject(raw, at);
      if (!it) throw missing(at);
      checkKeys(it, SUBSCRIPTION_UPDATE_ITEM, at);
      refuseUnmodelled(it, ['billing_thresholds', 'clear_usage', 'current_trial', 'discounts', 'price_data', 'tax_rates'], at);
      const itemId = asString(it.id, `${at}[id]`);
      const item = itemId ? subscription.items.data.find((x) => x.id === itemId) : null;
      if (itemId && !item) throw invalid(`No such subscription item: '${itemId}' on subscription '${subscription.id}'.`, `${at}[id]`, 'resource_missing');
      const priceId = asString(it.price, `${at}[price]`) ?? asString(it.plan, `${at}[plan]`);
      const price = priceId ? requirePrice(priceId, `${at}[price]`) : null;
      if (price) {
        if (!price.active) throw invalid(`The price specified (${price.id}) is inactive. This field only accepts active prices.`, `${at}[price]`);
        if (!price.recurring) throw invalid('The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.', `${at}[price]`);
        if (price.currency !== subscription.currency) throw invalid(`The price specified uses ${price.currency} but this subscription is in ${subscription.currency}.`, `${at}[price]`);
        if (price.recurring.interval !== state.interval || price.recurring.interval_count !== state.intervalCount) throw invalid('fake-stripe: changing the billing interval (billing_cycle_anchor reset) is not implemented', `${at}[price]`);
      }
      const deleted = asBool(it.deleted, `${at}[deleted]`) ?? false;
      const quantity = asInt(it.quantity, `${at}[quantity]`);
      if (!item && !price) throw missing(`${at}[price]`);
      if (deleted && !item) throw missing(`${at}[id]`);
      const target = price ?? item!.price;
      if (quantity !== undefined && isMetered(target)) throw invalid('Quantity should not be specified where usage_type is `metered`.', `${at}[quantity]`);
      if (quantity !== undefined && quantity < 0) throw invalid('This value must be greater than or equal to 0.', `${at}[quantity]`, 'parameter_invalid_integer');
      changes.push({ item: item ?? null, price, quantity, deleted, metadata: it.metadata });
    });
    const remaining = subscription.items.data.filter((x) => !changes.some((ch) => ch.item === x && ch.deleted)).length + changes.filter((ch) => !ch.item).length;
    if (rawItems.length > 0 && remaining === 0) throw invalid('A subscription must have at least one active plan. To cancel a subscription, please use the cancel API endpoint on /v1/subscriptions.', 'items');
    const finalPrices = [
      ...subscription.items.data.filter((x) => !changes.some((ch) => ch.item === x && ch.deleted)).map((x) => changes.find((ch) => ch.item === x)?.price ?? x.price),
      ...changes.filter((ch) => !ch.item).map((ch) => ch.price!),
    ];
    if (new Set(finalPrices.map((x) => x.id)).size !== finalPrices.length) throw invalid('Cannot add multiple subscription items with the same price.', 'items');

    const before = copy(subscription);
    const created: PendingItem[] = [];
    const bill = (entry: PendingItem | null) => {
      if (entry && proration !== 'none') created.push(entry);
    };
    const flexible = subscription.billing_mode.type === 'flexible';
    for (const ch of changes) {
      if (ch.item) {
        const item = ch.item;
        const oldPrice = item.price;
        const oldQuantity = item.quantity ?? 1;
        if (ch.deleted) {
          if (isMetered(oldPrice)) {
            if (flexible) bill(flushUsage(subscription, item, state, period));
            state.usageFrom.delete(item.id);
          } else {
            bill(prorationItem(subscription, item, oldPrice, oldQuantity, -1, period));
          }
          subscription.items.data = subscription.items.data.filter((x) => x !== item);
          continue;
        }
        const newPrice = ch.price ?? oldPrice;
        const newQuantity = isMetered(newPrice) ? null : ch.quantity ?? (isMetered(oldPrice) ? 1 : oldQuantity);
        const priceChanged = newPrice.id !== oldPrice.id;
        if (priceChanged || newQuantity !== (item.quantity ?? null)) {
          if (isMetered(oldPrice) && priceChanged) {
            if (flexible) bill(flushUsage(subscription, item, state, period));
          } else if (!isMetered(oldPrice)) {
            bill(prorationItem(subscription, item, oldPrice, oldQuantity, -1, period));
          }
          if (!isMetered(newPrice) && newQuantity! > 0) bill(prorationItem(subscription, item, newPrice, newQuantity!, 1, period));
          item.price = copy(newPrice);
          item.plan = planOf(newPrice);
          if (isMetered(newPrice)) {
            delete item.quantity;
            if (priceChanged) state.usageFrom.set(item.id, clock);
          } else {
            item.quantity = newQuantity!;
            state.usageFrom.delete(item.id);
          }
        }
        if (ch.metadata !== undefined) item.metadata = mergeMetadata(item.metadata, ch.metadata, 'items[][metadata]');
      } else {
        const price = ch.price!;
        const item = newItem(subscription, price, ch.quantity ?? null, period, ch.metadata !== undefined ? mergeMetadata({}, ch.metadata) : {});
        subscription.items.data.push(item);
        if (isMetered(price)) state.usageFrom.set(item.id, clock);
        else if ((item.quantity ?? 0) > 0) bill(prorationItem(subscription, item, price, item.quantity!, 1, period));
      }
    }
    pendingItems.push(...created.filter((x) => x.amount !== 0 || x.quantityDecimal !== null));

    if (cancelAtPeriodEnd !== undefined && cancelAtPeriodEnd !== subscription.cancel_at_period_end) {
      subscription.cancel_at_period_end = cancelAtPeriodEnd;
      subscription.cancel_at = cancelAtPeriodEnd ? period[1] : null;
      subscription.canceled_at = cancelAtPeriodEnd ? clock : null;
      subscription.cancellation_details.reason = cancelAtPeriodEnd ? 'cancellation_requested' : null;
    }
    if (p.cancel_at === '') {
      subscription.cancel_at = null;
      subscription.cancel_at_period_end = false;
      subscription.canceled_at = null;
      subscription.cancellation_details.reason = null;
    }
    if (detailsRaw) {
      if (detailsRaw.comment !== undefined) subscription.cancellation_details.comment = asString(detailsRaw.comment, 'cancellation_details[comment]') ?? null;
      if (detailsRaw.feedback !== undefined) subscription.cancellation_details.feedback = feedback ?? null;
    }
    if (defaultPm !== undefined) subscription.default_payment_method = defaultPm;
    if (p.description !== undefined) subscription.description = asString(p.description, 'description') ?? null;
    subscription.metadata = mergeMetadata(subscription.metadata, p.metadata);

    if (proration === 'always_invoice' && created.length > 0) {
      const invoice = newInvoice(customers.get(subscription.customer)!, subscription, 'subscription_update', clock, clock);
      takePendingItems(invoice, subscription.id);
      subscription.latest_invoice = invoice.id;
      emit('customer.subscription.updated', subscription, changed(before as never, subscription as never));
      // allow_incomplete: the change stands even when the charge fails (the subscription goes past_due).
      invoiceNow(invoice);
    } else {
      const previous = changed(before as never, subscription as never);
      if (previous) emit('customer.subscription.updated', subscription, previous);
    }
    return subscription;
  };

  function cancelNow(subscription: BillingSubscription, opts: { invoiceNow: boolean; prorate: boolean; comment?: string | null; feedback?: string | null }): BillingSubscription {
    if (subscription.status === 'canceled') throw invalid(`This subscription (${subscription.id}) is already canceled.`, undefined);
    const state = subStates.get(subscription.id)!;
    const period = periodOf(subscription.id);
    const before = copy(subscription);
    if (opts.prorate) {
      for (const item of subscription.items.data) if (!isMetered(item.price)) pendingItems.push(prorationItem(subscription, item, item.price, item.quantity ?? 1, -1, period));
    }
    unschedule('cycle', subscription.id);
    subscription.status = 'canceled';
    subscription.canceled_at = clock;
    subscription.ended_at = clock;
    subscription.cancel_at = null;
    subscription.cancel_at_period_end = false;
    subscription.cancellation_details = { comment: opts.comment ?? subscription.cancellation_details.comment, feedback: (opts.feedback as never) ?? subscription.cancellation_details.feedback, reason: 'cancellation_requested' };
    if (opts.invoiceNow) {
      const invoice = newInvoice(customers.get(subscription.customer)!, subscription, 'subscription_cycle', period[0], clock);
      for (const item of subscription.items.data) if (isMetered(item.price)) addMeteredLine(invoice, subscription, item, state.usageFrom.get(item.id) ?? period[0], clock);
      meteredLines.delete(invoice.id);
      takePendingItems(invoice, subscription.id);
      subscription.latest_invoice = invoice.id;
      emit('customer.subscription.deleted', subscription, changed(before as never, subscription as never));
      invoiceNow(invoice);
    } else {
      emit('customer.subscription.deleted', subscription, changed(before as never, subscription as never));
    }
    return subscription;
  }

  const cancelSubscription: Handler = (p, c) => {
    checkKeys(p, SUBSCRIPTION_CANCEL, '');
    const subscription = getSubscription(c.id);
    const detailsRaw = asObject(p.cancellation_details, 'cancellation_details');
    if (detailsRaw) checkKeys(detailsRaw, ['comment', 'feedback'], 'cancellation_details');
    return cancelNow(subscription, {
      invoiceNow: asBool(p.invoice_now, 'invoice_now') ?? false, prorate: asBool(p.prorate, 'prorate') ?? false,
      comment: detailsRaw ? asString(detailsRaw.comment, 'cancellation_details[comment]') ?? null : undefined,
      feedback: detailsRaw ? asString(detailsRaw.feedback, 'cancellation_details[feedback]') ?? null : undefined,
    });
  };

  const listSubscriptions: Handler = (p) => {
    checkKeys(p, SUBSCRIPTION_LIST, '');
    refuseUnmodelled(p, ['automatic_tax', 'created', 'current_period_end', 'current_period_start', 'customer_account', 'test_clock']);
    const customer = asString(p.customer, 'customer');
    const priceId = asString(p.price, 'price') ?? asString(p.plan, 'plan');
    const status = asEnum(p.status, 'status', ['active', 'all', 'canceled', 'ended', 'incomplete', 'incomplete_expired', 'past_due', 'paused', 'trialing', 'unpaid'] as const);
    const all = newestFirst(subscriptions.values())
      .filter((x) => (!customer || x.customer === customer) && (!priceId || x.items.data.some((i) => i.price.id === priceId)))
      // Without a status Stripe lists the subscriptions that are not canceled.
      .filter((x) => (status === undefined ? x.status !== 'canceled' : status === 'all' ? true : status === 'ended' ? x.status === 'canceled' : x.status === status));
    return paginate(all, p, '/v1/subscriptions', 'subscription');
  };

  const allItems = () => [...subscriptions.values()].flatMap((s) => s.items.data);

  // ----- invoice endpoints -----

  const listInvoices: Handler = (p) => {
    checkKeys(p, INVOICE_LIST, '');
    refuseUnmodelled(p, ['created', 'customer_account', 'due_date']);
    const customer = asString(p.customer, 'customer');
    const subscriptionId = asString(p.subscription, 'subscription');
    const status = asEnum(p.status, 'status', ['draft', 'open', 'paid', 'uncollectible', 'void'] as const);
    asEnum(p.collection_method, 'collection_method', ['charge_automatically', 'send_invoice'] as const);
    const all = newestFirst(invoices.values()).filter((x) => (!customer || x.customer === customer) && (!subscriptionId || x.parent?.subscription_details?.subscription === subscriptionId) && (!status || x.status === status));
    return paginate(all, p, '/v1/invoices', 'invoice');
  };

  const finalizeInvoice: Handler = (p, c) => {
    checkKeys(p, INVOICE_FINALIZE, '');
    const invoice = getInvoice(c.id);
    if (invoice.status !== 'draft') throw invalid("This invoice is already finalized, you can't re-finalize a non-draft invoice.", undefined, 'invoice_not_editable');
    const autoAdvance = asBool(p.auto_advance, 'auto_advance');
    finalize(invoice);
    if (autoAdvance !== false) attemptPayment(invoice);
    return invoice;
  };

  const payInvoice: Handler = (p, c) => {
    checkKeys(p, INVOICE_PAY, '');
    refuseUnmodelled(p, ['forgive', 'mandate', 'source']);
    const invoice = getInvoice(c.id);
    const paymentMethod = asString(p.payment_method, 'payment_method');
    if (paymentMethod !== undefined && !paymentMethod.startsWith('pm_')) throw noSuch('PaymentMethod', paymentMethod, 'payment_method');
    asBool(p.off_session, 'off_session');
    const outOfBand = asBool(p.paid_out_of_band, 'paid_out_of_band') ?? false;
    if (invoice.status === 'paid') throw invalid('Invoice is already paid', undefined);
    if (invoice.status === 'void') throw invalid('This invoice can no longer be paid because it is void.', undefined);
    if (invoice.status === 'draft') finalize(invoice);
    if (paymentMethod !== undefined) {
      // Paying with a card makes it the subscription's card too, as paying on the hosted invoice page does.
      const subscription = subscriptionOf(invoice);
      if (subscription) subscription.default_payment_method = paymentMethod;
    }
    const outcome = attemptPayment(invoice, paymentMethod, outOfBand);
    if (!outcome.ok) {
      const body = { type: 'card_error' as const, code: outcome.error.code, message: outcome.error.message, doc_url: docUrl(outcome.error.code), ...(outcome.error.decline_code ? { decline_code: outcome.error.decline_code } : {}) };
      throw new ApiError(402, body, true);
    }
    return invoice;
  };

  function previewInvoice(p: Params): BillingInvoice {
    checkKeys(p, INVOICE_PREVIEW, '');
    refuseUnmodelled(p, ['automatic_tax', 'currency', 'customer_account', 'customer_details', 'discounts', 'invoice_items', 'issuer', 'on_behalf_of', 'preview_mode', 'schedule', 'schedule_details', 'subscription_details']);
    const subscriptionId = asString(p.subscription, 'subscription');
    const customerId = asString(p.customer, 'customer');
    if (!subscriptionId && !customerId) throw invalid('Missing required param: customer or subscription.', 'customer', 'parameter_missing');
    const subscription = subscriptionId ? subscriptions.get(subscriptionId) : [...subscriptions.values()].find((s) => s.customer === customerId && s.status !== 'canceled');
    if (subscriptionId && !subscription) throw noSuch('subscription', subscriptionId, 'subscription');
    if (!subscription) throw invalid(`No upcoming invoices for customer: ${customerId}`, undefined, 'invoice_upcoming_none');
    if (customerId && subscription.customer !== customerId) throw invalid(`The subscription ${subscription.id} does not belong to the customer ${customerId}.`, 'subscription');
    if (subscription.status === 'canceled') throw invalid(`No upcoming invoices for subscription: ${subscription.id}`, undefined, 'invoice_upcoming_none');
    const customer = customers.get(subscription.customer)!;
    const state = subStates.get(subscription.id)!;
    const [start, end] = periodOf(subscription.id);
    const invoice = newInvoice(customer, subscription, 'upcoming', start, end, `upcoming_in_${randomId(24)}`);
    invoice.created = end;
    for (const item of subscription.items.data) if (isMetered(item.price)) addMeteredLine(invoice, subscription, item, state.usageFrom.get(item.id) ?? start, Math.min(clock + 1, end));
    meteredLines.delete(invoice.id);
    for (const pending of pendingItems.filter((x) => x.subscription === subscription.id)) {
      invoice.lines.data.push(line(invoice, {
        amount: pending.amount, description: pending.description, price: pending.price,
        quantity: pending.quantityDecimal !== null ? dec(pending.quantityDecimal) : pending.quantity !== null ? dec(pending.quantity) : null,
        period: [pending.period.start, pending.period.end], subscription: subscription.id, subscriptionItem: pending.subscriptionItem, invoiceItem: pending.id, proration: pending.proration,
      }));
    }
    if (!subscription.cancel_at_period_end) {
      const next: [number, number] = [end, periodBoundary(state.anchor, state.interval, state.intervalCount, state.cycle + 2)];
      for (const item of subscription.items.data) if (!isMetered(item.price)) addLicensedLine(invoice, subscription, item, next);
    }
    computeTotals(invoice);
    invoice.starting_balance = customer.balance;
    invoice.amount_due = Math.max(0, invoice.total + customer.balance);
    invoice.amount_remaining = invoice.amount_due;
    invoice.lines.url = `/v1/invoices/${invoice.id}/lines`;
    return invoice;
  }

  // ----- billing portal -----

  const createPortalSession: Handler = (p) => {
    checkKeys(p, PORTAL_SESSION_CREATE, '');
    refuseUnmodelled(p, ['after_expiration', 'customer_account', 'on_behalf_of']);
    const customer = requireCustomer(customers, reqString(p.customer, 'customer'), 'customer');
    const configuration = asString(p.configuration, 'configuration') ?? portalConfiguration;
    if (configuration !== portalConfiguration) throw noSuch('billing_portal.configuration', configuration, 'configuration');
    const returnUrl = asUrl(p.return_url, 'return_url') ?? null;
    const locale = asString(p.locale, 'locale') ?? null;
    const flowRaw = asObject(p.flow_data, 'flow_data');
    let flow: unknown = null;
    if (flowRaw) {
      checkKeys(flowRaw, ['after_completion', 'subscription_cancel', 'subscription_update', 'subscription_update_confirm', 'type'], 'flow_data');
      refuseUnmodelled(flowRaw, ['after_completion', 'subscription_update', 'subscription_update_confirm'], 'flow_data');
      const type = asEnum(flowRaw.type, 'flow_data[type]', ['payment_method_update', 'subscription_cancel', 'subscription_update', 'subscription_update_confirm'] as const);
      if (!type) throw missing('flow_data[type]');
      if (type === 'subscription_update' || type === 'subscription_update_confirm') throw notImplemented(`flow_data[type]=${type}`);
      let cancel: unknown = null;
      if (type === 'subscription_cancel') {
        const sc = asObject(flowRaw.subscription_cancel, 'flow_data[subscription_cancel]');
        if (!sc) throw missing('flow_data[subscription_cancel]');
        checkKeys(sc, ['retention', 'subscription'], 'flow_data[subscription_cancel]');
        refuseUnmodelled(sc, ['retention'], 'flow_data[subscription_cancel]');
        const subscriptionId = reqString(sc.subscription, 'flow_data[subscription_cancel][subscription]');
        const subscription = subscriptions.get(subscriptionId);
        if (!subscription || subscription.customer !== customer.id) throw noSuch('subscription', subscriptionId, 'flow_data[subscription_cancel][subscription]');
        cancel = { retention: null, subscription: subscriptionId };
      }
      flow = {
        after_completion: { hosted_confirmation: null, redirect: null, type: 'portal_homepage' }, subscription_cancel: cancel, subscription_update: null,
        subscription_update_confirm: null, type,
      };
    }
    const session: BillingPortalSession = {
      configuration, created: clock, customer: customer.id, flow, id: `bps_${randomId(24)}`, livemode: false, locale, object: 'billing_portal.session',
      on_behalf_of: null, return_url: returnUrl, url: `https://billing.stripe.com/p/session/test_${randomId(48)}`, customer_account: null,
    };
    portalSessions.set(session.id, session);
    return session;
  };

  // ----- customers -----

  const updateCustomer: Handler = (p, c) => {
    checkKeys(p, CUSTOMER_UPDATE, '');
    refuseUnmodelled(p, ['address', 'business_name', 'cash_balance', 'default_source', 'individual_name', 'shipping', 'source', 'tax', 'validate']);
    const customer = customers.get(c.id);
    if (!customer) throw noSuch('customer', c.id, 'id', 404);
    const before = copy(customer);
    const settings = asObject(p.invoice_settings, 'invoice_settings');
    if (settings) {
      checkKeys(settings, ['custom_fields', 'default_payment_method', 'footer', 'rendering_options'], 'invoice_settings');
      refuseUnmodelled(settings, ['custom_fields', 'rendering_options'], 'invoice_settings');
      if (settings.default_payment_method !== undefined) {
        const pm = asString(settings.default_payment_method, 'invoice_settings[default_payment_method]') ?? null;
        if (pm !== null && !pm.startsWith('pm_')) throw noSuch('PaymentMethod', pm, 'invoice_settings[default_payment_method]');
        customer.invoice_settings.default_payment_method = pm;
      }
      if (settings.footer !== undefined) customer.invoice_settings.footer = asString(settings.footer, 'invoice_settings[footer]') ?? null;
    }
    for (const key of ['email', 'name', 'description', 'phone'] as const) if (p[key] !== undefined) customer[key] = asString(p[key], key) ?? null;
    const balance = asInt(p.balance, 'balance');
    if (balance !== undefined) customer.balance = balance;
    const prefix = asString(p.invoice_prefix, 'invoice_prefix');
    if (prefix !== undefined) {
      if (!/^[A-Z0-9]{3,12}$/.test(prefix)) throw invalid('invoice_prefix must be 3 to 12 uppercase letters or digits.', 'invoice_prefix');
      customer.invoice_prefix = prefix;
    }
    const sequence = asInt(p.next_invoice_sequence, 'next_invoice_sequence');
    if (sequence !== undefined) customer.next_invoice_sequence = sequence;
    if (p.preferred_locales !== undefined) customer.preferred_locales = p.preferred_locales === '' ? [] : (asArray(p.preferred_locales, 'preferred_locales') ?? []).map((x, i) => reqString(x, `preferred_locales[${i}]`));
    const taxExempt = asEnum(p.tax_exempt, 'tax_exempt', ['exempt', 'none', 'reverse'] as const);
    if (taxExempt) customer.tax_exempt = taxExempt;
    customer.metadata = mergeMetadata(customer.metadata, p.metadata);
    const previous = changed(before as never, customer as never);
    if (previous) emit('customer.updated', customer, previous);
    return customer;
  };

  const listCustomers: Handler = (p) => {
    checkKeys(p, CUSTOMER_LIST, '');
    refuseUnmodelled(p, ['created', 'test_clock']);
    const email = asString(p.email, 'email');
    const all = newestFirst(customers.values()).filter((x) => !email || x.email === email);
    return paginate(all, p, '/v1/customers', 'customer');
  };

  // ----- events -----

  const listEvents: Handler = (p) => {
    checkKeys(p, EVENT_LIST, '');
    refuseUnmodelled(p, ['created', 'delivery_success']);
    const type = asString(p.type, 'type');
    const types = asArray(p.types, 'types')?.map((x, i) => reqString(x, `types[${i}]`));
    if (type && types) throw invalid('You may only specify one of these parameters: type, types.', 'types');
    const matchType = (t: string) => (!type || (type.endsWith('*') ? t.startsWith(type.slice(0, -1)) : t === type)) && (!types || types.includes(t));
    const all = [...events].reverse().filter((e) => matchType(e.type));
    return paginate(all, p, '/v1/events', 'event');
  };

  // ----- routing -----

  const onlyExpand = (p: Params) => checkKeys(p, ['expand'], '');
  const route = (method: string, pattern: RegExp, handler: Handler): Route => ({ method, pattern, handler: withRequest(handler) });
  const routes: Route[] = [
    route('POST', /^\/v1\/checkout\/sessions$/, createSubscriptionCheckout),
    route('GET', /^\/v1\/subscriptions$/, listSubscriptions),
    route('GET', /^\/v1\/subscriptions\/([^/]+)$/, (p, c) => (onlyExpand(p), getSubscription(c.id))),
    route('POST', /^\/v1\/subscriptions\/([^/]+)$/, updateSubscription),
    route('DELETE', /^\/v1\/subscriptions\/([^/]+)$/, cancelSubscription),
    route('GET', /^\/v1\/subscription_items$/, (p) => {
      checkKeys(p, SUBSCRIPTION_ITEM_LIST, '');
      const subscriptionId = reqString(p.subscription, 'subscription');
      const subscription = subscriptions.get(subscriptionId);
      if (!subscription) throw noSuch('subscription', subscriptionId, 'subscription');
      return paginate([...subscription.items.data], p, `/v1/subscription_items?subscription=${subscriptionId}`, 'subscription_item');
    }),
    route('GET', /^\/v1\/subscription_items\/([^/]+)$/, (p, c) => {
      onlyExpand(p);
      const item = allItems().find((x) => x.id === c.id);
      if (!item) throw noSuch('subscription_item', c.id, 'id', 404);
      return item;
    }),
    route('POST', /^\/v1\/invoices\/create_preview$/, (p) => previewInvoice(p)),
    route('GET', /^\/v1\/invoices$/, listInvoices),
    route('GET', /^\/v1\/invoices\/([^/]+)$/, (p, c) => (onlyExpand(p), getInvoice(c.id))),
    route('GET', /^\/v1\/invoices\/([^/]+)\/lines$/, (p, c) => {
      checkKeys(p, PAGINATION, '');
      const invoice = getInvoice(c.id);
      return paginate([...invoice.lines.data], p, `/v1/invoices/${invoice.id}/lines`, 'line_item');
    }),
    route('POST', /^\/v1\/invoices\/([^/]+)\/finalize$/, finalizeInvoice),
    route('POST', /^\/v1\/invoices\/([^/]+)\/pay$/, payInvoice),
    route('POST', /^\/v1\/billing_portal\/sessions$/, createPortalSession),
    route('GET', /^\/v1\/customers$/, listCustomers),
    route('POST', /^\/v1\/customers\/([^/]+)$/, updateCustomer),
    route('GET', /^\/v1\/events$/, listEvents),
    route('GET', /^\/v1\/events\/([^/]+)$/, (p, c) => {
      onlyExpand(p);
      const event = events.find((e) => e.id === c.id);
      if (!event) throw noSuch('event', c.id, 'id', 404);
      return event;
    }),
  ];

  const extension: FakeStripeExtension = {
    routes: [...catalog.routes, ...routes],
    lookup,
    expand(object, path) {
      if (object.object === 'price' && path === 'tiers') return catalog.expandTiers(object);
      return undefined;
    },
    reset() {
      clock = startTime;
      webhook = options.webhook ?? null;
      seq = 0;
      catalog.reset();
      for (const m of [subscriptions, invoices, portalSessions, declines, subStates, meteredLines, checkoutExtras]) m.clear();
      delivered.clear();
      pendingItems.length = 0;
      events.length = 0;
      scheduled = [];
    },
  };

  // ----- the test's side -----

  function completeSubscriptionCheckout(sessionId: string, opts: CompleteSubscriptionCheckoutOptions = {}) {
    const session = core.checkoutSessions.get(sessionId) as unknown as Record<string, unknown> | undefined;
    const extras = checkoutExtras.get(sessionId);
    if (!session || !extras) throw new Error(`fake-stripe billing: no subscription-mode checkout session ${sessionId}`);
    if (session.status !== 'open') throw new Error(`fake-stripe billing: checkout session ${sessionId} is ${String(session.status)}`);
    const paymentMethod = opts.paymentMethod ?? 'pm_card_visa';
    const decline = DECLINES[paymentMethod];
    if (decline) throw new Error(`fake-stripe billing: ${decline.message} (${decline.decline_code}): the buyer stays on the Checkout page`);
    let customer = session.customer ? customers.get(String(session.customer))! : null;
    if (!customer) {
      const email = opts.email ?? (session.customer_email as string | null) ?? 'buyer@example.test';
      customer = core.createCustomer({ email, created: clock });
      emit('customer.created', customer);
    }
    const subscription = createSubscription(customer, extras.lines, extras.subscriptionData, paymentMethod);
    emit('customer.subscription.created', subscription);
    const period = periodOf(subscription.id);
    const invoice = newInvoice(customer, subscription, 'subscription_create', clock, clock);
    for (const item of subscription.items.data) if (!isMetered(item.price)) addLicensedLine(invoice, subscription, item, period);
    subscription.latest_invoice = invoice.id;
    const outcome = invoiceNow(invoice, paymentMethod);
    if (!outcome.ok) throw new Error(`fake-stripe billing: the first invoice of ${subscription.id} failed: ${outcome.error.message}`);
    Object.assign(session, {
      customer: customer.id, status: 'complete', url: null, subscription: subscription.id,
      payment_status: invoice.amount_paid > 0 ? 'paid' : 'no_payment_required',
      customer_details: { address: null, email: customer.email, name: customer.name, phone: null, tax_exempt: 'none', tax_ids: [], business_name: null, individual_name: null },
    });
    emit('checkout.session.completed', session);
    return { session: copy(session), subscription: copy(subscription), invoice: copy(invoice), customer: copy(customer) };
  }

  const billing: FakeBilling = {
    now: () => clock,
    advanceTo,
    advanceBy: (seconds, opts) => advanceTo(clock + seconds, opts),
    async closePeriod(subscriptionId, opts) {
      const subscription = subscriptions.get(subscriptionId);
      if (!subscription) throw new Error(`fake-stripe billing: no subscription ${subscriptionId}`);
      const cycleInvoice = (x: BillingInvoice) => x.parent?.subscription_details?.subscription === subscriptionId && x.billing_reason === 'subscription_cycle';
      // A period that has ended but whose invoice is still a draft is the one to close; else the current one.
      const draft = [...invoices.values()].find((x) => cycleInvoice(x) && x.status === 'draft');
      if (!draft && subscription.status === 'canceled') throw new Error(`fake-stripe billing: subscription ${subscriptionId} is canceled`);
      const end = draft ? draft.period_end : periodOf(subscriptionId)[1];
      const result = await advanceTo(Math.max(clock, end + grace), opts);
      const invoice = [...invoices.values()].find((x) => cycleInvoice(x) && x.period_end === end);
      if (!invoice) throw new Error(`fake-stripe billing: no invoice for the period of ${subscriptionId} ending ${end}`);
      return { ...result, invoice: copy(invoice), subscription: copy(subscriptions.get(subscriptionId)!) };
    },
    completeSubscriptionCheckout,
    declinePayments(customerId, card = 'pm_card_chargeDeclined') {
      if (!customers.has(customerId)) throw new Error(`fake-stripe billing: no customer ${customerId}`);
      const decline = DECLINES[card];
      if (!decline) throw new Error(`fake-stripe billing: ${card} is not a declining test card`);
      declines.set(customerId, decline);
    },
    acceptPayments(customerId) {
      declines.delete(customerId);
    },
    portal: {
      updatePaymentMethod(sessionId, paymentMethod) {
        const session = portalSessions.get(sessionId);
        if (!session) throw new Error(`fake-stripe billing: no portal session ${sessionId}`);
        const customer = customers.get(session.customer)!;
        const before = copy(customer);
        // The portal makes the new card the customer's default and the default of their subscriptions.
        customer.invoice_settings.default_payment_method = paymentMethod;
        declines.delete(customer.id);
        emit('customer.updated', customer, changed(before as never, customer as never));
        for (const subscription of subscriptions.values()) {
          if (subscription.customer !== customer.id || subscription.status === 'canceled') continue;
          const was = copy(subscription);
          subscription.default_payment_method = paymentMethod;
          const previous = changed(was as never, subscription as never);
          if (previous) emit('customer.subscription.updated', subscription, previous);
        }
      },
      cancelAtPeriodEnd(sessionId, subscriptionId) {
        const session = portalSessions.get(sessionId);
        if (!session) throw new Error(`fake-stripe billing: no portal session ${sessionId}`);
        const subscription = subscriptions.get(subscriptionId);
        if (!subscription || subscription.customer !== session.customer) throw new Error(`fake-stripe billing: ${subscriptionId} is not a subscription of ${session.customer}`);
        if (subscription.status === 'canceled' || subscription.cancel_at_period_end) return copy(subscription);
        const before = copy(subscription);
        const [, end] = periodOf(subscriptionId);
        Object.assign(subscription, { cancel_at_period_end: true, cancel_at: end, canceled_at: clock });
        subscription.cancellation_details.reason = 'cancellation_requested';
        emit('customer.subscription.updated', subscription, changed(before as never, subscription as never));
        return copy(subscription);
      },
    },
    setWebhookEndpoint(endpoint) {
      webhook = endpoint;
    },
    deliver: (endpoint, deliveryOptions) => deliver(endpoint ?? webhook, deliveryOptions),
    events(filter) {
      const all = events.filter((e) => (filter === undefined ? true : typeof filter === 'string' ? e.type === filter : filter(e)));
      return copy(all);
    },
    pendingEvents: () => copy(events.filter((e) => !delivered.has(e.id))),
    usage: (meterId, customerId, from, to) => Number(meterUsage(meterId, customerId, from, to).toString()),
    meterEvents: () => copy(catalog.recordedEvents),
    meterEventErrors: () => copy(catalog.recordedEvents.filter((r) => r.error !== null)),
    holdAggregation: () => catalog.holdAggregation(),
    releaseAggregation: () => catalog.releaseAggregation(),
    meters: catalog.meters,
    products: catalog.products,
    subscriptions,
    invoices,
    portalSessions,
  };
  return { extension, billing };
}

/** The fake Stripe API with Stripe Billing: `fake.billing` drives the test clock, checkout completion, the portal and webhooks. */
export async function startFakeStripeBilling(options: FakeStripeOptions & { billing?: FakeBillingOptions } = {}): Promise<FakeStripe & { billing: FakeBilling }> {
  let billing: FakeBilling | null = null;
  const { billing: billingOptions, ...rest } = options;
  const fake = await startFakeStripe({
    ...rest,
    extensions: [...(rest.extensions ?? []), (core) => {
      const made = createFakeBilling(core, billingOptions);
      billing = made.billing;
      return made.extension;
    }],
  });
  return Object.assign(fake, { billing: billing! as FakeBilling });
}

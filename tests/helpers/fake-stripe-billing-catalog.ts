import { createHash } from 'node:crypto';
import {
  OMIT, asArray, asBool, asEnum, asInt, asMetadata, asObject, asString, asUrl, checkKeys, copy, invalid, missing, noSuch, randomId, reqString, sub,
  type FakePrice, type FakeStripeCore, type Handler, type Metadata, type ParamValue, type Params, type Route,
} from './fake-stripe.ts';
import { aggregate, dec, type Dec, type Interval, type MeteredValue, type PriceTerms, type PriceTier } from './fake-stripe-billing-math.ts';
import type { BillingMeter, BillingMeterEvent, BillingPrice, BillingProduct, RecordedMeterEvent } from './fake-stripe-billing-objects.ts';
import { DAY, PAGINATION, asDecimal, getOr404, mergeMetadata, newestFirst, paginate, refuseUnmodelled, requireCustomer } from './fake-stripe-billing-shared.ts';

// The catalogue side of the fake Stripe's billing: Billing Meters, meter events (identifier dedupe, Stripe's
// asynchronous validation), meter event summaries, products and prices (metered on a meter, tiered, lookup keys,
// transform_quantity). Subscriptions and invoices (fake-stripe-billing.ts) price usage through it.

// Allowed parameters, from stripe-node 23.1.0's *Params types.
const METER_CREATE = ['customer_mapping', 'default_aggregation', 'display_name', 'event_name', 'event_time_window', 'expand', 'value_settings'];
const METER_UPDATE = ['display_name', 'expand'];
const METER_LIST = [...PAGINATION, 'status'];
const METER_SUMMARIES = [...PAGINATION, 'customer', 'end_time', 'start_time', 'value_grouping_window'];
const METER_EVENT_CREATE = ['event_name', 'expand', 'identifier', 'payload', 'timestamp'];
const PRODUCT_CREATE = ['active', 'default_price_data', 'description', 'expand', 'id', 'images', 'marketing_features', 'metadata', 'name', 'package_dimensions', 'shippable', 'statement_descriptor', 'tax_code', 'tax_details', 'type', 'unit_label', 'url'];
const PRODUCT_UPDATE = ['active', 'default_price', 'description', 'expand', 'images', 'marketing_features', 'metadata', 'name', 'package_dimensions', 'shippable', 'statement_descriptor', 'tax_code', 'tax_details', 'unit_label', 'url'];
const PRODUCT_LIST = [...PAGINATION, 'active', 'created', 'ids', 'shippable', 'type', 'url'];
const PRICE_CREATE = ['active', 'billing_scheme', 'currency', 'currency_options', 'custom_unit_amount', 'expand', 'lookup_key', 'metadata', 'nickname', 'product', 'product_data', 'recurring', 'tax_behavior', 'tiers', 'tiers_mode', 'transfer_lookup_key', 'transform_quantity', 'unit_amount', 'unit_amount_decimal'];
const PRICE_UPDATE = ['active', 'currency_options', 'expand', 'lookup_key', 'metadata', 'nickname', 'tax_behavior', 'transfer_lookup_key'];
const PRICE_LIST = [...PAGINATION, 'active', 'created', 'currency', 'lookup_keys', 'product', 'recurring', 'type'];
const PRICE_TIER = ['flat_amount', 'flat_amount_decimal', 'unit_amount', 'unit_amount_decimal', 'up_to'];
const PRICE_RECURRING = ['interval', 'interval_count', 'meter', 'trial_period_days', 'usage_type'];
const PRODUCT_DATA = ['active', 'id', 'metadata', 'name', 'statement_descriptor', 'tax_code', 'tax_details', 'unit_label'];

export interface CatalogContext {
  core: FakeStripeCore;
  /** The test clock, Unix seconds. */
  now(): number;
  /** How long a meter-event identifier is remembered. */
  identifierWindowSeconds: number;
}

export interface Catalog {
  routes: Route[];
  meters: Map<string, BillingMeter>;
  products: Map<string, BillingProduct>;
  recordedEvents: RecordedMeterEvent[];
  /** A price by id, with every key of the published fixture. */
  priceById(id: string): BillingPrice | undefined;
  requirePrice(id: string, param: string): BillingPrice;
  termsOf(price: BillingPrice): PriceTerms;
  productName(productId: string): string;
  /** A meter's aggregate for a customer over [from, to); summaries leave out what aggregation still holds. */
  meterUsage(meterId: string, customerId: string, from: number, to: number, forSummaries?: boolean): Dec;
  /** The includable `tiers` of a price (OMIT for a per-unit price). */
  expandTiers(price: Record<string, unknown>): unknown;
  lookup(id: string): unknown;
  holdAggregation(): void;
  releaseAggregation(): void;
  reset(): void;
}

export function createCatalog(ctx: CatalogContext): Catalog {
  const { customers, prices } = ctx.core;
  const now = ctx.now;
  let seq = 0;
  let holding = false;
  const meters = new Map<string, BillingMeter>();
  const recordedEvents: RecordedMeterEvent[] = [];
  const heldSeqs = new Set<number>();
  const identifiers = new Map<string, number>(); // identifier → when it was first accepted
  const products = new Map<string, BillingProduct>();
  const priceTiers = new Map<string, PriceTier[]>();
  const getMeter = getOr404(meters, 'billing.meter');
  const getProduct = getOr404(products, 'product');

  /** A price by id with every key of the published fixture (prices the core made with addPrice or price_data get the defaults). */
  function priceById(id: string): BillingPrice | undefined {
    const found = prices.get(id) as unknown as Partial<BillingPrice> | undefined;
    if (!found) return undefined;
    if (found.billing_scheme === undefined) {
      const recurring = found.recurring ? { interval: found.recurring.interval as Interval, interval_count: found.recurring.interval_count ?? 1, meter: null, usage_type: 'licensed' as const, trial_period_days: null } : null;
      Object.assign(found, {
        billing_scheme: 'per_unit', created: now(), custom_unit_amount: null, lookup_key: null, nickname: null, recurring,
        tax_behavior: 'unspecified', tiers_mode: null, transform_quantity: null, unit_amount_decimal: found.unit_amount == null ? null : String(found.unit_amount),
      });
    }
    return found as BillingPrice;
  }

  function requirePrice(id: string, param: string): BillingPrice {
    const price = priceById(id);
    if (!price) throw noSuch('price', id, param);
    return price;
  }

  const termsOf = (price: BillingPrice): PriceTerms => ({
    billing_scheme: price.billing_scheme, tiers_mode: price.tiers_mode, tiers: priceTiers.get(price.id) ?? null,
    unit_amount_decimal: price.unit_amount_decimal, transform_quantity: price.transform_quantity,
  });

  function productName(productId: string): string {
    return products.get(productId)?.name ?? productId;
  }

  /** `expand[]=data.x` on a list, for the fields this extension expands. */
  function expandListData<T extends Record<string, unknown>>(list: { data: T[] }, p: Params): void {
    const paths = (asArray(p.expand, 'expand') ?? []).map((x, i) => reqString(x, `expand[${i}]`));
    paths.forEach((path, i) => {
      if (!path.startsWith('data.')) throw invalid(`This property cannot be expanded (${path}).`, `expand[${i}]`);
      const field = path.slice(5);
      for (const item of list.data) {
        const value = expandField(item, field);
        if (value === undefined) throw invalid(`This property cannot be expanded (${path}).`, `expand[${i}]`);
        if (value !== OMIT) (item as Record<string, unknown>)[field] = value;
      }
    });
  }

  /** A price's `tiers` is includable: Stripe leaves it out unless expanded, and a per-unit price has none. */
  function expandTiers(price: Record<string, unknown>): unknown {
    return price.billing_scheme === 'tiered' ? copy(priceTiers.get(String(price.id)) ?? []) : OMIT;
  }

  function expandField(object: Record<string, unknown>, field: string): unknown {
    if (object.object === 'price' && field === 'tiers') return expandTiers(object);
    const value = object[field];
    if (typeof value === 'string') {
      const target = lookup(value) ?? customers.get(value) ?? prices.get(value);
      return target === undefined ? undefined : copy(target);
    }
    return undefined;
  }

  function lookup(id: string): unknown {
    return meters.get(id) ?? products.get(id);
  }

  // ========== meters ==========

  const createMeter: Handler = (p) => {
    checkKeys(p, METER_CREATE, '');
    const displayName = reqString(p.display_name, 'display_name');
    const eventName = reqString(p.event_name, 'event_name');
    if (eventName.length > 100) throw invalid('event_name must be at most 100 characters', 'event_name');
    const aggregation = asObject(p.default_aggregation, 'default_aggregation');
    if (!aggregation) throw missing('default_aggregation');
    checkKeys(aggregation, ['formula'], 'default_aggregation');
    const formula = asEnum(aggregation.formula, 'default_aggregation[formula]', ['count', 'last', 'sum'] as const);
    if (!formula) throw missing('default_aggregation[formula]');
    const mapping = asObject(p.customer_mapping, 'customer_mapping');
    if (mapping) checkKeys(mapping, ['event_payload_key', 'type'], 'customer_mapping');
    const customerKey = mapping ? reqString(mapping.event_payload_key, 'customer_mapping[event_payload_key]') : 'stripe_customer_id';
    if (mapping && !asEnum(mapping.type, 'customer_mapping[type]', ['by_id'] as const)) throw missing('customer_mapping[type]');
    const valueSettings = asObject(p.value_settings, 'value_settings');
    if (valueSettings) checkKeys(valueSettings, ['event_payload_key'], 'value_settings');
    const valueKey = valueSettings ? reqString(valueSettings.event_payload_key, 'value_settings[event_payload_key]') : 'value';
    const window = asEnum(p.event_time_window, 'event_time_window', ['day', 'hour'] as const) ?? null;
    const clash = [...meters.values()].find((m) => m.status === 'active' && m.event_name === eventName);
    // The message is this fake's; Stripe refuses a second active meter for one event_name.
    if (clash) throw invalid(`An active meter (${clash.id}) already uses the event_name \`${eventName}\`.`, 'event_name');
    const meter: BillingMeter = {
      created: now(), customer_mapping: { event_payload_key: customerKey, type: 'by_id' }, default_aggregation: { formula }, display_name: displayName,
      event_name: eventName, event_time_window: window, id: `mtr_test_61${randomId(30)}`, livemode: false, object: 'billing.meter', status: 'active',
      status_transitions: { deactivated_at: null }, updated: now(), value_settings: { event_payload_key: valueKey },
    };
    meters.set(meter.id, meter);
    return meter;
  };

  const updateMeter: Handler = (p, c) => {
    checkKeys(p, METER_UPDATE, '');
    const meter = getMeter(c.id);
    const name = asString(p.display_name, 'display_name');
    if (name !== undefined) {
      meter.display_name = name;
      meter.updated = now();
    }
    return meter;
  };

  function setMeterStatus(id: string, status: 'active' | 'inactive'): BillingMeter {
    const meter = getMeter(id);
    if (meter.status === status) throw invalid(`This meter is already ${status}.`, undefined);
    if (status === 'active') {
      const clash = [...meters.values()].find((m) => m.status === 'active' && m.event_name === meter.event_name);
      if (clash) throw invalid(`An active meter (${clash.id}) already uses the event_name \`${meter.event_name}\`.`, undefined);
    }
    meter.status = status;
    meter.status_transitions.deactivated_at = status === 'inactive' ? now() : null;
    meter.updated = now();
    return meter;
  }

  const listMeters: Handler = (p) => {
    checkKeys(p, METER_LIST, '');
    const status = asEnum(p.status, 'status', ['active', 'inactive'] as const);
    const all = newestFirst(meters.values()).filter((m) => !status || m.status === status);
    return paginate(all, p, '/v1/billing/meters', 'billing.meter');
  };

  const createMeterEvent: Handler = (p) => {
    checkKeys(p, METER_EVENT_CREATE, '');
    const eventName = reqString(p.event_name, 'event_name');
    const payloadRaw = asObject(p.payload, 'payload');
    if (!payloadRaw) throw missing('payload');
    const payload: Record<string, string> = {};
    for (const [key, value] of Object.entries(payloadRaw)) {
      if (typeof value !== 'string') throw invalid(`Invalid value for payload[${key}]: payload values must be strings`, `payload[${key}]`);
      payload[key] = value;
    }
    const given = asString(p.identifier, 'identifier');
    if (given !== undefined && given.length > 100) throw invalid('identifier must be at most 100 characters', 'identifier');
    const identifier = given ?? `${randomId(8)}-${randomId(4)}-${randomId(4)}-${randomId(4)}-${randomId(12)}`;
    const timestamp = asInt(p.timestamp, 'timestamp') ?? now();
    const seenAt = identifiers.get(identifier);
    if (seenAt !== undefined && now() - seenAt < ctx.identifierWindowSeconds) {
      // As Stripe answers (observed; no error code): the first event stands, this one is not recorded.
      throw invalid(`An event already exists with identifier ${identifier}.`, undefined);
    }
    identifiers.set(identifier, now());
    const event: BillingMeterEvent = { created: now(), event_name: eventName, identifier, livemode: false, object: 'billing.meter_event', payload, timestamp };
    const record: RecordedMeterEvent = { event: copy(event), seq: ++seq, receivedAt: now(), meter: null, customer: null, value: null, error: null };
    // What Stripe validates after accepting the event.
    const meter = [...meters.values()].find((m) => m.event_name === eventName && m.status === 'active')
      ?? [...meters.values()].find((m) => m.event_name === eventName);
    if (!meter) record.error = 'no_meter';
    else {
      record.meter = meter.id;
      const customer = payload[meter.customer_mapping.event_payload_key];
      const rawValue = payload[meter.value_settings.event_payload_key];
      if (meter.status !== 'active') record.error = 'archived_meter';
      else if (customer === undefined) record.error = 'meter_event_no_customer_defined';
      else if (!customers.has(customer)) record.error = 'meter_event_customer_not_found';
      else if (meter.default_aggregation.formula !== 'count' && (rawValue === undefined || !/^\d+(\.\d+)?$/.test(rawValue))) record.error = 'meter_event_invalid_value';
      else if (timestamp > now() + 5 * 60) record.error = 'timestamp_in_future';
      else if (timestamp < now() - 35 * DAY) record.error = 'timestamp_too_far_in_past';
      record.customer = customer ?? null;
      record.value = meter.default_aggregation.formula === 'count' ? '1' : rawValue ?? null;
    }
    recordedEvents.push(record);
    if (holding) heldSeqs.add(record.seq);
    return event;
  };

  /** The events a meter counts for a customer in [from, to): accepted, valid, and (for summaries) aggregated already. */
  function countedEvents(meterId: string, customerId: string, from: number, to: number, forSummaries: boolean): MeteredValue[] {
    return recordedEvents
      .filter((r) => r.meter === meterId && r.customer === customerId && r.error === null && r.event.timestamp >= from && r.event.timestamp < to && !(forSummaries && heldSeqs.has(r.seq)))
      .map((r) => ({ timestamp: r.event.timestamp, value: dec(r.value!), seq: r.seq }));
  }

  function meterUsage(meterId: string, customerId: string, from: number, to: number, forSummaries = false): Dec {
    const meter = meters.get(meterId);
    if (!meter) return dec(0);
    return aggregate(meter.default_aggregation.formula, countedEvents(meterId, customerId, from, to, forSummaries));
  }

  const listEventSummaries: Handler = (p, c) => {
    checkKeys(p, METER_SUMMARIES, '');
    const meter = getMeter(c.id);
    const customer = reqString(p.customer, 'customer');
    requireCustomer(customers, customer, 'customer');
    const start = asInt(p.start_time, 'start_time');
    if (start === undefined) throw missing('start_time');
    const end = asInt(p.end_time, 'end_time');
    if (end === undefined) throw missing('end_time');
    const window = asEnum(p.value_grouping_window, 'value_grouping_window', ['day', 'hour'] as const);
    const step = window === 'day' ? DAY : window === 'hour' ? 3600 : 60;
    for (const [name, t] of [['start_time', start], ['end_time', end]] as const) {
      if (t % step !== 0) {
        throw invalid(window ? `${name} must be aligned with ${window === 'day' ? 'UTC day' : 'hour'} boundaries when value_grouping_window is ${window}.` : `${name} must be aligned with minute boundaries.`, name);
      }
    }
    if (end <= start) throw invalid('end_time must be after start_time.', 'end_time');
    const windows: [number, number][] = window ? [] : [[start, end]];
    if (window) for (let t = start; t < end; t += step) windows.push([t, t + step]);
    const summaries = windows.map(([from, to]) => ({
      aggregated_value: Number(meterUsage(meter.id, customer, from, to, true).toString()),
      end_time: to,
      id: `mtrusg_test_${createHash('sha256').update(`${meter.id}:${customer}:${from}:${to}`).digest('hex').slice(0, 24)}`,
      livemode: false as const,
      meter: meter.id,
      object: 'billing.meter_event_summary' as const,
      start_time: from,
    }));
    return paginate(summaries, p, `/v1/billing/meters/${meter.id}/event_summaries`, 'billing.meter_event_summary');
  };

  // ========== products ==========

  function newProduct(fields: { id?: string; name: string; active?: boolean; description?: string | null; metadata?: Metadata; type?: 'good' | 'service'; unit_label?: string | null; url?: string | null; statement_descriptor?: string | null; tax_code?: string | null; images?: string[] }): BillingProduct {
    const id = fields.id ?? `prod_${randomId(14)}`;
    if (products.has(id)) throw invalid(`Product already exists.`, 'id', 'resource_already_exists');
    const product: BillingProduct = {
      active: fields.active ?? true, created: now(), default_price: null, description: fields.description ?? null, id, images: fields.images ?? [],
      livemode: false, marketing_features: [], metadata: fields.metadata ?? {}, name: fields.name, object: 'product', package_dimensions: null,
      shippable: null, statement_descriptor: fields.statement_descriptor ?? null, tax_code: fields.tax_code ?? null, unit_label: fields.unit_label ?? null,
      updated: now(), url: fields.url ?? null, type: fields.type ?? 'service',
    };
    products.set(id, product);
    return product;
  }

  function productFields(p: Params, prefix: string) {
    const at = (name: string) => sub(prefix, name);
    const images = asArray(p.images, at('images'))?.map((x, i) => reqString(x, `${at('images')}[${i}]`));
    return {
      description: asString(p.description, at('description')) ?? null,
      metadata: asMetadata(p.metadata, at('metadata')),
      unit_label: asString(p.unit_label, at('unit_label')) ?? null,
      url: asUrl(p.url, at('url')) ?? null,
      statement_descriptor: asString(p.statement_descriptor, at('statement_descriptor')) ?? null,
      tax_code: asString(p.tax_code, at('tax_code')) ?? null,
      ...(images ? { images } : {}),
    };
  }

  const createProduct: Handler = (p) => {
    checkKeys(p, PRODUCT_CREATE, '');
    refuseUnmodelled(p, ['marketing_features', 'package_dimensions', 'shippable', 'tax_details']);
    const name = reqString(p.name, 'name');
    const defaultPriceData = asObject(p.default_price_data, 'default_price_data');
    const product = newProduct({
      id: asString(p.id, 'id'), name, active: asBool(p.active, 'active'), type: asEnum(p.type, 'type', ['good', 'service'] as const), ...productFields(p, ''),
    });
    if (defaultPriceData) {
      checkKeys(defaultPriceData, ['currency', 'currency_options', 'custom_unit_amount', 'metadata', 'recurring', 'tax_behavior', 'unit_amount', 'unit_amount_decimal'], 'default_price_data');
      refuseUnmodelled(defaultPriceData, ['currency_options', 'custom_unit_amount'], 'default_price_data');
      try {
        const price = newPrice({ ...defaultPriceData, product: product.id }, 'default_price_data');
        product.default_price = price.id;
      } catch (e) {
        products.delete(product.id);
        throw e;
      }
    }
    return product;
  };

  const updateProduct: Handler = (p, c) => {
    checkKeys(p, PRODUCT_UPDATE, '');
    refuseUnmodelled(p, ['marketing_features', 'package_dimensions', 'shippable', 'tax_details']);
    const product = getProduct(c.id);
    const defaultPrice = asString(p.default_price, 'default_price');
    if (defaultPrice !== undefined) {
      const price = requirePrice(defaultPrice, 'default_price');
      if (price.product !== product.id) throw invalid(`The price \`${defaultPrice}\` does not belong to the product \`${product.id}\`.`, 'default_price');
      product.default_price = defaultPrice;
    }
    const name = asString(p.name, 'name');
    if (name !== undefined) product.name = name;
    const active = asBool(p.active, 'active');
    if (active !== undefined) product.active = active;
    for (const key of ['description', 'unit_label', 'url', 'statement_descriptor', 'tax_code'] as const) {
      if (p[key] === '') product[key] = null;
      else if (p[key] !== undefined) product[key] = key === 'url' ? asUrl(p[key], key)! : asString(p[key], key)!;
    }
    if (p.images !== undefined) product.images = p.images === '' ? [] : (asArray(p.images, 'images') ?? []).map((x, i) => reqString(x, `images[${i}]`));
    product.metadata = mergeMetadata(product.metadata, p.metadata);
    product.updated = now();
    return product;
  };

  const listProducts: Handler = (p) => {
    checkKeys(p, PRODUCT_LIST, '');
    refuseUnmodelled(p, ['created', 'shippable', 'url']);
    const active = asBool(p.active, 'active');
    const type = asEnum(p.type, 'type', ['good', 'service'] as const);
    const ids = asArray(p.ids, 'ids')?.map((x, i) => reqString(x, `ids[${i}]`));
    const all = newestFirst(products.values()).filter((x) => (active === undefined || x.active === active) && (!type || x.type === type) && (!ids || ids.includes(x.id)));
    return paginate(all, p, '/v1/products', 'product');
  };

  // ========== prices ==========

  function readTiers(raw: ParamValue | undefined, param: string): PriceTier[] | undefined {
    const list = asArray(raw, param);
    if (!list) return undefined;
    if (list.length === 0) throw missing(`${param}[0]`);
    const tiers: PriceTier[] = [];
    let previous = 0;
    list.forEach((rawTier, i) => {
      const at = `${param}[${i}]`;
      const tier = asObject(rawTier, at);
      if (!tier) throw missing(at);
      checkKeys(tier, PRICE_TIER, at);
      const upToRaw = reqString(tier.up_to, `${at}[up_to]`);
      const last = i === list.length - 1;
      let upTo: number | null;
      if (upToRaw === 'inf') {
        if (!last) throw invalid('Only the last tier can have `up_to` set to `inf`.', `${at}[up_to]`);
        upTo = null;
      } else {
        upTo = asInt(upToRaw, `${at}[up_to]`)!;
        if (last) throw invalid('The last tier must have `up_to` set to `inf`.', `${at}[up_to]`);
        if (upTo <= previous) throw invalid('Tiers must be in ascending order of `up_to`, each greater than the one before (and than 0).', `${at}[up_to]`);
        previous = upTo;
      }
      const unitAmount = asInt(tier.unit_amount, `${at}[unit_amount]`);
      const unitDecimal = asDecimal(tier.unit_amount_decimal, `${at}[unit_amount_decimal]`);
      const flatAmount = asInt(tier.flat_amount, `${at}[flat_amount]`);
      const flatDecimal = asDecimal(tier.flat_amount_decimal, `${at}[flat_amount_decimal]`);
      if (unitAmount !== undefined && unitDecimal !== undefined) throw invalid('You may only specify one of these parameters: unit_amount, unit_amount_decimal.', `${at}[unit_amount_decimal]`);
      if (flatAmount !== undefined && flatDecimal !== undefined) throw invalid('You may only specify one of these parameters: flat_amount, flat_amount_decimal.', `${at}[flat_amount_decimal]`);
      if (unitAmount === undefined && unitDecimal === undefined && flatAmount === undefined && flatDecimal === undefined) {
        throw invalid('Each tier must have at least one of `unit_amount`, `unit_amount_decimal`, `flat_amount` or `flat_amount_decimal`.', `${at}[unit_amount]`);
      }
      for (const [v, name] of [[unitAmount, 'unit_amount'], [flatAmount, 'flat_amount']] as const) {
        if (v !== undefined && v < 0) throw invalid('This value must be greater than or equal to 0.', `${at}[${name}]`, 'parameter_invalid_integer');
      }
      const unitDec = unitDecimal ?? (unitAmount !== undefined ? String(unitAmount) : null);
      const flatDec = flatDecimal ?? (flatAmount !== undefined ? String(flatAmount) : null);
      const integral = (d: string | null) => (d !== null && /^\d+$/.test(d) ? Number(d) : null);
      tiers.push({ flat_amount: integral(flatDec), flat_amount_decimal: flatDec, unit_amount: integral(unitDec), unit_amount_decimal: unitDec, up_to: upTo });
    });
    return tiers;
  }

  /** Creates a Price (POST /v1/prices, or a product's default_price_data under `prefix`). */
  function newPrice(p: Params, prefix = ''): BillingPrice {
    const at = (name: string) => sub(prefix, name);
    refuseUnmodelled(p, ['currency_options', 'custom_unit_amount'], prefix);
    const currencyRaw = reqString(p.currency, at('currency')).toLowerCase();
    if (!/^[a-z]{3}$/.test(currencyRaw)) throw invalid(`Invalid currency: ${currencyRaw}.`, at('currency'), 'parameter_invalid_string');
    let productId = asString(p.product, at('product'));
    const productData = asObject(p.product_data, at('product_data'));
    if (productId && productData) throw invalid('You may only specify one of these parameters: product, product_data.', at('product_data'));
    if (!productId && !productData) throw missing(at('product'));
    if (productId && !products.has(productId)) throw noSuch('product', productId, at('product'));
    if (productData) {
      checkKeys(productData, PRODUCT_DATA, at('product_data'));
      refuseUnmodelled(productData, ['tax_details'], at('product_data'));
    }

    const scheme = asEnum(p.billing_scheme, at('billing_scheme'), ['per_unit', 'tiered'] as const) ?? 'per_unit';
    const unitAmount = asInt(p.unit_amount, at('unit_amount'));
    const unitDecimal = asDecimal(p.unit_amount_decimal, at('unit_amount_decimal'));
    const tiers = readTiers(p.tiers, at('tiers'));
    const tiersMode = asEnum(p.tiers_mode, at('tiers_mode'), ['graduated', 'volume'] as const);
    const transformRaw = asObject(p.transform_quantity, at('transform_quantity'));
    if (unitAmount !== undefined && unitDecimal !== undefined) throw invalid('You may only specify one of these parameters: unit_amount, unit_amount_decimal.', at('unit_amount_decimal'));
    if (unitAmount !== undefined && unitAmount < 0) throw invalid('This value must be greater than or equal to 0.', at('unit_amount'), 'parameter_invalid_integer');
    if (scheme === 'per_unit') {
      if (tiers || tiersMode) throw invalid('`tiers` and `tiers_mode` can only be used with `billing_scheme=tiered`.', at(tiers ? 'tiers' : 'tiers_mode'));
      if (unitAmount === undefined && unitDecimal === undefined) throw missing(at('unit_amount'));
    } else {
      if (unitAmount !== undefined || unitDecimal !== undefined) throw invalid('`unit_amount` cannot be used with `billing_scheme=tiered`; set the amounts on the tiers.', at(unitAmount !== undefined ? 'unit_amount' : 'unit_amount_decimal'));
      if (!tiers) throw missing(at('tiers'));
      if (!tiersMode) throw missing(at('tiers_mode'));
      if (transformRaw) throw invalid('`transform_quantity` cannot be used with `billing_scheme=tiered`.', at('transform_quantity'));
    }
    let transform: BillingPrice['transform_quantity'] = null;
    if (transformRaw) {
      checkKeys(transformRaw, ['divide_by', 'round'], at('transform_quantity'));
      const divideBy = asInt(transformRaw.divide_by, at('transform_quantity[divide_by]'));
      if (divideBy === undefined) throw missing(at('transform_quantity[divide_by]'));
      if (divideBy < 1) throw invalid('This value must be greater than or equal to 1.', at('transform_quantity[divide_by]'), 'parameter_invalid_integer');
      const round = asEnum(transformRaw.round, at('transform_quantity[round]'), ['down', 'up'] as const);
      if (!round) throw missing(at('transform_quantity[round]'));
      transform = { divide_by: divideBy, round };
    }

    const recurringRaw = asObject(p.recurring, at('recurring'));
    let recurring: BillingPrice['recurring'] = null;
    if (recurringRaw) {
      checkKeys(recurringRaw, PRICE_RECURRING, at('recurring'));
      refuseUnmodelled(recurringRaw, ['trial_period_days'], at('recurring'));
      const interval = asEnum(recurringRaw.interval, at('recurring[interval]'), ['day', 'month', 'week', 'year'] as const);
      if (!interval) throw missing(at('recurring[interval]'));
      const count = asInt(recurringRaw.interval_count, at('recurring[interval_count]')) ?? 1;
      const max = { day: 365, week: 52, month: 12, year: 1 }[interval];
      if (count < 1 || count > max) throw invalid('The maximum billing frequency is one year.', at('recurring[interval_count]'));
      const usageType = asEnum(recurringRaw.usage_type, at('recurring[usage_type]'), ['licensed', 'metered'] as const) ?? 'licensed';
      const meterId = asString(recurringRaw.meter, at('recurring[meter]'));
      if (usageType === 'metered') {
        if (!meterId) throw invalid('A meter is required for prices with `recurring[usage_type]=metered`: set `recurring[meter]`.', at('recurring[meter]'), 'parameter_missing');
        const meter = meters.get(meterId);
        if (!meter) throw noSuch('billing.meter', meterId, at('recurring[meter]'));
        if (meter.status !== 'active') throw invalid(`The meter ${meterId} is inactive; an inactive meter cannot be attached to a price.`, at('recurring[meter]'));
      } else if (meterId) {
        throw invalid('`recurring[meter]` can only be set when `recurring[usage_type]` is `metered`.', at('recurring[meter]'));
      }
      recurring = { interval, interval_count: count, meter: meterId ?? null, usage_type: usageType, trial_period_days: null };
    }

    const lookupKey = asString(p.lookup_key, at('lookup_key'));
    if (lookupKey !== undefined && lookupKey.length > 200) throw invalid('lookup_key must be at most 200 characters', at('lookup_key'));
    const transfer = asBool(p.transfer_lookup_key, at('transfer_lookup_key')) ?? false;
    const holder = lookupKey === undefined ? undefined : findByLookupKey(lookupKey);
    if (holder && !transfer) throw invalid(`A price (\`${holder.id}\`) already uses that lookup key.`, at('lookup_key'));

    if (productData) {
      productId = newProduct({
        id: asString(productData.id, at('product_data[id]')), name: reqString(productData.name, at('product_data[name]')),
        active: asBool(productData.active, at('product_data[active]')), metadata: asMetadata(productData.metadata, at('product_data[metadata]')),
        unit_label: asString(productData.unit_label, at('product_data[unit_label]')) ?? null,
        statement_descriptor: asString(productData.statement_descriptor, at('product_data[statement_descriptor]')) ?? null,
        tax_code: asString(productData.tax_code, at('product_data[tax_code]')) ?? null,
      }).id;
    }
    if (holder) holder.lookup_key = null;
    const decimal = unitDecimal ?? (unitAmount !== undefined ? String(unitAmount) : null);
    const price: BillingPrice = {
      active: asBool(p.active, at('active')) ?? true, billing_scheme: scheme, created: now(), currency: currencyRaw, custom_unit_amount: null,
      id: `price_${randomId(24)}`, livemode: false, lookup_key: lookupKey ?? null, metadata: asMetadata(p.metadata, at('metadata')),
      nickname: asString(p.nickname, at('nickname')) ?? null, object: 'price', product: productId!, recurring,
      tax_behavior: asEnum(p.tax_behavior, at('tax_behavior'), ['exclusive', 'inclusive', 'unspecified'] as const) ?? 'unspecified',
      tiers_mode: scheme === 'tiered' ? tiersMode! : null, transform_quantity: transform, type: recurring ? 'recurring' : 'one_time',
      unit_amount: decimal !== null && /^\d+$/.test(decimal) ? Number(decimal) : null, unit_amount_decimal: decimal,
    };
    prices.set(price.id, price as unknown as FakePrice);
    if (tiers) priceTiers.set(price.id, tiers);
    return price;
  }

  function findByLookupKey(key: string): BillingPrice | undefined {
    for (const id of prices.keys()) {
      const price = priceById(id)!;
      if (price.lookup_key === key) return price;
    }
    return undefined;
  }

  const createPrice: Handler = (p) => {
    checkKeys(p, PRICE_CREATE, '');
    return newPrice(p);
  };

  const updatePrice: Handler = (p, c) => {
    checkKeys(p, PRICE_UPDATE, '');
    refuseUnmodelled(p, ['currency_options']);
    const price = priceById(c.id);
    if (!price) throw noSuch('price', c.id, 'id', 404);
    const lookupKey = p.lookup_key === '' ? null : asString(p.lookup_key, 'lookup_key');
    const transfer = asBool(p.transfer_lookup_key, 'transfer_lookup_key') ?? false;
    if (typeof lookupKey === 'string') {
      const holder = findByLookupKey(lookupKey);
      if (holder && holder.id !== price.id && !transfer) throw invalid(`A price (\`${holder.id}\`) already uses that lookup key.`, 'lookup_key');
      if (holder && holder.id !== price.id) holder.lookup_key = null;
    }
    const tax = asEnum(p.tax_behavior, 'tax_behavior', ['exclusive', 'inclusive', 'unspecified'] as const);
    if (tax && price.tax_behavior !== 'unspecified' && tax !== price.tax_behavior) throw invalid('tax_behavior cannot be changed once it is set to `exclusive` or `inclusive`.', 'tax_behavior');
    if (lookupKey !== undefined) price.lookup_key = lookupKey;
    if (tax) price.tax_behavior = tax;
    const active = asBool(p.active, 'active');
    if (active !== undefined) price.active = active;
    if (p.nickname !== undefined) price.nickname = asString(p.nickname, 'nickname') ?? null;
    price.metadata = mergeMetadata(price.metadata, p.metadata);
    return price;
  };

  const listPrices: Handler = (p) => {
    checkKeys(p, PRICE_LIST, '');
    refuseUnmodelled(p, ['created']);
    const active = asBool(p.active, 'active');
    const currency = asString(p.currency, 'currency')?.toLowerCase();
    const product = asString(p.product, 'product');
    const type = asEnum(p.type, 'type', ['one_time', 'recurring'] as const);
    const keys = asArray(p.lookup_keys, 'lookup_keys')?.map((x, i) => reqString(x, `lookup_keys[${i}]`));
    if (keys && keys.length > 10) throw invalid('You can pass up to 10 lookup_keys.', 'lookup_keys');
    const recurring = asObject(p.recurring, 'recurring');
    if (recurring) checkKeys(recurring, ['interval', 'meter', 'usage_type'], 'recurring');
    const interval = recurring ? asEnum(recurring.interval, 'recurring[interval]', ['day', 'month', 'week', 'year'] as const) : undefined;
    const meter = recurring ? asString(recurring.meter, 'recurring[meter]') : undefined;
    const usageType = recurring ? asEnum(recurring.usage_type, 'recurring[usage_type]', ['licensed', 'metered'] as const) : undefined;
    // Stripe lists active prices unless asked for inactive ones, and never inline (price_data) prices.
    const all = newestFirst([...prices.keys()].map((id) => priceById(id)!))
      .filter((x) => x.active === (active ?? true))
      .filter((x) => (!currency || x.currency === currency) && (!product || x.product === product) && (!type || x.type === type))
      .filter((x) => !keys || (x.lookup_key !== null && keys.includes(x.lookup_key)))
      .filter((x) => (!interval || x.recurring?.interval === interval) && (!meter || x.recurring?.meter === meter) && (!usageType || x.recurring?.usage_type === usageType));
    const list = paginate(all, p, '/v1/prices', 'price');
    expandListData(list as unknown as { data: Record<string, unknown>[] }, p);
    return list;
  };

  const onlyExpand = (p: Params) => checkKeys(p, ['expand'], '');
  const routes: Route[] = [
    { method: 'POST', pattern: /^\/v1\/billing\/meters$/, handler: createMeter },
    { method: 'GET', pattern: /^\/v1\/billing\/meters$/, handler: listMeters },
    { method: 'GET', pattern: /^\/v1\/billing\/meters\/([^/]+)$/, handler: (p, c) => (onlyExpand(p), getMeter(c.id)) },
    { method: 'POST', pattern: /^\/v1\/billing\/meters\/([^/]+)$/, handler: updateMeter },
    { method: 'POST', pattern: /^\/v1\/billing\/meters\/([^/]+)\/deactivate$/, handler: (p, c) => (onlyExpand(p), setMeterStatus(c.id, 'inactive')) },
    { method: 'POST', pattern: /^\/v1\/billing\/meters\/([^/]+)\/reactivate$/, handler: (p, c) => (onlyExpand(p), setMeterStatus(c.id, 'active')) },
    { method: 'GET', pattern: /^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/, handler: listEventSummaries },
    { method: 'POST', pattern: /^\/v1\/billing\/meter_events$/, handler: createMeterEvent },
    { method: 'POST', pattern: /^\/v1\/products$/, handler: createProduct },
    { method: 'GET', pattern: /^\/v1\/products$/, handler: listProducts },
    { method: 'GET', pattern: /^\/v1\/products\/([^/]+)$/, handler: (p, c) => (onlyExpand(p), getProduct(c.id)) },
    { method: 'POST', pattern: /^\/v1\/products\/([^/]+)$/, handler: updateProduct },
    { method: 'POST', pattern: /^\/v1\/prices$/, handler: createPrice },
    { method: 'GET', pattern: /^\/v1\/prices$/, handler: listPrices },
    {
      method: 'GET', pattern: /^\/v1\/prices\/([^/]+)$/, handler: (p, c) => {
        onlyExpand(p);
        const price = priceById(c.id);
        if (!price) throw noSuch('price', c.id, 'id', 404);
        return price;
      },
    },
    { method: 'POST', pattern: /^\/v1\/prices\/([^/]+)$/, handler: updatePrice },
  ];

  return {
    routes, meters, products, recordedEvents, priceById, requirePrice, termsOf, productName, meterUsage, expandTiers, lookup,
    holdAggregation() {
      holding = true;
    },
    releaseAggregation() {
      holding = false;
      heldSeqs.clear();
    },
    reset() {
      seq = 0;
      holding = false;
      for (const m of [meters, identifiers, products, priceTiers]) m.clear();
      heldSeqs.clear();
      recordedEvents.length = 0;
    },
  };
}

import type { FakeEvent, Metadata } from './fake-stripe.ts';
import type { Interval } from './fake-stripe-billing-math.ts';

// The objects of the fake Stripe's usage-based billing, each with the keys of Stripe's published fixture
// (tests/fixtures/stripe-billing/<object>.json): what the API answers and what webhook events carry.

export type MeterEventErrorCode = 'archived_meter' | 'meter_event_customer_not_found' | 'meter_event_invalid_value' | 'meter_event_no_customer_defined' | 'no_meter' | 'timestamp_in_future' | 'timestamp_too_far_in_past';

export interface BillingMeter {
  created: number;
  customer_mapping: { event_payload_key: string; type: 'by_id' };
  default_aggregation: { formula: 'count' | 'last' | 'sum' };
  display_name: string;
  event_name: string;
  event_time_window: 'day' | 'hour' | null;
  id: string;
  livemode: false;
  object: 'billing.meter';
  status: 'active' | 'inactive';
  status_transitions: { deactivated_at: number | null };
  updated: number;
  value_settings: { event_payload_key: string };
}

export interface BillingMeterEvent {
  created: number;
  event_name: string;
  identifier: string;
  livemode: false;
  object: 'billing.meter_event';
  payload: Record<string, string>;
  timestamp: number;
}

/** A meter event as the fake recorded it: what it counts for, or why it counts for nothing. */
export interface RecordedMeterEvent {
  event: BillingMeterEvent;
  /** Arrival order. */
  seq: number;
  /** The test clock when it arrived. */
  receivedAt: number;
  meter: string | null;
  customer: string | null;
  value: string | null;
  /** Stripe's asynchronous validation error (the event is accepted but counts nowhere). */
  error: MeterEventErrorCode | null;
}

export interface BillingProduct {
  active: boolean;
  created: number;
  default_price: string | null;
  description: string | null;
  id: string;
  images: string[];
  livemode: false;
  marketing_features: { name: string }[];
  metadata: Metadata;
  name: string;
  object: 'product';
  package_dimensions: null;
  shippable: boolean | null;
  statement_descriptor: string | null;
  tax_code: string | null;
  unit_label: string | null;
  updated: number;
  url: string | null;
  type: 'good' | 'service';
}

export interface BillingPrice {
  active: boolean;
  billing_scheme: 'per_unit' | 'tiered';
  created: number;
  currency: string;
  custom_unit_amount: null;
  id: string;
  livemode: false;
  lookup_key: string | null;
  metadata: Metadata;
  nickname: string | null;
  object: 'price';
  product: string;
  recurring: { interval: Interval; interval_count: number; meter: string | null; usage_type: 'licensed' | 'metered'; trial_period_days: number | null } | null;
  tax_behavior: 'exclusive' | 'inclusive' | 'unspecified';
  tiers_mode: 'graduated' | 'volume' | null;
  transform_quantity: { divide_by: number; round: 'up' | 'down' } | null;
  type: 'one_time' | 'recurring';
  unit_amount: number | null;
  unit_amount_decimal: string | null;
}

export interface BillingPlan {
  active: boolean;
  amount: number | null;
  amount_decimal: string | null;
  billing_scheme: 'per_unit' | 'tiered';
  created: number;
  currency: string;
  id: string;
  interval: Interval;
  interval_count: number;
  livemode: false;
  metadata: Metadata;
  meter: string | null;
  nickname: string | null;
  object: 'plan';
  product: string;
  tiers_mode: 'graduated' | 'volume' | null;
  transform_usage: { divide_by: number; round: 'up' | 'down' } | null;
  trial_period_days: number | null;
  usage_type: 'licensed' | 'metered';
}

export interface BillingSubscriptionItem {
  created: number;
  discounts: string[];
  id: string;
  metadata: Metadata;
  object: 'subscription_item';
  price: BillingPrice;
  /** Absent on a metered item, as in Stripe. */
  quantity?: number;
  subscription: string;
  tax_rates: unknown[];
  plan: BillingPlan;
  current_period_end: number;
  current_period_start: number;
  billing_thresholds: null;
}

export type SubscriptionStatus = 'active' | 'canceled' | 'incomplete' | 'incomplete_expired' | 'past_due' | 'paused' | 'trialing' | 'unpaid';

export interface BillingSubscription {
  application: null;
  application_fee_percent: null;
  automatic_tax: { enabled: false; liability: null; disabled_reason: null };
  billing_cycle_anchor: number;
  billing_cycle_anchor_config: null;
  cancel_at: number | null;
  canceled_at: number | null;
  cancellation_details: { comment: string | null; feedback: string | null; reason: 'cancellation_requested' | 'payment_disputed' | 'payment_failed' | null };
  collection_method: 'charge_automatically';
  created: number;
  currency: string;
  customer: string;
  days_until_due: null;
  default_payment_method: string | null;
  default_source: null;
  default_tax_rates: unknown[];
  description: string | null;
  discounts: string[];
  ended_at: number | null;
  id: string;
  invoice_settings: { account_tax_ids: null; issuer: { type: 'self' } };
  items: { data: BillingSubscriptionItem[]; has_more: false; object: 'list'; url: string };
  latest_invoice: string | null;
  livemode: false;
  metadata: Metadata;
  next_pending_invoice_item_invoice: null;
  object: 'subscription';
  on_behalf_of: null;
  pause_collection: null;
  payment_settings: { payment_method_options: null; payment_method_types: null; save_default_payment_method: 'off' | 'on_subscription' };
  pending_invoice_item_interval: null;
  pending_setup_intent: null;
  pending_update: null;
  schedule: null;
  start_date: number;
  status: SubscriptionStatus;
  test_clock: null;
  transfer_data: null;
  trial_end: null;
  trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } };
  trial_start: null;
  cancel_at_period_end: boolean;
  billing_thresholds: null;
  billing_mode: { type: 'classic' | 'flexible'; flexible: { proration_discounts: 'included' } | null };
  customer_account: null;
  managed_payments: null;
  billing_schedules: unknown[];
}

export interface BillingInvoiceLine {
  amount: number;
  currency: string;
  description: string;
  discount_amounts: unknown[];
  discountable: boolean;
  discounts: string[];
  id: string;
  invoice: string;
  livemode: false;
  metadata: Metadata;
  object: 'line_item';
  period: { end: number; start: number };
  quantity: number | null;
  subscription: string | null;
  pretax_credit_amounts: unknown[];
  taxes: unknown[];
  parent: {
    invoice_item_details: null;
    subscription_item_details: { invoice_item: string | null; proration: boolean; proration_details: { credited_items: null }; subscription: string; subscription_item: string };
    type: 'subscription_item_details';
  };
  pricing: { price_details: { price: string; product: string }; type: 'price_details'; unit_amount_decimal: string | null };
  subtotal: number;
  quantity_decimal: string | null;
}

export type InvoiceStatus = 'draft' | 'open' | 'paid' | 'uncollectible' | 'void';
export type BillingReason = 'manual' | 'subscription_create' | 'subscription_cycle' | 'subscription_update' | 'upcoming';

export interface BillingInvoice {
  account_country: string;
  account_name: string | null;
  account_tax_ids: null;
  amount_due: number;
  amount_paid: number;
  amount_remaining: number;
  amount_shipping: number;
  application: null;
  attempt_count: number;
  attempted: boolean;
  auto_advance: boolean;
  automatic_tax: { enabled: false; liability: null; status: null; disabled_reason: null; provider: null };
  billing_reason: BillingReason;
  collection_method: 'charge_automatically';
  created: number;
  currency: string;
  custom_fields: null;
  customer: string;
  customer_address: null;
  customer_email: string | null;
  customer_name: string | null;
  customer_phone: string | null;
  customer_shipping: null;
  customer_tax_exempt: 'none' | 'exempt' | 'reverse';
  customer_tax_ids: unknown[];
  default_payment_method: null;
  default_source: null;
  default_tax_rates: unknown[];
  description: string | null;
  discounts: string[];
  due_date: null;
  effective_at: number | null;
  ending_balance: number | null;
  footer: null;
  from_invoice: null;
  hosted_invoice_url: string | null;
  id: string;
  invoice_pdf: string | null;
  issuer: { type: 'self' };
  last_finalization_error: null;
  latest_revision: null;
  lines: { data: BillingInvoiceLine[]; has_more: false; object: 'list'; url: string };
  livemode: false;
  metadata: Metadata;
  next_payment_attempt: number | null;
  number: string | null;
  object: 'invoice';
  on_behalf_of: null;
  payment_settings: { default_mandate: null; payment_method_options: null; payment_method_types: null };
  period_end: number;
  period_start: number;
  post_payment_credit_notes_amount: number;
  pre_payment_credit_notes_amount: number;
  receipt_number: null;
  rendering: null;
  shipping_cost: null;
  shipping_details: null;
  starting_balance: number;
  statement_descriptor: null;
  status: InvoiceStatus;
  status_transitions: { finalized_at: number | null; marked_uncollectible_at: number | null; paid_at: number | null; voided_at: number | null };
  /** Kept because the published fixture has it; the subscription is in parent.subscription_details. */
  subscription: null;
  subtotal: number;
  subtotal_excluding_tax: number;
  test_clock: null;
  total: number;
  total_discount_amounts: unknown[];
  total_excluding_tax: number;
  webhooks_delivered_at: number | null;
  automatically_finalizes_at: number | null;
  total_pretax_credit_amounts: unknown[];
  total_taxes: unknown[];
  amount_overpaid: number;
  parent: { quote_details: null; subscription_details: { metadata: Metadata; subscription: string } | null; type: 'subscription_details' } | null;
  customer_account: null;
}

export interface BillingPortalSession {
  configuration: string;
  created: number;
  customer: string;
  flow: unknown;
  id: string;
  livemode: false;
  locale: string | null;
  object: 'billing_portal.session';
  on_behalf_of: string | null;
  return_url: string | null;
  url: string;
  customer_account: null;
}

export interface WebhookEndpoint {
  url: string;
  /** The endpoint's signing secret (whsec_…). */
  secret: string;
  /** Deadline of one delivery (default 10 s). */
  timeoutMs?: number;
}

export interface WebhookDelivery {
  event: FakeEvent;
  /** HTTP status of the endpoint's answer (0 when it could not be reached or timed out). */
  status: number;
  /** Why the delivery failed (network error, timeout, non-2xx), null when it succeeded. */
  error: string | null;
  body: string;
}

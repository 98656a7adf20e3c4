-- Pricing plans beyond prepaid cards: pay-as-you-go, tiered and subscription + overage, billed in arrears
-- through Stripe Billing Meters. This migration holds the tables only; the rules that fill them live in the
-- functions of the migrations after it.
--
-- The one rounding rule: a postpaid period's metered seconds are priced exactly (numeric, per second, the
-- very decimal Stripe's Price carries as unit_amount_decimal) and each invoice line is rounded half-up to
-- integer minor units once, as Stripe rounds it. Everything shown before an invoice exists (cost so far, a
-- call's cost to 4 decimals) is that exact amount; nothing is rounded per call or per increment.
--
-- The order a call's time is paid in is FIFO by expiry: a subscription's included minutes (they lapse at the
-- period's end) first, then prepaid cards, then the plan's rate up to the user's spending cap.

-- A plan is one immutable version of an offer. Editing a plan makes a new version under the same key and
-- retires the old one; users stay on the version they chose until their next period (or until they move).
create table public.plans (
  id                 uuid primary key default gen_random_uuid(),
  key                text not null check (key ~ '^[a-z][a-z0-9_]{1,39}$'),
  version            integer not null check (version >= 1),
  kind               text not null check (kind in ('prepaid', 'payg', 'tiered', 'subscription')),
  name               text not null check (length(name) between 1 and 80),
  description        text not null default '' check (length(description) <= 500),
  currency           text not null default 'usd' check (currency ~ '^[a-z]{3}$'),
  -- Charged in advance each period (subscription only).
  monthly_fee_cents  integer not null default 0 check (monthly_fee_cents >= 0),
  -- Metered seconds each period that cost nothing (subscription only): the Stripe usage Price's first tier.
  included_seconds   integer not null default 0 check (included_seconds >= 0),
  -- The spending cap a new subscriber gets, and the most a user may set. null: postpaid without a default
  -- cap is not offered (prepaid plans have neither).
  default_cap_cents  integer check (default_cap_cents > 0),
  max_cap_cents      integer check (max_cap_cents > 0),
  status             text not null default 'active' check (status in ('active', 'retired')),
  sort_order         integer not null default 0,
  -- Filled by `./launch.sh stripe-sync`: what the plan is in Stripe (found again by lookup key).
  stripe_product_id  text check (stripe_product_id is null or length(stripe_product_id) between 1 and 255),
  stripe_fee_price_id   text check (stripe_fee_price_id is null or length(stripe_fee_price_id) between 1 and 255),
  stripe_usage_price_id text check (stripe_usage_price_id is null or length(stripe_usage_price_id) between 1 and 255),
  created_at         timestamptz not null default now(),
  retired_at         timestamptz,
  unique (key, version),
  check ((status = 'retired') = (retired_at is not null)),
  check (kind = 'subscription' or (monthly_fee_cents = 0 and included_seconds = 0)),
  check (kind = 'prepaid' or (default_cap_cents is not null and max_cap_cents is not null
                              and default_cap_cents <= max_cap_cents)),
  check (kind <> 'prepaid' or (default_cap_cents is null and max_cap_cents is null))
);
-- One offered version per key.
create unique index plans_one_active_version on public.plans (key) where status = 'active';

-- The graduated rate schedule of a postpaid plan over the period's billable seconds (after the included
-- ones): tier n covers seconds up to up_to_seconds (null: the rest). A pay-as-you-go plan has one tier.
create table public.plan_rate_tiers (
  plan_id          uuid not null references public.plans(id),
  position         integer not null check (position >= 1),
  up_to_seconds    integer check (up_to_seconds > 0),
  -- What an admin enters and a caller reads; at most 4 decimals of a minor unit.
  cents_per_minute numeric(12, 4) not null check (cents_per_minute >= 0),
  -- What is charged and what Stripe is given as unit_amount_decimal (its limit is 12 decimals).
  cents_per_second numeric(24, 12) generated always as (round(cents_per_minute / 60, 12)) stored,
  primary key (plan_id, position)
);

-- A user's membership of a postpaid plan: one row per Stripe subscription. The current one is the single row
-- per user that is not ended. Its period is the one Stripe says (customer.subscription.*).
create table public.user_plans (
  id                     uuid primary key default gen_random_uuid(),
  user_id                uuid not null,
  plan_id                uuid not null references public.plans(id),
  status                 text not null default 'pending'
    check (status in ('pending', 'active', 'suspended', 'ended')),
  stripe_subscription_id text unique check (stripe_subscription_id is null or length(stripe_subscription_id) between 1 and 255),
  stripe_checkout_session_id text unique,
  current_period_start   timestamptz,
  current_period_end     timestamptz,
  -- A change Stripe applies at the next period boundary (a downgrade, or a cancellation when null).
  scheduled_plan_id      uuid references public.plans(id),
  cancel_at_period_end   boolean not null default false,
  spending_cap_cents     integer not null check (spending_cap_cents > 0),
  -- Why postpaid calls are refused (an unpaid invoice), and where the user pays it.
  suspended_reason       text,
  suspended_invoice_id   text,
  suspended_invoice_url  text,
  created_at             timestamptz not null default now(),
  updated_at             timestamptz not null default now(),
  ended_at               timestamptz,
  check ((status = 'ended') = (ended_at is not null)),
  check ((status = 'suspended') = (suspended_reason is not null)),
  check (status = 'pending' or (current_period_start is not null and current_period_end > current_period_start))
);
create unique index user_plans_one_current on public.user_plans (user_id) where status <> 'ended';
create index user_plans_user_idx on public.user_plans (user_id, created_at desc);

-- What postpaid time cost: one row per charge of a call that reached the plan (included or rated seconds),
-- written by the same SQL that charges the call. History: append-only.
create table public.usage_charges (
  id               bigint generated always as identity primary key,
  user_id          uuid not null,
  user_plan_id     uuid not null references public.user_plans(id),
  plan_id          uuid not null references public.plans(id),
  session_id       uuid not null references public.voice_sessions(id),
  period_start     timestamptz not null,
  included_seconds integer not null check (included_seconds >= 0),
  rated_seconds    integer not null check (rated_seconds >= 0),
  -- The exact cost of the rated seconds at the tiers they fell in, in minor units (never rounded here).
  amount_exact     numeric(24, 12) not null check (amount_exact >= 0),
  currency         text not null check (currency ~ '^[a-z]{3}$'),
  -- Stable: Stripe dedupes meter events on it, and a retried charge cannot write it twice.
  identifier       text not null unique check (length(identifier) between 1 and 100),
  created_at       timestamptz not null,
  check (included_seconds + rated_seconds > 0)
);
create index usage_charges_period_idx on public.usage_charges (user_plan_id, period_start);
create index usage_charges_session_idx on public.usage_charges (session_id);
create index usage_charges_user_idx on public.usage_charges (user_id, created_at desc);

-- Each usage charge's meter event, to be delivered to Stripe (POST /v1/billing/meter_events with
-- identifier = the charge's identifier). Leased by a sender, retried with backoff, never dropped.
create table public.meter_event_outbox (
  usage_charge_id  bigint primary key references public.usage_charges(id),
  identifier       text not null unique,
  event_name       text not null check (event_name ~ '^[a-z][a-z0-9_]{0,99}$'),
  stripe_customer_id text not null check (length(stripe_customer_id) between 1 and 255),
  value_seconds    integer not null check (value_seconds > 0),
  occurred_at      timestamptz not null,
  attempts         integer not null default 0 check (attempts >= 0),
  next_attempt_at  timestamptz not null,
  lease_owner      text,
  leased_until     timestamptz,
  delivered_at     timestamptz,
  last_error       text
);
create index meter_event_outbox_due_idx on public.meter_event_outbox (next_attempt_at) where delivered_at is null;

-- Stripe's invoices of postpaid users, as its webhooks tell them (invoice.created/finalized/paid/
-- payment_failed/voided/marked_uncollectible).
create table public.stripe_invoices (
  invoice_id         text primary key check (invoice_id ~ '^in_[A-Za-z0-9_]+$'),
  user_id            uuid not null,
  user_plan_id       uuid references public.user_plans(id),
  stripe_subscription_id text,
  status             text not null check (status in ('draft', 'open', 'paid', 'uncollectible', 'void')),
  payment_failed     boolean not null default false,
  currency           text not null check (currency ~ '^[a-z]{3}$'),
  total_cents        integer not null,
  amount_due_cents   integer not null check (amount_due_cents >= 0),
  amount_paid_cents  integer not null default 0 check (amount_paid_cents >= 0),
  hosted_invoice_url text,
  period_start       timestamptz,
  period_end         timestamptz,
  created_at         timestamptz not null,
  updated_at         timestamptz not null
);
create index stripe_invoices_user_idx on public.stripe_invoices (user_id, created_at desc);
create index stripe_invoices_open_idx on public.stripe_invoices (status) where status in ('draft', 'open');

-- Where our period totals and Stripe's meter event summaries disagree, found by the reconciliation job.
create table public.meter_drift (
  id               bigint generated always as identity primary key,
  user_plan_id     uuid not null references public.user_plans(id),
  period_start     timestamptz not null,
  period_end       timestamptz not null,
  our_seconds      integer not null,
  stripe_seconds   integer not null,
  checked_at       timestamptz not null,
  resolved_at      timestamptz,
  unique (user_plan_id, period_start)
);

create trigger usage_charges_append_only before update or delete on public.usage_charges
  for each row execute function billing_private.forbid_rewrite();
create trigger usage_charges_no_truncate before truncate on public.usage_charges
  for each statement execute function billing_private.forbid_rewrite();

-- The offers of the usage-billing document (seeds/003), side by side with today's cards.
insert into public.plans (key, version, kind, name, description, sort_order) values
  ('prepaid', 1, 'prepaid', 'Prepaid time cards', 'Buy hours up front; they last a year', 10);
insert into public.plans (key, version, kind, name, description, default_cap_cents, max_cap_cents, sort_order) values
  ('payg', 1, 'payg', 'Pay as you go', '$0.05 per minute, no monthly fee', 5000, 50000, 20),
  ('tiered', 1, 'tiered', 'Volume', 'Per-minute rate falls as you talk more each month', 10000, 100000, 30);
insert into public.plans (key, version, kind, name, description, monthly_fee_cents, included_seconds,
                          default_cap_cents, max_cap_cents, sort_order) values
  ('pro_monthly', 1, 'subscription', 'Pro monthly', '$49 a month with 1,000 minutes included, then $0.05 per minute',
   4900, 1000 * 60, 5000, 50000, 40);
insert into public.plan_rate_tiers (plan_id, position, up_to_seconds, cents_per_minute)
  select p.id, t.position, t.up_to, t.rate
    from public.plans p
    join (values ('payg', 1, null::integer, 5.0),
                 ('tiered', 1, 500 * 60, 6.0), ('tiered', 2, 2000 * 60, 4.0), ('tiered', 3, null, 2.0),
                 ('pro_monthly', 1, null, 5.0)) as t(key, position, up_to, rate)
      on t.key = p.key;

-- ---------- Row level security and grants ----------
alter table public.plans              enable row level security;
alter table public.plan_rate_tiers    enable row level security;
alter table public.user_plans         enable row level security;
alter table public.usage_charges      enable row level security;
alter table public.meter_event_outbox enable row level security;  -- no policy: only the service sees them
alter table public.stripe_invoices    enable row level security;
alter table public.meter_drift        enable row level security;

create policy plans_read on public.plans for select to anon, authenticated using (status = 'active');
create policy plan_rate_tiers_read on public.plan_rate_tiers for select to anon, authenticated
  using (exists (select 1 from public.plans p where p.id = plan_id and p.status = 'active'));
create policy user_plans_own on public.user_plans for select to authenticated using ((select auth.uid()) = user_id);
create policy usage_charges_own on public.usage_charges for select to authenticated using ((select auth.uid()) = user_id);
create policy stripe_invoices_own on public.stripe_invoices for select to authenticated using ((select auth.uid()) = user_id);

revoke all on public.plans, public.plan_rate_tiers, public.user_plans, public.usage_charges,
  public.meter_event_outbox, public.stripe_invoices, public.meter_drift
  from public, anon, authenticated, service_role;
grant select on public.plans, public.plan_rate_tiers to anon, authenticated;
grant select on public.user_plans, public.usage_charges, public.stripe_invoices to authenticated;
-- The service changes these only through the functions of the migrations that follow.
grant select on public.plans, public.plan_rate_tiers, public.user_plans, public.usage_charges,
  public.meter_event_outbox, public.stripe_invoices, public.meter_drift to service_role;

-- Billing schema: time cards, the append-only ledger, metered voice sessions and the tables the Stripe
-- sidecar fills. Plain SQL that runs unchanged on Supabase (PostgreSQL 15/17), plain PostgreSQL and PGlite.
-- Users are the identity provider's uuid; no billing row references an auth table, so billing history
-- outlives a deleted account.
-- All time is integer seconds, all money integer cents.

create schema if not exists billing_private;
revoke all on schema billing_private from public;
-- Functions made here later are not executable by PUBLIC unless granted on purpose.
alter default privileges in schema billing_private revoke execute on functions from public;

-- One row of tunables. Read by the SQL functions on every call, so changing it takes effect at once.
create table public.billing_settings (
  id                        boolean primary key default true check (id),
  billing_increment_seconds integer  not null default 60 check (billing_increment_seconds between 1 and 3600),
  minimum_charge_seconds    integer  not null default 60 check (minimum_charge_seconds between 0 and 86400),
  max_concurrent_sessions   integer  not null default 3 check (max_concurrent_sessions between 1 and 100),
  card_validity             interval not null default interval '1 year' check (card_validity > interval '0'),
  gift_redeem_window        interval not null default interval '1 year' check (gift_redeem_window > interval '0'),
  activation_max_failures   integer  not null default 10 check (activation_max_failures between 1 and 1000),
  activation_failure_window interval not null default interval '15 minutes'
                                     check (activation_failure_window > interval '0'),
  updated_at                timestamptz not null default now()
);
insert into public.billing_settings default values;

create table public.pricing_tiers (
  id              text primary key check (id ~ '^[a-z0-9][a-z0-9_]{1,39}$'),
  name            text not null check (length(name) between 1 and 80),
  description     text not null default '' check (length(description) <= 500),
  base_seconds    integer not null check (base_seconds > 0),
  bonus_seconds   integer not null default 0 check (bonus_seconds >= 0),
  price_cents     integer not null check (price_cents > 0),
  currency        text not null default 'usd' check (currency ~ '^[a-z]{3}$'),
  active          boolean not null default true,
  sort_order      integer not null default 0,
  stripe_price_id text check (stripe_price_id is null or length(stripe_price_id) between 1 and 255),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now()
);

insert into public.pricing_tiers (id, name, description, base_seconds, bonus_seconds, price_cents, sort_order) values
  ('starter_1h',     'Starter Pack',    'Perfect for trying out MindBot',   1 * 3600,      0,   999, 10),
  ('basic_5h',       'Basic Pack',      'Great for regular users',          5 * 3600,   30 * 60,  4499, 20),
  ('premium_10h',    'Premium Pack',    'Best value option',               10 * 3600,  2 * 3600,  7999, 30),
  ('pro_25h',        'Pro Pack',        'For power users',                 25 * 3600,  5 * 3600, 17999, 40),
  ('enterprise_50h', 'Enterprise Pack', 'Maximum value',                   50 * 3600, 10 * 3600, 29999, 50);

create table public.payments (
  id                         uuid primary key default gen_random_uuid(),
  user_id                    uuid,
  tier_id                    text references public.pricing_tiers(id),
  card_id                    uuid,
  gift                       boolean not null default false,
  amount_cents               integer not null check (amount_cents >= 0),
  currency                   text not null default 'usd' check (currency ~ '^[a-z]{3}$'),
  status                     text not null default 'pending'
    check (status in ('pending', 'succeeded', 'failed', 'canceled', 'refunded', 'partially_refunded', 'disputed')),
  refunded_cents             integer not null default 0 check (refunded_cents >= 0),
  failure_reason             text,
  stripe_checkout_session_id text unique,
  stripe_payment_intent_id   text unique,
  stripe_charge_id           text unique,
  stripe_customer_id         text,
  created_at                 timestamptz not null default now(),
  updated_at                 timestamptz not null default now(),
  check (refunded_cents <= amount_cents)
);
create index payments_user_idx on public.payments (user_id, created_at desc);

create table public.time_cards (
  id                uuid primary key default gen_random_uuid(),
  user_id           uuid,                     -- null while an unredeemed gift
  purchaser_id      uuid,                     -- who paid; may see a gift's code until it is redeemed
  tier_id           text references public.pricing_tiers(id),  -- null for a manual credit
  source            text not null check (source in ('purchase', 'gift', 'adjustment')),
  activation_code   text not null unique check (activation_code ~ '^[2-9A-HJKMNP-Z]{12}$'),
  total_seconds     integer not null check (total_seconds > 0),
  remaining_seconds integer not null,
  status            text not null check (status in ('pending', 'active', 'exhausted', 'expired', 'revoked')),
  activated_at      timestamptz,
  expires_at        timestamptz not null,     -- for a pending gift: the last day it can be redeemed
  payment_id        uuid references public.payments(id),
  grant_key         text not null unique,
  note              text,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  check (remaining_seconds between 0 and total_seconds),
  check (status <> 'pending' or (user_id is null and activated_at is null)),
  check (status not in ('active', 'exhausted') or (user_id is not null and activated_at is not null))
) with (fillfactor = 80);  -- room on each page for HOT updates: a deduction changes no indexed column
-- Only spendable cards are scanned when deducting, in FIFO order.
create index time_cards_spendable_idx on public.time_cards (user_id, expires_at, created_at, id) where status = 'active';
create index time_cards_user_idx on public.time_cards (user_id);
create index time_cards_purchaser_idx on public.time_cards (purchaser_id) where purchaser_id is not null;
create index time_cards_expiry_idx on public.time_cards (expires_at) where status in ('active', 'pending');
create unique index time_cards_one_per_payment on public.time_cards (payment_id) where payment_id is not null;

create table public.voice_sessions (
  id                uuid primary key default gen_random_uuid(),
  user_id           uuid not null,
  external_key      text not null unique check (length(external_key) between 1 and 400),
  room_name         text not null check (length(room_name) between 1 and 200),
  status            text not null default 'active' check (status in ('active', 'ended', 'cut_off', 'abandoned')),
  started_at        timestamptz not null,
  last_metered_at   timestamptz not null,
  ended_at          timestamptz,
  billed_seconds    integer not null default 0 check (billed_seconds >= 0),
  -- The rules in force when the call began: a settings change never re-prices a running call.
  increment_seconds integer not null check (increment_seconds > 0),
  minimum_seconds   integer not null check (minimum_seconds >= 0),
  end_reason        text,
  check ((status = 'active') = (ended_at is null))
);
create index voice_sessions_user_idx on public.voice_sessions (user_id, started_at desc);
create index voice_sessions_active_idx on public.voice_sessions (last_metered_at) where status = 'active';
create index voice_sessions_user_active_idx on public.voice_sessions (user_id) where status = 'active';

create table public.ledger_entries (
  id               bigint generated always as identity primary key,
  card_id          uuid not null references public.time_cards(id),
  user_id          uuid,                      -- the card's owner at the time; null for an unredeemed gift
  kind             text not null check (kind in ('grant', 'usage', 'expiry', 'refund', 'revoke', 'restore', 'adjustment')),
  seconds          integer not null check (seconds <> 0),
  remaining_before integer not null check (remaining_before >= 0),
  remaining_after  integer not null check (remaining_after >= 0),
  session_id       uuid references public.voice_sessions(id),
  payment_id       uuid references public.payments(id),
  operation_key    text not null,
  idempotency_key  text not null unique,
  reason           text,
  created_at       timestamptz not null default now(),
  check (remaining_after = remaining_before + seconds),
  check (case kind when 'grant' then seconds > 0 when 'restore' then seconds > 0
                   when 'adjustment' then true else seconds < 0 end)
);
create index ledger_entries_card_idx on public.ledger_entries (card_id, id);
create index ledger_entries_user_idx on public.ledger_entries (user_id, created_at desc);
create index ledger_entries_session_idx on public.ledger_entries (session_id) where session_id is not null;

create table public.stripe_events (
  id           text primary key,
  type         text not null,
  livemode     boolean not null default false,
  received_at  timestamptz not null default now(),
  processed_at timestamptz,
  outcome      text,
  payload      jsonb not null
);

create table public.notifications (
  id           uuid primary key default gen_random_uuid(),
  user_id      uuid,
  kind         text not null check (kind in ('low_balance', 'card_expiring', 'balance_exhausted', 'purchase')),
  payload      jsonb not null default '{}'::jsonb,
  dedupe_key   text not null unique,
  created_at   timestamptz not null default now(),
  available_at timestamptz not null default now(),
  delivered_at timestamptz,
  attempts     integer not null default 0,
  last_error   text
);
create index notifications_pending_idx on public.notifications (available_at) where delivered_at is null;

-- Every idempotent operation's first answer, replayed for a repeated key.
create table billing_private.operations (
  key        text primary key,
  kind       text not null,
  request    jsonb not null,
  result     jsonb not null,
  created_at timestamptz not null default now()
);

-- Failed code redemptions, for the per-user rate limit.
create table billing_private.activation_failures (
  id         bigint generated always as identity primary key,
  user_id    uuid not null,
  code_tail  text not null,
  error_code text not null,
  created_at timestamptz not null
);
create index activation_failures_user_idx on billing_private.activation_failures (user_id, created_at);

-- The ledger and the operation log are history: nobody rewrites them, whatever their grants.
create function billing_private.forbid_rewrite() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  raise exception '% is append-only: % is not allowed', tg_table_name, lower(tg_op)
    using errcode = '42501', hint = 'append_only';
end
$$;

create trigger ledger_entries_append_only before update or delete on public.ledger_entries
  for each row execute function billing_private.forbid_rewrite();
create trigger ledger_entries_no_truncate before truncate on public.ledger_entries
  for each statement execute function billing_private.forbid_rewrite();
create trigger operations_append_only before update or delete on billing_private.operations
  for each row execute function billing_private.forbid_rewrite();
create trigger operations_no_truncate before truncate on billing_private.operations
  for each statement execute function billing_private.forbid_rewrite();

-- ---------- Row level security ----------
alter table public.billing_settings enable row level security;
alter table public.pricing_tiers    enable row level security;
alter table public.payments         enable row level security;
alter table public.time_cards       enable row level security;
alter table public.voice_sessions   enable row level security;
alter table public.ledger_entries   enable row level security;
alter table public.stripe_events    enable row level security;  -- no policy: only the service sees it
alter table public.notifications    enable row level security;

create policy pricing_tiers_read on public.pricing_tiers for select to anon, authenticated using (active);
create policy payments_own on public.payments for select to authenticated
  using ((select auth.uid()) = user_id);
create policy time_cards_own on public.time_cards for select to authenticated
  using ((select auth.uid()) = user_id or (user_id is null and (select auth.uid()) = purchaser_id));
create policy voice_sessions_own on public.voice_sessions for select to authenticated
  using ((select auth.uid()) = user_id);
create policy ledger_entries_own on public.ledger_entries for select to authenticated
  using ((select auth.uid()) = user_id);
create policy notifications_own on public.notifications for select to authenticated
  using ((select auth.uid()) = user_id);

-- Explicit grants: Supabase no longer grants new public tables to the API roles by default.
revoke all on public.billing_settings, public.pricing_tiers, public.payments, public.time_cards,
  public.voice_sessions, public.ledger_entries, public.stripe_events, public.notifications
  from public, anon, authenticated, service_role;
grant select on public.pricing_tiers to anon, authenticated;
grant select on public.payments, public.time_cards, public.voice_sessions, public.ledger_entries,
  public.notifications to authenticated;
-- The service changes balances only through the functions; it writes directly only the sidecar's tables.
grant select on public.billing_settings, public.pricing_tiers, public.payments, public.time_cards,
  public.voice_sessions, public.ledger_entries, public.stripe_events, public.notifications to service_role;
grant insert, update on public.pricing_tiers, public.payments, public.stripe_events, public.notifications
  to service_role;

-- Money follows Stripe's real payment lifecycles: a declined try then a paid one on the same PaymentIntent,
-- refunds known one by one (and one that fails afterwards gives its time back), disputes that freeze the
-- card only while Stripe holds the money, the price fixed when the buyer saw it, and events that can never
-- apply recorded for an administrator instead of failing (and being retried by Stripe) for three days.
--
-- Same conventions as 002/003. Functions whose signature stays are replaced in place; those that gain a
-- parameter are dropped and created again (an overload would make calls that rely on defaults ambiguous)
-- and granted again as the originals were.

-- ---------- the price at purchase ----------

-- A tier's version counts changes of what a buyer gets or pays; a Checkout Session carries the version (and
-- the seconds and price themselves) it was created with, so an edit afterwards never changes that sale.
alter table public.pricing_tiers add column version integer not null default 1 check (version > 0);

create function billing_private.bump_tier_version() returns trigger
  language plpgsql set search_path = ''
as $$
begin
  if (new.base_seconds, new.bonus_seconds, new.price_cents, new.currency)
     is distinct from (old.base_seconds, old.bonus_seconds, old.price_cents, old.currency) then
    new.version := old.version + 1;
  else
    new.version := old.version;
  end if;
  return new;
end
$$;
create trigger pricing_tiers_version before update on public.pricing_tiers
  for each row execute function billing_private.bump_tier_version();

create or replace function billing_private.tier_json(p_tier public.pricing_tiers) returns jsonb
  language plpgsql immutable
as $$
begin
  return pg_catalog.jsonb_build_object(
    'id', p_tier.id, 'name', p_tier.name, 'description', p_tier.description,
    'base_seconds', p_tier.base_seconds, 'bonus_seconds', p_tier.bonus_seconds,
    'total_seconds', p_tier.base_seconds + p_tier.bonus_seconds,
    'price_cents', p_tier.price_cents, 'currency', p_tier.currency, 'active', p_tier.active,
    'sort_order', p_tier.sort_order, 'stripe_price_id', p_tier.stripe_price_id, 'version', p_tier.version);
end
$$;

create or replace function public.get_pricing_tiers(p_include_inactive boolean default false)
  returns jsonb language sql stable security invoker set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'id', t.id, 'name', t.name, 'description', t.description,
           'base_seconds', t.base_seconds, 'bonus_seconds', t.bonus_seconds,
           'total_seconds', t.base_seconds + t.bonus_seconds,
           'price_cents', t.price_cents, 'currency', t.currency, 'active', t.active,
           'sort_order', t.sort_order, 'stripe_price_id', t.stripe_price_id, 'version', t.version)
         order by t.sort_order, t.id), '[]'::jsonb)
    from public.pricing_tiers t
   where t.active or p_include_inactive
$$;

-- ---------- what Stripe told us, one object at a time ----------

-- Events that can never apply however often Stripe delivers them: acknowledged, and kept here for an
-- administrator (GET /admin/attention).
create table public.stripe_attention (
  id          bigint generated always as identity primary key,
  event_id    text not null,
  event_type  text not null,
  code        text not null check (code ~ '^[a-z][a-z_]{2,59}$'),
  message     text not null check (length(message) between 1 and 1000),
  payment_id  uuid references public.payments(id),
  object_id   text,
  created_at  timestamptz not null default now(),
  unique (event_id, code)
);
create index stripe_attention_created_idx on public.stripe_attention (created_at desc, id desc);

-- Each refund of a payment by its Stripe id: what it returned (while it counts) and the seconds it took.
-- failed and canceled are final: the money went back to us, so the refund no longer counts.
create table public.payment_refunds (
  refund_id        text primary key check (refund_id ~ '^(re|pyr)_[A-Za-z0-9_]+$'),
  payment_id       uuid not null references public.payments(id),
  amount_cents     integer not null check (amount_cents >= 0),
  status           text not null check (length(status) between 1 and 40),
  applied          boolean not null default false,  -- its share of the card was taken (or owed nothing)
  seconds_taken    integer not null default 0 check (seconds_taken >= 0),
  seconds_returned integer not null default 0 check (seconds_returned between 0 and seconds_taken),
  created_at       timestamptz not null,
  updated_at       timestamptz not null
);
create index payment_refunds_payment_idx on public.payment_refunds (payment_id);

-- Each dispute of a payment: whether Stripe withdrew the funds (and reinstated them), how it ended, and
-- whether the card is frozen for it now. freezes numbers the freezes, each its own revocation.
create table public.payment_disputes (
  dispute_id       text primary key check (dispute_id ~ '^(dp|du)_[A-Za-z0-9_]+$'),
  payment_id       uuid not null references public.payments(id),
  status           text not null check (length(status) between 1 and 40),
  funds_withdrawn  boolean not null default false,
  funds_reinstated boolean not null default false,
  frozen           boolean not null default false,
  freezes          integer not null default 0 check (freezes >= 0),
  created_at       timestamptz not null,
  updated_at       timestamptz not null
);
create index payment_disputes_payment_idx on public.payment_disputes (payment_id);

alter table public.stripe_attention enable row level security;  -- no policy: only the service sees them
alter table public.payment_refunds  enable row level security;
alter table public.payment_disputes enable row level security;
revoke all on public.stripe_attention, public.payment_refunds, public.payment_disputes
  from public, anon, authenticated, service_role;
grant select on public.stripe_attention, public.payment_refunds, public.payment_disputes to service_role;

create function billing_private.note_attention(
  p_event_id text, p_event_type text, p_code text, p_message text, p_payment_id uuid, p_object_id text,
  p_now timestamptz
) returns void language plpgsql
as $$
begin
  insert into public.stripe_attention (event_id, event_type, code, message, payment_id, object_id, created_at)
  values (p_event_id, p_event_type, p_code, left(p_message, 1000), p_payment_id, p_object_id, p_now)
  on conflict (event_id, code) do nothing;
end
$$;

-- The answer for an event that was recorded for attention (one code and message per event).
create function billing_private.attention_outcome(p_event_id text, p_code text, p_message text, p_payment_id uuid,
  p_now timestamptz) returns jsonb language plpgsql
as $$
begin
  return billing_private.finish_stripe_event(p_event_id, 'needs_attention', p_now)
    || pg_catalog.jsonb_build_object('attention', pg_catalog.jsonb_build_object('code', p_code, 'message', p_message),
         'payment_id', p_payment_id);
end
$$;

-- ---------- granting what was bought ----------

-- grant_time_card's body with the seconds given (null: the tier's seconds now). A purchase grants the
-- seconds its Checkout Session showed, whatever the tier says by the time the money arrives.
create function billing_private.grant_card(
  p_user_id uuid, p_tier_id text, p_payment_id uuid, p_idempotency_key text,
  p_now timestamptz, p_purchaser_id uuid, p_seconds integer
) returns jsonb language plpgsql
as $$
declare
  v_settings public.billing_settings := billing_private.settings();
  v_tier public.pricing_tiers;
  v_card public.time_cards;
  v_card_id uuid;
  v_seconds integer;
begin
  perform billing_private.require_key(p_idempotency_key);
  select * into v_tier from public.pricing_tiers t where t.id = p_tier_id;
  if not found then
    perform billing_private.fail('unknown_tier', pg_catalog.format('no pricing tier %L', p_tier_id));
  end if;
  v_seconds := coalesce(p_seconds, v_tier.base_seconds + v_tier.bonus_seconds);
  perform billing_private.require_positive_seconds(v_seconds, 'seconds granted');
  if p_payment_id is not null and not exists (select 1 from public.payments p where p.id = p_payment_id) then
    perform billing_private.fail('unknown_payment', pg_catalog.format('no payment %s', p_payment_id));
  end if;
  if p_user_id is null and p_purchaser_id is null and p_payment_id is null then
    perform billing_private.fail('invalid_argument', 'a gift card needs a purchaser or a payment');
  end if;

  -- Parallel deliveries of one purchase queue here, then find the card the first one made.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
    'mindbot.grant:' || coalesce(p_payment_id::text, p_idempotency_key), 0));
  select * into v_card from public.time_cards c where c.grant_key = p_idempotency_key;
  if not found and p_payment_id is not null then
    select * into v_card from public.time_cards c where c.payment_id = p_payment_id;
  end if;
  if v_card.id is not null then
    if v_card.tier_id is distinct from p_tier_id
       or v_card.payment_id is distinct from p_payment_id
       or (p_user_id is null) <> (v_card.source = 'gift')
       or (p_user_id is not null and v_card.user_id is distinct from p_user_id) then
      perform billing_private.fail('idempotency_conflict',
        pg_catalog.format('key %L or its payment already granted a different card', p_idempotency_key));
    end if;
    return billing_private.card_json(v_card) || '{"replayed": true}'::jsonb;
  end if;

  insert into public.time_cards (user_id, purchaser_id, tier_id, source, activation_code, total_seconds,
    remaining_seconds, status, activated_at, expires_at, payment_id, grant_key, created_at, updated_at)
  values (p_user_id, coalesce(p_purchaser_id, p_user_id), p_tier_id,
    case when p_user_id is null then 'gift' else 'purchase' end,
    billing_private.new_unique_activation_code(), v_seconds, 0,
    case when p_user_id is null then 'pending' else 'active' end,
    case when p_user_id is null then null else p_now end,
    billing_private.plus_utc(p_now,
      case when p_user_id is null then v_settings.gift_redeem_window else v_settings.card_validity end),
    p_payment_id, p_idempotency_key, p_now, p_now)
  returning id into v_card_id;
  perform billing_private.move_seconds(v_card_id, v_seconds, 'grant', 'grant:' || p_idempotency_key, p_now, null, p_payment_id);
  if p_payment_id is not null then
    update public.payments p set card_id = v_card_id, updated_at = p_now where p.id = p_payment_id;
  end if;
  select * into v_card from public.time_cards c where c.id = v_card_id;
  return billing_private.card_json(v_card) || '{"replayed": false}'::jsonb;
end
$$;

create or replace function public.grant_time_card(
  p_user_id uuid, p_tier_id text, p_payment_id uuid, p_idempotency_key text,
  p_now timestamptz default null, p_purchaser_id uuid default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
begin
  return billing_private.grant_card(p_user_id, p_tier_id, p_payment_id, p_idempotency_key,
    coalesce(p_now, pg_catalog.now()), p_purchaser_id, null);
end
$$;

-- A paid purchase. The amount is what Stripe received (a success always sets it, over an earlier declined
-- try's). The card is granted once per payment, with the seconds the buyer was shown (p_seconds, from the
-- Checkout metadata; without them, the tier's seconds now), and only when the amount and currency are the
-- price the buyer was shown: anything else is recorded for attention, never silently granted.
drop function public.record_payment_success(text, text, jsonb, uuid, text, boolean, integer, text, text, text, text, text, timestamptz);
create function public.record_payment_success(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_user_id uuid, p_tier_id text, p_gift boolean, p_amount_cents integer, p_currency text,
  p_checkout_session_id text default null, p_payment_intent_id text default null, p_charge_id text default null,
  p_customer_id text default null, p_seconds integer default null, p_price_cents integer default null,
  p_price_currency text default null, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_tier public.pricing_tiers;
  v_payment public.payments;
  v_card jsonb;
  v_outcome text;
  v_price integer;
  v_price_currency text;
  v_problem text;
  v_message text;
begin
  perform billing_private.require_user(p_user_id);
  if p_checkout_session_id is null and p_payment_intent_id is null then
    perform billing_private.fail('invalid_argument', 'a checkout session or payment intent id is required');
  end if;
  if p_amount_cents is null or p_amount_cents < 0 then
    perform billing_private.fail('invalid_argument', 'the amount must be a non-negative number of cents');
  end if;
  if p_seconds is not null then
    perform billing_private.require_positive_seconds(p_seconds, 'seconds bought');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  select * into v_tier from public.pricing_tiers t where t.id = p_tier_id;
  v_price := coalesce(p_price_cents, v_tier.price_cents);
  v_price_currency := lower(coalesce(p_price_currency, v_tier.currency));

  perform billing_private.lock_purchase(p_checkout_session_id, p_payment_intent_id);
  v_payment := billing_private.find_payment(p_checkout_session_id, p_payment_intent_id, p_charge_id);
  if v_payment.id is not null
     and (v_payment.user_id is distinct from p_user_id or (v_payment.tier_id is not null and v_payment.tier_id is distinct from p_tier_id)) then
    v_message := pg_catalog.format('payment %s belongs to another user or package than this event names', v_payment.id);
    perform billing_private.note_attention(p_event_id, p_event_type, 'conflicting_purchase', v_message, v_payment.id,
      coalesce(p_payment_intent_id, p_checkout_session_id), v_now);
    return billing_private.attention_outcome(p_event_id, 'conflicting_purchase', v_message, v_payment.id, v_now);
  end if;
  if v_payment.id is null then
    insert into public.payments (user_id, tier_id, gift, amount_cents, currency, status, stripe_checkout_session_id,
      stripe_payment_intent_id, stripe_charge_id, stripe_customer_id, created_at, updated_at)
    values (p_user_id, v_tier.id, coalesce(p_gift, false), p_amount_cents, lower(coalesce(p_currency, 'usd')), 'succeeded',
      p_checkout_session_id, p_payment_intent_id, p_charge_id, p_customer_id, v_now, v_now)
    returning * into v_payment;
  else
    update public.payments p
       set stripe_checkout_session_id = coalesce(p.stripe_checkout_session_id, p_checkout_session_id),
           stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, p_payment_intent_id),
           stripe_charge_id = coalesce(p.stripe_charge_id, p_charge_id),
           stripe_customer_id = coalesce(p.stripe_customer_id, p_customer_id),
           tier_id = coalesce(p.tier_id, v_tier.id),
           -- What was received, never below what was already refunded of it.
           amount_cents = greatest(p_amount_cents, p.refunded_cents),
           currency = lower(coalesce(p_currency, p.currency)),
           status = case when p.status in ('pending', 'failed', 'canceled') then 'succeeded' else p.status end,
           failure_reason = null,
           updated_at = v_now
     where p.id = v_payment.id
    returning * into v_payment;
  end if;

  if v_payment.card_id is not null then
    v_outcome := 'already_granted';
    v_card := (select billing_private.card_json(c) from public.time_cards c where c.id = v_payment.card_id);
  else
    if v_tier.id is null then
      v_problem := 'unknown_tier';
      v_message := pg_catalog.format('the purchase names package %L, which this database does not have: %s %s received, nothing granted',
        p_tier_id, p_amount_cents, lower(coalesce(p_currency, 'usd')));
    elsif p_amount_cents <> v_price or lower(coalesce(p_currency, 'usd')) <> v_price_currency then
      v_problem := 'amount_mismatch';
      v_message := pg_catalog.format('%s %s received for package %L priced %s %s at purchase: nothing granted',
        p_amount_cents, lower(coalesce(p_currency, 'usd')), p_tier_id, v_price, v_price_currency);
    end if;
    if v_problem is not null then
      perform billing_private.note_attention(p_event_id, p_event_type, v_problem, v_message, v_payment.id,
        coalesce(p_payment_intent_id, p_checkout_session_id), v_now);
      return billing_private.attention_outcome(p_event_id, v_problem, v_message, v_payment.id, v_now);
    end if;
    v_card := billing_private.grant_card(case when v_payment.gift then null else v_payment.user_id end, v_payment.tier_id,
      v_payment.id, 'payment:' || v_payment.id::text, v_now, v_payment.user_id, p_seconds);
    v_outcome := 'granted';
    insert into public.notifications (user_id, kind, payload, dedupe_key, created_at, available_at)
    values (v_payment.user_id, 'purchase', pg_catalog.jsonb_build_object(
        'payment_id', v_payment.id, 'tier_id', v_payment.tier_id, 'amount_cents', v_payment.amount_cents,
        'currency', v_payment.currency, 'gift', v_payment.gift, 'card_id', v_card ->> 'id',
        'activation_code', case when v_payment.gift then v_card ->> 'activation_code' end),
      'purchase:' || v_payment.id::text, v_now, v_now)
    on conflict (dedupe_key) do nothing;
  end if;
  return billing_private.finish_stripe_event(p_event_id, v_outcome, v_now)
    || pg_catalog.jsonb_build_object('payment_id', v_payment.id, 'card', v_card - 'replayed');
end
$$;

-- A payment that did not go through. p_stage says how final it is:
--   attempt  a declined try (payment_intent.payment_failed): recorded, nobody told, since Checkout lets the
--            buyer try again on the same PaymentIntent;
--   failed   the delayed payment failed (checkout.session.async_payment_failed): final;
--   expired  the Checkout Session expired (checkout.session.expired): final for a purchase that was tried;
--            one never tried is only acknowledged;
--   canceled the PaymentIntent was canceled (payment_intent.canceled): final.
-- The buyer is told once per payment, on its final outcome. Never recorded over a success.
drop function public.record_payment_failure(text, text, jsonb, uuid, text, boolean, integer, text, text, text, text, timestamptz);
create function public.record_payment_failure(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_user_id uuid, p_tier_id text, p_gift boolean, p_amount_cents integer, p_currency text,
  p_checkout_session_id text default null, p_payment_intent_id text default null, p_reason text default null,
  p_stage text default 'attempt', p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
  v_status text := case p_stage when 'canceled' then 'canceled' else 'failed' end;
begin
  if p_checkout_session_id is null and p_payment_intent_id is null then
    perform billing_private.fail('invalid_argument', 'a checkout session or payment intent id is required');
  end if;
  if p_stage is null or p_stage not in ('attempt', 'failed', 'expired', 'canceled') then
    perform billing_private.fail('invalid_argument', 'stage must be attempt, failed, expired or canceled');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  perform billing_private.lock_purchase(p_checkout_session_id, p_payment_intent_id);
  v_payment := billing_private.find_payment(p_checkout_session_id, p_payment_intent_id, null);
  if v_payment.id is null then
    if p_stage = 'expired' then
      return billing_private.finish_stripe_event(p_event_id, 'expired_untried', v_now);
    end if;
    insert into public.payments (user_id, tier_id, gift, amount_cents, currency, status, failure_reason,
      stripe_checkout_session_id, stripe_payment_intent_id, created_at, updated_at)
    values (p_user_id, case when exists (select 1 from public.pricing_tiers t where t.id = p_tier_id) then p_tier_id end,
      coalesce(p_gift, false), greatest(coalesce(p_amount_cents, 0), 0), lower(coalesce(p_currency, 'usd')), v_status,
      left(p_reason, 500), p_checkout_session_id, p_payment_intent_id, v_now, v_now)
    returning * into v_payment;
  elsif v_payment.status in ('pending', 'failed', 'canceled') then
    -- The amount asked stays known: a failure never writes 0 over it.
    update public.payments p
       set status = v_status, failure_reason = left(coalesce(p_reason, p.failure_reason), 500),
           amount_cents = case when p.amount_cents = 0 then greatest(coalesce(p_amount_cents, 0), 0) else p.amount_cents end,
           stripe_checkout_session_id = coalesce(p.stripe_checkout_session_id, p_checkout_session_id),
           stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, p_payment_intent_id),
           updated_at = v_now
     where p.id = v_payment.id returning * into v_payment;
  else
    -- A late failure of an attempt that later succeeded (or was refunded) changes nothing.
    return billing_private.finish_stripe_event(p_event_id, 'ignored_after_success', v_now)
      || pg_catalog.jsonb_build_object('payment_id', v_payment.id);
  end if;
  if p_stage = 'attempt' then
    return billing_private.finish_stripe_event(p_event_id, 'recorded_attempt', v_now)
      || pg_catalog.jsonb_build_object('payment_id', v_payment.id);
  end if;
  if v_payment.user_id is not null then
    insert into public.notifications (user_id, kind, payload, dedupe_key, created_at, available_at)
    values (v_payment.user_id, 'payment_failed', pg_catalog.jsonb_build_object('payment_id', v_payment.id,
        'tier_id', v_payment.tier_id, 'reason', v_payment.failure_reason), 'payment_failed:' || v_payment.id::text, v_now, v_now)
    on conflict (dedupe_key) do nothing;
  end if;
  return billing_private.finish_stripe_event(p_event_id, 'recorded_failure', v_now)
    || pg_catalog.jsonb_build_object('payment_id', v_payment.id);
end
$$;

-- ---------- refunds ----------

-- The payment a refund or dispute is about, or a recorded reason why there is none. With a payment intent
-- the sidecar can still look the purchase up at Stripe (unknown_payment is raised for that); without one
-- nothing can ever tell us, so the event is kept for attention.
create function billing_private.payment_for_event(
  p_event_id text, p_event_type text, p_payment_intent_id text, p_charge_id text, p_object_id text, p_now timestamptz
) returns public.payments language plpgsql
as $$
declare
  v_payment public.payments := billing_private.find_payment(null, p_payment_intent_id, p_charge_id);
begin
  if v_payment.id is null then
    if p_payment_intent_id is not null then
      perform billing_private.fail('unknown_payment',
        pg_catalog.format('no payment for payment intent %s / charge %s', p_payment_intent_id, p_charge_id));
    end if;
    perform billing_private.note_attention(p_event_id, p_event_type, 'unknown_charge',
      pg_catalog.format('%s names charge %s, which has no payment intent and no payment here', p_object_id, p_charge_id),
      null, p_object_id, p_now);
  end if;
  return v_payment;
end
$$;

-- The seconds a payment's refunds should have taken back in all when p_refunded_cents of it is refunded:
-- its share of the card, computed from what was really paid; all of it once everything is refunded.
create function billing_private.refund_target(p_total_seconds integer, p_amount_cents integer, p_refunded_cents integer)
  returns integer language sql immutable
as $$
  select case when p_refunded_cents <= 0 then 0
              when p_amount_cents <= 0 or p_refunded_cents >= p_amount_cents then p_total_seconds
              else (p_total_seconds::bigint * p_refunded_cents / p_amount_cents)::integer end
$$;

-- Refund objects as Stripe reports them (refund.created/updated/failed, charge.refund.updated, or the list in
-- charge.refunded), each [{id, amount, status}]. Keyed by the refund's id, so any order and any repetition
-- of these events, cumulative or not, applies each refund once:
--   * a refund that counts (any status but failed/canceled) takes its share of the card's unused seconds
--     (never below zero: a share beyond what is left is taken in part and recorded for attention);
--   * one that fails or is canceled afterwards gives back what it took, if the card can still be used;
--   * refunded_cents is the sum of the refunds that count: what Stripe says is refunded.
drop function public.record_refund(text, text, jsonb, text, text, integer, timestamptz);
create function public.record_refunds(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_payment_intent_id text, p_charge_id text, p_refunds jsonb, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
  v_card public.time_cards;
  v_item jsonb;
  v_refund public.payment_refunds;
  v_id text;
  v_amount integer;
  v_status text;
  v_counts boolean;
  v_counted integer;
  v_net_taken integer;
  v_owed integer;
  v_taken integer;
  v_give integer;
  v_revoked_total integer := 0;
  v_returned_total integer := 0;
  v_attention jsonb;
begin
  if p_refunds is null or pg_catalog.jsonb_typeof(p_refunds) <> 'array' then
    perform billing_private.fail('invalid_argument', 'refunds must be a JSON array of {id, amount, status}');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  v_payment := billing_private.payment_for_event(p_event_id, p_event_type, p_payment_intent_id, p_charge_id,
    coalesce(p_refunds -> 0 ->> 'id', p_charge_id), v_now);
  if v_payment.id is null then
    return billing_private.attention_outcome(p_event_id, 'unknown_charge',
      pg_catalog.format('refund of charge %s, which has no payment intent and no payment here', p_charge_id), null, v_now);
  end if;
  if v_payment.card_id is not null then
    v_card := billing_private.lock_card_for_change(v_payment.card_id);
  end if;
  select * into v_payment from public.payments p where p.id = v_payment.id for update;

  for v_item in select * from pg_catalog.jsonb_array_elements(p_refunds) loop
    v_id := v_item ->> 'id';
    v_amount := (v_item ->> 'amount')::integer;
    v_status := coalesce(v_item ->> 'status', 'succeeded');
    if v_id is null or v_id !~ '^(re|pyr)_[A-Za-z0-9_]+$' or v_amount is null or v_amount < 0 then
      perform billing_private.fail('invalid_argument', 'each refund needs an id like re_... and a non-negative amount');
    end if;
    select * into v_refund from public.payment_refunds r where r.refund_id = v_id for update;
    if v_refund.refund_id is null then
      insert into public.payment_refunds (refund_id, payment_id, amount_cents, status, created_at, updated_at)
      values (v_id, v_payment.id, v_amount, v_status, v_now, v_now)
      returning * into v_refund;
    elsif v_refund.payment_id <> v_payment.id then
      perform billing_private.fail('idempotency_conflict', pg_catalog.format('refund %s belongs to another payment', v_id));
    elsif v_refund.status not in ('failed', 'canceled') then
      -- failed and canceled are final: a late "succeeded" of the same refund changes nothing.
      update public.payment_refunds r set status = v_status, updated_at = v_now
       where r.refund_id = v_id returning * into v_refund;
    end if;
    v_counts := v_refund.status not in ('failed', 'canceled');
    select coalesce(sum(r.amount_cents) filter (where r.status not in ('failed', 'canceled')), 0)::integer,
           coalesce(sum(r.seconds_taken - r.seconds_returned), 0)::integer
      into v_counted, v_net_taken
      from public.payment_refunds r where r.payment_id = v_payment.id;

    if v_counts and not v_refund.applied and v_card.id is not null then
      -- Its share: what all counting refunds should have taken by now, less what they did take.
      v_owed := billing_private.refund_target(v_card.total_seconds, v_payment.amount_cents, v_counted) - v_net_taken;
      if v_owed > 0 then
        v_taken := (public.revoke_card_time(v_card.id, v_owed, 'refund', 'refund:' || v_id,
          'refunded through Stripe (' || v_id || ')', v_now) ->> 'revoked_seconds')::integer;
        update public.payment_refunds r set seconds_taken = v_taken, updated_at = v_now where r.refund_id = v_id;
        v_revoked_total := v_revoked_total + v_taken;
        if v_taken < v_owed then
          perform billing_private.note_attention(p_event_id, p_event_type, 'refund_exceeds_unused_time',
            pg_catalog.format('refund %s of %s cents is worth %s s of the card, but only %s s were unused: the rest had been used',
              v_id, v_amount, v_owed, v_taken), v_payment.id, v_id, v_now);
          v_attention := pg_catalog.jsonb_build_object('code', 'refund_exceeds_unused_time');
        end if;
        select * into v_card from public.time_cards c where c.id = v_card.id;
      end if;
      update public.payment_refunds r set applied = true where r.refund_id = v_id;
    elsif v_card.id is not null and not v_counts and v_refund.seconds_taken > v_refund.seconds_returned then
      -- The money came back to us: so does the time, unless the card can no longer be used (expired, or
      -- frozen by a dispute whose own restore gives back what it froze).
      if v_card.expires_at > v_now and v_card.status <> 'expired'
         and not exists (select 1 from public.payment_disputes d where d.payment_id = v_payment.id and d.frozen) then
        v_give := least(v_refund.seconds_taken - v_refund.seconds_returned, v_card.total_seconds - v_card.remaining_seconds);
        if v_give > 0 then
          perform billing_private.move_seconds(v_card.id, v_give, 'restore', 'refund-failed:' || v_id, v_now,
            null, v_payment.id, 'refund ' || v_id || ' failed: its time is given back');
          update public.time_cards c
             set status = case when c.user_id is null then 'pending' else 'active' end, updated_at = v_now
           where c.id = v_card.id and c.status = 'revoked';
          update public.payment_refunds r set seconds_returned = r.seconds_returned + v_give, updated_at = v_now
           where r.refund_id = v_id;
          v_returned_total := v_returned_total + v_give;
          select * into v_card from public.time_cards c where c.id = v_card.id;
        end if;
      end if;
    end if;
  end loop;

  select coalesce(sum(r.amount_cents) filter (where r.status not in ('failed', 'canceled')), 0)::integer
    into v_counted from public.payment_refunds r where r.payment_id = v_payment.id;
  update public.payments p
     set refunded_cents = least(v_counted, p.amount_cents),
         status = case when p.status in ('pending', 'failed', 'canceled') then p.status
                       when exists (select 1 from public.payment_disputes d where d.payment_id = p.id and (d.frozen or d.status = 'lost')) then 'disputed'
                       when v_counted >= p.amount_cents and p.amount_cents > 0 then 'refunded'
                       when v_counted > 0 then 'partially_refunded'
                       else 'succeeded' end,
         stripe_charge_id = coalesce(p.stripe_charge_id, p_charge_id),
         updated_at = v_now
   where p.id = v_payment.id
  returning * into v_payment;
  if v_counted > v_payment.amount_cents then
    perform billing_private.note_attention(p_event_id, p_event_type, 'refunds_exceed_payment',
      pg_catalog.format('refunds of %s cents counted against a payment of %s cents', v_counted, v_payment.amount_cents),
      v_payment.id, p_charge_id, v_now);
  end if;
  return billing_private.finish_stripe_event(p_event_id, 'refunded', v_now)
    || pg_catalog.jsonb_build_object('payment_id', v_payment.id, 'refunded_cents', v_payment.refunded_cents,
         'revoked_seconds', v_revoked_total, 'returned_seconds', v_returned_total, 'attention', v_attention);
end
$$;

-- ---------- disputes ----------

-- A dispute follows Stripe's money: the card is frozen while Stripe has withdrawn the disputed funds
-- (charge.dispute.funds_withdrawn, or a chargeback's charge.dispute.created), given back when they are
-- reinstated or the dispute is won, and an inquiry that closes warning_closed never took them. A lost
-- dispute keeps the card frozen. Every event is folded into the dispute's state, so any order works.
drop function public.record_dispute(text, text, jsonb, text, text, text, text, timestamptz);
create function public.record_dispute(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_payment_intent_id text, p_charge_id text, p_dispute_id text, p_status text,
  p_inquiry boolean default false, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
  v_dispute public.payment_disputes;
  v_closed boolean;
  v_should_freeze boolean;
  v_key text;
  v_result jsonb := '{}'::jsonb;
  v_outcome text := 'dispute_recorded';
begin
  if p_dispute_id is null or p_dispute_id !~ '^(dp|du)_[A-Za-z0-9_]+$' then
    perform billing_private.fail('invalid_argument', 'a dispute id like dp_... is required');
  end if;
  if p_status is null or length(p_status) not between 1 and 40 then
    perform billing_private.fail('invalid_argument', 'a dispute status is required');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  v_payment := billing_private.payment_for_event(p_event_id, p_event_type, p_payment_intent_id, p_charge_id, p_dispute_id, v_now);
  if v_payment.id is null then
    return billing_private.attention_outcome(p_event_id, 'unknown_charge',
      pg_catalog.format('dispute %s of charge %s, which has no payment intent and no payment here', p_dispute_id, p_charge_id),
      null, v_now);
  end if;
  if v_payment.card_id is not null then
    perform billing_private.lock_card_for_change(v_payment.card_id);
  end if;
  select * into v_payment from public.payments p where p.id = v_payment.id for update;

  select * into v_dispute from public.payment_disputes d where d.dispute_id = p_dispute_id for update;
  if v_dispute.dispute_id is null then
    insert into public.payment_disputes (dispute_id, payment_id, status, created_at, updated_at)
    values (p_dispute_id, v_payment.id, p_status, v_now, v_now) returning * into v_dispute;
  end if;
  v_closed := v_dispute.status in ('won', 'lost', 'warning_closed');
  update public.payment_disputes d
     set status = case when v_closed then d.status else p_status end,
         funds_withdrawn = d.funds_withdrawn or p_event_type = 'charge.dispute.funds_withdrawn'
           or (p_event_type = 'charge.dispute.created' and not coalesce(p_inquiry, false)),
         funds_reinstated = d.funds_reinstated or p_event_type = 'charge.dispute.funds_reinstated',
         updated_at = v_now
   where d.dispute_id = p_dispute_id
  returning * into v_dispute;
  v_should_freeze := v_dispute.status = 'lost'
    or (v_dispute.funds_withdrawn and not v_dispute.funds_reinstated and v_dispute.status not in ('won', 'warning_closed'));

  v_key := 'dispute:' || p_dispute_id || case when v_dispute.freezes > 0 and not v_dispute.frozen
                                               then ':' || (v_dispute.freezes + 1)::text else '' end;
  if v_should_freeze and not v_dispute.frozen then
    if v_payment.card_id is not null then
      v_result := public.revoke_card_time(v_payment.card_id, null, 'revoke', v_key, 'frozen by a payment dispute', v_now);
    end if;
    update public.payment_disputes d set frozen = true, freezes = d.freezes + 1, updated_at = v_now
     where d.dispute_id = p_dispute_id;
    v_outcome := 'frozen';
  elsif not v_should_freeze and v_dispute.frozen then
    v_key := 'dispute:' || p_dispute_id || case when v_dispute.freezes > 1 then ':' || v_dispute.freezes::text else '' end;
    if v_payment.card_id is not null
       and exists (select 1 from billing_private.operations o where o.key = v_key) then
      v_result := public.restore_card_time(v_payment.card_id, v_key, v_now);
    end if;
    update public.payment_disputes d set frozen = false, updated_at = v_now where d.dispute_id = p_dispute_id;
    v_outcome := 'restored';
  end if;

  update public.payments p
     set status = case when p.status in ('pending', 'failed', 'canceled') then p.status
                       when exists (select 1 from public.payment_disputes d where d.payment_id = p.id and (d.frozen or d.status = 'lost')) then 'disputed'
                       when p.refunded_cents >= p.amount_cents and p.amount_cents > 0 then 'refunded'
                       when p.refunded_cents > 0 then 'partially_refunded'
                       else 'succeeded' end,
         stripe_charge_id = coalesce(p.stripe_charge_id, p_charge_id),
         updated_at = v_now
   where p.id = v_payment.id;
  return billing_private.finish_stripe_event(p_event_id, v_outcome, v_now)
    || pg_catalog.jsonb_build_object('payment_id', v_payment.id, 'card', v_result - 'replayed',
         'dispute_status', v_dispute.status);
end
$$;

-- ---------- attention ----------

-- An event the sidecar found unusable before any payment rule could look at it (no purchase metadata, an
-- object it cannot read): acknowledged once and kept for an administrator.
create function public.record_stripe_attention(
  p_event_id text, p_event_type text, p_payload jsonb, p_code text, p_message text, p_object_id text default null,
  p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  perform billing_private.note_attention(p_event_id, p_event_type, p_code, p_message, null, p_object_id, v_now);
  return billing_private.attention_outcome(p_event_id, p_code, p_message, null, v_now);
end
$$;

-- What needs an administrator, newest first, and how many in all (the metric).
create function public.list_stripe_attention(p_limit integer default 100)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  perform billing_private.require_limit(p_limit, 1000);
  return pg_catalog.jsonb_build_object(
    'total', (select count(*) from public.stripe_attention),
    'items', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'id', a.id, 'event_id', a.event_id, 'event_type', a.event_type, 'code', a.code, 'message', a.message,
        'payment_id', a.payment_id, 'user_id', p.user_id, 'object_id', a.object_id, 'created_at', a.created_at)
        order by a.created_at desc, a.id desc)
      from (select * from public.stripe_attention a order by a.created_at desc, a.id desc limit p_limit) a
      left join public.payments p on p.id = a.payment_id), '[]'::jsonb));
end
$$;

select billing_private.grant_to_service_only(
    'public.grant_time_card(uuid, text, uuid, text, timestamptz, uuid)',
    'public.record_payment_success(text, text, jsonb, uuid, text, boolean, integer, text, text, text, text, text, integer, integer, text, timestamptz)',
    'public.record_payment_failure(text, text, jsonb, uuid, text, boolean, integer, text, text, text, text, text, timestamptz)',
    'public.record_refunds(text, text, jsonb, text, text, jsonb, timestamptz)',
    'public.record_dispute(text, text, jsonb, text, text, text, text, boolean, timestamptz)',
    'public.record_stripe_attention(text, text, jsonb, text, text, text, timestamptz)',
    'public.list_stripe_attention(integer)',
    'public.get_pricing_tiers(boolean)'
);
grant execute on function public.get_pricing_tiers(boolean) to anon, authenticated;
revoke all on all functions in schema billing_private from public;

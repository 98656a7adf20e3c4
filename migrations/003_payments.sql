-- Money into time: what the Stripe sidecar records. Each webhook event is applied by ONE call of one of the
-- functions below, in one transaction: the event id is claimed first (a duplicate changes nothing), the
-- payment row, the card and the ledger follow, and the event is marked processed. A failure rolls all of it
-- back, the sidecar answers 500, and Stripe delivers the event again.
--
-- Stripe objects are read in TypeScript (validated with zod); these functions receive plain values.

create table public.stripe_customers (
  user_id     uuid primary key,
  customer_id text not null unique check (length(customer_id) between 1 and 255),
  created_at  timestamptz not null default now()
);
alter table public.stripe_customers enable row level security;  -- no policy: only the service sees it
revoke all on public.stripe_customers from public, anon, authenticated, service_role;
grant select on public.stripe_customers to service_role;

alter table public.notifications drop constraint notifications_kind_check;
alter table public.notifications add constraint notifications_kind_check
  check (kind in ('low_balance', 'card_expiring', 'balance_exhausted', 'purchase', 'payment_failed'));

create index payments_tier_created_idx on public.payments (created_at, tier_id);

-- Claims a Stripe event for processing. False when it was processed before (or is being processed by a
-- parallel delivery, which then wins: this insert waits for it and finds its row).
create function billing_private.claim_stripe_event(p_event_id text, p_type text, p_payload jsonb, p_now timestamptz)
  returns boolean language plpgsql
as $$
declare
  v_claimed text;
begin
  if p_event_id is null or p_event_id !~ '^evt_[A-Za-z0-9_]{1,250}$' then
    perform billing_private.fail('invalid_argument', 'a Stripe event id like evt_... is required');
  end if;
  insert into public.stripe_events (id, type, livemode, received_at, payload)
  values (p_event_id, p_type, coalesce((p_payload ->> 'livemode')::boolean, false), p_now, coalesce(p_payload, '{}'::jsonb))
  on conflict (id) do nothing
  returning id into v_claimed;
  return v_claimed is not null;
end
$$;

create function billing_private.finish_stripe_event(p_event_id text, p_outcome text, p_now timestamptz)
  returns jsonb language plpgsql
as $$
begin
  update public.stripe_events e set processed_at = p_now, outcome = p_outcome where e.id = p_event_id;
  return pg_catalog.jsonb_build_object('event_id', p_event_id, 'outcome', p_outcome);
end
$$;

create function billing_private.duplicate_event(p_event_id text) returns jsonb
  language plpgsql stable
as $$
begin
  return pg_catalog.jsonb_build_object('event_id', p_event_id, 'outcome', 'duplicate_event',
    'first_outcome', (select e.outcome from public.stripe_events e where e.id = p_event_id));
end
$$;

-- Events of one purchase (checkout completed, payment intent succeeded or failed…) may race each other:
-- they queue on the purchase, keyed by the payment intent (or the checkout session before there is one).
create function billing_private.lock_purchase(p_checkout_session_id text, p_payment_intent_id text) returns void
  language plpgsql
as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
    'mindbot.purchase:' || coalesce(p_payment_intent_id, p_checkout_session_id), 0));
end
$$;

-- The payment a Stripe object belongs to, by any of its ids; row-locked.
create function billing_private.find_payment(p_checkout_session_id text, p_payment_intent_id text, p_charge_id text)
  returns public.payments language plpgsql
as $$
declare
  v_payment public.payments;
begin
  -- One lookup per id, each on its unique index (an OR of them would scan the table).
  if p_payment_intent_id is not null then
    select * into v_payment from public.payments p where p.stripe_payment_intent_id = p_payment_intent_id for update;
  end if;
  if v_payment.id is null and p_checkout_session_id is not null then
    select * into v_payment from public.payments p where p.stripe_checkout_session_id = p_checkout_session_id for update;
  end if;
  if v_payment.id is null and p_charge_id is not null then
    select * into v_payment from public.payments p where p.stripe_charge_id = p_charge_id for update;
  end if;
  return v_payment;
end
$$;

-- The payment a refund or dispute is about. Raising rolls the event's claim back with it: once the purchase
-- is known, Stripe's retry (or the sidecar's look-up at Stripe) applies the event.
create function billing_private.require_payment(p_payment_intent_id text, p_charge_id text)
  returns public.payments language plpgsql
as $$
declare
  v_payment public.payments := billing_private.find_payment(null, p_payment_intent_id, p_charge_id);
begin
  if v_payment.id is null then
    perform billing_private.fail('unknown_payment',
      pg_catalog.format('no payment for payment intent %s / charge %s', p_payment_intent_id, p_charge_id));
  end if;
  return v_payment;
end
$$;

-- A paid purchase: records the payment and grants its card, once per payment however many events say so
-- (checkout.session.completed, checkout.session.async_payment_succeeded, payment_intent.succeeded).
create function public.record_payment_success(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_user_id uuid, p_tier_id text, p_gift boolean, p_amount_cents integer, p_currency text,
  p_checkout_session_id text default null, p_payment_intent_id text default null, p_charge_id text default null,
  p_customer_id text default null, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
  v_card jsonb;
  v_outcome text;
begin
  perform billing_private.require_user(p_user_id);
  if p_checkout_session_id is null and p_payment_intent_id is null then
    perform billing_private.fail('invalid_argument', 'a checkout session or payment intent id is required');
  end if;
  if p_amount_cents is null or p_amount_cents < 0 then
    perform billing_private.fail('invalid_argument', 'the amount must be a non-negative number of cents');
  end if;
  if not exists (select 1 from public.pricing_tiers t where t.id = p_tier_id) then
    perform billing_private.fail('unknown_tier', pg_catalog.format('no pricing tier %L', p_tier_id));
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  perform billing_private.lock_purchase(p_checkout_session_id, p_payment_intent_id);
  v_payment := billing_private.find_payment(p_checkout_session_id, p_payment_intent_id, p_charge_id);
  if v_payment.id is null then
    insert into public.payments (user_id, tier_id, gift, amount_cents, currency, status, stripe_checkout_session_id,
      stripe_payment_intent_id, stripe_charge_id, stripe_customer_id, created_at, updated_at)
    values (p_user_id, p_tier_id, coalesce(p_gift, false), p_amount_cents, lower(coalesce(p_currency, 'usd')), 'succeeded',
      p_checkout_session_id, p_payment_intent_id, p_charge_id, p_customer_id, v_now, v_now)
    returning * into v_payment;
    v_outcome := 'granted';
  else
    if v_payment.user_id is distinct from p_user_id or v_payment.tier_id is distinct from p_tier_id then
      perform billing_private.fail('idempotency_conflict',
        pg_catalog.format('payment %s belongs to another user or package', v_payment.id));
    end if;
    update public.payments p
       set stripe_checkout_session_id = coalesce(p.stripe_checkout_session_id, p_checkout_session_id),
           stripe_payment_intent_id = coalesce(p.stripe_payment_intent_id, p_payment_intent_id),
           stripe_charge_id = coalesce(p.stripe_charge_id, p_charge_id),
           stripe_customer_id = coalesce(p.stripe_customer_id, p_customer_id),
           status = case when p.status in ('pending', 'failed', 'canceled') then 'succeeded' else p.status end,
           failure_reason = null,
           updated_at = v_now
     where p.id = v_payment.id
    returning * into v_payment;
    v_outcome := case when v_payment.card_id is null then 'granted' else 'already_granted' end;
  end if;

  v_card := public.grant_time_card(case when v_payment.gift then null else v_payment.user_id end, v_payment.tier_id,
    v_payment.id, 'payment:' || v_payment.id::text, v_now, v_payment.user_id);
  if v_outcome = 'granted' then
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

-- A failed or abandoned payment: recorded (never over a success) and the buyer is told.
create function public.record_payment_failure(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_user_id uuid, p_tier_id text, p_gift boolean, p_amount_cents integer, p_currency text,
  p_checkout_session_id text default null, p_payment_intent_id text default null, p_reason text default null,
  p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
begin
  if p_checkout_session_id is null and p_payment_intent_id is null then
    perform billing_private.fail('invalid_argument', 'a checkout session or payment intent id is required');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  perform billing_private.lock_purchase(p_checkout_session_id, p_payment_intent_id);
  v_payment := billing_private.find_payment(p_checkout_session_id, p_payment_intent_id, null);
  if v_payment.id is null then
    insert into public.payments (user_id, tier_id, gift, amount_cents, currency, status, failure_reason,
      stripe_checkout_session_id, stripe_payment_intent_id, created_at, updated_at)
    values (p_user_id, case when exists (select 1 from public.pricing_tiers t where t.id = p_tier_id) then p_tier_id end,
      coalesce(p_gift, false), greatest(coalesce(p_amount_cents, 0), 0), lower(coalesce(p_currency, 'usd')), 'failed',
      left(p_reason, 500), p_checkout_session_id, p_payment_intent_id, v_now, v_now)
    returning * into v_payment;
  elsif v_payment.status in ('pending', 'failed', 'canceled') then
    update public.payments p set status = 'failed', failure_reason = left(p_reason, 500), updated_at = v_now
     where p.id = v_payment.id returning * into v_payment;
  else
    -- A late failure of an attempt that later succeeded (or was refunded) changes nothing.
    return billing_private.finish_stripe_event(p_event_id, 'ignored_after_success', v_now)
      || pg_catalog.jsonb_build_object('payment_id', v_payment.id);
  end if;
  if v_payment.user_id is not null then
    insert into public.notifications (user_id, kind, payload, dedupe_key, created_at, available_at)
    values (v_payment.user_id, 'payment_failed', pg_catalog.jsonb_build_object('payment_id', v_payment.id,
        'tier_id', v_payment.tier_id, 'reason', v_payment.failure_reason), 'payment_failed:' || p_event_id, v_now, v_now)
    on conflict (dedupe_key) do nothing;
  end if;
  return billing_private.finish_stripe_event(p_event_id, 'recorded_failure', v_now)
    || pg_catalog.jsonb_build_object('payment_id', v_payment.id);
end
$$;

-- charge.refunded: Stripe reports the charge's cumulative refunded amount. The card gives back the seconds
-- that money paid for, as far as they are unused: floor(total * refunded / amount), never below zero.
-- Cumulative, so a repeated or out-of-order refund event never takes twice.
create function public.record_refund(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_payment_intent_id text, p_charge_id text, p_amount_refunded_cents integer, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
  v_card public.time_cards;
  v_target integer;
  v_taken integer;
  v_revoked jsonb;
begin
  if p_amount_refunded_cents is null or p_amount_refunded_cents < 0 then
    perform billing_private.fail('invalid_argument', 'the refunded amount must be a non-negative number of cents');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  v_payment := billing_private.require_payment(p_payment_intent_id, p_charge_id);
  update public.payments p
     set refunded_cents = least(p.amount_cents, greatest(p.refunded_cents, p_amount_refunded_cents)),
         status = case when greatest(p.refunded_cents, p_amount_refunded_cents) >= p.amount_cents then 'refunded'
                       when p.status = 'disputed' then p.status else 'partially_refunded' end,
         stripe_charge_id = coalesce(p.stripe_charge_id, p_charge_id),
         updated_at = v_now
   where p.id = v_payment.id
  returning * into v_payment;
  v_revoked := '{"revoked_seconds": 0}'::jsonb;
  if v_payment.card_id is not null then
    select * into v_card from public.time_cards c where c.id = v_payment.card_id;
    v_target := case when v_payment.amount_cents = 0 then v_card.total_seconds
                     else (v_card.total_seconds::bigint * v_payment.refunded_cents / v_payment.amount_cents)::integer end;
    select coalesce(-sum(l.seconds), 0)::integer into v_taken
      from public.ledger_entries l where l.card_id = v_card.id and l.kind = 'refund';
    if v_target > v_taken then
      v_revoked := public.revoke_card_time(v_card.id, v_target - v_taken, 'refund',
        'refund:' || v_payment.id::text || ':' || v_payment.refunded_cents::text, 'refunded through Stripe', v_now);
    end if;
  end if;
  return billing_private.finish_stripe_event(p_event_id, 'refunded', v_now)
    || pg_catalog.jsonb_build_object('payment_id', v_payment.id, 'refunded_cents', v_payment.refunded_cents,
         'revoked_seconds', (v_revoked ->> 'revoked_seconds')::integer);
end
$$;

-- charge.dispute.created freezes what is left on the card; charge.dispute.closed gives it back when the
-- dispute was won (and leaves it frozen when lost).
create function public.record_dispute(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_payment_intent_id text, p_charge_id text, p_dispute_id text, p_status text, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
  v_result jsonb := '{}'::jsonb;
  v_outcome text;
begin
  if p_dispute_id is null or p_dispute_id !~ '^(dp|du)_[A-Za-z0-9_]+$' then
    perform billing_private.fail('invalid_argument', 'a dispute id like dp_... is required');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  v_payment := billing_private.require_payment(p_payment_intent_id, p_charge_id);
  if p_event_type = 'charge.dispute.created' then
    update public.payments p set status = 'disputed', updated_at = v_now where p.id = v_payment.id;
    if v_payment.card_id is not null then
      v_result := public.revoke_card_time(v_payment.card_id, null, 'revoke', 'dispute:' || p_dispute_id,
        'frozen by a payment dispute', v_now);
    end if;
    v_outcome := 'frozen';
  elsif p_status = 'won' then
    update public.payments p
       set status = case when p.refunded_cents >= p.amount_cents then 'refunded'
                         when p.refunded_cents > 0 then 'partially_refunded' else 'succeeded' end,
           updated_at = v_now
     where p.id = v_payment.id;
    if v_payment.card_id is not null
       and exists (select 1 from billing_private.operations o where o.key = 'dispute:' || p_dispute_id) then
      v_result := public.restore_card_time(v_payment.card_id, 'dispute:' || p_dispute_id, v_now);
    end if;
    v_outcome := 'restored';
  else
    v_outcome := 'dispute_' || coalesce(p_status, 'closed');
  end if;
  return billing_private.finish_stripe_event(p_event_id, v_outcome, v_now)
    || pg_catalog.jsonb_build_object('payment_id', v_payment.id, 'card', v_result);
end
$$;

-- Any other event: acknowledged once, and kept for the record.
create function public.record_ignored_stripe_event(p_event_id text, p_event_type text, p_payload jsonb,
  p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  return billing_private.finish_stripe_event(p_event_id, 'ignored', v_now);
end
$$;

-- The user's Stripe customer, created once at Stripe and remembered; the first one stored wins.
create function public.remember_stripe_customer(p_user_id uuid, p_customer_id text)
  returns text language plpgsql security definer set search_path = ''
as $$
begin
  perform billing_private.require_user(p_user_id);
  insert into public.stripe_customers (user_id, customer_id) values (p_user_id, p_customer_id)
  on conflict (user_id) do nothing;
  return (select c.customer_id from public.stripe_customers c where c.user_id = p_user_id);
end
$$;

create function public.get_stripe_customer(p_user_id uuid)
  returns text language plpgsql stable security definer set search_path = ''
as $$
begin
  return (select c.customer_id from public.stripe_customers c where c.user_id = p_user_id);
end
$$;

-- One payment with what a refund needs: the Stripe ids and what is left to refund.
create function public.get_payment(p_payment_id uuid)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_payment public.payments;
begin
  select * into v_payment from public.payments p where p.id = p_payment_id;
  if not found then
    perform billing_private.fail('unknown_payment', pg_catalog.format('no payment %s', p_payment_id));
  end if;
  return pg_catalog.to_jsonb(v_payment) || pg_catalog.jsonb_build_object(
    'payment_id', v_payment.id, 'refundable_cents', greatest(v_payment.amount_cents - v_payment.refunded_cents, 0));
end
$$;

select billing_private.grant_to_service_only(
    'public.get_payment(uuid)',
    'public.record_payment_success(text, text, jsonb, uuid, text, boolean, integer, text, text, text, text, text, timestamptz)',
    'public.record_payment_failure(text, text, jsonb, uuid, text, boolean, integer, text, text, text, text, timestamptz)',
    'public.record_refund(text, text, jsonb, text, text, integer, timestamptz)',
    'public.record_dispute(text, text, jsonb, text, text, text, text, timestamptz)',
    'public.record_ignored_stripe_event(text, text, jsonb, timestamptz)',
    'public.remember_stripe_customer(uuid, text)',
    'public.get_stripe_customer(uuid)'
);
revoke all on all functions in schema billing_private from public;

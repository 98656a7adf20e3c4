-- Postpaid plans in Stripe: the catalogue sync's write-back, Checkout in subscription mode, plan changes, and
-- the webhook events of subscriptions and invoices. As in 003/009, each Stripe event is applied by ONE call of
-- one function below, in one transaction: the event id is claimed first (a duplicate changes nothing); an
-- event that can never apply (an unknown customer, subscription or price) is kept in stripe_attention.
--
-- Stripe delivers events in no guaranteed order: a subscription's state is taken only from an event created
-- no earlier than the last one applied (Stripe's `created`, kept in stripe_state_at), and an invoice's status
-- only moves forward (draft → open → uncollectible → paid | void).

alter table public.user_plans add column stripe_state_at timestamptz;
alter table public.stripe_invoices add column stripe_event_at timestamptz;
-- A downgrade is due from this instant (the end of the period it was asked in).
alter table public.user_plans add column scheduled_from timestamptz;

-- Each change of a user plan's plan within a known period, as 018's period_fee reads them (here, where the
-- time Stripe made the change, stripe_state_at, exists).
create function billing_private.note_plan_change() returns trigger
  language plpgsql
as $$
begin
  if old.current_period_start is not null and new.plan_id is distinct from old.plan_id then
    insert into public.user_plan_changes (user_plan_id, from_plan_id, to_plan_id, changed_at)
    values (new.id, old.plan_id, new.plan_id, coalesce(new.stripe_state_at, new.updated_at));
  end if;
  return null;
end
$$;
create trigger user_plans_note_plan_change after update of plan_id on public.user_plans
  for each row execute function billing_private.note_plan_change();

-- ---------- the catalogue ----------

-- Every plan with its tiers and Stripe ids, for `./launch.sh stripe-sync` (which also deactivates the prices of
-- retired versions).
create function public.get_plans_for_stripe_sync()
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  return coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
      'id', p.id, 'key', p.key, 'version', p.version, 'kind', p.kind, 'name', p.name, 'description', p.description,
      'currency', p.currency, 'monthly_fee_cents', p.monthly_fee_cents, 'included_seconds', p.included_seconds,
      'status', p.status, 'stripe_product_id', p.stripe_product_id, 'stripe_fee_price_id', p.stripe_fee_price_id,
      'stripe_usage_price_id', p.stripe_usage_price_id,
      'tiers', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
          'position', t.position, 'up_to_seconds', t.up_to_seconds,
          -- As text: the exact decimal Stripe is given, never through a float.
          'cents_per_second', t.cents_per_second::text) order by t.position)
        from public.plan_rate_tiers t where t.plan_id = p.id), '[]'::jsonb))
    order by p.sort_order, p.key, p.version)
    from public.plans p where p.kind <> 'prepaid'), '[]'::jsonb);
end
$$;

-- What a plan is in Stripe, written back by the sync. Prices are immutable in Stripe and a plan version is
-- immutable here: once set, a price id is never replaced by another (that would be a different catalogue).
create function public.record_plan_stripe_ids(
  p_plan_id uuid, p_product_id text, p_fee_price_id text, p_usage_price_id text
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_plan public.plans;
  v_changed boolean;
begin
  select * into v_plan from public.plans p where p.id = p_plan_id for update;
  if not found then
    perform billing_private.fail('unknown_plan', pg_catalog.format('no plan %s', p_plan_id));
  end if;
  if v_plan.kind = 'prepaid' then
    perform billing_private.fail('invalid_argument', 'prepaid plans are sold as cards, not as Stripe subscriptions');
  end if;
  if p_product_id is null or p_usage_price_id is null or (v_plan.kind = 'subscription') <> (p_fee_price_id is not null) then
    perform billing_private.fail('invalid_argument',
      'a product and a usage price are required, and a fee price exactly for subscription plans');
  end if;
  if (v_plan.stripe_usage_price_id is not null and v_plan.stripe_usage_price_id <> p_usage_price_id)
     or (v_plan.stripe_fee_price_id is not null and v_plan.stripe_fee_price_id <> p_fee_price_id) then
    perform billing_private.fail('idempotency_conflict',
      pg_catalog.format('plan %s v%s already has other Stripe prices', v_plan.key, v_plan.version));
  end if;
  v_changed := v_plan.stripe_product_id is distinct from p_product_id
    or v_plan.stripe_usage_price_id is distinct from p_usage_price_id
    or v_plan.stripe_fee_price_id is distinct from p_fee_price_id;
  if v_changed then
    update public.plans p set stripe_product_id = p_product_id, stripe_usage_price_id = p_usage_price_id,
           stripe_fee_price_id = p_fee_price_id
     where p.id = p_plan_id;
  end if;
  return pg_catalog.jsonb_build_object('plan_id', p_plan_id, 'changed', v_changed);
end
$$;

-- ---------- a user's plan ----------

create function billing_private.user_plan_view(p_user_plan public.user_plans) returns jsonb
  language plpgsql stable
as $$
declare
  v_plan public.plans;
  v_scheduled public.plans;
begin
  if p_user_plan.id is null then
    return null;
  end if;
  select * into v_plan from public.plans p where p.id = p_user_plan.plan_id;
  select * into v_scheduled from public.plans p where p.id = p_user_plan.scheduled_plan_id;
  return pg_catalog.to_jsonb(p_user_plan) - 'stripe_state_at' - 'scheduled_from' || pg_catalog.jsonb_build_object(
    'plan', pg_catalog.jsonb_build_object('id', v_plan.id, 'key', v_plan.key, 'version', v_plan.version,
      'kind', v_plan.kind, 'name', v_plan.name, 'sort_order', v_plan.sort_order,
      'stripe_fee_price_id', v_plan.stripe_fee_price_id, 'stripe_usage_price_id', v_plan.stripe_usage_price_id),
    'scheduled_plan_key', v_scheduled.key);
end
$$;

-- The user's current plan (the row that is not ended), or null: the user is prepaid.
create function public.get_user_plan(p_user_id uuid)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_row public.user_plans;
begin
  perform billing_private.require_user(p_user_id);
  select * into v_row from public.user_plans u where u.user_id = p_user_id and u.status <> 'ended';
  return billing_private.user_plan_view(v_row);
end
$$;

-- The offered, synced postpaid version of a plan key.
create function billing_private.offered_plan(p_plan_key text) returns public.plans
  language plpgsql stable
as $$
declare
  v_plan public.plans;
begin
  select * into v_plan from public.plans p where p.key = p_plan_key and p.status = 'active';
  if not found or v_plan.kind = 'prepaid' then
    perform billing_private.fail('unknown_plan', pg_catalog.format('no postpaid plan %L is offered', p_plan_key));
  end if;
  if v_plan.stripe_usage_price_id is null then
    perform billing_private.fail('unknown_plan',
      pg_catalog.format('plan %L is not in Stripe yet (run ./launch.sh stripe-sync)', p_plan_key));
  end if;
  return v_plan;
end
$$;

-- A Checkout Session for a plan was created: the user's plan is pending until Stripe confirms the subscription.
-- A user already on a plan moves through a change instead. The pending row of an abandoned Checkout is replaced;
-- the same session again answers the same row.
create function public.start_plan_checkout(p_user_id uuid, p_plan_key text, p_checkout_session_id text,
  p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_plan public.plans;
  v_row public.user_plans;
begin
  perform billing_private.require_user(p_user_id);
  if p_checkout_session_id is null or p_checkout_session_id !~ '^cs_[A-Za-z0-9_]{1,250}$' then
    perform billing_private.fail('invalid_argument', 'a Checkout Session id like cs_... is required');
  end if;
  v_plan := billing_private.offered_plan(p_plan_key);
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mindbot.user_plan:' || p_user_id::text, 0));
  select * into v_row from public.user_plans u where u.user_id = p_user_id and u.status <> 'ended' for update;
  if v_row.id is not null and v_row.stripe_checkout_session_id = p_checkout_session_id then
    return billing_private.user_plan_view(v_row);
  end if;
  if v_row.id is not null and (v_row.status <> 'pending' or v_row.stripe_subscription_id is not null) then
    perform billing_private.fail('plan_conflict',
      'you already have a plan; change it (POST /api/plans/:key/change) or cancel it instead');
  end if;
  if v_row.id is not null then
    -- Never confirmed by Stripe, so it had no period (an ended row needs one): it goes. Should that Checkout
    -- complete after all, its subscription is found by user and linked, and the newer one is kept for attention.
    delete from public.user_plans u where u.id = v_row.id;
  end if;
  insert into public.user_plans (user_id, plan_id, status, stripe_checkout_session_id, spending_cap_cents,
    created_at, updated_at)
  values (p_user_id, v_plan.id, 'pending', p_checkout_session_id, v_plan.default_cap_cents, v_now, v_now)
  returning * into v_row;
  return billing_private.user_plan_view(v_row);
end
$$;

-- A move to another plan: an upgrade (a plan listed after the current one) is made at once by the caller at
-- Stripe, and recorded when Stripe's customer.subscription.updated names the new prices; a downgrade waits for
-- the period's end (scheduled_plan_id). Answers the direction and both plans' Stripe prices.
create function public.request_plan_change(p_user_id uuid, p_plan_key text, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_to public.plans;
  v_from public.plans;
  v_row public.user_plans;
  v_direction text;
begin
  perform billing_private.require_user(p_user_id);
  v_to := billing_private.offered_plan(p_plan_key);
  select * into v_row from public.user_plans u where u.user_id = p_user_id and u.status <> 'ended' for update;
  if v_row.id is null or v_row.stripe_subscription_id is null then
    perform billing_private.fail('plan_conflict', 'you have no subscription to change; subscribe to a plan first');
  end if;
  if v_row.status = 'suspended' then
    perform billing_private.fail('plan_conflict', 'pay the open invoice before changing your plan');
  end if;
  select * into v_from from public.plans p where p.id = v_row.plan_id;
  if v_from.id = v_to.id then
    perform billing_private.fail('plan_conflict', pg_catalog.format('you are on plan %L already', p_plan_key));
  end if;
  v_direction := case when (v_to.sort_order, v_to.monthly_fee_cents) > (v_from.sort_order, v_from.monthly_fee_cents)
                      then 'upgrade' else 'downgrade' end;
  update public.user_plans u
     set scheduled_plan_id = case when v_direction = 'downgrade' then v_to.id end,
         scheduled_from = case when v_direction = 'downgrade' then u.current_period_end end,
         updated_at = v_now
   where u.id = v_row.id
  returning * into v_row;
  return pg_catalog.jsonb_build_object('direction', v_direction, 'user_plan', billing_private.user_plan_view(v_row),
    'from', pg_catalog.jsonb_build_object('id', v_from.id, 'key', v_from.key,
      'stripe_fee_price_id', v_from.stripe_fee_price_id, 'stripe_usage_price_id', v_from.stripe_usage_price_id),
    'to', pg_catalog.jsonb_build_object('id', v_to.id, 'key', v_to.key,
      'stripe_fee_price_id', v_to.stripe_fee_price_id, 'stripe_usage_price_id', v_to.stripe_usage_price_id));
end
$$;

-- The downgrade due on a subscription whose Stripe period now starts at p_period_start: the plan's prices once
-- the period it was asked in has ended, else null. Asked again until Stripe's update names the new plan (which
-- clears it), so a failed attempt is retried with the next event.
create function public.get_due_plan_change(p_subscription_id text, p_period_start timestamptz)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_row public.user_plans;
  v_to public.plans;
begin
  select * into v_row from public.user_plans u where u.stripe_subscription_id = p_subscription_id;
  if v_row.id is null or v_row.status = 'ended' or v_row.scheduled_plan_id is null
     or p_period_start is null or p_period_start < v_row.scheduled_from then
    return null;
  end if;
  select * into v_to from public.plans p where p.id = v_row.scheduled_plan_id;
  return pg_catalog.jsonb_build_object('user_plan_id', v_row.id, 'scheduled_from', v_row.scheduled_from,
    'to', pg_catalog.jsonb_build_object('id', v_to.id, 'key', v_to.key,
      'stripe_fee_price_id', v_to.stripe_fee_price_id, 'stripe_usage_price_id', v_to.stripe_usage_price_id));
end
$$;

-- ---------- webhook events ----------

-- checkout.session.completed (mode subscription) and customer.subscription.created/updated/deleted.
-- p_price_ids: the subscription items' prices (a jsonb array) (null for a Checkout Session), mapped back to a plan version.
create function public.record_subscription_event(
  p_event_id text, p_event_type text, p_payload jsonb, p_event_created timestamptz,
  p_user_id uuid, p_subscription_id text, p_checkout_session_id text default null,
  p_status text default null, p_price_ids jsonb default null,
  p_period_start timestamptz default null, p_period_end timestamptz default null,
  p_cancel_at_period_end boolean default null, p_ended_at timestamptz default null,
  p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_row public.user_plans;
  v_plan_id uuid;
  v_status text;
  v_message text;
begin
  if p_subscription_id is null or p_subscription_id !~ '^sub_[A-Za-z0-9_]+$' then
    perform billing_private.fail('invalid_argument', 'a subscription id like sub_... is required');
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  if p_user_id is not null then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mindbot.user_plan:' || p_user_id::text, 0));
  end if;
  select * into v_row from public.user_plans u where u.stripe_subscription_id = p_subscription_id for update;
  if v_row.id is null and p_checkout_session_id is not null then
    select * into v_row from public.user_plans u where u.stripe_checkout_session_id = p_checkout_session_id for update;
  end if;
  if v_row.id is null and p_user_id is not null then
    -- customer.subscription.created comes before checkout.session.completed: the user's pending Checkout.
    select * into v_row from public.user_plans u
     where u.user_id = p_user_id and u.status = 'pending' and u.stripe_subscription_id is null for update;
  end if;
  if v_row.id is null then
    v_message := pg_catalog.format('subscription %s is not a MindBot plan of a known user', p_subscription_id);
    perform billing_private.note_attention(p_event_id, p_event_type, 'unknown_subscription', v_message, null, p_subscription_id, v_now);
    return billing_private.attention_outcome(p_event_id, 'unknown_subscription', v_message, null, v_now);
  end if;
  if (p_user_id is not null and p_user_id <> v_row.user_id)
     or (v_row.stripe_subscription_id is not null and v_row.stripe_subscription_id <> p_subscription_id) then
    v_message := pg_catalog.format('subscription %s does not match the user plan %s', p_subscription_id, v_row.id);
    perform billing_private.note_attention(p_event_id, p_event_type, 'subscription_mismatch', v_message, null, p_subscription_id, v_now);
    return billing_private.attention_outcome(p_event_id, 'subscription_mismatch', v_message, null, v_now);
  end if;
  if p_price_ids is not null then
    select p.id into v_plan_id from public.plans p where p.stripe_usage_price_id in (select pg_catalog.jsonb_array_elements_text(p_price_ids)) limit 1;
    if v_plan_id is null then
      v_message := pg_catalog.format('subscription %s has no price of a known plan (%s)', p_subscription_id,
        p_price_ids::text);
      perform billing_private.note_attention(p_event_id, p_event_type, 'unknown_plan', v_message, null, p_subscription_id, v_now);
      return billing_private.attention_outcome(p_event_id, 'unknown_plan', v_message, null, v_now);
    end if;
  end if;

  -- The ids link whatever the order.
  update public.user_plans u
     set stripe_subscription_id = p_subscription_id,
         stripe_checkout_session_id = coalesce(u.stripe_checkout_session_id, p_checkout_session_id),
         updated_at = v_now
   where u.id = v_row.id
  returning * into v_row;

  if p_status is null then
    return billing_private.finish_stripe_event(p_event_id, 'linked', v_now)
      || pg_catalog.jsonb_build_object('user_plan', billing_private.user_plan_view(v_row));
  end if;
  if v_row.status = 'ended' or (v_row.stripe_state_at is not null and p_event_created < v_row.stripe_state_at) then
    return billing_private.finish_stripe_event(p_event_id, 'stale_event', v_now)
      || pg_catalog.jsonb_build_object('user_plan', billing_private.user_plan_view(v_row));
  end if;

  v_status := case
    when p_status in ('canceled', 'incomplete_expired') then 'ended'
    when p_status in ('active', 'trialing', 'past_due', 'unpaid') then
      -- Suspension follows the invoices (payment_failed / paid), not the subscription's dunning status.
      case when v_row.status = 'suspended' then 'suspended' else 'active' end
    else v_row.status end;
  if v_status <> 'pending' and (p_period_start is null or p_period_end is null or p_period_end <= p_period_start)
     and v_row.current_period_start is null then
    perform billing_private.fail('invalid_argument', 'an active subscription needs its current period');
  end if;
  update public.user_plans u
     set status = v_status,
         plan_id = coalesce(v_plan_id, u.plan_id),
         scheduled_plan_id = case when coalesce(v_plan_id, u.plan_id) = u.scheduled_plan_id or v_status = 'ended'
                                  then null else u.scheduled_plan_id end,
         scheduled_from = case when coalesce(v_plan_id, u.plan_id) = u.scheduled_plan_id or v_status = 'ended'
                               then null else u.scheduled_from end,
         current_period_start = case when p_period_end > p_period_start then p_period_start else u.current_period_start end,
         current_period_end = case when p_period_end > p_period_start then p_period_end else u.current_period_end end,
         cancel_at_period_end = coalesce(p_cancel_at_period_end, u.cancel_at_period_end),
         ended_at = case when v_status = 'ended' then coalesce(p_ended_at, p_event_created, v_now) end,
         suspended_reason = case when v_status = 'suspended' then u.suspended_reason end,
         suspended_invoice_id = case when v_status = 'suspended' then u.suspended_invoice_id end,
         suspended_invoice_url = case when v_status = 'suspended' then u.suspended_invoice_url end,
         stripe_state_at = p_event_created,
         updated_at = v_now
   where u.id = v_row.id
  returning * into v_row;
  return billing_private.finish_stripe_event(p_event_id, case v_status when 'ended' then 'plan_ended' else 'plan_updated' end, v_now)
    || pg_catalog.jsonb_build_object('user_plan', billing_private.user_plan_view(v_row));
end
$$;

create function billing_private.invoice_rank(p_status text) returns integer
  language sql immutable
as $$
  select case p_status when 'draft' then 0 when 'open' then 1 when 'uncollectible' then 2 else 3 end
$$;

-- invoice.created/finalized/paid/payment_failed/voided/marked_uncollectible: the invoice as Stripe says it,
-- never moved back; a failed payment of an invoice not (yet) paid suspends the user's plan with the reason and
-- the link where it is paid; its payment (or voiding) lifts that suspension.
create function public.record_invoice_event(
  p_event_id text, p_event_type text, p_payload jsonb, p_event_created timestamptz,
  p_invoice_id text, p_customer_id text, p_subscription_id text, p_status text, p_currency text,
  p_total_cents integer, p_amount_due_cents integer, p_amount_paid_cents integer, p_hosted_invoice_url text,
  p_period_start timestamptz, p_period_end timestamptz, p_created timestamptz, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_user_id uuid;
  v_row public.user_plans;
  v_invoice public.stripe_invoices;
  v_message text;
  v_outcome text := 'invoice_recorded';
begin
  if p_invoice_id is null or p_invoice_id !~ '^in_[A-Za-z0-9_]+$' then
    perform billing_private.fail('invalid_argument', 'an invoice id like in_... is required');
  end if;
  if p_status is null or p_status not in ('draft', 'open', 'paid', 'uncollectible', 'void') then
    perform billing_private.fail('invalid_argument', pg_catalog.format('unknown invoice status %L', p_status));
  end if;
  if not billing_private.claim_stripe_event(p_event_id, p_event_type, p_payload, v_now) then
    return billing_private.duplicate_event(p_event_id);
  end if;
  if p_subscription_id is not null then
    select * into v_row from public.user_plans u where u.stripe_subscription_id = p_subscription_id for update;
  end if;
  v_user_id := coalesce(v_row.user_id, (select c.user_id from public.stripe_customers c where c.customer_id = p_customer_id));
  if v_user_id is null then
    v_message := pg_catalog.format('invoice %s is for customer %s, who is no MindBot user', p_invoice_id, p_customer_id);
    perform billing_private.note_attention(p_event_id, p_event_type, 'unknown_customer', v_message, null, p_invoice_id, v_now);
    return billing_private.attention_outcome(p_event_id, 'unknown_customer', v_message, null, v_now);
  end if;

  insert into public.stripe_invoices as i (invoice_id, user_id, user_plan_id, stripe_subscription_id, status,
    payment_failed, currency, total_cents, amount_due_cents, amount_paid_cents, hosted_invoice_url, period_start,
    period_end, created_at, updated_at, stripe_event_at)
  values (p_invoice_id, v_user_id, v_row.id, p_subscription_id, p_status, p_event_type = 'invoice.payment_failed',
    lower(p_currency), p_total_cents, p_amount_due_cents, coalesce(p_amount_paid_cents, 0), p_hosted_invoice_url,
    p_period_start, p_period_end, coalesce(p_created, v_now), v_now, p_event_created)
  on conflict (invoice_id) do update
     set payment_failed = i.payment_failed or excluded.payment_failed,
         user_plan_id = coalesce(i.user_plan_id, excluded.user_plan_id),
         -- Forward only: a later status, or the same status told by a newer event.
         status = case when billing_private.invoice_rank(excluded.status) > billing_private.invoice_rank(i.status)
                       then excluded.status else i.status end,
         total_cents = case when billing_private.invoice_rank(excluded.status) > billing_private.invoice_rank(i.status)
                              or excluded.stripe_event_at >= i.stripe_event_at then excluded.total_cents else i.total_cents end,
         amount_due_cents = case when billing_private.invoice_rank(excluded.status) > billing_private.invoice_rank(i.status)
                              or excluded.stripe_event_at >= i.stripe_event_at then excluded.amount_due_cents else i.amount_due_cents end,
         amount_paid_cents = greatest(i.amount_paid_cents, excluded.amount_paid_cents),
         hosted_invoice_url = coalesce(excluded.hosted_invoice_url, i.hosted_invoice_url),
         stripe_event_at = greatest(i.stripe_event_at, excluded.stripe_event_at),
         updated_at = v_now
  returning * into v_invoice;

  if v_row.id is not null and p_event_type = 'invoice.payment_failed' and v_invoice.status in ('draft', 'open')
     and v_row.status = 'active' then
    update public.user_plans u
       set status = 'suspended',
           suspended_reason = pg_catalog.format('the payment of invoice %s (%s %s) failed; pay it to keep calling on your plan',
             p_invoice_id, pg_catalog.to_char(p_amount_due_cents / 100.0, 'FM999999990.00'), upper(p_currency)),
           suspended_invoice_id = p_invoice_id,
           suspended_invoice_url = p_hosted_invoice_url,
           updated_at = v_now
     where u.id = v_row.id;
    v_outcome := 'plan_suspended';
  elsif v_row.id is not null and v_row.status = 'suspended' and v_row.suspended_invoice_id = p_invoice_id
        and v_invoice.status in ('paid', 'void') then
    update public.user_plans u
       set status = 'active', suspended_reason = null, suspended_invoice_id = null, suspended_invoice_url = null,
           updated_at = v_now
     where u.id = v_row.id;
    v_outcome := 'plan_lifted';
  end if;
  return billing_private.finish_stripe_event(p_event_id, v_outcome, v_now)
    || pg_catalog.jsonb_build_object('invoice_id', p_invoice_id, 'invoice_status', v_invoice.status,
         'user_plan_id', v_row.id);
end
$$;

-- The user's invoices, newest first.
create function public.get_user_invoices(p_user_id uuid, p_limit integer default 24)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_limit(p_limit, 100);
  return coalesce((select pg_catalog.jsonb_agg(pg_catalog.to_jsonb(i) - 'stripe_event_at' order by i.created_at desc, i.invoice_id)
    from (select * from public.stripe_invoices i where i.user_id = p_user_id
           order by i.created_at desc, i.invoice_id limit p_limit) i), '[]'::jsonb);
end
$$;

select billing_private.grant_to_service_only(
    'public.get_plans_for_stripe_sync()',
    'public.record_plan_stripe_ids(uuid, text, text, text)',
    'public.get_user_plan(uuid)',
    'public.start_plan_checkout(uuid, text, text, timestamptz)',
    'public.request_plan_change(uuid, text, timestamptz)',
    'public.record_subscription_event(text, text, jsonb, timestamptz, uuid, text, text, text, jsonb, timestamptz, timestamptz, boolean, timestamptz, timestamptz)',
    'public.record_invoice_event(text, text, jsonb, timestamptz, text, text, text, text, text, integer, integer, integer, text, timestamptz, timestamptz, timestamptz, timestamptz)',
    'public.get_user_invoices(uuid, integer)',
    'public.get_due_plan_change(text, timestamptz)'
);
revoke all on all functions in schema billing_private from public;

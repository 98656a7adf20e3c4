-- A period's fee as Stripe bills it when the plan changes within the period.
--
-- Stripe bills a subscription's licensed fee in advance for the whole period; a change of plan mid-period
-- (an upgrade now, or the downgrade made just after a renewal) is prorated: the unused time on the old fee is
-- credited and the remaining time on the new fee charged, each rounded once, for the fraction
-- (period end - change) / (period end - period start). 018's period_lines showed the current plan's whole fee
-- instead, so a period with a change said one thing and its invoices another. Each change of a user plan's
-- plan within a known period is now recorded (when Stripe made it: the created time of the subscription event
-- that told us, kept in stripe_state_at), and a period's fee line is what those invoices add up to.

create table public.user_plan_changes (
  id            bigint generated always as identity primary key,
  user_plan_id  uuid not null references public.user_plans(id),
  from_plan_id  uuid not null references public.plans(id),
  to_plan_id    uuid not null references public.plans(id),
  changed_at    timestamptz not null,
  created_at    timestamptz not null default now()
);
create index user_plan_changes_idx on public.user_plan_changes (user_plan_id, changed_at, id);
alter table public.user_plan_changes enable row level security;  -- no policy: only the service sees them

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

-- The fee Stripe bills for the period [p_start, p_end) of a user plan: the fee of the plan it began on (billed
-- in advance), then for each change in the period the remaining time on the new plan's fee less the unused
-- time on the old one's, each rounded half-up once as Stripe rounds a proration line.
create function billing_private.period_fee(p_user_plan public.user_plans, p_start timestamptz, p_end timestamptz)
  returns integer language plpgsql stable
as $$
declare
  v_change record;
  v_first_plan uuid;
  v_fee bigint;
  v_fraction numeric;
begin
  select c.from_plan_id into v_first_plan from public.user_plan_changes c
   where c.user_plan_id = p_user_plan.id and c.changed_at >= p_start
   order by c.changed_at, c.id limit 1;
  select p.monthly_fee_cents into v_fee from public.plans p where p.id = coalesce(v_first_plan, p_user_plan.plan_id);
  if p_end is null or p_end <= p_start then
    return v_fee;
  end if;
  for v_change in
    select f.monthly_fee_cents as from_fee, t.monthly_fee_cents as to_fee, c.changed_at
      from public.user_plan_changes c
      join public.plans f on f.id = c.from_plan_id
      join public.plans t on t.id = c.to_plan_id
     where c.user_plan_id = p_user_plan.id and c.changed_at >= p_start and c.changed_at < p_end
     order by c.changed_at, c.id
  loop
    v_fraction := extract(epoch from p_end - v_change.changed_at)::numeric / extract(epoch from p_end - p_start)::numeric;
    v_fee := v_fee - billing_private.round_line(v_change.from_fee * v_fraction)
                   + billing_private.round_line(v_change.to_fee * v_fraction);
  end loop;
  return v_fee;
end
$$;

-- Where a period of a user plan ends: the row's period end for its current period; for an earlier one where the
-- next period began (the row's, or a later one's charges); null when not known (a period after the row's).
create function billing_private.period_end_of(p_user_plan public.user_plans, p_period_start timestamptz)
  returns timestamptz language sql stable
as $$
  select case when p_period_start = p_user_plan.current_period_start then p_user_plan.current_period_end
              when p_period_start < p_user_plan.current_period_start then
                least(p_user_plan.current_period_start,
                      (select min(c.period_start) from public.usage_charges c
                        where c.user_plan_id = p_user_plan.id and c.period_start > p_period_start)) end
$$;

-- 018's period lines, with the fee line as Stripe bills it (period_fee). The period's end is the user plan's
-- when it is the current period, else where the next period began.
create or replace function billing_private.period_lines(p_user_plan public.user_plans, p_period_start timestamptz)
  returns jsonb language plpgsql stable
as $$
declare
  v_result jsonb;
  v_plan public.plans;
  v_end timestamptz;
  v_fee integer;
begin
  select * into v_plan from public.plans p where p.id = p_user_plan.plan_id;
  v_end := billing_private.period_end_of(p_user_plan, p_period_start);
  v_fee := billing_private.period_fee(p_user_plan, p_period_start, v_end);
  with usage as (
    select c.plan_id, sum(c.included_seconds)::bigint as included_seconds, sum(c.rated_seconds)::bigint as rated_seconds,
           sum(c.amount_exact) as exact
      from public.usage_charges c
     where c.user_plan_id = p_user_plan.id and c.period_start = p_period_start
     group by c.plan_id
  )
  select pg_catalog.jsonb_build_object(
    'lines', coalesce((select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                 'kind', 'usage', 'plan_key', p.key, 'plan_version', p.version, 'currency', p.currency,
                 'included_seconds', u.included_seconds, 'rated_seconds', u.rated_seconds,
                 'amount_exact', pg_catalog.round(u.exact, 4), 'amount_cents', pg_catalog.round(u.exact)::bigint)
                 order by p.key, p.version)
               from usage u join public.plans p on p.id = u.plan_id), '[]'::jsonb)
             || case when v_fee <> 0 or v_plan.monthly_fee_cents > 0 then pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                 'kind', 'fee', 'plan_key', v_plan.key, 'plan_version', v_plan.version, 'currency', v_plan.currency,
                 'amount_cents', v_fee)) else '[]'::jsonb end,
    'usage_cents', coalesce((select sum(pg_catalog.round(u.exact)) from usage u), 0)::bigint,
    'exact_cents', pg_catalog.round(coalesce((select sum(u.exact) from usage u), 0), 4),
    'fee_cents', v_fee,
    'included_seconds', coalesce((select sum(u.included_seconds) from usage u), 0)::bigint,
    'rated_seconds', coalesce((select sum(u.rated_seconds) from usage u), 0)::bigint)
    into v_result;
  return v_result;
end
$$;

revoke all on public.user_plan_changes from public, anon, authenticated, service_role;
-- Written only by the trigger above (as the owner of user_plans' changes: the subscription webhook functions).
grant select on public.user_plan_changes to service_role;

-- 018's usage of this period, for the period that contains now (as 017 charges): from the row's period end on,
-- before customer.subscription.updated moves it, the next period (period_end null until Stripe says it); once a
-- subscription cancelled at the period end has reached it, the user is prepaid.
create or replace function public.get_usage_current(p_user_id uuid, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_user_plan public.user_plans;
  v_plan public.plans;
  v_start timestamptz;
  v_end timestamptz;
  v_postpaid boolean;
  v_lines jsonb := null;
  v_calls jsonb;
  v_plan_cost bigint := 0;
  v_usage bigint := 0;
begin
  perform billing_private.require_user(p_user_id);
  select * into v_user_plan from public.user_plans u where u.user_id = p_user_id and u.status <> 'ended';
  if found and v_user_plan.cancel_at_period_end and v_now >= v_user_plan.current_period_end then
    -- Stripe ended the subscription at the period end (its webhook has not landed yet): cards only, as 017 charges.
    v_user_plan := null;
  end if;
  v_postpaid := v_user_plan.id is not null and v_user_plan.status <> 'pending';
  if v_user_plan.id is not null then
    select * into v_plan from public.plans p where p.id = v_user_plan.plan_id;
  else
    select * into v_plan from public.plans p where p.kind = 'prepaid' and p.status = 'active' order by p.sort_order, p.key limit 1;
  end if;
  if v_postpaid then
    v_start := v_user_plan.current_period_start;
    v_end := v_user_plan.current_period_end;
    if v_now >= v_end then
      -- The period that contains now, as 017 charges it: the next one, until Stripe's webhook says its end.
      v_start := v_end;
      v_end := null;
    end if;
    v_lines := billing_private.period_lines(v_user_plan, v_start);
    v_usage := (v_lines ->> 'usage_cents')::bigint;
    v_plan_cost := v_usage + (v_lines ->> 'fee_cents')::bigint;
  else
    v_start := billing_private.month_start(v_now);
    v_end := billing_private.plus_utc(v_start, interval '1 month');
  end if;
  v_calls := billing_private.window_calls(p_user_id, v_start, coalesce(v_end, 'infinity'::timestamptz));
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'billing', case when v_postpaid then 'postpaid' else 'prepaid' end,
    'plan', case when v_plan.id is null then null else billing_private.plan_offer_json(v_plan) end,
    'status', case when v_user_plan.id is null then 'active' else v_user_plan.status end,
    'suspended_reason', v_user_plan.suspended_reason,
    'hosted_invoice_url', v_user_plan.suspended_invoice_url,
    'cancel_at_period_end', coalesce(v_user_plan.cancel_at_period_end, false),
    'month', pg_catalog.to_char(v_start at time zone 'UTC', 'YYYY-MM'),
    'period_start', v_start,
    'period_end', v_end,
    'total_calls', (v_calls ->> 'calls')::bigint,
    'total_seconds', (v_calls ->> 'seconds')::bigint,
    'card_seconds', (v_calls ->> 'card_seconds')::bigint,
    'included_seconds', case when v_postpaid then v_plan.included_seconds else 0 end,
    'included_seconds_used', coalesce((v_lines ->> 'included_seconds')::bigint, 0),
    'included_seconds_left', case when v_postpaid
      then greatest(0, v_plan.included_seconds - (v_lines ->> 'included_seconds')::bigint) else 0 end,
    'rated_seconds', coalesce((v_lines ->> 'rated_seconds')::bigint, 0),
    'usage_exact_cents', coalesce((v_lines ->> 'exact_cents')::numeric, 0),
    'usage_cents', v_usage,
    'fee_cents', coalesce((v_lines ->> 'fee_cents')::bigint, 0),
    'plan_cost_cents', v_plan_cost,
    'prepaid_cost_cents', (v_calls ->> 'prepaid_cost_cents')::numeric,
    'total_cost_cents', v_plan_cost + (v_calls ->> 'prepaid_cost_cents')::numeric,
    'currency', coalesce(v_plan.currency, 'usd'),
    'lines', coalesce(v_lines -> 'lines', '[]'::jsonb),
    'cap_cents', case when v_postpaid then v_user_plan.spending_cap_cents end,
    'cap_used_cents', case when v_postpaid then v_usage end,
    'cap_left_cents', case when v_postpaid then greatest(0, v_user_plan.spending_cap_cents - v_usage) end,
    'max_cap_cents', case when v_postpaid then v_plan.max_cap_cents end,
    'balance_seconds', billing_private.spendable_seconds(p_user_id, v_now));
end
$$;


-- 018's month of usage, with each period's fee as Stripe bills it (period_fee: prorated on a plan change).
create or replace function public.get_usage_history(p_user_id uuid, p_month text, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_from timestamptz;
  v_to timestamptz;
  v_calls jsonb;
  v_usage bigint;
  v_exact numeric;
  v_fees jsonb;
  v_fee_cents bigint;
  v_days jsonb;
  v_last date;
begin
  perform billing_private.require_user(p_user_id);
  v_from := billing_private.parse_month(p_month);
  v_to := billing_private.plus_utc(v_from, interval '1 month');
  v_calls := billing_private.window_calls(p_user_id, v_from, v_to);
  select coalesce(sum(pg_catalog.round(l.exact)), 0)::bigint, coalesce(sum(l.exact), 0)
    into v_usage, v_exact
    from (select sum(c.amount_exact) as exact from public.usage_charges c
           where c.user_id = p_user_id and c.created_at >= v_from and c.created_at < v_to
           group by c.user_plan_id, c.period_start, c.plan_id) l;
  -- A period's fee is charged when the period begins; a period is known by its charges or by being current.
  with periods as (
    select distinct c.user_plan_id, c.period_start, c.plan_id from public.usage_charges c
     where c.user_id = p_user_id and c.period_start >= v_from and c.period_start < v_to
    union
    select u.id, u.current_period_start, u.plan_id from public.user_plans u
     where u.user_id = p_user_id and u.status in ('active', 'suspended')
       and u.current_period_start >= v_from and u.current_period_start < v_to
  ), named as (
    select distinct on (f.user_plan_id, f.period_start) f.user_plan_id, f.period_start, p.key, p.version, p.currency
      from periods f join public.plans p on p.id = f.plan_id
     order by f.user_plan_id, f.period_start, p.monthly_fee_cents > 0 desc, p.version desc
  ), fees as (
    select n.period_start, n.key, n.version, n.currency,
           billing_private.period_fee(u, n.period_start, billing_private.period_end_of(u, n.period_start)) as monthly_fee_cents
      from named n join public.user_plans u on u.id = n.user_plan_id
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('plan_key', f.key, 'plan_version', f.version,
           'period_start', f.period_start, 'currency', f.currency, 'amount_cents', f.monthly_fee_cents) order by f.period_start), '[]'::jsonb),
         coalesce(sum(f.monthly_fee_cents), 0)::bigint
    into v_fees, v_fee_cents
    from fees f
   where f.monthly_fee_cents <> 0;
  v_last := least((v_to at time zone 'UTC')::date - 1, (v_now at time zone 'UTC')::date);
  with days as (
    select g::date as day from pg_catalog.generate_series((v_from at time zone 'UTC')::timestamp, v_last::timestamp, interval '1 day') g
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'date', pg_catalog.to_char(d.day, 'YYYY-MM-DD'),
           'calls', (select count(*) from public.voice_sessions s
                      where s.user_id = p_user_id and (s.started_at at time zone 'UTC')::date = d.day),
           'seconds', (select coalesce(sum(s.billed_seconds), 0) from public.voice_sessions s
                        where s.user_id = p_user_id and (s.started_at at time zone 'UTC')::date = d.day),
           'included_seconds', (select coalesce(sum(c.included_seconds), 0) from public.usage_charges c
                                 where c.user_id = p_user_id and (c.created_at at time zone 'UTC')::date = d.day),
           'rated_seconds', (select coalesce(sum(c.rated_seconds), 0) from public.usage_charges c
                              where c.user_id = p_user_id and (c.created_at at time zone 'UTC')::date = d.day),
           'usage_exact_cents', (select pg_catalog.round(coalesce(sum(c.amount_exact), 0), 4) from public.usage_charges c
                                  where c.user_id = p_user_id and (c.created_at at time zone 'UTC')::date = d.day))
           order by d.day), '[]'::jsonb)
    into v_days
    from days d;
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'month', pg_catalog.to_char(v_from at time zone 'UTC', 'YYYY-MM'),
    'total_calls', (v_calls ->> 'calls')::bigint,
    'total_seconds', (v_calls ->> 'seconds')::bigint,
    'card_seconds', (v_calls ->> 'card_seconds')::bigint,
    'usage_exact_cents', pg_catalog.round(v_exact, 4),
    'usage_cents', v_usage,
    'fee_cents', v_fee_cents,
    'fees', v_fees,
    'plan_cost_cents', v_usage + v_fee_cents,
    'prepaid_cost_cents', (v_calls ->> 'prepaid_cost_cents')::numeric,
    'total_cost_cents', v_usage + v_fee_cents + (v_calls ->> 'prepaid_cost_cents')::numeric,
    'days', v_days);
end
$$;


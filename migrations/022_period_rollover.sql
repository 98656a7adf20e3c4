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
  v_end := case when p_period_start = p_user_plan.current_period_start then p_user_plan.current_period_end
                when p_period_start < p_user_plan.current_period_start then
                  (select min(c.period_start) from public.usage_charges c
                    where c.user_plan_id = p_user_plan.id and c.period_start > p_period_start) end;
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

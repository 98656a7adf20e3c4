-- Plans as administrators manage them, usage in a plan's terms as callers read it, and the administrators'
-- views of postpaid billing (who is on which plan, MRR, usage by plan and by agent, invoices, meter drift).
--
-- Same conventions as 002 and 004: SECURITY DEFINER, an empty search_path and qualified names, domain errors
-- through billing_private.fail, p_now as the billing clock, every function granted to service_role alone (the
-- sidecar decides who may read what). docs/plans.md is the contract; in particular the one rounding rule:
--   an invoice line is (user plan, period, plan version); its amount = round_line(sum(amount_exact)) (017's
--   half-up rounding), once; every invoice line below is rounded by it and by nothing else.
--
-- Prices per hour. So that a caller can compare a plan with prepaid packs, every plan answers what an hour
-- costs on it: a pack its price over its hours, a rated plan its first tier's rate x 60 (and every tier's),
-- a subscription also its fee over its included hours (what an hour costs when the included minutes are used).
-- These are exact decimals of a cent (4 places); nothing here is charged from them.

-- ---------- plans: validation and shape ----------

-- A definition as an administrator gives it (create_plan, or revise_plan's merged result):
--   {key, kind, name, description?, currency?, monthly_fee_cents?, included_seconds?, default_cap_cents?,
--    max_cap_cents?, sort_order?, tiers?: [{up_to_seconds: integer|null, cents_per_minute: number}]}
-- Each rule is refused with its own message (the table checks would only name a constraint).
create function billing_private.check_plan_definition(p_def jsonb) returns void
  language plpgsql immutable
as $$
declare
  v_allowed constant text[] := array['key', 'kind', 'name', 'description', 'currency', 'monthly_fee_cents',
    'included_seconds', 'default_cap_cents', 'max_cap_cents', 'sort_order', 'tiers'];
  v_field text;
  v_kind text;
  v_tiers jsonb;
  v_tier jsonb;
  v_count integer;
  v_i integer;
  v_up_to bigint;
  v_previous bigint := 0;
  v_rate numeric;
  v_fee bigint;
  v_included bigint;
  v_default_cap bigint;
  v_max_cap bigint;
begin
  if p_def is null or pg_catalog.jsonb_typeof(p_def) <> 'object' then
    perform billing_private.fail('invalid_argument', 'a plan is a JSON object');
  end if;
  for v_field in select k from pg_catalog.jsonb_object_keys(p_def) k loop
    if v_field <> all (v_allowed) then
      perform billing_private.fail('invalid_argument', pg_catalog.format('a plan has no field %L', v_field));
    end if;
  end loop;
  foreach v_field in array array['monthly_fee_cents', 'included_seconds', 'default_cap_cents', 'max_cap_cents', 'sort_order'] loop
    if p_def ? v_field and pg_catalog.jsonb_typeof(p_def -> v_field) <> 'null'
       and (pg_catalog.jsonb_typeof(p_def -> v_field) <> 'number' or (p_def ->> v_field) !~ '^-?[0-9]{1,10}$'
            or (p_def ->> v_field)::bigint not between -2147483648 and 2147483647) then
      perform billing_private.fail('invalid_argument', pg_catalog.format('%s must be a whole number', v_field));
    end if;
  end loop;
  foreach v_field in array array['key', 'kind', 'name', 'description', 'currency'] loop
    if p_def ? v_field and pg_catalog.jsonb_typeof(p_def -> v_field) <> 'string' then
      perform billing_private.fail('invalid_argument', pg_catalog.format('%s must be a string', v_field));
    end if;
  end loop;

  if coalesce(p_def ->> 'key', '') !~ '^[a-z][a-z0-9_]{1,39}$' then
    perform billing_private.fail('invalid_argument',
      'a plan key is 2 to 40 lower-case letters, digits or _, starting with a letter, like pro_monthly');
  end if;
  v_kind := p_def ->> 'kind';
  if v_kind is null or v_kind not in ('prepaid', 'payg', 'tiered', 'subscription') then
    perform billing_private.fail('invalid_argument', 'a plan kind is prepaid, payg, tiered or subscription');
  end if;
  if p_def ->> 'name' is null or pg_catalog.length(pg_catalog.btrim(p_def ->> 'name')) = 0
     or pg_catalog.length(p_def ->> 'name') > 80 then
    perform billing_private.fail('invalid_argument', 'a plan name of 1 to 80 characters is required');
  end if;
  if pg_catalog.length(coalesce(p_def ->> 'description', '')) > 500 then
    perform billing_private.fail('invalid_argument', 'a plan description has at most 500 characters');
  end if;
  if coalesce(p_def ->> 'currency', 'usd') !~ '^[a-z]{3}$' then
    perform billing_private.fail('invalid_argument', 'a currency is a three-letter lower-case ISO code, like usd');
  end if;

  v_fee := coalesce((p_def ->> 'monthly_fee_cents')::bigint, 0);
  v_included := coalesce((p_def ->> 'included_seconds')::bigint, 0);
  v_default_cap := (p_def ->> 'default_cap_cents')::bigint;
  v_max_cap := (p_def ->> 'max_cap_cents')::bigint;
  v_tiers := coalesce(p_def -> 'tiers', '[]'::jsonb);
  if pg_catalog.jsonb_typeof(v_tiers) <> 'array' then
    perform billing_private.fail('invalid_argument', 'tiers must be a list');
  end if;
  v_count := pg_catalog.jsonb_array_length(v_tiers);

  if v_kind = 'subscription' then
    if v_fee <= 0 then
      perform billing_private.fail('invalid_argument', 'a subscription needs a positive monthly_fee_cents');
    end if;
    if v_included <= 0 then
      perform billing_private.fail('invalid_argument', 'a subscription needs a positive number of included_seconds');
    end if;
  elsif v_fee <> 0 or v_included <> 0 then
    perform billing_private.fail('invalid_argument',
      pg_catalog.format('only a subscription has a monthly fee or included seconds, not a %s plan', v_kind));
  end if;

  if v_kind = 'prepaid' then
    if v_count > 0 then
      perform billing_private.fail('invalid_argument', 'a prepaid plan has no rate tiers: its prices are the time packs');
    end if;
    if v_default_cap is not null or v_max_cap is not null then
      perform billing_private.fail('invalid_argument', 'a prepaid plan has no spending cap');
    end if;
    return;
  end if;

  if v_default_cap is null or v_max_cap is null or v_default_cap <= 0 or v_max_cap <= 0 then
    perform billing_private.fail('invalid_argument',
      'a postpaid plan needs a positive default_cap_cents and max_cap_cents (the spending cap a user gets and the most they may set)');
  end if;
  if v_default_cap > v_max_cap then
    perform billing_private.fail('invalid_argument', 'default_cap_cents cannot be more than max_cap_cents');
  end if;

  if v_kind = 'payg' and v_count <> 1 then
    perform billing_private.fail('invalid_argument', 'a pay-as-you-go plan has exactly one rate tier');
  elsif v_kind = 'subscription' and v_count <> 1 then
    perform billing_private.fail('invalid_argument', 'a subscription has exactly one rate tier: its overage rate');
  elsif v_kind = 'tiered' and v_count < 2 then
    perform billing_private.fail('invalid_argument', 'a tiered plan has at least two rate tiers');
  end if;
  for v_i in 0 .. v_count - 1 loop
    v_tier := v_tiers -> v_i;
    if pg_catalog.jsonb_typeof(v_tier) <> 'object'
       or exists (select 1 from pg_catalog.jsonb_object_keys(v_tier) k where k not in ('up_to_seconds', 'cents_per_minute')) then
      perform billing_private.fail('invalid_argument',
        pg_catalog.format('tier %s is an object of up_to_seconds and cents_per_minute', v_i + 1));
    end if;
    if pg_catalog.jsonb_typeof(v_tier -> 'cents_per_minute') is distinct from 'number' then
      perform billing_private.fail('invalid_argument', pg_catalog.format('tier %s needs a cents_per_minute number', v_i + 1));
    end if;
    v_rate := (v_tier ->> 'cents_per_minute')::numeric;
    if v_rate < 0 or v_rate >= 100000000 or v_rate <> pg_catalog.round(v_rate, 4) then
      perform billing_private.fail('invalid_argument', pg_catalog.format(
        'tier %s: cents_per_minute is zero or more, below 100000000, with at most 4 decimals (like 5 or 0.0833)', v_i + 1));
    end if;
    if v_i = v_count - 1 then
      if coalesce(pg_catalog.jsonb_typeof(v_tier -> 'up_to_seconds'), 'null') <> 'null' then
        perform billing_private.fail('invalid_argument', 'the last tier has no upper bound (up_to_seconds null): it prices the rest');
      end if;
    else
      if pg_catalog.jsonb_typeof(v_tier -> 'up_to_seconds') is distinct from 'number'
         or (v_tier ->> 'up_to_seconds') !~ '^[0-9]{1,10}$' or (v_tier ->> 'up_to_seconds')::bigint > 2147483647 then
        perform billing_private.fail('invalid_argument',
          pg_catalog.format('tier %s needs up_to_seconds, a whole number of seconds', v_i + 1));
      end if;
      v_up_to := (v_tier ->> 'up_to_seconds')::bigint;
      if v_up_to <= v_previous then
        perform billing_private.fail('invalid_argument',
          pg_catalog.format('tier %s: up_to_seconds must be more than the tier before (%s)', v_i + 1, v_previous));
      end if;
      v_previous := v_up_to;
    end if;
  end loop;
end
$$;

-- A plan with its tiers and its prices per hour (see the top of this file).
create function billing_private.plan_offer_json(p_plan public.plans) returns jsonb
  language plpgsql stable
as $$
declare
  v_tiers jsonb;
  v_first numeric;
  v_packs jsonb := null;
begin
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'position', t.position,
           'up_to_seconds', t.up_to_seconds,
           'cents_per_minute', t.cents_per_minute,
           'cents_per_second', t.cents_per_second,
           'cents_per_hour', t.cents_per_minute * 60) order by t.position), '[]'::jsonb),
         min(t.cents_per_minute) filter (where t.position = 1)
    into v_tiers, v_first
    from public.plan_rate_tiers t where t.plan_id = p_plan.id;
  if p_plan.kind = 'prepaid' then
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'package_id', k.id, 'name', k.name, 'price_cents', k.price_cents, 'currency', k.currency,
             'total_seconds', k.base_seconds + k.bonus_seconds,
             'cents_per_hour', pg_catalog.round(k.price_cents * 3600.0 / (k.base_seconds + k.bonus_seconds), 4))
             order by k.sort_order, k.id), '[]'::jsonb)
      into v_packs
      from public.pricing_tiers k where k.active;
  end if;
  return pg_catalog.jsonb_build_object(
    'plan_id', p_plan.id,
    'key', p_plan.key,
    'version', p_plan.version,
    'kind', p_plan.kind,
    'name', p_plan.name,
    'description', p_plan.description,
    'currency', p_plan.currency,
    'monthly_fee_cents', p_plan.monthly_fee_cents,
    'included_seconds', p_plan.included_seconds,
    'default_cap_cents', p_plan.default_cap_cents,
    'max_cap_cents', p_plan.max_cap_cents,
    'status', p_plan.status,
    'sort_order', p_plan.sort_order,
    'stripe_product_id', p_plan.stripe_product_id,
    'stripe_fee_price_id', p_plan.stripe_fee_price_id,
    'stripe_usage_price_id', p_plan.stripe_usage_price_id,
    'created_at', p_plan.created_at,
    'retired_at', p_plan.retired_at,
    'tiers', v_tiers,
    'packs', v_packs,
    'price_per_hour', pg_catalog.jsonb_build_object(
      -- What the first rated hour costs (for a subscription: an hour past the included minutes).
      'rate_cents_per_hour', v_first * 60,
      -- A subscription's hour when exactly its included minutes are used: the fee over the included hours.
      'included_cents_per_hour', case when p_plan.kind = 'subscription' and p_plan.included_seconds > 0
        then pg_catalog.round(p_plan.monthly_fee_cents * 3600.0 / p_plan.included_seconds, 4) end,
      -- A prepaid plan's cheapest pack per hour.
      'cheapest_pack_cents_per_hour', (select min((e ->> 'cents_per_hour')::numeric)
                                         from pg_catalog.jsonb_array_elements(v_packs) e)));
end
$$;

-- Writes one version of a plan from a checked definition.
create function billing_private.insert_plan(p_def jsonb, p_version integer, p_now timestamptz)
  returns public.plans language plpgsql volatile
as $$
declare
  v_plan public.plans;
begin
  insert into public.plans (key, version, kind, name, description, currency, monthly_fee_cents, included_seconds,
    default_cap_cents, max_cap_cents, status, sort_order, created_at)
  values (p_def ->> 'key', p_version, p_def ->> 'kind', pg_catalog.btrim(p_def ->> 'name'),
    coalesce(p_def ->> 'description', ''), coalesce(p_def ->> 'currency', 'usd'),
    coalesce((p_def ->> 'monthly_fee_cents')::integer, 0), coalesce((p_def ->> 'included_seconds')::integer, 0),
    (p_def ->> 'default_cap_cents')::integer, (p_def ->> 'max_cap_cents')::integer, 'active',
    coalesce((p_def ->> 'sort_order')::integer, 0), p_now)
  returning * into v_plan;
  insert into public.plan_rate_tiers (plan_id, position, up_to_seconds, cents_per_minute)
    select v_plan.id, (t.ord)::integer, (t.tier ->> 'up_to_seconds')::integer, (t.tier ->> 'cents_per_minute')::numeric
      from pg_catalog.jsonb_array_elements(coalesce(p_def -> 'tiers', '[]'::jsonb)) with ordinality as t(tier, ord);
  return v_plan;
end
$$;

-- A plan's definition in the shape create_plan takes (what revise_plan merges changes into).
create function billing_private.plan_definition(p_plan public.plans) returns jsonb
  language plpgsql stable
as $$
begin
  return pg_catalog.jsonb_build_object(
    'key', p_plan.key, 'kind', p_plan.kind, 'name', p_plan.name, 'description', p_plan.description,
    'currency', p_plan.currency, 'monthly_fee_cents', p_plan.monthly_fee_cents, 'included_seconds', p_plan.included_seconds,
    'default_cap_cents', p_plan.default_cap_cents, 'max_cap_cents', p_plan.max_cap_cents, 'sort_order', p_plan.sort_order,
    'tiers', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'up_to_seconds', t.up_to_seconds, 'cents_per_minute', t.cents_per_minute) order by t.position), '[]'::jsonb)
                from public.plan_rate_tiers t where t.plan_id = p_plan.id));
end
$$;

-- ---------- administration: plans ----------

-- A new plan (version 1 of a new key). A key used before, even by a retired plan, is refused: revise it.
create function public.create_plan(p_definition jsonb, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_plan public.plans;
begin
  perform billing_private.check_plan_definition(p_definition);
  -- Two creations of one key at once: the second waits here and then sees the first.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mindbot.plan:' || (p_definition ->> 'key'), 0));
  if exists (select 1 from public.plans p where p.key = p_definition ->> 'key')
     and not exists (select 1 from public.plans p where p.key = p_definition ->> 'key' and p.status = 'active') then
    perform billing_private.fail('plan_conflict', pg_catalog.format(
      'plan %L was retired, and a key is never used again (its Stripe prices keep it): choose another key',
      p_definition ->> 'key'));
  end if;
  if exists (select 1 from public.plans p where p.key = p_definition ->> 'key') then
    perform billing_private.fail('plan_conflict', pg_catalog.format(
      'a plan %L exists already: change it with a new version (POST /admin/plans/%s/versions)',
      p_definition ->> 'key', p_definition ->> 'key'));
  end if;
  v_plan := billing_private.insert_plan(p_definition, 1, v_now);
  return pg_catalog.jsonb_build_object('plan', billing_private.plan_offer_json(v_plan), 'created', true);
end
$$;

-- A new version of a plan: p_changes holds the fields that change (tiers, when given, replace all of them);
-- everything else is the offered version's. In one transaction the offered version is retired and the new one
-- offered. Users on the old version keep it (their user_plans row names that version); only new subscribers
-- and moves get the new one. A plan's kind and key never change: that is another plan.
create function public.revise_plan(p_key text, p_changes jsonb, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_old public.plans;
  v_def jsonb;
  v_plan public.plans;
  v_version integer;
begin
  if p_changes is null or pg_catalog.jsonb_typeof(p_changes) <> 'object' or p_changes = '{}'::jsonb then
    perform billing_private.fail('invalid_argument', 'plan changes must be a JSON object with at least one field');
  end if;
  if p_changes ? 'key' and p_changes ->> 'key' is distinct from p_key then
    perform billing_private.fail('invalid_argument', 'a plan''s key cannot change: create a new plan');
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mindbot.plan:' || coalesce(p_key, ''), 0));
  select * into v_old from public.plans p where p.key = p_key and p.status = 'active' for update;
  if not found then
    if exists (select 1 from public.plans p where p.key = p_key) then
      perform billing_private.fail('invalid_argument', pg_catalog.format('plan %L is retired: it has no version to revise', p_key));
    end if;
    perform billing_private.fail('unknown_plan', pg_catalog.format('no plan %L', p_key));
  end if;
  if p_changes ? 'kind' and p_changes ->> 'kind' is distinct from v_old.kind then
    perform billing_private.fail('invalid_argument',
      pg_catalog.format('a plan''s kind cannot change (%s): create a new plan', v_old.kind));
  end if;
  v_def := billing_private.plan_definition(v_old) || p_changes;
  perform billing_private.check_plan_definition(v_def);
  select max(p.version) + 1 into v_version from public.plans p where p.key = p_key;
  update public.plans p set status = 'retired', retired_at = v_now where p.id = v_old.id returning * into v_old;
  v_plan := billing_private.insert_plan(v_def, v_version, v_now);
  return pg_catalog.jsonb_build_object('plan', billing_private.plan_offer_json(v_plan), 'retired', billing_private.plan_offer_json(v_old),
    'created', true);
end
$$;

-- Takes a plan off the offer. Its subscribers keep it; nobody new can choose it. Retiring a retired plan
-- answers it as it is.
create function public.retire_plan(p_key text, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_plan public.plans;
begin
  update public.plans p set status = 'retired', retired_at = v_now
   where p.key = p_key and p.status = 'active'
  returning * into v_plan;
  if not found then
    select * into v_plan from public.plans p where p.key = p_key order by p.version desc limit 1;
    if not found then
      perform billing_private.fail('unknown_plan', pg_catalog.format('no plan %L', p_key));
    end if;
    return pg_catalog.jsonb_build_object('plan', billing_private.plan_offer_json(v_plan), 'retired', false);
  end if;
  return pg_catalog.jsonb_build_object('plan', billing_private.plan_offer_json(v_plan), 'retired', true);
end
$$;

-- The offer (active versions), or with p_include_retired every version; by sort order, newest version first.
create function public.list_plans(p_include_retired boolean default false)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  return pg_catalog.jsonb_build_object('plans',
    (select coalesce(pg_catalog.jsonb_agg(billing_private.plan_offer_json(p) order by p.sort_order, p.key, p.version desc), '[]'::jsonb)
       from public.plans p
      where p.status = 'active' or coalesce(p_include_retired, false)));
end
$$;

-- ---------- a user's usage in their plan's terms ----------

-- Changes of a user plan's plan within a known period, so that a period's fee line is what Stripe bills.
-- Stripe bills a subscription's licensed fee in advance for the whole period; a change of plan mid-period
-- (an upgrade now, or the downgrade made just after a renewal) is prorated: the unused time on the old fee is
-- credited and the remaining time on the new fee charged, each rounded once, for the fraction
-- (period end - change) / (period end - period start). Each change is recorded (by 020's trigger, when Stripe
-- made it: the created time of the subscription event that told us, kept in stripe_state_at).
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

-- The invoice lines of one period of a user plan: per plan version, the usage rounded once (round_line), and
-- the subscription fee as Stripe bills it (period_fee). The period's end is the user plan's when it is the
-- current period, else where the next period began.
-- {lines: [...], usage_cents, fee_cents, exact_cents, included_seconds, rated_seconds}.
create function billing_private.period_lines(p_user_plan public.user_plans, p_period_start timestamptz)
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
                 'amount_exact', pg_catalog.round(u.exact, 4), 'amount_cents', billing_private.round_line(u.exact))
                 order by p.key, p.version)
               from usage u join public.plans p on p.id = u.plan_id), '[]'::jsonb)
             || case when v_fee <> 0 or v_plan.monthly_fee_cents > 0 then pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
                 'kind', 'fee', 'plan_key', v_plan.key, 'plan_version', v_plan.version, 'currency', v_plan.currency,
                 'amount_cents', v_fee)) else '[]'::jsonb end,
    'usage_cents', coalesce((select sum(billing_private.round_line(u.exact)) from usage u), 0)::bigint,
    'exact_cents', pg_catalog.round(coalesce((select sum(u.exact) from usage u), 0), 4),
    'fee_cents', v_fee,
    'included_seconds', coalesce((select sum(u.included_seconds) from usage u), 0)::bigint,
    'rated_seconds', coalesce((select sum(u.rated_seconds) from usage u), 0)::bigint)
    into v_result;
  return v_result;
end
$$;

-- Calls started in [p_from, p_to) and the prepaid seconds used then: {calls, seconds, card_seconds,
-- prepaid_cost_cents}. A card's seconds cost what 004 says (its price per second).
create function billing_private.window_calls(p_user_id uuid, p_from timestamptz, p_to timestamptz)
  returns jsonb language plpgsql stable
as $$
declare
  v_result jsonb;
begin
  select pg_catalog.jsonb_build_object(
    'calls', (select count(*) from public.voice_sessions s
               where s.user_id = p_user_id and s.started_at >= p_from and s.started_at < p_to),
    'seconds', (select coalesce(sum(s.billed_seconds), 0) from public.voice_sessions s
                 where s.user_id = p_user_id and s.started_at >= p_from and s.started_at < p_to),
    'card_seconds', coalesce(sum(-l.seconds), 0),
    'prepaid_cost_cents', pg_catalog.round(coalesce(sum(-l.seconds::numeric * coalesce(p.amount_cents, t.price_cents, 0) / c.total_seconds), 0), 4))
    into v_result
    from public.ledger_entries l
    join public.time_cards c on c.id = l.card_id
    left join public.payments p on p.id = c.payment_id
    left join public.pricing_tiers t on t.id = c.tier_id
   where l.user_id = p_user_id and l.kind = 'usage' and l.created_at >= p_from and l.created_at < p_to;
  return v_result;
end
$$;

-- This period in the plan's terms. A postpaid user's period is Stripe's; a prepaid user's (and one whose
-- subscription Stripe has not confirmed yet: cards only) is the UTC calendar month.
--   plan_cost_cents = what the period's invoice says so far: its usage lines (each rounded once) + the fee.
--   prepaid_cost_cents = what the card seconds used this period were paid for (004's rule), exact.
--   total_cost_cents = both.
-- The spending cap limits the rated usage (not the fee): cap_used_cents is the rounded usage lines.
-- From the row's period end on, before customer.subscription.updated moves it, the period is the next one (as
-- 017 charges; period_end null until Stripe says it); once a subscription cancelled at the period end has
-- reached it, the user is prepaid.
create function public.get_usage_current(p_user_id uuid, p_now timestamptz default null)
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

-- One UTC calendar month (YYYY-MM) in the plan's terms, with every day of it (up to today in the current
-- month). A postpaid month's usage is its charges made that month, in lines of (user plan, period, plan
-- version) each rounded once (a period that straddles two months is two partial lines: the invoice rounds
-- the whole period once), plus the fees of the periods that began that month
-- (each as Stripe bills it: period_fee, prorated on a plan change). A day shows exact amounts.
create function public.get_usage_history(p_user_id uuid, p_month text, p_now timestamptz default null)
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
  select coalesce(sum(billing_private.round_line(l.exact)), 0)::bigint, coalesce(sum(l.exact), 0)
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

-- The cap on the period's rated usage, within the plan's maximum. Lowering it below what is used already is
-- allowed: postpaid calls then stop at once (the charging SQL reads it at every increment).
create function public.set_spending_cap(p_user_id uuid, p_cap_cents integer, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_user_plan public.user_plans;
  v_plan public.plans;
begin
  perform billing_private.require_user(p_user_id);
  if p_cap_cents is null or p_cap_cents <= 0 then
    perform billing_private.fail('invalid_argument', 'a spending cap is a positive whole number of cents');
  end if;
  select * into v_user_plan from public.user_plans u where u.user_id = p_user_id and u.status <> 'ended' for update;
  if not found then
    perform billing_private.fail('unknown_plan', 'you are on no postpaid plan: prepaid time needs no spending cap');
  end if;
  select * into v_plan from public.plans p where p.id = v_user_plan.plan_id;
  if p_cap_cents > v_plan.max_cap_cents then
    perform billing_private.fail('invalid_argument', pg_catalog.format(
      'the spending cap of %s can be at most %s cents (%s %s)', v_plan.name, v_plan.max_cap_cents,
      pg_catalog.to_char(v_plan.max_cap_cents / 100.0, 'FM999999990.00'), pg_catalog.upper(v_plan.currency)));
  end if;
  update public.user_plans u set spending_cap_cents = p_cap_cents, updated_at = v_now where u.id = v_user_plan.id;
  return public.get_usage_current(p_user_id, v_now);
end
$$;

-- A call's cost in its user's plan terms (/api/usage/calls): what its card seconds were paid for (004) plus
-- the exact amount of its usage charges (postpaid); sessions_json shows it to 4 decimals of a cent.
create or replace function billing_private.user_sessions(p_user_id uuid, p_from timestamptz, p_to timestamptz, p_limit integer)
  returns table (id uuid, external_key text, room_name text, status text, started_at timestamptz,
                 ended_at timestamptz, end_reason text, billed_seconds integer, cost_cents numeric)
  language plpgsql stable
as $$
begin
  return query
    select s.id, s.external_key, s.room_name, s.status, s.started_at, s.ended_at, s.end_reason, s.billed_seconds,
           coalesce((select sum(-l.seconds::numeric * coalesce(p.amount_cents, t.price_cents, 0) / c.total_seconds)
                       from public.ledger_entries l
                       join public.time_cards c on c.id = l.card_id
                       left join public.payments p on p.id = c.payment_id
                       left join public.pricing_tiers t on t.id = c.tier_id
                      where l.session_id = s.id and l.kind = 'usage'), 0)
           + coalesce((select sum(u.amount_exact) from public.usage_charges u where u.session_id = s.id), 0)
      from public.voice_sessions s
     where s.user_id = p_user_id and s.started_at >= p_from and s.started_at < p_to
     order by s.started_at desc, s.id desc
     limit p_limit;
end
$$;

create or replace function billing_private.sessions_json(p_user_id uuid, p_from timestamptz, p_to timestamptz, p_limit integer,
  p_now timestamptz) returns jsonb
  language plpgsql stable
as $$
begin
  return (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'session_id', s.id,
             'client_session_id', billing_private.client_session_id(p_user_id, s.external_key),
             'room_name', s.room_name,
             'agent_name', v.agent_name,
             'call_from', v.call_from,
             'call_to', v.call_to,
             'status', s.status,
             'started_at', s.started_at,
             'ended_at', s.ended_at,
             'end_reason', s.end_reason,
             'billed_seconds', s.billed_seconds,
             'duration_seconds', greatest(0, pg_catalog.floor(extract(epoch from coalesce(s.ended_at, p_now) - s.started_at)))::integer,
             'cost_cents', pg_catalog.round(s.cost_cents, 4))
           order by s.started_at desc, s.id desc), '[]'::jsonb)
    from billing_private.user_sessions(p_user_id, p_from, p_to, p_limit) s
    join public.voice_sessions v on v.id = s.id);
end
$$;

-- ---------- administration: postpaid billing ----------

-- Who is on which plan now (current user plans), newest first, and how many per plan version and status.
create function public.list_plan_subscribers(p_plan_key text default null, p_limit integer default 100,
  p_offset integer default 0) returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  perform billing_private.require_limit(p_limit, 1000);
  if p_offset is null or p_offset < 0 then
    perform billing_private.fail('invalid_argument', 'offset must be zero or more');
  end if;
  return pg_catalog.jsonb_build_object(
    'total', (select count(*) from public.user_plans u join public.plans p on p.id = u.plan_id
               where u.status <> 'ended' and (p_plan_key is null or p.key = p_plan_key)),
    'limit', p_limit, 'offset', p_offset,
    'by_plan', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                  'plan_key', g.key, 'plan_version', g.version, 'kind', g.kind, 'currency', g.currency,
                  'pending', g.pending, 'active', g.active, 'suspended', g.suspended) order by g.key, g.version), '[]'::jsonb)
                  from (select p.key, p.version, p.kind, p.currency,
                               count(*) filter (where u.status = 'pending') as pending,
                               count(*) filter (where u.status = 'active') as active,
                               count(*) filter (where u.status = 'suspended') as suspended
                          from public.user_plans u join public.plans p on p.id = u.plan_id
                         where u.status <> 'ended' and (p_plan_key is null or p.key = p_plan_key)
                         group by p.key, p.version, p.kind, p.currency) g),
    'subscribers', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                      'user_id', x.user_id, 'user_plan_id', x.id, 'plan_key', x.key, 'plan_version', x.version,
                      'plan_name', x.name, 'kind', x.kind, 'status', x.status,
                      'current_period_start', x.current_period_start, 'current_period_end', x.current_period_end,
                      'spending_cap_cents', x.spending_cap_cents, 'cancel_at_period_end', x.cancel_at_period_end,
                      'scheduled_plan_key', x.scheduled_key, 'stripe_subscription_id', x.stripe_subscription_id,
                      'created_at', x.created_at) order by x.created_at desc, x.id), '[]'::jsonb)
                      from (select u.*, p.key, p.version, p.name, p.kind, sp.key as scheduled_key
                              from public.user_plans u
                              join public.plans p on p.id = u.plan_id
                              left join public.plans sp on sp.id = u.scheduled_plan_id
                             where u.status <> 'ended' and (p_plan_key is null or p.key = p_plan_key)
                             order by u.created_at desc, u.id
                             limit p_limit offset p_offset) x));
end
$$;

-- Monthly recurring revenue per currency (never summed across currencies): the monthly fees of active
-- subscriptions, plus the postpaid usage of each current user plan's last complete period (its lines, each
-- rounded once).
create function public.get_mrr(p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  return pg_catalog.jsonb_build_object('generated_at', v_now, 'currencies', (
    with current_plans as (
      select u.id, u.status, u.current_period_start, p.currency, p.monthly_fee_cents
        from public.user_plans u join public.plans p on p.id = u.plan_id
       where u.status in ('active', 'suspended')
    ), last_period as (
      select cp.id, cp.currency,
             (select max(c.period_start) from public.usage_charges c
               where c.user_plan_id = cp.id and c.period_start < cp.current_period_start) as period_start
        from current_plans cp
    ), usage_lines as (
      select c.currency, c.user_plan_id, billing_private.round_line(sum(c.amount_exact)) as cents
        from last_period lp
        join public.usage_charges c on c.user_plan_id = lp.id and c.period_start = lp.period_start
       group by c.currency, c.user_plan_id, c.period_start, c.plan_id
    ), fees as (
      select cp.currency, count(*) as subscriptions, sum(cp.monthly_fee_cents) as cents
        from current_plans cp where cp.status = 'active' and cp.monthly_fee_cents > 0
       group by cp.currency
    ), usage as (
      select l.currency, count(distinct l.user_plan_id) as users, sum(l.cents) as cents from usage_lines l group by l.currency
    )
    select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'currency', k.currency,
             'subscriptions', coalesce(f.subscriptions, 0),
             'subscription_fees_cents', coalesce(f.cents, 0)::bigint,
             'usage_users', coalesce(u.users, 0),
             'usage_last_period_cents', coalesce(u.cents, 0)::bigint,
             'mrr_cents', (coalesce(f.cents, 0) + coalesce(u.cents, 0))::bigint) order by k.currency), '[]'::jsonb)
      from (select f.currency from fees f union select u.currency from usage u) k
      left join fees f on f.currency = k.currency
      left join usage u on u.currency = k.currency));
end
$$;

-- The window of the last p_days UTC days (today included), as 004's reports count them.
create function billing_private.report_since(p_days integer, p_now timestamptz) returns timestamptz
  language plpgsql immutable
as $$
begin
  perform billing_private.require_days(p_days);
  return (((p_now at time zone 'UTC')::date - (p_days - 1))::timestamp) at time zone 'UTC';
end
$$;

-- Usage per plan version over the window, by when it was charged: postpaid seconds and money per currency
-- (lines of (user plan, period, plan version) within the window, each rounded once), and the prepaid seconds
-- paid by cards.
create function public.get_usage_by_plan(p_days integer default 30, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_since timestamptz := billing_private.report_since(p_days, v_now);
begin
  return pg_catalog.jsonb_build_object('days', p_days, 'since', v_since, 'until', v_now,
    'plans', (
      with lines as (
        select c.plan_id, c.user_plan_id, c.user_id, count(distinct c.session_id) as calls,
               sum(c.included_seconds) as included_seconds, sum(c.rated_seconds) as rated_seconds,
               sum(c.amount_exact) as exact
          from public.usage_charges c
         where c.created_at >= v_since and c.created_at <= v_now
         group by c.plan_id, c.user_plan_id, c.user_id, c.period_start
      )
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'plan_key', p.key, 'plan_version', p.version, 'kind', p.kind, 'currency', p.currency,
               'users', g.users, 'calls', g.calls, 'included_seconds', g.included_seconds, 'rated_seconds', g.rated_seconds,
               'amount_exact_cents', pg_catalog.round(g.exact, 4), 'amount_cents', g.cents)
               order by p.sort_order, p.key, p.version), '[]'::jsonb)
        from (select l.plan_id, count(distinct l.user_id) as users, sum(l.calls)::bigint as calls,
                     sum(l.included_seconds)::bigint as included_seconds, sum(l.rated_seconds)::bigint as rated_seconds,
                     sum(l.exact) as exact, sum(billing_private.round_line(l.exact))::bigint as cents
                from lines l group by l.plan_id) g
        join public.plans p on p.id = g.plan_id),
    'prepaid', (select pg_catalog.jsonb_build_object('users', count(distinct l.user_id), 'calls', count(distinct l.session_id),
                  'card_seconds', coalesce(sum(-l.seconds), 0))
                  from public.ledger_entries l
                 where l.kind = 'usage' and l.created_at >= v_since and l.created_at <= v_now));
end
$$;

-- Calls per agent (voice_sessions.agent_name) started in the window: calls, users, billed seconds, and what
-- of them the plans charged (exact, per currency: an agent's calls are not invoice lines).
create function public.get_usage_by_agent(p_days integer default 30, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_since timestamptz := billing_private.report_since(p_days, v_now);
begin
  return pg_catalog.jsonb_build_object('days', p_days, 'since', v_since, 'until', v_now,
    'agents', (
      with calls as (
        select s.id, s.user_id, s.agent_name, s.billed_seconds from public.voice_sessions s
         where s.started_at >= v_since and s.started_at <= v_now
      )
      select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
               'agent_name', a.agent_name, 'calls', a.calls, 'users', a.users, 'seconds', a.seconds,
               'included_seconds', coalesce(m.included_seconds, 0), 'rated_seconds', coalesce(m.rated_seconds, 0),
               'plan_amounts', coalesce(m.amounts, '[]'::jsonb))
               order by a.seconds desc, a.agent_name), '[]'::jsonb)
        from (select c.agent_name, count(*) as calls, count(distinct c.user_id) as users,
                     coalesce(sum(c.billed_seconds), 0)::bigint as seconds
                from calls c group by c.agent_name) a
        left join (select x.agent_name, sum(x.included_seconds)::bigint as included_seconds,
                          sum(x.rated_seconds)::bigint as rated_seconds,
                          pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('currency', x.currency,
                            'amount_exact_cents', pg_catalog.round(x.exact, 4)) order by x.currency) as amounts
                     from (select c.agent_name, u.currency, sum(u.included_seconds) as included_seconds,
                                  sum(u.rated_seconds) as rated_seconds, sum(u.amount_exact) as exact
                             from calls c join public.usage_charges u on u.session_id = c.id
                            group by c.agent_name, u.currency) x
                    group by x.agent_name) m on m.agent_name = a.agent_name));
end
$$;

-- Stripe's invoices of postpaid users: 'outstanding' (draft or open), 'failed' (a payment failed and it is
-- not paid or void), 'paid', 'void', 'uncollectible' or 'all'; newest first, with totals per currency.
create function public.list_stripe_invoices(p_status text default 'outstanding', p_limit integer default 100)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_status text := coalesce(p_status, 'outstanding');
begin
  perform billing_private.require_limit(p_limit, 1000);
  if v_status not in ('outstanding', 'failed', 'paid', 'void', 'uncollectible', 'all') then
    perform billing_private.fail('invalid_argument',
      'an invoice status is outstanding, failed, paid, void, uncollectible or all');
  end if;
  return (
    with chosen as (
      select i.* from public.stripe_invoices i
       where case v_status
               when 'outstanding' then i.status in ('draft', 'open')
               when 'failed' then i.payment_failed and i.status in ('open', 'uncollectible')
               when 'all' then true
               else i.status = v_status end
    )
    select pg_catalog.jsonb_build_object(
      'status', v_status,
      'totals', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('currency', t.currency,
                   'invoices', t.n, 'total_cents', t.total, 'amount_due_cents', t.due, 'amount_paid_cents', t.paid)
                   order by t.currency), '[]'::jsonb)
                   from (select c.currency, count(*) as n, sum(c.total_cents)::bigint as total,
                                sum(c.amount_due_cents)::bigint as due, sum(c.amount_paid_cents)::bigint as paid
                           from chosen c group by c.currency) t),
      'invoices', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                     'invoice_id', c.invoice_id, 'user_id', c.user_id, 'user_plan_id', c.user_plan_id,
                     'stripe_subscription_id', c.stripe_subscription_id, 'status', c.status,
                     'payment_failed', c.payment_failed, 'currency', c.currency, 'total_cents', c.total_cents,
                     'amount_due_cents', c.amount_due_cents, 'amount_paid_cents', c.amount_paid_cents,
                     'hosted_invoice_url', c.hosted_invoice_url, 'period_start', c.period_start, 'period_end', c.period_end,
                     'created_at', c.created_at, 'updated_at', c.updated_at)
                     order by c.created_at desc, c.invoice_id), '[]'::jsonb)
                     from (select * from chosen x order by x.created_at desc, x.invoice_id limit p_limit) c)));
end
$$;

-- Where our period totals and Stripe's meter event summaries disagree (the reconciliation job's findings):
-- unresolved ones, or all with p_include_resolved; newest first.
create function public.list_meter_drift(p_include_resolved boolean default false, p_limit integer default 100)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  perform billing_private.require_limit(p_limit, 1000);
  return pg_catalog.jsonb_build_object(
    'unresolved', (select count(*) from public.meter_drift d where d.resolved_at is null),
    'drift', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'id', x.id, 'user_id', x.user_id, 'user_plan_id', x.user_plan_id, 'plan_key', x.key,
                'plan_version', x.version, 'period_start', x.period_start, 'period_end', x.period_end,
                'our_seconds', x.our_seconds, 'stripe_seconds', x.stripe_seconds,
                'difference_seconds', x.our_seconds - x.stripe_seconds,
                'checked_at', x.checked_at, 'resolved_at', x.resolved_at) order by x.checked_at desc, x.id desc), '[]'::jsonb)
                from (select d.*, u.user_id, p.key, p.version
                        from public.meter_drift d
                        join public.user_plans u on u.id = d.user_plan_id
                        join public.plans p on p.id = u.plan_id
                       where d.resolved_at is null or coalesce(p_include_resolved, false)
                       order by d.checked_at desc, d.id desc
                       limit p_limit) x));
end
$$;

-- ---------- privileges ----------
revoke all on public.user_plan_changes from public, anon, authenticated, service_role;
-- Written only by 020's trigger (as the owner of user_plans' changes: the subscription webhook functions).
grant select on public.user_plan_changes to service_role;

revoke all on all functions in schema billing_private from public;

select billing_private.grant_to_service_only(
    'public.create_plan(jsonb, timestamptz)',
    'public.revise_plan(text, jsonb, timestamptz)',
    'public.retire_plan(text, timestamptz)',
    'public.list_plans(boolean)',
    'public.get_usage_current(uuid, timestamptz)',
    'public.get_usage_history(uuid, text, timestamptz)',
    'public.set_spending_cap(uuid, integer, timestamptz)',
    'public.list_plan_subscribers(text, integer, integer)',
    'public.get_mrr(timestamptz)',
    'public.get_usage_by_plan(integer, timestamptz)',
    'public.get_usage_by_agent(integer, timestamptz)',
    'public.list_stripe_invoices(text, integer)',
    'public.list_meter_drift(boolean, integer)'
);

-- Delivery of the meter event outbox (public.meter_event_outbox, migration 016) to Stripe, and the
-- reconciliation of our period totals with Stripe's meter event summaries (public.meter_drift).
--
-- A sender claims due rows under a lease (FOR UPDATE SKIP LOCKED: several sidecars share the work), posts each
-- as a meter event whose identifier is the row's identifier, and reports the batch. Stripe dedupes on the
-- identifier, so a row delivered by a sender that died before it reported is refused the second time with
-- "An event already exists with identifier …", which the sender counts as delivered: nothing is counted
-- twice. A row is never deleted and never given up: a failure only moves its next attempt back (5 s doubling
-- to an hour), and a lease abandoned by a dead sender ends, so every row is delivered in the end.

-- The reconciliation counts a customer's events in a time window (and the sender's claim uses the due index
-- of migration 016).
create index meter_event_outbox_customer_idx on public.meter_event_outbox (stripe_customer_id, occurred_at);

-- The backoff after the n-th failed attempt: 5 s, 10 s, 20 s, … at most an hour.
create function billing_private.meter_event_retry_seconds(p_attempts integer) returns integer
  language sql immutable set search_path = ''
as $$
  select least(3600, 5 * (2::bigint ^ least(greatest(p_attempts - 1, 0), 20))::bigint)::integer
$$;

-- Claims up to p_limit due rows (no lease held, next attempt reached) for p_lease_seconds on behalf of
-- p_owner. The claim also moves next_attempt_at to the lease's end, so the due index alone finds what is
-- claimable and a lease a dead sender abandoned makes its rows due again by itself.
create function public.claim_meter_events(
  p_limit integer, p_lease_seconds integer, p_owner text, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_claimed jsonb;
begin
  perform billing_private.require_limit(p_limit, 5000);
  if p_lease_seconds is null or p_lease_seconds not between 1 and 86400 then
    perform billing_private.fail('invalid_argument', 'lease must be between 1 and 86400 seconds');
  end if;
  if p_owner is null or length(p_owner) not between 1 and 200 then
    perform billing_private.fail('invalid_argument', 'owner must be 1 to 200 characters');
  end if;
  with due as (
    select o.usage_charge_id from public.meter_event_outbox o
     where o.delivered_at is null and o.next_attempt_at <= v_now
       and (o.leased_until is null or o.leased_until <= v_now)
     order by o.next_attempt_at, o.usage_charge_id
     limit p_limit
       for update skip locked
  ), claimed as (
    update public.meter_event_outbox o
       set lease_owner = p_owner,
           leased_until = v_now + pg_catalog.make_interval(secs => p_lease_seconds),
           next_attempt_at = v_now + pg_catalog.make_interval(secs => p_lease_seconds)
      from due where o.usage_charge_id = due.usage_charge_id
    returning o.usage_charge_id, o.identifier, o.event_name, o.stripe_customer_id, o.value_seconds,
              floor(extract(epoch from o.occurred_at))::bigint as timestamp, o.attempts
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(claimed) order by claimed.usage_charge_id), '[]'::jsonb)
    into v_claimed from claimed;
  return v_claimed;
end
$$;

-- Reports a sender's batch: [{"identifier": …, "delivered": true} | {"identifier": …, "delivered": false,
-- "error": …}, …]. Delivered is a fact whoever reports it (even after the lease passed to another sender: the
-- event is in Stripe). A failure counts only while the reporter still holds the row's lease, so a late report
-- of a sender whose lease ran out cannot push back a row another sender is delivering now.
create function public.report_meter_events(p_results jsonb, p_owner text default null, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_delivered integer;
  v_failed integer;
  v_total integer;
begin
  if p_results is null or pg_catalog.jsonb_typeof(p_results) <> 'array' then
    perform billing_private.fail('invalid_argument', 'results must be a JSON array');
  end if;
  if exists (select 1 from pg_catalog.jsonb_array_elements(p_results) r
              where pg_catalog.jsonb_typeof(r -> 'identifier') is distinct from 'string'
                 or pg_catalog.jsonb_typeof(r -> 'delivered') is distinct from 'boolean') then
    perform billing_private.fail('invalid_argument', 'each result needs an identifier (string) and delivered (boolean)');
  end if;
  v_total := pg_catalog.jsonb_array_length(p_results);

  with results as (
    select distinct on (r ->> 'identifier') r ->> 'identifier' as identifier, (r ->> 'delivered')::boolean as delivered,
           left(r ->> 'error', 1000) as error
      from pg_catalog.jsonb_array_elements(p_results) r
     order by r ->> 'identifier', (r ->> 'delivered')::boolean desc
  ), delivered as (
    update public.meter_event_outbox o
       set delivered_at = v_now, lease_owner = null, leased_until = null, last_error = null
      from results r
     where r.delivered and o.identifier = r.identifier and o.delivered_at is null
    returning 1
  ), failed as (
    update public.meter_event_outbox o
       set attempts = o.attempts + 1,
           next_attempt_at = v_now + pg_catalog.make_interval(secs => billing_private.meter_event_retry_seconds(o.attempts + 1)),
           lease_owner = null, leased_until = null,
           last_error = coalesce(r.error, 'unknown error')
      from results r
     where not r.delivered and o.identifier = r.identifier and o.delivered_at is null
       and (p_owner is null or o.lease_owner = p_owner)
    returning 1
  )
  select (select count(*) from delivered), (select count(*) from failed) into v_delivered, v_failed;

  return pg_catalog.jsonb_build_object('delivered', v_delivered, 'failed', v_failed,
    'ignored', v_total - v_delivered - v_failed);
end
$$;

-- What the outbox holds now, for /metrics and the bench.
create function public.meter_outbox_stats(p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  return (select pg_catalog.jsonb_build_object(
      'pending', count(*) filter (where o.delivered_at is null),
      'leased', count(*) filter (where o.delivered_at is null and o.leased_until > v_now),
      'retrying', count(*) filter (where o.delivered_at is null and o.attempts > 0),
      'delivered', count(*) filter (where o.delivered_at is not null),
      'oldest_pending_seconds', coalesce(floor(extract(epoch from v_now - min(o.occurred_at) filter (where o.delivered_at is null)))::bigint, 0),
      'drift_open', (select count(*) from public.meter_drift d where d.resolved_at is null))
    from public.meter_event_outbox o);
end
$$;

-- ---------- reconciliation ----------
--
-- The periods of each user plan, each with the window Stripe is asked about. Stripe's event summaries take
-- start and end times on whole minutes while Stripe's periods start on any second, so the window is the
-- period widened to whole minutes, and our side is counted over the same window: the meter events of the
-- plan's Stripe customer whose timestamp (occurred_at) falls in it, i.e. exactly what Stripe was sent for it.
-- A period is offered only when it is settled on our side: every outbox row in its window is delivered, and
-- the last delivery is p_settle_seconds old (Stripe aggregates meter events asynchronously; undelivered or
-- not yet aggregated events would look like drift).
create function public.meter_reconciliation_periods(
  p_settle_seconds integer default 300, p_lookback_days integer default 40, p_limit integer default 500,
  p_now timestamptz default null
) returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_periods jsonb;
begin
  if p_settle_seconds is null or p_settle_seconds not between 0 and 86400 then
    perform billing_private.fail('invalid_argument', 'settle_seconds must be between 0 and 86400');
  end if;
  if p_lookback_days is null or p_lookback_days not between 1 and 400 then
    perform billing_private.fail('invalid_argument', 'lookback_days must be between 1 and 400');
  end if;
  perform billing_private.require_limit(p_limit, 10000);

  with starts as (
    -- Each period a plan had usage in, and its current one.
    select distinct uc.user_plan_id, uc.period_start
      from public.usage_charges uc
     where uc.period_start > v_now - pg_catalog.make_interval(days => p_lookback_days + 45)
    union
    select up.id, up.current_period_start
      from public.user_plans up
     where up.current_period_start is not null and up.status <> 'pending'
  ), periods as (
    select s.user_plan_id, s.period_start,
           -- A past period ends where the plan's next known period starts (Stripe's periods follow each other).
           case when s.period_start = up.current_period_start then up.current_period_end
                else least(up.current_period_start, (select min(uc.period_start) from public.usage_charges uc
                                                      where uc.user_plan_id = s.user_plan_id and uc.period_start > s.period_start))
           end as period_end,
           coalesce((select o.stripe_customer_id from public.usage_charges uc
                       join public.meter_event_outbox o on o.usage_charge_id = uc.id
                      where uc.user_plan_id = s.user_plan_id order by uc.id desc limit 1),
                    (select c.customer_id from public.stripe_customers c where c.user_id = up.user_id)) as customer
      from starts s
      join public.user_plans up on up.id = s.user_plan_id
  ), windows as (
    select p.*,
           pg_catalog.to_timestamp(floor(extract(epoch from p.period_start) / 60) * 60) as window_start,
           pg_catalog.to_timestamp(ceil(extract(epoch from least(p.period_end, v_now)) / 60) * 60) as window_end
      from periods p
     where p.period_end is not null and p.customer is not null and p.period_start < v_now
       and p.period_end > v_now - pg_catalog.make_interval(days => p_lookback_days)
  ), counted as (
    select w.*, agg.seconds, agg.undelivered, agg.last_delivered
      from windows w
      cross join lateral (
        select coalesce(sum(uc.included_seconds + uc.rated_seconds), 0)::bigint as seconds,
               count(*) filter (where o.delivered_at is null) as undelivered,
               max(o.delivered_at) as last_delivered
          from public.meter_event_outbox o
          join public.usage_charges uc on uc.id = o.usage_charge_id
         where o.stripe_customer_id = w.customer
           and o.occurred_at >= w.window_start and o.occurred_at < w.window_end
      ) agg
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'user_plan_id', c.user_plan_id, 'period_start', c.period_start, 'period_end', c.period_end,
           'stripe_customer_id', c.customer,
           'window_start', extract(epoch from c.window_start)::bigint, 'window_end', extract(epoch from c.window_end)::bigint,
           'our_seconds', c.seconds) order by c.user_plan_id, c.period_start), '[]'::jsonb)
    into v_periods
    from (select * from counted c
           where c.undelivered = 0
             and (c.last_delivered is null or c.last_delivered <= v_now - pg_catalog.make_interval(secs => p_settle_seconds))
           order by c.user_plan_id, c.period_start
           limit p_limit) c;
  return v_periods;
end
$$;

-- Records what Stripe's summaries said for periods meter_reconciliation_periods offered:
-- [{"user_plan_id", "period_start", "period_end", "window_start", "window_end", "stripe_customer_id",
--   "our_seconds", "stripe_seconds"}, …]. Our side is counted again here; a period whose count moved since it
-- was offered (a call went on meanwhile) is skipped until the next run. A difference opens (or updates) the
-- period's drift row; agreement resolves an open one. Returns the periods in drift and how many were resolved.
create function public.record_meter_reconciliation(p_results jsonb, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_result jsonb;
  v_drift jsonb := '[]'::jsonb;
  v_resolved integer := 0;
  v_skipped integer := 0;
  v_checked integer := 0;
  v_ours bigint;
  v_upid uuid;
  v_start timestamptz;
  v_end timestamptz;
  v_stripe bigint;
  v_row public.meter_drift;
begin
  if p_results is null or pg_catalog.jsonb_typeof(p_results) <> 'array' then
    perform billing_private.fail('invalid_argument', 'results must be a JSON array');
  end if;
  for v_result in select r from pg_catalog.jsonb_array_elements(p_results) r loop
    begin
      v_upid := (v_result ->> 'user_plan_id')::uuid;
      v_start := (v_result ->> 'period_start')::timestamptz;
      v_end := (v_result ->> 'period_end')::timestamptz;
      v_stripe := (v_result ->> 'stripe_seconds')::bigint;
    exception when others then
      perform billing_private.fail('invalid_argument', 'each result needs user_plan_id, period_start, period_end and stripe_seconds');
    end;
    if v_upid is null or v_start is null or v_end is null or v_stripe is null or v_stripe < 0
       or (v_result ->> 'stripe_customer_id') is null or (v_result ->> 'window_start') is null
       or (v_result ->> 'window_end') is null or (v_result ->> 'our_seconds') is null then
      perform billing_private.fail('invalid_argument', 'each result needs user_plan_id, period_start, period_end, window_start, window_end, stripe_customer_id, our_seconds and stripe_seconds');
    end if;

    select coalesce(sum(uc.included_seconds + uc.rated_seconds), 0)::bigint into v_ours
      from public.meter_event_outbox o
      join public.usage_charges uc on uc.id = o.usage_charge_id
     where o.stripe_customer_id = v_result ->> 'stripe_customer_id'
       and o.occurred_at >= pg_catalog.to_timestamp((v_result ->> 'window_start')::bigint)
       and o.occurred_at < pg_catalog.to_timestamp((v_result ->> 'window_end')::bigint)
       and o.delivered_at is not null;
    if v_ours <> (v_result ->> 'our_seconds')::bigint then
      v_skipped := v_skipped + 1;
      continue;
    end if;
    v_checked := v_checked + 1;

    if v_ours <> v_stripe then
      insert into public.meter_drift as d (user_plan_id, period_start, period_end, our_seconds, stripe_seconds, checked_at)
      values (v_upid, v_start, v_end, v_ours, v_stripe, v_now)
      on conflict (user_plan_id, period_start) do update
        set period_end = excluded.period_end, our_seconds = excluded.our_seconds,
            stripe_seconds = excluded.stripe_seconds, checked_at = excluded.checked_at, resolved_at = null
      returning * into v_row;
      v_drift := v_drift || pg_catalog.jsonb_build_array(pg_catalog.to_jsonb(v_row));
    else
      update public.meter_drift d
         set our_seconds = v_ours, stripe_seconds = v_stripe, checked_at = v_now, resolved_at = v_now,
             period_end = v_end
       where d.user_plan_id = v_upid and d.period_start = v_start and d.resolved_at is null;
      if found then v_resolved := v_resolved + 1; end if;
    end if;
  end loop;
  return pg_catalog.jsonb_build_object('checked', v_checked, 'skipped', v_skipped, 'resolved', v_resolved, 'drift', v_drift);
end
$$;

revoke all on function billing_private.meter_event_retry_seconds(integer) from public;

select billing_private.grant_to_service_only(
    'public.claim_meter_events(integer, integer, text, timestamptz)',
    'public.report_meter_events(jsonb, text, timestamptz)',
    'public.meter_outbox_stats(timestamptz)',
    'public.meter_reconciliation_periods(integer, integer, integer, timestamptz)',
    'public.record_meter_reconciliation(jsonb, timestamptz)'
);

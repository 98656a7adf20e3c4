-- Reports, client-run calls and tier management: what the sidecar's client and admin API call.
--
-- Same conventions as 002: SECURITY DEFINER, an empty search_path and qualified names, domain errors through
-- billing_private.fail, p_now as the billing clock. Every function here is granted to service_role alone:
-- the sidecar decides who may see what (a user their own account, an administrator everything) and calls
-- these with the service connection. The reads are STABLE: they never write.
--
-- What usage costs. A call's cost is what the seconds it used were paid for. Each usage ledger row names the
-- card its seconds came from, and a card's price per second is
--   what was paid for it (its payment's amount_cents, a gift included: the buyer paid it),
--   else, for a card granted without a payment, its tier's list price (price_cents, read when reporting),
--   else nothing (an adjustment card: a manual credit is free),
-- divided by the seconds the card granted (total_seconds). So
--   cost_cents(call) = sum over the call's usage rows of seconds x price_cents / total_seconds,
-- reported to hundredths of a cent. Bonus seconds make a bigger pack cheaper per minute, and a refund (which
-- takes back seconds in proportion to the money) leaves a card's price per second as it was. Amounts of
-- different currencies are not converted: the price list has one currency (usd).
--
-- A call counts in the month (or day) it started; its seconds are its billed seconds (what was charged:
-- whole increments, the first one up front), which always equal the seconds of its usage ledger rows.
-- Months and days are calendar months and days in UTC.

create index voice_sessions_started_idx on public.voice_sessions (started_at);

-- ---------- helpers ----------

create function billing_private.require_limit(p_limit integer, p_max integer) returns void
  language plpgsql immutable
as $$
begin
  if p_limit is null or p_limit not between 1 and p_max then
    perform billing_private.fail('invalid_argument', pg_catalog.format('limit must be between 1 and %s', p_max));
  end if;
end
$$;

create function billing_private.require_days(p_days integer) returns void
  language plpgsql immutable
as $$
begin
  if p_days is null or p_days not between 1 and 366 then
    perform billing_private.fail('invalid_argument', 'days must be between 1 and 366');
  end if;
end
$$;

-- The first instant of a UTC calendar month given as YYYY-MM.
create function billing_private.parse_month(p_month text) returns timestamptz
  language plpgsql immutable
as $$
begin
  if p_month is null or p_month !~ '^[12][0-9]{3}-(0[1-9]|1[0-2])$' then
    perform billing_private.fail('invalid_argument', 'a month is written YYYY-MM, like 2026-01');
  end if;
  return (p_month || '-01')::timestamp at time zone 'UTC';
end
$$;

create function billing_private.month_start(p_at timestamptz) returns timestamptz
  language plpgsql immutable
as $$
begin
  return pg_catalog.date_trunc('month', p_at at time zone 'UTC') at time zone 'UTC';
end
$$;

-- The id a client gave its call when it started it through the client API (external key
-- client:<user id>:<its id>), else null.
create function billing_private.client_session_id(p_user_id uuid, p_external_key text) returns text
  language plpgsql immutable
as $$
declare
  v_prefix text := 'client:' || p_user_id::text || ':';
begin
  if pg_catalog.starts_with(p_external_key, v_prefix) then
    return pg_catalog.substr(p_external_key, pg_catalog.length(v_prefix) + 1);
  end if;
  return null;
end
$$;

-- A user's calls started in [p_from, p_to), newest first, each with its cost (see the top of this file).
create function billing_private.user_sessions(p_user_id uuid, p_from timestamptz, p_to timestamptz, p_limit integer)
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
      from public.voice_sessions s
     where s.user_id = p_user_id and s.started_at >= p_from and s.started_at < p_to
     order by s.started_at desc, s.id desc
     limit p_limit;
end
$$;

create function billing_private.sessions_json(p_user_id uuid, p_from timestamptz, p_to timestamptz, p_limit integer,
  p_now timestamptz) returns jsonb
  language plpgsql stable
as $$
begin
  return (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'session_id', s.id,
             'client_session_id', billing_private.client_session_id(p_user_id, s.external_key),
             'room_name', s.room_name,
             'status', s.status,
             'started_at', s.started_at,
             'ended_at', s.ended_at,
             'end_reason', s.end_reason,
             'billed_seconds', s.billed_seconds,
             'duration_seconds', greatest(0, pg_catalog.floor(extract(epoch from coalesce(s.ended_at, p_now) - s.started_at)))::integer,
             'cost_cents', pg_catalog.round(s.cost_cents, 2))
           order by s.started_at desc, s.id desc), '[]'::jsonb)
    from billing_private.user_sessions(p_user_id, p_from, p_to, p_limit) s);
end
$$;

-- Payments that brought money in (and may have given some back): what revenue and spending count.
create function billing_private.is_paid(p_status text) returns boolean
  language plpgsql immutable
as $$
begin
  return p_status in ('succeeded', 'partially_refunded', 'refunded', 'disputed');
end
$$;

create function billing_private.payment_json(p_payment public.payments) returns jsonb
  language plpgsql immutable
as $$
begin
  return pg_catalog.jsonb_build_object(
    'payment_id', p_payment.id,
    'tier_id', p_payment.tier_id,
    'gift', p_payment.gift,
    'amount_cents', p_payment.amount_cents,
    'currency', p_payment.currency,
    'status', p_payment.status,
    'refunded_cents', p_payment.refunded_cents,
    'card_id', p_payment.card_id,
    'failure_reason', p_payment.failure_reason,
    'created_at', p_payment.created_at);
end
$$;

create function billing_private.payments_json(p_user_id uuid, p_limit integer) returns jsonb
  language plpgsql stable
as $$
begin
  return (select coalesce(pg_catalog.jsonb_agg(billing_private.payment_json(p) order by p.created_at desc, p.id desc), '[]'::jsonb)
            from (select * from public.payments x
                   where x.user_id = p_user_id
                   order by x.created_at desc, x.id desc
                   limit p_limit) p);
end
$$;

-- One month of a user's calls: {month, calls, seconds, cost_cents}.
create function billing_private.month_usage(p_user_id uuid, p_month_start timestamptz) returns jsonb
  language plpgsql stable
as $$
declare
  v_result jsonb;
begin
  select pg_catalog.jsonb_build_object(
           'month', pg_catalog.to_char(p_month_start at time zone 'UTC', 'YYYY-MM'),
           'calls', count(*),
           'seconds', coalesce(sum(s.billed_seconds), 0),
           'cost_cents', pg_catalog.round(coalesce(sum(s.cost_cents), 0), 2))
    into v_result
    from billing_private.user_sessions(p_user_id, p_month_start,
           billing_private.plus_utc(p_month_start, interval '1 month'), 2147483647) s;
  return v_result;
end
$$;

create function billing_private.tier_json(p_tier public.pricing_tiers) returns jsonb
  language plpgsql immutable
as $$
begin
  return pg_catalog.jsonb_build_object(
    'id', p_tier.id, 'name', p_tier.name, 'description', p_tier.description,
    'base_seconds', p_tier.base_seconds, 'bonus_seconds', p_tier.bonus_seconds,
    'total_seconds', p_tier.base_seconds + p_tier.bonus_seconds,
    'price_cents', p_tier.price_cents, 'currency', p_tier.currency, 'active', p_tier.active,
    'sort_order', p_tier.sort_order, 'stripe_price_id', p_tier.stripe_price_id);
end
$$;

-- The rules a tier must satisfy, each refused with its own message (the table's checks would only say
-- which constraint failed).
create function billing_private.check_tier(p_tier public.pricing_tiers) returns void
  language plpgsql immutable
as $$
begin
  if p_tier.id is null or p_tier.id !~ '^[a-z0-9][a-z0-9_]{1,39}$' then
    perform billing_private.fail('invalid_argument',
      'a tier id is 2 to 40 lower-case letters, digits or _ (not first), like starter_1h');
  end if;
  if p_tier.name is null or pg_catalog.length(pg_catalog.btrim(p_tier.name)) = 0 or pg_catalog.length(p_tier.name) > 80 then
    perform billing_private.fail('invalid_argument', 'a tier name of 1 to 80 characters is required');
  end if;
  if p_tier.description is null or pg_catalog.length(p_tier.description) > 500 then
    perform billing_private.fail('invalid_argument', 'a tier description has at most 500 characters');
  end if;
  if p_tier.base_seconds is null or p_tier.base_seconds <= 0 then
    perform billing_private.fail('invalid_argument', 'a tier must grant a positive whole number of seconds (base_seconds)');
  end if;
  if p_tier.bonus_seconds is null or p_tier.bonus_seconds < 0 then
    perform billing_private.fail('invalid_argument', 'bonus_seconds must be zero or a positive whole number');
  end if;
  if p_tier.base_seconds::bigint + p_tier.bonus_seconds > 2147483647 then
    perform billing_private.fail('invalid_argument', 'a tier grants at most 2147483647 seconds in all');
  end if;
  if p_tier.price_cents is null or p_tier.price_cents <= 0 then
    perform billing_private.fail('invalid_argument', 'a tier price must be a positive whole number of cents');
  end if;
  if p_tier.currency is null or p_tier.currency !~ '^[a-z]{3}$' then
    perform billing_private.fail('invalid_argument', 'a currency is a three-letter lower-case ISO code, like usd');
  end if;
  if p_tier.sort_order is null then
    perform billing_private.fail('invalid_argument', 'sort_order must be a whole number');
  end if;
  if p_tier.stripe_price_id is not null and pg_catalog.length(p_tier.stripe_price_id) not between 1 and 255 then
    perform billing_private.fail('invalid_argument', 'a Stripe price id has 1 to 255 characters');
  end if;
  if p_tier.active is null then
    perform billing_private.fail('invalid_argument', 'active must be true or false');
  end if;
end
$$;

-- The user's call started through the client API under this key; never someone else's.
create function billing_private.find_client_session(p_user_id uuid, p_external_key text) returns uuid
  language plpgsql stable
as $$
declare
  v_session_id uuid;
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_session_key(p_external_key);
  select s.id into v_session_id from public.voice_sessions s
   where s.external_key = p_external_key and s.user_id = p_user_id;
  if v_session_id is null then
    perform billing_private.fail('unknown_session', 'you have no call with this session id');
  end if;
  return v_session_id;
end
$$;

-- ---------- calls a client runs itself ----------

-- Ends a call the client ran itself (started with start_voice_session under its key). It is billed by the
-- server's clock and never for more than the client says it lasted: the call ends at
--   least(now, started_at + claimed seconds),
-- then end_voice_session settles it as usual (a started increment is a charged increment, the first one was
-- charged up front). Ending it again answers the settled call and charges nothing.
--
-- Nobody meters a client's call but its heartbeats, so the reaper settles one that went silent for longer
-- than its limit as abandoned, at its last heartbeat (or its start). The client's own end, arriving later, is
-- then still the call's settlement: it is charged up to the same end as above, once, and marked ended.
create function public.end_client_session(
  p_user_id uuid, p_external_key text, p_claimed_seconds integer, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_session public.voice_sessions;
  v_end timestamptz;
begin
  if p_claimed_seconds is null or p_claimed_seconds < 0 then
    perform billing_private.fail('invalid_argument', 'the duration must be zero or a positive whole number of seconds');
  end if;
  v_session := billing_private.lock_session(billing_private.find_client_session(p_user_id, p_external_key));
  v_end := least(v_now, v_session.started_at + pg_catalog.make_interval(secs => p_claimed_seconds));
  if v_session.status = 'abandoned' and v_session.end_reason = 'worker_silent' then
    return billing_private.charge_session(v_session, v_end, v_now, 'client_ended');
  end if;
  return public.end_voice_session(v_session.id, 'client_ended', v_end, v_now);
end
$$;

-- A client's "still talking": charges every increment begun so far by the server's clock, like the worker's
-- meter, so a long call is paid as it goes and the answer says how far it is covered.
create function public.meter_client_session(p_user_id uuid, p_external_key text, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
begin
  return public.meter_voice_session(billing_private.find_client_session(p_user_id, p_external_key), p_now);
end
$$;

-- ---------- a user's own history ----------

create function public.get_user_sessions(p_user_id uuid, p_limit integer default 20, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_limit(p_limit, 1000);
  return billing_private.sessions_json(p_user_id, '-infinity', 'infinity', p_limit, v_now);
end
$$;

create function public.get_user_payments(p_user_id uuid, p_limit integer default 50)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_limit(p_limit, 1000);
  return billing_private.payments_json(p_user_id, p_limit);
end
$$;

-- One calendar month of the user's calls (p_month YYYY-MM; null: the month p_now is in).
create function public.get_user_monthly_usage(p_user_id uuid, p_month text default null, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  perform billing_private.require_user(p_user_id);
  return pg_catalog.jsonb_build_object('user_id', p_user_id) || billing_private.month_usage(p_user_id,
    case when p_month is null then billing_private.month_start(v_now) else billing_private.parse_month(p_month) end);
end
$$;

-- Everything about one user's use and spending: totals over all time and the last p_months months (oldest
-- first, the current one included, months without calls as zeros).
create function public.get_user_analytics(p_user_id uuid, p_months integer default 12, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_current timestamptz := billing_private.month_start(v_now);
  v_calls jsonb;
  v_money jsonb;
  v_months jsonb;
begin
  perform billing_private.require_user(p_user_id);
  if p_months is null or p_months not between 1 and 120 then
    perform billing_private.fail('invalid_argument', 'months must be between 1 and 120');
  end if;
  select pg_catalog.jsonb_build_object(
           'calls', count(*),
           'seconds_used', coalesce(sum(s.billed_seconds), 0),
           'average_call_seconds', coalesce(pg_catalog.round(avg(s.billed_seconds)), 0),
           'cost_cents', pg_catalog.round(coalesce(sum(s.cost_cents), 0), 2),
           'first_call_at', min(s.started_at),
           'last_call_at', max(s.started_at))
    into v_calls
    from billing_private.user_sessions(p_user_id, '-infinity', 'infinity', 2147483647) s;
  select pg_catalog.jsonb_build_object(
           'purchases', count(*),
           'paid_cents', coalesce(sum(p.amount_cents), 0),
           'refunded_cents', coalesce(sum(p.refunded_cents), 0),
           'spent_cents', coalesce(sum(p.amount_cents - p.refunded_cents), 0))
    into v_money
    from public.payments p
   where p.user_id = p_user_id and billing_private.is_paid(p.status);
  select pg_catalog.jsonb_agg(billing_private.month_usage(p_user_id,
           billing_private.plus_utc(v_current, pg_catalog.make_interval(months => -m))) order by m desc)
    into v_months
    from pg_catalog.generate_series(0, p_months - 1) m;
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'balance_seconds', billing_private.spendable_seconds(p_user_id, v_now),
    'totals', v_calls || v_money,
    'months', v_months);
end
$$;

-- ---------- administration: reports ----------

-- Money in over the last p_days UTC days (today included): payments that were paid (succeeded, and those
-- refunded or disputed since), gross, with what was refunded of them shown separately.
create function public.get_revenue_report(p_days integer default 30, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_today date;
  v_first date;
  v_since timestamptz;
  v_result jsonb;
begin
  perform billing_private.require_days(p_days);
  v_today := (v_now at time zone 'UTC')::date;
  v_first := v_today - (p_days - 1);
  v_since := v_first::timestamp at time zone 'UTC';
  with paid as (
    select p.tier_id, p.amount_cents, p.refunded_cents, (p.created_at at time zone 'UTC')::date as day
      from public.payments p
     where p.created_at >= v_since and p.created_at <= v_now and billing_private.is_paid(p.status)
  ), days as (
    select d.day, count(p.day) as transactions, coalesce(sum(p.amount_cents), 0) as revenue_cents,
           coalesce(sum(p.refunded_cents), 0) as refunds_cents
      from (select g::date as day from pg_catalog.generate_series(v_first::timestamp, v_today::timestamp, interval '1 day') g) d
      left join paid p on p.day = d.day
     group by d.day
  ), packages as (
    select p.tier_id, count(*) as transactions, sum(p.amount_cents) as revenue_cents, sum(p.refunded_cents) as refunds_cents
      from paid p
     group by p.tier_id
  )
  select pg_catalog.jsonb_build_object(
    'days', p_days,
    'since', v_since,
    'until', v_now,
    'total_revenue_cents', (select coalesce(sum(p.amount_cents), 0) from paid p),
    'refunds_cents', (select coalesce(sum(p.refunded_cents), 0) from paid p),
    'net_revenue_cents', (select coalesce(sum(p.amount_cents - p.refunded_cents), 0) from paid p),
    'total_transactions', (select count(*) from paid p),
    'avg_transaction_cents', (select coalesce(pg_catalog.round(avg(p.amount_cents)), 0) from paid p),
    'daily_revenue', (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'date', pg_catalog.to_char(d.day, 'YYYY-MM-DD'), 'revenue_cents', d.revenue_cents,
        'refunds_cents', d.refunds_cents, 'transactions', d.transactions) order by d.day) from days d),
    'package_stats', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'package_id', k.tier_id, 'name', t.name, 'transactions', k.transactions, 'revenue_cents', k.revenue_cents,
        'refunds_cents', k.refunds_cents) order by k.revenue_cents desc, k.tier_id), '[]'::jsonb)
        from packages k left join public.pricing_tiers t on t.id = k.tier_id))
    into v_result;
  return v_result;
end
$$;

-- Calls over the last p_days UTC days (today included), by when they started; hours from billed seconds.
create function public.get_usage_report(p_days integer default 30, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_today date;
  v_first date;
  v_since timestamptz;
  v_result jsonb;
begin
  perform billing_private.require_days(p_days);
  v_today := (v_now at time zone 'UTC')::date;
  v_first := v_today - (p_days - 1);
  v_since := v_first::timestamp at time zone 'UTC';
  with calls as (
    select s.user_id, s.billed_seconds, (s.started_at at time zone 'UTC')::date as day
      from public.voice_sessions s
     where s.started_at >= v_since and s.started_at <= v_now
  ), days as (
    select d.day, count(c.day) as sessions, count(distinct c.user_id) as active_users,
           coalesce(sum(c.billed_seconds), 0) as seconds
      from (select g::date as day from pg_catalog.generate_series(v_first::timestamp, v_today::timestamp, interval '1 day') g) d
      left join calls c on c.day = d.day
     group by d.day
  )
  select pg_catalog.jsonb_build_object(
    'days', p_days,
    'since', v_since,
    'until', v_now,
    'active_users', (select count(distinct c.user_id) from calls c),
    'total_sessions', (select count(*) from calls c),
    'total_seconds', (select coalesce(sum(c.billed_seconds), 0) from calls c),
    'total_hours_used', (select pg_catalog.round(coalesce(sum(c.billed_seconds), 0) / 3600.0, 2) from calls c),
    'avg_session_minutes', (select coalesce(pg_catalog.round(avg(c.billed_seconds) / 60.0, 2), 0) from calls c),
    'active_sessions_now', (select count(*) from public.voice_sessions s where s.status = 'active'),
    'daily_usage', (select pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
        'date', pg_catalog.to_char(d.day, 'YYYY-MM-DD'), 'sessions', d.sessions, 'active_users', d.active_users,
        'seconds', d.seconds) order by d.day) from days d))
    into v_result;
  return v_result;
end
$$;

-- Everyone billing knows of (there is no user table: a user is an id seen on a card, a call or a payment),
-- most recently active first. Reads every billing table: an administrator's page, not a hot path.
create function public.list_billing_users(p_limit integer default 50, p_offset integer default 0, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_total integer;
  v_users jsonb;
begin
  perform billing_private.require_limit(p_limit, 500);
  if p_offset is null or p_offset < 0 then
    perform billing_private.fail('invalid_argument', 'offset must be zero or more');
  end if;
  with ids as (
    select c.user_id from public.time_cards c where c.user_id is not null
    union select c.purchaser_id from public.time_cards c where c.purchaser_id is not null
    union select s.user_id from public.voice_sessions s
    union select p.user_id from public.payments p where p.user_id is not null
  ), active as (
    select i.user_id, greatest(
             (select max(l.created_at) from public.ledger_entries l where l.user_id = i.user_id),
             (select greatest(max(s.started_at), max(s.ended_at)) from public.voice_sessions s where s.user_id = i.user_id),
             (select max(p.created_at) from public.payments p where p.user_id = i.user_id)) as last_activity
      from ids i
  ), page as (
    select a.user_id, a.last_activity, count(*) over () as total
      from active a
     order by a.last_activity desc nulls last, a.user_id
     limit p_limit offset p_offset
  )
  select max(g.total),
         coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'user_id', g.user_id,
           'balance_seconds', billing_private.spendable_seconds(g.user_id, v_now),
           'active_cards', (select count(*) from public.time_cards c
                             where c.user_id = g.user_id and c.status = 'active' and c.expires_at > v_now),
           'total_cards', (select count(*) from public.time_cards c where c.user_id = g.user_id),
           'sessions', (select count(*) from public.voice_sessions s where s.user_id = g.user_id),
           'seconds_used', (select coalesce(sum(s.billed_seconds), 0) from public.voice_sessions s where s.user_id = g.user_id),
           'active_sessions', (select count(*) from public.voice_sessions s where s.user_id = g.user_id and s.status = 'active'),
           'purchases', (select count(*) from public.payments p where p.user_id = g.user_id and billing_private.is_paid(p.status)),
           'spent_cents', (select coalesce(sum(p.amount_cents - p.refunded_cents), 0) from public.payments p
                            where p.user_id = g.user_id and billing_private.is_paid(p.status)),
           'last_activity', g.last_activity)
           order by g.last_activity desc nulls last, g.user_id), '[]'::jsonb)
    into v_total, v_users
    from page g;
  -- An offset past the end has no rows to carry the count: count again.
  if v_total is null then
    select count(*) into v_total from (
      select c.user_id from public.time_cards c where c.user_id is not null
      union select c.purchaser_id from public.time_cards c where c.purchaser_id is not null
      union select s.user_id from public.voice_sessions s
      union select p.user_id from public.payments p where p.user_id is not null) ids;
  end if;
  return pg_catalog.jsonb_build_object('total_users', v_total, 'limit', p_limit, 'offset', p_offset, 'users', v_users);
end
$$;

-- One user, for support: balance, every card (owned, or bought as a gift and not yet redeemed; without
-- activation codes), recent calls, payments and the last 100 ledger rows.
create function public.get_user_report(p_user_id uuid, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  perform billing_private.require_user(p_user_id);
  if not exists (select 1 from public.time_cards c where c.user_id = p_user_id or c.purchaser_id = p_user_id)
     and not exists (select 1 from public.voice_sessions s where s.user_id = p_user_id)
     and not exists (select 1 from public.payments p where p.user_id = p_user_id) then
    perform billing_private.fail('unknown_user', pg_catalog.format('billing knows nothing of user %s', p_user_id));
  end if;
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'generated_at', v_now,
    'balance', public.get_user_time_balance(p_user_id, v_now),
    'cards', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                'card_id', c.id, 'user_id', c.user_id, 'purchaser_id', c.purchaser_id, 'tier_id', c.tier_id,
                'source', c.source, 'status', c.status, 'total_seconds', c.total_seconds,
                'remaining_seconds', c.remaining_seconds, 'activated_at', c.activated_at, 'expires_at', c.expires_at,
                'payment_id', c.payment_id, 'note', c.note, 'created_at', c.created_at)
              order by c.created_at desc, c.id), '[]'::jsonb)
                from public.time_cards c
               where c.user_id = p_user_id or (c.user_id is null and c.purchaser_id = p_user_id)),
    'sessions', billing_private.sessions_json(p_user_id, '-infinity', 'infinity', 50, v_now),
    'payments', billing_private.payments_json(p_user_id, 100),
    'ledger', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
                 'id', l.id, 'card_id', l.card_id, 'kind', l.kind, 'seconds', l.seconds,
                 'remaining_before', l.remaining_before, 'remaining_after', l.remaining_after,
                 'session_id', l.session_id, 'payment_id', l.payment_id, 'reason', l.reason, 'created_at', l.created_at)
               order by l.id desc), '[]'::jsonb)
                 from (select * from public.ledger_entries x where x.user_id = p_user_id order by x.id desc limit 100) l));
end
$$;

-- ---------- administration: the price list ----------
-- Tiers are never deleted: cards and payments reference them. A change applies to purchases from then on;
-- cards already sold keep the seconds they were granted.

-- Creates a tier, or replaces the whole definition of an existing one (an omitted field takes its default,
-- so a replaced tier is active unless p_active says otherwise). Answers {tier, created}.
create function public.upsert_pricing_tier(
  p_id text, p_name text, p_base_seconds integer, p_price_cents integer,
  p_description text default '', p_bonus_seconds integer default 0, p_currency text default 'usd',
  p_sort_order integer default 0, p_stripe_price_id text default null, p_active boolean default true,
  p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_tier public.pricing_tiers;
  v_created boolean;
begin
  v_tier.id := p_id;
  v_tier.name := p_name;
  v_tier.description := p_description;
  v_tier.base_seconds := p_base_seconds;
  v_tier.bonus_seconds := p_bonus_seconds;
  v_tier.price_cents := p_price_cents;
  v_tier.currency := p_currency;
  v_tier.sort_order := p_sort_order;
  v_tier.stripe_price_id := p_stripe_price_id;
  v_tier.active := p_active;
  perform billing_private.check_tier(v_tier);
  perform 1 from public.pricing_tiers t where t.id = p_id for update;
  v_created := not found;
  insert into public.pricing_tiers as t (id, name, description, base_seconds, bonus_seconds, price_cents, currency,
    active, sort_order, stripe_price_id, created_at, updated_at)
  values (v_tier.id, v_tier.name, v_tier.description, v_tier.base_seconds, v_tier.bonus_seconds, v_tier.price_cents,
    v_tier.currency, v_tier.active, v_tier.sort_order, v_tier.stripe_price_id, v_now, v_now)
  on conflict (id) do update set
    name = excluded.name, description = excluded.description, base_seconds = excluded.base_seconds,
    bonus_seconds = excluded.bonus_seconds, price_cents = excluded.price_cents, currency = excluded.currency,
    active = excluded.active, sort_order = excluded.sort_order, stripe_price_id = excluded.stripe_price_id,
    updated_at = v_now
  returning * into v_tier;
  return pg_catalog.jsonb_build_object('tier', billing_private.tier_json(v_tier), 'created', v_created);
end
$$;

-- Changes some fields of a tier: p_changes is an object of name, description, base_seconds, bonus_seconds,
-- price_cents, currency, sort_order, stripe_price_id (null clears it) and active.
create function public.update_pricing_tier(p_id text, p_changes jsonb, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_allowed constant text[] := array['name', 'description', 'base_seconds', 'bonus_seconds', 'price_cents', 'currency',
    'sort_order', 'stripe_price_id', 'active'];
  v_key text;
  v_type text;
  v_tier public.pricing_tiers;
begin
  if p_changes is null or pg_catalog.jsonb_typeof(p_changes) <> 'object' or p_changes = '{}'::jsonb then
    perform billing_private.fail('invalid_argument', 'tier changes must be a JSON object with at least one field');
  end if;
  for v_key in select k from pg_catalog.jsonb_object_keys(p_changes) k loop
    v_type := pg_catalog.jsonb_typeof(p_changes -> v_key);
    if v_key <> all (v_allowed) then
      perform billing_private.fail('invalid_argument', pg_catalog.format('a tier has no field %L that can be changed', v_key));
    elsif v_key in ('base_seconds', 'bonus_seconds', 'price_cents', 'sort_order')
          and (v_type <> 'number' or (p_changes ->> v_key) !~ '^-?[0-9]{1,9}$') then
      perform billing_private.fail('invalid_argument', pg_catalog.format('%s must be a whole number', v_key));
    elsif v_key in ('name', 'description', 'currency') and v_type <> 'string' then
      perform billing_private.fail('invalid_argument', pg_catalog.format('%s must be a string', v_key));
    elsif v_key = 'stripe_price_id' and v_type not in ('string', 'null') then
      perform billing_private.fail('invalid_argument', 'stripe_price_id must be a string or null');
    elsif v_key = 'active' and v_type <> 'boolean' then
      perform billing_private.fail('invalid_argument', 'active must be true or false');
    end if;
  end loop;
  select * into v_tier from public.pricing_tiers t where t.id = p_id for update;
  if not found then
    perform billing_private.fail('unknown_tier', pg_catalog.format('no pricing tier %L', p_id));
  end if;
  v_tier.name := coalesce(p_changes ->> 'name', v_tier.name);
  v_tier.description := coalesce(p_changes ->> 'description', v_tier.description);
  v_tier.base_seconds := coalesce((p_changes ->> 'base_seconds')::integer, v_tier.base_seconds);
  v_tier.bonus_seconds := coalesce((p_changes ->> 'bonus_seconds')::integer, v_tier.bonus_seconds);
  v_tier.price_cents := coalesce((p_changes ->> 'price_cents')::integer, v_tier.price_cents);
  v_tier.currency := coalesce(p_changes ->> 'currency', v_tier.currency);
  v_tier.sort_order := coalesce((p_changes ->> 'sort_order')::integer, v_tier.sort_order);
  v_tier.active := coalesce((p_changes ->> 'active')::boolean, v_tier.active);
  if p_changes ? 'stripe_price_id' then
    v_tier.stripe_price_id := p_changes ->> 'stripe_price_id';
  end if;
  perform billing_private.check_tier(v_tier);
  update public.pricing_tiers t
     set name = v_tier.name, description = v_tier.description, base_seconds = v_tier.base_seconds,
         bonus_seconds = v_tier.bonus_seconds, price_cents = v_tier.price_cents, currency = v_tier.currency,
         sort_order = v_tier.sort_order, active = v_tier.active, stripe_price_id = v_tier.stripe_price_id,
         updated_at = v_now
   where t.id = p_id
  returning * into v_tier;
  return pg_catalog.jsonb_build_object('tier', billing_private.tier_json(v_tier), 'created', false);
end
$$;

-- Takes a tier off the price list (it stays, for the cards and payments that reference it). Idempotent.
create function public.deactivate_pricing_tier(p_id text, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_tier public.pricing_tiers;
begin
  update public.pricing_tiers t
     set active = false, updated_at = case when t.active then v_now else t.updated_at end
   where t.id = p_id
  returning * into v_tier;
  if not found then
    perform billing_private.fail('unknown_tier', pg_catalog.format('no pricing tier %L', p_id));
  end if;
  return pg_catalog.jsonb_build_object('tier', billing_private.tier_json(v_tier), 'created', false);
end
$$;

-- ---------- privileges ----------
revoke all on all functions in schema billing_private from public;

select billing_private.grant_to_service_only(
    'public.end_client_session(uuid, text, integer, timestamptz)',
    'public.meter_client_session(uuid, text, timestamptz)',
    'public.get_user_sessions(uuid, integer, timestamptz)',
    'public.get_user_payments(uuid, integer)',
    'public.get_user_monthly_usage(uuid, text, timestamptz)',
    'public.get_user_analytics(uuid, integer, timestamptz)',
    'public.get_revenue_report(integer, timestamptz)',
    'public.get_usage_report(integer, timestamptz)',
    'public.list_billing_users(integer, integer, timestamptz)',
    'public.get_user_report(uuid, timestamptz)',
    'public.upsert_pricing_tier(text, text, integer, integer, text, integer, text, integer, text, boolean, timestamptz)',
    'public.update_pricing_tier(text, jsonb, timestamptz)',
    'public.deactivate_pricing_tier(text, timestamptz)'
);

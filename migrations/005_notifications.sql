-- The notification outbox: rows are written in the same transaction as what they announce (a purchase, a
-- failed payment) or by the periodic scan below (low balance, a card about to expire, a balance run out),
-- each under a dedupe key so an event is announced once. The sidecar's delivery job claims rows with
-- FOR UPDATE SKIP LOCKED (several sidecars may run), posts them, and marks them delivered.

alter table public.notifications add column dead_at timestamptz;

-- Finds what deserves a notice now. Dedupe keys make a repeated scan a no-op: a low or exhausted balance is
-- announced once per card the user last received (buying again and running low again is a new episode), an
-- expiring card once.
create function public.enqueue_balance_notifications(
  p_low_balance_seconds integer default 1800, p_expiring_within_days integer default 7, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_low integer;
  v_exhausted integer;
  v_expiring integer;
begin
  perform billing_private.require_positive_seconds(p_low_balance_seconds, 'low balance threshold');
  if p_expiring_within_days is null or p_expiring_within_days not between 1 and 365 then
    perform billing_private.fail('invalid_argument', 'expiring_within_days must be between 1 and 365');
  end if;

  with owners as (
    select c.user_id,
           coalesce(sum(c.remaining_seconds) filter (where c.status = 'active' and c.expires_at > v_now), 0)::integer as balance,
           (pg_catalog.array_agg(c.id order by c.created_at desc, c.id))[1] as latest_card
      from public.time_cards c
     where c.user_id is not null
     group by c.user_id
  ), used as (
    select o.* from owners o
     where exists (select 1 from public.ledger_entries l where l.user_id = o.user_id and l.kind = 'usage'
                     and l.card_id = o.latest_card)
        or o.balance > 0
  ), low as (
    insert into public.notifications (user_id, kind, payload, dedupe_key, created_at, available_at)
    select u.user_id, 'low_balance', pg_catalog.jsonb_build_object('remaining_seconds', u.balance,
             'remaining_minutes', u.balance / 60),
           'low_balance:' || u.user_id::text || ':' || u.latest_card::text, v_now, v_now
      from used u
     where u.balance > 0 and u.balance < p_low_balance_seconds
    on conflict (dedupe_key) do nothing
    returning 1
  ), exhausted as (
    insert into public.notifications (user_id, kind, payload, dedupe_key, created_at, available_at)
    select u.user_id, 'balance_exhausted', '{"remaining_seconds": 0}'::jsonb,
           'balance_exhausted:' || u.user_id::text || ':' || u.latest_card::text, v_now, v_now
      from used u
     where u.balance = 0
       and exists (select 1 from public.ledger_entries l where l.user_id = u.user_id and l.kind = 'usage')
    on conflict (dedupe_key) do nothing
    returning 1
  )
  select (select count(*) from low), (select count(*) from exhausted) into v_low, v_exhausted;

  with expiring as (
    insert into public.notifications (user_id, kind, payload, dedupe_key, created_at, available_at)
    select c.user_id, 'card_expiring', pg_catalog.jsonb_build_object('card_id', c.id, 'expires_at', c.expires_at,
             'remaining_seconds', c.remaining_seconds, 'remaining_minutes', c.remaining_seconds / 60),
           'card_expiring:' || c.id::text, v_now, v_now
      from public.time_cards c
     where c.status = 'active' and c.remaining_seconds > 0
       and c.expires_at > v_now and c.expires_at <= v_now + pg_catalog.make_interval(days => p_expiring_within_days)
    on conflict (dedupe_key) do nothing
    returning 1
  )
  select count(*) into v_expiring from expiring;

  return pg_catalog.jsonb_build_object('low_balance', v_low, 'balance_exhausted', v_exhausted, 'card_expiring', v_expiring);
end
$$;

-- Claims up to p_limit due notifications for p_lease_seconds: another sidecar skips them meanwhile, and if
-- this one dies before it reports back they become due again when the lease ends.
create function public.claim_notifications(p_limit integer, p_lease_seconds integer, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_claimed jsonb;
begin
  if p_limit is null or p_limit not between 1 and 1000 then
    perform billing_private.fail('invalid_argument', 'limit must be between 1 and 1000');
  end if;
  perform billing_private.require_positive_seconds(p_lease_seconds, 'lease');
  with due as (
    select n.id from public.notifications n
     where n.delivered_at is null and n.dead_at is null and n.available_at <= v_now
     order by n.available_at, n.id
     limit p_limit
       for update skip locked
  ), claimed as (
    update public.notifications n
       set available_at = v_now + pg_catalog.make_interval(secs => p_lease_seconds), attempts = n.attempts + 1
      from due where n.id = due.id
    returning n.id, n.user_id, n.kind, n.payload, n.created_at, n.attempts
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(claimed) order by claimed.created_at), '[]'::jsonb)
    into v_claimed from claimed;
  return v_claimed;
end
$$;

-- Reports a delivery: done, or failed and due again after p_retry_seconds; after p_max_attempts it is dead
-- (kept, with its last error, for an operator).
create function public.report_notification(
  p_id uuid, p_delivered boolean, p_error text default null, p_retry_seconds integer default 60,
  p_max_attempts integer default 10, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_notification public.notifications;
begin
  select * into v_notification from public.notifications n where n.id = p_id for update;
  if not found then
    perform billing_private.fail('invalid_argument', pg_catalog.format('no notification %s', p_id));
  end if;
  if v_notification.delivered_at is not null then
    return pg_catalog.jsonb_build_object('id', p_id, 'state', 'delivered');
  end if;
  if p_delivered then
    update public.notifications n set delivered_at = v_now, last_error = null where n.id = p_id;
    return pg_catalog.jsonb_build_object('id', p_id, 'state', 'delivered');
  end if;
  update public.notifications n
     set last_error = left(p_error, 1000),
         available_at = v_now + pg_catalog.make_interval(secs => greatest(p_retry_seconds, 1)),
         dead_at = case when n.attempts >= p_max_attempts then v_now end
   where n.id = p_id
  returning * into v_notification;
  return pg_catalog.jsonb_build_object('id', p_id, 'state', case when v_notification.dead_at is null then 'retrying' else 'dead' end);
end
$$;

-- Figures for /metrics, in one pass.
create function public.billing_metrics(p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
begin
  return pg_catalog.jsonb_build_object(
    'seconds_granted', (select coalesce(sum(l.seconds), 0) from public.ledger_entries l where l.kind = 'grant'),
    'seconds_charged', (select coalesce(-sum(l.seconds), 0) from public.ledger_entries l where l.kind = 'usage'),
    'active_sessions', (select count(*) from public.voice_sessions s where s.status = 'active'),
    'notifications_pending', (select count(*) from public.notifications n where n.delivered_at is null and n.dead_at is null),
    'notifications_dead', (select count(*) from public.notifications n where n.dead_at is not null));
end
$$;

select billing_private.grant_to_service_only(
    'public.enqueue_balance_notifications(integer, integer, timestamptz)',
    'public.claim_notifications(integer, integer, timestamptz)',
    'public.report_notification(uuid, boolean, text, integer, integer, timestamptz)',
    'public.billing_metrics(timestamptz)'
);

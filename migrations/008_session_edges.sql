-- The billing rules at their edges: how long a live call may go unmetered, what a call can really use when a
-- card expires during it, calls a client runs itself, and background jobs that work in bounded batches.
--
-- Same conventions as 002. Functions whose signature stays are replaced in place; those that gain a
-- parameter are dropped and created again (an overload would make calls that rely on defaults ambiguous)
-- and granted again as the originals were.

-- ---------- what a running call can really use ----------

-- How far the user's cards can pay for this call if it goes on alone from covered_until: the rule of
-- spend() and charge_session() played forward, without writing anything. Each step is charged when it
-- begins, from the cards valid at that instant, the first to expire first; a step the cards cannot fill is
-- charged in part and the call ends where that part ends. A card that expires before its seconds can be
-- charged forfeits them: those are the balance this call cannot use (expiring_unused_seconds, the last of
-- those expiries in expiring_unused_until).
--
-- "Now" is the session's last meter (every answer about a running call is written right after one), so
-- cards that had already expired then are neither balance nor forfeit. Other calls of the same user are not
-- foreseen: each meter's answer corrects the outlook.
create function billing_private.session_outlook(p_session public.voice_sessions) returns jsonb
  language plpgsql
as $$
declare
  v_increment integer := p_session.increment_seconds;
  -- The next charge happens at covered_until; its step reaches the next increment boundary (or the minimum).
  v_at timestamptz := p_session.started_at + pg_catalog.make_interval(secs => p_session.billed_seconds);
  v_size integer := greatest(p_session.minimum_seconds, p_session.increment_seconds,
    (p_session.billed_seconds / p_session.increment_seconds + 1) * p_session.increment_seconds) - p_session.billed_seconds;
  v_got integer := 0;           -- seconds already found for the step beginning at v_at
  v_left integer;
  v_take integer;
  v_steps integer;
  v_unused integer := 0;
  v_unused_until timestamptz;
  v_card record;
begin
  for v_card in
    select c.remaining_seconds, c.expires_at
      from public.time_cards c
     where c.user_id = p_session.user_id and c.status = 'active' and c.remaining_seconds > 0
       and c.expires_at > p_session.last_metered_at
     order by c.expires_at, c.created_at, c.id
  loop
    v_left := v_card.remaining_seconds;
    -- A step in progress was begun by an earlier card, valid at v_at; this one expires no sooner.
    if v_got = 0 and v_card.expires_at <= v_at then
      v_unused := v_unused + v_left;
      v_unused_until := greatest(v_unused_until, v_card.expires_at);
      continue;
    end if;
    -- Finish the step in progress, or the first one when it is shorter than an increment.
    if v_got > 0 or v_size <> v_increment then
      v_take := least(v_left, v_size - v_got);
      v_left := v_left - v_take;
      v_got := v_got + v_take;
      continue when v_got < v_size;   -- this card is empty; the next one goes on with the step
      v_at := v_at + pg_catalog.make_interval(secs => v_size);
      v_size := v_increment;
      v_got := 0;
    end if;
    -- Whole increments from this card alone, charged at v_at, v_at + increment, ... while it is valid.
    if v_card.expires_at > v_at then
      v_steps := least(v_left / v_increment,
        pg_catalog.ceil(extract(epoch from v_card.expires_at - v_at) / v_increment)::integer);
      v_at := v_at + pg_catalog.make_interval(secs => v_steps * v_increment);
      v_left := v_left - v_steps * v_increment;
    end if;
    if v_left > 0 then
      if v_card.expires_at > v_at then
        v_got := v_left;              -- less than an increment: the next card completes the step
      else
        v_unused := v_unused + v_left;
        v_unused_until := greatest(v_unused_until, v_card.expires_at);
      end if;
    end if;
  end loop;
  return pg_catalog.jsonb_build_object(
    'payable_until', v_at + pg_catalog.make_interval(secs => v_got),
    'expiring_unused_seconds', v_unused,
    'expiring_unused_until', v_unused_until);
end
$$;

-- Every answer about a session now also says until when the call can really be paid (payable_until: what the
-- controller counts down to and cuts off at) and what of the balance expires before this call can use it.
-- Volatile now: it reads the cards as the calling function has just left them.
create or replace function billing_private.session_json(
  p_session public.voice_sessions, p_charged integer, p_shortfall integer, p_remaining integer, p_replayed boolean
) returns jsonb language plpgsql volatile
as $$
declare
  v_covered timestamptz := p_session.started_at + pg_catalog.make_interval(secs => p_session.billed_seconds);
  v_outlook jsonb;
begin
  if p_session.status = 'active' then
    v_outlook := billing_private.session_outlook(p_session);
  else
    v_outlook := pg_catalog.jsonb_build_object('payable_until', v_covered, 'expiring_unused_seconds', 0,
      'expiring_unused_until', null);
  end if;
  return pg_catalog.jsonb_build_object(
    'session_id', p_session.id,
    'user_id', p_session.user_id,
    'external_key', p_session.external_key,
    'room_name', p_session.room_name,
    'status', p_session.status,
    'started_at', p_session.started_at,
    'last_metered_at', p_session.last_metered_at,
    'ended_at', p_session.ended_at,
    'end_reason', p_session.end_reason,
    'billed_seconds', p_session.billed_seconds,
    'covered_until', v_covered,
    'increment_seconds', p_session.increment_seconds,
    'charged_seconds', p_charged,
    'shortfall_seconds', p_shortfall,
    'remaining_seconds', p_remaining,
    'replayed', p_replayed) || v_outlook;
end
$$;

-- ---------- calls a client runs itself ----------

-- As in 004, with one more floor: a heartbeat proves the call was still going, so the call ends no earlier
-- than its last heartbeat, whatever duration the client claims; never past now. What the heartbeats charged
-- (each the increment it began) stays charged in any case.
create or replace function public.end_client_session(
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
  v_end := least(v_now, greatest(v_session.started_at + pg_catalog.make_interval(secs => p_claimed_seconds),
                                 v_session.last_metered_at));
  if v_session.status = 'abandoned' and v_session.end_reason = 'worker_silent' then
    return billing_private.charge_session(v_session, v_end, v_now, 'client_ended');
  end if;
  return public.end_voice_session(v_session.id, 'client_ended', v_end, v_now);
end
$$;

-- A client's "still talking" charges every increment begun so far, like the worker's meter. A heartbeat that
-- arrives past the paid time with nothing left to charge cannot be billed: nobody else will stop a call the
-- client runs, so the call is cut off here, at the last paid second, and the answer says so.
create or replace function public.meter_client_session(p_user_id uuid, p_external_key text, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_session_id uuid := billing_private.find_client_session(p_user_id, p_external_key);
  v_state jsonb := public.meter_voice_session(v_session_id, v_now);
begin
  if v_state ->> 'status' = 'active' and (v_state ->> 'covered_until')::timestamptz < v_now then
    return public.end_voice_session(v_session_id, 'balance_exhausted', (v_state ->> 'covered_until')::timestamptz, v_now);
  end if;
  return v_state;
end
$$;

-- ---------- background jobs, in bounded batches ----------
-- Each call handles at most p_limit rows in its own transaction and answers more = true when it may have
-- left some: the sidecar calls again until it says false. So a job never holds more than one batch's locks
-- (thousands of advisory locks in one transaction exhaust the server's lock table) and a meter never waits
-- for more than one batch. Rows are claimed with SKIP LOCKED and owners only try-locked, so several
-- sidecars share the work and none ever waits on another.

drop function public.reap_stale_sessions(integer, timestamptz);

-- Settles calls whose meter went silent (a crashed worker, a client gone quiet) as abandoned, at their last
-- meter, with what was already charged. A healthy call is metered once per increment (up to 3600 s), so a
-- call is stale only when no meter came within its own increment plus the allowed silence.
create function public.reap_stale_sessions(
  p_max_silence_seconds integer, p_now timestamptz default null, p_limit integer default 500
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_candidate record;
  v_seen integer := 0;
  v_reaped uuid[] := '{}';
  v_skipped integer := 0;
begin
  perform billing_private.require_positive_seconds(p_max_silence_seconds, 'maximum silence');
  if p_limit is null or p_limit not between 1 and 5000 then
    perform billing_private.fail('invalid_argument', 'limit must be between 1 and 5000');
  end if;
  for v_candidate in
    select s.id, s.user_id from public.voice_sessions s
     where s.status = 'active'
       -- The first condition follows from the second (an increment is at least 1 s) and lets the index bound the scan.
       and s.last_metered_at < v_now - pg_catalog.make_interval(secs => p_max_silence_seconds)
       and s.last_metered_at < v_now - pg_catalog.make_interval(secs => s.increment_seconds + p_max_silence_seconds)
     order by s.last_metered_at, s.id
     limit p_limit
       for update skip locked
  loop
    v_seen := v_seen + 1;
    if not billing_private.try_lock_owner(v_candidate.user_id, null) then
      v_skipped := v_skipped + 1;     -- a meter of this user is running: the next batch looks again
      continue;
    end if;
    update public.voice_sessions s
       set status = 'abandoned', ended_at = s.last_metered_at, end_reason = 'worker_silent'
     where s.id = v_candidate.id and s.status = 'active';
    if found then
      v_reaped := v_reaped || v_candidate.id;
    end if;
  end loop;
  return pg_catalog.jsonb_build_object('reaped_sessions', pg_catalog.cardinality(v_reaped),
    'session_ids', pg_catalog.to_jsonb(v_reaped), 'skipped_sessions', v_skipped, 'more', v_seen = p_limit);
end
$$;

create or replace function public.expire_time_cards(p_now timestamptz default null, p_limit integer default 500)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_candidate record;
  v_card public.time_cards;
  v_seen integer := 0;
  v_expired integer := 0;
  v_forfeited integer := 0;
  v_skipped integer := 0;
begin
  if p_limit is null or p_limit not between 1 and 5000 then
    perform billing_private.fail('invalid_argument', 'limit must be between 1 and 5000');
  end if;
  for v_candidate in
    select c.id, c.user_id from public.time_cards c
     where c.status in ('active', 'pending') and c.expires_at <= v_now
     order by c.expires_at, c.id
     limit p_limit
       for update skip locked
  loop
    v_seen := v_seen + 1;
    if not billing_private.try_lock_owner(v_candidate.user_id, v_candidate.id) then
      v_skipped := v_skipped + 1;     -- busy right now: the next batch takes it
      continue;
    end if;
    select * into v_card from public.time_cards c where c.id = v_candidate.id;
    continue when v_card.status not in ('active', 'pending') or v_card.expires_at > v_now
               or v_card.user_id is distinct from v_candidate.user_id;
    v_forfeited := v_forfeited + billing_private.expire_card(v_card, 'expire:' || v_card.id::text, v_now);
    v_expired := v_expired + 1;
  end loop;
  return pg_catalog.jsonb_build_object('expired_cards', v_expired, 'forfeited_seconds', v_forfeited,
                                       'skipped_cards', v_skipped, 'more', v_seen = p_limit);
end
$$;

drop function public.enqueue_balance_notifications(integer, integer, timestamptz);

-- The scan of 005, over one batch of card owners at a time: those whose id follows p_after_user, at most
-- p_limit of them, in id order. The answer's next_user is where the next batch starts (null: done). Dedupe
-- keys still make every notice once, whoever scans and however often.
create function public.enqueue_balance_notifications(
  p_low_balance_seconds integer default 1800, p_expiring_within_days integer default 7, p_now timestamptz default null,
  p_after_user uuid default null, p_limit integer default 1000
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_users uuid[];
  v_low integer;
  v_exhausted integer;
  v_expiring integer;
begin
  perform billing_private.require_positive_seconds(p_low_balance_seconds, 'low balance threshold');
  if p_expiring_within_days is null or p_expiring_within_days not between 1 and 365 then
    perform billing_private.fail('invalid_argument', 'expiring_within_days must be between 1 and 365');
  end if;
  if p_limit is null or p_limit not between 1 and 10000 then
    perform billing_private.fail('invalid_argument', 'limit must be between 1 and 10000');
  end if;

  select coalesce(pg_catalog.array_agg(b.user_id order by b.user_id), '{}') into v_users
    from (select distinct c.user_id from public.time_cards c
           where c.user_id is not null
             and c.user_id > coalesce(p_after_user, '00000000-0000-0000-0000-000000000000'::uuid)
           order by c.user_id
           limit p_limit) b;

  with owners as (
    select c.user_id,
           coalesce(sum(c.remaining_seconds) filter (where c.status = 'active' and c.expires_at > v_now), 0)::integer as balance,
           (pg_catalog.array_agg(c.id order by c.created_at desc, c.id))[1] as latest_card
      from public.time_cards c
     where c.user_id = any (v_users)
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
     where c.user_id = any (v_users)
       and c.status = 'active' and c.remaining_seconds > 0
       and c.expires_at > v_now and c.expires_at <= v_now + pg_catalog.make_interval(days => p_expiring_within_days)
    on conflict (dedupe_key) do nothing
    returning 1
  )
  select count(*) into v_expiring from expiring;

  return pg_catalog.jsonb_build_object('low_balance', v_low, 'balance_exhausted', v_exhausted, 'card_expiring', v_expiring,
    'users_scanned', pg_catalog.cardinality(v_users),
    'next_user', case when pg_catalog.cardinality(v_users) = p_limit then v_users[p_limit] end);
end
$$;

-- ---------- privileges ----------
revoke all on all functions in schema billing_private from public;

select billing_private.grant_to_service_only(
    'public.reap_stale_sessions(integer, timestamptz, integer)',
    'public.expire_time_cards(timestamptz, integer)',
    'public.enqueue_balance_notifications(integer, integer, timestamptz, uuid, integer)',
    'public.end_client_session(uuid, text, integer, timestamptz)',
    'public.meter_client_session(uuid, text, timestamptz)'
);

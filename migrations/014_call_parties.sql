-- Who took part in a call: the agent that served it (the name it was dispatched under; 'mindbot' when the
-- starter does not say) and, when the room tells them (a phone call through LiveKit SIP), the caller's and the
-- called number. The usage API lists calls with them (seed 003: agent_name, call_from, call_to).
--
-- Same conventions as 002 and 008: start_voice_session gains parameters, so it is dropped and created again
-- (an overload would make calls that rely on defaults ambiguous) and granted again as the original was.

-- A number is what the telephony side hands over: E.164 (+18449263376), a SIP URI, a provider's call id. It is
-- shown, never dialled, so only its size and printability are checked.
alter table public.voice_sessions
  add column agent_name text not null default 'mindbot'
    constraint voice_sessions_agent_name_format check (agent_name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
  add column call_from text
    constraint voice_sessions_call_from_format check (call_from ~ '^[^[:space:][:cntrl:]]{1,128}$'),
  add column call_to text
    constraint voice_sessions_call_to_format check (call_to ~ '^[^[:space:][:cntrl:]]{1,128}$');

drop function public.start_voice_session(uuid, text, text, timestamptz);

-- As in 002, and the session remembers who took part. A repeated external key returns the session as it was
-- first started (its parties included): a retried start cannot rewrite them.
create function public.start_voice_session(
  p_user_id uuid, p_external_key text, p_room_name text, p_agent_name text default null, p_call_from text default null,
  p_call_to text default null, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_settings public.billing_settings := billing_private.settings();
  v_agent text := coalesce(p_agent_name, 'mindbot');
  v_session public.voice_sessions;
  v_active integer;
  v_due integer;
  v_spent jsonb;
  v_charged integer;
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_session_key(p_external_key);
  if p_room_name is null or pg_catalog.length(p_room_name) not between 1 and 200 then
    perform billing_private.fail('invalid_argument', 'a room name of 1 to 200 characters is required');
  end if;
  if v_agent !~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$' then
    perform billing_private.fail('invalid_argument',
      'an agent name of 1 to 64 letters, digits, _, . or -, starting with a letter or digit, is required');
  end if;
  if p_call_from !~ '^[^[:space:][:cntrl:]]{1,128}$' or p_call_to !~ '^[^[:space:][:cntrl:]]{1,128}$' then
    perform billing_private.fail('invalid_argument',
      'a calling or called number is 1 to 128 characters without spaces (like +18449263376 or sip:alice@example.com)');
  end if;
  perform billing_private.lock_user(p_user_id);

  select * into v_session from public.voice_sessions s where s.external_key = p_external_key;
  if found then
    if v_session.user_id <> p_user_id then
      perform billing_private.fail('idempotency_conflict',
        pg_catalog.format('session key %L belongs to another user', p_external_key));
    end if;
    return billing_private.session_json(v_session, 0, 0, billing_private.spendable_seconds(v_session.user_id, v_now), true);
  end if;

  select count(*) into v_active from public.voice_sessions s where s.user_id = p_user_id and s.status = 'active';
  if v_active >= v_settings.max_concurrent_sessions then
    perform billing_private.fail('too_many_sessions', pg_catalog.format(
      'you already have %s calls in progress; at most %s may run at once', v_active, v_settings.max_concurrent_sessions));
  end if;
  -- The session is written already charged for its first increment; only a partial charge updates it again.
  v_session.started_at := v_now;
  v_session.increment_seconds := v_settings.billing_increment_seconds;
  v_session.minimum_seconds := v_settings.minimum_charge_seconds;
  v_due := billing_private.session_due_seconds(v_session, v_now);
  insert into public.voice_sessions (user_id, external_key, room_name, status, started_at, last_metered_at,
    billed_seconds, increment_seconds, minimum_seconds, agent_name, call_from, call_to)
  values (p_user_id, p_external_key, p_room_name, 'active', v_now, v_now,
    v_due, v_settings.billing_increment_seconds, v_settings.minimum_charge_seconds, v_agent, p_call_from, p_call_to)
  returning * into v_session;
  v_spent := billing_private.spend(p_user_id, v_due, 'usage', 'session:' || v_session.id::text || ':0', v_now, v_session.id);
  v_charged := (v_spent ->> 'deducted_seconds')::integer;
  if v_charged = 0 then
    -- Raising rolls the new session back with it.
    perform billing_private.fail('insufficient_balance', 'no conversation time left: buy or redeem a time card to start a call');
  end if;
  if v_charged < v_due then
    update public.voice_sessions s set billed_seconds = v_charged where s.id = v_session.id returning * into v_session;
  end if;
  return billing_private.session_json(v_session, v_charged, (v_spent ->> 'shortfall_seconds')::integer,
    (v_spent ->> 'remaining_seconds')::integer, false);
end
$$;

-- Every answer about a session (008's) also names its parties.
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
    'agent_name', p_session.agent_name,
    'call_from', p_session.call_from,
    'call_to', p_session.call_to,
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

-- A user's calls (004's list) with their parties. user_sessions keeps its columns (its other readers total
-- costs); the parties are read from the session rows it names.
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
             'cost_cents', pg_catalog.round(s.cost_cents, 2))
           order by s.started_at desc, s.id desc), '[]'::jsonb)
    from billing_private.user_sessions(p_user_id, p_from, p_to, p_limit) s
    join public.voice_sessions v on v.id = s.id);
end
$$;

-- ---------- privileges ----------
revoke all on all functions in schema billing_private from public;

select billing_private.grant_to_service_only(
    'public.start_voice_session(uuid, text, text, text, text, text, timestamptz)'
);

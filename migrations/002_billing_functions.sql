-- The billing rules. This file is their only home: TypeScript calls these functions, it never re-implements
-- them.
--
-- Conventions
--  * Every public function that reads or moves balances is SECURITY DEFINER with an empty search_path and
--    fully qualified names (the price list is read with the caller's own rights).
--  * p_now is the billing clock: null means the database's now(). Only the service may set it (tests drive
--    expiry, metering and reaping with it); a user's own call that passes it is refused.
--  * Domain errors are raised as SQLSTATE P0001 with the machine-readable code in HINT; refusals of access
--    use 42501. Both roll back everything the call did.
--  * Every change of a card's remaining seconds goes through billing_private.move_seconds, which writes
--    the ledger row in the same statement group: the ledger and the cards cannot drift apart.
--  * Locks. Each user's balance is guarded by a transaction-level advisory lock on the user id, so calls
--    for one user run one at a time and calls for different users never wait on each other. An unredeemed
--    gift card is guarded by a lock on the card id instead. Order: card lock, then user lock, then row locks;
--    the background jobs only try-lock and skip what is busy. No cycle can form, so no deadlock reaches a
--    caller.

-- ---------- helpers (schema billing_private is not exposed to the API) ----------
-- The helpers are PL/pgSQL, not SQL, and carry no SET clause of their own: PL/pgSQL keeps its query plans
-- for the session, while a SQL function with a SET clause is planned again on every call (measured: a third
-- of a deduction's server time on PostgreSQL 15). Nobody but their owner may execute them, they are only
-- called from the public functions below (which fix search_path to ''), and they qualify every name.

create function billing_private.fail(p_code text, p_message text, p_sqlstate text default 'P0001')
  returns void language plpgsql
as $$
begin
  raise exception using message = p_message, errcode = p_sqlstate, hint = p_code;
end
$$;

create function billing_private.settings() returns public.billing_settings
  language plpgsql stable
as $$
declare
  v_settings public.billing_settings;
begin
  select * into v_settings from public.billing_settings s where s.id;
  return v_settings;
end
$$;

-- Calendar arithmetic in UTC: a card bought at 23:30 in New York expires on the same instant a year later
-- whatever time zone the database session happens to use.
create function billing_private.plus_utc(p_at timestamptz, p_interval interval) returns timestamptz
  language plpgsql immutable
as $$
begin
  return ((p_at at time zone 'UTC') + p_interval) at time zone 'UTC';
end
$$;

-- A user calling through the API may act only on their own account and never on the clock; the service
-- (service_role, or a direct database connection) may act for anyone.
create function billing_private.authorize_for_user(p_user_id uuid, p_now timestamptz)
  returns void language plpgsql stable
as $$
begin
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated') then
    if auth.uid() is null or auth.uid() is distinct from p_user_id then
      perform billing_private.fail('forbidden', 'you may only act on your own account', '42501');
    end if;
    if p_now is not null then
      perform billing_private.fail('forbidden', 'only the service may set the billing clock', '42501');
    end if;
  end if;
end
$$;

create function billing_private.require_user(p_user_id uuid) returns void
  language plpgsql immutable
as $$
begin
  if p_user_id is null then
    perform billing_private.fail('invalid_argument', 'a user id is required');
  end if;
end
$$;

create function billing_private.require_positive_seconds(p_seconds integer, p_what text) returns void
  language plpgsql immutable
as $$
begin
  if p_seconds is null or p_seconds <= 0 then
    perform billing_private.fail('invalid_argument',
      pg_catalog.format('%s must be a positive whole number of seconds, got %s', p_what, coalesce(p_seconds::text, 'null')));
  end if;
end
$$;

create function billing_private.require_key(p_key text) returns void
  language plpgsql immutable
as $$
begin
  if p_key is null or pg_catalog.length(p_key) not between 1 and 200 then
    perform billing_private.fail('invalid_argument', 'an idempotency key of 1 to 200 characters is required');
  end if;
end
$$;

create function billing_private.require_session_key(p_external_key text) returns void
  language plpgsql immutable
as $$
begin
  if p_external_key is null or pg_catalog.length(p_external_key) not between 1 and 400 then
    perform billing_private.fail('invalid_argument', 'a session key of 1 to 400 characters is required');
  end if;
end
$$;

create function billing_private.lock_user(p_user_id uuid) returns void
  language plpgsql
as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mindbot.user:' || p_user_id::text, 0));
end
$$;

create function billing_private.lock_card(p_card_id uuid) returns void
  language plpgsql
as $$
begin
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mindbot.card:' || p_card_id::text, 0));
end
$$;

create function billing_private.try_lock_owner(p_user_id uuid, p_card_id uuid) returns boolean
  language plpgsql
as $$
begin
  return pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtextextended(
    case when p_user_id is null then 'mindbot.card:' || p_card_id::text else 'mindbot.user:' || p_user_id::text end, 0));
end
$$;

-- Locks a card for a change: its owner's lock (or, while it is an unredeemed gift, its own), then the row.
create function billing_private.lock_card_for_change(p_card_id uuid) returns public.time_cards
  language plpgsql
as $$
declare
  v_owner uuid;
  v_card public.time_cards;
begin
  if p_card_id is null then
    perform billing_private.fail('invalid_argument', 'a card id is required');
  end if;
  select c.user_id into v_owner from public.time_cards c where c.id = p_card_id;
  if not found then
    perform billing_private.fail('unknown_card', pg_catalog.format('no time card %s', p_card_id));
  end if;
  if v_owner is null then
    perform billing_private.lock_card(p_card_id);
    -- It may have been redeemed before we got the lock; an owner, once set, never changes.
    select c.user_id into v_owner from public.time_cards c where c.id = p_card_id;
  end if;
  if v_owner is not null then
    perform billing_private.lock_user(v_owner);
  end if;
  select * into v_card from public.time_cards c where c.id = p_card_id for update;
  return v_card;
end
$$;

-- The first answer of an idempotent operation, or null. The same key with another request is an error,
-- never a silent replay of something else.
create function billing_private.replay(p_key text, p_kind text, p_request jsonb) returns jsonb
  language plpgsql stable
as $$
declare
  v_op billing_private.operations;
begin
  select * into v_op from billing_private.operations o where o.key = p_key;
  if not found then
    return null;
  end if;
  if v_op.kind <> p_kind or v_op.request <> p_request then
    perform billing_private.fail('idempotency_conflict',
      pg_catalog.format('idempotency key %L was already used for a different request', p_key));
  end if;
  return v_op.result || '{"replayed": true}'::jsonb;
end
$$;

create function billing_private.remember(p_key text, p_kind text, p_request jsonb, p_result jsonb, p_now timestamptz)
  returns jsonb language plpgsql
as $$
begin
  insert into billing_private.operations (key, kind, request, result, created_at)
  values (p_key, p_kind, p_request, p_result, p_now);
  return p_result || '{"replayed": false}'::jsonb;
end
$$;

-- The one place where a card's remaining seconds change, always together with its ledger row.
create function billing_private.move_seconds(
  p_card_id uuid, p_seconds integer, p_kind text, p_operation_key text, p_now timestamptz,
  p_session_id uuid default null, p_payment_id uuid default null, p_reason text default null
) returns integer language plpgsql
as $$
declare
  v_after integer;
  v_user uuid;
begin
  update public.time_cards c
     set remaining_seconds = c.remaining_seconds + p_seconds,
         status = case
                    when c.status = 'active' and c.remaining_seconds + p_seconds = 0 then 'exhausted'
                    when c.status = 'exhausted' and c.remaining_seconds + p_seconds > 0 then 'active'
                    else c.status
                  end,
         updated_at = p_now
   where c.id = p_card_id
  returning c.remaining_seconds, c.user_id into v_after, v_user;

  insert into public.ledger_entries (card_id, user_id, kind, seconds, remaining_before, remaining_after,
    session_id, payment_id, operation_key, idempotency_key, reason, created_at)
  values (p_card_id, v_user, p_kind, p_seconds, v_after - p_seconds, v_after,
    p_session_id, p_payment_id, p_operation_key, p_operation_key || ':' || p_card_id::text, p_reason, p_now);
  return v_after;
end
$$;

create function billing_private.spendable_seconds(p_user_id uuid, p_now timestamptz) returns integer
  language plpgsql stable
as $$
begin
  return (select coalesce(sum(c.remaining_seconds), 0)::integer
            from public.time_cards c
           where c.user_id = p_user_id and c.status = 'active' and c.expires_at > p_now);
end
$$;

-- Takes up to p_seconds from the user's spendable cards, the one that expires first first. Never below
-- zero: what cannot be covered is returned as the shortfall, with what remains. The caller holds the user's
-- lock, which every change of an owned card takes, so the rows need no row locks of their own.
create function billing_private.spend(
  p_user_id uuid, p_seconds integer, p_kind text, p_operation_key text, p_now timestamptz,
  p_session_id uuid default null, p_reason text default null
) returns jsonb language plpgsql
as $$
declare
  v_left integer := p_seconds;
  v_take integer;
  v_remaining integer := 0;
  v_card record;
  v_entries jsonb := '[]'::jsonb;
begin
  for v_card in
    select c.id, c.remaining_seconds
      from public.time_cards c
     where c.user_id = p_user_id and c.status = 'active' and c.expires_at > p_now and c.remaining_seconds > 0
     order by c.expires_at, c.created_at, c.id
  loop
    v_take := least(v_left, v_card.remaining_seconds);
    if v_take > 0 then
      perform billing_private.move_seconds(v_card.id, -v_take, p_kind, p_operation_key, p_now, p_session_id, null, p_reason);
      v_left := v_left - v_take;
      v_entries := v_entries || pg_catalog.jsonb_build_object('card_id', v_card.id, 'seconds', v_take);
    end if;
    v_remaining := v_remaining + v_card.remaining_seconds - v_take;
  end loop;
  return pg_catalog.jsonb_build_object('deducted_seconds', p_seconds - v_left, 'shortfall_seconds', v_left,
                                       'remaining_seconds', v_remaining, 'entries', v_entries);
end
$$;

-- Activation codes: 11 symbols from a cryptographic RNG plus a check symbol, over an alphabet without the
-- look-alikes 0/O/1/I/L. The check is a weighted sum modulo 31 (a prime), so any single mistyped symbol and
-- any swap of two neighbours is caught without looking the code up.
create function billing_private.code_check_symbol(p_body text) returns text
  language plpgsql immutable
as $$
declare
  v_alphabet constant text := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
  v_sum integer := 0;
begin
  for i in 1..11 loop
    v_sum := v_sum + i * (pg_catalog.strpos(v_alphabet, pg_catalog.substr(p_body, i, 1)) - 1);
  end loop;
  return pg_catalog.substr(v_alphabet, v_sum % 31 + 1, 1);
end
$$;

create function billing_private.new_activation_code() returns text
  language plpgsql volatile
as $$
declare
  v_alphabet constant text := '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
  v_body text := '';
  v_bytes bytea;
  v_byte integer;
begin
  while pg_catalog.length(v_body) < 11 loop
    -- gen_random_uuid() draws from the server's strong random source; it is core on every target.
    v_bytes := pg_catalog.uuid_send(pg_catalog.gen_random_uuid());
    for i in 0..15 loop
      continue when i in (6, 8);         -- version and variant bits are not random
      v_byte := pg_catalog.get_byte(v_bytes, i);
      continue when v_byte >= 248;       -- 248 = 8 * 31: rejecting the rest keeps every symbol equally likely
      v_body := v_body || pg_catalog.substr(v_alphabet, v_byte % 31 + 1, 1);
      exit when pg_catalog.length(v_body) = 11;
    end loop;
  end loop;
  return v_body || billing_private.code_check_symbol(v_body);
end
$$;

-- Accepts any case, spaces and dashes; raises for a code that cannot be one of ours.
create function billing_private.parse_activation_code(p_code text) returns text
  language plpgsql immutable
as $$
declare
  v_code text := pg_catalog.upper(pg_catalog.regexp_replace(coalesce(p_code, ''), '[[:space:]-]', '', 'g'));
begin
  if v_code !~ '^[2-9A-HJKMNP-Z]{12}$' then
    perform billing_private.fail('malformed_code',
      'an activation code has 12 letters and digits, like ABCD-EFGH-JK23 (no 0, O, 1, I or L)');
  end if;
  if pg_catalog.substr(v_code, 12, 1) <> billing_private.code_check_symbol(v_code) then
    perform billing_private.fail('mistyped_code', 'this activation code has a typo: please check each character');
  end if;
  return v_code;
end
$$;

create function billing_private.new_unique_activation_code() returns text
  language plpgsql volatile
as $$
declare
  v_code text;
begin
  loop
    v_code := billing_private.new_activation_code();
    exit when not exists (select 1 from public.time_cards c where c.activation_code = v_code);
  end loop;
  return v_code;
end
$$;

create function billing_private.card_json(p_card public.time_cards) returns jsonb
  language plpgsql stable
as $$
begin
  return pg_catalog.to_jsonb(p_card) - 'grant_key' - 'updated_at';
end
$$;

-- What a session owes at a moment: the first increment (or the minimum) up front, then every increment
-- that has begun.
create function billing_private.session_due_seconds(p_session public.voice_sessions, p_at timestamptz)
  returns integer language plpgsql immutable
as $$
begin
  return greatest(p_session.minimum_seconds, p_session.increment_seconds,
    (pg_catalog.ceil(extract(epoch from (p_at - p_session.started_at)) / p_session.increment_seconds)::integer
      * p_session.increment_seconds));
end
$$;

create function billing_private.session_json(
  p_session public.voice_sessions, p_charged integer, p_shortfall integer, p_remaining integer, p_replayed boolean
) returns jsonb language plpgsql immutable
as $$
begin
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
    'covered_until', p_session.started_at + pg_catalog.make_interval(secs => p_session.billed_seconds),
    'increment_seconds', p_session.increment_seconds,
    'charged_seconds', p_charged,
    'shortfall_seconds', p_shortfall,
    'remaining_seconds', p_remaining,
    'replayed', p_replayed);
end
$$;

-- Charges what the session owes up to p_at and, given an end reason, settles it in the same update. The
-- caller holds the user's lock and the session row.
create function billing_private.charge_session(
  p_session public.voice_sessions, p_at timestamptz, p_now timestamptz, p_end_reason text default null
) returns jsonb language plpgsql
as $$
declare
  v_session public.voice_sessions;
  v_owed integer := billing_private.session_due_seconds(p_session, p_at) - p_session.billed_seconds;
  v_spent jsonb;
  v_charged integer := 0;
  v_shortfall integer := 0;
  v_remaining integer;
begin
  if v_owed > 0 then
    -- billed_seconds only grows, so it makes each charge's key unique within the session.
    v_spent := billing_private.spend(p_session.user_id, v_owed, 'usage',
      'session:' || p_session.id::text || ':' || p_session.billed_seconds::text, p_now, p_session.id);
    v_charged := (v_spent ->> 'deducted_seconds')::integer;
    v_shortfall := (v_spent ->> 'shortfall_seconds')::integer;
    v_remaining := (v_spent ->> 'remaining_seconds')::integer;
  else
    v_remaining := billing_private.spendable_seconds(p_session.user_id, p_now);
  end if;
  update public.voice_sessions s
     set billed_seconds = s.billed_seconds + v_charged,
         last_metered_at = greatest(s.last_metered_at, p_now),
         status = case when p_end_reason is null then s.status
                       when p_end_reason = 'balance_exhausted' then 'cut_off' else 'ended' end,
         ended_at = case when p_end_reason is null then s.ended_at else p_at end,
         end_reason = coalesce(p_end_reason, s.end_reason)
   where s.id = p_session.id
  returning * into v_session;
  return billing_private.session_json(v_session, v_charged, v_shortfall, v_remaining, false);
end
$$;

-- Finds a session and takes its user's lock and its row.
create function billing_private.lock_session(p_session_id uuid) returns public.voice_sessions
  language plpgsql
as $$
declare
  v_user uuid;
  v_session public.voice_sessions;
begin
  if p_session_id is null then
    perform billing_private.fail('invalid_argument', 'a session id is required');
  end if;
  select s.user_id into v_user from public.voice_sessions s where s.id = p_session_id;
  if not found then
    perform billing_private.fail('unknown_session', pg_catalog.format('no voice session %s', p_session_id));
  end if;
  perform billing_private.lock_user(v_user);
  select * into v_session from public.voice_sessions s where s.id = p_session_id for update;
  return v_session;
end
$$;

-- Forfeits what is left on a card past its expiry. The caller holds the card's lock.
create function billing_private.expire_card(p_card public.time_cards, p_operation_key text, p_now timestamptz)
  returns integer language plpgsql
as $$
begin
  if p_card.remaining_seconds > 0 then
    perform billing_private.move_seconds(p_card.id, -p_card.remaining_seconds, 'expiry', p_operation_key, p_now);
  end if;
  update public.time_cards c set status = 'expired', updated_at = p_now where c.id = p_card.id;
  return p_card.remaining_seconds;
end
$$;

-- ---------- reading ----------

create function public.get_user_time_balance(p_user_id uuid, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_cards jsonb;
begin
  perform billing_private.authorize_for_user(p_user_id, p_now);
  perform billing_private.require_user(p_user_id);
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'card_id', c.id, 'tier_id', c.tier_id, 'source', c.source,
           'remaining_seconds', c.remaining_seconds, 'total_seconds', c.total_seconds,
           'activated_at', c.activated_at, 'expires_at', c.expires_at)
         order by c.expires_at, c.created_at, c.id), '[]'::jsonb)
    into v_cards
    from public.time_cards c
   where c.user_id = p_user_id and c.status = 'active' and c.expires_at > v_now;
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'total_seconds', (select coalesce(sum((e ->> 'remaining_seconds')::integer), 0) from pg_catalog.jsonb_array_elements(v_cards) e),
    'card_count', pg_catalog.jsonb_array_length(v_cards),
    'next_expiry', v_cards -> 0 -> 'expires_at',
    'cards', v_cards);
end
$$;

create function public.get_pricing_tiers(p_include_inactive boolean default false)
  returns jsonb language sql stable security invoker set search_path = ''
as $$
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'id', t.id, 'name', t.name, 'description', t.description,
           'base_seconds', t.base_seconds, 'bonus_seconds', t.bonus_seconds,
           'total_seconds', t.base_seconds + t.bonus_seconds,
           'price_cents', t.price_cents, 'currency', t.currency, 'active', t.active,
           'sort_order', t.sort_order, 'stripe_price_id', t.stripe_price_id)
         order by t.sort_order, t.id), '[]'::jsonb)
    from public.pricing_tiers t
   where t.active or p_include_inactive
$$;

-- ---------- balance movements ----------

create function public.deduct_user_time(
  p_user_id uuid, p_seconds integer, p_idempotency_key text, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_request jsonb := pg_catalog.jsonb_build_object('user_id', p_user_id, 'seconds', p_seconds);
  v_result jsonb;
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_positive_seconds(p_seconds, 'seconds to deduct');
  perform billing_private.require_key(p_idempotency_key);
  perform billing_private.lock_user(p_user_id);
  v_result := billing_private.replay(p_idempotency_key, 'deduct_user_time', v_request);
  if v_result is not null then
    return v_result;
  end if;
  v_result := billing_private.spend(p_user_id, p_seconds, 'usage', 'deduct:' || p_idempotency_key, v_now);
  if (v_result ->> 'deducted_seconds')::integer = 0
     and not exists (select 1 from public.time_cards c where c.user_id = p_user_id) then
    perform billing_private.fail('unknown_user', pg_catalog.format('user %s has no time cards', p_user_id));
  end if;
  v_result := v_result || pg_catalog.jsonb_build_object('user_id', p_user_id);
  return billing_private.remember(p_idempotency_key, 'deduct_user_time', v_request, v_result, v_now);
end
$$;

-- Creates a card for a purchase: active for the buyer, or pending with its code when it is a gift
-- (p_user_id null). Idempotent on the key and on the payment: a repeat returns the same card.
create function public.grant_time_card(
  p_user_id uuid, p_tier_id text, p_payment_id uuid, p_idempotency_key text,
  p_now timestamptz default null, p_purchaser_id uuid default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_settings public.billing_settings := billing_private.settings();
  v_tier public.pricing_tiers;
  v_card public.time_cards;
  v_card_id uuid;
begin
  perform billing_private.require_key(p_idempotency_key);
  select * into v_tier from public.pricing_tiers t where t.id = p_tier_id;
  if not found then
    perform billing_private.fail('unknown_tier', pg_catalog.format('no pricing tier %L', p_tier_id));
  end if;
  if p_payment_id is not null and not exists (select 1 from public.payments p where p.id = p_payment_id) then
    perform billing_private.fail('unknown_payment', pg_catalog.format('no payment %s', p_payment_id));
  end if;
  if p_user_id is null and p_purchaser_id is null and p_payment_id is null then
    perform billing_private.fail('invalid_argument', 'a gift card needs a purchaser or a payment');
  end if;

  -- Parallel deliveries of one purchase queue here, then find the card the first one made.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended(
    'mindbot.grant:' || coalesce(p_payment_id::text, p_idempotency_key), 0));
  -- Two lookups, each on its unique index (an OR of the two would scan the table).
  select * into v_card from public.time_cards c where c.grant_key = p_idempotency_key;
  if not found and p_payment_id is not null then
    select * into v_card from public.time_cards c where c.payment_id = p_payment_id;
  end if;
  if v_card.id is not null then
    if v_card.tier_id is distinct from p_tier_id
       or v_card.payment_id is distinct from p_payment_id
       or (p_user_id is null) <> (v_card.source = 'gift')
       or (p_user_id is not null and v_card.user_id is distinct from p_user_id) then
      perform billing_private.fail('idempotency_conflict',
        pg_catalog.format('key %L or its payment already granted a different card', p_idempotency_key));
    end if;
    return billing_private.card_json(v_card) || '{"replayed": true}'::jsonb;
  end if;

  insert into public.time_cards (user_id, purchaser_id, tier_id, source, activation_code, total_seconds,
    remaining_seconds, status, activated_at, expires_at, payment_id, grant_key, created_at, updated_at)
  values (p_user_id, coalesce(p_purchaser_id, p_user_id), p_tier_id,
    case when p_user_id is null then 'gift' else 'purchase' end,
    billing_private.new_unique_activation_code(), v_tier.base_seconds + v_tier.bonus_seconds, 0,
    case when p_user_id is null then 'pending' else 'active' end,
    case when p_user_id is null then null else v_now end,
    billing_private.plus_utc(v_now,
      case when p_user_id is null then v_settings.gift_redeem_window else v_settings.card_validity end),
    p_payment_id, p_idempotency_key, v_now, v_now)
  returning id into v_card_id;
  perform billing_private.move_seconds(v_card_id, v_tier.base_seconds + v_tier.bonus_seconds, 'grant',
    'grant:' || p_idempotency_key, v_now, null, p_payment_id);
  if p_payment_id is not null then
    update public.payments p set card_id = v_card_id, updated_at = v_now where p.id = p_payment_id;
  end if;
  select * into v_card from public.time_cards c where c.id = v_card_id;
  return billing_private.card_json(v_card) || '{"replayed": false}'::jsonb;
end
$$;

-- Redeems a gift code for a user. A malformed or mistyped code raises (and writes nothing: it reveals
-- nothing about our codes). A well-formed code that cannot be redeemed is answered {ok: false, error} rather
-- than raised, because the failed attempt must be recorded for the per-user rate limit and a raise would
-- roll that record back. The store turns the answer into a typed error.
create function public.activate_time_card(p_user_id uuid, p_code text, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_settings public.billing_settings := billing_private.settings();
  v_code text;
  v_card public.time_cards;
  v_failures integer;
  v_error text;
  v_message text;
begin
  perform billing_private.authorize_for_user(p_user_id, p_now);
  perform billing_private.require_user(p_user_id);
  v_code := billing_private.parse_activation_code(p_code);

  select * into v_card from public.time_cards c where c.activation_code = v_code;
  if found and v_card.status = 'pending' then
    perform billing_private.lock_card(v_card.id);
  end if;
  perform billing_private.lock_user(p_user_id);

  select count(*) into v_failures from billing_private.activation_failures f
   where f.user_id = p_user_id and f.created_at > v_now - v_settings.activation_failure_window;
  if v_failures >= v_settings.activation_max_failures then
    return pg_catalog.jsonb_build_object('ok', false, 'error', pg_catalog.jsonb_build_object(
      'code', 'rate_limited',
      'message', 'too many wrong activation codes: please wait a few minutes and try again'));
  end if;

  select * into v_card from public.time_cards c where c.activation_code = v_code for update;
  if not found then
    v_error := 'unknown_code';
    v_message := 'no time card has this activation code';
  elsif v_card.status = 'pending' and v_card.expires_at <= v_now or v_card.status = 'expired' then
    v_error := 'code_expired';
    v_message := pg_catalog.format('this activation code expired on %s', pg_catalog.to_char(v_card.expires_at at time zone 'UTC', 'YYYY-MM-DD'));
  elsif v_card.status = 'revoked' then
    v_error := 'code_revoked';
    v_message := 'this time card was cancelled (refunded or disputed) and can no longer be redeemed';
  elsif v_card.status <> 'pending' then
    v_error := 'code_already_used';
    v_message := case when v_card.user_id = p_user_id then 'you have already redeemed this activation code'
                      else 'this activation code has already been redeemed' end;
  else
    update public.time_cards c
       set user_id = p_user_id, status = 'active', activated_at = v_now,
           expires_at = billing_private.plus_utc(v_now, v_settings.card_validity), updated_at = v_now
     where c.id = v_card.id
    returning * into v_card;
    return pg_catalog.jsonb_build_object('ok', true, 'card', billing_private.card_json(v_card));
  end if;

  insert into billing_private.activation_failures (user_id, code_tail, error_code, created_at)
  values (p_user_id, pg_catalog.right(v_code, 4), v_error, v_now);
  return pg_catalog.jsonb_build_object('ok', false, 'error',
    pg_catalog.jsonb_build_object('code', v_error, 'message', v_message));
end
$$;

-- Takes unused seconds back from one card: a refund, a dispute (freeze), or an admin's correction.
-- p_seconds null takes everything that is left. Never below zero.
create function public.revoke_card_time(
  p_card_id uuid, p_seconds integer, p_kind text, p_idempotency_key text,
  p_reason text default null, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_request jsonb := pg_catalog.jsonb_build_object('card_id', p_card_id, 'seconds', p_seconds, 'kind', p_kind);
  v_card public.time_cards;
  v_take integer;
  v_result jsonb;
begin
  perform billing_private.require_key(p_idempotency_key);
  if p_kind is null or p_kind not in ('refund', 'revoke', 'adjustment') then
    perform billing_private.fail('invalid_argument', 'kind must be refund, revoke or adjustment');
  end if;
  if p_seconds is not null then
    perform billing_private.require_positive_seconds(p_seconds, 'seconds to take back');
  end if;
  v_card := billing_private.lock_card_for_change(p_card_id);
  v_result := billing_private.replay(p_idempotency_key, 'revoke_card_time', v_request);
  if v_result is not null then
    return v_result;
  end if;

  v_take := least(coalesce(p_seconds, v_card.remaining_seconds), v_card.remaining_seconds);
  if v_take > 0 then
    perform billing_private.move_seconds(v_card.id, -v_take, p_kind, 'revoke:' || p_idempotency_key, v_now,
      null, v_card.payment_id, p_reason);
    -- Emptied by a refund or a dispute, or an unredeemed gift emptied for any reason: nobody may use it.
    if v_take = v_card.remaining_seconds and (p_kind in ('refund', 'revoke') or v_card.status = 'pending') then
      update public.time_cards c set status = 'revoked', updated_at = v_now where c.id = v_card.id;
    end if;
  end if;
  select * into v_card from public.time_cards c where c.id = p_card_id;
  v_result := pg_catalog.jsonb_build_object('card_id', v_card.id, 'user_id', v_card.user_id,
    'revoked_seconds', v_take, 'remaining_seconds', v_card.remaining_seconds, 'status', v_card.status);
  return billing_private.remember(p_idempotency_key, 'revoke_card_time', v_request, v_result, v_now);
end
$$;

-- The inverse of one revocation (a dispute won): gives back what that revocation took, once. A card that
-- expired meanwhile forfeits the restored seconds at once, as it would have.
create function public.restore_card_time(p_card_id uuid, p_revoke_idempotency_key text, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_key text := 'restore:' || p_revoke_idempotency_key;
  v_request jsonb := pg_catalog.jsonb_build_object('card_id', p_card_id);
  v_card public.time_cards;
  v_revocation billing_private.operations;
  v_give integer;
  v_forfeited integer := 0;
  v_result jsonb;
begin
  perform billing_private.require_key(p_revoke_idempotency_key);
  v_card := billing_private.lock_card_for_change(p_card_id);
  select * into v_revocation from billing_private.operations o
   where o.key = p_revoke_idempotency_key and o.kind = 'revoke_card_time';
  if not found or v_revocation.request ->> 'card_id' <> p_card_id::text then
    perform billing_private.fail('unknown_revocation',
      pg_catalog.format('no revocation %L of card %s to restore', p_revoke_idempotency_key, p_card_id));
  end if;
  v_result := billing_private.replay(v_key, 'restore_card_time', v_request);
  if v_result is not null then
    return v_result;
  end if;

  v_give := least((v_revocation.result ->> 'revoked_seconds')::integer, v_card.total_seconds - v_card.remaining_seconds);
  if v_give > 0 then
    perform billing_private.move_seconds(v_card.id, v_give, 'restore', v_key, v_now, null, v_card.payment_id);
    update public.time_cards c
       set status = case when c.user_id is null then 'pending' else 'active' end, updated_at = v_now
     where c.id = v_card.id and c.status = 'revoked';
    select * into v_card from public.time_cards c where c.id = p_card_id;
    if v_card.expires_at <= v_now then
      v_forfeited := billing_private.expire_card(v_card, v_key || ':expiry', v_now);
    end if;
  end if;
  select * into v_card from public.time_cards c where c.id = p_card_id;
  v_result := pg_catalog.jsonb_build_object('card_id', v_card.id, 'user_id', v_card.user_id,
    'restored_seconds', v_give, 'forfeited_seconds', v_forfeited,
    'remaining_seconds', v_card.remaining_seconds, 'status', v_card.status);
  return billing_private.remember(v_key, 'restore_card_time', v_request, v_result, v_now);
end
$$;

-- A manual correction with a reason: a credit becomes a card of its own (it expires like bought time);
-- a debit is taken FIFO like usage, never below zero.
create function public.adjust_user_time(
  p_user_id uuid, p_seconds integer, p_reason text, p_idempotency_key text, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_request jsonb := pg_catalog.jsonb_build_object('user_id', p_user_id, 'seconds', p_seconds, 'reason', p_reason);
  v_card_id uuid;
  v_spent jsonb;
  v_result jsonb;
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_key(p_idempotency_key);
  if p_seconds is null or p_seconds = 0 then
    perform billing_private.fail('invalid_argument', 'an adjustment must be a non-zero whole number of seconds');
  end if;
  if p_reason is null or pg_catalog.length(pg_catalog.btrim(p_reason)) not between 3 and 500 then
    perform billing_private.fail('invalid_argument', 'an adjustment needs a reason of 3 to 500 characters');
  end if;
  perform billing_private.lock_user(p_user_id);
  v_result := billing_private.replay(p_idempotency_key, 'adjust_user_time', v_request);
  if v_result is not null then
    return v_result;
  end if;

  if p_seconds > 0 then
    insert into public.time_cards (user_id, purchaser_id, tier_id, source, activation_code, total_seconds,
      remaining_seconds, status, activated_at, expires_at, grant_key, note, created_at, updated_at)
    values (p_user_id, null, null, 'adjustment', billing_private.new_unique_activation_code(), p_seconds, 0,
      'active', v_now, billing_private.plus_utc(v_now, (billing_private.settings()).card_validity), 'adjust:' || p_idempotency_key,
      p_reason, v_now, v_now)
    returning id into v_card_id;
    perform billing_private.move_seconds(v_card_id, p_seconds, 'adjustment', 'adjust:' || p_idempotency_key,
      v_now, null, null, p_reason);
    v_spent := pg_catalog.jsonb_build_object('adjusted_seconds', p_seconds, 'shortfall_seconds', 0, 'card_id', v_card_id);
  else
    if not exists (select 1 from public.time_cards c where c.user_id = p_user_id) then
      perform billing_private.fail('unknown_user', pg_catalog.format('user %s has no time cards', p_user_id));
    end if;
    v_spent := billing_private.spend(p_user_id, -p_seconds, 'adjustment', 'adjust:' || p_idempotency_key, v_now,
      null, p_reason);
    v_spent := pg_catalog.jsonb_build_object('adjusted_seconds', -(v_spent ->> 'deducted_seconds')::integer,
      'shortfall_seconds', (v_spent ->> 'shortfall_seconds')::integer, 'card_id', null);
  end if;
  -- A statement of its own: it must see the card or the debit just written.
  v_result := v_spent || pg_catalog.jsonb_build_object('user_id', p_user_id,
    'remaining_seconds', billing_private.spendable_seconds(p_user_id, v_now));
  return billing_private.remember(p_idempotency_key, 'adjust_user_time', v_request, v_result, v_now);
end
$$;

-- ---------- metered voice sessions (billed by the server's clock, never by a client's claim) ----------

-- Starts a call and charges its first increment up front. A repeated external key returns the same session.
create function public.start_voice_session(
  p_user_id uuid, p_external_key text, p_room_name text, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_settings public.billing_settings := billing_private.settings();
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
    billed_seconds, increment_seconds, minimum_seconds)
  values (p_user_id, p_external_key, p_room_name, 'active', v_now, v_now,
    v_due, v_settings.billing_increment_seconds, v_settings.minimum_charge_seconds)
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

-- Charges every increment that has begun since the last charge. The answer says how far the call is paid
-- (covered_until) and what balance is left, so the caller knows when to warn and when to cut off.
create function public.meter_voice_session(p_session_id uuid, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_session public.voice_sessions := billing_private.lock_session(p_session_id);
begin
  if v_session.status <> 'active' then
    return billing_private.session_json(v_session, 0, 0, billing_private.spendable_seconds(v_session.user_id, v_now), true);
  end if;
  return billing_private.charge_session(v_session, v_now, v_now);
end
$$;

-- Settles a call once. p_ended_at is when the caller actually left (the worker may learn of it late); it is
-- clamped between the start and now. A reason of balance_exhausted marks the call cut_off.
create function public.end_voice_session(
  p_session_id uuid, p_reason text, p_ended_at timestamptz default null, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_session public.voice_sessions;
  v_end timestamptz;
begin
  if p_reason is null or p_reason !~ '^[a-z][a-z0-9_]{0,39}$' then
    perform billing_private.fail('invalid_argument', 'an end reason like caller_left is required');
  end if;
  v_session := billing_private.lock_session(p_session_id);
  if v_session.status <> 'active' then
    return billing_private.session_json(v_session, 0, 0, billing_private.spendable_seconds(v_session.user_id, v_now), true);
  end if;
  v_end := least(v_now, greatest(v_session.started_at, coalesce(p_ended_at, v_now)));
  return billing_private.charge_session(v_session, v_end, v_now, p_reason);
end
$$;

-- ---------- background jobs ----------

create function public.expire_time_cards(p_now timestamptz default null, p_limit integer default 1000)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_candidate record;
  v_card public.time_cards;
  v_expired integer := 0;
  v_forfeited integer := 0;
  v_skipped integer := 0;
begin
  if p_limit is null or p_limit not between 1 and 100000 then
    perform billing_private.fail('invalid_argument', 'limit must be between 1 and 100000');
  end if;
  for v_candidate in
    select c.id, c.user_id from public.time_cards c
     where c.status in ('active', 'pending') and c.expires_at <= v_now
     order by c.expires_at, c.id
     limit p_limit
  loop
    if not billing_private.try_lock_owner(v_candidate.user_id, v_candidate.id) then
      v_skipped := v_skipped + 1;     -- busy right now: the next run takes it
      continue;
    end if;
    select * into v_card from public.time_cards c where c.id = v_candidate.id for update;
    continue when v_card.status not in ('active', 'pending') or v_card.expires_at > v_now
               or v_card.user_id is distinct from v_candidate.user_id;
    v_forfeited := v_forfeited + billing_private.expire_card(v_card, 'expire:' || v_card.id::text, v_now);
    v_expired := v_expired + 1;
  end loop;
  return pg_catalog.jsonb_build_object('expired_cards', v_expired, 'forfeited_seconds', v_forfeited,
                                       'skipped_cards', v_skipped);
end
$$;

-- Settles calls whose meter went silent (a crashed worker) as abandoned, with what was already charged.
create function public.reap_stale_sessions(p_max_silence_seconds integer, p_now timestamptz default null)
  returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_candidate record;
  v_reaped uuid[] := '{}';
  v_skipped integer := 0;
begin
  perform billing_private.require_positive_seconds(p_max_silence_seconds, 'maximum silence');
  for v_candidate in
    select s.id, s.user_id from public.voice_sessions s
     where s.status = 'active' and s.last_metered_at < v_now - pg_catalog.make_interval(secs => p_max_silence_seconds)
     order by s.last_metered_at, s.id
     limit 10000
  loop
    if not billing_private.try_lock_owner(v_candidate.user_id, null) then
      v_skipped := v_skipped + 1;
      continue;
    end if;
    update public.voice_sessions s
       set status = 'abandoned', ended_at = s.last_metered_at, end_reason = 'worker_silent'
     where s.id = v_candidate.id and s.status = 'active'
       and s.last_metered_at < v_now - pg_catalog.make_interval(secs => p_max_silence_seconds);
    if found then
      v_reaped := v_reaped || v_candidate.id;
    end if;
  end loop;
  return pg_catalog.jsonb_build_object('reaped_sessions', pg_catalog.cardinality(v_reaped),
    'session_ids', pg_catalog.to_jsonb(v_reaped), 'skipped_sessions', v_skipped);
end
$$;

-- ---------- settings ----------

create function public.update_billing_settings(p_changes jsonb) returns jsonb
  language plpgsql security definer set search_path = ''
as $$
declare
  v_allowed constant text[] := array['billing_increment_seconds', 'minimum_charge_seconds', 'max_concurrent_sessions',
    'card_validity', 'gift_redeem_window', 'activation_max_failures', 'activation_failure_window'];
  v_unknown text;
  v_settings public.billing_settings;
begin
  if p_changes is null or pg_catalog.jsonb_typeof(p_changes) <> 'object' then
    perform billing_private.fail('invalid_argument', 'settings changes must be a JSON object');
  end if;
  select k into v_unknown from pg_catalog.jsonb_object_keys(p_changes) k where k <> all (v_allowed) limit 1;
  if v_unknown is not null then
    perform billing_private.fail('invalid_argument', pg_catalog.format('unknown billing setting %L', v_unknown));
  end if;
  update public.billing_settings s set
    billing_increment_seconds = coalesce((p_changes ->> 'billing_increment_seconds')::integer, s.billing_increment_seconds),
    minimum_charge_seconds    = coalesce((p_changes ->> 'minimum_charge_seconds')::integer, s.minimum_charge_seconds),
    max_concurrent_sessions   = coalesce((p_changes ->> 'max_concurrent_sessions')::integer, s.max_concurrent_sessions),
    card_validity             = coalesce((p_changes ->> 'card_validity')::interval, s.card_validity),
    gift_redeem_window        = coalesce((p_changes ->> 'gift_redeem_window')::interval, s.gift_redeem_window),
    activation_max_failures   = coalesce((p_changes ->> 'activation_max_failures')::integer, s.activation_max_failures),
    activation_failure_window = coalesce((p_changes ->> 'activation_failure_window')::interval, s.activation_failure_window),
    updated_at = pg_catalog.now()
   where s.id
  returning * into v_settings;
  return pg_catalog.to_jsonb(v_settings) - 'id';
end
$$;

-- Makes functions callable by the service role only. PostgreSQL grants EXECUTE to PUBLIC by default, so
-- that grant is revoked too, not only the API roles'.
create function billing_private.grant_to_service_only(variadic p_functions text[]) returns void
  language plpgsql
as $$
declare
  v_function text;
begin
  foreach v_function in array p_functions loop
    execute pg_catalog.format('revoke all on function %s from public, anon, authenticated', v_function);
    execute pg_catalog.format('grant execute on function %s to service_role', v_function);
  end loop;
end
$$;

-- ---------- privileges ----------
-- PostgreSQL grants EXECUTE to PUBLIC by default: revoke it, then grant each function to whom may call it.
revoke all on all functions in schema billing_private from public;

select billing_private.grant_to_service_only(
    'public.get_user_time_balance(uuid, timestamptz)',
    'public.get_pricing_tiers(boolean)',
    'public.deduct_user_time(uuid, integer, text, timestamptz)',
    'public.grant_time_card(uuid, text, uuid, text, timestamptz, uuid)',
    'public.activate_time_card(uuid, text, timestamptz)',
    'public.revoke_card_time(uuid, integer, text, text, text, timestamptz)',
    'public.restore_card_time(uuid, text, timestamptz)',
    'public.adjust_user_time(uuid, integer, text, text, timestamptz)',
    'public.start_voice_session(uuid, text, text, timestamptz)',
    'public.meter_voice_session(uuid, timestamptz)',
    'public.end_voice_session(uuid, text, timestamptz, timestamptz)',
    'public.expire_time_cards(timestamptz, integer)',
    'public.reap_stale_sessions(integer, timestamptz)',
    'public.update_billing_settings(jsonb)'
);

-- Users may read their own balance and redeem codes for themselves; anyone may read the price list.
grant execute on function public.get_user_time_balance(uuid, timestamptz), public.activate_time_card(uuid, text, timestamptz)
  to authenticated;
grant execute on function public.get_pricing_tiers(boolean) to anon, authenticated;

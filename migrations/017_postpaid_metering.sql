-- Postpaid metering: the SQL that charges a call's increments (002's charge_session, 014's start_voice_session)
-- also pays them from the user's plan, in the order docs/plans.md states: included seconds of the period,
-- then prepaid cards, then the plan's rate while the period's rated usage stays within the spending cap. Still
-- one statement per call per increment from TypeScript: everything below runs inside the functions it calls.
--
-- Same conventions as 002/008/014. Signatures stay, so the functions are replaced in place and keep their
-- grants; the helpers are owner-only like every billing_private function.

-- ---------- pricing (pure functions of the plan's tiers) ----------

-- The one rounding rule (docs/plans.md): a usage line's exact amount, half-up to integer minor units, once.
-- round(numeric) rounds half away from zero, which is half-up for amounts that are never negative.
create function billing_private.round_line(p_amount numeric) returns integer
  language sql immutable
as $$
  select pg_catalog.round(p_amount)::integer
$$;

-- The exact cost (minor units, never rounded) of p_seconds billable seconds beginning at billable position
-- p_position of the period, through the plan's graduated tiers: each second is priced by the tier it falls in.
-- PL/pgSQL rather than SQL (here and in seconds_under_cap): a SQL function that cannot be inlined is planned
-- again in every transaction that calls it, and each charge of a call calls these.
create function billing_private.tier_cost(p_plan_id uuid, p_position integer, p_seconds integer) returns numeric
  language plpgsql stable
as $$
begin
  return (select coalesce(sum(greatest(0::bigint,
             least(p_position::bigint + p_seconds, coalesce(t.up_to_seconds::bigint, 9223372036854775807))
             - greatest(p_position::bigint, t.lower)) * t.cents_per_second), 0)::numeric
    from (select r.up_to_seconds, r.cents_per_second,
                 coalesce(lag(r.up_to_seconds) over (order by r.position), 0)::bigint as lower
            from public.plan_rate_tiers r
           where r.plan_id = p_plan_id) t);
end
$$;

-- The inverse: how many billable seconds from position p_position can be rated before the line whose exact
-- amount so far is p_amount would round above p_cap_cents. round_line(x) <= cap exactly when x < cap + 0.5, so
-- the budget is cap + 0.5 - amount and the seconds must cost strictly less. Walking the tiers from the
-- position, the first tier whose end exhausts the budget decides; a free tier never limits. Unbounded (no
-- paid tier ahead) answers the largest integer. Seconds past a last tier that has an end have no price, so they
-- cannot be rated (a plan without tiers rates nothing) rather than being free.
create function billing_private.seconds_under_cap(
  p_plan_id uuid, p_position integer, p_amount numeric, p_cap_cents integer
) returns integer language plpgsql stable
as $$
begin
  return (with budget as (
    select p_cap_cents + 0.5 - p_amount as b
  ), segments as (
    select t.position, t.cents_per_second as r,
           greatest(p_position::bigint, t.lower) as s, t.up_to_seconds::bigint as e
      from (select r.position, r.up_to_seconds, r.cents_per_second,
                   coalesce(lag(r.up_to_seconds) over (order by r.position), 0)::bigint as lower
              from public.plan_rate_tiers r
             where r.plan_id = p_plan_id) t
     where t.up_to_seconds is null or t.up_to_seconds > p_position
  ), walked as (
    select g.*, coalesce(sum((g.e - g.s) * g.r) over (order by g.position
                         rows between unbounded preceding and 1 preceding), 0) as cost_before
      from segments g
  )
  select case when (select b from budget) <= 0 then 0
              else least(2147483647::bigint,
                     (select case when bool_or(r.up_to_seconds is null) then 2147483647::bigint
                                  else greatest(0, coalesce(max(r.up_to_seconds), 0)::bigint - p_position) end
                        from public.plan_rate_tiers r where r.plan_id = p_plan_id),
                     coalesce(min(
                     case when w.r > 0 and w.cost_before < (select b from budget) and (w.e is null or w.cost_before + (w.e - w.s) * w.r >= (select b from budget))
                          then (w.s - p_position) + pg_catalog.ceil(((select b from budget) - w.cost_before) / w.r)::bigint - 1
                     end), 2147483647::bigint))::integer
         end
    from walked w);
end
$$;

-- ---------- where a user's plan stands ----------

create type billing_private.plan_state as (
  user_plan_id        uuid,
  plan_id             uuid,
  kind                text,
  status              text,
  currency            text,
  period_start        timestamptz,
  period_end          timestamptz,
  cap_cents           integer,
  customer_id         text,
  suspended_reason    text,
  suspended_invoice_url text,
  -- Of the current plan version's line this period:
  included_left       integer,
  rated_seconds       integer,        -- the tier position reached
  amount_exact        numeric,
  -- The period's other lines (an earlier plan version), each rounded once: they count against the cap too.
  other_lines_cents   integer,
  other_amount_exact  numeric
);

-- The user's current postpaid plan and its period at p_now so far; null when the user has none (prepaid, cards
-- only). A plan of kind prepaid is the cards. Reads the usage charges of the period, which the user's lock guards.
-- The period is the one containing p_now, as Stripe files a meter event by its timestamp: once p_now reaches
-- current_period_end, before customer.subscription.updated has moved the row, the period is the next one, which
-- starts at current_period_end (its end is not known until Stripe says it: null). Stripe renews on the same
-- prices (a downgrade is made after the renewal), and ends a subscription cancelled at the period end there:
-- then the user has no plan (cards only).
create function billing_private.plan_state(p_user_id uuid, p_now timestamptz) returns billing_private.plan_state
  language plpgsql stable
as $$
declare
  v billing_private.plan_state;
  v_included integer;
  v_row public.user_plans;
begin
  select up.* into v_row
    from public.user_plans up
   where up.user_id = p_user_id and up.status <> 'ended';
  if not found then
    return null;
  end if;
  v.period_start := v_row.current_period_start;
  v.period_end := v_row.current_period_end;
  v.plan_id := v_row.plan_id;
  if v_row.current_period_end is not null and p_now >= v_row.current_period_end then
    if v_row.cancel_at_period_end then
      return null;
    end if;
    v.period_start := v_row.current_period_end;
    v.period_end := null;
  end if;
  select v_row.id, p.kind, v_row.status, p.currency, v_row.spending_cap_cents, sc.customer_id,
         v_row.suspended_reason, v_row.suspended_invoice_url, p.included_seconds
    into v.user_plan_id, v.kind, v.status, v.currency, v.cap_cents, v.customer_id,
         v.suspended_reason, v.suspended_invoice_url, v_included
    from public.plans p
    left join public.stripe_customers sc on sc.user_id = p_user_id
   where p.id = v.plan_id and p.kind <> 'prepaid';
  if not found then
    return null;
  end if;
  -- One pass over the period's charges (usage_charges_period_idx), a line per plan version.
  select coalesce(sum(l.included) filter (where l.plan_id = v.plan_id), 0)::integer,
         coalesce(sum(l.rated) filter (where l.plan_id = v.plan_id), 0)::integer,
         coalesce(sum(l.amount) filter (where l.plan_id = v.plan_id), 0),
         coalesce(sum(billing_private.round_line(l.amount)) filter (where l.plan_id <> v.plan_id), 0)::integer,
         coalesce(sum(l.amount) filter (where l.plan_id <> v.plan_id), 0)
    into v.included_left, v.rated_seconds, v.amount_exact, v.other_lines_cents, v.other_amount_exact
    from (select u.plan_id, sum(u.included_seconds) as included, sum(u.rated_seconds) as rated,
                 sum(u.amount_exact) as amount
            from public.usage_charges u
           where u.user_plan_id = v.user_plan_id and u.period_start = v.period_start
           group by u.plan_id) l;
  v.included_left := greatest(0, v_included - v.included_left);
  return v;
end
$$;

-- Whether the plan pays for anything now: active, in a known period, with a Stripe customer to meter to.
-- Suspended and pending plans pay nothing (cards only).
create function billing_private.plan_pays(p_state billing_private.plan_state) returns boolean
  language plpgsql immutable
as $$
begin
  return p_state.user_plan_id is not null and p_state.status = 'active' and p_state.period_start is not null
         and p_state.customer_id is not null;
end
$$;

-- The seconds the plan can still pay this period: included seconds left, then what fits under the cap at the
-- tier position reached.
create function billing_private.plan_seconds_left(p_state billing_private.plan_state) returns integer
  language plpgsql stable
as $$
begin
  if not billing_private.plan_pays(p_state) then
    return 0;
  end if;
  return least(2147483647::bigint, p_state.included_left::bigint
    + billing_private.seconds_under_cap(p_state.plan_id, p_state.rated_seconds, p_state.amount_exact,
                                        p_state.cap_cents - p_state.other_lines_cents))::integer;
end
$$;

-- ---------- paying a call's seconds ----------

-- Pays p_owed seconds of a session whose billed_seconds were p_billed_before: included seconds, then cards
-- (spend(), FIFO by expiry, as before), then the rate under the cap. One usage charge (and its meter event in
-- the outbox) when the plan paid any of it. The caller holds the user's lock, so the period's usage and the
-- cap cannot move under it. Answers as spend() does (deducted_seconds is all that was paid, remaining_seconds
-- the cards') plus what the plan paid (amount_exact as stored). p_state is plan_state(p_user_id, p_now), read
-- once by the caller under that lock, which brings it forward with plan_state_paid() instead of reading again.
create function billing_private.pay_seconds(
  p_user_id uuid, p_session_id uuid, p_billed_before integer, p_owed integer, p_now timestamptz,
  p_state billing_private.plan_state
) returns jsonb language plpgsql
as $$
declare
  v_state billing_private.plan_state := p_state;
  v_pays boolean := billing_private.plan_pays(v_state);
  v_included integer := 0;
  v_rated integer := 0;
  v_amount numeric := 0;
  v_spent jsonb;
  v_cards integer := 0;
  v_rest integer;
  v_identifier text := p_session_id::text || ':' || p_billed_before::text;
  v_charge_id bigint;
begin
  if v_pays then
    v_included := least(p_owed, v_state.included_left);
  end if;
  v_spent := billing_private.spend(p_user_id, p_owed - v_included, 'usage',
    'session:' || p_session_id::text || ':' || p_billed_before::text, p_now, p_session_id);
  v_cards := (v_spent ->> 'deducted_seconds')::integer;
  v_rest := p_owed - v_included - v_cards;
  if v_pays and v_rest > 0 then
    v_rated := least(v_rest, billing_private.seconds_under_cap(v_state.plan_id, v_state.rated_seconds,
                                v_state.amount_exact, v_state.cap_cents - v_state.other_lines_cents));
    v_amount := billing_private.tier_cost(v_state.plan_id, v_state.rated_seconds, v_rated);
  end if;
  if v_included + v_rated > 0 then
    insert into public.usage_charges (user_id, user_plan_id, plan_id, session_id, period_start, included_seconds,
      rated_seconds, amount_exact, currency, identifier, created_at)
    values (p_user_id, v_state.user_plan_id, v_state.plan_id, p_session_id, v_state.period_start, v_included,
      v_rated, v_amount, v_state.currency, v_identifier, p_now)
    -- The stored amount (numeric(24, 12)) is what plan_state() sums, so plan_state_paid() adds that one.
    returning id, amount_exact into v_charge_id, v_amount;
    insert into public.meter_event_outbox (usage_charge_id, identifier, event_name, stripe_customer_id,
      value_seconds, occurred_at, next_attempt_at)
    values (v_charge_id, v_identifier, 'mindbot_voice_seconds', v_state.customer_id, v_included + v_rated,
      p_now, p_now);
  end if;
  return v_spent || pg_catalog.jsonb_build_object(
    'deducted_seconds', v_included + v_cards + v_rated,
    'shortfall_seconds', v_rest - v_rated,
    'card_seconds', v_cards,
    'included_seconds', v_included,
    'rated_seconds', v_rated,
    'amount_exact', v_amount);
end
$$;

-- The plan state once pay_seconds() has paid p_paid from it: what plan_state() would read after that charge, as
-- the charge is the only change to the period's usage while the user's lock is held.
create function billing_private.plan_state_paid(p_state billing_private.plan_state, p_paid jsonb)
  returns billing_private.plan_state language plpgsql immutable
as $$
declare
  v billing_private.plan_state := p_state;
begin
  if v.user_plan_id is not null then
    v.included_left := v.included_left - (p_paid ->> 'included_seconds')::integer;
    v.rated_seconds := v.rated_seconds + (p_paid ->> 'rated_seconds')::integer;
    v.amount_exact := v.amount_exact + (p_paid ->> 'amount_exact')::numeric;
  end if;
  return v;
end
$$;

-- Why a call cannot start when nothing could be paid, in the terms of the user's plan.
create function billing_private.refuse_start(p_state billing_private.plan_state) returns void
  language plpgsql
as $$
declare
  v_state billing_private.plan_state := p_state;
begin
  if v_state.user_plan_id is not null and v_state.status = 'suspended' then
    perform billing_private.fail('insufficient_balance', pg_catalog.format(
      'calls on your plan are suspended because an invoice is unpaid%s: pay it, or buy or redeem a time card to start a call',
      case when v_state.suspended_invoice_url is null then '' else ' (' || v_state.suspended_invoice_url || ')' end));
  end if;
  if billing_private.plan_pays(v_state) then
    perform billing_private.fail('insufficient_balance', pg_catalog.format(
      'your spending cap of %s %s for this period is reached: raise it, or buy or redeem a time card to start a call',
      pg_catalog.to_char(v_state.cap_cents / 100.0, 'FM999999990.00'), pg_catalog.upper(v_state.currency)));
  end if;
  if v_state.user_plan_id is not null and v_state.status = 'pending' then
    perform billing_private.fail('insufficient_balance',
      'your plan is not confirmed yet and no conversation time is left: wait for the confirmation, or buy or redeem a time card');
  end if;
  perform billing_private.fail('insufficient_balance', 'no conversation time left: buy or redeem a time card to start a call');
end
$$;

-- 002's charge_session, paying through pay_seconds.
create or replace function billing_private.charge_session(
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
  -- Read once per charge (a prepaid user: one probe of user_plans_one_current finding nothing).
  v_state billing_private.plan_state := billing_private.plan_state(p_session.user_id, p_now);
begin
  if v_owed > 0 then
    -- billed_seconds only grows, so it makes each charge's key (and usage charge identifier) unique.
    v_spent := billing_private.pay_seconds(p_session.user_id, p_session.id, p_session.billed_seconds, v_owed, p_now,
                                           v_state);
    v_state := billing_private.plan_state_paid(v_state, v_spent);
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
  if v_session.last_metered_at <> p_now then
    -- A charge behind the session's latest one (a clock that went back): its answer is about that later instant.
    return billing_private.session_json(v_session, v_charged, v_shortfall, v_remaining, false);
  end if;
  return billing_private.session_json(v_session, v_charged, v_shortfall, v_remaining, false, v_state);
end
$$;

-- 014's start_voice_session, paying the first increment through pay_seconds and refusing in plan terms.
create or replace function public.start_voice_session(
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
  v_state billing_private.plan_state;
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
  v_session.started_at := v_now;
  v_session.increment_seconds := v_settings.billing_increment_seconds;
  v_session.minimum_seconds := v_settings.minimum_charge_seconds;
  v_due := billing_private.session_due_seconds(v_session, v_now);
  insert into public.voice_sessions (user_id, external_key, room_name, status, started_at, last_metered_at,
    billed_seconds, increment_seconds, minimum_seconds, agent_name, call_from, call_to)
  values (p_user_id, p_external_key, p_room_name, 'active', v_now, v_now,
    v_due, v_settings.billing_increment_seconds, v_settings.minimum_charge_seconds, v_agent, p_call_from, p_call_to)
  returning * into v_session;
  v_state := billing_private.plan_state(p_user_id, v_now);
  v_spent := billing_private.pay_seconds(p_user_id, v_session.id, 0, v_due, v_now, v_state);
  v_charged := (v_spent ->> 'deducted_seconds')::integer;
  if v_charged = 0 then
    -- Raising rolls the new session back with it (nothing was paid, so v_state still stands).
    perform billing_private.refuse_start(v_state);
  end if;
  v_state := billing_private.plan_state_paid(v_state, v_spent);
  if v_charged < v_due then
    update public.voice_sessions s set billed_seconds = v_charged where s.id = v_session.id returning * into v_session;
  end if;
  return billing_private.session_json(v_session, v_charged, (v_spent ->> 'shortfall_seconds')::integer,
    (v_spent ->> 'remaining_seconds')::integer, false, v_state);
end
$$;

-- ---------- what a running call can still be paid for ----------

-- The plan block of a session's answer: the period so far in the plan's terms (what the agent and the screens
-- speak), null for a user without a postpaid plan. p_seconds_left is plan_seconds_left(p_state), which the
-- session's answer has already worked out (it walks the tiers).
create function billing_private.plan_json(p_state billing_private.plan_state, p_seconds_left integer) returns jsonb
  language plpgsql stable
as $$
declare
  v_lines integer;
begin
  if p_state.user_plan_id is null then
    return null;
  end if;
  v_lines := p_state.other_lines_cents + billing_private.round_line(p_state.amount_exact);
  return pg_catalog.jsonb_build_object(
    'user_plan_id', p_state.user_plan_id,
    'plan_id', p_state.plan_id,
    'kind', p_state.kind,
    'status', p_state.status,
    'currency', p_state.currency,
    'period_start', p_state.period_start,
    'period_end', p_state.period_end,
    'period_cost_exact', (p_state.amount_exact + p_state.other_amount_exact)::text,
    'period_usage_cents', v_lines,
    'cap_cents', p_state.cap_cents,
    'cap_left_cents', greatest(0, p_state.cap_cents - v_lines),
    'included_left_seconds', p_state.included_left,
    'seconds_left', p_seconds_left,
    'suspended_reason', p_state.suspended_reason,
    'suspended_invoice_url', p_state.suspended_invoice_url);
end
$$;

-- Every answer about a session (014's): remaining_seconds and payable_until also count what the plan can pay,
-- so the controller warns and cuts off at the cap as it does at the end of a balance. Included seconds are
-- used before cards, so the cards' outlook (008) starts where they end (cards that expire meanwhile are
-- forfeit for this call); the rate pays after the cards.
-- p_state is plan_state(user, p_session.last_metered_at): the plan as it stands at the session's latest charge
-- (its answers are about that instant), which a charge has just brought forward (plan_state_paid).
create function billing_private.session_json(
  p_session public.voice_sessions, p_charged integer, p_shortfall integer, p_remaining integer, p_replayed boolean,
  p_state billing_private.plan_state
) returns jsonb language plpgsql volatile
as $$
declare
  v_covered timestamptz := p_session.started_at + pg_catalog.make_interval(secs => p_session.billed_seconds);
  v_outlook jsonb;
  v_state billing_private.plan_state := p_state;
  v_plan_left integer := billing_private.plan_seconds_left(v_state);
  v_included integer := 0;
  v_shifted public.voice_sessions := p_session;
begin
  if p_session.status = 'active' then
    if v_plan_left > 0 then
      v_included := v_state.included_left;
      v_shifted.billed_seconds := p_session.billed_seconds + v_included;
    end if;
    v_outlook := billing_private.session_outlook(v_shifted);
    if v_plan_left > 0 then
      v_outlook := v_outlook || pg_catalog.jsonb_build_object('payable_until',
        (v_outlook ->> 'payable_until')::timestamptz + pg_catalog.make_interval(secs => v_plan_left - v_included));
    end if;
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
    'remaining_seconds', least(2147483647::bigint, p_remaining::bigint + v_plan_left)::integer,
    'replayed', p_replayed,
    'plan', billing_private.plan_json(v_state, v_plan_left)) || v_outlook;
end
$$;

-- The answers that charge nothing (a replayed start, an already ended session) read the plan themselves.
create or replace function billing_private.session_json(
  p_session public.voice_sessions, p_charged integer, p_shortfall integer, p_remaining integer, p_replayed boolean
) returns jsonb language plpgsql volatile
as $$
begin
  return billing_private.session_json(p_session, p_charged, p_shortfall, p_remaining, p_replayed,
    billing_private.plan_state(p_session.user_id, p_session.last_metered_at));
end
$$;

-- ---------- the books ----------
--
-- Postpaid identities, checked from what was written:
--   every session: billed_seconds = card usage (its ledger rows of kind usage) + its usage charges'
--     included + rated seconds (each billed second paid by exactly one source);
--   every usage charge has exactly one outbox row with its identifier and value included + rated;
--   every line (user plan, period, plan version): its amount is its rated seconds priced from position 0
--     through the tiers (the charges were priced at the positions the period had reached, so they add up).
-- 010's get_books keeps its figures under billing_private and answers with a postpaid block beside them.

alter function public.get_books(timestamptz) rename to get_card_books;
alter function public.get_card_books(timestamptz) set schema billing_private;

create function billing_private.postpaid_books() returns jsonb
  language plpgsql stable
as $$
declare
  v_sessions jsonb;
  v_outbox jsonb;
  v_lines jsonb;
begin
  with per_session as (
    select s.id, s.billed_seconds,
           coalesce((select -sum(l.seconds) from public.ledger_entries l
                      where l.session_id = s.id and l.kind = 'usage'), 0)::bigint as card_seconds,
           coalesce((select sum(u.included_seconds + u.rated_seconds) from public.usage_charges u
                      where u.session_id = s.id), 0)::bigint as plan_seconds
      from public.voice_sessions s
  )
  select pg_catalog.jsonb_build_object(
           'billed_seconds', coalesce(sum(p.billed_seconds), 0)::bigint,
           'card_seconds', coalesce(sum(p.card_seconds), 0)::bigint,
           'plan_seconds', coalesce(sum(p.plan_seconds), 0)::bigint,
           'sessions_out_of_step', count(*) filter (where p.billed_seconds <> p.card_seconds + p.plan_seconds))
    into v_sessions
    from per_session p;

  select pg_catalog.jsonb_build_object(
           'charges', (select count(*) from public.usage_charges),
           'events', (select count(*) from public.meter_event_outbox),
           'charges_without_event', (select count(*) from public.usage_charges u
              where not exists (select 1 from public.meter_event_outbox o
                                 where o.usage_charge_id = u.id and o.identifier = u.identifier
                                   and o.value_seconds = u.included_seconds + u.rated_seconds)))
    into v_outbox;

  with lines as (
    select u.user_plan_id, u.period_start, u.plan_id, sum(u.rated_seconds)::integer as rated,
           sum(u.amount_exact) as amount
      from public.usage_charges u
     group by u.user_plan_id, u.period_start, u.plan_id
  )
  select pg_catalog.jsonb_build_object(
           'lines', count(*),
           'rated_seconds', coalesce(sum(l.rated), 0)::bigint,
           'amount_exact', coalesce(sum(l.amount), 0)::text,
           'lines_mispriced', count(*) filter (where l.amount <> billing_private.tier_cost(l.plan_id, 0, l.rated)),
           'lines_over_cap', count(*) filter (where billing_private.round_line(l.amount) > up.spending_cap_cents))
    into v_lines
    from lines l join public.user_plans up on up.id = l.user_plan_id;

  return pg_catalog.jsonb_build_object(
    'ok', (v_sessions ->> 'sessions_out_of_step')::bigint = 0
          and (v_outbox ->> 'charges_without_event')::bigint = 0
          and (v_outbox ->> 'charges')::bigint = (v_outbox ->> 'events')::bigint
          and (v_lines ->> 'lines_mispriced')::bigint = 0,
    'sessions', v_sessions,
    'meter_events', v_outbox,
    'lines', v_lines);
end
$$;

-- The cap is the user's to change mid-period, so a line above today's cap is reported (lines_over_cap), not an
-- error of the books.
create function public.get_books(p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_cards jsonb := billing_private.get_card_books(p_now);
  v_postpaid jsonb := billing_private.postpaid_books();
begin
  return v_cards || pg_catalog.jsonb_build_object(
    'ok', (v_cards ->> 'ok')::boolean and (v_postpaid ->> 'ok')::boolean,
    'postpaid', v_postpaid);
end
$$;

-- ---------- privileges ----------
revoke all on all functions in schema billing_private from public;

select billing_private.grant_to_service_only('public.get_books(timestamptz)');
-- The figures of the cards kept 010's grants when they moved; only get_books reads them now.
revoke all on function billing_private.get_card_books(timestamptz) from service_role;

-- Books that balance, refunds priced from the unused time, and reports that never add up different currencies.
--
-- Same conventions as 002/004: SECURITY DEFINER, an empty search_path and qualified names, p_now as the
-- billing clock, granted to service_role alone. Functions whose signature stays are replaced in place; those
-- that gain a parameter are dropped and created again (an overload would make calls that rely on defaults
-- ambiguous) and granted again.

-- ---------- the books ----------
--
-- Two identities, each per currency, checked from what was written, whichever function wrote it:
--
-- Seconds (the ledger against the cards):
--   granted + adjusted = used + expired + refunded + revoked - restored + outstanding
-- where the flows are the ledger rows by kind (adjusted is signed: credits minus debits; refunded, revoked and
-- restored are the rows of those kinds, whoever wrote them: a Stripe refund, a dispute, an administrator) and
-- outstanding is what the cards hold now (time_cards.remaining_seconds), split by what it can still become:
--   spendable        on active cards not yet past their expiry (a balance);
--   pending_gift     on unredeemed gift cards not yet past their redeem-by date (sold, not yet anyone's balance;
--                    counted here because the buyer paid for it and it can still be redeemed or refunded);
--   awaiting_expiry  on active or pending cards past their expiry that the expiry job has not reached yet;
--   unusable         on cards exhausted, expired or revoked (zero unless a rule wrote something odd).
-- A card's currency is its payment's; time no money bought (manual credits, grants without a payment) is in
-- the group whose currency is null. Seconds are the same unit everywhere, so they are also totalled.
-- cards_out_of_step counts cards whose remaining seconds are not the sum of their ledger rows, or (for a card
-- that was granted, not credited) whose grant rows are not its total: the identity could hide those by
-- cancelling across cards.
--
-- Cents (the payments table), per currency, never added across currencies:
--   received = refunded + kept
-- where received is what payments that went through brought in (amount_cents of succeeded, partially refunded,
-- refunded and disputed payments), refunded is every refunded_cents on any payment, and kept is read from each
-- payment's state: all of a succeeded payment, nothing of a refunded one, the amount less its refunds for a
-- partially refunded or disputed one (disputed_cents shows how much of kept is under dispute). So a payment
-- whose refunds disagree with its status, or money refunded on a payment that never went through, breaks it.
--
-- ok is true when every identity holds (in every currency) and no card is out of step.

-- One group's seconds, named for the report (absent figures are zero).
create function billing_private.seconds_figures(p_group jsonb) returns jsonb
  language plpgsql immutable
as $$
declare
  v_difference bigint := coalesce((p_group ->> 'difference')::bigint, 0);
begin
  return pg_catalog.jsonb_build_object(
    'currency', p_group -> 'currency',
    'cards', coalesce((p_group ->> 'cards')::bigint, 0),
    'granted_seconds', coalesce((p_group ->> 'granted')::bigint, 0),
    'adjusted_seconds', coalesce((p_group ->> 'adjusted')::bigint, 0),
    'used_seconds', coalesce((p_group ->> 'used')::bigint, 0),
    'expired_seconds', coalesce((p_group ->> 'expired')::bigint, 0),
    'refunded_seconds', coalesce((p_group ->> 'refunded')::bigint, 0),
    'revoked_seconds', coalesce((p_group ->> 'revoked')::bigint, 0),
    'restored_seconds', coalesce((p_group ->> 'restored')::bigint, 0),
    'outstanding_seconds', coalesce((p_group ->> 'outstanding')::bigint, 0),
    'spendable_seconds', coalesce((p_group ->> 'spendable')::bigint, 0),
    'pending_gift_seconds', coalesce((p_group ->> 'pending_gift')::bigint, 0),
    'awaiting_expiry_seconds', coalesce((p_group ->> 'awaiting_expiry')::bigint, 0),
    'unusable_seconds', coalesce((p_group ->> 'unusable')::bigint, 0),
    'difference_seconds', v_difference,
    'ok', v_difference = 0);
end
$$;

create function public.get_books(p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_total jsonb;
  v_by_currency jsonb;
  v_cents jsonb;
  v_out_of_step integer;
begin
  with card_flows as (
    select c.id, p.currency, c.status, c.expires_at, c.remaining_seconds,
           coalesce(sum(l.seconds) filter (where l.kind = 'grant'), 0) as granted,
           coalesce(sum(l.seconds) filter (where l.kind = 'adjustment'), 0) as adjusted,
           coalesce(-sum(l.seconds) filter (where l.kind = 'usage'), 0) as used,
           coalesce(-sum(l.seconds) filter (where l.kind = 'expiry'), 0) as expired,
           coalesce(-sum(l.seconds) filter (where l.kind = 'refund'), 0) as refunded,
           coalesce(-sum(l.seconds) filter (where l.kind = 'revoke'), 0) as revoked,
           coalesce(sum(l.seconds) filter (where l.kind = 'restore'), 0) as restored
      from public.time_cards c
      left join public.payments p on p.id = c.payment_id
      left join public.ledger_entries l on l.card_id = c.id
     group by c.id, p.currency
  ), groups as (
    -- grouping sets: one row per currency (null: no money bought it) and the total (is_total).
    select f.currency, grouping(f.currency) = 1 as is_total, count(*) as cards,
           coalesce(sum(f.granted), 0)::bigint as granted, coalesce(sum(f.adjusted), 0)::bigint as adjusted,
           coalesce(sum(f.used), 0)::bigint as used, coalesce(sum(f.expired), 0)::bigint as expired,
           coalesce(sum(f.refunded), 0)::bigint as refunded, coalesce(sum(f.revoked), 0)::bigint as revoked,
           coalesce(sum(f.restored), 0)::bigint as restored,
           coalesce(sum(f.remaining_seconds), 0)::bigint as outstanding,
           coalesce(sum(f.remaining_seconds) filter (where f.status = 'active' and f.expires_at > v_now), 0)::bigint as spendable,
           coalesce(sum(f.remaining_seconds) filter (where f.status = 'pending' and f.expires_at > v_now), 0)::bigint as pending_gift,
           coalesce(sum(f.remaining_seconds) filter (where f.status in ('active', 'pending') and f.expires_at <= v_now), 0)::bigint
             as awaiting_expiry,
           coalesce(sum(f.remaining_seconds) filter (where f.status not in ('active', 'pending')), 0)::bigint as unusable
      from card_flows f
     group by grouping sets ((f.currency), ())
  ), figures as (
    select g.*,
           (g.granted + g.adjusted) - (g.used + g.expired + g.refunded + g.revoked - g.restored + g.outstanding) as difference
      from groups g
  )
  select (select billing_private.seconds_figures(pg_catalog.to_jsonb(f)) from figures f where f.is_total),
         (select coalesce(pg_catalog.jsonb_agg(billing_private.seconds_figures(pg_catalog.to_jsonb(f))
                   order by f.currency nulls last), '[]'::jsonb)
            from figures f where not f.is_total)
    into v_total, v_by_currency;
  -- No card at all: the total is a row of zeros (grouping sets still give the empty grand total).
  v_total := coalesce(v_total, billing_private.seconds_figures('{}'::jsonb));

  select count(*) into v_out_of_step
    from (select c.id
            from public.time_cards c
            left join public.ledger_entries l on l.card_id = c.id
           group by c.id
          having c.remaining_seconds <> coalesce(sum(l.seconds), 0)
              or (c.source <> 'adjustment'
                  and c.total_seconds <> coalesce(sum(l.seconds) filter (where l.kind = 'grant'), 0))) x;

  with money as (
    select p.currency,
           count(*) filter (where billing_private.is_paid(p.status)) as payments,
           coalesce(sum(p.amount_cents) filter (where billing_private.is_paid(p.status)), 0)::bigint as received,
           coalesce(sum(p.refunded_cents), 0)::bigint as refunded,
           coalesce(sum(case p.status when 'succeeded' then p.amount_cents
                                      when 'refunded' then 0
                                      else p.amount_cents - p.refunded_cents end)
                      filter (where billing_private.is_paid(p.status)), 0)::bigint as kept,
           coalesce(sum(p.amount_cents - p.refunded_cents) filter (where p.status = 'disputed'), 0)::bigint as disputed,
           coalesce(sum(p.refunded_cents) filter (where not billing_private.is_paid(p.status)), 0)::bigint as refunded_unpaid
      from public.payments p
     group by p.currency
  )
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
           'currency', m.currency,
           'payments', m.payments,
           'received_cents', m.received,
           'refunded_cents', m.refunded,
           'kept_cents', m.kept,
           'disputed_cents', m.disputed,
           'refunded_unpaid_cents', m.refunded_unpaid,
           'difference_cents', m.received - m.refunded - m.kept,
           'ok', m.received = m.refunded + m.kept)
         order by m.currency), '[]'::jsonb)
    into v_cents
    from money m;

  return pg_catalog.jsonb_build_object(
    'generated_at', v_now,
    'ok', (v_total ->> 'ok')::boolean
          and not pg_catalog.jsonb_path_exists(v_by_currency, '$[*] ? (@.ok == false)')
          and v_out_of_step = 0
          and not pg_catalog.jsonb_path_exists(v_cents, '$[*] ? (@.ok == false)'),
    'seconds', pg_catalog.jsonb_build_object(
      'ok', (v_total ->> 'ok')::boolean
            and not pg_catalog.jsonb_path_exists(v_by_currency, '$[*] ? (@.ok == false)')
            and v_out_of_step = 0,
      'cards_out_of_step', v_out_of_step,
      'total', v_total - 'currency',
      'by_currency', v_by_currency),
    'cents', pg_catalog.jsonb_build_object(
      'ok', not pg_catalog.jsonb_path_exists(v_cents, '$[*] ? (@.ok == false)'),
      'by_currency', v_cents));
end
$$;

select billing_private.grant_to_service_only('public.get_books(timestamptz)');

-- ---------- what a refund should give back ----------
--
-- A refund gives back money, and Stripe's refund webhook then takes back the card's seconds in proportion
-- (seconds x refunded / paid), as far as they are unused. So the money that matches the unused time is
--   unused_refundable_cents = least(refundable_cents, floor(amount_cents x unused_seconds / total_seconds))
-- where unused_seconds is what the card can still be used for (an active card or an unredeemed gift, not past
-- its expiry; a frozen, expired or exhausted card has none) and a payment that granted no card has delivered
-- nothing, so all of what is left is refundable. Refunding more (money for time already talked) is a
-- deliberate override the administrator must ask for (src/sidecar/refunds.ts).

drop function public.get_payment(uuid);

create function public.get_payment(p_payment_id uuid, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_payment public.payments;
  v_card public.time_cards;
  v_refundable integer;
  v_unused integer;
begin
  select * into v_payment from public.payments p where p.id = p_payment_id;
  if not found then
    perform billing_private.fail('unknown_payment', pg_catalog.format('no payment %s', p_payment_id));
  end if;
  v_refundable := greatest(v_payment.amount_cents - v_payment.refunded_cents, 0);
  if v_payment.card_id is not null then
    select * into v_card from public.time_cards c where c.id = v_payment.card_id;
  end if;
  v_unused := case when v_card.id is null then null
                   when v_card.status in ('active', 'pending') and v_card.expires_at > v_now then v_card.remaining_seconds
                   else 0 end;
  return pg_catalog.to_jsonb(v_payment) || pg_catalog.jsonb_build_object(
    'payment_id', v_payment.id,
    'refundable_cents', v_refundable,
    'card_total_seconds', v_card.total_seconds,
    'card_unused_seconds', v_unused,
    'unused_refundable_cents', case when v_card.id is null then v_refundable
      else least(v_refundable, (v_payment.amount_cents::bigint * v_unused / v_card.total_seconds)::integer) end);
end
$$;

select billing_private.grant_to_service_only('public.get_payment(uuid, timestamptz)');

-- ---------- reports per currency ----------
-- Cents of different currencies are never added together. The revenue report is for one currency at a time
-- (p_currency; by default the one most paid in over the period, else the price list's), and names the others
-- that had payments in the period. A user's money is listed per currency; the single figures stay for the
-- common case of one currency and are null when a user paid in several.

drop function public.get_revenue_report(integer, timestamptz);

create function public.get_revenue_report(p_days integer default 30, p_currency text default null,
  p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_today date;
  v_first date;
  v_since timestamptz;
  v_currency text;
  v_currencies jsonb;
  v_result jsonb;
begin
  perform billing_private.require_days(p_days);
  if p_currency is not null and p_currency !~ '^[a-z]{3}$' then
    perform billing_private.fail('invalid_argument', 'a currency is a three-letter lower-case ISO code, like usd');
  end if;
  v_today := (v_now at time zone 'UTC')::date;
  v_first := v_today - (p_days - 1);
  v_since := v_first::timestamp at time zone 'UTC';
  select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('currency', x.currency, 'transactions', x.n)
           order by x.n desc, x.currency), '[]'::jsonb)
    into v_currencies
    from (select p.currency, count(*) as n from public.payments p
           where p.created_at >= v_since and p.created_at <= v_now and billing_private.is_paid(p.status)
           group by p.currency) x;
  v_currency := coalesce(p_currency, v_currencies -> 0 ->> 'currency',
    (select t.currency from public.pricing_tiers t order by t.active desc, t.sort_order, t.id limit 1), 'usd');
  with paid as (
    select p.tier_id, p.amount_cents, p.refunded_cents, (p.created_at at time zone 'UTC')::date as day
      from public.payments p
     where p.created_at >= v_since and p.created_at <= v_now and billing_private.is_paid(p.status)
       and p.currency = v_currency
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
    'currency', v_currency,
    'currencies', v_currencies,
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

select billing_private.grant_to_service_only('public.get_revenue_report(integer, text, timestamptz)');

-- A user's paid money, one entry per currency: [{currency, purchases, paid_cents, refunded_cents, spent_cents}].
create function billing_private.user_money(p_user_id uuid) returns jsonb
  language plpgsql stable
as $$
begin
  return (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object(
             'currency', m.currency, 'purchases', m.purchases, 'paid_cents', m.paid,
             'refunded_cents', m.refunded, 'spent_cents', m.paid - m.refunded) order by m.currency), '[]'::jsonb)
            from (select p.currency, count(*) as purchases, sum(p.amount_cents) as paid, sum(p.refunded_cents) as refunded
                    from public.payments p
                   where p.user_id = p_user_id and billing_private.is_paid(p.status)
                   group by p.currency) m);
end
$$;

-- As in 004, with the money per currency: paid_cents, refunded_cents and spent_cents are the user's figures in
-- their one currency (currency), and null when they paid in several (then read money).
create or replace function public.get_user_analytics(p_user_id uuid, p_months integer default 12, p_now timestamptz default null)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_current timestamptz := billing_private.month_start(v_now);
  v_calls jsonb;
  v_money jsonb;
  v_single jsonb;
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
  v_money := billing_private.user_money(p_user_id);
  v_single := case pg_catalog.jsonb_array_length(v_money)
    when 0 then '{"currency": null, "paid_cents": 0, "refunded_cents": 0, "spent_cents": 0}'::jsonb
    when 1 then (v_money -> 0) - 'purchases'
    else '{"currency": null, "paid_cents": null, "refunded_cents": null, "spent_cents": null}'::jsonb end;
  select pg_catalog.jsonb_agg(billing_private.month_usage(p_user_id,
           billing_private.plus_utc(v_current, pg_catalog.make_interval(months => -m))) order by m desc)
    into v_months
    from pg_catalog.generate_series(0, p_months - 1) m;
  return pg_catalog.jsonb_build_object(
    'user_id', p_user_id,
    'balance_seconds', billing_private.spendable_seconds(p_user_id, v_now),
    'totals', v_calls || v_single || pg_catalog.jsonb_build_object(
      'purchases', (select coalesce(sum((e ->> 'purchases')::integer), 0) from pg_catalog.jsonb_array_elements(v_money) e),
      'money', v_money),
    'months', v_months);
end
$$;

-- As in 004, with what each user spent listed per currency (spent: [{currency, cents}]) instead of one sum.
create or replace function public.list_billing_users(p_limit integer default 50, p_offset integer default 0, p_now timestamptz default null)
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
           'spent', (select coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object('currency', m ->> 'currency',
                               'cents', (m ->> 'spent_cents')::bigint) order by m ->> 'currency'), '[]'::jsonb)
                       from pg_catalog.jsonb_array_elements(billing_private.user_money(g.user_id)) m),
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

revoke all on all functions in schema billing_private from public;

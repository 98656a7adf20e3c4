-- Nothing open by default: the API roles get no sequence (and no future object) by accident, and a metrics
-- scrape costs the same whatever the size of the ledger.

-- ---------- sequences and default privileges ----------
-- Supabase's projects run `alter default privileges for role postgres in schema public grant all on sequences
-- (tables, functions) to anon, authenticated, service_role`. A sequence granted that way lets the anon key call
-- setval() on the ledger's identity and make every later ledger insert collide with an existing id. Nothing
-- here needs the API roles to touch a sequence (identity columns do not check sequence privileges on insert),
-- so none of them may; and objects the migrations create from now on are granted only explicitly.
do $$
declare
  v_sequence record;
begin
  for v_sequence in
    select n.nspname, c.relname
      from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'S'
       and n.nspname in ('public', 'billing_private', 'mindbot_meta')
       and pg_catalog.pg_has_role(c.relowner, 'USAGE')
  loop
    execute pg_catalog.format('revoke all on sequence %I.%I from public, anon, authenticated',
      v_sequence.nspname, v_sequence.relname);
  end loop;
end $$;

alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke execute on functions from anon, authenticated;
alter default privileges in schema billing_private revoke all on sequences from public, anon, authenticated;
alter default privileges in schema billing_private revoke all on tables from public, anon, authenticated;

-- ---------- metrics without scans ----------
-- billing_metrics() summed the whole ledger and counted every notification at each scrape: its cost grew with
-- history. Now every change appends a delta (an insert never waits on another writer, unlike a shared counter
-- row that concurrent meters would queue on, or deadlock over when two of them bump two counters in opposite
-- orders); a scrape folds the deltas written since the last one into the totals. So a scrape costs what was
-- written since the previous scrape, not what was ever written.
create table billing_private.metric_totals (
  name  text primary key check (name in ('seconds_granted', 'seconds_charged', 'notifications_pending', 'notifications_dead')),
  value bigint not null
);

create table billing_private.metric_deltas (
  id    bigint generated always as identity primary key,
  name  text not null references billing_private.metric_totals(name),
  delta bigint not null
);

revoke all on billing_private.metric_totals, billing_private.metric_deltas from public, anon, authenticated, service_role;

create function billing_private.count_ledger_entry() returns trigger
  language plpgsql security definer set search_path = ''
as $$
begin
  insert into billing_private.metric_deltas (name, delta)
  values (case new.kind when 'grant' then 'seconds_granted' else 'seconds_charged' end,
          case new.kind when 'grant' then new.seconds else -new.seconds end);
  return null;
end
$$;

-- A notification is pending (neither delivered nor dead), delivered, or dead; the counters follow each move.
create function billing_private.notification_state(p_delivered_at timestamptz, p_dead_at timestamptz) returns text
  language sql immutable set search_path = ''
as $$
  select case when p_delivered_at is not null then 'delivered'
              when p_dead_at is not null then 'dead'
              else 'pending' end
$$;

create function billing_private.count_notification() returns trigger
  language plpgsql security definer set search_path = ''
as $$
declare
  v_old text := case when tg_op in ('UPDATE', 'DELETE') then billing_private.notification_state(old.delivered_at, old.dead_at) end;
  v_new text := case when tg_op in ('INSERT', 'UPDATE') then billing_private.notification_state(new.delivered_at, new.dead_at) end;
begin
  if v_old is not distinct from v_new then
    return null;
  end if;
  if v_old in ('pending', 'dead') then
    insert into billing_private.metric_deltas (name, delta) values ('notifications_' || v_old, -1);
  end if;
  if v_new in ('pending', 'dead') then
    insert into billing_private.metric_deltas (name, delta) values ('notifications_' || v_new, 1);
  end if;
  return null;
end
$$;

revoke all on function billing_private.count_ledger_entry(), billing_private.count_notification(),
  billing_private.notification_state(timestamptz, timestamptz) from public, anon, authenticated, service_role;

-- The triggers and the first totals in one step: creating a trigger locks its table against writes until this
-- migration commits, so no row lands between the count and the trigger.
create trigger ledger_entries_metrics after insert on public.ledger_entries
  for each row when (new.kind in ('grant', 'usage')) execute function billing_private.count_ledger_entry();
create trigger notifications_metrics after insert or update or delete on public.notifications
  for each row execute function billing_private.count_notification();

insert into billing_private.metric_totals (name, value)
select 'seconds_granted', coalesce(sum(l.seconds), 0) from public.ledger_entries l where l.kind = 'grant'
union all
select 'seconds_charged', coalesce(-sum(l.seconds), 0) from public.ledger_entries l where l.kind = 'usage'
union all
select 'notifications_pending', count(*) from public.notifications n where n.delivered_at is null and n.dead_at is null
union all
select 'notifications_dead', count(*) from public.notifications n where n.delivered_at is null and n.dead_at is not null;

-- Calls being metered now: the partial index holds exactly them, so counting is bounded by live calls.
create or replace function public.billing_metrics(p_now timestamptz default null)
  returns jsonb language plpgsql volatile security definer set search_path = ''
as $$
declare
  v_totals jsonb;
begin
  -- One fold at a time (two sidecars scraping at once): the second waits, then finds nothing left to move.
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('mindbot.metric_fold', 0));
  with moved as (
    delete from billing_private.metric_deltas d returning d.name, d.delta
  ), sums as (
    select m.name, sum(m.delta) as delta from moved m group by m.name
  )
  update billing_private.metric_totals t set value = t.value + s.delta from sums s where t.name = s.name;
  select pg_catalog.jsonb_object_agg(t.name, t.value) into v_totals from billing_private.metric_totals t;
  return v_totals || pg_catalog.jsonb_build_object(
    'active_sessions', (select count(*) from public.voice_sessions s where s.status = 'active'));
end
$$;

select billing_private.grant_to_service_only('public.billing_metrics(timestamptz)');

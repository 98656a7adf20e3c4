-- A refund that fails while a dispute has the card frozen: the money came back to us, but record_refunds (009)
-- cannot give the time back then (the card is frozen, and the freeze's own restore gives back only what the
-- freeze took). So whatever failed refunds still owe the card is given back when the last freeze of the
-- payment lifts, under the same rules as 009: only while the card can be used.
--
-- record_dispute itself is unchanged: 009's body moves to billing_private and the public function runs it and
-- then settles those refunds, in the same transaction and under the locks it took.

alter function public.record_dispute(text, text, jsonb, text, text, text, text, boolean, timestamptz)
  set schema billing_private;
alter function billing_private.record_dispute(text, text, jsonb, text, text, text, text, boolean, timestamptz)
  rename to apply_dispute_event;
revoke all on function billing_private.apply_dispute_event(text, text, jsonb, text, text, text, text, boolean, timestamptz)
  from public, anon, authenticated, service_role;

-- Gives back what failed or canceled refunds of the payment took and have not returned, if its card can be
-- used (not expired, not frozen by any dispute). The caller holds the card's lock.
create function billing_private.return_failed_refunds(p_payment_id uuid, p_now timestamptz) returns integer
  language plpgsql
as $$
declare
  v_payment public.payments;
  v_card public.time_cards;
  v_refund public.payment_refunds;
  v_give integer;
  v_returned integer := 0;
begin
  select * into v_payment from public.payments p where p.id = p_payment_id;
  if v_payment.card_id is null
     or exists (select 1 from public.payment_disputes d where d.payment_id = p_payment_id and d.frozen) then
    return 0;
  end if;
  for v_refund in
    select * from public.payment_refunds r
     where r.payment_id = p_payment_id and r.status in ('failed', 'canceled') and r.seconds_taken > r.seconds_returned
     order by r.created_at, r.refund_id collate "C"
  loop
    select * into v_card from public.time_cards c where c.id = v_payment.card_id;
    exit when v_card.expires_at <= p_now or v_card.status = 'expired';
    v_give := least(v_refund.seconds_taken - v_refund.seconds_returned, v_card.total_seconds - v_card.remaining_seconds);
    continue when v_give <= 0;
    -- Keyed by what it had returned so far: 009's give-back of the same refund has a key of its own.
    perform billing_private.move_seconds(v_card.id, v_give, 'restore',
      'refund-failed:' || v_refund.refund_id || ':from:' || v_refund.seconds_returned::text, p_now,
      null, p_payment_id, 'refund ' || v_refund.refund_id || ' failed: its time is given back');
    update public.time_cards c
       set status = case when c.user_id is null then 'pending' else 'active' end, updated_at = p_now
     where c.id = v_card.id and c.status = 'revoked';
    update public.payment_refunds r set seconds_returned = r.seconds_returned + v_give, updated_at = p_now
     where r.refund_id = v_refund.refund_id;
    v_returned := v_returned + v_give;
  end loop;
  return v_returned;
end
$$;

create function public.record_dispute(
  p_event_id text, p_event_type text, p_payload jsonb,
  p_payment_intent_id text, p_charge_id text, p_dispute_id text, p_status text,
  p_inquiry boolean default false, p_now timestamptz default null
) returns jsonb language plpgsql security definer set search_path = ''
as $$
declare
  v_now timestamptz := coalesce(p_now, pg_catalog.now());
  v_result jsonb := billing_private.apply_dispute_event(p_event_id, p_event_type, p_payload, p_payment_intent_id,
    p_charge_id, p_dispute_id, p_status, p_inquiry, v_now);
begin
  if v_result ->> 'outcome' = 'restored' then
    v_result := v_result || pg_catalog.jsonb_build_object('returned_refund_seconds',
      billing_private.return_failed_refunds((v_result ->> 'payment_id')::uuid, v_now));
  end if;
  return v_result;
end
$$;

select billing_private.grant_to_service_only(
    'public.record_dispute(text, text, jsonb, text, text, text, text, boolean, timestamptz)');

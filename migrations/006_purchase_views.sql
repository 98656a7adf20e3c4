-- What a buyer sees of their own purchases in the web app: the gifts they bought (with the code to pass on
-- while it is unredeemed) and, on returning from Stripe Checkout, whether the webhook has landed yet.

-- A gift card as its purchaser sees it. The code is shown only while the gift waits to be redeemed: once
-- someone redeemed it, it is their card.
create function billing_private.gift_json(p_card public.time_cards) returns jsonb
  language plpgsql immutable
as $$
begin
  return pg_catalog.jsonb_build_object(
    'card_id', p_card.id,
    'payment_id', p_card.payment_id,
    'tier_id', p_card.tier_id,
    'total_seconds', p_card.total_seconds,
    'status', p_card.status,
    'redeemed', p_card.user_id is not null,
    'activation_code', case when p_card.status = 'pending' then p_card.activation_code end,
    'expires_at', p_card.expires_at,
    'created_at', p_card.created_at);
end
$$;

-- The gifts p_user_id bought, newest first.
create function public.get_user_gifts(p_user_id uuid, p_limit integer default 50)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
begin
  perform billing_private.require_user(p_user_id);
  perform billing_private.require_limit(p_limit, 1000);
  return (select coalesce(pg_catalog.jsonb_agg(billing_private.gift_json(c) order by c.created_at desc, c.id desc), '[]'::jsonb)
            from (select * from public.time_cards x
                   where x.purchaser_id = p_user_id and x.source = 'gift'
                   order by x.created_at desc, x.id desc
                   limit p_limit) c);
end
$$;

-- The purchase made through one Checkout Session, for its buyer only: {found: false} until Stripe's webhook
-- has recorded it (another user's session reads as not found, never as someone else's payment).
create function public.get_checkout_purchase(p_user_id uuid, p_checkout_session_id text)
  returns jsonb language plpgsql stable security definer set search_path = ''
as $$
declare
  v_payment public.payments;
  v_card public.time_cards;
begin
  perform billing_private.require_user(p_user_id);
  if p_checkout_session_id is null or p_checkout_session_id !~ '^cs_\w{1,200}$' then
    perform billing_private.fail('invalid_argument', 'a Checkout Session id looks like cs_...');
  end if;
  select * into v_payment from public.payments p
   where p.stripe_checkout_session_id = p_checkout_session_id and p.user_id = p_user_id;
  if not found then
    return pg_catalog.jsonb_build_object('found', false);
  end if;
  select * into v_card from public.time_cards c where c.id = v_payment.card_id;
  return pg_catalog.jsonb_build_object(
    'found', true,
    'payment', billing_private.payment_json(v_payment),
    'card', case when v_card.id is null then null else pg_catalog.jsonb_build_object(
      'card_id', v_card.id,
      'tier_id', v_card.tier_id,
      'source', v_card.source,
      'status', v_card.status,
      'total_seconds', v_card.total_seconds,
      'remaining_seconds', v_card.remaining_seconds,
      'expires_at', v_card.expires_at,
      'activation_code', case when v_card.source = 'gift' and v_card.status = 'pending' then v_card.activation_code end)
    end);
end
$$;

revoke all on all functions in schema billing_private from public;

select billing_private.grant_to_service_only(
    'public.get_user_gifts(uuid, integer)',
    'public.get_checkout_purchase(uuid, text)'
);

// Choosing how to pay: the plans on offer side by side (prepaid packs, pay-as-you-go, tiered, subscription), each
// priced per hour so they compare, with Subscribe (off to Stripe Checkout), Switch (an upgrade applies now, a
// downgrade at the period's end, as the server answers), Cancel at the period's end, and Stripe's customer
// portal for the card and the invoices. Stripe's webhooks make the change; the page shows what the server says.
import { useState } from 'react';
import { ApiError, idempotencyKey } from '../api.ts';
import { useApi, useAuth } from '../auth.tsx';
import { formatDate, formatDuration, formatMoney, formatPerHour } from '../format.ts';
import { useRequest } from '../use-request.ts';
import { errorText, Loaded, Section } from '../ui.tsx';
import { usePlan } from './plan-context.tsx';
import { rememberPlanCheckout } from './PlanReturn.tsx';
import {
  BillingPortalResponse, PlanCancelResponse, PlanChangeResponse, PlanCheckoutResponse, PlansResponse,
  type PlanView, type UserPlanView,
} from '../../shared/api-contracts.ts';

const KIND_LABEL: Record<PlanView['kind'], string> = {
  prepaid: 'Prepaid time cards',
  payg: 'Pay as you go',
  tiered: 'Tiered by volume',
  subscription: 'Subscription',
};

function planErrorText(error: unknown): string {
  if (error instanceof ApiError && error.code === 'payments_unavailable') {
    return 'Plans are not available right now: payments are not set up on this server. Nothing was charged.';
  }
  if (error instanceof ApiError && error.code === 'payment_provider_error') {
    return 'The payment provider could not be reached. Nothing was charged; please try again in a moment.';
  }
  return errorText(error);
}

/** The headline figure that makes the plans comparable: what an hour of talk costs. */
function hourlyHeadline(plan: PlanView): string {
  const p = plan.price_per_hour;
  if (plan.kind === 'prepaid') return p.cheapest_pack_cents_per_hour === null ? '—' : `from ${formatPerHour(p.cheapest_pack_cents_per_hour, plan.currency)}`;
  if (plan.kind === 'subscription' && p.included_cents_per_hour !== null) return formatPerHour(p.included_cents_per_hour, plan.currency);
  return p.rate_cents_per_hour === null ? '—' : formatPerHour(p.rate_cents_per_hour, plan.currency);
}

function PlanTerms({ plan }: { plan: PlanView }) {
  const money = (cents: number) => formatMoney(cents, plan.currency);
  if (plan.kind === 'prepaid') {
    return <p>Buy a pack of hours once; no monthly fee. {plan.packs && plan.packs.length > 0 && <>Packs from {money(Math.min(...plan.packs.map((k) => k.price_cents)))}.</>}</p>;
  }
  const tiers = plan.tiers.map((t, i) => {
    const from = i === 0 ? 0 : plan.tiers[i - 1]!.up_to_seconds ?? 0;
    const span = t.up_to_seconds === null
      ? (i === 0 ? 'Every minute' : `Over ${formatDuration(from)}`)
      : (i === 0 ? `First ${formatDuration(t.up_to_seconds)}` : `${formatDuration(from)} to ${formatDuration(t.up_to_seconds)}`);
    return <li key={t.position}>{span}: {formatPerHour(t.cents_per_hour, plan.currency)}
      <span className="muted"> ({t.cents_per_minute}¢ a minute)</span></li>;
  });
  return (
    <>
      {plan.kind === 'subscription'
        ? <p>{money(plan.monthly_fee_cents)} a month with {formatDuration(plan.included_seconds)} included, then:</p>
        : <p>No monthly fee; billed monthly for the minutes you talk{plan.kind === 'tiered' ? ', cheaper as the month’s minutes grow' : ''}:</p>}
      <ul className="tiers">{tiers}</ul>
    </>
  );
}

export function PlansPanel() {
  const api = useApi();
  const { config } = useAuth();
  const { current, reload } = usePlan();
  const plans = useRequest(() => api.get('/api/plans', PlansResponse));
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const mine: UserPlanView | null = current.data?.plan ?? null;

  const act = async (what: string, run: () => Promise<string | null>) => {
    setBusy(what);
    setError(null);
    setNotice(null);
    try {
      const said = await run();
      if (said !== null) {
        setNotice(said);
        setBusy(null);
        await reload();
      }
      // null: the browser is on its way to Stripe; the button stays busy until it leaves.
    } catch (e) {
      setError(e);
      setBusy(null);
    }
  };

  const subscribe = (plan: PlanView) => act(`subscribe:${plan.key}`, async () => {
    const started = await api.post(`/api/plans/${encodeURIComponent(plan.key)}/subscribe`, {}, PlanCheckoutResponse,
      { 'Idempotency-Key': idempotencyKey() });
    rememberPlanCheckout(started.checkout_session_id);
    location.assign(started.checkout_url);
    return null;
  });
  const change = (plan: PlanView) => act(`change:${plan.key}`, async () => {
    const changed = await api.post(`/api/plans/${encodeURIComponent(plan.key)}/change`, {}, PlanChangeResponse,
      { 'Idempotency-Key': idempotencyKey() });
    return changed.effective === 'now'
      ? `You are moving to ${plan.name} now. Stripe confirms it in a moment; this period’s usage so far stays at the old rate.`
      : `You will move to ${plan.name} when this period ends${changed.effective_at ? ` on ${formatDate(changed.effective_at)}` : ''}.`;
  });
  const cancel = () => act('cancel', async () => {
    const cancelled = await api.post('/api/plans/cancel', {}, PlanCancelResponse);
    return `Your plan ends at the end of this period${cancelled.ends_at ? `, on ${formatDate(cancelled.ends_at)}` : ''}. Calls after that use your prepaid time.`;
  });
  const portal = () => act('portal', async () => {
    const opened = await api.post('/api/billing/portal', {}, BillingPortalResponse);
    location.assign(opened.url);
    return null;
  });

  const enabled = config.purchases.enabled;
  return (
    <Section title="Your plan" id="plans"
      actions={mine && mine.status !== 'pending' ? (
        <button type="button" className="secondary" onClick={() => void portal()} disabled={busy !== null || !enabled}>
          {busy === 'portal' ? 'Opening Stripe…' : 'Manage card and invoices in Stripe'}
        </button>) : undefined}>
      {!enabled && <p className="banner-warn" role="status">Plans are not available on this server right now.</p>}
      {mine && (
        <p>
          You are on <strong>{mine.plan_name}</strong>
          {mine.status === 'pending' && <> (waiting for Stripe to confirm the subscription)</>}
          {mine.cancel_at_period_end && <> until {formatDate(mine.current_period_end)}, when it ends</>}
          {mine.scheduled_plan_key && <>; it changes to <strong>{mine.scheduled_plan_key}</strong> on {formatDate(mine.current_period_end)}</>}.
        </p>
      )}
      {error !== null && <div className="error" role="alert"><p>{planErrorText(error)}</p></div>}
      <div role="status">{notice && <p className="success">{notice}</p>}</div>
      <Loaded request={plans} label="Loading the plans…">
        {({ plans: list }) => (
          <ul className="packages plans">
            {list.map((plan) => {
              const isMine = mine?.plan_key === plan.key || (!mine && plan.kind === 'prepaid');
              return (
                <li key={plan.key} className={`package${isMine ? ' highlight' : ''}`}>
                  <div>
                    <h3>{plan.name}{KIND_LABEL[plan.kind] !== plan.name && <span className="muted"> · {KIND_LABEL[plan.kind]}</span>}</h3>
                    {plan.description && <p className="muted">{plan.description}</p>}
                    <PlanTerms plan={plan} />
                  </div>
                  <div className="package-buy">
                    <p><span className="price">{hourlyHeadline(plan)}</span></p>
                    <PlanAction plan={plan} mine={mine} isMine={isMine} busy={busy} enabled={enabled}
                      onSubscribe={subscribe} onChange={change} onCancel={cancel} />
                  </div>
                </li>
              );
            })}
          </ul>
        )}
      </Loaded>
    </Section>
  );
}

function PlanAction({ plan, mine, isMine, busy, enabled, onSubscribe, onChange, onCancel }: {
  plan: PlanView; mine: UserPlanView | null; isMine: boolean; busy: string | null; enabled: boolean;
  onSubscribe: (plan: PlanView) => Promise<void>; onChange: (plan: PlanView) => Promise<void>; onCancel: () => Promise<void>;
}) {
  const disabled = busy !== null || !enabled;
  if (plan.kind === 'prepaid') {
    if (mine && mine.status !== 'pending' && !mine.cancel_at_period_end) {
      return <button type="button" className="secondary" onClick={() => void onCancel()} disabled={disabled}>
        {busy === 'cancel' ? 'Cancelling…' : 'Cancel my plan at the period’s end'}</button>;
    }
    return <a className="button secondary" href="#buy">See the packs<span className="visually-hidden"> of {plan.name}</span></a>;
  }
  if (isMine && mine?.status !== 'pending') return <p className="success">Your plan</p>;
  // A Checkout left unpaid is no plan yet: subscribing again (to it or another) starts a new one.
  if (!mine || mine.status === 'pending') {
    return <button type="button" onClick={() => void onSubscribe(plan)} disabled={disabled}>
      {busy === `subscribe:${plan.key}` ? 'Opening checkout…' : 'Subscribe'}<span className="visually-hidden"> to {plan.name}</span></button>;
  }
  if (mine.status !== 'active') return null;
  return <button type="button" className="secondary" onClick={() => void onChange(plan)} disabled={disabled}>
    {busy === `change:${plan.key}` ? 'Switching…' : 'Switch'}<span className="visually-hidden"> to {plan.name}</span></button>;
}

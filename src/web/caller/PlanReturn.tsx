// Back from Stripe Checkout for a plan. The server sends plan and pack buyers back to the same address, so the
// plan picker remembers (in this tab) the Checkout Session it opened; this landing waits, like a pack's, for
// Stripe's webhooks to make the plan active, asking the server every two seconds for a minute.
import { useEffect, useState } from 'react';
import { Section } from '../ui.tsx';
import { usePlan } from './plan-context.tsx';

const POLL_EVERY_MS = 2_000;
const POLL_FOR_MS = 60_000;
const PLAN_CHECKOUT_KEY = 'mindbot.plan-checkout-session';

export function rememberPlanCheckout(sessionId: string): void {
  try {
    sessionStorage.setItem(PLAN_CHECKOUT_KEY, sessionId);
  } catch { /* storage off: the landing then reads like a pack's, and the plan still shows below */ }
}

export function isPlanCheckout(sessionId: string): boolean {
  try {
    return sessionStorage.getItem(PLAN_CHECKOUT_KEY) === sessionId;
  } catch {
    return false;
  }
}

export function PlanReturn() {
  const { current, reload } = usePlan();
  const [gaveUp, setGaveUp] = useState(false);
  const plan = current.data?.plan ?? null;
  const confirmed = plan !== null && plan.status !== 'pending';

  useEffect(() => {
    if (confirmed) return;
    const deadline = Date.now() + POLL_FOR_MS;
    const timer = setInterval(() => {
      if (Date.now() >= deadline) {
        setGaveUp(true);
        clearInterval(timer);
      } else {
        void reload();
      }
    }, POLL_EVERY_MS);
    return () => clearInterval(timer);
  }, [confirmed, reload]);

  return (
    <Section title="Your new plan" id="plan-return">
      <div role="status">
        {confirmed
          ? <p className="success">Thank you! You are on {plan.plan_name}. Calls are billed on it from now on; your prepaid time is used first.</p>
          : gaveUp
            ? <p>Stripe has not confirmed your subscription yet. Nothing is lost: your plan shows here as soon as it does.</p>
            : <p>Confirming your subscription with Stripe… This usually takes a few seconds.</p>}
      </div>
    </Section>
  );
}

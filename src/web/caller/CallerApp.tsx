// The caller's page (/): balance, this period on a postpaid plan, talk, the plans, buy, redeem, invoices,
// gifts, history. Back from Stripe Checkout,
// /purchase/success shows the purchase landing first.
import { useCallback, useState } from 'react';
import { useAuth } from '../auth.tsx';
import { BalanceProvider } from './balance-context.tsx';
import { PricingProvider } from './pricing-context.tsx';
import { PlanProvider } from './plan-context.tsx';
import { PlansPanel } from './PlansPanel.tsx';
import { InvoicesPanel, PeriodPanel } from './PeriodPanel.tsx';
import { BalancePanel } from './BalancePanel.tsx';
import { BuyPanel } from './BuyPanel.tsx';
import { RedeemPanel } from './RedeemPanel.tsx';
import { GiftsPanel } from './GiftsPanel.tsx';
import { HistoryPanel } from './HistoryPanel.tsx';
import { PurchaseReturn } from './PurchaseReturn.tsx';
import { TalkPanel } from '../talk/TalkPanel.tsx';
import './caller.css';

export function CallerApp() {
  const { session } = useAuth();
  const returning = location.pathname.startsWith('/purchase/');
  // Bumped when a purchase lands or a call ends: the gift list and the history read themselves again.
  const [changes, setChanges] = useState(0);
  const changed = useCallback(() => setChanges((n) => n + 1), []);
  return (
    <BalanceProvider>
      <PricingProvider>
      <PlanProvider refreshKey={changes}>
      <main>
        <h1>Your MindBot time</h1>
        <p className="muted">Signed in as <span className="code">{session?.email ?? session?.userId}</span></p>
        {returning && <PurchaseReturn onLanded={changed} />}
        <BalancePanel />
        <PeriodPanel />
        <TalkPanel onCallEnded={changed} />
        <PlansPanel />
        <div className="grid">
          <BuyPanel />
          <RedeemPanel />
        </div>
        <InvoicesPanel refreshKey={changes} />
        <GiftsPanel refreshKey={changes} />
        <HistoryPanel refreshKey={changes} />
      </main>
      </PlanProvider>
      </PricingProvider>
    </BalanceProvider>
  );
}

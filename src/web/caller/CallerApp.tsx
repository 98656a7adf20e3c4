// The caller's page (/): balance, talk, buy, redeem, history. Back from Stripe Checkout, /purchase/success
// shows the purchase landing first.
import { useAuth } from '../auth.tsx';
import { BalanceProvider } from './balance-context.tsx';
import { BalancePanel } from './BalancePanel.tsx';
import { BuyPanel } from './BuyPanel.tsx';
import { RedeemPanel } from './RedeemPanel.tsx';
import { HistoryPanel } from './HistoryPanel.tsx';
import { PurchaseReturn } from './PurchaseReturn.tsx';
import { TalkPanel } from '../talk/TalkPanel.tsx';

export function CallerApp() {
  const { session } = useAuth();
  const returning = location.pathname.startsWith('/purchase/');
  return (
    <BalanceProvider>
      <main>
        <h1>Your MindBot time</h1>
        <p className="muted">Signed in as <span className="code">{session?.email ?? session?.userId}</span></p>
        {returning && <PurchaseReturn />}
        <BalancePanel />
        <TalkPanel />
        <div className="grid">
          <BuyPanel />
          <RedeemPanel />
        </div>
        <HistoryPanel />
      </main>
    </BalanceProvider>
  );
}

// What the talk screen shows for each state: no room, no requests, no clock of its own (props in, markup out),
// so every state can be rendered on purpose.
import type { ReactNode } from 'react';
import { formatClock } from '../format.ts';
import { ErrorMessage, Loading } from '../ui.tsx';
import {
  timeLeftAnnouncement, timeLeftSeconds, timeWarning, type AgentState, type EndReason, type PurchaseLink, type TalkState,
} from './talk-state.ts';

export interface TalkViewProps {
  state: TalkState;
  /** The browser's clock (the same one the meter answers were stamped with). */
  nowMs: number;
  onStart(): void;
  onHangUp(): void;
  /** The room's audio and visualizer, shown during the call. */
  stage: ReactNode;
}

const AGENT_STATE_TEXT: Record<AgentState, string> = {
  initializing: 'MindBot is getting ready…',
  listening: 'MindBot is listening',
  thinking: 'MindBot is thinking…',
  speaking: 'MindBot is speaking',
  unknown: 'Waiting for MindBot to join…',
};

const END_TEXT: Record<EndReason, string> = {
  you_left: 'You hung up.',
  agent_left: 'MindBot ended the call.',
  store_unreachable: 'The call ended because MindBot could not reach its billing service. You were not charged past that point.',
  connection_lost: 'The connection to the call was lost.',
};

function BuyMore({ link }: { link: PurchaseLink | null }) {
  return (
    <div className="talk-actions">
      <a className="button" href="#buy">Buy more time</a>
      <a className="button secondary-link" href="#redeem">Redeem a code</a>
      {link && <PurchaseLinkView link={link} />}
    </div>
  );
}

/** A new tab, so following it does not end the call this tab is holding. */
function PurchaseLinkView({ link }: { link: PurchaseLink }) {
  return (
    <a className="button" href={link.url} target="_blank" rel="noopener noreferrer">
      Open the checkout MindBot sent<span className="visually-hidden"> (opens in a new tab)</span>
    </a>
  );
}

function Countdown({ state, nowMs }: { state: Extract<TalkState, { kind: 'in_call' }>; nowMs: number }) {
  const seconds = timeLeftSeconds(state, nowMs);
  const warning = timeWarning(seconds);
  const label = state.callState === 'guest' ? 'Free time left' : 'Time left';
  return (
    <div className={`talk-time talk-time-${warning}`}>
      <span className="talk-time-label" id="talk-time-label">{label}</span>
      {/* A timer is not read out on each tick; the sentence below changes once a minute and is. */}
      <span role="timer" aria-labelledby="talk-time-label" className="talk-clock">
        {seconds === null ? '—' : formatClock(seconds)}
      </span>
      <span className="visually-hidden" role="status" aria-live="polite">{timeLeftAnnouncement(seconds)}</span>
      {warning === 'last_minute' && state.callState !== 'cut_off' && state.callState !== 'no_balance' && (
        <p className="talk-warning">Less than a minute left: buy more time below to keep talking after this call.</p>
      )}
      {warning === 'low' && <p className="talk-warning">Less than 5 minutes left.</p>}
    </div>
  );
}

function InCall({ state, nowMs, onHangUp, stage }: Omit<TalkViewProps, 'onStart' | 'state'> & { state: Extract<TalkState, { kind: 'in_call' }> }) {
  const timeUp = state.callState === 'cut_off' || state.callState === 'no_balance';
  return (
    <>
      <p className="talk-agent-state">{AGENT_STATE_TEXT[state.agentState]}</p>
      <div className="talk-stage">{stage}</div>
      <Countdown state={state} nowMs={nowMs} />
      {timeUp && (
        <div className="banner-warn" role="alert">
          <p>{state.callState === 'cut_off'
            ? 'Your time has run out. MindBot is saying goodbye.'
            : 'You have no conversation time left. MindBot will end the call.'}</p>
        </div>
      )}
      <div role="status" className="talk-link">
        {state.purchaseLink && (
          <>
            <p>MindBot sent you a link to buy time{state.purchaseLink.packageId ? ` (${state.purchaseLink.packageId})` : ''}.</p>
            <PurchaseLinkView link={state.purchaseLink} />
          </>
        )}
      </div>
      <div className="talk-actions">
        <button type="button" className="danger" onClick={onHangUp}>Hang up</button>
      </div>
    </>
  );
}

function TalkButton({ onStart, label = 'Talk to MindBot', disabled = false }: { onStart(): void; label?: string; disabled?: boolean }) {
  return <button type="button" className="talk-button" onClick={onStart} disabled={disabled}>{label}</button>;
}

/** After a call, buying comes first: talking again is the quieter button. */
function AgainButton({ onStart, label }: { onStart(): void; label: string }) {
  return <div className="talk-actions"><button type="button" className="secondary" onClick={onStart}>{label}</button></div>;
}

export function TalkView({ state, nowMs, onStart, onHangUp, stage }: TalkViewProps) {
  switch (state.kind) {
    case 'idle':
      return (
        <>
          <p>Talk with MindBot by voice. Your time is counted while the call lasts, and it tells you when it runs low.</p>
          <div className="talk-actions"><TalkButton onStart={onStart} /></div>
        </>
      );
    case 'unavailable':
      return <p className="banner-warn" role="status">{state.message}</p>;
    case 'requesting':
      return (
        <>
          <div className="talk-actions"><TalkButton onStart={onStart} disabled /></div>
          <Loading label="Getting your call ready…" />
        </>
      );
    case 'connecting':
      return (
        <>
          <Loading label="Connecting to MindBot…" />
          <div className="talk-actions"><button type="button" className="secondary" onClick={onHangUp}>Cancel</button></div>
        </>
      );
    case 'in_call':
      return <InCall state={state} nowMs={nowMs} onHangUp={onHangUp} stage={stage} />;
    case 'cut_off':
      return (
        <div className="talk-ended talk-time-up" role="alert">
          <h3>Your time ran out</h3>
          <p>The call ended when your talk time reached zero. Buy more time or redeem a code to talk again.</p>
          <BuyMore link={state.purchaseLink} />
          <AgainButton onStart={onStart} label="Talk again" />
        </div>
      );
    case 'no_balance':
      return (
        <div className="talk-ended talk-time-up" role="alert">
          <h3>No time left</h3>
          <p>{state.message}</p>
          <BuyMore link={state.purchaseLink} />
          <AgainButton onStart={onStart} label="Try again" />
        </div>
      );
    case 'ended':
      return (
        <div className="talk-ended" role="status">
          <h3>Call ended</h3>
          <p>{END_TEXT[state.reason]}</p>
          {state.sessionId && <p className="muted">Call reference: <span className="talk-ref">{state.sessionId}</span></p>}
          <AgainButton onStart={onStart} label="Talk again" />
        </div>
      );
    case 'failed':
      return <ErrorMessage error={new Error(state.message)} onRetry={onStart} />;
  }
}

// The talk panel: "Talk to MindBot" asks POST /token, joins the room, and feeds what the room says into the
// talk state; TalkView shows it. When a call ends the balance is read again (the call used some of it).
import { useCallback, useContext, useEffect, useReducer, useRef, useState } from 'react';
import { ApiError } from '../api.ts';
import { useApi, useAuth } from '../auth.tsx';
import { useBalance } from '../caller/balance-context.tsx';
import { Section } from '../ui.tsx';
import { CallRoomContext, type CallRoom } from './call-room.ts';
import { callIsOpen, initialTalkState, talkReducer } from './talk-state.ts';
import { TalkView } from './TalkView.tsx';
import './talk.css';
import { CallTokenResponse } from '../../shared/api-contracts.ts';


/** The countdown's clock: monotonic, so a change of the computer's time does not jump it. */
const clock = () => performance.now();

/** `onCallEnded` runs when a call that was open is over (its minutes are in the history now). */
export function TalkPanel({ onCallEnded }: { onCallEnded?: () => void } = {}) {
  const api = useApi();
  const { config } = useAuth();
  const balance = useBalance();
  const createRoom = useContext(CallRoomContext);
  const [state, dispatch] = useReducer(talkReducer, config.calls.enabled, initialTalkState);
  const [nowMs, setNowMs] = useState(clock);
  const roomRef = useRef<CallRoom | null>(null);
  const inCall = state.kind === 'in_call';

  // Ticks once a second during a call; the time shown is always recomputed from the last meter answer.
  useEffect(() => {
    if (!inCall) return;
    setNowMs(clock());
    const timer = setInterval(() => setNowMs(clock()), 1000);
    return () => clearInterval(timer);
  }, [inCall]);

  // A call that was open and no longer is: the balance moved.
  const wasOpen = useRef(false);
  const reloadBalance = balance.reload;
  const endedRef = useRef(onCallEnded);
  endedRef.current = onCallEnded;
  useEffect(() => {
    const open = callIsOpen(state);
    if (wasOpen.current && !open && state.kind !== 'failed') {
      void reloadBalance();
      endedRef.current?.();
    }
    wasOpen.current = open;
  }, [state, reloadBalance]);

  // Leaving the page leaves the room.
  useEffect(() => () => void roomRef.current?.disconnect(), []);

  const start = useCallback(async () => {
    dispatch({ type: 'requested' });
    let token: CallTokenResponse;
    try {
      token = await api.post('/token', {}, CallTokenResponse);
    } catch (error) {
      if (error instanceof ApiError && error.status !== 0) {
        dispatch({ type: 'token_refused', status: error.status, code: error.code, message: error.message });
      } else {
        dispatch({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      }
      return;
    }
    dispatch({ type: 'connecting' });
    const room = createRoom();
    roomRef.current = room;
    const unsubscribe = room.subscribe((signal) => {
      if (roomRef.current !== room) return;
      if (signal.type === 'attributes') dispatch({ ...signal, receivedAtMs: clock() });
      else dispatch(signal);
      if (signal.type === 'disconnected') {
        unsubscribe();
        roomRef.current = null;
      }
    });
    try {
      await room.connect(token.server_url, token.participant_token);
      if (roomRef.current === room) dispatch({ type: 'connected' });
    } catch (error) {
      unsubscribe();
      if (roomRef.current === room) {
        roomRef.current = null;
        dispatch({ type: 'error', message: error instanceof Error ? error.message : String(error) });
      }
    }
  }, [api, createRoom]);

  // During the call the room reports its own end; before it, the panel lets go of it at once.
  const connecting = state.kind === 'connecting';
  const hangUp = useCallback(() => {
    const room = roomRef.current;
    if (connecting) {
      roomRef.current = null;
      dispatch({ type: 'cancelled' });
    }
    if (room) void room.disconnect();
  }, [connecting]);

  const Stage = roomRef.current?.Stage;
  const agentState = state.kind === 'in_call' ? state.agentState : 'unknown';
  return (
    <Section title="Talk to MindBot" id="talk">
      <TalkView state={state} nowMs={nowMs} onStart={() => void start()} onHangUp={hangUp}
        stage={Stage ? <Stage agentState={agentState} /> : null} />
    </Section>
  );
}

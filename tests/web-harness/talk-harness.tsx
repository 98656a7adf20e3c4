// Test-only build of the caller page (never part of dist/web): the real app, sidecar and CallerApp, with the
// one thing that needs a LiveKit server, the call room, replaced through CallRoomContext by a fake that the
// browser test drives with page.evaluate(() => window.talkHarness...).
import '../../src/web/zod-config.ts'; // first, like main.tsx: zod must not probe eval under the CSP
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import type { AppConfig } from '../../src/web/app-config.ts';
import { AuthProvider, useAuth } from '../../src/web/auth.tsx';
import { SignIn } from '../../src/web/SignIn.tsx';
import { CallerApp } from '../../src/web/caller/CallerApp.tsx';
import { CallRoomContext, type CallRoom, type RoomSignal } from '../../src/web/talk/call-room.ts';
import { VoiceVisualizer } from '../../src/web/talk/VoiceVisualizer.tsx';
import type { AgentState } from '../../src/web/talk/talk-state.ts';
import '../../src/web/styles.css';

interface Harness {
  /** Every connect() the panel made: which server and token it was given by POST /token. */
  connects: Array<{ serverUrl: string; token: string }>;
  disconnects: number;
  resolveConnect(): void;
  rejectConnect(message: string): void;
  emit(signal: RoomSignal): void;
}

let listeners = new Set<(signal: RoomSignal) => void>();
let pending: { resolve(): void; reject(error: Error): void } | null = null;

const harness: Harness = {
  connects: [],
  disconnects: 0,
  resolveConnect: () => pending?.resolve(),
  rejectConnect: (message) => pending?.reject(new Error(message)),
  emit: (signal) => listeners.forEach((listener) => listener(signal)),
};
(window as unknown as { talkHarness: Harness }).talkHarness = harness;

/** The production visualizer, on the agent's state alone (there is no audio track without a room). */
function FakeStage({ agentState }: { agentState: AgentState }) {
  return <VoiceVisualizer agentState={agentState} />;
}

function createFakeRoom(): CallRoom {
  const mine = new Set<(signal: RoomSignal) => void>();
  listeners = mine;
  return {
    connect(serverUrl, token) {
      harness.connects.push({ serverUrl, token });
      return new Promise<void>((resolve, reject) => { pending = { resolve, reject }; });
    },
    async disconnect() {
      harness.disconnects += 1;
      // As LiveKit does: the room reports its own end.
      mine.forEach((listener) => listener({ type: 'disconnected', reason: 'you_left' }));
    },
    subscribe(listener) {
      mine.add(listener);
      return () => mine.delete(listener);
    },
    Stage: FakeStage,
  };
}

function Page() {
  const { session } = useAuth();
  if (!session) return <SignIn wantAdmin={false} />;
  return <CallRoomContext.Provider value={createFakeRoom}><CallerApp /></CallRoomContext.Provider>;
}

function Root() {
  const [config, setConfig] = useState<AppConfig | null>(null);
  useEffect(() => {
    void fetch('/app/config').then(async (r) => setConfig((await r.json()) as AppConfig));
  }, []);
  return config ? <AuthProvider config={config}><Page /></AuthProvider> : null;
}

createRoot(document.getElementById('root')!).render(<StrictMode><Root /></StrictMode>);

// The talk screen's port to a call room: what the screen needs from LiveKit, and nothing else. Production
// uses the livekit-client adapter (livekit-room.tsx); the browser tests put a fake in its place through
// CallRoomContext, so every state of the screen can be shown without a LiveKit server.
import { createContext, type ComponentType } from 'react';
import type { AgentState, EndReason } from './talk-state.ts';
import { createLiveKitRoom } from './livekit-room.tsx';

/** What a room reports; the panel stamps attributes with its own clock as they arrive. */
export type RoomSignal =
  | { type: 'agent_state'; state: string }
  /** The agent's whole attribute set (LiveKit merges changes into it). */
  | { type: 'attributes'; record: Readonly<Record<string, string>> }
  | { type: 'purchase_link'; url: string; packageId: string | null }
  | { type: 'disconnected'; reason: EndReason };

export interface CallRoom {
  /** Joins and turns the microphone on; rejects with a message a person can act on. */
  connect(serverUrl: string, token: string): Promise<void>;
  /** Leaves (the room then reports `disconnected` with reason you_left). */
  disconnect(): Promise<void>;
  /** Subscribe before connect(), so nothing said at joining is missed. Returns the unsubscribe. */
  subscribe(listener: (signal: RoomSignal) => void): () => void;
  /** Rendered while in the call: plays the agent's voice and draws its visualizer. */
  Stage: ComponentType<{ agentState: AgentState }>;
}

export type CallRoomFactory = () => CallRoom;

/** Which rooms the talk panel opens: LiveKit's unless a test harness provides another. */
export const CallRoomContext = createContext<CallRoomFactory>(createLiveKitRoom);

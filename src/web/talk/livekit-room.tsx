// The production CallRoom: livekit-client's Room, with @livekit/components-react inside <RoomContext.Provider>
// for the agent's audio (RoomAudioRenderer) and its voice-assistant hook and audio visualizer
// (useVoiceAssistant, BarVisualizer). Version 2.9 is pinned: 3.0.0 dropped both.
//
// The screen's state machine hears the agent's state from the same place useVoiceAssistant reads it, the agent
// participant's `lk.agent.state` attribute, so the fake rooms of the tests can report it too.
import {
  DisconnectReason, ParticipantKind, Room, RoomEvent, type Participant, type RemoteParticipant,
} from 'livekit-client';
import { RoomAudioRenderer, RoomContext, useVoiceAssistant } from '@livekit/components-react';
import { PURCHASE_LINK_TOPIC } from '../../shared/call-protocol.ts';
import type { CallRoom, RoomSignal } from './call-room.ts';
import type { AgentState, EndReason } from './talk-state.ts';
import { VoiceVisualizer } from './VoiceVisualizer.tsx';

const AGENT_STATE_ATTRIBUTE = 'lk.agent.state';

const isAgent = (participant: Participant | undefined) => participant?.kind === ParticipantKind.AGENT;

/** Why the room closed, in the screen's words; `leaving` says who asked first. */
function endReason(leaving: EndReason | null, reason: DisconnectReason | undefined): EndReason {
  if (leaving) return leaving;
  if (reason === DisconnectReason.CLIENT_INITIATED) return 'you_left';
  // The server closing the room is the agent ending the call; anything else is the connection.
  if (reason === DisconnectReason.ROOM_DELETED || reason === DisconnectReason.PARTICIPANT_REMOVED) return 'agent_left';
  return 'connection_lost';
}

function connectFailure(error: unknown): Error {
  const name = error instanceof Error ? error.name : '';
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return new Error('MindBot needs your microphone: allow it for this site in your browser, then try again.');
  }
  if (name === 'NotFoundError') return new Error('No microphone was found: connect one, then try again.');
  return new Error('Could not connect to the call server. Check your connection and try again.');
}

export function createLiveKitRoom(): CallRoom {
  const room = new Room({ adaptiveStream: true, dynacast: true });
  const listeners = new Set<(signal: RoomSignal) => void>();
  const emit = (signal: RoomSignal) => listeners.forEach((listener) => listener(signal));
  let leaving: EndReason | null = null;
  // A room that never joined reports nothing: connect() rejects with the reason instead.
  let joined = false;

  const readAgent = (participant: Participant) => {
    emit({ type: 'agent_state', state: participant.attributes[AGENT_STATE_ATTRIBUTE] ?? 'unknown' });
    emit({ type: 'attributes', record: { ...participant.attributes } });
  };
  room.on(RoomEvent.ParticipantConnected, (participant: RemoteParticipant) => {
    if (isAgent(participant)) readAgent(participant);
  });
  // LiveKit passes the changed keys; the participant holds the merged set, which is what the meter means.
  room.on(RoomEvent.ParticipantAttributesChanged, (_changed, participant) => {
    if (isAgent(participant)) readAgent(participant);
  });
  // The agent leaving is the end of the call (it leaves after the goodbye): leave too.
  room.on(RoomEvent.ParticipantDisconnected, (participant: RemoteParticipant) => {
    if (!isAgent(participant)) return;
    leaving ??= 'agent_left';
    void room.disconnect();
  });
  room.on(RoomEvent.Disconnected, (reason?: DisconnectReason) => {
    if (joined) emit({ type: 'disconnected', reason: endReason(leaving, reason) });
  });
  room.registerTextStreamHandler(PURCHASE_LINK_TOPIC, (reader, { identity }) => {
    // Only the agent may hand the caller a link to pay.
    if (!isAgent(room.remoteParticipants.get(identity))) return;
    const packageId = reader.info.attributes?.package_id ?? null;
    void reader.readAll().then((text) => emit({ type: 'purchase_link', url: text, packageId }), () => undefined);
  });

  function AgentVoice({ agentState }: { agentState: AgentState }) {
    const { audioTrack } = useVoiceAssistant();
    return <VoiceVisualizer agentState={agentState} track={audioTrack} />;
  }

  return {
    async connect(serverUrl, token) {
      try {
        await room.connect(serverUrl, token);
        await room.localParticipant.setMicrophoneEnabled(true);
      } catch (error) {
        leaving = 'you_left';
        await room.disconnect().catch(() => undefined);
        throw connectFailure(error);
      }
      joined = true;
      // Audio may only start after a gesture: the click on "Talk to MindBot" was one.
      void room.startAudio().catch(() => undefined);
      for (const participant of room.remoteParticipants.values()) if (isAgent(participant)) readAgent(participant);
    },
    async disconnect() {
      leaving ??= 'you_left';
      await room.disconnect();
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    Stage: ({ agentState }) => (
      <RoomContext.Provider value={room}>
        <RoomAudioRenderer />
        <AgentVoice agentState={agentState} />
      </RoomContext.Provider>
    ),
  };
}

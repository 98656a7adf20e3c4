// The agent's audio visualizer: @livekit/components-react's BarVisualizer, its bars following the loudness of
// the agent's voice (when a track is given) and the assistant's state. Heights are style props, which the
// CSP allows (it forbids injected <style> elements, not style attributes set by script).
import { BarVisualizer, type AgentState as LiveKitAgentState } from '@livekit/components-react';
import type { ComponentProps } from 'react';
import type { AgentState } from './talk-state.ts';

export const BAR_COUNT = 7;

const LIVEKIT_STATES: readonly string[] = ['disconnected', 'connecting', 'initializing', 'listening', 'thinking', 'speaking'];

export function VoiceVisualizer({ agentState, track }: {
  agentState: AgentState;
  track?: ComponentProps<typeof BarVisualizer>['track'];
}) {
  const state = (LIVEKIT_STATES.includes(agentState) ? agentState : 'connecting') as LiveKitAgentState;
  return (
    <BarVisualizer state={state} track={track} barCount={BAR_COUNT} options={{ minHeight: 12, maxHeight: 100 }}
      className={`voice-bars voice-bars-${agentState}`} aria-hidden="true" data-testid="voice-bars" />
  );
}

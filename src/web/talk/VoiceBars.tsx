// The agent's audio visualizer: a few bars whose heights follow the loudness of its voice per frequency band.
// Drawn with plain elements and style props (the CSP allows no injected <style>).
import type { AgentState } from './talk-state.ts';

export const BAR_COUNT = 7;

export function VoiceBars({ levels, agentState }: { levels: readonly number[]; agentState: AgentState }) {
  const bars = Array.from({ length: BAR_COUNT }, (_, i) => Math.min(1, Math.max(0, levels[i] ?? 0)));
  return (
    <div className={`voice-bars voice-bars-${agentState}`} aria-hidden="true" data-testid="voice-bars">
      {bars.map((level, i) => <span key={i} style={{ height: `${Math.round(12 + level * 88)}%` }} />)}
    </div>
  );
}

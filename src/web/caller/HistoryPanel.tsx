// Placeholder while the panel is being built.
export function HistoryPanel() {
  return null;
}

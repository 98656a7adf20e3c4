// Placeholder while the panel is being built.
export function TalkPanel() {
  return null;
}

// Placeholder while the panel is being built.
export function BalancePanel() {
  return null;
}

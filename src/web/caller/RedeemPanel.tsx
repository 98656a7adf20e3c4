// Placeholder while the panel is being built.
export function RedeemPanel() {
  return null;
}

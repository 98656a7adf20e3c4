// Placeholder while the panel is being built.
export function BuyPanel() {
  return null;
}

// Placeholder while the panel is being built.
export function PurchaseReturn() {
  return null;
}

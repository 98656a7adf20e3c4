import { checkTimeBalanceTool } from './check-time-balance.ts';
import type { BillingToolDeps } from './deps.ts';
import { estimateSessionCostTool } from './estimate-session-cost.ts';
import { getPricingPackagesTool } from './get-pricing-packages.ts';
import { getSessionSummaryTool } from './get-session-summary.ts';
import { startPurchaseProcessTool } from './start-purchase-process.ts';

export type { BillingToolDeps, CallSource, CallView, PurchaseLinkInfo, SendPurchaseLink, ToolPurchaseDeps } from './deps.ts';
export { PURCHASE_LINK_TOPIC, purchaseLinkSender } from './start-purchase-process.ts';
export { checkTimeBalanceTool, estimateSessionCostTool, getPricingPackagesTool, getSessionSummaryTool, startPurchaseProcessTool };

/** The billing tools for a voice.Agent's `tools` (the keys are the names the model calls). */
export function billingTools(deps: BillingToolDeps) {
  return {
    check_time_balance: checkTimeBalanceTool(deps),
    get_pricing_packages: getPricingPackagesTool(deps),
    estimate_session_cost: estimateSessionCostTool(deps),
    start_purchase_process: startPurchaseProcessTool(deps),
    get_session_summary: getSessionSummaryTool(deps),
  };
}

// The call controller's timing, from the environment (src/shared/config.ts checks it against the reaper's).
import type { Config } from '../shared/config.ts';
import { DEFAULT_CALL_OPTIONS, type CallControllerOptions } from './call-controller.ts';

export function callOptionsFromConfig(
  config: Pick<Config, 'CALL_METER_LEAD_MS' | 'CALL_STORE_GRACE_SECONDS' | 'CALL_STORE_RETRY_INITIAL_MS' | 'CALL_STORE_RETRY_MAX_MS' |
    'STORE_TIMEOUT_MS'>,
): CallControllerOptions {
  return {
    ...DEFAULT_CALL_OPTIONS,
    meterLeadMs: config.CALL_METER_LEAD_MS,
    storeOutageGraceSeconds: config.CALL_STORE_GRACE_SECONDS,
    storeRetry: { ...DEFAULT_CALL_OPTIONS.storeRetry, initialMs: config.CALL_STORE_RETRY_INITIAL_MS, maxMs: config.CALL_STORE_RETRY_MAX_MS },
    storeCallTimeoutMs: config.STORE_TIMEOUT_MS,
  };
}

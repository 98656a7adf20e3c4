import type { AppConfigResponse } from '../shared/api-contracts.ts';

/** GET /app/config: what the sidecar tells the browser at start (src/shared/api-contracts.ts). */
export type AppConfig = AppConfigResponse;

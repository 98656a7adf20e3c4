import type { Config } from '../shared/config.ts';
import type { SettingsChanges } from './store.ts';

/** The billing settings the environment asks for; empty when it asks for none (the database keeps its own). */
export function settingsFromEnv(config: Config): SettingsChanges {
  const changes: SettingsChanges = {};
  if (config.BILLING_INCREMENT_SECONDS !== undefined) changes.billing_increment_seconds = config.BILLING_INCREMENT_SECONDS;
  if (config.BILLING_MINIMUM_SECONDS !== undefined) changes.minimum_charge_seconds = config.BILLING_MINIMUM_SECONDS;
  if (config.MAX_CONCURRENT_SESSIONS !== undefined) changes.max_concurrent_sessions = config.MAX_CONCURRENT_SESSIONS;
  if (config.CARD_VALIDITY_DAYS !== undefined) changes.card_validity = `${config.CARD_VALIDITY_DAYS} days`;
  return changes;
}

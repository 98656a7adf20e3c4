import { randomBytes } from 'node:crypto';
import { AccessToken, RoomAgentDispatch, RoomConfiguration } from 'livekit-server-sdk';
import type { BillingStore } from '../billing/store.ts';
import { HttpError } from './http-errors.ts';

export const AGENT_NAME = 'mindbot';

export interface LiveKitSettings {
  url: string;
  apiKey: string;
  apiSecret: string;
  ttlSeconds: number;
}

/** A room name of the caller's own: nobody else is given a token for it. */
export function roomNameFor(userId: string): string {
  return `mindbot-${userId.slice(0, 8)}-${randomBytes(6).toString('hex')}`;
}

/**
 * A LiveKit token for one caller and one room, with an explicit dispatch of the `mindbot` agent. The identity
 * is the verified user id, so the agent knows who is talking and nobody can call on someone else's time.
 * A zero balance gets no token: the call could not start anyway.
 */
export async function mintCallToken(store: BillingStore, settings: LiveKitSettings, userId: string, roomName: string) {
  const balance = await store.getBalance(userId);
  if (balance.total_seconds <= 0) {
    throw new HttpError(402, 'insufficient_balance', 'no conversation time left: buy or redeem a time card to talk to MindBot');
  }
  const token = new AccessToken(settings.apiKey, settings.apiSecret, {
    identity: userId,
    ttl: settings.ttlSeconds,
    metadata: JSON.stringify({ user_id: userId }),
  });
  token.addGrant({ roomJoin: true, room: roomName, canPublish: true, canSubscribe: true, canPublishData: true });
  token.roomConfig = new RoomConfiguration({
    agents: [new RoomAgentDispatch({ agentName: AGENT_NAME, metadata: JSON.stringify({ user_id: userId }) })],
  });
  return {
    server_url: settings.url,
    room_name: roomName,
    identity: userId,
    participant_token: await token.toJwt(),
    expires_at: new Date(Date.now() + settings.ttlSeconds * 1000).toISOString(),
    balance_seconds: balance.total_seconds,
  };
}

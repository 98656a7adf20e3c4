// Who takes part in a call, as billing records it (migrations/014): the agent serving it and, for a phone
// caller, the caller's and the called number. Pure: the worker hands in what LiveKit gave it.
import { ParticipantKind } from '@livekit/rtc-node';

/** The name this worker registers under (explicit dispatch) and the one a call records when the job names none. */
export const AGENT_NAME = 'mindbot';

/** What LiveKit SIP puts on an inbound phone caller: the number they call from and the trunk number they dialled. */
export const SIP_CALLER_NUMBER = 'sip.phoneNumber';
export const SIP_DIALLED_NUMBER = 'sip.trunkPhoneNumber';

// The formats the database accepts (migrations/014_call_parties.sql).
const AGENT_NAME_FORMAT = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const NUMBER_FORMAT = /^[^\s\p{Cc}]{1,128}$/u;

export interface CallParties {
  agentName: string;
  callFrom: string | null;
  callTo: string | null;
}

export interface PartiesInput {
  /** The name the job was dispatched under (empty for an automatic dispatch). */
  dispatchedAgentName: string | null | undefined;
  caller: { kind: ParticipantKind | undefined; attributes: Readonly<Record<string, string>> };
}

/**
 * The parties of a call. Numbers are read from SIP participants only: any other participant may set its own
 * attributes, so a web caller could claim any number. A value the database would refuse is recorded as
 * unknown (null, or the default agent name) rather than refusing a paying caller's call over it.
 */
export function callPartiesOf(input: PartiesInput): CallParties {
  const name = input.dispatchedAgentName?.trim() ?? '';
  const sip = input.caller.kind === ParticipantKind.SIP;
  const number = (key: string): string | null => {
    const value = sip ? input.caller.attributes[key]?.trim() : undefined;
    return value && NUMBER_FORMAT.test(value) ? value : null;
  };
  return {
    agentName: AGENT_NAME_FORMAT.test(name) ? name : AGENT_NAME,
    callFrom: number(SIP_CALLER_NUMBER),
    callTo: number(SIP_DIALLED_NUMBER),
  };
}

// Which agent served a call and, for a phone caller, which numbers: read from what LiveKit gives the worker.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ParticipantKind } from '@livekit/rtc-node';
import { AGENT_NAME, callPartiesOf, type CallParties, type PartiesInput } from '../src/agent/call-parties.ts';

const sipAttributes = {
  'sip.callID': 'SCL_abc', 'sip.phoneNumber': '+15105550100', 'sip.trunkPhoneNumber': '+18449263376', 'sip.trunkID': 'ST_x',
};

const cases: Array<[string, PartiesInput, CallParties]> = [
  ['an inbound phone call to a dispatched agent',
    { dispatchedAgentName: 'juana', caller: { kind: ParticipantKind.SIP, attributes: sipAttributes } },
    { agentName: 'juana', callFrom: '+15105550100', callTo: '+18449263376' }],
  ['an automatic dispatch (no name) from the web app',
    { dispatchedAgentName: '', caller: { kind: ParticipantKind.STANDARD, attributes: {} } },
    { agentName: AGENT_NAME, callFrom: null, callTo: null }],
  ['no job name at all', { dispatchedAgentName: undefined, caller: { kind: undefined, attributes: {} } },
    { agentName: 'mindbot', callFrom: null, callTo: null }],
  ['a web caller that sets SIP-like attributes on itself: not believed',
    { dispatchedAgentName: 'mindbot', caller: { kind: ParticipantKind.STANDARD, attributes: sipAttributes } },
    { agentName: 'mindbot', callFrom: null, callTo: null }],
  ['a SIP caller with a withheld number and a SIP URI as the dialled one',
    { dispatchedAgentName: 'mindbot', caller: { kind: ParticipantKind.SIP,
      attributes: { 'sip.phoneNumber': '', 'sip.trunkPhoneNumber': 'sip:support@pbx.example.com' } } },
    { agentName: 'mindbot', callFrom: null, callTo: 'sip:support@pbx.example.com' }],
  ['values the database would refuse are recorded as unknown, not refused',
    { dispatchedAgentName: 'agent with spaces', caller: { kind: ParticipantKind.SIP,
      attributes: { 'sip.phoneNumber': '+1 510 555 0100', 'sip.trunkPhoneNumber': `+${'1'.repeat(200)}` } } },
    { agentName: 'mindbot', callFrom: null, callTo: null }],
  ['surrounding blanks are trimmed',
    { dispatchedAgentName: ' sales-bot.v2 ', caller: { kind: ParticipantKind.SIP, attributes: { 'sip.phoneNumber': ' +442071838750 ' } } },
    { agentName: 'sales-bot.v2', callFrom: '+442071838750', callTo: null }],
];

describe('the parties of a call', () => {
  for (const [name, input, expected] of cases) {
    it(name, () => assert.deepEqual(callPartiesOf(input), expected));
  }
});

// The MindBot LiveKit agent worker: `./launch.sh worker` (= `node --import tsx src/agent/worker.ts dev`), or
// `... worker.ts start` in production. Defined the framework's way: the default export is the defineAgent(...)
// the job processes import, and cli.runApp(...) runs only when this file is the process's main module, so
// importing it (tests, the job processes) starts nothing and reads no key.
//
// One job = one call. This file is only the glue between LiveKit and the call: it maps the JobContext, the
// Room and the AgentSession onto the ports of src/agent/call-job.ts, which decides everything else (billing
// through a CallController in this process's CallRegistry, greetings, warnings, cut-off, no-balance grace,
// guests, the time-left attributes for the caller's app, when the job ends). The caller is the room
// participant whose identity is their user uuid; any other identity is a guest. Explicit dispatch: the
// sidecar's POST /token names the agent 'mindbot' in the room configuration.
//
// SIGTERM: the main process forwards it to its job processes (src/agent/forward-signal.ts), where each open
// call is settled at that moment, told goodbye and its job ended, so that the CLI's drain finishes quickly.
//
// Voice I/O: Deepgram STT when STT_PROVIDER=deepgram or, unset, whenever DEEPGRAM_API_KEY is set; else the
// OpenAI plugin's STT (src/agent/stt-choice.ts). TTS is the OpenAI plugin's, on api.openai.com with
// OPENAI_API_KEY; the LLM is the configured OpenAI-compatible one (src/agent/model.ts). VAD and turn detection
// are the framework's defaults (the bundled local inference). Nothing here has run against a LiveKit server.
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';
import { cli, defineAgent, log as frameworkLog, ServerOptions, voice, type JobContext } from '@livekit/agents';
import { DisconnectReason, RoomEvent, type RemoteParticipant, type Room } from '@livekit/rtc-node';
import type { Logger } from 'pino';
import { config as loadConfig, type Config } from '../shared/config.ts';
import type { BillingStore } from '../billing/store.ts';
import { CallRegistry, realTimers } from './call-controller.ts';
import { CallJob, type CallRoomEvents, type Speaker, type SpeakerPlan } from './call-job.ts';
import { callOptionsFromConfig } from './call-options.ts';
import { AGENT_NAME, callPartiesOf } from './call-parties.ts';
import { forwardSignalToChildren } from './forward-signal.ts';
import { chooseStt, type SttChoice } from './stt-choice.ts';

export { noBalanceText, WARNING_TEXT, CUT_OFF_TEXT, STORE_DOWN_TEXT, GUEST_REFUSED_TEXT, GUEST_OVER_TEXT } from './call-speech.ts';

export { AGENT_NAME } from './call-parties.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The caller's user id, or null for a guest (an identity that is not a user uuid). */
export function userIdOf(identity: string): string | null {
  return UUID.test(identity) ? identity.toLowerCase() : null;
}

/** The calls of this process (one per job process in practice), so that SIGTERM settles every one of them. */
let registry: CallRegistry | undefined;
/** How to stop each job of this process at a given moment (SIGTERM). */
const stoppers = new Set<(at: Date) => void>();
let sigtermHooked = false;

function hookSigterm(log: Logger): void {
  if (sigtermHooked) return;
  sigtermHooked = true;
  // The framework makes job processes ignore SIGTERM (the worker drains them over IPC); the main process
  // forwards it here so that no second is billed past the moment the worker was told to stop.
  process.on('SIGTERM', () => {
    const at = new Date();
    log.info({ open: registry?.size ?? 0, jobs: stoppers.size }, 'SIGTERM: settling every open call');
    for (const stop of stoppers) stop(at);
    void registry?.shutdownAll('worker_shutdown', at).catch((error: unknown) => log.error({ err: error }, 'shutdownAll failed'));
  });
}

/**
 * The room as the call sees it: the caller's hang-up, and the room going away. The agent's own disconnect
 * (CLIENT_INITIATED: the job shutting down) is not the room closing; the job's shutdown settles that call.
 */
export function callRoomEvents(room: Room, callerIdentity: string, clock: () => Date = () => new Date()): CallRoomEvents {
  const events = new EventEmitter();
  room.on(RoomEvent.ParticipantDisconnected, (participant: RemoteParticipant) => {
    if (participant.identity === callerIdentity) events.emit('caller_left', clock());
  });
  room.on(RoomEvent.Disconnected, (reason: DisconnectReason) => {
    if (reason !== DisconnectReason.CLIENT_INITIATED) events.emit('room_closed', clock());
  });
  return events;
}

/** The AgentSession as the call's voice. */
function speakerOf(session: voice.AgentSession): Speaker {
  return {
    say: (text, options) => session.say(text, {
      allowInterruptions: options.allowInterruptions,
      ...(options.addToChatCtx === undefined ? {} : { addToChatCtx: options.addToChatCtx }),
    }),
    interrupt: () => void session.interrupt(),
  };
}

async function entry(ctx: JobContext): Promise<void> {
  // Configuration first: the plugins are imported only after it parsed (they read their keys on import;
  // the keys are passed explicitly anyway).
  const config: Config = loadConfig();
  const stt = chooseStt(config);
  const { logger } = await import('../shared/logger.ts');
  let log = logger().child({ component: 'worker', jobId: ctx.job.id, room: ctx.job.room?.name, roomSid: ctx.job.room?.sid });

  const { openBillingStore } = await import('../billing/open-store.ts');
  const opened = await openBillingStore(config, { log });
  registry ??= new CallRegistry({ store: opened.store, timers: realTimers, options: callOptionsFromConfig(config) });
  let job: CallJob | null = null;
  let session: voice.AgentSession | null = null;
  const stop = (at: Date) => {
    if (job) void job.shutdown(at);
    else ctx.shutdown('worker_shutdown'); // no caller yet: nothing to settle
  };
  stoppers.add(stop);
  hookSigterm(log);
  // One shutdown callback, in order (the framework runs its callbacks concurrently): settle, log usage, close.
  ctx.addShutdownCallback(async () => {
    stoppers.delete(stop);
    if (job) await job.jobShutdown().catch(() => null);
    if (session) log.info({ usage: session.usage.modelUsage, sessionId: job?.call?.sessionId ?? null }, 'session usage');
    await opened.close().catch((error: unknown) => log.warn({ err: error }, 'closing the billing store failed'));
  });

  await ctx.connect();
  const caller: RemoteParticipant = await ctx.waitForParticipant();
  const userId = userIdOf(caller.identity);
  const parties = callPartiesOf({ dispatchedAgentName: ctx.job.agentName, caller: { kind: caller.kind, attributes: caller.attributes } });
  log = log.child({ identity: caller.identity, userId, guest: userId === null, agentName: parties.agentName });
  log.info({ phone: parties.callFrom !== null || parties.callTo !== null }, 'caller joined');

  const callLog = log;
  const local = ctx.room.localParticipant;
  const call: CallJob = new CallJob({
    caller: { identity: caller.identity, userId },
    externalKey: `${ctx.job.room?.sid || ctx.room.name}:${caller.identity}:${ctx.job.id}`,
    roomName: ctx.room.name ?? ctx.job.room?.name ?? 'unknown',
    parties,
    store: opened.store,
    registry,
    room: callRoomEvents(ctx.room, caller.identity),
    attributes: { setAttributes: (attributes) => local ? local.setAttributes(attributes) : Promise.resolve() },
    openSpeaker: async (plan) => {
      const opened_ = await startSession(ctx, config, stt, opened.store, plan, caller.identity, callLog);
      session = opened_;
      opened_.on(voice.AgentSessionEventTypes.Close, (event) => {
        callLog.info({ reason: String(event.reason) }, 'session closed');
        call.sessionClosed(String(event.reason));
      });
      opened_.on(voice.AgentSessionEventTypes.Error, (event) => callLog.warn({ err: event.error }, 'agent session error'));
      return speakerOf(opened_);
    },
    endJob: (reason) => ctx.shutdown(reason),
    guestAllowanceSeconds: config.GUEST_ALLOWANCE_SECONDS,
    noBalanceGraceSeconds: config.NO_BALANCE_GRACE_SECONDS,
    timers: realTimers,
    clock: () => new Date(),
    log: callLog.child({ component: 'call' }),
  });
  job = call;
  await call.start();
}

/** The AgentSession on the room, listening to the caller only; the MindBot agent with the billing tools. */
async function startSession(
  ctx: JobContext, config: Config, sttChoice: SttChoice, store: BillingStore, plan: SpeakerPlan, identity: string, log: Logger,
): Promise<voice.AgentSession> {
  const openai = await import('@livekit/agents-plugin-openai');
  const { openaiLlm } = await import('./model.ts');
  const { MindBotAgent } = await import('./mindbot-agent.ts');
  const { purchaseLinkSender } = await import('../tools/start-purchase-process.ts');
  const { createStripeClient } = await import('../payments/stripe-client.ts');
  const apiKey = config.OPENAI_API_KEY;
  const stt = sttChoice.provider === 'deepgram'
    ? new (await import('@livekit/agents-plugin-deepgram')).STT({
      apiKey: sttChoice.apiKey, model: sttChoice.model, language: sttChoice.language,
    })
    : new openai.STT({ model: sttChoice.model, ...(sttChoice.apiKey ? { apiKey: sttChoice.apiKey } : {}) });
  const session = new voice.AgentSession({
    llm: openaiLlm(config),
    stt,
    tts: new openai.TTS({ model: config.OPENAI_TTS_MODEL, voice: config.OPENAI_TTS_VOICE, ...(apiKey ? { apiKey } : {}) }),
  });
  const agent = new MindBotAgent({
    store,
    userId: plan.userId,
    call: plan.call,
    callKey: `${ctx.job.id}`,
    sendPurchaseLink: ctx.room.localParticipant ? purchaseLinkSender(ctx.room.localParticipant, identity) : undefined,
    purchase: {
      stripe: createStripeClient(config),
      successUrl: config.CHECKOUT_SUCCESS_URL ?? `${config.PUBLIC_BASE_URL}/purchase/success?session_id={CHECKOUT_SESSION_ID}`,
      cancelUrl: config.CHECKOUT_CANCEL_URL ?? `${config.PUBLIC_BASE_URL}/purchase/cancel`,
      log,
    },
  }, { greeting: plan.greeting });
  await session.start({ agent, room: ctx.room, inputOptions: { participantIdentity: identity } });
  return session;
}

export default defineAgent({ entry });

/** The server options: explicit dispatch to 'mindbot', the health server on AGENT_HEALTH_PORT. */
export function serverOptions(config: Pick<Config, 'AGENT_HEALTH_PORT'>): ServerOptions {
  return new ServerOptions({ agent: fileURLToPath(import.meta.url), agentName: AGENT_NAME, port: config.AGENT_HEALTH_PORT });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1])) {
  let options: ServerOptions;
  try {
    const config = loadConfig();
    chooseStt(config); // a Deepgram without its key fails here, not at the first call
    options = serverOptions(config);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  forwardSignalToChildren('SIGTERM', (pids) => frameworkLog().info({ pids }, 'SIGTERM forwarded to the job processes'));
  cli.runApp(options);
}

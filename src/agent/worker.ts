// The MindBot LiveKit agent worker: `./launch.sh worker` (= `node --import tsx src/agent/worker.ts dev`), or
// `... worker.ts start` in production. Defined the framework's way: the default export is the defineAgent(...)
// the job processes import, and cli.runApp(...) runs only when this file is the process's main module, so
// importing it (tests, the job processes) starts nothing and reads no key.
//
// One job = one call: the caller (the room participant whose identity is their user uuid; any other identity
// is a guest) is billed by a CallController registered in this process's CallRegistry. Explicit dispatch: the
// sidecar's POST /token names the agent 'mindbot' in the room configuration.
//
// Voice I/O: the OpenAI plugin's STT (realtime transcription) and TTS, on api.openai.com with OPENAI_API_KEY;
// the LLM is the configured OpenAI-compatible one (src/agent/model.ts). VAD and turn detection are the
// framework's defaults (the bundled local inference). Deepgram is not installed; to use it, install
// @livekit/agents-plugin-deepgram@1.9.0 and swap the `stt` below.
import { fileURLToPath } from 'node:url';
import { cli, defineAgent, ServerOptions, voice, type JobContext } from '@livekit/agents';
import { RoomEvent, type RemoteParticipant } from '@livekit/rtc-node';
import type { Logger } from 'pino';
import { config as loadConfig, type Config } from '../config.ts';
import type { BillingStore } from '../billing/store.ts';
import { speakDuration, speakList, speakPrice } from '../tools/speak-time.ts';
import { CallRegistry, realTimers, type CallController } from './call-controller.ts';

export const AGENT_NAME = 'mindbot';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The caller's user id, or null for a guest (an identity that is not a user uuid). */
export function userIdOf(identity: string): string | null {
  return UUID.test(identity) ? identity.toLowerCase() : null;
}

/** The calls of this process (one per job process in practice), so that SIGTERM settles every one of them. */
let registry: CallRegistry | undefined;
let sigtermHooked = false;

function callRegistry(store: BillingStore, log: Logger): CallRegistry {
  registry ??= new CallRegistry({ store, timers: realTimers });
  if (!sigtermHooked) {
    sigtermHooked = true;
    // The job process itself ignores SIGTERM (the worker drains it over IPC); settle the calls right away so
    // that no second is billed past the moment the worker was told to stop.
    process.on('SIGTERM', () => {
      log.info({ open: registry?.size ?? 0 }, 'SIGTERM: settling every open call');
      void registry?.shutdownAll('worker_shutdown').catch((error: unknown) => log.error({ err: error }, 'shutdownAll failed'));
    });
  }
  return registry;
}

/** What a caller with no time left hears: kindly, with the packages on sale. */
export function noBalanceText(tiers: ReadonlyArray<{ name: string; base_seconds: number; bonus_seconds: number; price_cents: number; currency: string }>, graceSeconds: number): string {
  const packages = tiers.length === 0
    ? 'No packages are on sale right now, but you can check the MindBot app later.'
    : `You can buy ${speakList(tiers.map((t) =>
      `the ${t.name}, ${speakDuration(t.base_seconds + t.bonus_seconds)} for ${speakPrice(t.price_cents, t.currency)}`))}.`;
  const grace = graceSeconds > 0
    ? ` If you'd like one now, tell me which and I'll put a secure payment link on your screen. I'll stay for ${speakDuration(graceSeconds)}.`
    : '';
  return `Hi, I'm MindBot. I'm sorry, you have no talk time left right now. ${packages}${grace}`;
}

export const WARNING_TEXT = (remainingSeconds: number) =>
  `Just so you know, you have about ${speakDuration(Math.max(60, Math.round(remainingSeconds / 60) * 60))} of talk time left.`;
export const CUT_OFF_TEXT = "Your talk time is used up, so I have to end our call here. Thanks for talking with me, and goodbye!";
export const STORE_DOWN_TEXT = "I'm sorry, I'm having a technical problem keeping track of your time, so I have to end the call. Please call again in a moment. Goodbye!";
export const GUEST_REFUSED_TEXT = "Hi, I'm MindBot. Calls are for MindBot account holders right now. Create a free account in the app and call me again. Goodbye!";
export const GUEST_OVER_TEXT = "That's all the time I have for guests. Create a free account to keep talking with me. Goodbye!";
const START_FAILED_TEXT = "I'm sorry, I can't start our call right now because of a technical problem. Please try again in a moment. Goodbye!";

/** Waits for a speech to be played out, at most `ms` (a stuck TTS must not keep the job alive). */
async function playedOut(handle: voice.SpeechHandle | undefined, ms = 15_000): Promise<void> {
  if (!handle) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    handle.waitForPlayout().catch(() => undefined),
    new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); }),
  ]);
  clearTimeout(timer);
}

async function entry(ctx: JobContext): Promise<void> {
  // Configuration first: the plugins below are imported only after it parsed (they read $OPENAI_API_KEY on import;
  // the keys are passed explicitly anyway).
  const config: Config = loadConfig();
  const { logger } = await import('../logger.ts');
  let log = logger().child({ component: 'worker', jobId: ctx.job.id, room: ctx.job.room?.name, roomSid: ctx.job.room?.sid });

  const { openBillingStore } = await import('../billing/open-store.ts');
  const opened = await openBillingStore(config, { log });
  let controller: CallController | null = null;
  let session: voice.AgentSession | null = null;
  // One shutdown callback, in order (the framework runs its callbacks concurrently): settle, log usage, close.
  ctx.addShutdownCallback(async () => {
    if (controller) await controller.leave('worker_shutdown').catch(() => null);
    if (session) log.info({ usage: session.usage.modelUsage, sessionId: controller?.sessionId ?? null }, 'session usage');
    await opened.close().catch((error: unknown) => log.warn({ err: error }, 'closing the billing store failed'));
  });

  let ending = false;
  /** Ends the job once, after `speech` (a goodbye) has been played out. */
  const endJob = async (reason: string, speech?: voice.SpeechHandle) => {
    if (ending) return;
    ending = true;
    await playedOut(speech);
    log.info({ reason }, 'ending the job');
    ctx.shutdown(reason);
  };

  await ctx.connect();
  const caller: RemoteParticipant = await ctx.waitForParticipant();
  const userId = userIdOf(caller.identity);
  log = log.child({ identity: caller.identity, userId, guest: userId === null });
  log.info('caller joined');

  // Room events: they are the moment the call ends, whatever the session does afterwards.
  let callerLeftAt: Date | null = null;
  ctx.room.on(RoomEvent.ParticipantDisconnected, (participant: RemoteParticipant) => {
    if (participant.identity !== caller.identity) return;
    callerLeftAt = new Date();
    log.info('caller left');
    void controller?.leave('caller_left', callerLeftAt);
    void endJob('caller_left');
  });
  ctx.room.on(RoomEvent.Disconnected, () => {
    log.info('room disconnected');
    void controller?.leave('room_closed', callerLeftAt ?? new Date());
  });

  // Guests are not billed; GUEST_ALLOWANCE_SECONDS bounds them (0 refuses them).
  let noBalance = false;
  if (userId !== null) {
    controller = callRegistry(opened.store, log).create({ store: opened.store, log: log.child({ component: 'call' }) });
    controller.on('no_balance', () => { noBalance = true; });
    try {
      await controller.join({
        userId,
        externalKey: `${ctx.job.room?.sid || ctx.room.name}:${caller.identity}:${ctx.job.id}`,
        roomName: ctx.room.name ?? ctx.job.room?.name ?? 'unknown',
      });
    } catch (error) {
      log.error({ err: error }, 'the call could not be started');
      controller = null;
      // Speak the apology without an LLM (say() needs only TTS).
      session = await startSession(ctx, config, opened.store, null, caller.identity, log, undefined);
      return void endJob('start_failed', session.say(START_FAILED_TEXT, { allowInterruptions: false }));
    }
    if (controller.sessionId) log = log.child({ sessionId: controller.sessionId });
  } else if (config.GUEST_ALLOWANCE_SECONDS === 0) {
    session = await startSession(ctx, config, opened.store, null, caller.identity, log, undefined);
    return void endJob('guest_refused', session.say(GUEST_REFUSED_TEXT, { allowInterruptions: false }));
  }

  const { greetingFor } = await import('./mindbot-agent.ts');
  const greeting = noBalance
    ? noBalanceText(await opened.store.listPricingTiers().catch(() => []), config.NO_BALANCE_GRACE_SECONDS)
    : await greetingFor(opened.store, userId);
  session = await startSession(ctx, config, opened.store, userId, caller.identity, log, greeting, noBalance ? null : controller);
  const live = session;
  live.on(voice.AgentSessionEventTypes.Close, (event) => {
    log.info({ reason: String(event.reason) }, 'session closed');
    void endJob(`session_${String(event.reason)}`);
  });
  live.on(voice.AgentSessionEventTypes.Error, (event) => log.warn({ err: event.error }, 'agent session error'));
  const greetingHandle = live.say(greeting, { allowInterruptions: true, addToChatCtx: false });

  if (noBalance) {
    // Time to hear the packages and buy one; a purchase does not start billing in this call (call again).
    setTimeout(() => {
      void endJob('no_balance', live.say("I have to go now. Once you've bought time, call me again. Goodbye!", { allowInterruptions: false }));
    }, config.NO_BALANCE_GRACE_SECONDS * 1000).unref();
    if (config.NO_BALANCE_GRACE_SECONDS === 0) void endJob('no_balance', greetingHandle);
    return;
  }

  if (controller) {
    let goodbye: voice.SpeechHandle | undefined;
    // say() queues behind the agent's current speech instead of cutting it; the caller cannot talk over it.
    controller.on('warning', ({ remainingSeconds }) => {
      live.say(WARNING_TEXT(remainingSeconds), { allowInterruptions: false });
    });
    controller.on('cut_off', () => {
      live.interrupt();
      goodbye = live.say(CUT_OFF_TEXT, { allowInterruptions: false });
    });
    controller.on('store_unreachable', () => {
      live.interrupt();
      goodbye = live.say(STORE_DOWN_TEXT, { allowInterruptions: false });
    });
    controller.on('ended', ({ reason, settled, state }) => {
      log.info({ reason, settled, billedSeconds: state?.billed_seconds }, 'call settled');
      void endJob(reason, goodbye);
    });
  } else {
    setTimeout(() => {
      void endJob('guest_allowance', live.say(GUEST_OVER_TEXT, { allowInterruptions: false }));
    }, config.GUEST_ALLOWANCE_SECONDS * 1000).unref();
  }
}

/** The AgentSession on the room, listening to the caller only; the MindBot agent with the billing tools. */
async function startSession(
  ctx: JobContext, config: Config, store: BillingStore, userId: string | null, identity: string, log: Logger,
  greeting: string | undefined, call: CallController | null = null,
): Promise<voice.AgentSession> {
  const openai = await import('@livekit/agents-plugin-openai');
  const { openaiLlm } = await import('./model.ts');
  const { MindBotAgent } = await import('./mindbot-agent.ts');
  const { purchaseLinkSender } = await import('../tools/start-purchase-process.ts');
  const { createStripeClient } = await import('../sidecar/stripe-client.ts');
  const apiKey = config.OPENAI_API_KEY;
  const session = new voice.AgentSession({
    llm: openaiLlm(config),
    stt: new openai.STT({ model: config.OPENAI_STT_MODEL, ...(apiKey ? { apiKey } : {}) }),
    tts: new openai.TTS({ model: config.OPENAI_TTS_MODEL, voice: config.OPENAI_TTS_VOICE, ...(apiKey ? { apiKey } : {}) }),
  });
  const agent = new MindBotAgent({
    store,
    userId,
    call,
    callKey: `${ctx.job.id}`,
    sendPurchaseLink: ctx.room.localParticipant ? purchaseLinkSender(ctx.room.localParticipant, identity) : undefined,
    purchase: {
      stripe: createStripeClient(config),
      successUrl: config.CHECKOUT_SUCCESS_URL ?? `${config.PUBLIC_BASE_URL}/purchase/success?session_id={CHECKOUT_SESSION_ID}`,
      cancelUrl: config.CHECKOUT_CANCEL_URL ?? `${config.PUBLIC_BASE_URL}/purchase/cancel`,
      log,
    },
  }, { greeting });
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
    options = serverOptions(loadConfig());
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  cli.runApp(options);
}

// A worker host for tests/scale-out.test.ts, run as its own process (child_process.fork): the agent worker's
// billing half — the store opened from the environment as the worker opens it, a CallRegistry of call
// controllers on real timers — driven over IPC instead of by LiveKit rooms.
//   in:  { type: 'call', id, userId, talkMs }  a caller joins; leaves after talkMs (unless cut off first)
//        { type: 'shutdown' }                  settles every open call (as on SIGTERM) and exits
//   out: { type: 'ready' } | { type: 'started', id, sessionId } | { type: 'no_balance', id }
//        { type: 'ended', id, sessionId, reason, settled, status } | { type: 'failed', id, error }
import pino from 'pino';
import { callOptionsFromConfig } from '../../src/agent/call-options.ts';
import { CallRegistry, realTimers } from '../../src/agent/call-controller.ts';
import { openBillingStore } from '../../src/billing/open-store.ts';
import { parseConfig } from '../../src/shared/config.ts';

type Command = { type: 'call'; id: string; userId: string; talkMs: number } | { type: 'shutdown' };

const send = (message: Record<string, unknown>) => process.send?.(message);
const name = process.env.WORKER_NAME ?? `worker-${process.pid}`;
const log = pino({ level: process.env.LOG_LEVEL ?? 'warn', base: { worker: name } }, pino.destination(2));

const config = parseConfig(process.env);
const opened = await openBillingStore(config, { log });
const registry = new CallRegistry({ store: opened.store, timers: realTimers, log, options: callOptionsFromConfig(config) });

function call(command: Extract<Command, { type: 'call' }>): void {
  const controller = registry.create();
  controller.on('started', ({ state }) => send({ type: 'started', id: command.id, sessionId: state.session_id }));
  controller.on('no_balance', () => send({ type: 'no_balance', id: command.id }));
  controller.on('ended', ({ reason, settled, state }) =>
    send({ type: 'ended', id: command.id, sessionId: state?.session_id ?? controller.sessionId, reason, settled, status: state?.status ?? null }));
  controller.join({ userId: command.userId, externalKey: `${name}:${command.id}`, roomName: `room-${command.id}` })
    .then((state) => {
      if (state) setTimeout(() => void controller.leave('caller_left'), command.talkMs);
    })
    .catch((error: unknown) => send({ type: 'failed', id: command.id, error: String(error) }));
}

process.on('message', (command: Command) => {
  if (command.type === 'call') call(command);
  else {
    void registry.shutdownAll('worker_shutdown').finally(async () => {
      await opened.close().catch(() => {});
      process.exit(0);
    });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });

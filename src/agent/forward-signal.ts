// SIGTERM for the job processes too. The framework's CLI answers SIGTERM in the worker process with drain()
// (in production, up to an hour for the calls to finish), and its forked job processes ignore SIGTERM; under
// Docker or Kubernetes only PID 1 is signalled and SIGKILL follows about ten seconds later, so an open call
// would be billed up to the kill, or left to the reaper. Forwarding the signal lets each job process settle
// its calls at that moment and end its job, so that the drain is over in seconds.
//
// Linux only (/proc); elsewhere there are no children to find and nothing is forwarded.
import { readdirSync, readFileSync } from 'node:fs';

/** The direct children of `pid`, from /proc/<pid>/task/<tid>/children (needs CONFIG_PROC_CHILDREN). */
export function childPidsFromTasks(pid: number, procRoot = '/proc'): number[] {
  const children = new Set<number>();
  for (const tid of readdirSync(`${procRoot}/${pid}/task`)) {
    for (const word of readFileSync(`${procRoot}/${pid}/task/${tid}/children`, 'utf8').split(/\s+/)) {
      if (word) children.add(Number(word));
    }
  }
  return [...children];
}

/** The direct children of `pid`, by the parent pid in every /proc/<n>/stat. */
export function childPidsFromStat(pid: number, procRoot = '/proc'): number[] {
  const children: number[] = [];
  for (const entry of readdirSync(procRoot)) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`${procRoot}/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so count from the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 1).trim().split(/\s+/)[1]);
    if (ppid === pid) children.push(Number(entry));
  }
  return children;
}

/** The direct children of `pid`; [] where /proc cannot tell. */
export function childPids(pid: number = process.pid): number[] {
  try {
    return childPidsFromTasks(pid);
  } catch {
    try {
      return childPidsFromStat(pid);
    } catch {
      return [];
    }
  }
}

/**
 * On the first `signal`, sends it on to every direct child (the framework's job and inference processes; all
 * of them handle SIGTERM). Once, as the CLI's own handler is: a second SIGTERM keeps its default meaning.
 * Returns a function that removes the hook.
 */
export function forwardSignalToChildren(
  signal: NodeJS.Signals = 'SIGTERM',
  onForward: (pids: number[]) => void = () => {},
): () => void {
  const forward = () => {
    const pids = childPids();
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // exited meanwhile
      }
    }
    try {
      onForward(pids);
    } catch {
      // only a report: it must not turn the signal into a crash
    }
  };
  process.once(signal, forward);
  return () => process.off(signal, forward);
}

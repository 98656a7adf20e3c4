// `./launch.sh worker` (dev) runs this first: a LiveKit server that cannot be reached is one line naming the URL
// and the cause, and exit 1, instead of the framework retrying for minutes with a stack per attempt. (`start`,
// in a container, keeps the framework's retries: there the server may come up after the worker.)
import { config, ConfigError } from '../shared/config.ts';
import { liveKitUnreachable } from './network-cause.ts';

function fail(line: string): never {
  process.stderr.write(`worker: ${line}\n`);
  process.exit(1);
}

let url: string | undefined;
try {
  url = config().LIVEKIT_URL;
} catch (error) {
  if (error instanceof ConfigError) fail(error.message);
  throw error;
}
const unreachable = url ? await liveKitUnreachable(url) : 'LIVEKIT_URL is not set';
if (unreachable) fail(unreachable);

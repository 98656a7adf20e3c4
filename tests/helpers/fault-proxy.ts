import net from 'node:net';

/**
 * pass: bytes flow both ways. refuse: every connection is reset, new ones at once (a database that is gone).
 * black-hole: connections are accepted and kept, but nothing is forwarded either way (a stuck primary, a network
 * black hole): the app's bytes go unanswered. resume() goes back to pass: the connections held in the black hole
 * are reset (what was sent into it is lost, as over a dropped route), new ones flow.
 */
export type FaultMode = 'pass' | 'refuse' | 'black-hole';

export interface FaultProxy {
  readonly port: number;
  readonly mode: FaultMode;
  /** The target's URL with the proxy's host and port in its place. */
  urlFor(targetUrl: string): string;
  pass(): void;
  refuse(): void;
  blackHole(): void;
  /** Back to pass. */
  resume(): void;
  /** Connections open through the proxy now. */
  readonly connections: number;
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket | null;
  flowing: boolean;
}

/** A TCP proxy on a loopback port in front of target (PostgreSQL on 127.0.0.1:5432 by default). */
export async function startFaultProxy(target: { host: string; port: number } = { host: '127.0.0.1', port: 5432 }): Promise<FaultProxy> {
  let mode: FaultMode = 'pass';
  const links = new Set<Link>();

  const drop = (link: Link) => {
    links.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  };
  const reset = (link: Link) => {
    links.delete(link);
    link.client.resetAndDestroy();
    link.upstream?.destroy();
  };
  const flow = (link: Link) => {
    if (link.flowing || !link.upstream) return;
    link.flowing = true;
    link.client.pipe(link.upstream);
    link.upstream.pipe(link.client);
  };
  const hold = (link: Link) => {
    if (!link.flowing || !link.upstream) return;
    link.flowing = false;
    link.client.unpipe(link.upstream);
    link.upstream.unpipe(link.client);
    link.client.pause();
    link.upstream.pause();
  };
  const connectUpstream = (link: Link) => {
    const upstream = net.connect(target);
    link.upstream = upstream;
    upstream.pause();
    upstream.on('error', () => drop(link));
    upstream.on('close', () => drop(link));
    upstream.on('connect', () => {
      if (mode === 'pass') flow(link);
    });
  };

  const server = net.createServer((client) => {
    if (mode === 'refuse') {
      client.resetAndDestroy();
      return;
    }
    client.pause();
    const link: Link = { client, upstream: null, flowing: false };
    links.add(link);
    client.on('error', () => drop(link));
    client.on('close', () => drop(link));
    if (mode === 'pass') connectUpstream(link);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('the fault proxy has no port');
  const port = address.port;

  const pass = () => {
    if (mode === 'black-hole') for (const link of [...links]) reset(link);
    mode = 'pass';
  };

  return {
    port,
    get mode() {
      return mode;
    },
    get connections() {
      return links.size;
    },
    urlFor(targetUrl) {
      const url = new URL(targetUrl);
      url.hostname = '127.0.0.1';
      url.port = String(port);
      return url.toString();
    },
    pass,
    resume: pass,
    refuse() {
      mode = 'refuse';
      for (const link of [...links]) reset(link);
    },
    blackHole() {
      mode = 'black-hole';
      for (const link of links) hold(link);
    },
    async close() {
      for (const link of [...links]) drop(link);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

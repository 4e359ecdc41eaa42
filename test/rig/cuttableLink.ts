import net from 'node:net';

/**
 * A TCP front for one local service (the rig's sshd) that a test can cut and resume, as a network that fails
 * would: cut() stops accepting and drops every live connection, resume() listens again on the same port.
 * A `silent` cut leaves the client's socket open and forwards nothing either way (a cable pulled: only the
 * client's keepalives can notice); otherwise the client's connection is reset at once.
 */
export class CuttableLink {
  private server: net.Server | null = null;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  private readonly blackholed = new Set<net.Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  /** Starts listening on 127.0.0.1 (a free port the first time, the same one after a cut). */
  async listen(): Promise<number> {
    if (this.server) return this.port;
    const server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.port = (server.address() as net.AddressInfo).port;
    return this.port;
  }

  get isCut(): boolean {
    return this.server === null;
  }

  /** Live forwarded connections (not counting those a silent cut holds open). */
  get connections(): number {
    return this.pairs.size;
  }

  async cut(options: { silent?: boolean } = {}): Promise<void> {
    const server = this.server;
    this.server = null;
    // The listening socket closes at once; close()'s callback would wait for connections a silent cut holds.
    server?.close();
    for (const pair of this.pairs) {
      pair.client.unpipe(pair.upstream);
      pair.upstream.unpipe(pair.client);
      pair.upstream.destroy();
      if (options.silent) {
        // Read and drop whatever the client sends: nothing reaches the host, nothing comes back.
        pair.client.on('data', () => undefined);
        pair.client.resume();
        this.blackholed.add(pair.client);
        pair.client.once('close', () => this.blackholed.delete(pair.client));
      } else {
        pair.client.resetAndDestroy();
      }
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** Listens again; connections a silent cut held are reset first (the client has given up on them by now). */
  async resume(): Promise<void> {
    for (const s of this.blackholed) s.resetAndDestroy();
    this.blackholed.clear();
    await this.listen();
  }

  async close(): Promise<void> {
    await this.cut();
    for (const s of this.blackholed) s.destroy();
    this.blackholed.clear();
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream };
    this.pairs.add(pair);
    const end = (): void => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

/**
 * A TCP proxy on loopback in front of one server, which a test can cut (every
 * connection dropped, new ones refused) and heal: a network partition of the
 * clients that connect through it.
 */
import { createServer, type Server, Socket } from 'node:net';

export class Partition {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  #cut = false;

  private constructor(server: Server) {
    this.#server = server;
  }

  /** Listens on a free loopback port and forwards to `port`. */
  static async start(port: number): Promise<Partition> {
    const server = createServer();
    const proxy = new Partition(server);
    server.on('connection', (client) => proxy.#forward(client, port));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** The URL clients connect to. */
  get url(): string {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('not listening');
    return `nats://127.0.0.1:${address.port}`;
  }

  /** Drops every connection through the proxy and refuses new ones until {@link heal}. */
  cut(): void {
    this.#cut = true;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  /** Lets connections through again. */
  heal(): void {
    this.#cut = false;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #forward(client: Socket, port: number): void {
    if (this.#cut) {
      client.destroy();
      return;
    }
    const upstream = new Socket();
    for (const s of [client, upstream]) {
      this.#sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.#sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.connect(port, '127.0.0.1');
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

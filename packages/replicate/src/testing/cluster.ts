/**
 * A JetStream cluster of real `nats-server` processes on loopback ports, each
 * node with its own storage directory under one temporary directory, with
 * user/password authentication on. Started and stopped by tests.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { type ConnectionOptions, connect } from '@nats-io/transport-node';

/** Options of {@link NatsCluster.start}. */
export interface ClusterOptions {
  /** Number of servers (default 3). */
  readonly nodes?: number;
  /** The servers' `max_payload` in bytes (default: the server's, 1 MiB). */
  readonly maxPayload?: number;
  /** Public NKeys of users admitted besides the user and password (for NKey tests). */
  readonly nkeys?: readonly string[];
  /**
   * The directory the cluster's own temporary directory (the nodes'
   * JetStream storage, configurations and logs) is created in; default the
   * operating system's temporary directory. A benchmark passes a directory
   * on a disk (`/tmp` is often in memory, where fsync costs nothing).
   */
  readonly directory?: string;
}

/**
 * Throws one clear error when `nats-server` is not on PATH (the package's
 * test script installs Debian's package when it can).
 *
 * @throws `Error` naming what is missing.
 */
export function requireNatsServer(): void {
  const probe = spawnSync('nats-server', ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      "nats-server is not installed: the replication tests need Debian's nats-server package (apt-get install nats-server, as root)",
    );
  }
}

/**
 * `count` distinct free loopback ports. Every port's listener is held until
 * all are drawn: a port drawn and released at once can be drawn again by
 * the next call (the kernel picks at random), and two servers given one
 * port leave a node that never starts.
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => {
      const address = server.address();
      if (address === null || typeof address === 'string') throw new Error('no free port');
      return address.port;
    });
  } finally {
    await Promise.all(
      servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }
}

/** Thrown when a node's process exits before it serves clients (a port taken, a bad config). */
class NodeExited extends Error {
  override name = 'NodeExitedError';
}

/**
 * The `server_name` in the `INFO` line the server on `port` sends first, or
 * `undefined` when nothing accepts a connection there or it sends no NATS
 * greeting within a second.
 */
function greeting(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let text = '';
    const done = (name: string | undefined) => {
      socket.destroy();
      resolve(name);
    };
    socket.setTimeout(1000, () => done(undefined));
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const end = text.indexOf('\r\n');
      if (end < 0) return;
      const line = text.slice(0, end);
      try {
        const info = line.startsWith('INFO ') ? JSON.parse(line.slice(5)) : undefined;
        done(typeof info?.server_name === 'string' ? info.server_name : undefined);
      } catch {
        done(undefined);
      }
    });
    socket.once('error', () => done(undefined));
    socket.once('close', () => done(undefined));
    socket.connect(port, '127.0.0.1');
  });
}

const running = new Set<ChildProcess>();
let exitHook = false;

/** A running cluster. Every process it started is killed by {@link NatsCluster.stop}. */
export class NatsCluster {
  /** Client URLs of the nodes, `nats://127.0.0.1:<port>`. */
  readonly servers: readonly string[];
  /** The user every client must authenticate as. */
  readonly user = 'wal';
  /** The password (random per cluster). */
  readonly password: string;
  readonly #dir: string;
  readonly #configs: string[];
  readonly #ports: number[];
  readonly #children: (ChildProcess | undefined)[];

  private constructor(dir: string, ports: number[], configs: string[], password: string) {
    this.#dir = dir;
    this.#ports = ports;
    this.#configs = configs;
    this.password = password;
    this.servers = ports.map((port) => `nats://127.0.0.1:${port}`);
    this.#children = configs.map(() => undefined);
  }

  /**
   * Starts the nodes and resolves once JetStream can place a stream on every
   * node (a meta leader is elected and knows all peers).
   *
   * A node that exits while the cluster comes up (another process took one
   * of its ports between drawing and binding) is not waited for: the
   * cluster is started again on new ports, up to 3 times.
   *
   * @throws when `nats-server` is missing ({@link requireNatsServer}), a node
   *   exits at each of the 3 starts (the error quotes the end of its log),
   *   or the cluster does not come up within 30 s (everything started is
   *   stopped).
   */
  static async start(options: ClusterOptions = {}): Promise<NatsCluster> {
    requireNatsServer();
    for (let attempt = 1; ; attempt++) {
      try {
        return await NatsCluster.#start(options);
      } catch (error) {
        if (!(error instanceof NodeExited) || attempt === 3) throw error;
      }
    }
  }

  static async #start(options: ClusterOptions): Promise<NatsCluster> {
    const nodes = options.nodes ?? 3;
    const dir = await mkdtemp(join(options.directory ?? tmpdir(), 'wal-nats-'));
    const drawn = await freePorts(2 * nodes);
    const ports = drawn.slice(0, nodes);
    const routes = drawn.slice(nodes);
    const password = randomBytes(12).toString('hex');
    const configs: string[] = [];
    for (let i = 0; i < nodes; i++) {
      const store = join(dir, `n${i}`);
      await mkdir(store);
      const config = join(dir, `n${i}.conf`);
      const others = routes.filter((_, j) => j !== i).map((p) => `"nats-route://127.0.0.1:${p}"`);
      await writeFile(
        config,
        [
          `server_name: n${i}`,
          `listen: "127.0.0.1:${ports[i]}"`,
          ...(options.maxPayload === undefined ? [] : [`max_payload: ${options.maxPayload}`]),
          `jetstream { store_dir: "${store}" }`,
          `authorization { users: [${[
            `{ user: "wal", password: "${password}" }`,
            ...(options.nkeys ?? []).map((key) => `{ nkey: "${key}" }`),
          ].join(', ')}] }`,
          `cluster { name: "wal-test", listen: "127.0.0.1:${routes[i]}", routes: [${others.join(', ')}] }`,
          '',
        ].join('\n'),
      );
      configs.push(config);
    }
    const cluster = new NatsCluster(dir, ports, configs, password);
    try {
      for (let i = 0; i < nodes; i++) await cluster.restart(i);
      await cluster.#jetstreamReady(nodes, Date.now() + 30_000);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Options for a client of this cluster: every node, with the credentials. */
  connectOptions(extra: Partial<ConnectionOptions> = {}): ConnectionOptions {
    return { servers: [...this.servers], user: this.user, pass: this.password, ...extra };
  }

  /** The `server_name` of node `i` (as JetStream reports leaders and peers). */
  name(i: number): string {
    return `n${i}`;
  }

  /** SIGKILLs node `i` and waits for it to exit. */
  async kill(i: number): Promise<void> {
    const child = this.#children[i];
    if (child === undefined) return;
    this.#children[i] = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }
    running.delete(child);
  }

  /**
   * (Re)starts node `i` with its own storage and waits until it serves
   * clients on its port (its `INFO` greeting names it: not another process
   * listening there).
   *
   * @throws when the node exits first (the error quotes the end of its
   *   log), or does not serve within 10 s.
   */
  async restart(i: number): Promise<void> {
    if (this.#children[i] !== undefined) return;
    const log = await open(join(this.#dir, `n${i}.log`), 'a');
    const child = spawn('nats-server', ['-c', this.#configs[i]!], {
      stdio: ['ignore', log.fd, log.fd],
    });
    await log.close();
    this.#children[i] = child;
    running.add(child);
    if (!exitHook) {
      exitHook = true;
      // Never leave a server behind, even when the test process dies.
      const killAll = () => {
        for (const c of running) c.kill('SIGKILL');
      };
      process.once('exit', killAll);
      for (const signal of ['SIGINT', 'SIGTERM'] as const) {
        process.once(signal, () => {
          killAll();
          process.kill(process.pid, signal);
        });
      }
    }
    child.once('exit', () => running.delete(child));
    await this.#serving(i, child, Date.now() + 10_000);
  }

  async #serving(i: number, child: ChildProcess, deadline: number): Promise<void> {
    const port = this.#ports[i]!;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        if (this.#children[i] === child) this.#children[i] = undefined;
        throw await this.#exited(i, child);
      }
      if ((await greeting(port)) === this.name(i)) return;
      if (Date.now() > deadline) {
        throw new Error(`nats-server ${this.name(i)} did not serve clients on port ${port}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async #exited(i: number, child: ChildProcess): Promise<NodeExited> {
    const log = await readFile(join(this.#dir, `${this.name(i)}.log`), 'utf8').catch(() => '');
    const how = child.signalCode ?? `code ${child.exitCode}`;
    return new NodeExited(
      `nats-server ${this.name(i)} exited (${how}) while starting: ${log.trim().split('\n').slice(-3).join(' | ')}`,
    );
  }

  /** Kills every node and removes the temporary directory. */
  async stop(): Promise<void> {
    for (let i = 0; i < this.#children.length; i++) await this.kill(i);
    await rm(this.#dir, { recursive: true, force: true });
  }

  async #jetstreamReady(nodes: number, deadline: number): Promise<void> {
    const nc = await connect(this.connectOptions());
    try {
      for (;;) {
        try {
          const jsm = await jetstreamManager(nc, { timeout: 2000 });
          await jsm.streams.add({ name: 'ready', subjects: ['ready'], num_replicas: nodes });
          await jsm.streams.delete('ready');
          return;
        } catch (error) {
          // A node that failed after it began serving clients (its route
          // port taken) never comes back: no use waiting out the deadline.
          for (const [i, child] of this.#children.entries()) {
            if (child !== undefined && (child.exitCode !== null || child.signalCode !== null)) {
              throw await this.#exited(i, child);
            }
          }
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    } finally {
      await nc.close();
    }
  }
}

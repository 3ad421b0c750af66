/**
 * A JetStream cluster of real `nats-server` processes on loopback ports, each
 * node with its own storage directory under one temporary directory, with
 * user/password authentication on. Started and stopped by tests.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
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

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

async function listening(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nats-server did not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
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
   * @throws when `nats-server` is missing ({@link requireNatsServer}) or the
   *   cluster does not come up within 30 s (everything started is stopped).
   */
  static async start(options: ClusterOptions = {}): Promise<NatsCluster> {
    requireNatsServer();
    const nodes = options.nodes ?? 3;
    const dir = await mkdtemp(join(options.directory ?? tmpdir(), 'wal-nats-'));
    const ports: number[] = [];
    const routes: number[] = [];
    for (let i = 0; i < nodes; i++) {
      ports.push(await freePort());
      routes.push(await freePort());
    }
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

  /** (Re)starts node `i` with its own storage and waits until it listens. */
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
    await listening(this.#ports[i]!, Date.now() + 10_000);
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
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
    } finally {
      await nc.close();
    }
  }
}

import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { runServer } from 'verdaccio';

/** A private npm registry served by this process on loopback. */
export interface Registry {
  /** Its URL, `http://127.0.0.1:<port>/`. */
  url: string;
  /** A token that may publish, for an `.npmrc` line `//127.0.0.1:<port>/:_authToken=<token>`. */
  token: string;
  /** Stops serving and drops open connections. Safe to call twice. */
  stop(): Promise<void>;
}

/**
 * Starts a private registry (verdaccio) on a free loopback port, its storage
 * and user file in `dir`. Packages in `scope` (e.g. `@wal`) are served only
 * from what is published to it, never looked up upstream; every other package
 * is fetched from `upstream` (the machine's own registry, reached through the
 * environment as npm reaches it). Creates one user and returns its token.
 * Rejects when the server cannot start or the user cannot be created; the
 * server is stopped then.
 */
export async function startRegistry(options: {
  dir: string;
  upstream: string;
  scope: string;
}): Promise<Registry> {
  const server: Server = await runServer({
    self_path: join(options.dir, 'config.yaml'),
    storage: join(options.dir, 'storage'),
    auth: { htpasswd: { file: join(options.dir, 'htpasswd'), max_users: 1 } },
    uplinks: { upstream: { url: options.upstream, cache: false } },
    packages: {
      [`${options.scope}/*`]: { access: '$all', publish: '$authenticated' },
      '**': { access: '$all', proxy: 'upstream' },
    },
    log: { type: 'stdout', format: 'pretty', level: 'error' },
    web: { enable: false },
  } as never);
  let stopped: Promise<void> | undefined;
  const stop = () => {
    stopped ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return stopped;
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const user = 'release-check';
    const response = await fetch(new URL(`-/user/org.couchdb.user:${user}`, url), {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: user, password: `${user}-${process.pid}` }),
    });
    const body = (await response.json()) as { token?: string };
    if (!response.ok || body.token === undefined) {
      throw new Error(`the registry refused to create a user: ${JSON.stringify(body)}`);
    }
    return { url, token: body.token, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

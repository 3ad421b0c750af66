// The test cluster (`@wal/replicate/testing`): distinct ports, a node that
// cannot start, and where it keeps its files (`NatsCluster.start({ directory })`).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsCluster } from '@wal/replicate/testing';
import { freePorts } from '../src/testing/cluster.js';

describe('NatsCluster (the test cluster)', function () {
  this.timeout(60_000);

  it('draws distinct ports, however many it needs at once', async () => {
    // Drawn one by one, each released at once, 500 ports repeat one another
    // almost surely (Linux picks at random among some 14 000): a
    // cluster given one port twice has a node that never starts.
    const ports = await freePorts(500);
    assert.equal(ports.length, 500);
    assert.equal(new Set(ports).size, 500, 'no port drawn twice');
  });

  it('a node that cannot take its port fails restart(), quoting its log, instead of another listener passing for it', async () => {
    const cluster = await NatsCluster.start();
    const squatter = createServer((socket) => socket.destroy());
    try {
      await cluster.kill(0);
      const port = Number(new URL(cluster.servers[0]!).port);
      await new Promise<void>((resolve, reject) => {
        squatter.once('error', reject);
        squatter.listen(port, '127.0.0.1', resolve);
      });
      await assert.rejects(cluster.restart(0), (error: Error) => {
        assert.match(
          error.message,
          /nats-server n0 exited .* while starting: .*address already in use/,
        );
        return true;
      });
      // The node is down, not running: freed, restart() starts it once the port is.
      await new Promise<void>((resolve) => squatter.close(() => resolve()));
      await cluster.restart(0);
    } finally {
      squatter.close();
      await cluster.stop();
    }
  });
});

describe('NatsCluster: the directory option (real servers)', function () {
  this.timeout(60_000);
  let parent: string;

  beforeEach(() => {
    parent = mkdtempSync(join(tmpdir(), 'wal-cluster-parent-'));
  });

  afterEach(() => rmSync(parent, { recursive: true, force: true }));

  it('keeps the nodes’ storage in a temporary directory inside `directory`, removed by stop', async () => {
    const cluster = await NatsCluster.start({ directory: parent });
    let inside: string[];
    try {
      inside = readdirSync(parent);
      assert.equal(inside.length, 1);
      assert.match(inside[0]!, /^wal-nats-/);
      assert.ok(existsSync(join(parent, inside[0]!, 'n0')), 'a node’s JetStream storage');
    } finally {
      await cluster.stop();
    }
    assert.deepEqual(readdirSync(parent), []);
  });
});

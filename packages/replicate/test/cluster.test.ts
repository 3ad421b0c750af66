// Where the test cluster keeps its files: `NatsCluster.start({ directory })`.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsCluster } from '@wal/replicate/testing';

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

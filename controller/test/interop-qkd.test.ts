// Controller ↔ firmware interop for the QKD suites (firmware/HANDSHAKE.md §11, PROTOCOL.md `qkd`): keys are
// provisioned into the real POSIX node's store over the serial line, then bursts of both suites run against the
// real handshake server, which takes the same keys (by key_ID) from an in-memory QKD pair source.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { NodeLink, LinkError } from '../drivers/node.js';
import { generateServerKeys, type ServerKeys } from '../handshake/server.js';
import type { JsonObject } from '../link/frame.js';
import { provisionNode, QkdKeyPairSource } from '../handshake/qkd.js';
import { QKD_SUITES } from '../handshake/wire.js';
import { withNode, withServer, burst } from './harness.js';
import { DEFAULT_TARGET, qkdInteropCases } from './interop-cases.js';

let keys: ServerKeys;
before(() => {
  keys = generateServerKeys();
});




const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 50));
const count = async (link: NodeLink): Promise<number> => (await link.request('qkd', { op: 'count' })).count as number;

test('qkd load/count/clear over serial; provisioning cost at 115200 baud (paced)', async (t) => {
  await withNode('iqkd-store', async (link, { lines }) => {
    assert.equal(await count(link), 0);
    assert.ok(link.hello!.suites.includes('qkd-mlkem768') && link.hello!.suites.includes('qkd-x25519mlkem768'));
    const pool = new QkdKeyPairSource();
    const ks = pool.generate(90);
    const r = await provisionNode(link, ks);
    assert.equal(r.keys, 90);
    assert.equal(r.requests, 10, '9 keys per 1024-byte request line');
    assert.equal(await count(link), 90);
    t.diagnostic(`provisioning 90 keys at 115200 baud (paced): ${r.bytes} bytes, ${r.ms.toFixed(0)} ms → ` +
      `${(r.bytes / 90).toFixed(1)} bytes/key, ${(r.ms / 90).toFixed(2)} ms/key (line ${(r.bytes / 90 * 10 / 115.2).toFixed(2)} ms/key)`);
    // duplicates, malformed batches, wrong key sizes: all or nothing
    await assert.rejects(provisionNode(link, ks.slice(0, 1)), (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS' && /already loaded/.test(e.message));
    const bad = (keysArg: string, re: RegExp) => assert.rejects(link.request('qkd', { op: 'load', keys: keysArg }),
      (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS' && re.test(e.message));
    await bad('', /empty/);
    await bad(`${ks[0]!.keyId}=abcd`, /item 0/);
    await bad(`not-a-uuid-0000-0000-0000-000000000000=${'00'.repeat(32)}`, /item 0/);
    const fresh = pool.generate(2);
    await bad(`${fresh[0]!.keyId}=${'11'.repeat(32)};${fresh[0]!.keyId}=${'22'.repeat(32)}`, /repeats/);
    assert.equal(await count(link), 90, 'failed loads change nothing');
    await assert.rejects(link.request('qkd', { op: 'nope' }), (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS');
    // the store holds 256 keys
    await provisionNode(link, pool.generate(166));
    assert.equal(await count(link), 256);
    await assert.rejects(provisionNode(link, fresh), (e: unknown) => e instanceof LinkError && e.code === 'E_QKD_FULL');
    const cl = await link.request('qkd', { op: 'clear' });
    assert.equal(cl.cleared, 256);
    assert.equal(await count(link), 0);
    // reset wipes the store
    await provisionNode(link, fresh);
    const boot = new Promise<JsonObject>((res) => link.once('boot', res));
    await link.request('reset');
    await boot;
    await link.connect();
    assert.equal(await count(link), 0, 'no key survives a reset');
    const all = [...ks, ...fresh].map((k) => k.key.toString('hex'));
    for (const l of lines) for (const h of all) assert.ok(!l.toLowerCase().includes(h), 'key bytes on the console');
  }, { baud: 115200, pace: true });
});

// Both QKD suites × both AEADs (same key_IDs on both ends, each once, key refresh): shared with
// interop-mbedtls.test.ts, see interop-cases.ts.
qkdInteropCases(DEFAULT_TARGET);

test('a flipped bit in the node\'s copy of a key fails key confirmation; an unknown key_ID is E_QKD_KEY', async () => {
  const pool = new QkdKeyPairSource();
  const ks = pool.generate(10);
  await withServer({ keys, qkd: pool.master }, (srv, port, sops) =>
    withNode('iqkd-fail', async (link) => {
      const nodeCopy = ks.map((k) => ({ keyId: k.keyId, key: Buffer.from(k.key) }));
      nodeCopy[1]!.key[5]! ^= 0x10;   // the second key the server hands out
      await provisionNode(link, nodeCopy);
      for (const suite of QKD_SUITES) {
        const { res, events } = await burst(link, port, srv.pin(suite), { suite, n: 1, records: 0 });
        assert.equal((res.done as number) + (res.failed as number), 1);
        if (suite === 'qkd-mlkem768') assert.equal(res.done, 1, 'first key fine');
        else {
          assert.equal(res.failed, 1);
          assert.equal(events[0]!.err, 'E_QKD_CONFIRM', JSON.stringify(events[0]));
          assert.match(events[0]!.msg as string, new RegExp(`key confirmation failed \\(QKD key ${ks[1]!.keyId}\\)`));
        }
      }
      await settle();
      const s = sops.find((o) => o.qkdKeyIds[0] === ks[1]!.keyId)!;
      assert.equal(s.err, 'handshake_failure');
      assert.match(s.msg!, /key confirmation failed \(QKD key .*\): client Finished does not verify/);
      // unknown key_ID: the server hands out keys the node never received
      const extra = pool.generate(3);
      await link.request('qkd', { op: 'clear' });
      const { res, events } = await burst(link, port, srv.pin('qkd-mlkem768'), { suite: 'qkd-mlkem768', n: 1, records: 0 });
      assert.equal(res.failed, 1);
      assert.equal(events[0]!.err, 'E_QKD_KEY');
      assert.match(events[0]!.msg as string, /unknown QKD key_ID [0-9a-f-]{36} \(epoch 0\)/);
      await settle();
      assert.equal(sops.at(-1)!.err, 'peer_alert:handshake_failure');
      assert.ok(extra.length);
      // too many epochs for one connection, and mutual with a QKD suite, are E_ARGS
      await assert.rejects(link.request('hs', { host: '127.0.0.1', port, pin: srv.pin('qkd-mlkem768'), suite: 'qkd-mlkem768', records: 1000, refresh: 1 }),
        (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS');
      await assert.rejects(link.request('hs', { host: '127.0.0.1', port, pin: srv.pin('qkd-mlkem768'), suite: 'qkd-mlkem768', mutual: true }),
        (e: unknown) => e instanceof LinkError && e.code === 'E_ARGS');
    }),
  );
});

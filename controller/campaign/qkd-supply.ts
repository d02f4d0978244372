// QKD keys for the QKD suites of a campaign. The controller's handshake server is the master SAE: it gets keys
// from KME A with enc_keys. Each node is a slave SAE: its copies come from KME B with dec_keys (the node's own
// client certificate) and reach the node as a batch over the serial control plane — the trusted-node delivery of
// PROTOCOL.md (`qkd load`). Each key is used once; the node's store holds QKD_STORE_CAP keys at a time.
import { readFileSync } from 'node:fs';
import { KmeClient, KmeError, keyBytes } from '../kme/client.js';
import type { KmePair } from '../kme/serve.js';
import { QKD_STORE_CAP, qkdUpdFor, provisionNode, type QkdKey, type QkdKeySource } from '../handshake/qkd.js';
import type { NodeLink } from '../drivers/node.js';

export type PoolPolicy = 'wait' | 'fallback' | 'abort';

export const MASTER_SAE = 'sae-controller';
export const saeOf = (node: string): string => `sae-${node}`;

/** What a burst of `ops` operations needs: one key for the handshake plus one per record-epoch refresh. */
export function keysPerOp(records: number, refresh: number): number {
  return 1 + qkdUpdFor(records, refresh);
}

/** The most operations one provisioning batch can cover. */
export function opsPerBatch(records: number, refresh: number): number {
  return Math.max(1, Math.floor(QKD_STORE_CAP / keysPerOp(records, refresh)));
}

export class PoolEmpty extends Error {}

export interface Provisioned {
  /** The server's view of this batch, in order. */
  source: QkdKeySource & { readonly left: number };
  /** Wipes the keys the server did not take. */
  dispose(): void;
  keyIds: string[];
  serialBytes: number;
  serialMs: number;
  waitedMs: number;
}

export class QkdSupply {
  private readonly master: KmeClient;
  private readonly slaves = new Map<string, KmeClient>();

  constructor(private readonly pair: KmePair, private readonly keyBits = 256) {
    const ca = readFileSync(pair.pki.ca);
    const m = pair.pki.saes[MASTER_SAE]!;
    this.master = new KmeClient({ url: pair.a.url, cert: readFileSync(m.cert), key: readFileSync(m.key), ca });
    for (const [sae, p] of Object.entries(pair.pki.saes)) {
      if (sae !== MASTER_SAE) this.slaves.set(sae, new KmeClient({ url: pair.b.url, cert: readFileSync(p.cert), key: readFileSync(p.key), ca }));
    }
  }

  /**
   * Gets `n` keys for `node` from both KMEs and loads the node's copies onto it. An empty pool either waits for
   * the link to deliver (policy 'wait', until `deadline`) or throws PoolEmpty.
   */
  async provision(node: string, link: NodeLink, n: number, policy: PoolPolicy, deadline: number): Promise<Provisioned> {
    const sae = saeOf(node);
    const slave = this.slaves.get(sae);
    if (!slave) throw new Error(`no SAE certificate for node ${node} (${sae})`);
    const masterKeys: QkdKey[] = [];
    let waitedMs = 0;
    const per = this.pair.limits.maxKeyPerRequest;
    while (masterKeys.length < n) {
      const want = Math.min(per, n - masterKeys.length);
      try {
        const got = await this.master.encKeys(sae, { number: want, size: this.keyBits });
        for (const k of got.keys) masterKeys.push({ keyId: k.key_ID.toLowerCase(), key: keyBytes(k) });
      } catch (e) {
        if (!(e instanceof KmeError) || e.status !== 503) throw e;
        const reason = e.body?.message ?? e.message;
        if (policy !== 'wait' || Date.now() + 500 > deadline) {
          for (const k of masterKeys) k.key.fill(0);
          throw new PoolEmpty(`QKD key pool empty: ${reason}`);
        }
        const t = Date.now();
        await new Promise((r) => setTimeout(r, 500));
        waitedMs += Date.now() - t;
      }
    }
    const ids = masterKeys.map((k) => k.keyId);
    const nodeKeys: QkdKey[] = [];
    for (let i = 0; i < ids.length; i += per) {
      const got = await slave.decKeys(MASTER_SAE, ids.slice(i, i + per));
      for (const k of got.keys) nodeKeys.push({ keyId: k.key_ID.toLowerCase(), key: keyBytes(k) });
    }
    // Keys of an earlier batch still on the node (operations that failed before using them) can never be used:
    // that batch's server side is gone. Drop them so this batch fits the node's store.
    await link.request('qkd', { op: 'clear' }, { timeoutMs: 5000 });
    const cost = await provisionNode(link, nodeKeys);
    for (const k of nodeKeys) k.key.fill(0);
    let next = 0;
    const source = {
      get left() {
        return masterKeys.length - next;
      },
      take: async (count: number): Promise<QkdKey[]> => {
        if (next + count > masterKeys.length) throw new Error(`QKD batch exhausted: ${count} keys wanted, ${masterKeys.length - next} left`);
        const out = masterKeys.slice(next, next + count);
        next += count;
        return out;
      },
    };
    const dispose = () => {
      for (const k of masterKeys.slice(next)) k.key.fill(0);
      next = masterKeys.length;
    };
    return { source, dispose, keyIds: ids, serialBytes: cost.bytes, serialMs: cost.ms, waitedMs };
  }

  async close(): Promise<void> {
    this.master.close();
    for (const c of this.slaves.values()) c.close();
  }
}

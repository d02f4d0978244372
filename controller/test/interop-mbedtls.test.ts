// The mbedTLS crypto port (firmware/crypto/mbedtls.c, the ESP32 build's) passes the same interop tests as the
// POSIX build's OpenSSL port: the same core and POSIX platform port linked against libmbedcrypto
// (firmware/build/qslab-node-mbedtls, built by `npm run build:firmware` when libmbedtls-dev is installed), run
// through the shared cases of interop.test.ts / interop-pq.test.ts /
// interop-qkd.test.ts / handshake-none.test.ts (interop-cases.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NODE_BINARY_MBEDTLS, ROOT } from '../paths.js';
import { SUITES } from '../config/campaign.js';
import { withNode } from './harness.js';
import { requireService } from './services.js';
import { classicalInteropCases, plaintextInteropCases, pqInteropCases, qkdInteropCases, type NodeTarget } from './interop-cases.js';

const MBEDTLS: NodeTarget = {
  tag: ' [mbedtls]',
  binary: NODE_BINARY_MBEDTLS,
  ready: (tc) => requireService(tc, 'libmbedtls-dev', existsSync(NODE_BINARY_MBEDTLS)),
};

test('the mbedTLS build says hello with its own build hash and every suite [mbedtls]', async (tc) => {
  if (!MBEDTLS.ready(tc)) return;
  await withNode('imb-hello', async (link, { vn }) => {
    const h = link.hello!;
    assert.equal(h.proto, 1);
    // the hash the Makefile computed for the mbedTLS build (over crypto/mbedtls.c, -lmbedcrypto): proves which
    // binary answered
    const want = readFileSync(join(ROOT, 'firmware', 'build', 'build-hash-mbedtls.txt'), 'utf8').trim();
    assert.equal(h.build, want);
    for (const s of SUITES) assert.ok(h.suites.includes(s), `node lacks ${s}`);
    assert.ok(vn.stderr.every((l) => !/crypto library initialisation failed/.test(l)), vn.stderr.join('\n'));
  }, { binary: NODE_BINARY_MBEDTLS });
});

classicalInteropCases(MBEDTLS);
pqInteropCases(MBEDTLS);
qkdInteropCases(MBEDTLS);
plaintextInteropCases(MBEDTLS);

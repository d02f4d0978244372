#!/usr/bin/env node
// Builds the node firmware's POSIX build (firmware/build/qslab-node), its host unit tests and test tools, then
// runs the unit tests. Plain Node ESM, no dependencies. Incremental: make rebuilds only what changed.
// When the mbedTLS development files are present (Debian: libmbedtls-dev) it also builds the same core with the
// mbedTLS crypto port (firmware/build/qslab-node-mbedtls, `make mbedtls`) and runs the unit tests against it;
// otherwise it prints one line saying that build was skipped.
//
//   node controller/build-firmware.mjs          (npm run build:firmware)
//
// Exit status: 0 built and tested; 1 missing toolchain (the message names the Debian packages), build or
// test failure.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const firmware = join(root, 'firmware');
const INSTALL = 'install them with: sudo apt-get install -y build-essential libssl-dev';

function fail(msg) {
  console.error(`build-firmware: ${msg}`);
  process.exit(1);
}

function runs(cmd, args) {
  const r = spawnSync(cmd, args, { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

// 1. A C compiler and make (Debian: build-essential).
const cc = [process.env.CC, 'cc', 'gcc'].find((c) => c && runs(c, ['--version']));
if (!cc) fail(`no C compiler found (tried ${process.env.CC ? `$CC=${process.env.CC}, ` : ''}cc, gcc); ${INSTALL}`);
if (!runs('make', ['--version'])) fail(`make not found; ${INSTALL}`);

/** Compiles and links a small C program against `lib`; returns the compiler's result (temp files removed). */
function probe(lines, lib) {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-probe-'));
  try {
    const src = join(dir, 'probe.c');
    writeFileSync(src, [...lines, ''].join('\n'));
    return spawnSync(cc, ['-std=c11', src, '-o', join(dir, 'probe'), lib], { encoding: 'utf8' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// 2. OpenSSL 3 headers and libcrypto (Debian: libssl-dev): compile and link a probe.
{
  const r = probe([
    '#include <openssl/evp.h>',
    '#include <openssl/opensslv.h>',
    '#if OPENSSL_VERSION_MAJOR < 3',
    '#error OpenSSL 3 required',
    '#endif',
    'int main(void) { EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL); EVP_MD_free(md); return 0; }',
  ], '-lcrypto');
  if (r.error || r.status !== 0) {
    const out = `${r.stderr ?? ''}${r.stdout ?? ''}`;
    if (/openssl\/(evp|opensslv)\.h/.test(out)) fail(`openssl/evp.h not found (OpenSSL 3 development headers); ${INSTALL}`);
    if (/OpenSSL 3 required/.test(out)) fail(`OpenSSL 3 is required (found an older libssl-dev); ${INSTALL}`);
    if (/-lcrypto|cannot find/.test(out)) fail(`libcrypto not found for linking; ${INSTALL}`);
    fail(`the C compiler cannot build an OpenSSL probe:\n${out.trim()}\n${INSTALL}`);
  }
}

// 3. Build (incremental) and run the unit tests.
const make = spawnSync('make', ['-C', firmware, '-j2', '--no-print-directory', `CC=${cc}`], { stdio: 'inherit' });
if (make.error || make.status !== 0) fail('firmware build failed (see above)');

const test = spawnSync(join(firmware, 'build', 'qslab-core-test'), [], { stdio: 'inherit' });
if (test.error || test.status !== 0) fail(`firmware unit tests failed${test.signal ? ` (signal ${test.signal})` : ''}`);

// The virtual firmware image (what `qslab flash` writes to virtual nodes): the container of
// controller/flash/image.ts (keep in sync): "QSVIMG1\0", build hash (16 bytes ASCII), u32 LE length, u32 0,
// SHA-256 of the ELF, then the ELF.
{
  const bin = join(firmware, 'build', 'qslab-node');
  const ver = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  const m = /^qslab-node \S+ build ([0-9a-f]{1,16})$/m.exec(ver.stdout ?? '');
  if (ver.error || ver.status !== 0 || !m) fail(`${bin} --version did not print "qslab-node <fw> build <hash>"`);
  const elf = readFileSync(bin);
  const head = Buffer.alloc(64);
  head.write('QSVIMG1\0', 0, 'latin1');
  head.write(m[1], 8, 16, 'latin1');
  head.writeUInt32LE(elf.length, 24);
  createHash('sha256').update(elf).digest().copy(head, 32);
  writeFileSync(join(firmware, 'build', 'qslab-node.qsimg'), Buffer.concat([head, elf]));
}

// 4. The mbedTLS crypto port (the ESP32 build's), only when its headers and libmbedcrypto are present.
function haveMbedtls() {
  const r = probe([
    '#include <mbedtls/version.h>',
    '#include <mbedtls/chachapoly.h>',
    '#include <mbedtls/ecdh.h>',
    '#include <mbedtls/pk.h>',
    'int main(void) { mbedtls_chachapoly_context c; mbedtls_chachapoly_init(&c); mbedtls_chachapoly_free(&c); return 0; }',
  ], '-lmbedcrypto');
  return !r.error && r.status === 0;
}

if (!haveMbedtls()) {
  console.log('build-firmware: mbedTLS crypto port skipped (mbedtls headers / libmbedcrypto not found; install them with: sudo apt-get install -y libmbedtls-dev)');
} else {
  const mb = spawnSync('make', ['-C', firmware, '-j2', '--no-print-directory', `CC=${cc}`, 'mbedtls'], { stdio: 'inherit' });
  if (mb.error || mb.status !== 0) fail('firmware build with the mbedTLS crypto port failed (see above)');
  const mt = spawnSync(join(firmware, 'build', 'qslab-core-test-mbedtls'), [], { stdio: 'inherit' });
  if (mt.error || mt.status !== 0) fail(`firmware unit tests (mbedTLS crypto port) failed${mt.signal ? ` (signal ${mt.signal})` : ''}`);
}

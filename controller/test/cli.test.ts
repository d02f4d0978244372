// The qslab command line: help on every command, exit codes, JSON output, rig check, report.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../paths.js';

const CLI = join(ROOT, 'dist/controller/cli.js');

function qslab(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 120000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

test('every command has --help', async () => {
  for (const cmd of [[], ['run'], ['rig', 'check'], ['report'], ['runs'], ['push']]) {
    const r = await qslab([...cmd, '--help']);
    assert.equal(r.code, 0, `${cmd.join(' ')} --help`);
    assert.match(r.stdout, /Usage: qslab/);
  }
});

test('a bad rig file exits 2 with a located message; a missing campaign exits 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-cli-'));
  const rig = join(dir, 'bad.yaml');
  writeFileSync(rig, 'name: bad\nnodes:\n  - name: x\n    kind: virtual\n    board: esp64\n');
  const r = await qslab(['rig', 'check', rig]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.yaml:5:12: nodes\[0\]\.board: .*Fix: use one of/);
  const m = await qslab(['run', join(dir, 'nope.yaml')]);
  assert.equal(m.code, 2);
  assert.match(m.stderr, /cannot read \(ENOENT\)/);
  rmSync(dir, { recursive: true, force: true });
});

test('rig check prints every node\'s hello as JSON; an unhealthy node makes it exit 1', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-cli-'));
  const good = join(dir, 'good.yaml');
  writeFileSync(good, 'name: good\nnodes:\n  - { name: rc-a, kind: virtual, board: esp32 }\n  - { name: rc-b, kind: virtual, board: rpi4 }\n');
  const r = await qslab(['rig', 'check', good, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { nodes: { node: string; healthy: boolean; build: string; board: string; ram: number; cpu_mhz: number; fw: string }[] };
  assert.equal(j.nodes.length, 2);
  for (const n of j.nodes) {
    assert.equal(n.healthy, true);
    assert.match(n.build, /^[0-9a-f]{16}$/);
    assert.equal(n.fw, '0.1.0');
  }
  assert.equal(j.nodes.find((n) => n.node === 'rc-b')!.cpu_mhz, 1500);
  const bad = join(dir, 'bad.yaml');
  writeFileSync(bad, 'name: bad\nnodes:\n  - { name: rc-c, kind: virtual, board: esp32 }\n  - { name: gone, kind: serial, board: esp32, port: /dev/serial/by-id/usb-nothing-here }\n');
  const b = await qslab(['rig', 'check', bad]);
  assert.equal(b.code, 1);
  assert.match(b.stdout, /✓ rc-c/);
  assert.match(b.stdout, /✗ gone .*usb-nothing-here/);
  rmSync(dir, { recursive: true, force: true });
});

test('run --json, then runs and report latest', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-cli-'));
  const rig = join(dir, 'rig.yaml');
  const camp = join(dir, 'c.yaml');
  const db = join(dir, 'q.db');
  writeFileSync(rig, 'name: clirig\nnodes:\n  - { name: cli-a, kind: virtual, board: esp32 }\n  - { name: cli-b, kind: virtual, board: rpi4 }\n');
  writeFileSync(camp, `name: clitest\nrig: ${rig}\nsuites: [rsa2048, x25519]\nhandshakes: 3\nrecords: { count: 1, bytes: 16 }\n`);
  const r = await qslab(['run', camp, '--db', db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { status: string; ops: { ok: number }; report: { html: string } };
  assert.equal(s.status, 'completed');
  assert.equal(s.ops.ok, 12);
  assert.ok(existsSync(s.report.html));
  const runs = await qslab(['runs', '--db', db, '--json']);
  assert.equal((JSON.parse(runs.stdout) as unknown[]).length, 1);
  const rep = await qslab(['report', 'latest', '--db', db, '--out', join(dir, 'out'), '--json']);
  assert.equal(rep.code, 0, rep.stderr);
  assert.match(readFileSync((JSON.parse(rep.stdout) as { markdown: string }).markdown, 'utf8'), /\| x25519 \| cli-b \| loopback \| rpi4 \| 3 \| 100.0 % \|/);
  const none = await qslab(['report', 'no-such-run', '--db', db]);
  assert.equal(none.code, 2);
  rmSync(dir, { recursive: true, force: true });
});

test('pqc kat: shipped vectors pass; a wrong expected value makes it exit 1 and name the case', async () => {
  const ok = await qslab(['pqc', 'kat', '--alg', 'ml-kem-512,ml-dsa-44', '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const j = JSON.parse(ok.stdout) as { results: { alg: string; mode: string; passed: number; failed: number; skipped: number }[]; failed: number };
  assert.equal(j.failed, 0);
  assert.deepEqual(new Set(j.results.map((r) => `${r.alg} ${r.mode}`)), new Set(['ml-kem-512 keyGen', 'ml-kem-512 encapDecap', 'ml-dsa-44 keyGen', 'ml-dsa-44 sigGen', 'ml-dsa-44 sigVer']));
  assert.ok(j.results.every((r) => r.passed > 0 && r.skipped === 0));

  const dir = mkdtempSync(join(tmpdir(), 'qslab-kat-'));
  const acvp = JSON.parse(readFileSync(join(ROOT, 'fixtures/kat/ML-KEM-keyGen-FIPS203.json'), 'utf8')) as { testGroups: { parameterSet: string; tests: { tcId: number; ek: string }[] }[] };
  const g = acvp.testGroups.find((x) => x.parameterSet === 'ML-KEM-768')!;
  const t = g.tests[0]!;
  t.ek = (t.ek[0] === '0' ? '1' : '0') + t.ek.slice(1);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify(acvp));
  const r = await qslab(['pqc', 'kat', '--alg', 'ml-kem-768', '--vectors', bad]);
  assert.equal(r.code, 1);
  assert.match(r.stdout, new RegExp(`tcId ${t.tcId}`));
  assert.match(r.stdout, /1 failed/);
  const wrong = await qslab(['pqc', 'kat', '--alg', 'ml-dsa-65', '--vectors', bad]);
  assert.equal(wrong.code, 2, 'an ML-KEM file given for an ML-DSA algorithm is a usage error');
  rmSync(dir, { recursive: true, force: true });
});

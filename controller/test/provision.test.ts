// Wi-Fi station provisioning (firmware/PROTOCOL.md §4 "net", issue: credentials from the rig file's environment
// variable, sent at provisioning, never compiled in): the firmware command on a real POSIX node, the link's
// never-record-the-password rule, the rig schema, and `qslab provision` end to end (a real node behind a pty
// described as a serial node; a scripted ESP32-like node for the provisioned path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LinkError, NodeLink, REDACTED } from '../drivers/node.js';
import { encodeFrame } from '../link/frame.js';
import { ConfigError, parseConfig } from '../config/load.js';
import { rigSchema, wifiPassProblem, wifiSsidProblem } from '../config/rig.js';
import { VirtualNode } from '../virtual/node.js';
import { ROOT } from '../paths.js';
import { withNode } from './harness.js';
import { PtyPeer } from './peer.js';

const PASS = 'Corr3ct-Horse-Battery-Staple';
const CLI = join(ROOT, 'dist/controller/cli.js');

function qslab(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const full: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) full[k] = v;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: full, timeout: 120000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Rejection of p as a LinkError with this code; returns it. */
async function linkError(p: Promise<unknown>, code: string): Promise<LinkError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof LinkError, `expected a LinkError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail(`expected ${code}, the request succeeded`);
}

function assertNoPassword(where: string, text: string, secret = PASS): void {
  assert.ok(!text.includes(secret), `the password appears in ${where}: ${text.slice(0, 300)}`);
}

test('net on the POSIX node: status "host network", E_NOTSUP for valid credentials, E_ARGS for invalid ones; the password is never recorded', async () => {
  await withNode('prov-posix', async (link: NodeLink, h) => {
    const errors: string[] = [];
    // status query
    const st = await link.netStatus();
    assert.equal(st.status, 'host network');
    assert.match(st.text, /^host network( \d+\.\d+\.\d+\.\d+)?$/);
    assert.equal(st.ssid, undefined);

    // valid credentials: the POSIX port has no station to configure, and says where to configure Wi-Fi instead
    const notsup = await linkError(link.netConfig('lab-iot', PASS), 'E_NOTSUP');
    assert.match(notsup.message, /the POSIX port uses the host's network; configure Wi-Fi in the OS \(raspi-config \/ NetworkManager\)/);
    errors.push(notsup.message);
    errors.push((await linkError(link.netConfig('open-ap', ''), 'E_NOTSUP')).message);
    errors.push((await linkError(link.netConfig('x'.repeat(32), 'p'.repeat(63)), 'E_NOTSUP')).message);   // the limits
    const psk = '0123456789abcdefABCDEF'.repeat(3).slice(0, 64);
    errors.push((await linkError(link.netConfig('lab-iot', psk), 'E_NOTSUP')).message);
    errors.push((await linkError(link.netConfig('läb-ïot', ' !"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'), 'E_NOTSUP')).message);

    // invalid arguments straight to the firmware (its own validation, not the controller's)
    const raw = (args: Record<string, string | number>) => link.request('net', args, { secret: ['pass'] });
    const bad: [Record<string, string | number>, RegExp][] = [
      [{ ssid: '', pass: PASS }, /ssid: string of 1-32 bytes required/],
      [{ ssid: 'x'.repeat(33), pass: PASS }, /ssid: string of 1-32 bytes required/],
      [{ ssid: 'é'.repeat(17), pass: PASS }, /ssid: string of 1-32 bytes required/],   // 34 bytes of UTF-8
      [{ ssid: 5, pass: PASS }, /ssid: string/],
      [{ pass: PASS }, /ssid: required with pass/],
      [{ ssid: 'lab' }, /pass: required with ssid/],
      [{ ssid: 'lab', pass: 'short7!' }, /pass: empty \(open network\), 8-63 printable ASCII characters, or 64 hex digits/],
      [{ ssid: 'lab', pass: 'p'.repeat(65) }, /pass: empty \(open network\), 8-63/],
      [{ ssid: 'lab', pass: `${'0'.repeat(63)}g` }, /pass: 64 characters must be hex digits/],
      [{ ssid: 'lab', pass: `${PASS}\t` }, /pass: only printable ASCII/],
      [{ ssid: 'lab', pass: `${PASS}é` }, /pass: only printable ASCII/],
      [{ ssid: 'lab', pass: 12345678 }, /pass: string required/],
    ];
    for (const [args, msg] of bad) {
      const e = await linkError(raw(args), 'E_ARGS');
      assert.match(e.message, msg, JSON.stringify(args));
      errors.push(e.message);
    }
    // the controller checks the same rules before sending
    const local = await linkError(link.netConfig('lab', 'short'), 'E_ARGS');
    assert.match(local.message, /a passphrase has 8-63 characters/);
    await linkError(link.netConfig('', PASS), 'E_ARGS');
    errors.push(local.message);

    // the node is fine afterwards, and nothing it printed or answered carries a password
    await link.request('log', { n: 2 });
    assert.equal((await link.netStatus()).status, 'host network');
    for (const e of errors) assertNoPassword('an error', e);
    for (const secret of [PASS, 'short7!', psk, `${'0'.repeat(63)}g`]) {
      assertNoPassword('the console lines', h.lines.join('\n'), secret);
      assertNoPassword('the link console log', link.console.join('\n'), secret);
    }
    // ... and not because the link had to redact it: the node itself never sent it back
    for (const text of [...errors, ...h.lines, ...link.console]) assert.ok(!text.includes(REDACTED), `redacted: ${text}`);
    assert.equal(link.stats.corrupt, 0);
  });
});

test('the link never records a password that comes back on the line (an echoing serial line)', async (t) => {
  const peer = new PtyPeer();
  const path = await peer.start();
  const link = new NodeLink({ name: 'echo', path, baud: 115200 });
  await link.open();
  t.after(async () => { await link.close(); await peer.stop(); });
  const hello = link.connect();
  await peer.answerHello();
  await hello;
  const consoleEvents: string[] = [];
  link.on('console', (l: string) => consoleEvents.push(l));
  const p = link.netConfig('lab-iot', PASS, 1500);
  p.catch(() => undefined);
  const req = await peer.next();
  assert.equal(req.cmd, 'net');
  assert.equal(req.ssid, 'lab-iot');
  assert.equal(req.pass, PASS, 'the node gets the password as given');
  // the line echoes the request (a tty with echo on), prints it in a log line, then an answer carries it
  await peer.raw(`${encodeFrame(req)}\n`);
  await peer.raw(`I (12) uart: rx ${JSON.stringify(req)}\n`);
  await peer.raw(`{"broken frame ${PASS}\n`);
  await peer.frame({ id: req.id as number, ok: false, err: 'E_NET', msg: `cannot join with ${PASS}` });
  const e = await linkError(p, 'E_NET');
  assert.match(e.message, new RegExp(`cannot join with ${REDACTED}`));
  assertNoPassword('the error', e.message);
  // the echoed request was not taken as the answer (it would have been "E_NODE: {...pass...}")
  const recorded = link.console.join('\n');
  assertNoPassword('the console log', recorded);
  assertNoPassword('console events', consoleEvents.join('\n'));
  assert.equal(link.console.filter((l) => l.includes(REDACTED)).length, 3, recorded);
  assert.ok(link.console.some((l) => l.startsWith('{"id":') && l.includes(`"pass":"${REDACTED}"`)), recorded);
});

test('rig schema: wifi: on serial nodes, password_env (never the password), the firmware\'s rules', () => {
  const rig = (wifi: string, kind = 'serial') =>
    `name: r\nnodes:\n  - { name: esp-a, kind: ${kind}, board: esp32${kind === 'serial' ? ', port: /dev/ttyUSB0' : ''}, wifi: ${wifi} }\n`;
  const ok = parseConfig('r.yaml', rig('{ ssid: lab-iot, password_env: QSLAB_WIFI_PASS }'), rigSchema).value.nodes[0]!;
  assert.ok(ok.kind === 'serial');
  assert.deepEqual(ok.wifi, { ssid: 'lab-iot', open: false, password_env: 'QSLAB_WIFI_PASS' });
  const def = parseConfig('r.yaml', rig('{ ssid: lab-iot }'), rigSchema).value.nodes[0]!;
  assert.ok(def.kind === 'serial' && def.wifi?.password_env === 'QSLAB_WIFI_PASS', 'password_env defaults to QSLAB_WIFI_PASS');
  const open = parseConfig('r.yaml', rig('{ ssid: guest, open: true }'), rigSchema).value.nodes[0]!;
  assert.ok(open.kind === 'serial' && open.wifi?.open === true && open.wifi.password_env === undefined);
  const problems = (text: string): string[] => {
    try {
      parseConfig('r.yaml', text, rigSchema);
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return e.problems;
    }
    assert.fail('expected the rig to be refused');
  };
  // a password in the file is refused, with why and what to use instead, and never repeated in the message
  for (const key of ['password', 'pass', 'psk']) {
    const p = problems(rig(`{ ssid: lab-iot, ${key}: "${PASS}" }`));
    assert.equal(p.length, 1, p.join('\n'));
    assert.match(p[0]!, new RegExp(`r\\.yaml:\\d+:\\d+: nodes\\[0\\]\\.wifi\\.${key}: a Wi-Fi password is never written in the rig file \\(rig files are stored with every run and shared\\)`));
    assert.match(p[0]!, /Fix: remove \w+: and put password_env: QSLAB_WIFI_PASS \(the name of an environment variable\), then export QSLAB_WIFI_PASS=/);
    assertNoPassword('the rig error', p[0]!);
  }
  assert.match(problems(rig('{ ssid: lab-iot, password_env: "hunter2-in-the-file" }'))[0]!, /password_env: an environment variable name/);
  assert.match(problems(rig(`{ ssid: "${'x'.repeat(33)}" }`))[0]!, /wifi\.ssid: an SSID has 1-32 bytes \(this one has 33\)/);
  assert.match(problems(rig('{ ssid: "" }'))[0]!, /wifi\.ssid: an SSID has 1-32 bytes/);
  assert.match(problems(rig('{ ssid: guest, open: true, password_env: X }'))[0]!, /open network has no password, but password_env is given/);
  assert.match(problems(rig('{ ssid: lab-iot }', 'virtual'))[0]!, /unrecognized key.*"wifi"|Unrecognized key.*wifi/i);
  // the rules, as the firmware applies them
  assert.equal(wifiPassProblem(''), undefined);
  assert.equal(wifiPassProblem('12345678'), undefined);
  assert.equal(wifiPassProblem('x'.repeat(63)), undefined);
  assert.equal(wifiPassProblem('aB'.repeat(32)), undefined);
  assert.ok(wifiPassProblem('1234567'));
  assert.ok(wifiPassProblem('g'.repeat(64)));
  assert.ok(wifiPassProblem('x'.repeat(65)));
  assert.ok(wifiPassProblem('tab\there!'));
  assert.equal(wifiSsidProblem('é'.repeat(16)), undefined);
  assert.ok(wifiSsidProblem('é'.repeat(17)));
});

test('qslab provision: a POSIX node behind a serial port is "not applicable (host network)" (exit 0); unset password variable: exit 2 naming it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-prov-'));
  const vn = new VirtualNode({ name: 'prov-cli', board: 'esp32', baud: 115200, pace: false });
  const pty = await vn.start();
  t.after(async () => { await vn.stop(); rmSync(dir, { recursive: true, force: true }); });
  const rigFile = join(dir, 'rig.yaml');
  writeFileSync(rigFile, [
    'name: provtest',
    'nodes:',
    `  - { name: s-wifi, kind: serial, board: esp32, port: ${pty}, wifi: { ssid: lab-iot, password_env: QSLAB_PROV_TEST_PASS } }`,
    '  - { name: s-plain, kind: serial, board: esp32, port: /dev/serial/by-id/usb-nothing-here }',
    '  - { name: v-a, kind: virtual, board: rpi4 }',
    '',
  ].join('\n'));

  const r = await qslab(['provision', '--rig', rigFile], { QSLAB_PROV_TEST_PASS: PASS });
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /s-wifi\s+not applicable \(host network\): the POSIX port uses the host's network; configure Wi-Fi in the OS/);
  assert.match(r.stdout, /s-plain\s+skipped: no wifi: for this node in the rig file/);
  assert.match(r.stdout, /v-a\s+skipped: virtual node/);
  assertNoPassword('stdout', r.stdout);
  assertNoPassword('stderr', r.stderr);

  const j = await qslab(['provision', '--rig', rigFile, '--node', 's-wifi', '--json'], { QSLAB_PROV_TEST_PASS: PASS });
  assert.equal(j.code, 0, j.stderr);
  const rows = (JSON.parse(j.stdout) as { rig: string; nodes: { node: string; result: string; ssid?: string; passwordEnv?: string; net?: { status: string } }[] }).nodes;
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.result, 'not applicable');
  assert.equal(rows[0]!.ssid, 'lab-iot');
  assert.equal(rows[0]!.passwordEnv, 'QSLAB_PROV_TEST_PASS');
  assert.equal(rows[0]!.net?.status, 'host network');
  assertNoPassword('--json output', j.stdout);

  // the variable unset (or empty): bad input, before any node is opened, naming the variable and the fix
  const unset = await qslab(['provision', '--rig', rigFile], { QSLAB_PROV_TEST_PASS: undefined });
  assert.equal(unset.code, 2, unset.stderr + unset.stdout);
  assert.match(unset.stderr, /node s-wifi: the Wi-Fi password variable QSLAB_PROV_TEST_PASS is not set\. Fix: export QSLAB_PROV_TEST_PASS=/);
  const empty = await qslab(['provision', '--rig', rigFile], { QSLAB_PROV_TEST_PASS: '' });
  assert.equal(empty.code, 2);
  assert.match(empty.stderr, /QSLAB_PROV_TEST_PASS is empty/);
  const short = await qslab(['provision', '--rig', rigFile], { QSLAB_PROV_TEST_PASS: 'short' });
  assert.equal(short.code, 2);
  assert.match(short.stderr, /QSLAB_PROV_TEST_PASS: a passphrase has 8-63 characters/);
  assertNoPassword('stderr', short.stderr, 'short');
  // only the selected nodes need their variable
  const other = await qslab(['provision', '--rig', rigFile, '--node', 's-plain'], { QSLAB_PROV_TEST_PASS: undefined });
  assert.equal(other.code, 0, other.stderr);
  assert.match(other.stdout, /s-plain\s+skipped/);
  // bad input
  const unknown = await qslab(['provision', '--rig', rigFile, '--node', 'nope'], { QSLAB_PROV_TEST_PASS: PASS });
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--node: no node "nope"/);
  const badWait = await qslab(['provision', '--rig', rigFile, '--wait', 'soon'], { QSLAB_PROV_TEST_PASS: PASS });
  assert.equal(badWait.code, 2);
  const help = await qslab(['provision', '--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /Usage: qslab provision/);
  assert.match(help.stdout, /password_env/);
});

test('qslab provision: an ESP32 node stores the credentials ("connecting"), --wait follows it to "connected"; a failure exits 1', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qslab-prov-'));
  const peer = new PtyPeer();
  const pty = await peer.start();
  t.after(async () => { await peer.stop(); rmSync(dir, { recursive: true, force: true }); });
  const rigFile = join(dir, 'rig.yaml');
  writeFileSync(rigFile, `name: provesp\nnodes:\n  - { name: esp-a, kind: serial, board: esp32, port: ${pty}, wifi: { ssid: lab-iot } }\n`);
  const hello = async () => {
    const req = await peer.next(20000);
    assert.equal(req.cmd, 'hello');
    await peer.frame({ id: req.id as number, ok: true, proto: 1, fw: '0.1.0', build: '0123456789abcdef', board: 'esp32', port: 'esp-idf', cpu_mhz: 240, ram: 532480, suites: ['x25519'] });
  };
  // The scripted node: what an ESP32 answers (PROTOCOL.md §4 "net").
  const script = async (statuses: Record<string, unknown>[], config: Record<string, unknown> = { ok: true, status: 'connecting', ssid: 'lab-iot' }) => {
    await hello();
    const set = await peer.next(10000);
    assert.equal(set.cmd, 'net');
    assert.equal(set.ssid, 'lab-iot');
    assert.equal(set.pass, PASS, 'the password comes from QSLAB_WIFI_PASS (the default password_env)');
    await peer.frame({ id: set.id as number, ...config });
    for (const st of statuses) {
      const q = await peer.next(10000);
      assert.equal(q.cmd, 'net');
      assert.equal(q.pass, undefined);
      await peer.frame({ id: q.id as number, ok: true, ...st });
    }
  };

  let node = script([]);
  const r = await qslab(['provision', '--rig', rigFile], { QSLAB_WIFI_PASS: PASS });
  await node;
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /esp-a\s+provisioned: connecting \(lab-iot\)/);
  assertNoPassword('stdout', r.stdout + r.stderr);

  node = script([{ status: 'connecting', ssid: 'lab-iot' }, { status: 'connected', ip: '192.168.1.23', ssid: 'lab-iot' }]);
  const w = await qslab(['provision', '--rig', rigFile, '--wait', '10', '--json'], { QSLAB_WIFI_PASS: PASS });
  await node;
  assert.equal(w.code, 0, w.stderr);
  const row = (JSON.parse(w.stdout) as { nodes: { result: string; message: string; net: { status: string; ip: string } }[] }).nodes[0]!;
  assert.equal(row.result, 'provisioned');
  assert.deepEqual(row.net, { status: 'connected', ip: '192.168.1.23', ssid: 'lab-iot' });
  assert.equal(row.message, 'provisioned: connected 192.168.1.23 (lab-iot)');

  node = script([], { ok: false, err: 'E_NET', msg: 'NVS: storing the credentials failed (ESP_ERR_NVS_NOT_ENOUGH_SPACE)' });
  const f = await qslab(['provision', '--rig', rigFile], { QSLAB_WIFI_PASS: PASS });
  await node;
  assert.equal(f.code, 1, f.stderr + f.stdout);
  assert.match(f.stdout, /esp-a\s+failed: E_NET: NVS: storing the credentials failed/);
  assertNoPassword('stdout', f.stdout + f.stderr);
});

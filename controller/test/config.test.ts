import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { parseConfig } from '../config/load.js';
import { rigSchema, loadRig } from '../config/rig.js';
import { campaignSchema, loadCampaign } from '../config/campaign.js';
import { ROOT } from '../paths.js';
import { planCells } from '../campaign/runner.js';
import { problems } from './harness.js';


const rig = (body: string) => parseConfig('rigs/test.yaml', body, rigSchema);

test('the shipped rig and campaign files are valid', () => {
  for (const f of ['rigs/virtual.yaml', 'rigs/example-bench.yaml']) loadRig(join(ROOT, f));
  const c = loadCampaign(join(ROOT, 'fixtures/campaigns/quickstart.yaml')).value;
  const v = loadRig(join(ROOT, 'rigs/virtual.yaml')).value;
  assert.ok(v.nodes.length >= 3);
  assert.deepEqual(new Set(v.nodes.map((n) => n.board)), new Set(['esp32', 'rpi4']));
  assert.ok(c.suites.length >= 3 && c.handshakes >= 50);
});

test('an unknown board names file, line, path and the fix', () => {
  const p = problems(() => rig('name: r\nnodes:\n  - name: a\n    kind: virtual\n    board: esp33\n'));
  assert.equal(p.length, 1);
  assert.match(p[0]!, /^rigs\/test\.yaml:5:12: nodes\[0\]\.board: .*Fix: use one of: "esp32", "esp32s3", "rpi4", "rpi3"/);
});

test('a misspelt key is reported with its location', () => {
  const p = problems(() => rig('name: r\nnodes:\n  - name: a\n    kind: virtual\n    board: esp32\n    paec: true\n'));
  assert.match(p[0]!, /^rigs\/test\.yaml:3:5: nodes\[0\]: .*Fix: remove "paec"/);
});

test('a missing key, a bad port path and duplicate names are all reported at once', () => {
  const p = problems(() => rig([
    'name: r',
    'nodes:',
    '  - name: a',
    '    kind: serial',
    '    board: esp32',
    '    port: COM3',
    '  - name: a',
    '    kind: virtual',
    '    board: rpi4',
  ].join('\n')));
  assert.ok(p.some((s) => /test\.yaml:6:11: nodes\[0\]\.port: a serial port is a \/dev path/.test(s)), p.join('\n'));
  assert.ok(p.some((s) => /nodes\[1\]\.name: duplicate node name "a"/.test(s)), p.join('\n'));
  const q = problems(() => rig('nodes:\n  - name: a\n    kind: virtual\n    board: esp32\n'));
  assert.match(q[0]!, /\(top level\)|name: .*Fix: add the required key/);
});

test('YAML syntax errors point at the line', () => {
  const p = problems(() => rig('name: r\nnodes:\n  - name: a\n   kind: [virtual\n'));
  assert.match(p[0]!, /^rigs\/test\.yaml:\d+:\d+: YAML syntax/);
});

test('campaign validation: bad suite, negative handshakes, bad aead', () => {
  const p = problems(() => parseConfig('c.yaml', 'name: c\nsuites: [x25519, rsa1024]\nhandshakes: -1\nrecords:\n  aead: des\n', campaignSchema));
  assert.ok(p.some((s) => /^c\.yaml:2:18: suites\[1\]: .*Fix: use one of: "rsa2048"/.test(s)), p.join('\n'));
  assert.ok(p.some((s) => /^c\.yaml:3:13: handshakes: .*Fix: use a value >= 1/.test(s)), p.join('\n'));
  assert.ok(p.some((s) => /^c\.yaml:5:9: records\.aead: .*"aes-256-gcm"/.test(s)), p.join('\n'));
});

test('a missing file says so', () => {
  const p = problems(() => loadRig('/nonexistent/rig.yaml'));
  assert.match(p[0]!, /cannot read \(ENOENT\)/);
});

test('cell plan: full cross product, seeded order', () => {
  const c = campaignSchema.parse({ name: 'c', suites: ['rsa2048', 'x25519'], handshakes: 5, repetitions: 2, records: { bytes: [64, 1024] } });
  const a = planCells(c, ['n1', 'n2', 'n3']);
  assert.equal(a.length, 2 * 3 * 2 * 2);
  assert.equal(new Set(a.map((x) => x.cellId)).size, a.length);
  assert.deepEqual(planCells(c, ['n1', 'n2', 'n3']), a, 'same seed, same order');
  const b = planCells({ ...c, seed: 7 }, ['n1', 'n2', 'n3']);
  assert.notDeepEqual(b.map((x) => x.cellId), a.map((x) => x.cellId), 'another seed, another order');
});

test('rig validation of the power parts: each mistake names file:line:col, the path and a fix', () => {
  const base = [
    'name: r',
    'nodes:',
    '  - { name: a, kind: virtual, board: esp32 }',
    '  - { name: s, kind: serial, board: esp32, port: /dev/ttyUSB0 }',
    'boards:',
    '  - { name: fb, kind: firmata, emulated: true }',
  ];
  // every power mistake below is on line 8 (the first line after base + its section key); one problem each
  const one = (lines: string[]): string => {
    const p = problems(() => rig([...base, ...lines].join('\n')));
    assert.equal(p.length, 1, p.join('\n'));
    assert.match(p[0]!, /\. Fix: \S/, 'a fix is given');
    return p[0]!;
  };
  // the valid rig these mistakes are made in
  assert.equal(rig([...base, 'meters:', '  - { name: um-a, kind: um34c, node: a, emulated: true }'].join('\n')).value.meters.length, 1);

  assert.match(one(['meters:', '  - { name: m1, kind: ppk2, node: ghost, port: /dev/ttyACM0 }']),
    /^rigs\/test\.yaml:8:35: meters\[0\]\.node: no node "ghost" in nodes\. Fix: use one of: a, s$/);
  assert.match(one(['meters:', '  - name: ina-a', '    kind: ina219', '    node: a', '    emulated: true']),
    /^rigs\/test\.yaml:8:5: meters\[0\]\.board: an INA2xx sensor needs `board:` \(the Firmata board it is wired to\)\. Fix: add board: /);
  // a relay on the pin a marker already uses: the second user of the pin is reported, naming the first
  assert.match(one(['markers:', '  - { node: a, board: fb, pin: 2 }', 'relays:', '  - { name: pwr-a, board: fb, pin: 2, node: a }']),
    /^rigs\/test\.yaml:(8:32: markers\[0\]\.pin: pin 2 of board "fb" is already used by relays(\.0\.|\[0\]\.)pin|10:36: relays\[0\]\.pin: pin 2 of board "fb" is already used by markers(\.0\.|\[0\]\.)pin)\. Fix: give each relay and marker its own pin$/);
  assert.match(one(['meters:', '  - { name: um-s, kind: um34c, node: s, emulated: true }']),
    /^rigs\/test\.yaml:8:51: meters\[0\]\.emulated: an emulated meter can only measure a virtual node \("s" is serial\)\. Fix: remove emulated: true and give the real meter's port:$/);
  assert.match(one(['meters:', '  - { name: um-a, kind: um34c, node: a, emulated: true, marker_channel: 0 }']),
    /^rigs\/test\.yaml:8:73: meters\[0\]\.marker_channel: only a PPK2 has digital inputs\. Fix: remove marker_channel: and wire the marker to a Firmata pin under markers:$/);
  // the same mistakes together are all reported at once
  const all = problems(() => rig([...base, 'meters:', '  - { name: m1, kind: ppk2, node: ghost, port: /dev/ttyACM0 }', '  - { name: um-s, kind: um34c, node: s, emulated: true, marker_channel: 1 }'].join('\n')));
  assert.equal(all.length, 3, all.join('\n'));
});

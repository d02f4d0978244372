// SLIP as the ESP ROM loader frames packets: fixed vectors (both escapes, escape-looking bytes that are not
// escapes), round trips of random packets split at every possible point, garbage between frames (a boot log),
// bad escapes reported and the frame dropped without losing the next one, oversize frames, and the ROM packet
// layer on top: checksum, command and response layout, status bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlipDecoder, slipEncode, type SlipProblem } from '../flash/slip.js';
import {
  buildCommand, buildResponse, parseCommand, parseResponse, payloads, romChecksum, ROM_CMD, SYNC_PAYLOAD,
} from '../flash/rom-protocol.js';
import { Rng } from '../net/relay-rng.js';

/** Deterministic test data from the project's seeded generator. */
function seededRandom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

function decodeAll(chunks: Buffer[], maxFrame?: number) {
  const frames: Buffer[] = [];
  const problems: SlipProblem[] = [];
  const garbage: Buffer[] = [];
  const d = new SlipDecoder({ onFrame: (f) => frames.push(f), onProblem: (p) => problems.push(p), onGarbage: (g) => garbage.push(g), maxFrame });
  for (const c of chunks) d.push(c);
  return { frames, problems, garbage: Buffer.concat(garbage), d };
}

test('slip vectors: plain, 0xC0 and 0xDB escaped, 0xDC/0xDD alone left alone', () => {
  assert.deepEqual(slipEncode(Buffer.from([0x01, 0x02])), Buffer.from([0xc0, 0x01, 0x02, 0xc0]));
  assert.deepEqual(slipEncode(Buffer.from([0xc0])), Buffer.from([0xc0, 0xdb, 0xdc, 0xc0]));
  assert.deepEqual(slipEncode(Buffer.from([0xdb])), Buffer.from([0xc0, 0xdb, 0xdd, 0xc0]));
  assert.deepEqual(
    slipEncode(Buffer.from([0x00, 0xc0, 0xdb, 0xdc, 0xdd, 0xc0, 0xff])),
    Buffer.from([0xc0, 0x00, 0xdb, 0xdc, 0xdb, 0xdd, 0xdc, 0xdd, 0xdb, 0xdc, 0xff, 0xc0]),
  );
  assert.deepEqual(slipEncode(Buffer.alloc(0)), Buffer.from([0xc0, 0xc0]));
  const { frames, problems } = decodeAll([Buffer.from([0xc0, 0x00, 0xdb, 0xdc, 0xdb, 0xdd, 0xdc, 0xdd, 0xdb, 0xdc, 0xff, 0xc0])]);
  assert.deepEqual(frames, [Buffer.from([0x00, 0xc0, 0xdb, 0xdc, 0xdd, 0xc0, 0xff])]);
  assert.equal(problems.length, 0);
});

test('slip streaming: random packets survive every split point and byte-by-byte delivery', () => {
  const rnd = seededRandom(7);
  const packets: Buffer[] = [];
  for (let i = 0; i < 40; i++) {
    const n = 1 + Math.floor(rnd() * 60);
    // biased towards the special bytes
    packets.push(Buffer.from(Array.from({ length: n }, () => (rnd() < 0.3 ? [0xc0, 0xdb, 0xdc, 0xdd][Math.floor(rnd() * 4)]! : Math.floor(rnd() * 256)))));
  }
  const wire = Buffer.concat(packets.map(slipEncode));
  for (let cut = 0; cut <= wire.length; cut += 7) {
    const { frames, problems } = decodeAll([wire.subarray(0, cut), wire.subarray(cut)]);
    assert.deepEqual(frames, packets, `split at ${cut}`);
    assert.equal(problems.length, 0);
  }
  const bytes = [...wire].map((b) => Buffer.from([b]));
  assert.deepEqual(decodeAll(bytes).frames, packets);
  // An escape pair split exactly between chunks.
  const esc = slipEncode(Buffer.from([0x11, 0xc0, 0x22]));
  assert.deepEqual(decodeAll([esc.subarray(0, 3), esc.subarray(3)]).frames, [Buffer.from([0x11, 0xc0, 0x22])]);
});

test('slip garbage between frames (boot log, noise) is counted and handed over, frames intact', () => {
  const boot = Buffer.from('ets Jun  8 2016 00:22:57\r\nrst:0x1 (POWERON_RESET)\r\nwaiting for download\r\n');
  const a = Buffer.from([1, 2, 3]);
  const b = Buffer.from([0xc0, 4]);
  const wire = Buffer.concat([boot, slipEncode(a), Buffer.from('noise'), slipEncode(b), Buffer.from([0x55, 0x55])]);
  for (const chunks of [[wire], [...wire].map((x) => Buffer.from([x]))]) {
    const { frames, garbage, d } = decodeAll(chunks);
    assert.deepEqual(frames, [a, b]);
    assert.deepEqual(garbage, Buffer.concat([boot, Buffer.from('noise'), Buffer.from([0x55, 0x55])]));
    assert.equal(d.stats.garbageBytes, garbage.length);
    assert.equal(d.stats.frames, 2);
  }
  // Back-to-back delimiters (C0 C0 C0) are not empty frames.
  assert.deepEqual(decodeAll([Buffer.from([0xc0, 0xc0, 0xc0, 9, 0xc0, 0xc0])]).frames, [Buffer.from([9])]);
});

test('slip bad escape: reported, that frame dropped, the next one decoded', () => {
  const good = Buffer.from([7, 8, 9]);
  const wire = Buffer.concat([Buffer.from([0xc0, 1, 2, 0xdb, 0x41, 3, 0xc0]), slipEncode(good)]);
  const { frames, problems, d } = decodeAll([wire]);
  assert.deepEqual(frames, [good]);
  assert.equal(problems.length, 1);
  assert.equal(problems[0]!.kind, 'bad-escape');
  assert.equal(problems[0]!.byte, 0x41);
  assert.match(problems[0]!.message, /bad SLIP escape 0xdb 0x41/);
  assert.equal(d.stats.badEscapes, 1);
  // 0xDB right before the closing 0xC0: that frame is lost, the following one is not.
  const r2 = decodeAll([Buffer.from([0xc0, 5, 0xdb]), Buffer.from([0xc0]), slipEncode(good)]);
  assert.deepEqual(r2.frames, [good]);
  assert.equal(r2.problems.length, 1);
});

test('slip oversize frame dropped and reported', () => {
  const { frames, problems } = decodeAll([slipEncode(Buffer.alloc(100, 1)), slipEncode(Buffer.from([2]))], 50);
  assert.deepEqual(frames, [Buffer.from([2])]);
  assert.equal(problems[0]?.kind, 'oversize');
});

test('ROM packets: command layout, data checksum seeded 0xEF, response status bytes', () => {
  const sync = buildCommand(ROM_CMD.SYNC, SYNC_PAYLOAD);
  assert.deepEqual(sync.subarray(0, 8), Buffer.from([0x00, 0x08, 0x24, 0x00, 0, 0, 0, 0]));
  assert.deepEqual(sync.subarray(8, 12), Buffer.from([0x07, 0x07, 0x12, 0x20]));
  assert.equal(sync.length, 8 + 36);
  assert.equal(romChecksum(Buffer.alloc(0)), 0xef);
  assert.equal(romChecksum(Buffer.from([0xef])), 0);
  assert.equal(romChecksum(Buffer.from([1, 2, 4])), 0xef ^ 7);
  const { payload, checksum } = payloads.flashData(3, Buffer.from([0xaa, 0x55]));
  assert.deepEqual(payload, Buffer.from([2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0x55]));
  assert.equal(checksum, 0xef ^ 0xaa ^ 0x55);
  const cmd = parseCommand(buildCommand(ROM_CMD.FLASH_DATA, payload, checksum));
  assert.ok(typeof cmd !== 'string');
  assert.equal(cmd.checksum, checksum);
  assert.equal(typeof parseCommand(Buffer.from([0, 8, 5, 0, 0, 0, 0, 0])), 'string');
  // READ_REG answer of an ESP32 ROM as seen on the wire: 4 status bytes.
  const rr = Buffer.from([0x01, 0x0a, 0x04, 0x00, 0x83, 0x1d, 0xf0, 0x00, 0, 0, 0, 0]);
  assert.deepEqual(buildResponse(0x0a, 0x00f01d83, Buffer.alloc(0), { failed: false, error: 0 }, 4), rr);
  const r = parseResponse(rr, 4);
  assert.ok(typeof r !== 'string');
  assert.equal(r.value, 0x00f01d83);
  assert.equal(r.failed, false);
  // An ESP8266-style failure with 2 status bytes: FLASH_DATA, invalid CRC (0x07).
  const bad = parseResponse(Buffer.from([0x01, 0x03, 0x02, 0x00, 0x07, 0x07, 0x12, 0x20, 0x01, 0x07]), 2);
  assert.ok(typeof bad !== 'string');
  assert.equal(bad.failed, true);
  assert.equal(bad.error, 0x07);
  assert.equal(typeof parseResponse(Buffer.from([0x00, 0x0a, 0, 0, 0, 0, 0, 0])), 'string');
});

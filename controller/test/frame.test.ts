import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc16, decodeLine, encodeFrame, HOST_MAX_LINE } from '../link/frame.js';
import { seededRandom } from '../campaign/runner.js';

test('CRC-16/CCITT-FALSE check value', () => {
  assert.equal(crc16('123456789'), 0x29b1);
  assert.equal(crc16(''), 0xffff);
});

test('frame round trip', () => {
  const obj = { id: 7, cmd: 'hs', suite: 'x25519', n: 100, ok: true, text: 'a"b\\c*1234' };
  const line = encodeFrame(obj);
  assert.match(line, /\*[0-9A-F]{4}$/);
  const d = decodeLine(line);
  assert.equal(d.kind, 'frame');
  assert.deepEqual(d.kind === 'frame' && d.msg, obj);
  assert.deepEqual(decodeLine(`${line}\r`), d, 'CRLF is accepted');
});

test('wrong CRC, missing CRC, partial line and non-objects are corrupt, not frames', () => {
  const line = encodeFrame({ id: 1, ok: true });
  const bad = line.slice(0, -1) + (line.endsWith('0') ? '1' : '0');
  assert.deepEqual(decodeLine(bad), { kind: 'corrupt', text: bad, reason: 'CRC mismatch' });
  assert.equal(decodeLine('{"id":1,"ok":true}').kind, 'corrupt');
  assert.equal(decodeLine(line.slice(0, 10)).kind, 'corrupt');
  const arr = '[1,2]';
  assert.equal(decodeLine(arr).kind, 'console');
  const notObj = `"x"*${crc16('"x"').toString(16).toUpperCase().padStart(4, '0')}`;
  assert.equal(decodeLine(notObj).kind, 'console');
  const flipped = line.replace('"ok":true', '"ok":tru3');
  assert.equal(decodeLine(flipped).kind, 'corrupt');
});

test('console lines (ROM boot text, logs) stay console', () => {
  for (const s of ['ets Jun  8 2016 00:22:57', 'rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)', 'I (312) qslab: ready', '']) {
    assert.deepEqual(decodeLine(s), { kind: 'console', text: s });
  }
});

test('oversized lines are rejected without parsing', () => {
  const big = `{"x":"${'a'.repeat(HOST_MAX_LINE)}"}`;
  const d = decodeLine(big);
  assert.equal(d.kind, 'corrupt');
  assert.equal(d.kind === 'corrupt' && d.reason, 'oversized line');
});

test('100k fuzzed lines never throw and never yield a frame by accident', () => {
  const rnd = seededRandom(1234);
  const good = encodeFrame({ id: 3, ok: true, t_us: 12.5 });
  let frames = 0;
  for (let i = 0; i < 100_000; i++) {
    let s: string;
    const k = i % 4;
    if (k === 0) s = randomBytes(Math.floor(rnd() * 200)).toString('latin1');
    else if (k === 1) { // mutate one byte of a good frame
      const pos = Math.floor(rnd() * good.length);
      s = good.slice(0, pos) + String.fromCharCode(Math.floor(rnd() * 256)) + good.slice(pos + 1);
    } else if (k === 2) s = good.slice(0, Math.floor(rnd() * good.length)); // truncated
    else s = `{${randomBytes(Math.floor(rnd() * 60)).toString('base64')}}*${Math.floor(rnd() * 65536).toString(16).toUpperCase().padStart(4, '0')}`;
    const d = decodeLine(s);
    if (d.kind === 'frame') {
      frames++;
      // CRC-16 detects every single-byte error: only an unchanged line may still be a frame.
      assert.equal(s, good, `garbage accepted as a frame: ${JSON.stringify(s)}`);
    }
  }
  assert.ok(frames < 1000);
});

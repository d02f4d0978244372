// A Firmata board (Arduino running StandardFirmata) driven by johnny-five, over OUR serial stack: firmata-io is
// handed a SerialPortStream on NodeLinkBinding (serialport 13), so johnny-five's own serialport 8 (a native
// optional dependency whose install script we deny) is never loaded. One FirmataBoard is shared by the relays,
// marker inputs and I2C sensors wired to that Arduino.
// Unplug: the board emits 'disconnect', reopens the same path every reopenMs until it is back, runs the whole
// johnny-five/firmata handshake again on a fresh port + firmata-io + Board, and emits 'reconnect'; users (relays,
// meters) re-take their pins and I2C reads on 'reconnect'. Digital watches and the sampling interval are restored
// here. Framing: firmata-io swallows a sysex cut by a status byte and parses the status byte's own message (a
// stray 0x90 inside an I2C reply becomes a spurious DIGITAL_MESSAGE, i.e. a marker edge); a SysexFramer in front of
// firmata-io drops such fragments instead and reports them as 'badFrame' (the only integrity check Firmata has).
import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { SerialPortStream } from '@serialport/stream';
import { NodeLinkBinding } from './serial-binding.js';
import { cleanup } from '../cleanup.js';
import { hostNow } from './meter.js';

const require = createRequire(import.meta.url);

/** The part of firmata-io's Board (johnny-five's `io`) this project uses. */
export interface FirmataIo extends EventEmitter {
  MODES: { INPUT: number; OUTPUT: number; ANALOG: number; PWM: number; SERVO: number; I2C: number; PULLUP: number };
  HIGH: number;
  LOW: number;
  isReady: boolean;
  pins: { mode?: number; value?: number; state?: number; supportedModes: number[]; analogChannel: number }[];
  analogPins: number[];
  version: { major?: number; minor?: number };
  firmware: { name?: string; version?: { major: number; minor: number } };
  transport: { write(b: Buffer, cb?: (err?: Error | null) => void): unknown };
  pinMode(pin: number, mode: number): void;
  digitalWrite(pin: number, value: number, enqueue?: boolean): void;
  updateDigitalPort(pin: number, value: number): number;
  queryPinState(pin: number, cb: () => void): void;
  reportVersion(cb: () => void): void;
  queryFirmware(cb: () => void): void;
  setSamplingInterval(ms: number): void;
  getSamplingInterval(): number;
  i2cConfig(opts: { delay?: number }): unknown;
  i2cWrite(address: number, bytes: number[]): unknown;
  i2cRead(address: number, register: number, count: number, cb: (data: number[]) => void): unknown;
  i2cReadOnce(address: number, register: number, count: number, cb: (data: number[]) => void): unknown;
  i2cStop(address: number): void;
}

/** The part of johnny-five's Board this project uses. */
export interface FiveBoard extends EventEmitter {
  io: FirmataIo;
  isReady: boolean;
  pinMode(pin: number, mode: number): void;
  digitalRead(pin: number, cb: (value: number) => void): void;
}

interface FiveRelay {
  open(): void;
  close(): void;
  readonly isClosed: boolean;
}

export interface FiveModule {
  Board: new (o: Record<string, unknown>) => FiveBoard;
  Relay: new (o: { pin: number; type: 'NO' | 'NC'; board: FiveBoard }) => FiveRelay;
}

export const five = require('johnny-five') as FiveModule;
const Firmata = (require('firmata-io') as { Firmata: new (port: unknown, o: Record<string, unknown>) => FirmataIo }).Firmata;

export class FirmataError extends Error {
  constructor(public readonly code: 'E_OPEN' | 'E_TIMEOUT' | 'E_CLOSED' | 'E_PIN', message: string) {
    super(`${code}: ${message}`);
    this.name = 'FirmataError';
  }
}

export interface FirmataOptions {
  path: string;
  name?: string;
  /** How long the board may take to answer; an Uno that resets on open needs ~2 s for its bootloader. */
  readyTimeoutMs?: number;
  /**
   * Ask for the version after this long without the board announcing itself. A board that does not reset on open
   * (or a pty) never announces; queries sent into a resetting Uno's bootloader are harmless (it starts the sketch).
   */
  queryAfterMs?: number;
  /** Firmata sampling interval (analog reports, continuous I2C reads); firmata-io clamps it to ≥ 10 ms. */
  samplingIntervalMs?: number;
  /** After an unplug, reopen the same path until the board is back (default true); false: 'disconnect' then 'close'. */
  reconnect?: boolean;
  /** Delay between two reopen attempts (ms, default 250). */
  reopenMs?: number;
}

export const FIRMATA_BAUD = 57600;
const START_SYSEX = 0xf0, END_SYSEX = 0xf7;
export const I2C_REPLY = 0x77;

/** A sysex message broken on the wire: cut by a status byte (stray, or the next message when END_SYSEX was lost). */
export interface FirmataFrameError {
  /** 'unterminated': a new sysex began before END_SYSEX; 'stray': another status byte inside the sysex. */
  reason: 'unterminated' | 'stray';
  /** Sysex command (0x77 I2C_REPLY, …), undefined when the break came right after START_SYSEX. */
  command?: number;
  /** I2C_REPLY: slave address and register, when the break came after them. */
  address?: number;
  register?: number;
  /** The status byte that broke it. */
  status: number;
  /** Data bytes of the fragment dropped (after START_SYSEX). */
  length: number;
}

/**
 * Sits between the serial port and firmata-io. A sysex interrupted by START_SYSEX: the fragment is reported (firmata-io
 * drops it too). Interrupted by any other status byte: the fragment is reported and that status byte plus the data
 * bytes after it are dropped up to END_SYSEX or the next status byte: either the byte is a corrupted data byte
 * (then what follows is the rest of the sysex) or a real message after lost bytes; one lost message is preferred to
 * one invented (firmata-io would parse it: a spurious digital edge, analog value or version report).
 * Kept bytes are forwarded in order, and an error is reported after everything before it was forwarded.
 */
export class SysexFramer {
  private state: 'idle' | 'sysex' | 'skip' = 'idle';
  private head: number[] = [];
  private length = 0;

  constructor(private readonly forward: (b: Buffer) => void, private readonly onError: (e: FirmataFrameError) => void, private readonly resetParser: () => void) {}

  push(chunk: Buffer): void {
    let from = 0;
    const flush = (to: number): void => {
      if (to > from) this.forward(chunk.subarray(from, to));
    };
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.state === 'sysex') {
        if (b === END_SYSEX) { this.state = 'idle'; continue; }
        if (b < 0x80) {
          if (this.head.length < 5) this.head.push(b);
          this.length++;
          continue;
        }
        flush(i);
        from = i;
        this.report(b === START_SYSEX ? 'unterminated' : 'stray', b);
        if (b === START_SYSEX) { this.begin(); continue; }
        this.state = 'skip';
        from = i + 1; // the stray status byte is not forwarded
        continue;
      }
      if (this.state === 'skip') {
        if (b < 0x80 || b === END_SYSEX) { flush(i); from = i + 1; if (b === END_SYSEX) this.state = 'idle'; continue; }
        this.state = 'idle';
      }
      if (b === START_SYSEX) this.begin();
    }
    flush(chunk.length);
  }

  private begin(): void {
    this.state = 'sysex';
    this.head = [];
    this.length = 0;
  }

  private report(reason: FirmataFrameError['reason'], status: number): void {
    const h = this.head;
    const e: FirmataFrameError = { reason, status, length: this.length };
    if (h.length >= 1) e.command = h[0];
    if (h[0] === I2C_REPLY && h.length >= 3) e.address = h[1]! | (h[2]! << 7);
    if (h[0] === I2C_REPLY && h.length >= 5) e.register = h[3]! | (h[4]! << 7);
    this.resetParser(); // firmata-io must not complete the fragment with bytes of a later message
    this.onError(e);
  }
}

interface Link { port: SerialPortStream; io: FirmataIo; board: FiveBoard }

interface Watch { pin: number; pullup: boolean; listener: (v: number) => void }

/**
 * Events: 'string' (text from the firmware), 'warning' (message), 'disconnect' (reason), 'reconnect' (outage ms),
 * 'badFrame' (FirmataFrameError), 'close'.
 */
export class FirmataBoard extends EventEmitter {
  readonly name: string;
  /** Time from open() to johnny-five's 'ready' (ms); after a reconnect, the last handshake's. */
  readyMs = 0;
  readonly messages: string[] = [];
  readonly stats = { framingErrors: 0, disconnects: 0, reconnects: 0, reconnectAttempts: 0, lastOutageMs: 0 };
  private closed = false;
  private connected = true;
  private unregister?: () => void;
  private reopenTimer?: NodeJS.Timeout;
  private attempt?: Promise<void>;
  private samplingMs?: number;
  private readonly watches = new Set<Watch>();
  private link: Link;

  private constructor(readonly path: string, link: Link, private readonly opts: FirmataOptions) {
    super();
    this.name = opts.name ?? path;
    this.link = link;
  }

  /** The current connection's objects: new ones after each reconnect. */
  get port(): SerialPortStream { return this.link.port; }
  get io(): FirmataIo { return this.link.io; }
  get board(): FiveBoard { return this.link.board; }

  /** Opens the port, waits for johnny-five's 'ready' (version, firmware, capabilities, analog map). */
  static async open(o: FirmataOptions): Promise<FirmataBoard> {
    let fb: FirmataBoard | undefined;
    const t0 = performance.now();
    const link = await FirmataBoard.connect(o, (e) => fb?.onFrameError(e), (e) => fb?.emit('warning', `${o.path}: ${e.message}`));
    fb = new FirmataBoard(o.path, link, o);
    fb.readyMs = performance.now() - t0;
    fb.attach(link);
    fb.unregister = cleanup.add(`firmata ${fb.name}`, () => fb!.close());
    if (o.samplingIntervalMs !== undefined) fb.samplingIntervalMs = o.samplingIntervalMs;
    return fb;
  }

  /** One handshake on a fresh port, firmata-io and johnny-five Board; on failure everything is closed again. */
  private static async connect(o: FirmataOptions, onFrameError: (e: FirmataFrameError) => void, onLateError: (e: Error) => void): Promise<Link> {
    const readyTimeoutMs = o.readyTimeoutMs ?? 10_000;
    const port = new SerialPortStream({ binding: NodeLinkBinding, path: o.path, baudRate: FIRMATA_BAUD, autoOpen: false, hupcl: false });
    // firmata-io and johnny-five must see the port's 'open' event, so both exist before the port opens.
    const io = new Firmata(port, { reportVersionTimeout: o.queryAfterMs ?? 100 });
    // firmata-io reads through the framer (its own 'data' listener is moved behind it).
    const ioData = port.listeners('data') as ((b: Buffer) => void)[];
    for (const l of ioData) port.removeListener('data', l);
    const framer = new SysexFramer(
      (b) => { for (const l of ioData) l(b); },
      onFrameError,
      () => { const buf = (io as unknown as { buffer?: number[] }).buffer; if (buf) buf.length = 0; },
    );
    port.on('data', (b: Buffer) => framer.push(b));
    const board = new five.Board({ io, repl: false, debug: false, sigint: false, timeout: readyTimeoutMs + 60_000 });
    let settled = false;
    const failed = new Promise<never>((_, rej) => {
      // Before 'ready' an error fails the handshake; after it, it is a warning (an unhandled 'error' would crash).
      const onError = (e: Error): void => {
        if (settled) onLateError(e);
        else rej(new FirmataError('E_CLOSED', `${o.path}: ${e.message}`));
      };
      io.on('error', onError);
      board.on('error', onError);
      port.once('close', () => { if (!settled) rej(new FirmataError('E_CLOSED', `${o.path}: the port closed during the handshake`)); });
    });
    failed.catch(() => undefined);
    let retry: NodeJS.Timeout | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((res, rej) =>
        port.open((err) => (err ? rej(new FirmataError('E_OPEN', `cannot open Firmata board port ${o.path}: ${err.message}`)) : res())),
      );
      // A board whose first answer got lost (or that was busy resetting) is asked again every second.
      retry = setInterval(() => {
        if (!io.isReady) { io.reportVersion(() => {}); io.queryFirmware(() => {}); }
      }, 1000);
      const ready = new Promise<void>((res) => board.once('ready', () => res()));
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new FirmataError('E_TIMEOUT',
          `no Firmata board answered on ${o.path} within ${readyTimeoutMs} ms. Fix: flash StandardFirmata ` +
          `(Arduino IDE: File > Examples > Firmata > StandardFirmata, ${FIRMATA_BAUD} baud) and check that the rig ` +
          `file names the board's port and no other program holds it`)), readyTimeoutMs);
      });
      await Promise.race([ready, timeout, failed]);
      settled = true;
    } catch (e) {
      settled = true;
      clearTimeout((board as unknown as { timer?: NodeJS.Timeout }).timer); // johnny-five's own connect timeout
      if (port.isOpen) await new Promise<void>((res) => port.close(() => res()));
      throw e;
    } finally {
      clearInterval(retry);
      clearTimeout(timer);
    }
    return { port, io, board };
  }

  /** Wires a ready link into this object. */
  private attach(link: Link): void {
    this.link = link;
    this.connected = true;
    link.io.on('string', (s: string) => this.onString(s));
    link.port.on('close', (err?: { disconnected?: boolean; message?: string }) => this.onPortClose(link.port, err));
    this.installPinWrites();
  }

  get isOpen(): boolean {
    return !this.closed && this.connected && this.port.isOpen;
  }

  /** True between a 'disconnect' and the 'reconnect' (or close()). */
  get reconnecting(): boolean {
    return !this.closed && !this.connected;
  }

  get firmware(): string {
    const f = this.io.firmware;
    return `${f.name ?? '?'} ${f.version?.major ?? '?'}.${f.version?.minor ?? '?'} (protocol ${this.io.version.major}.${this.io.version.minor})`;
  }

  get samplingIntervalMs(): number {
    return this.io.getSamplingInterval();
  }

  set samplingIntervalMs(ms: number) {
    this.samplingMs = ms;
    this.io.setSamplingInterval(ms);
  }

  /**
   * firmata-io writes a whole 8-pin port from its own cache. After a controller restart that cache does not know
   * the levels a previous run left on the other pins of the port, so switching one relay would switch its
   * neighbours. Protocol ≥ 2.5 has SET_DIGITAL_PIN_VALUE, which touches one pin: used for every OUTPUT pin.
   */
  private installPinWrites(): void {
    const io = this.io;
    const { major = 0, minor = 0 } = io.version;
    if (major < 2 || (major === 2 && minor < 5)) return;
    const portWrite = io.digitalWrite.bind(io);
    io.digitalWrite = (pin: number, value: number, enqueue?: boolean): void => {
      if (io.pins[pin]?.mode !== io.MODES.OUTPUT) return portWrite(pin, value, enqueue);
      io.updateDigitalPort(pin, value);
      this.setPinValue(pin, value);
    };
  }

  /** SET_DIGITAL_PIN_VALUE (0xF5): drives one OUTPUT pin; the firmware ignores it for other modes. */
  setPinValue(pin: number, value: number): void {
    this.writeRaw([0xf5, pin & 0x7f, value ? 1 : 0]);
  }

  writeRaw(bytes: number[]): void {
    if (!this.isOpen) throw new FirmataError('E_CLOSED', `Firmata board ${this.name} is closed`);
    this.io.transport.write(Buffer.from(bytes));
  }

  /** PIN_STATE_QUERY: the firmware's idea of a pin's mode and state (output value, or pull-up for inputs). */
  pinState(pin: number, timeoutMs = 1000): Promise<{ mode: number; state: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new FirmataError('E_TIMEOUT', `${this.name}: no answer to a pin state query for pin ${pin}`)), timeoutMs);
      this.io.queryPinState(pin, () => {
        clearTimeout(timer);
        const p = this.io.pins[pin]!;
        resolve({ mode: p.mode ?? -1, state: p.state ?? 0 });
      });
    });
  }

  /**
   * Watches a digital input (a node's marker line) through johnny-five's digitalRead. The callback runs on each
   * change with the host time of the edge: arrival minus the 3-byte DIGITAL_MESSAGE's time on the wire (the
   * USB-serial adapter's own latency is not known here). Returns an unsubscribe function.
   */
  watchDigital(pin: number, onChange: (value: 0 | 1, tMs: number) => void, o: { pullup?: boolean } = {}): () => void {
    if (!this.io.pins[pin]?.supportedModes.includes(this.io.MODES.INPUT)) throw new FirmataError('E_PIN', `${this.name}: pin ${pin} cannot be a digital input`);
    const wireMs = (3 * 10 * 1000) / FIRMATA_BAUD;
    let last: number | undefined;
    const listener = (v: number): void => {
      if (v === last) return; // firmata-io repeats every input pin of a port on any change in that port
      last = v;
      onChange(v ? 1 : 0, hostNow() - wireMs);
    };
    const w: Watch = { pin, pullup: !!o.pullup, listener };
    this.watches.add(w);
    this.applyWatch(w);
    return () => {
      this.watches.delete(w);
      this.io.removeListener(`digital-read-${pin}`, listener);
    };
  }

  /** After a reconnect the first report is the level now: an edge during the outage shows up at reconnect time. */
  private applyWatch(w: Watch): void {
    this.board.pinMode(w.pin, w.pullup ? this.io.MODES.PULLUP : this.io.MODES.INPUT);
    this.board.digitalRead(w.pin, w.listener);
  }

  private onString(s: string): void {
    this.messages.push(s);
    if (this.messages.length > 50) this.messages.shift();
    this.emit('string', s);
  }

  private onFrameError(e: FirmataFrameError): void {
    this.stats.framingErrors++;
    this.emit('badFrame', e);
    if (e.command !== I2C_REPLY) { // I2C replies are reported by the sensor driver they belong to
      const what = e.command === undefined ? 'sysex' : `sysex 0x${e.command.toString(16)}`;
      this.emit('warning', `${this.name}: ${what} broken by ${e.reason === 'unterminated' ? 'a new sysex (END_SYSEX lost)' : `a stray status byte 0x${e.status.toString(16)}`}; dropped`);
    }
  }

  private onPortClose(port: SerialPortStream, err?: { disconnected?: boolean; message?: string }): void {
    if (this.closed || port !== this.port || !this.connected) return;
    const reason = `${this.path}: ${err?.message ?? (err?.disconnected ? 'disconnected' : 'port closed')}`;
    if (this.opts.reconnect === false) {
      this.closed = true;
      this.connected = false;
      this.unregister?.();
      if (err?.disconnected) this.emit('disconnect', reason);
      this.emit('close');
      return;
    }
    this.connected = false;
    this.stats.disconnects++;
    this.lostAt = performance.now();
    clearTimeout((this.board as unknown as { timer?: NodeJS.Timeout }).timer);
    this.emit('disconnect', reason);
    this.scheduleReopen();
  }

  private lostAt = 0;

  private scheduleReopen(): void {
    clearTimeout(this.reopenTimer);
    if (this.closed) return;
    this.reopenTimer = setTimeout(() => {
      this.reopenTimer = undefined;
      this.attempt = this.reopen().finally(() => { this.attempt = undefined; });
    }, this.opts.reopenMs ?? 250);
  }

  private async reopen(): Promise<void> {
    if (this.closed || this.connected) return;
    this.stats.reconnectAttempts++;
    const t0 = performance.now();
    let link: Link;
    try {
      link = await FirmataBoard.connect(this.opts, (e) => this.onFrameError(e), (e) => this.emit('warning', `${this.path}: ${e.message}`));
    } catch {
      return this.scheduleReopen(); // not back yet (E_OPEN), or it did not answer (E_TIMEOUT): try again
    }
    if (this.closed) {
      if (link.port.isOpen) await new Promise<void>((res) => link.port.close(() => res()));
      return;
    }
    this.readyMs = performance.now() - t0;
    this.attach(link);
    if (this.samplingMs !== undefined) this.io.setSamplingInterval(this.samplingMs);
    for (const w of this.watches) this.applyWatch(w);
    this.stats.reconnects++;
    this.stats.lastOutageMs = performance.now() - this.lostAt;
    this.emit('reconnect', this.stats.lastOutageMs);
  }

  /** Flushes pending writes (a last relay command must reach the board) and closes the port; idempotent. */
  async close(): Promise<void> {
    this.unregister?.();
    this.unregister = undefined;
    clearTimeout(this.reopenTimer);
    this.reopenTimer = undefined;
    const wasClosed = this.closed;
    this.closed = true;
    clearTimeout((this.board as unknown as { timer?: NodeJS.Timeout }).timer); // johnny-five's own connect timeout
    await this.attempt?.catch(() => undefined);
    const port = this.port;
    if (port.isOpen) {
      await new Promise<void>((res) => port.drain(() => res()));
      await new Promise<void>((res) => port.close(() => res()));
    }
    if (!wasClosed) this.emit('close');
  }
}

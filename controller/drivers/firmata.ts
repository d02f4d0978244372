// A Firmata board (Arduino running StandardFirmata) driven by johnny-five, over OUR serial stack: firmata-io is
// handed a SerialPortStream on NodeLinkBinding (serialport 13), so johnny-five's own serialport 8 (a native
// optional dependency whose install script we deny) is never loaded. One FirmataBoard is shared by the relays,
// marker inputs and I2C sensors wired to that Arduino.
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
}

export const FIRMATA_BAUD = 57600;

/** Events: 'string' (text from the firmware), 'warning' (message), 'disconnect' (reason), 'close'. */
export class FirmataBoard extends EventEmitter {
  readonly name: string;
  /** Time from open() to johnny-five's 'ready' (ms). */
  readyMs = 0;
  readonly messages: string[] = [];
  private closed = false;
  private unregister?: () => void;

  private constructor(readonly path: string, readonly port: SerialPortStream, readonly io: FirmataIo, readonly board: FiveBoard, name?: string) {
    super();
    this.name = name ?? path;
  }

  /** Opens the port, waits for johnny-five's 'ready' (version, firmware, capabilities, analog map). */
  static async open(o: FirmataOptions): Promise<FirmataBoard> {
    const t0 = performance.now();
    const readyTimeoutMs = o.readyTimeoutMs ?? 10_000;
    const port = new SerialPortStream({ binding: NodeLinkBinding, path: o.path, baudRate: FIRMATA_BAUD, autoOpen: false, hupcl: false });
    // firmata-io and johnny-five must see the port's 'open' event, so both exist before the port opens.
    const io = new Firmata(port, { reportVersionTimeout: o.queryAfterMs ?? 100 });
    const board = new five.Board({ io, repl: false, debug: false, sigint: false, timeout: readyTimeoutMs + 60_000 });
    const fb = new FirmataBoard(o.path, port, io, board, o.name);
    const failed = new Promise<never>((_, rej) => {
      // Before 'ready' an error fails open(); after it, it is a warning (an unhandled 'error' would crash).
      const onError = (e: Error): void => {
        if (fb.readyMs) fb.emit('warning', `${o.path}: ${e.message}`);
        else rej(new FirmataError('E_CLOSED', `${o.path}: ${e.message}`));
      };
      io.on('error', onError);
      board.on('error', onError);
    });
    failed.catch(() => undefined);
    io.on('string', (s: string) => fb.onString(s));
    port.on('close', (err?: { disconnected?: boolean; message?: string }) => fb.onPortClose(err));
    fb.unregister = cleanup.add(`firmata ${fb.name}`, () => fb.close());
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
    } catch (e) {
      await fb.close();
      throw e;
    } finally {
      clearInterval(retry);
      clearTimeout(timer);
    }
    fb.readyMs = performance.now() - t0;
    fb.installPinWrites();
    if (o.samplingIntervalMs !== undefined) io.setSamplingInterval(o.samplingIntervalMs);
    return fb;
  }

  get isOpen(): boolean {
    return !this.closed && this.port.isOpen;
  }

  get firmware(): string {
    const f = this.io.firmware;
    return `${f.name ?? '?'} ${f.version?.major ?? '?'}.${f.version?.minor ?? '?'} (protocol ${this.io.version.major}.${this.io.version.minor})`;
  }

  get samplingIntervalMs(): number {
    return this.io.getSamplingInterval();
  }

  set samplingIntervalMs(ms: number) {
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
    this.board.pinMode(pin, o.pullup ? this.io.MODES.PULLUP : this.io.MODES.INPUT);
    this.board.digitalRead(pin, listener);
    return () => void this.io.removeListener(`digital-read-${pin}`, listener);
  }

  private onString(s: string): void {
    this.messages.push(s);
    if (this.messages.length > 50) this.messages.shift();
    this.emit('string', s);
  }

  private onPortClose(err?: { disconnected?: boolean; message?: string }): void {
    if (this.closed) return;
    this.closed = true;
    this.unregister?.();
    if (err?.disconnected) this.emit('disconnect', `${this.path}: ${err.message ?? 'disconnected'}`);
    this.emit('close');
  }

  /** Flushes pending writes (a last relay command must reach the board) and closes the port; idempotent. */
  async close(): Promise<void> {
    this.unregister?.();
    this.unregister = undefined;
    clearTimeout((this.board as unknown as { timer?: NodeJS.Timeout }).timer); // johnny-five's own connect timeout
    const port = this.port;
    if (!this.closed && port.isOpen) {
      await new Promise<void>((res) => port.drain(() => res()));
      await new Promise<void>((res) => port.close(() => res()));
    }
    if (!this.closed) {
      this.closed = true;
      this.emit('close');
    }
  }
}

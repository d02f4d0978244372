// The serialport binding for node links, with one fix for pseudo-terminals: when the far end of a pty closes
// (a virtual node dies), reads on our side return 0 bytes (EOF). bindings-cpp retries such reads forever, a
// busy loop that never reports the loss; here EOF is a disconnect, so pending requests fail with E_CLOSED.
import { read } from 'node:fs';
import { promisify } from 'node:util';
import { autoDetect } from '@serialport/bindings-cpp';
import type { BindingInterface, BindingPortInterface, OpenOptions } from '@serialport/bindings-cpp';

const readAsync = promisify(read);
const base = autoDetect();

type BasePort = Awaited<ReturnType<typeof base.open>>;
interface PollingPort {
  fd: number | null;
  isOpen: boolean;
  poller?: { once(ev: 'readable', cb: (err: Error | null) => void): unknown };
}

class CanceledError extends Error {
  readonly canceled = true;
}

function eofAwareRead(port: BasePort & PollingPort) {
  return async (buffer: Buffer, offset: number, length: number): Promise<{ bytesRead: number; buffer: Buffer }> => {
    for (;;) {
      if (!port.isOpen || port.fd === null) throw new CanceledError('Port is not open');
      try {
        const { bytesRead } = await readAsync(port.fd, buffer, offset, length, null);
        if (bytesRead === 0) throw Object.assign(new Error('the other end hung up (EOF on the serial line)'), { disconnect: true });
        return { bytesRead, buffer };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN' && code !== 'EWOULDBLOCK' && code !== 'EINTR') throw e;
        // The port may have been closed while the read was in flight; its poller is gone then (touching it
        // would crash the native binding).
        if (!port.isOpen || port.fd === null || !port.poller) throw new CanceledError('Port is not open');
        await new Promise<void>((res, rej) => port.poller!.once('readable', (err) => (err ? rej(err) : res())));
      }
    }
  };
}

/** autoDetect()'s binding; on Linux its ports treat EOF as a disconnect. */
export const NodeLinkBinding: BindingInterface = {
  list: () => base.list(),
  async open(options: OpenOptions): Promise<BindingPortInterface> {
    const port = (await (base.open as (o: OpenOptions) => Promise<BasePort>)(options)) as BasePort & PollingPort;
    if (process.platform === 'linux' && 'poller' in port) port.read = eofAwareRead(port);
    return port;
  },
};

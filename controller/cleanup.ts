// One owner for every external effect (child processes, ptys, sockets, servers). Whatever happens —
// success, error, SIGINT, SIGTERM — registered undo actions run once, newest first.

type Undo = () => void | Promise<void>;

export class Cleanup {
  private readonly undos = new Map<number, { name: string; fn: Undo }>();
  private next = 1;
  private running: Promise<void> | null = null;

  add(name: string, fn: Undo): () => void {
    const id = this.next++;
    this.undos.set(id, { name, fn });
    return () => void this.undos.delete(id);
  }

  get size(): number {
    return this.undos.size;
  }

  /** Runs every undo (newest first); errors are collected, never thrown. */
  run(): Promise<void> {
    if (this.running) return this.running;
    this.running = (async () => {
      const entries = [...this.undos.entries()].reverse();
      this.undos.clear();
      for (const [, { name, fn }] of entries) {
        try {
          await Promise.race([fn(), new Promise((r) => setTimeout(r, 3000).unref())]);
        } catch (e) {
          process.stderr.write(`cleanup: ${name}: ${(e as Error).message}\n`);
        }
      }
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }
}

export const cleanup = new Cleanup();

/**
 * First SIGINT/SIGTERM aborts `controller` (the command stops at a safe point and keeps its results);
 * a second one runs cleanup and exits at once.
 */
export function installSignalHandlers(controller: AbortController): () => void {
  let hits = 0;
  const handler = (sig: NodeJS.Signals) => {
    hits++;
    if (hits === 1) {
      process.stderr.write(`\n${sig}: stopping after the current operations (again to force)\n`);
      controller.abort(new Error(sig));
      return;
    }
    void cleanup.run().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

// Strategy (after labgrid): bring every node of a rig to "ready" (link open, hello answered) and try to
// recover a node that stopped answering. The runner only ever talks to ready nodes.
import type { Rig, RigNode } from '../config/rig.js';
import { BOARDS } from '../config/rig.js';
import { NodeLink, LinkError, type Hello } from '../drivers/node.js';
import { VirtualNode, type VirtualNodeOptions } from '../virtual/node.js';
import { cleanup } from '../cleanup.js';
import { existsSync } from 'node:fs';
import { virtualFlashFile } from '../paths.js';

export interface ReadyNode {
  spec: RigNode;
  link: NodeLink;
  hello: Hello;
  virtual?: VirtualNode;
}

export interface NodeFailure {
  spec: RigNode;
  error: string;
}

export async function openLink(spec: RigNode, path: string): Promise<{ link: NodeLink; hello: Hello }> {
  const link = new NodeLink({ name: spec.name, path, baud: spec.baud });
  await link.open();
  const unregister = cleanup.add(`serial link ${spec.name}`, () => link.close());
  link.once('close', () => unregister());
  try {
    const hello = await link.connect();
    if (hello.board !== spec.board) {
      throw new LinkError('E_BOARD', `${spec.name} reports board "${hello.board}" but the rig says "${spec.board}"; fix the rig file or the wiring`);
    }
    return { link, hello };
  } catch (e) {
    await link.close();
    // What the node printed is usually the best clue (ROM bootloader banner, wrong baud garbage, a crash).
    const tail = link.console.slice(-3).map((l) => JSON.stringify(l.slice(0, 120)));
    if (tail.length && e instanceof Error) e.message += `; last console lines: ${tail.join(', ')}`;
    throw e;
  }
}

export interface BringUpOptions {
  /** Network namespace per virtual node (kernel shaping, root only). */
  netns?: (node: string) => string | undefined;
  /** More options per virtual node (power bench: stable pty link, marker routing, pid for the power model). */
  virtual?: (node: string) => Partial<VirtualNodeOptions>;
  /**
   * Flash file a virtual node boots from (flash/image.ts). bringUpAll's default: the rig's
   * <flashDir>/<rig name>/<node>.bin when that file exists (made by `qslab flash`), else none (the built binary).
   */
  flashFile?: (node: string) => string | undefined;
}

export async function bringUp(spec: RigNode, opts: BringUpOptions = {}): Promise<ReadyNode> {
  if (spec.kind === 'virtual') {
    const ns = opts.netns?.(spec.name);
    const flashFile = opts.flashFile?.(spec.name);
    const vn = new VirtualNode({ name: spec.name, board: spec.board, baud: spec.baud, pace: spec.pace, ...(ns ? { netns: ns } : {}), ...(flashFile ? { flashFile } : {}), ...opts.virtual?.(spec.name) });
    try {
      const path = await vn.start();
      const { link, hello } = await openLink(spec, path);
      return { spec, link, hello, virtual: vn };
    } catch (e) {
      await vn.stop();
      if (vn.bootProblem && e instanceof Error) e.message = `${spec.name}: ${vn.bootProblem} (reflash it with "qslab flash"); ${e.message}`;
      throw e;
    }
  }
  const { link, hello } = await openLink(spec, spec.port);
  return { spec, link, hello };
}

/** Brings all nodes up in parallel; a node that fails is reported, not fatal. */
export async function bringUpAll(rig: Rig, only?: string[], opts: BringUpOptions = {}): Promise<{ ready: ReadyNode[]; failed: NodeFailure[] }> {
  const specs = rig.nodes.filter((n) => !only || only.includes(n.name));
  if (!opts.flashFile) {
    opts = { ...opts, flashFile: (node) => {
      const f = virtualFlashFile(rig.name, node);
      return existsSync(f) ? f : undefined;
    } };
  }
  const results = await Promise.allSettled(specs.map((s) => bringUp(s, opts)));
  const ready: ReadyNode[] = [];
  const failed: NodeFailure[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') ready.push(r.value);
    else failed.push({ spec: specs[i]!, error: (r.reason as Error).message });
  });
  return { ready, failed };
}

/**
 * Recovery without a relay: reopen the link and say hello again. A node whose process (or board) is dead
 * stays dead; power-cycling through a relay is the relay strategy's job.
 */
export async function recover(node: ReadyNode): Promise<boolean> {
  if (node.virtual && !node.virtual.running) return false;
  try {
    if (!node.link.isOpen) {
      const { link, hello } = await openLink(node.spec, node.virtual ? node.virtual.path : (node.spec as { port: string }).port);
      node.link = link;
      node.hello = hello;
    } else {
      await node.link.request('abort', {}, { timeoutMs: 1000 }).catch(() => undefined);
      node.hello = await node.link.connect(2, 1500);
    }
    return true;
  } catch {
    return false;
  }
}

export async function shutDown(nodes: ReadyNode[]): Promise<void> {
  await Promise.all(nodes.map(async (n) => {
    await n.link.close();
    await n.virtual?.stop();
  }));
}

export function boardRam(board: string): number {
  return (BOARDS as Record<string, { ram: number }>)[board]?.ram ?? 0;
}

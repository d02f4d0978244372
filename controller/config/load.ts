// Loads a YAML file and validates it with a zod schema. Errors name the file, line:column, the path inside
// the document and how to fix it, so a lab engineer never has to read a stack trace.
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';

export class ConfigError extends Error {
  constructor(public readonly file: string, public readonly problems: string[]) {
    super(`${file}: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(top level)';
}

function fixFor(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_value':
      return `use one of: ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys':
      return `remove ${issue.keys.map((k) => `"${k}"`).join(', ')} (check the spelling against the documented keys)`;
    case 'invalid_type':
      // zod 4 leaves issue.input out unless asked (reportInput), so read "received undefined" from the message.
      return /received undefined/.test(issue.message) ? `add the required key (${issue.expected})` : `give a ${issue.expected}`;
    case 'too_small':
      return issue.origin === 'string' ? `write at least ${String(issue.minimum)} characters` : issue.origin === 'array' ? `give at least ${String(issue.minimum)} item(s)` : `use a value >= ${String(issue.minimum)}`;
    case 'custom': {
      const fix = (issue.params as { fix?: unknown } | undefined)?.fix;
      return typeof fix === 'string' ? fix : 'see the README section on rig and campaign files';
    }
    case 'too_big':
      return `use a value <= ${String(issue.maximum)}`;
    case 'invalid_format':
      return `match the format ${issue.format}`;
    default:
      return 'see the README section on rig and campaign files';
  }
}

export interface Loaded<T> {
  file: string;
  text: string;
  value: T;
}

/** Parses `text` (from `file`) and validates it. Throws ConfigError with located messages. */
export function parseConfig<T>(file: string, text: string, schema: z.ZodType<T>): Loaded<T> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number | undefined): string => {
    if (offset === undefined) return file;
    const { line, col } = lc.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  if (doc.errors.length) {
    throw new ConfigError(file, doc.errors.map((e) => `${at(e.pos[0])}: YAML syntax: ${e.message.split('\n')[0]}`));
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
  const res = schema.safeParse(data ?? {});
  if (res.success) return { file, text, value: res.data };
  const problems = res.error.issues.map((issue) => {
    // Point at the deepest node that exists in the document.
    let offset: number | undefined;
    for (let n = issue.path.length; n >= 0 && offset === undefined; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(issue.path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) offset = node.range[0];
    }
    return `${at(offset)}: ${formatPath(issue.path)}: ${issue.message}. Fix: ${fixFor(issue)}`;
  });
  throw new ConfigError(file, problems);
}

export function loadConfig<T>(file: string, schema: z.ZodType<T>): Loaded<T> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [`${file}: cannot read (${code ?? String(e)}). Fix: check the path; run from the repository root or give an absolute path`]);
  }
  return parseConfig(file, text, schema);
}

// Opens a self-contained HTML report in headless Chromium (Debian's chromium via playwright-core) to check it
// (console errors, outgoing requests, tables, SVG charts, screenshot) and to print it to PDF.
// All network is blocked: every request other than the report file itself is aborted and recorded, and the
// host resolver maps every name to NOTFOUND, so a report that tries to load anything shows it and loads nothing.
import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];
const INSTALL_HINT = "install Debian's chromium: apt-get install chromium, or set QSLAB_CHROMIUM=/path/to/chromium";

const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // belt and braces next to the request routing: no name resolves (also covers preconnect/dns-prefetch,
  // which never reach the request interception); Playwright talks to the browser over a pipe, not TCP
  '--host-resolver-rules=MAP * ~NOTFOUND',
];

/**
 * The Chromium executable to drive: $QSLAB_CHROMIUM when set (only there, as with the other QSLAB_<TOOL>
 * overrides: QSLAB_CHROMIUM=/nonexistent simulates a missing browser), else the first executable of
 * /usr/bin/chromium, /usr/bin/chromium-browser, /usr/bin/google-chrome. Null when none is found.
 */
export function findChromium(): string | null {
  const override = process.env.QSLAB_CHROMIUM;
  const candidates = override ? [override] : CANDIDATES;
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      // next
    }
  }
  return null;
}

export interface BrowserTimings {
  /** chromium.launch() until the browser answers. */
  launchMs: number;
  /** Navigation to the report until 'load' (and network idle for inspectReport). */
  loadMs: number;
  /** The whole call, browser start to browser closed. */
  totalMs: number;
}

export interface ReportTable {
  id: string | null;
  caption: string | null;
  /** All rows (thead, tbody and tfoot). */
  rows: number;
  /** Widest row, counting colspan. */
  cols: number;
}

export interface ReportSvg {
  id: string | null;
  /** The svg's own <title> child, else its aria-label, else null. */
  title: string | null;
  /** Elements inside the svg matching the mark selector (default '[data-v]'). */
  marks: number;
}

export interface ReportInspection {
  /** console.error messages, uncaught page errors and failed requests, in order of arrival. */
  consoleErrors: string[];
  /** Every URL the page tried to load other than the report itself (a self-contained report: none). */
  requests: string[];
  tables: ReportTable[];
  /** Top-level inline <svg> elements (an svg nested in another is part of its parent). */
  svgs: ReportSvg[];
  title: string;
  /** Text of h1–h6 in document order. */
  headings: string[];
  timings: BrowserTimings;
}

export interface InspectOptions {
  /** Writes a full-page PNG screenshot here (parent directories are created). */
  screenshot?: string;
  /** Upper bound for the whole call (launch, load, checks, close); default 30 s. */
  timeoutMs?: number;
  /** CSS selector of a chart mark inside an svg; default '[data-v]'. */
  markSelector?: string;
  /** Viewport width in CSS px for layout and screenshot; default 1280. */
  width?: number;
}

export interface PrintOptions {
  /** Upper bound for the whole call; default 60 s. */
  timeoutMs?: number;
}

export interface PdfResult {
  bytes: number;
  pages: number;
  timings: BrowserTimings;
}

interface Session {
  page: Page;
  fileUrl: string;
  consoleErrors: string[];
  requests: string[];
  launchMs: number;
  loadMs: number;
}

class Deadline {
  private readonly end: number;
  constructor(readonly ms: number) {
    this.end = Date.now() + ms;
  }
  /** Milliseconds left, at least 1 (Playwright treats 0 as "no timeout"). */
  left(): number {
    return Math.max(1, this.end - Date.now());
  }
}

function timeoutError(what: string, file: string, ms: number, cause: unknown): Error {
  const msg = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
  return new Error(`${what} for report ${file} did not finish within ${ms} ms (${msg})`, { cause });
}

/**
 * Starts Chromium, opens `file` with the network blocked, runs `work`, and always closes the browser (Playwright
 * removes the temporary profile it created on close). The whole call is bounded by `timeoutMs`: on expiry the
 * browser is closed, which ends any pending step.
 */
async function withReport<T>(
  action: string, htmlFile: string, timeoutMs: number, width: number, waitIdle: boolean,
  work: (s: Session, deadline: Deadline) => Promise<T>,
): Promise<{ result: T; timings: BrowserTimings }> {
  const file = resolve(htmlFile);
  if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${action}: report ${file} does not exist`);
  const exe = findChromium();
  if (!exe) {
    const where = process.env.QSLAB_CHROMIUM ? `QSLAB_CHROMIUM=${process.env.QSLAB_CHROMIUM}` : CANDIDATES.join(', ');
    throw new Error(`${action} ${file}: no Chromium executable found (looked at ${where}); ${INSTALL_HINT}`);
  }
  const deadline = new Deadline(timeoutMs);
  const t0 = performance.now();
  let browser: Browser | null = null;
  let timer: NodeJS.Timeout | undefined;
  let expired = false;
  const run = async (): Promise<{ result: T; timings: BrowserTimings }> => {
    try {
      browser = await chromium.launch({
        executablePath: exe, args: LAUNCH_ARGS, headless: true, timeout: deadline.left(),
        // a Node process ending on a signal must not leave a browser behind (Playwright's defaults, explicit)
        handleSIGINT: true, handleSIGTERM: true, handleSIGHUP: true,
      });
    } catch (e) {
      const msg = e instanceof Error ? e.message.split('\n').slice(0, 6).join('\n') : String(e);
      throw new Error(`${action} ${file}: could not start Chromium (${exe}) within ${timeoutMs} ms: ${msg}\n` +
        `Is it a working Chromium? ${INSTALL_HINT}`, { cause: e });
    }
    const b: Browser = browser;
    if (expired) {
      // the deadline passed while Chromium was starting: the finally below saw no browser yet
      await b.close().catch(() => {});
      throw new Error('expired');
    }
    const launchMs = performance.now() - t0;
    const context = await b.newContext({
      serviceWorkers: 'block', viewport: { width, height: 900 }, acceptDownloads: false,
    });
    const fileUrl = pathToFileURL(file).href;
    const consoleErrors: string[] = [];
    const requests: string[] = [];
    const seen = new Set<string>();
    const record = (url: string) => {
      if (!seen.has(url)) {
        seen.add(url);
        requests.push(url);
      }
    };
    const isSelf = (url: string) => url.split('#')[0] === fileUrl;
    // every request passes here (http(s) and file:// alike; data: and blob: are in-page and never do)
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (isSelf(url)) return route.continue();
      record(url);
      return route.abort('blockedbyclient');
    });
    await context.routeWebSocket(/.*/, (ws) => {
      record(ws.url());
      return ws.close({ code: 1008, reason: 'qslab: reports must not open connections' });
    });
    const page = await context.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(`console.error: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`page error: ${e.message}`));
    page.on('requestfailed', (r) => {
      if (!isSelf(r.url())) consoleErrors.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? 'unknown'})`);
    });
    page.on('request', (r) => {
      if (!isSelf(r.url()) && !/^(data|blob|about):/.test(r.url())) record(r.url());
    });

    const tLoad = performance.now();
    try {
      await page.goto(fileUrl, { waitUntil: 'load', timeout: deadline.left() });
    } catch (e) {
      throw timeoutError(`${action}: loading`, file, timeoutMs, e);
    }
    if (waitIdle) {
      // late fetches/imports started by scripts after 'load' are recorded too; a page that keeps "loading"
      // only costs the time left, it is not an error by itself
      await page.waitForLoadState('networkidle', { timeout: Math.min(deadline.left(), 3000) }).catch(() => {});
    }
    const loadMs = performance.now() - tLoad;
    const result = await work({ page, fileUrl, consoleErrors, requests, launchMs, loadMs }, deadline);
    return { result, timings: { launchMs, loadMs, totalMs: 0 } };
  };

  const expiry = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      expired = true;
      reject(new Error(`${action} ${file}: gave up after ${timeoutMs} ms (Chromium start, load and checks together); ` +
        `a very large report may need a larger timeoutMs, a hanging one a look at its scripts. ` +
        `If Chromium itself hangs: ${INSTALL_HINT}`));
    }, timeoutMs);
  });
  try {
    const out = await Promise.race([run(), expiry]);
    return out;
  } finally {
    clearTimeout(timer);
    const b = browser as Browser | null;
    if (b) await b.close().catch(() => {});
  }
}

// Minimal DOM shapes for the in-page function (the project compiles without lib.dom).
interface DomEl {
  id: string;
  textContent: string | null;
  children: ArrayLike<DomEl>;
  tagName: string;
  getAttribute(name: string): string | null;
  querySelectorAll(sel: string): ArrayLike<DomEl>;
  closest(sel: string): DomEl | null;
  parentElement: DomEl | null;
}
interface DomTable extends DomEl {
  caption: DomEl | null;
  rows: ArrayLike<DomEl & { cells: ArrayLike<DomEl & { colSpan: number }> }>;
}

interface PageFacts {
  tables: ReportTable[];
  svgs: ReportSvg[];
  title: string;
  headings: string[];
}

/** Runs inside the page (serialised by Playwright): no closures over module scope. */
function collectFacts(markSelector: string): PageFacts {
  const doc = (globalThis as unknown as { document: DomEl & { title: string } }).document;
  const text = (e: DomEl | null | undefined) => (e?.textContent ?? '').replace(/\s+/g, ' ').trim();
  const tables = Array.from(doc.querySelectorAll('table') as ArrayLike<DomTable>).map((t) => {
    let cols = 0;
    for (const row of Array.from(t.rows)) {
      let n = 0;
      for (const c of Array.from(row.cells)) n += Math.max(1, c.colSpan || 1);
      cols = Math.max(cols, n);
    }
    return { id: t.id || null, caption: t.caption ? text(t.caption) : null, rows: t.rows.length, cols };
  });
  const svgs = Array.from(doc.querySelectorAll('svg'))
    .filter((s) => !s.parentElement?.closest('svg'))
    .map((s) => {
      const own = Array.from(s.children).find((c) => c.tagName.toLowerCase() === 'title');
      const title = own ? text(own) : (s.getAttribute('aria-label') ?? null);
      return { id: s.id || null, title: title || null, marks: s.querySelectorAll(markSelector).length };
    });
  const headings = Array.from(doc.querySelectorAll('h1, h2, h3, h4, h5, h6')).map((h) => text(h));
  return { tables, svgs, title: doc.title, headings };
}

/**
 * Opens a report (file:// URL, network blocked) and reports what a reader's browser would see: console errors,
 * attempted loads, tables, SVG charts (marks counted by `markSelector`, default '[data-v]'), title and headings.
 * Optionally writes a full-page PNG screenshot. Throws when Chromium is missing or the call exceeds timeoutMs.
 */
export async function inspectReport(htmlFile: string, opts: InspectOptions = {}): Promise<ReportInspection> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const markSelector = opts.markSelector ?? '[data-v]';
  const t0 = performance.now();
  const { result, timings } = await withReport('inspecting', htmlFile, timeoutMs, opts.width ?? 1280, true,
    async (s, deadline) => {
      const facts = await s.page.evaluate(collectFacts, markSelector);
      if (opts.screenshot) {
        mkdirSync(dirname(resolve(opts.screenshot)), { recursive: true });
        await s.page.screenshot({ path: opts.screenshot, fullPage: true, type: 'png', timeout: deadline.left() });
      }
      // copies: the listeners stay attached until the browser closes
      return { consoleErrors: [...s.consoleErrors], requests: [...s.requests], ...facts };
    });
  return { ...result, timings: { ...timings, totalMs: performance.now() - t0 } };
}

/**
 * Number of pages of a PDF: `/Type /Page` dictionaries (not `/Pages`). Falls back to the page tree's /Count
 * when pages sit in compressed object streams (not the case for Chromium's Skia PDF writer).
 */
export function countPdfPages(pdf: Buffer): number {
  const s = pdf.toString('latin1');
  const pages = s.match(/\/Type\s*\/Page(?![A-Za-z])/g)?.length ?? 0;
  if (pages > 0) return pages;
  const counts = [...s.matchAll(/\/Type\s*\/Pages\b[^>]*?\/Count\s+(\d+)|\/Count\s+(\d+)[^>]*?\/Type\s*\/Pages\b/g)]
    .map((m) => Number(m[1] ?? m[2]));
  return counts.length ? Math.max(...counts) : 0;
}

/**
 * Prints a report to PDF with Chromium (A4, backgrounds printed, 12 mm margins, the report's print CSS applies)
 * and writes it to `pdfFile` (parent directories are created). Network blocked as for inspectReport.
 */
export async function printPdf(htmlFile: string, pdfFile: string, opts: PrintOptions = {}): Promise<PdfResult> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const t0 = performance.now();
  const { result, timings } = await withReport('printing', htmlFile, timeoutMs, 1280, false, async (s) => {
    const pdf = await s.page.pdf({
      format: 'A4', printBackground: true, preferCSSPageSize: false,
      margin: { top: '12mm', right: '12mm', bottom: '12mm', left: '12mm' },
    });
    if (!pdf.subarray(0, 5).equals(Buffer.from('%PDF-'))) {
      throw new Error(`printing ${resolve(htmlFile)}: Chromium returned something that is not a PDF`);
    }
    mkdirSync(dirname(resolve(pdfFile)), { recursive: true });
    writeFileSync(pdfFile, pdf);
    return { bytes: pdf.length, pages: countPdfPages(pdf) };
  });
  return { ...result, timings: { ...timings, totalMs: performance.now() - t0 } };
}


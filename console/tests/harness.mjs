// What the console's browser tests stand on: a real `hookrun serve` on a
// fresh data directory, fake agents and a fake receiver on loopback, and
// Debian's Chromium driven by playwright-core. A page fails its test on
// any console error, page error or failed request it did not expect.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '../..');
export const SHOTS = join(ROOT, 'target/console-screenshots');
export const ADMIN_KEY = 'hka_console_tests_0123456789abcdef0123456789';

/** Starts `hookrun serve` (HOOKRUN_BIN, default target/debug/hookrun). */
export async function startHookrun() {
  const bin = process.env.HOOKRUN_BIN ? resolve(ROOT, process.env.HOOKRUN_BIN) : join(ROOT, 'target/debug/hookrun');
  const dir = mkdtempSync(join(tmpdir(), 'hookrun-console-'));
  const child = spawn(bin, ['serve', '--addr', '127.0.0.1:0', '--data-dir', dir], {
    env: {
      ...process.env,
      HOOKRUN_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY,
      HOOKRUN_OUTBOUND_ALLOW_HTTP: 'true',
      HOOKRUN_OUTBOUND_ALLOW_CIDRS: '127.0.0.1/32',
      HOOKRUN_PUBLIC_URL: '',
      HOOKRUN_LOG: process.env.HOOKRUN_LOG || 'warn',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const base = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error('hookrun serve did not start within 30 s')), 30000);
    child.on('exit', (code) => fail(new Error(`hookrun serve exited (${code})`)));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/^listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
  });
  return {
    base,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.on('exit', ok)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The management API, for a test's setup and checks. */
export function apiClient(base, key = ADMIN_KEY) {
  return async (method, path, body) => {
    const resp = await fetch(base + path, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await resp.text();
    const json = text ? JSON.parse(text) : null;
    if (!resp.ok) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
    return json;
  };
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/**
 * Fake agents and a fake subscriber on one loopback server:
 * `/agent/stream` answers NDJSON, a line every 400 ms (so the log arrives
 * while the run goes); `/agent/slow` answers after 60 s; `/agent/fail`
 * answers 500; `/receiver` answers `receiverStatus` and counts calls.
 */
export async function startFakes() {
  const state = { receiverStatus: 500, received: [] };
  const server = createServer(async (req, res) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    if (req.url === '/agent/stream') {
      res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
      for (let i = 1; i <= 4; i += 1) {
        res.write(`${JSON.stringify({ level: 'info', message: `step ${i} of 4` })}\n`);
        await sleep(400);
      }
      res.end(`${JSON.stringify({ done: true })}\n`);
    } else if (req.url === '/agent/slow') {
      const t = setTimeout(() => res.end('{"late": true}'), 60000);
      res.on('close', () => clearTimeout(t));
    } else if (req.url === '/agent/fail') {
      res.writeHead(500, { 'Content-Type': 'application/json' });
      res.end('{"error":"the fake agent fails"}');
    } else if (req.url === '/receiver') {
      state.received.push({ headers: req.headers, body });
      res.writeHead(state.receiverStatus, { 'Content-Type': 'text/plain' });
      res.end(state.receiverStatus === 200 ? 'thanks' : 'receiver is down');
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, state, stop: () => new Promise((ok) => { server.closeAllConnections(); server.close(ok); }) };
}

export async function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

/**
 * A page in a fresh context (its own sessionStorage) that records what
 * went wrong: console errors, uncaught errors, failed requests. `expect`
 * lists the HTTP statuses a test provokes on purpose (a wrong key's 401):
 * Chromium logs those as console errors too.
 */
export async function openPage(browser, { width = 1280, height = 900, expect = [] } = {}) {
  const context = await browser.newContext({ viewport: { width, height } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  const page = await context.newPage();
  const problems = [];
  // A WebSocket handshake refused with 401 reads differently.
  const expected = (text) => expect.some((s) => text.includes(`status of ${s}`)
    || (s === 401 && text.includes('HTTP Authentication failed')));
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !expect.includes(r.status())) problems.push(`answer ${r.status()}: ${r.request().method()} ${r.url()}`);
  });
  page.problems = problems;
  page.closeAll = () => context.close();
  return page;
}

export async function signIn(page, base, key = ADMIN_KEY) {
  await page.goto(`${base}/`);
  await page.getByLabel('Admin key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Agents', level: 1 }).waitFor();
  await loaded(page);
}

/** Waits until nothing on the page is still loading. */
export async function loaded(page) {
  await page.locator('[aria-busy="true"]').first().waitFor({ state: 'detached' });
}

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

const AXE = readFileSync(join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's WCAG 2 A/AA rules on the page as it is: the serious and
 * critical violations. Injected over the DevTools protocol, so the page's
 * own policy (no inline scripts) stays as it is.
 */
export async function axeViolations(page) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join('; ')}`);
}

/** Whether the page is wider than its window (a phone would scroll sideways). */
export async function overflowsSideways(page) {
  return page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
}

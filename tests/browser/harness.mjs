// The harness shared by the browser tests (tests/browser/*.test.mjs).
//
// A test imports it, writes `async function run()` out of `check(...)` calls, and ends with
// `await main(run)`. The harness:
//   - checks SIGHTLINE_BIN and makes a temp dir (`setup`);
//   - starts that binary as `sightline serve` on a free loopback port with a fresh data dir
//     in the temp dir and the admin password ADMIN_PASSWORD, and waits for /health
//     (`startServer`); on failure it prints the tail of the server log;
//   - signs the admin in for `http` calls (`signIn`);
//   - launches Debian's chromium (/usr/bin/chromium, or SIGHTLINE_CHROMIUM) through
//     playwright-core and opens a page (`launchBrowser`);
//   - counts checks (`check`), prints "N passed, M failed" and exits non-zero when any check
//     failed; stops the browser and the server and removes the temp dir (kept on failure or
//     with SIGHTLINE_KEEP_TMP=1) on the way out, on SIGINT/SIGTERM and on the overall timeout.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '..', '..');
export const STEP_TIMEOUT_MS = 15_000;
const HEALTH_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 180_000;

// The first admin's password, given to the server; its token signs the `http` calls.
export const ADMIN_PASSWORD = 'browser test operator passphrase';

let passed = 0;
let failed = 0;
/** The test's temp dir (server log, data dir, screenshots); set by `setup`. */
export let tmpDir = null;
let logPath = null;
let server = null;
let serverExit = null; // { code, signal } once the server process has exited
let browser = null;
let page = null;
let token = null;

export function log(msg) {
  console.log(msg);
}

function pass(name) {
  passed += 1;
  log(`ok   - ${name}`);
}

function fail(name, err) {
  failed += 1;
  const detail = err instanceof Error ? err.message : String(err);
  log(`FAIL - ${name}: ${detail}`);
}

class Abort extends Error {}

// Runs one check. A failing check aborts the run (later checks depend on it), unless it is
// `soft`: then the failure is counted and the run goes on.
export async function check(name, fn, { soft = false } = {}) {
  try {
    const result = await fn();
    pass(name);
    return result;
  } catch (err) {
    fail(name, err);
    if (soft) return undefined;
    throw new Abort(name);
  }
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function logTail(lines = 60) {
  if (!logPath || !fs.existsSync(logPath)) return '(no server log)';
  const text = fs.readFileSync(logPath, 'utf8');
  return text.split('\n').slice(-lines).join('\n');
}

let logTailPrinted = false;
function printLogTail(reason) {
  logTailPrinted = true;
  log(`---- server log tail (${reason}; full log: ${logPath}) ----`);
  log(logTail());
  log('---- end of server log ----');
}

// The environment the binary runs with: nothing from the caller's but PATH and HOME.
export function baseEnv() {
  const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', SIGHTLINE_LOG_FORMAT: 'json', RUST_BACKTRACE: '1' };
  if (process.env.HOME) env.HOME = process.env.HOME;
  return env;
}

// A JSON call to the server, with the admin's token once `signIn` has run.
// Resolves with { status, text, json } (json null when the body is not JSON).
export async function http(base, method, urlPath, body) {
  const init = {
    method,
    headers: { accept: 'application/json' },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(base + urlPath, init);
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: res.status, text, json };
}

// Checks SIGHTLINE_BIN and makes the temp dir (named `<tmpPrefix>XXXXXX`); returns the
// binary's absolute path.
export async function setup({ tmpPrefix = 'sightline-browser-' } = {}) {
  const binEnv = process.env.SIGHTLINE_BIN;
  await check('SIGHTLINE_BIN points to an executable', () => {
    assert(binEnv, 'SIGHTLINE_BIN is not set');
    const bin = path.resolve(binEnv);
    fs.accessSync(bin, fs.constants.X_OK);
  });
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
  logPath = path.join(tmpDir, 'server.log');
  log(`temp dir: ${tmpDir}`);
  return path.resolve(binEnv);
}

async function spawnServer(bin, port, extraEnv = {}) {
  const dataDir = path.join(tmpDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const logFd = fs.openSync(logPath, 'a');
  const env = { ...baseEnv(), ...extraEnv, SIGHTLINE_ADMIN_PASSWORD: ADMIN_PASSWORD };
  const args = ['serve', '--bind', `127.0.0.1:${port}`, '--data-dir', dataDir];
  log(`starting: ${bin} ${args.join(' ')}`);
  server = spawn(bin, args, { env, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  server.on('exit', (code, signal) => {
    serverExit = { code, signal };
  });
  await new Promise((resolve, reject) => {
    server.once('spawn', resolve);
    server.once('error', reject);
  });
}

async function waitForHealth(base) {
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  let last = 'no response yet';
  while (Date.now() < deadline) {
    if (serverExit) {
      printLogTail('server exited');
      throw new Error(`server exited before becoming healthy (code ${serverExit.code}, signal ${serverExit.signal})`);
    }
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(200);
  }
  printLogTail('health timeout');
  throw new Error(`GET /health did not return 200 within ${HEALTH_TIMEOUT_MS / 1000}s (last: ${last})`);
}

async function stopServer() {
  if (!server || serverExit) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(5_000).then(() => true)]);
  if (timedOut && !serverExit) {
    log('server did not stop within 5s of SIGTERM; sending SIGKILL');
    server.kill('SIGKILL');
    await Promise.race([exited, sleep(2_000)]);
  }
}

// Starts `bin serve` on a free port with a fresh data dir (and `extraEnv` over the base
// environment) and waits for /health; returns the base URL (http://127.0.0.1:PORT).
export async function startServer(bin, extraEnv = {}) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  await check('server starts and /health returns 200', async () => {
    await spawnServer(bin, port, extraEnv);
    await waitForHealth(base);
  });
  return base;
}

// Checks that `probePath` refuses a call without credentials, then signs the admin in: later
// `http` calls carry its token.
export async function signIn(base, probePath) {
  await check('the API refuses calls without credentials, then signs the admin in', async () => {
    const refused = await http(base, 'GET', probePath);
    assert(refused.status === 401, `expected 401 without a token, got ${refused.status}`);
    const res = await http(base, 'POST', '/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert(res.status === 200 && res.json && res.json.access_token, `login failed: ${res.status} ${res.text}`);
    token = res.json.access_token;
  });
}

// Launches chromium and opens a page in a new context with `contextOptions` (viewport, …).
// Returns { browser, page, pageErrors, offsite }: pageErrors collects uncaught page errors;
// offsite, with `base` given, every request to anywhere but the server (http or ws) or a
// data:/blob: URL; console errors are logged.
export async function launchBrowser(contextOptions = {}, { base = null } = {}) {
  const executablePath = process.env.SIGHTLINE_CHROMIUM || '/usr/bin/chromium';
  browser = await check('chromium launches', () =>
    chromium.launch({
      executablePath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      timeout: 30_000,
    }),
  );
  const context = await browser.newContext(contextOptions);
  page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') log(`  [browser console] ${msg.text()}`);
  });
  const offsite = [];
  if (base) {
    page.on('request', (req) => {
      const url = req.url();
      if (!url.startsWith(base) && !url.startsWith(base.replace('http', 'ws')) && !/^(data|blob):/.test(url)) offsite.push(url);
    });
  }
  return { browser, page, pageErrors, offsite };
}

// The last check of a page test: no uncaught page error and nothing fetched from elsewhere.
export async function checkCleanPage({ pageErrors, offsite }) {
  await check('no uncaught JavaScript errors and nothing fetched from elsewhere', () => {
    assert(pageErrors.length === 0, pageErrors.join('; '));
    assert(offsite.length === 0, `off-site requests: ${offsite.join(', ')}`);
  });
}

// Saves a full-page screenshot as <tmp>/<name>.png and copies it to target/browser/.
export async function screenshot(name) {
  const shot = path.join(tmpDir, `${name}.png`);
  await page.screenshot({ path: shot, fullPage: true });
  const outDir = path.join(REPO_ROOT, 'target', 'browser');
  fs.mkdirSync(outDir, { recursive: true });
  fs.copyFileSync(shot, path.join(outDir, `${name}.png`));
  log(`  screenshot: ${path.join(outDir, `${name}.png`)}`);
}

async function cleanup() {
  if (page && failed > 0 && tmpDir) {
    try {
      const shot = path.join(tmpDir, 'failure.png');
      await page.screenshot({ path: shot, fullPage: true, timeout: 5_000 });
      log(`failure screenshot: ${shot}`);
    } catch {
      // best effort
    }
  }
  if (browser) {
    try {
      await browser.close();
    } catch (err) {
      log(`warning: closing browser failed: ${err.message}`);
    }
  }
  await stopServer();
  if (tmpDir) {
    if (failed === 0 && process.env.SIGHTLINE_KEEP_TMP !== '1') {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    } else {
      log(`kept temp dir: ${tmpDir}`);
    }
  }
}

let finished = false;
async function finish(code) {
  if (finished) return;
  finished = true;
  await cleanup();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code ?? (failed > 0 ? 1 : 0));
}

// Runs the test's `run`, then cleans up, prints "N passed, M failed" and exits (1 when any
// check failed). SIGINT, SIGTERM and the overall timeout count as a failure.
export async function main(run) {
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      log(`received ${sig}, cleaning up`);
      failed += 1;
      finish(1);
    });
  }

  const watchdog = setTimeout(() => {
    fail('overall run', new Error(`did not finish within ${OVERALL_TIMEOUT_MS / 1000}s`));
    finish(1);
  }, OVERALL_TIMEOUT_MS);

  try {
    await run();
  } catch (err) {
    if (!(err instanceof Abort)) {
      fail('unexpected error', err);
      if (err && err.stack) log(err.stack);
    }
    if (logPath && !logTailPrinted) printLogTail(serverExit ? 'server exited during test' : 'test failed');
  } finally {
    clearTimeout(watchdog);
    await finish();
  }
}

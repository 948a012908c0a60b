#!/usr/bin/env node
// End-to-end browser test for the "active NBAs" page (/ui/active-nbas).
//
// Usage: SIGHTLINE_BIN=target/debug/sightline node tests/browser/active_nbas.test.mjs
//
// Starts a throw-away `sightline serve` on a free loopback port with its own
// data dir, seeds two NBAs through the internal calculation endpoint, drives
// Debian's chromium (/usr/bin/chromium) via playwright-core, and prints a final
// line "N passed, M failed". Exits non-zero when any check fails.
//
// Optional env:
//   SIGHTLINE_CHROMIUM   chromium executable (default /usr/bin/chromium)
//   SIGHTLINE_KEEP_TMP=1 keep the temp dir (server log, data dir) even on success

import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');
const CLIENT = '0123456789';
const OTHER_CLIENT = '1111111111';
const STEP_TIMEOUT_MS = 15_000;
const HEALTH_TIMEOUT_MS = 30_000;
const OVERALL_TIMEOUT_MS = 180_000;

let passed = 0;
let failed = 0;
let tmpDir = null;
let logPath = null;
let server = null;
let serverExit = null; // { code, signal } once the server process has exited
let browser = null;
let page = null;

function log(msg) {
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

// Runs one check. A failing check aborts the run (later checks depend on it).
async function check(name, fn) {
  try {
    const result = await fn();
    pass(name);
    return result;
  } catch (err) {
    fail(name, err);
    throw new Abort(name);
  }
}

class Abort extends Error {}

function assert(cond, message) {
  if (!cond) throw new Error(message);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function freePort() {
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

// The first admin's password, given to the server; its token signs the API calls below.
const ADMIN_PASSWORD = 'browser test admin password';
let token = null;

async function http(base, method, urlPath, body) {
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

async function startServer(bin, port) {
  const dataDir = path.join(tmpDir, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  const logFd = fs.openSync(logPath, 'a');
  const env = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', SIGHTLINE_LOG_FORMAT: 'json', RUST_BACKTRACE: '1',
    SIGHTLINE_ADMIN_PASSWORD: ADMIN_PASSWORD };
  if (process.env.HOME) env.HOME = process.env.HOME;
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

function rowCount() {
  return page.locator('tr[data-nba-id]').count();
}

async function waitForRows(n) {
  await page.waitForFunction(
    (expected) => document.querySelectorAll('tr[data-nba-id]').length === expected,
    n,
    { timeout: STEP_TIMEOUT_MS },
  );
}

function calculationEvent(definitionId) {
  return {
    event_id: randomUUID(),
    occurred_at: '2026-02-09T13:59:00Z',
    source: 'browser-test',
    nba_definition_id: definitionId,
    enterprise_number: CLIENT,
    account_id: 'acc_123',
    context: { score: 0.9 },
  };
}

async function run() {
  const binEnv = process.env.SIGHTLINE_BIN;
  await check('SIGHTLINE_BIN points to an executable', () => {
    assert(binEnv, 'SIGHTLINE_BIN is not set');
    const bin = path.resolve(binEnv);
    fs.accessSync(bin, fs.constants.X_OK);
  });
  const bin = path.resolve(binEnv);
  const executablePath = process.env.SIGHTLINE_CHROMIUM || '/usr/bin/chromium';

  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sightline-browser-'));
  logPath = path.join(tmpDir, 'server.log');
  log(`temp dir: ${tmpDir}`);

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;

  await check('server starts and /health returns 200', async () => {
    await startServer(bin, port);
    await waitForHealth(base);
  });

  await check('the API refuses calls without credentials, then signs the admin in', async () => {
    const refused = await http(base, 'GET', '/api/v1/nba');
    assert(refused.status === 401, `expected 401 without a token, got ${refused.status}`);
    const res = await http(base, 'POST', '/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
    assert(res.status === 200 && res.json && res.json.access_token, `login failed: ${res.status} ${res.text}`);
    token = res.json.access_token;
  });

  for (const def of ['def_browser_1', 'def_browser_2']) {
    await check(`POST calculation event ${def} returns 202`, async () => {
      const res = await http(base, 'POST', '/api/v1/internal/events/nba-calculation?wait=true', calculationEvent(def));
      assert(res.status === 202, `expected 202, got ${res.status}: ${res.text}`);
    });
  }

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

  const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_TIMEOUT_MS);
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') log(`  [browser console] ${msg.text()}`);
  });

  await check(`page lists 2 active NBAs for client ${CLIENT}`, async () => {
    const res = await page.goto(`${base}/ui/active-nbas?client=${CLIENT}`);
    assert(res && res.status() === 200, `GET /ui/active-nbas returned ${res && res.status()}`);
    // Not signed in yet: the page asks first; a wrong password is refused with the API's message.
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await page.fill('#login-username', 'admin');
    await page.fill('#login-password', 'not the password');
    await page.click('#login-submit');
    await page.waitForFunction(() => (document.getElementById('login-error')?.textContent ?? '').includes('Invalid'));
    await page.fill('#login-password', ADMIN_PASSWORD);
    await page.click('#login-submit');
    await waitForRows(2);
    const count = (await page.locator('#count').textContent()).trim();
    assert(count === '2', `#count shows "${count}", expected "2"`);
    const header = await page.locator('header').textContent();
    assert(header.includes(CLIENT), `header does not mention client ${CLIENT}: "${header}"`);
  });

  const row1 = page.locator('tr[data-nba-id]', { hasText: 'def_browser_1' });
  const acceptedId = await check('row for def_browser_1 is present with an id', async () => {
    assert((await row1.count()) === 1, `expected exactly one row for def_browser_1, found ${await row1.count()}`);
    const id = await row1.getAttribute('data-nba-id');
    assert(id, 'row has an empty data-nba-id');
    return id;
  });

  await check(`Accept removes the row and #status mentions ${acceptedId}`, async () => {
    await row1.locator('button[data-action="accepted"]').click();
    await waitForRows(1);
    await page.waitForFunction(
      (id) => (document.getElementById('status')?.textContent ?? '').includes(id),
      acceptedId,
      { timeout: STEP_TIMEOUT_MS },
    );
    const status = (await page.locator('#status').textContent()).trim();
    assert(/accepted/i.test(status), `#status does not say accepted: "${status}"`);
    const remaining = await page.locator('tr[data-nba-id]').first().textContent();
    assert(remaining.includes('def_browser_2'), `remaining row is not def_browser_2: "${remaining}"`);
    const count = (await page.locator('#count').textContent()).trim();
    assert(count === '1', `#count shows "${count}", expected "1"`);
  });

  await check('screenshot saved', async () => {
    const shot = path.join(tmpDir, 'active_nbas.png');
    await page.screenshot({ path: shot, fullPage: true });
    const outDir = path.join(REPO_ROOT, 'target', 'browser');
    fs.mkdirSync(outDir, { recursive: true });
    fs.copyFileSync(shot, path.join(outDir, 'active_nbas.png'));
    log(`  screenshot: ${shot} (copied to ${path.join(outDir, 'active_nbas.png')})`);
  });

  await check(`API reports NBA ${acceptedId} as accepted`, async () => {
    const res = await http(base, 'GET', `/api/v1/nba/${encodeURIComponent(acceptedId)}`);
    assert(res.status === 200, `expected 200, got ${res.status}: ${res.text}`);
    assert(res.json && res.json.status === 'accepted', `expected status "accepted", got: ${res.text}`);
  });

  await check(`client ${OTHER_CLIENT} shows the empty state`, async () => {
    await page.goto(`${base}/ui/active-nbas?client=${OTHER_CLIENT}`);
    await page.locator('#empty').waitFor({ state: 'visible' });
    const empty = (await page.locator('#empty').textContent()).trim();
    assert(empty === `No active NBAs for client ${OTHER_CLIENT}`, `unexpected empty state text: "${empty}"`);
    assert((await rowCount()) === 0, `expected 0 rows, found ${await rowCount()}`);
    const count = (await page.locator('#count').textContent()).trim();
    assert(count === '0', `#count shows "${count}", expected "0"`);
  });

  await check('no uncaught JavaScript errors on the page', () => {
    assert(pageErrors.length === 0, pageErrors.join('; '));
  });
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

#!/usr/bin/env node
// End-to-end browser test for the "active NBAs" page (/ui/active-nbas).
//
// Usage: SIGHTLINE_BIN=target/debug/sightline node tests/browser/active_nbas.test.mjs
//
// Starts a throw-away `sightline serve` on a free loopback port with its own
// data dir, seeds two NBAs through the internal calculation endpoint, drives
// Debian's chromium (/usr/bin/chromium) via playwright-core (the page, then the
// home page's link to it), and prints a final line "N passed, M failed". Exits
// non-zero when any check fails. The server/browser harness is ./harness.mjs.
//
// Optional env:
//   SIGHTLINE_CHROMIUM   chromium executable (default /usr/bin/chromium)
//   SIGHTLINE_KEEP_TMP=1 keep the temp dir (server log, data dir) even on success

import { randomUUID } from 'node:crypto';
import { ADMIN_PASSWORD, STEP_TIMEOUT_MS, assert, check, http, launchBrowser, main, screenshot, setup, signIn, startServer } from './harness.mjs';

const CLIENT = '0123456789';
const OTHER_CLIENT = '1111111111';

let page = null;

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
  const bin = await setup({ tmpPrefix: 'sightline-browser-' });
  const base = await startServer(bin);
  await signIn(base, '/api/v1/nba');

  for (const def of ['def_browser_1', 'def_browser_2']) {
    await check(`POST calculation event ${def} returns 202`, async () => {
      const res = await http(base, 'POST', '/api/v1/internal/events/nba-calculation?wait=true', calculationEvent(def));
      assert(res.status === 202, `expected 202, got ${res.status}: ${res.text}`);
    });
  }

  const launched = await launchBrowser({ viewport: { width: 1280, height: 720 } });
  page = launched.page;
  const { pageErrors } = launched;

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

  await check('screenshot saved', () => screenshot('active_nbas'));

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

  await check('home page links Active NBAs, /docs and /rq; the Active NBAs card opens the page', async () => {
    const res = await page.goto(`${base}/`);
    assert(res && res.status() === 200, `GET / returned ${res && res.status()}`);
    const accept = (await res.request().allHeaders())['accept'] ?? '';
    assert(accept.includes('text/html'), `the browser asked for "${accept}", not text/html`);
    const type = res.headers()['content-type'] ?? '';
    assert(type.includes('text/html'), `GET / from the browser answered ${type}, not HTML`);
    const links = page.locator('#module-pages a[href="/ui/active-nbas"]');
    assert((await links.count()) === 1, `#module-pages has ${await links.count()} links to /ui/active-nbas`);
    const card = page.locator('#module-pages a.card', { hasText: 'Active NBAs' });
    assert((await card.count()) === 1, `#module-pages has ${await card.count()} "Active NBAs" cards`);
    const href = await card.getAttribute('href');
    assert(href === '/ui/active-nbas', `the Active NBAs card links to ${href}`);
    for (const href of ['/docs', '/rq']) {
      const n = await page.locator(`#platform-pages a[href="${href}"]`).count();
      assert(n === 1, `#platform-pages has ${n} links to ${href}`);
    }
    await Promise.all([page.waitForURL(`${base}/ui/active-nbas`), card.click()]);
    // Still signed in: the default client's remaining NBA is listed.
    await waitForRows(1);
    const label = (await page.locator('#client-label').textContent()).trim();
    assert(label === CLIENT, `the page opened for client "${label}", expected ${CLIENT}`);
  });

  await check('no uncaught JavaScript errors on the page', () => {
    assert(pageErrors.length === 0, pageErrors.join('; '));
  });
}

await main(run);

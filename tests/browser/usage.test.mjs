#!/usr/bin/env node
// End-to-end browser test for the usage pages (/ui/usage, /ui/usage/dashboard) and the job
// dashboard (/rq).
//
// Usage: SIGHTLINE_BIN=target/debug/sightline node tests/browser/usage.test.mjs
//
// Writes a 20,000-row sample with `sightline usage sample`, starts a throw-away
// `sightline serve` on a free loopback port with its own data dir, and drives Debian's
// chromium (/usr/bin/chromium) via playwright-core:
//   1. /ui/usage: sign in, upload both files, follow the job to 100% / succeeded over the
//      WebSocket, check the counts and checksums shown;
//   2. /ui/usage/dashboard: the spend chart's data-total equals kpis.total_spendings and the
//      sample's total cost; the model and company charts have bars;
//   3. /rq: the usage queue shows the succeeded usage.import job and an alive worker;
//   4. the same files again: 20,000 unchanged, 0 inserted, dashboard total unchanged;
//   5. a file with bad rows: the rejected rows are listed and download as CSV.
// Prints a final line "N passed, M failed" and exits non-zero when any check fails. The
// server/browser harness is ./harness.mjs.
//
// Optional env:
//   SIGHTLINE_CHROMIUM   chromium executable (default /usr/bin/chromium)
//   SIGHTLINE_KEEP_TMP=1 keep the temp dir (server log, data dir, sample) even on success

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ADMIN_PASSWORD, assert, baseEnv, check, http, checkCleanPage, launchBrowser, log, main, screenshot, setup, signIn, startServer, tmpDir } from './harness.mjs';

const SAMPLE_ROWS = 20_000;
const IMPORT_TIMEOUT_MS = 60_000;

let page = null;

function near(a, b, tolerance = 0.01) {
  return Math.abs(a - b) <= tolerance + 1e-9;
}

// Writes the sample files; returns their paths and the summary `usage sample` prints.
function writeSample(bin) {
  const out = path.join(tmpDir, 'sample');
  const res = spawnSync(bin, ['usage', 'sample', '--rows', String(SAMPLE_ROWS), '--out', out], {
    env: { ...baseEnv(), SIGHTLINE_DATA_DIR: path.join(tmpDir, 'sample-data') },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert(res.status === 0, `usage sample exited with ${res.status}: ${res.stderr}`);
  // "wrote 200 users and 20000 transactions (2025-01-01 to 2025-06-30, total cost 48679.20, 12126913 tokens) to DIR"
  const text = `${res.stderr}\n${res.stdout}`;
  const m = /wrote (\d+) users and (\d+) transactions \((\S+) to (\S+), total cost ([\d.]+), (\d+) tokens\)/.exec(text);
  assert(m, `could not read the sample summary from: ${text.trim()}`);
  const sample = {
    users: path.join(out, 'users.csv'),
    transactions: path.join(out, 'transactions.csv'),
    userRows: Number(m[1]),
    rows: Number(m[2]),
    first: m[3],
    last: m[4],
    totalCost: Number(m[5]),
    tokens: Number(m[6]),
  };
  assert(sample.rows === SAMPLE_ROWS, `sample has ${sample.rows} transactions, expected ${SAMPLE_ROWS}`);
  for (const f of [sample.users, sample.transactions]) assert(fs.statSync(f).size > 0, `${f} is empty`);
  return sample;
}

function sha256(file) {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// The value a count cell shows for `file` (users | transactions) and `count` (inserted, …).
async function countShown(file, count) {
  const cell = page.locator(`#counts tr[data-file="${file}"] td[data-count="${count}"]`);
  return Number(await cell.getAttribute('data-value'));
}

// Chooses both files on /ui/usage, uploads them, waits until the job shows 100% and
// succeeded; returns the job id. `previousId` is a job the page must not be showing.
async function uploadAndWait(usersFile, transactionsFile, previousId) {
  await page.setInputFiles('#users', usersFile);
  await page.setInputFiles('#transactions', transactionsFile);
  await page.click('#upload-button');
  await page.waitForFunction(
    (prev) => {
      const id = document.getElementById('job-id')?.textContent ?? '';
      const bar = document.getElementById('progress');
      const status = document.getElementById('job-status')?.textContent ?? '';
      if (!id || id === prev) return false;
      if (/failed/.test(status)) return true; // reported below
      return bar?.getAttribute('aria-valuenow') === '100' && /succeeded/.test(status);
    },
    previousId ?? '',
    { timeout: IMPORT_TIMEOUT_MS },
  );
  const status = (await page.locator('#job-status').textContent()).trim();
  assert(/succeeded/.test(status), `the import did not succeed: "${status}"`);
  const sent = await page.locator('#upload-progress').getAttribute('aria-valuenow');
  assert(sent === '100', `the upload bar shows ${sent}, expected 100`);
  return (await page.locator('#job-id').textContent()).trim();
}

// Opens the dashboard and waits for its charts; returns what they show.
async function readDashboard(base) {
  await page.goto(`${base}/ui/usage/dashboard`);
  await page.waitForFunction(() => {
    const spend = document.getElementById('chart-spend');
    const status = document.getElementById('dash-status');
    return (spend && Number(spend.dataset.count) > 0 && spend.querySelector('svg')) || /error/.test(status?.className ?? '');
  });
  const status = page.locator('#dash-status');
  assert(!/error/.test(await status.getAttribute('class')), `dashboard error: ${await status.textContent()}`);
  return page.evaluate(() => {
    const spend = document.getElementById('chart-spend');
    return {
      total: Number(spend.dataset.total),
      points: spend.querySelectorAll('g.point[data-value]').length,
      count: Number(spend.dataset.count),
      cardTotal: Number(document.getElementById('kpi-total-spendings').dataset.value),
      modelBars: [...document.querySelectorAll('#chart-models g.bar[data-value]')].map((g) => [g.dataset.label, Number(g.dataset.value)]),
      companyBars: document.querySelectorAll('#chart-companies g.bar[data-value]').length,
      start: document.getElementById('start-date').value,
      end: document.getElementById('end-date').value,
      regions: document.getElementById('regions').options.length,
    };
  });
}

async function run() {
  const bin = await setup({ tmpPrefix: 'sightline-browser-usage-' });

  const sample = await check(`usage sample writes ${SAMPLE_ROWS} transactions`, () => writeSample(bin));
  log(`  sample: ${sample.userRows} users, ${sample.rows} transactions, ${sample.first}..${sample.last}, total cost ${sample.totalCost}`);

  const base = await startServer(bin);
  await signIn(base, '/jobs');

  const launched = await launchBrowser({ viewport: { width: 1280, height: 900 }, acceptDownloads: true }, { base });
  page = launched.page;
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws.url()));

  await check('/ui/usage asks for a sign-in and refuses a wrong password', async () => {
    const res = await page.goto(`${base}/ui/usage`);
    assert(res && res.status() === 200, `GET /ui/usage returned ${res && res.status()}`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await page.fill('#login-username', 'admin');
    await page.fill('#login-password', 'not the password');
    await page.click('#login-submit');
    await page.waitForFunction(() => (document.getElementById('login-error')?.textContent ?? '').includes('Invalid'));
    await page.fill('#login-password', ADMIN_PASSWORD);
    await page.click('#login-submit');
    await page.locator('#upload-form').waitFor({ state: 'visible' });
  });

  const firstJob = await check('upload: the job reaches 100% and succeeded', () =>
    uploadAndWait(sample.users, sample.transactions, null),
  );
  log(`  job ${firstJob}`);

  await check(`upload: ${SAMPLE_ROWS} transactions and ${sample.userRows} users shown as inserted, none rejected`, async () => {
    const inserted = await countShown('transactions', 'inserted');
    assert(inserted === SAMPLE_ROWS, `transactions inserted shows ${inserted}`);
    const cellText = (await page.locator('#counts tr[data-file="transactions"] td[data-count="inserted"]').textContent()).replace(/\D/g, '');
    assert(cellText === String(SAMPLE_ROWS), `the inserted cell reads "${cellText}"`);
    const users = await countShown('users', 'inserted');
    assert(users === sample.userRows, `users inserted shows ${users}, expected ${sample.userRows}`);
    for (const file of ['users', 'transactions']) {
      const rejected = await countShown(file, 'rejected');
      assert(rejected === 0, `${file} rejected shows ${rejected}`);
    }
    assert(await page.locator('#rejects').isHidden(), 'the rejected-rows section is shown for a clean import');
  });

  await check('upload: SHA-256 checksums shown match the files', async () => {
    for (const file of ['users', 'transactions']) {
      const shown = await page.locator(`#counts tr[data-file="${file}"] td[data-sha256]`).getAttribute('data-sha256');
      const want = sha256(sample[file]);
      assert(shown === want, `${file}: page shows ${shown}, file hashes to ${want}`);
    }
  }, { soft: true });

  await check('upload: progress came over the WebSocket /jobs/<id>', () => {
    assert(sockets.some((u) => u.includes(`/jobs/${firstJob}`)), `WebSockets opened: ${JSON.stringify(sockets)}`);
  }, { soft: true });

  await check('upload: the recent imports list the job as succeeded', async () => {
    const row = page.locator(`#recent tr[data-job-id="${firstJob}"]`);
    await page.waitForFunction((id) => document.querySelector(`#recent tr[data-job-id="${id}"]`)?.dataset.status === 'succeeded', firstJob);
    assert((await row.count()) === 1, 'no row for the job in #recent');
  }, { soft: true });

  await check('screenshot of the upload page', () => screenshot('usage_upload'), { soft: true });

  // The API's own figures for the whole range, to compare the dashboard with.
  const kpis = await check('GET /metrics/kpis over the data range', async () => {
    const range = await http(base, 'GET', `/metrics/kpis?start_date=${sample.first}&end_date=${sample.first}`);
    assert(range.status === 200, `probe: ${range.status} ${range.text}`);
    const [first, last] = range.json.data.max_date_range;
    assert(first === sample.first && last === sample.last, `max_date_range ${first}..${last}, sample ${sample.first}..${sample.last}`);
    const res = await http(base, 'GET', `/metrics/kpis?start_date=${first}&end_date=${last}`);
    assert(res.status === 200, `${res.status} ${res.text}`);
    return res.json.data;
  });

  const dash = await check('dashboard: charts render for the whole data range', async () => {
    const d = await readDashboard(base);
    assert(d.start === sample.first && d.end === sample.last, `date inputs ${d.start}..${d.end}, expected ${sample.first}..${sample.last}`);
    assert(d.count === kpis.kpis.spends_trend.length && d.points === d.count, `spend chart has ${d.points} points (data-count ${d.count}), the API ${kpis.kpis.spends_trend.length}`);
    assert(d.regions === kpis.region_wise_spends.length, `region select has ${d.regions} options, the API ${kpis.region_wise_spends.length} regions`);
    return d;
  });

  await check('dashboard: total spend card equals kpis.total_spendings', () => {
    assert(near(dash.cardTotal, kpis.kpis.total_spendings), `card ${dash.cardTotal}, API ${kpis.kpis.total_spendings}`);
  }, { soft: true });

  await check('dashboard: #chart-spend data-total equals kpis.total_spendings (±0.01)', () => {
    assert(near(dash.total, kpis.kpis.total_spendings), `chart ${dash.total}, API ${kpis.kpis.total_spendings}`);
  }, { soft: true });

  await check(`dashboard: #chart-spend data-total equals the sample's total cost ${sample.totalCost} (±0.01)`, () => {
    assert(near(dash.total, sample.totalCost), `chart ${dash.total}, sample ${sample.totalCost}`);
  }, { soft: true });

  await check('dashboard: the model and company charts have bars', () => {
    assert(dash.modelBars.length > 0, 'no bars in #chart-models');
    assert(dash.modelBars.length === kpis.models_metrics.length, `${dash.modelBars.length} model bars, the API ${kpis.models_metrics.length} models`);
    const [label, value] = dash.modelBars[0];
    const top = kpis.models_metrics[0];
    assert(label === top.model && near(value, top.total_cost), `first model bar ${label}=${value}, API ${top.model}=${top.total_cost}`);
    assert(dash.companyBars > 0, 'no bars in #chart-companies');
  }, { soft: true });

  await check('screenshot of the dashboard', () => screenshot('usage_dashboard'), { soft: true });

  await check('/rq: the usage queue shows 1 succeeded job and an alive worker', async () => {
    await page.goto(`${base}/rq`);
    const cell = page.locator('#queues tr[data-queue="usage"] td[data-state="succeeded"]');
    await cell.waitFor();
    const succeeded = await cell.getAttribute('data-value');
    assert(succeeded === '1', `usage succeeded shows ${succeeded}`);
    const failedJobs = await page.locator('#queues tr[data-queue="usage"] td[data-state="failed"]').getAttribute('data-value');
    assert(failedJobs === '0', `usage failed shows ${failedJobs}`);
    await page.locator('#jobs tr[data-job-type="usage.import"][data-state="succeeded"]').first().waitFor();
    await page.locator('#workers tr[data-alive="true"]').first().waitFor();
    const alive = await page.locator('#workers tr[data-alive="true"]').count();
    assert(alive >= 1, `${alive} alive workers shown`);
  });

  await check('screenshot of the job dashboard', () => screenshot('usage_rq'), { soft: true });

  const secondJob = await check('second upload of the same files succeeds', async () => {
    await page.goto(`${base}/ui/usage`);
    await page.locator('#upload-form').waitFor({ state: 'visible' });
    return uploadAndWait(sample.users, sample.transactions, firstJob);
  });

  await check(`second upload: ${SAMPLE_ROWS} unchanged, 0 inserted, 0 updated`, async () => {
    const unchanged = await countShown('transactions', 'unchanged');
    const inserted = await countShown('transactions', 'inserted');
    const updated = await countShown('transactions', 'updated');
    assert(unchanged === SAMPLE_ROWS && inserted === 0 && updated === 0,
      `transactions: ${inserted} inserted, ${updated} updated, ${unchanged} unchanged`);
    const usersUnchanged = await countShown('users', 'unchanged');
    assert(usersUnchanged === sample.userRows, `users unchanged shows ${usersUnchanged}`);
    assert(secondJob !== firstJob, 'the page still shows the first job');
  });

  await check('second upload: the dashboard total is unchanged', async () => {
    const again = await readDashboard(base);
    assert(again.total === dash.total, `chart total ${again.total}, before ${dash.total}`);
    assert(again.cardTotal === dash.cardTotal, `card total ${again.cardTotal}, before ${dash.cardTotal}`);
  }, { soft: true });

  await check('rejected rows are listed and download as CSV', async () => {
    // The first 100 sample rows (unchanged) plus two broken ones.
    const bad = path.join(tmpDir, 'bad');
    fs.mkdirSync(bad, { recursive: true });
    const lines = fs.readFileSync(sample.transactions, 'utf8').split('\n').slice(0, 101);
    const user = lines[1].split(',')[1]; // a known User_ID, so only the named field is wrong
    lines.push(`bad-row-1,${user},gpt-4o,c1,prompt,not-a-number,5,1.0,2025-01-01T00:00:00Z`);
    lines.push(`bad-row-2,${user},gpt-4o,c1,prompt,10,5,1.0,not-a-date`);
    fs.writeFileSync(path.join(bad, 'transactions.csv'), `${lines.join('\n')}\n`);
    await page.goto(`${base}/ui/usage`);
    await page.locator('#upload-form').waitFor({ state: 'visible' });
    await uploadAndWait(sample.users, path.join(bad, 'transactions.csv'), secondJob);
    const rejected = await countShown('transactions', 'rejected');
    assert(rejected === 2, `transactions rejected shows ${rejected}`);
    await page.waitForFunction(() => document.querySelectorAll('#rejects-table tbody tr').length === 2);
    const table = await page.locator('#rejects-table').textContent();
    assert(table.includes('Token_Count') && table.includes('Timestamp'), `rejected rows: ${table}`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#rejects-download')]);
    const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\n');
    assert(csv.length === 3 && /file/.test(csv[0]), `downloaded CSV: ${csv.join(' | ')}`);
  }, { soft: true });

  await checkCleanPage(launched);
}

await main(run);

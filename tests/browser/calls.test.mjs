#!/usr/bin/env node
// End-to-end browser test for the call reports dashboard (/ui/calls).
//
// Usage: SIGHTLINE_BIN=target/debug/sightline node tests/browser/calls.test.mjs
//
// Writes a sample with `sightline calls sample`, loads it with `sightline calls import
// --sample-orgs` into the server's data dir, starts the server, backfills two weeks of one
// organisation's reports, then opens the page in Debian's chromium and checks that the tiles
// show the API's figures and the charts are drawn. Prints "N passed, M failed".

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ADMIN_PASSWORD, assert, baseEnv, check, http, checkCleanPage, launchBrowser, log, main, screenshot, setup, signIn, startServer, tmpDir } from './harness.mjs';

const ORG = '01951f56-8c6e-7a93-a971-3d06a81a1ab0'; // Paul Logistics, America/Chicago
const FROM = '2025-11-03';
const TO = '2025-11-16';
const DAY = '2025-11-05';

function cli(bin, args) {
  const res = spawnSync(bin, args, { env: baseEnv(), encoding: 'utf8', timeout: 120_000 });
  assert(res.status === 0, `sightline ${args.join(' ')} exited with ${res.status}: ${res.stderr}`);
  return `${res.stderr}\n${res.stdout}`;
}

let page = null;

async function run() {
  const bin = await setup({ tmpPrefix: 'sightline-browser-calls-' });
  const file = path.join(tmpDir, 'calls.ndjson');
  await check('calls sample and calls import load two weeks of calls', () => {
    cli(bin, ['calls', 'sample', '--out', file, '--from', FROM, '--days', '14', '--calls-per-day', '60']);
    const out = cli(bin, ['calls', 'import', file, '--sample-orgs', '--data-dir', path.join(tmpDir, 'data')]);
    assert(/imported \d+ records/.test(out), out);
  });

  const base = await startServer(bin);
  await signIn(base, '/api/orgs');

  const backfill = await check('a two-week backfill runs as a job to its end, every day made', async () => {
    const res = await http(base, 'POST', '/api/reports/backfill', { org_id: ORG, start_date: FROM, end_date: TO });
    assert(res.status === 202, `backfill: ${res.status} ${res.text}`);
    for (let i = 0; i < 100; i += 1) {
      const progress = await http(base, 'GET', `/api/reports/backfills/${res.json.id}`);
      if (progress.json.status === 'succeeded') {
        assert(progress.json.days_done === 14 && progress.json.generated === 14, progress.text);
        return progress.json;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error('the backfill did not finish');
  });
  log(`  backfill: ${backfill.days_done} days`);

  const stored = await check('the stored report of the day is there', async () => {
    const res = await http(base, 'GET', `/api/reports/${DAY}?org_id=${ORG}`);
    assert(res.status === 200, `${res.status} ${res.text}`);
    return res.json.data;
  });

  const launched = await launchBrowser({ viewport: { width: 1280, height: 1000 } }, { base });
  page = launched.page;

  await check('/ui/calls signs in and shows the day', async () => {
    const res = await page.goto(`${base}/ui/calls?org_id=${ORG}&date=${DAY}&from=${FROM}&to=${TO}`);
    assert(res && res.status() === 200, `GET /ui/calls returned ${res && res.status()}`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await page.fill('#login-username', 'admin');
    await page.fill('#login-password', ADMIN_PASSWORD);
    await page.click('#login-submit');
    await page.waitForFunction(() => document.getElementById('kpi-total-calls')?.dataset.value !== undefined
      && document.getElementById('chart-calls')?.querySelector('svg'));
  });

  const shown = await check('read the tiles and charts', () => page.evaluate(() => {
    const value = (id) => Number(document.getElementById(id).dataset.value);
    return {
      calls: value('kpi-total-calls'),
      success: value('kpi-success-rate'),
      booking: value('kpi-booking'),
      nonConvertible: value('kpi-non-convertible'),
      trendPoints: Number(document.getElementById('chart-calls').dataset.count),
      classificationBars: document.querySelectorAll('#chart-classification g.bar[data-value]').length,
      source: document.getElementById('source-note').textContent,
      orgName: document.getElementById('org').selectedOptions[0].textContent,
    };
  }));
  log(`  shown: ${JSON.stringify(shown)}`);

  await check('the tiles equal the stored report\'s KPIs', () => {
    const k = stored.kpis;
    assert(shown.calls === k.total_calls, `calls ${shown.calls}, API ${k.total_calls}`);
    assert(shown.success === k.success_rate_percent, `success ${shown.success}, API ${k.success_rate_percent}`);
    const booking = k.successfully_transferred_for_booking.successfully_transferred_for_booking_count;
    assert(shown.booking === booking, `booking ${shown.booking}, API ${booking}`);
    const share = k.non_convertible_calls_with_carrier_not_qualified.percentage;
    assert(shown.nonConvertible === share, `non-convertible ${shown.nonConvertible}, API ${share}`);
    assert(shown.calls > 0, 'a weekday of the sample has calls');
    assert(/stored report/.test(shown.source), shown.source);
    assert(shown.orgName === 'Paul Logistics', shown.orgName);
  });

  await check('the trend has the 14 stored days and the breakdowns have bars', () => {
    assert(shown.trendPoints === 14, `trend points ${shown.trendPoints}`);
    assert(shown.classificationBars === stored.breakdowns.call_classification.length,
      `classification bars ${shown.classificationBars}, API ${stored.breakdowns.call_classification.length}`);
  });

  await check('a day with no stored report is computed live', async () => {
    await page.goto(`${base}/ui/calls?org_id=${ORG}&date=2025-11-20&from=${FROM}&to=${TO}`);
    await page.waitForFunction(() => /computed now/.test(document.getElementById('source-note')?.textContent ?? ''));
  }, { soft: true });

  await check('screenshot of the reports dashboard', async () => {
    await page.goto(`${base}/ui/calls?org_id=${ORG}&date=${DAY}&from=${FROM}&to=${TO}`);
    await page.waitForFunction(() => document.getElementById('chart-calls')?.querySelector('svg'));
    await screenshot('calls_reports');
  }, { soft: true });

  await check('the home page links the reports dashboard', async () => {
    await page.goto(`${base}/`);
    await page.locator('a[href="/ui/calls"]').first().waitFor();
  }, { soft: true });

  await checkCleanPage(launched);
}

await main(run);

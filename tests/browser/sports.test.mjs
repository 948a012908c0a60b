#!/usr/bin/env node
// End-to-end browser test for the sports pages (/ui/sports, /ui/sports/ingest).
//
// Usage: SIGHTLINE_BIN=target/debug/sightline node tests/browser/sports.test.mjs
//
// Starts `sightline sports stand-in` (the stats.nba.com stand-in, living after the 2024-25
// season) and the server pointed at it, syncs a day over the API, then opens the player page in
// Debian's chromium: the search suggests names, the tiles show the API's figures and the charts
// are drawn; and the ingestion page lists the run with the API's counts. Prints "N passed, M failed".

import { spawn } from 'node:child_process';
import { assert, baseEnv, check, freePort, http, checkCleanPage, launchBrowser, log, main, screenshot, setup, signIn, sleep, startServer, ADMIN_PASSWORD } from './harness.mjs';

let standin = null;
process.on('exit', () => { if (standin) standin.kill('SIGKILL'); });

let page = null;

async function run() {
  const bin = await setup({ tmpPrefix: 'sightline-browser-sports-' });
  const port = await freePort();
  const standinBase = `http://127.0.0.1:${port}`;
  await check('the stats.nba.com stand-in starts', async () => {
    standin = spawn(bin, ['sports', 'stand-in', '--bind', `127.0.0.1:${port}`, '--today', '2025-06-01'],
      { env: baseEnv(), stdio: 'ignore' });
    for (let i = 0; i < 100; i += 1) {
      try {
        const res = await fetch(`${standinBase}/standin/requests`);
        if (res.status === 200) return;
      } catch { /* not yet */ }
      await sleep(100);
    }
    throw new Error('the stand-in did not answer');
  });

  const base = await startServer(bin, {
    NBA_STATS_BASE_URL: `${standinBase}/stats`,
    NBA_DEFAULT_SEASON: '2024-25',
    NBA_API_MAX_RPM: '6000',
  });
  await signIn(base, '/player_summary?player=lebron');

  const summary = await check('the API answers a summary of LeBron James', async () => {
    const res = await http(base, 'GET', '/player_summary?player=LeBron%20James&stat=points&limit=10');
    assert(res.status === 200, `${res.status} ${res.text}`);
    return res.json;
  });

  const run = await check('a day synced over the API ends as a succeeded run', async () => {
    const res = await http(base, 'POST', '/api/ingest/run', { date: '2025-01-15' });
    assert(res.status === 202, `${res.status} ${res.text}`);
    for (let i = 0; i < 100; i += 1) {
      const runs = await http(base, 'GET', '/api/ingest/runs');
      const done = (runs.json.runs || []).find((r) => r.run_date === '2025-01-15' && r.status !== 'running');
      if (done) {
        assert(done.status === 'succeeded', JSON.stringify(done));
        return done;
      }
      await sleep(200);
    }
    throw new Error('the sync did not finish');
  });

  const launched = await launchBrowser({ viewport: { width: 1280, height: 1000 } }, { base });
  page = launched.page;

  await check('/ui/sports signs in and the search suggests names', async () => {
    const res = await page.goto(`${base}/ui/sports`);
    assert(res && res.status() === 200, `GET /ui/sports returned ${res && res.status()}`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await page.fill('#login-username', 'admin');
    await page.fill('#login-password', ADMIN_PASSWORD);
    await page.click('#login-submit');
    await page.locator('#player').waitFor({ state: 'visible' });
    await page.fill('#player', 'lebr');
    await page.waitForFunction(() => [...document.querySelectorAll('#players option')].some((o) => o.value === 'LeBron James'));
  });

  await check('showing LeBron James draws the tiles and both charts', async () => {
    await page.fill('#player', 'LeBron James');
    await page.fill('#limit', '10');
    await page.click('#apply');
    await page.waitForFunction(() => document.getElementById('tile-season-avg')?.dataset.value !== undefined
      && document.querySelector('#chart-games svg') && document.querySelector('#chart-rolling svg'));
  });

  const shown = await check('read the tiles', () => page.evaluate(() => {
    const value = (id) => Number(document.getElementById(id).dataset.value);
    return {
      recent: value('tile-recent-avg'),
      season: value('tile-season-avg'),
      rest: value('tile-rest'),
      games: Number(document.getElementById('chart-games').dataset.count),
      features: document.querySelectorAll('#rolling tbody tr').length,
    };
  }));
  log(`  shown: ${JSON.stringify(shown)}`);

  await check('the tiles equal the API\'s figures', () => {
    assert(shown.recent === summary.seasonAvg, `recent ${shown.recent}, API ${summary.seasonAvg}`);
    assert(shown.season === summary.fullSeasonAvg, `season ${shown.season}, API ${summary.fullSeasonAvg}`);
    assert(shown.rest === summary.contextualFactors.daysRest, `rest ${shown.rest}, API ${summary.contextualFactors.daysRest}`);
    assert(shown.games === 10, `chart points ${shown.games}`);
    assert(shown.features >= 20, `rolling features ${shown.features}`);
  });

  await check('screenshot of the player page', async () => { await screenshot('sports_player'); }, { soft: true });

  await check('the ingestion page lists the run with the API\'s counts', async () => {
    await page.goto(`${base}/ui/sports/ingest`);
    await page.waitForFunction((id) => document.querySelector(`#runs tr[data-run-id="${id}"]`), run.id);
    const cells = await page.evaluate((id) => [...document.querySelector(`#runs tr[data-run-id="${id}"]`).cells].map((c) => c.textContent), run.id);
    assert(cells[0] === '2025-01-15' && cells[2] === 'succeeded', cells.join(' | '));
    assert(cells[3] === String(run.summary.player_rows), `player rows ${cells[3]}, API ${run.summary.player_rows}`);
  });

  await check('screenshot of the ingestion page', async () => { await screenshot('sports_ingest'); }, { soft: true });

  await checkCleanPage(launched);
}

await main(run);

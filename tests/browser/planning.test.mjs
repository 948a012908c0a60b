#!/usr/bin/env node
// End-to-end browser test for the planning dashboard (/ui/planning).
//
// Usage: SIGHTLINE_BIN=target/debug/sightline node tests/browser/planning.test.mjs
//
// Loads a sample with `sightline planning sample --load` into the server's data dir, starts the
// server, then over the API: forecasts a product, takes the forecast into demand plans, records
// a KPI off its target, computes the month's KPIs, starts an S&OP cycle and runs two scenarios.
// Opens the page in Debian's chromium and checks that the tiles, the KPI cards, the
// history-and-forecast chart (with its interval band), inventory health, the cycle's steps and the
// scenario comparison show what the API answers. Prints "N passed, M failed".

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { ADMIN_PASSWORD, assert, baseEnv, check, http, checkCleanPage, launchBrowser, log, main, screenshot, setup, signIn, startServer, tmpDir } from './harness.mjs';

function cli(bin, args) {
  const res = spawnSync(bin, args, { env: baseEnv(), encoding: 'utf8', timeout: 120_000 });
  assert(res.status === 0, `sightline ${args.join(' ')} exited with ${res.status}: ${res.stderr}`);
  return `${res.stderr}\n${res.stdout}`;
}

async function ok(base, method, urlPath, body, want = [200, 201]) {
  const res = await http(base, method, urlPath, body);
  assert(want.includes(res.status), `${method} ${urlPath}: ${res.status} ${res.text}`);
  return res.json;
}

let page = null;

async function run() {
  const bin = await setup({ tmpPrefix: 'sightline-browser-planning-' });
  await check('planning sample --load loads products, history and stock', () => {
    const out = cli(bin, ['planning', 'sample', '--out', path.join(tmpDir, 'sample'), '--products', '24', '--months', '36',
      '--load', '--data-dir', path.join(tmpDir, 'data')]);
    assert(/products/.test(out), out);
  });

  const base = await startServer(bin);
  await signIn(base, '/api/v1/products');

  const setupData = await check('forecasts, plans, KPIs, a cycle and scenarios are made over the API', async () => {
    const products = await ok(base, 'GET', '/api/v1/products?page_size=100');
    assert(products.total === 24, `products ${products.total}`);
    const [first, second] = products.items;
    const generated = await ok(base, 'POST', `/api/v1/forecasting/generate?product_id=${first.id}&horizon=6&model_type=auto`);
    assert(generated.forecasts.length === 6, JSON.stringify(generated));
    const plans = await ok(base, 'POST', '/api/v1/demand/plans/from-forecast', { product_id: first.id, model_type: 'auto' });
    const period = plans[0].period;
    await ok(base, 'POST', '/api/v1/supply/plans', { product_id: first.id, period, planned_prod_qty: Number(plans[0].forecast_qty) * 0.8 });
    await ok(base, 'POST', '/api/v1/kpi/metrics', { metric_name: 'OTIF', metric_category: 'service', period, value: 82, target: 95, unit: '%' });
    const computed = await ok(base, 'POST', `/api/v1/kpi/compute?period=${period}`);
    assert(computed.length >= 4, JSON.stringify(computed));
    const cycle = await ok(base, 'POST', '/api/v1/sop-cycles', { cycle_name: 'Next month', period, step_2_due_date: period });
    await ok(base, 'POST', `/api/v1/sop-cycles/${cycle.id}/advance`);
    for (const [name, parameters] of [['Promotion', { demand_change_pct: 15, price_change_pct: -5 }],
      ['Capacity cut', { supply_capacity_pct: -30 }]]) {
      const s = await ok(base, 'POST', '/api/v1/scenarios', { name, parameters });
      await ok(base, 'POST', `/api/v1/scenarios/${s.id}/run`);
    }
    return { first, second, period };
  });

  const api = await check('read what the API answers', async () => ({
    summary: await ok(base, 'GET', '/api/v1/dashboard/summary'),
    alerts: await ok(base, 'GET', '/api/v1/dashboard/alerts'),
    kpis: await ok(base, 'GET', '/api/v1/kpi/dashboard'),
    kpiAlerts: await ok(base, 'GET', '/api/v1/kpi/alerts'),
    history: await ok(base, 'GET', `/api/v1/forecasting/history?product_id=${setupData.first.id}`),
    results: await ok(base, 'GET', `/api/v1/forecasting/results?product_id=${setupData.first.id}&model_type=auto`),
    health: await ok(base, 'GET', '/api/v1/inventory/health'),
    compared: await ok(base, 'POST', '/api/v1/scenarios/compare', [1, 2]),
  }));

  const launched = await launchBrowser({ viewport: { width: 1280, height: 1400 } }, { base });
  page = launched.page;

  await check('/ui/planning signs in and draws every panel', async () => {
    const res = await page.goto(`${base}/ui/planning?product_id=${setupData.first.id}&model=auto`);
    assert(res && res.status() === 200, `GET /ui/planning returned ${res && res.status()}`);
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await page.fill('#login-username', 'admin');
    await page.fill('#login-password', ADMIN_PASSWORD);
    await page.click('#login-submit');
    await page.waitForFunction(() => document.getElementById('tile-alerts')?.dataset.value !== undefined
      && document.querySelectorAll('#kpis .card.kpi').length > 0
      && document.querySelector('#chart-forecast svg')
      && document.querySelector('#chart-inventory svg')
      && document.querySelectorAll('#cycle-steps li').length === 5
      && document.querySelectorAll('#scenarios tbody tr').length === 2);
  });

  const shown = await check('read the page', () => page.evaluate(() => {
    const value = (id) => Number(document.getElementById(id).dataset.value);
    const kpis = {};
    document.querySelectorAll('#kpis .card.kpi').forEach((c) => {
      kpis[c.dataset.metric] = { value: Number(c.dataset.value), severity: c.dataset.severity };
    });
    const chart = document.getElementById('chart-forecast');
    return {
      plans: value('tile-plans'),
      inventoryValue: value('tile-inventory-value'),
      exceptions: value('tile-exceptions'),
      alerts: value('tile-alerts'),
      kpis,
      history: chart.querySelectorAll('g.point[data-series="history"]').length,
      forecast: chart.querySelectorAll('g.point[data-series="forecast"]').length,
      band: !!chart.querySelector('path.band'),
      dashed: !!chart.querySelector('path.line.forecast'),
      model: document.getElementById('forecast-model').dataset.model,
      inventoryBars: document.querySelectorAll('#chart-inventory g.bar').length,
      inventoryTotal: Number(document.getElementById('chart-inventory').dataset.total),
      steps: [...document.querySelectorAll('#cycle-steps li')].map((li) => li.dataset.status),
      current: document.querySelector('#cycle-steps li.current')?.dataset.step,
      scenarios: [...document.querySelectorAll('#scenarios tbody tr')].map((tr) => [Number(tr.dataset.id), Number(tr.dataset.revenue)]),
    };
  }));
  log(`  shown: ${JSON.stringify({ ...shown, kpis: Object.keys(shown.kpis).length })}`);

  await check('the tiles equal the dashboard summary and alerts', () => {
    const s = api.summary;
    assert(shown.plans === s.demand_plans.total && shown.plans === 6, `plans ${shown.plans}, API ${s.demand_plans.total}`);
    assert(shown.inventoryValue === s.inventory_health.total_value, `value ${shown.inventoryValue}, API ${s.inventory_health.total_value}`);
    assert(shown.exceptions === s.inventory_health.critical + s.inventory_health.low, `exceptions ${shown.exceptions}`);
    assert(shown.alerts === api.alerts.total_alerts, `alerts ${shown.alerts}, API ${api.alerts.total_alerts}`);
  });

  await check('a KPI card per metric, OTIF flagged as the alerts say', () => {
    const metrics = [].concat(api.kpis.demand_kpis, api.kpis.supply_kpis, api.kpis.inventory_kpis, api.kpis.service_kpis, api.kpis.financial_kpis);
    assert(Object.keys(shown.kpis).length === metrics.length, `cards ${Object.keys(shown.kpis).length}, API ${metrics.length}`);
    metrics.forEach((m) => assert(shown.kpis[m.metric_name].value === Number(m.value), `${m.metric_name}: ${shown.kpis[m.metric_name].value} vs ${m.value}`));
    const otif = api.kpiAlerts.find((a) => a.metric_name === 'OTIF');
    assert(otif && otif.severity === 'warning' && shown.kpis.OTIF.severity === 'warning', JSON.stringify(shown.kpis.OTIF));
  });

  await check('the chart has the history, the forecast dashed in its band, and names the model', () => {
    assert(shown.history === Math.min(36, api.history.length), `history ${shown.history}, API ${api.history.length}`);
    assert(shown.forecast === api.results.length && shown.forecast === 6, `forecast ${shown.forecast}`);
    assert(shown.band && shown.dashed, 'band and dashed forecast line');
    assert(shown.model === api.results[0].model, `model ${shown.model}, API ${api.results[0].model}`);
  });

  await check('inventory health, the cycle at step 2 and the scenarios side by side', () => {
    const h = api.health;
    assert(shown.inventoryBars === 4 && shown.inventoryTotal === h.total_products, `bars ${shown.inventoryBars}, total ${shown.inventoryTotal}`);
    assert(shown.steps[0] === 'completed' && shown.steps[1] === 'pending' && shown.current === '2', JSON.stringify(shown.steps));
    const want = api.compared.map((s) => [s.id, s.revenue_impact]).sort();
    assert(JSON.stringify(shown.scenarios.slice().sort()) === JSON.stringify(want), `${JSON.stringify(shown.scenarios)} vs ${JSON.stringify(want)}`);
    assert(api.compared.some((s) => s.revenue_impact !== 0), 'a scenario changes revenue');
  });

  await check('"Forecast 6 months" forecasts a product that has none', async () => {
    await page.selectOption('#product', String(setupData.second.id));
    await page.waitForFunction(() => /no stored/.test(document.getElementById('forecast-status').textContent));
    await page.click('#generate');
    await page.waitForFunction(() => document.querySelectorAll('#chart-forecast g.point[data-series="forecast"]').length === 6);
    const stored = await ok(base, 'GET', `/api/v1/forecasting/results?product_id=${setupData.second.id}&model_type=auto`);
    assert(stored.length === 6, `stored ${stored.length}`);
  });

  await check('screenshot of the planning dashboard', async () => {
    await page.goto(`${base}/ui/planning?product_id=${setupData.first.id}&model=auto`);
    await page.waitForFunction(() => document.querySelector('#chart-forecast path.band'));
    await screenshot('planning');
  }, { soft: true });

  await check('the home page links the planning dashboard', async () => {
    await page.goto(`${base}/`);
    await page.locator('a[href="/ui/planning"]').first().waitFor();
  }, { soft: true });

  await checkCleanPage(launched);
}

await main(run);

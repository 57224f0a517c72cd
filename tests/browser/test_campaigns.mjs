// Browser test of the console's Campaigns pages (web/campaigns.js, issue 11)
// against a real ferryd in headless Chromium (playwright-core).
//
// Set-up: a fresh database, `ferryd serve` with 4 workers, kubesim with one
// cluster whose GET /version it holds 1.5 s (so a connection-only preflight
// takes that long, as against a slow API server), a tenant with an operator
// and a viewer token, six clusters on it labelled env=prod, and a campaign of
// connection-only preflights with a canary and a manual approval gate. In the browser: the campaign view follows the
// campaign live over its SSE stream (no reload) until the gate, the Approve
// button (confirmed first) lets the rest run, rows turn running and then
// succeeded with links to their jobs, the wave bars fill; the "new campaign"
// form previews the selector's clusters, shows the server's 400 for a bad
// percentage, starts a campaign that the Cancel button stops; a viewer sees
// no buttons and no form.
//
// Output: PASS:/FAIL:/SKIP: lines (tests/run); exit 1 on any failure.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { assert, check, fail, failureCount, freePort, pass, skip, sleep, waitFor } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.FERRY_SRC || path.resolve(here, '../..');
const BUILD = process.env.FERRY_BUILD || path.join(SRC, 'build');
const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';

const cleanups = [];
async function must(base, method, p, token, body, expect, headers) {
  const h = Object.assign({ Accept: 'application/json' }, headers || {});
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(base + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`${method} ${p} → ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

// kubesim (tests/kubesim) in dir: resolves to its kubesim.json once it is up.
async function startKubesim(dir) {
  const bin = path.join(BUILD, 'tests', 'kubesim', 'kubesim');
  if (!fs.existsSync(bin)) throw new Error('kubesim is not built');
  const child = spawn(bin, ['--dir', dir, '--quiet', '--exit-with-parent', '--cluster', 'prod=tke-fresh'],
    { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGTERM'));
  const info = path.join(dir, 'kubesim.json');
  await waitFor('kubesim', async () => fs.existsSync(info), 20000, 50);
  return JSON.parse(fs.readFileSync(info, 'utf8'));
}

// One call of kubesim's admin API (/_sim/...), over HTTPS with its CA.
function kubesimAdmin(info, method, p, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? null : JSON.stringify(body);
    const req = https.request({ host: '127.0.0.1', port: info.port, path: p, method, ca: fs.readFileSync(info.ca),
      headers: { Authorization: `Bearer ${info.admin_token}`, 'Content-Type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`${p}: ${res.statusCode} ${text}`))));
    });
    req.on('error', reject);
    if (data) req.write(data);
    req.end();
  });
}

async function setup() {
  const ferryd = path.join(BUILD, 'ferryd');
  const admin = process.env.FERRY_TEST_PG_ADMIN_URL;
  if (!fs.existsSync(ferryd) || !admin) return null;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-campaigns-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const dbname = `ferry_campaigns_${process.pid}`;
  const mk = spawnSync('psql', [admin, '-q', '-c', `CREATE DATABASE ${dbname}`], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`CREATE DATABASE: ${mk.stderr}`);
  cleanups.push(() => spawnSync('psql', [admin, '-q', '-c', `DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`]));
  const dbUrl = new URL(admin);
  dbUrl.pathname = `/${dbname}`;
  const port = await freePort();
  const env = Object.assign({}, process.env, {
    FERRY_DATABASE_URL: dbUrl.toString(), FERRY_LISTEN: `127.0.0.1:${port}`,
    FERRY_MASTER_KEY: `k1:${crypto.randomBytes(32).toString('hex')}`, FERRY_WEB_ROOT: path.join(SRC, 'web'),
    FERRY_DATA_DIR: path.join(tmp, 'data'), FERRY_WORKERS: '4', FERRY_LOG_LEVEL: 'info',
  });
  const tc = spawnSync(ferryd, ['token', 'create', '--platform', '--name', 'bootstrap'], { env, encoding: 'utf8', timeout: 60000 });
  const m = /fy_[A-Za-z0-9_-]{20,}/.exec(`${tc.stdout}\n${tc.stderr}`);
  if (tc.status !== 0 || !m) throw new Error(`token create: ${tc.stderr}`);
  const log = path.join(tmp, 'ferryd.log');
  const out = fs.openSync(log, 'a');
  const child = spawn(ferryd, ['serve'], { env, cwd: SRC, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, sig) => { exited = { code, sig }; });
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 200 && !exited; i++) await sleep(50);
    if (!exited) child.kill('SIGKILL');
  };
  cleanups.push(stop);
  const base = `http://127.0.0.1:${port}`;
  await waitFor('ferryd', async () => {
    if (exited) throw new Error(`ferryd exited: ${fs.readFileSync(log, 'utf8').slice(-800)}`);
    const r = await fetch(`${base}/healthz`).catch(() => null);
    return r && r.status === 200;
  }, 30000, 150);
  const tenant = await must(base, 'POST', '/v1/tenants', m[0], { name: 'fleet' }, 201);
  const op = await must(base, 'POST', '/v1/tokens', m[0], { name: 'ops-alice', role: 'operator', tenant_id: tenant.id }, 201);
  const viewer = await must(base, 'POST', '/v1/tokens', m[0], { name: 'viewer', role: 'viewer', tenant_id: tenant.id }, 201);
  const ks = await startKubesim(path.join(tmp, 'kubesim'));
  const kubeconfig = fs.readFileSync(ks.clusters.find((c) => c.name === 'prod').kubeconfig, 'utf8');
  await kubesimAdmin(ks, 'PUT', '/_sim/clusters/prod/faults', { latency_ms: 1500, path_contains: '/version' });
  for (let i = 1; i <= 6; i++) {
    await must(base, 'POST', '/v1/clusters', op.token, { name: `prod-${i}`, profile: 'tke', labels: { env: 'prod' },
      kubeconfig }, 201);
  }
  return { base, op: op.token, viewer: viewer.token, log, stop, exited: () => exited };
}

async function signIn(page, base, token) {
  await page.goto(`${base}/`);
  // Let the console finish starting (it may be signing in with the token it
  // kept): clearing the storage while it does races with its own write of
  // that token. Then start afresh without one.
  await page.waitForFunction(() => ['whoami', 'token-input'].some((id) => {
    const e = document.getElementById(id);
    return e && e.offsetParent !== null;
  }), null, { timeout: 15000 });
  await page.evaluate(() => sessionStorage.clear());
  await page.goto(`${base}/#/campaigns`);
  await page.reload();
  await page.locator('#token-input').waitFor({ state: 'visible' });
  await page.fill('#token-input', token);
  await page.click('#login-submit');
  await page.locator('#whoami').waitFor({ state: 'visible' });
}

async function main() {
  let pw;
  try { pw = await import('playwright-core'); } catch (e) { fail('playwright', 'playwright-core not installed'); return; }
  if (!fs.existsSync(CHROMIUM)) { fail('chromium', `${CHROMIUM} not found`); return; }
  const fx = await setup();
  if (!fx) { console.log('SKIP: campaigns_console: needs a built ferryd and FERRY_TEST_PG_ADMIN_URL'); return; }
  pass('campaigns_setup');

  const gate = await must(fx.base, 'POST', '/v1/campaigns', fx.op, { name: 'prod gate', selector: 'env=prod', kind: 'preflight',
    params: { connection_only: true }, strategy: { canary: 1, max_in_flight: 2, pause_between_waves: 'manual' } }, 201);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-chromium-'));
  cleanups.push(() => fs.rmSync(profile, { recursive: true, force: true }));
  const ctx = await pw.chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
  cleanups.push(() => ctx.close());
  ctx.setDefaultTimeout(15000);
  const page = ctx.pages()[0] || await ctx.newPage();
  const pageErrors = [];
  const dialogs = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('dialog', (d) => { dialogs.push(d.message()); d.accept().catch(() => {}); });
  const urls = [];
  page.on('request', (r) => urls.push(r.url()));

  await signIn(page, fx.base, fx.op);

  await check('campaigns_list', async () => {
    const row = page.locator(`#campaign-list tr[data-id="${gate.id}"]`);
    await row.waitFor();
    const t = await row.innerText();
    assert(t.includes('prod gate') && t.includes('env=prod') && t.includes('/6'), `row: ${t}`);
    assert(await page.locator('#campaign-form').isVisible(), 'operator sees the new campaign form');
  });

  await check('campaign_view_live_until_gate', async () => {
    await page.click(`#campaign-list tr[data-id="${gate.id}"] a`);
    await page.locator('#campaign-title').waitFor();
    await page.evaluate(() => { window.__noReload = 1; });
    await waitFor('stream', async () => (await page.locator('#view').getAttribute('data-live')) === 'stream');
    await waitFor('approval gate shown live', async () =>
      (await page.locator('#campaign-reason').innerText()).includes('approval needed for wave 1'), 30000);
    assert(await page.evaluate(() => window.__noReload === 1), 'the page reloaded');
    const canary = page.locator('tr.member[data-state="succeeded"]');
    assert(await canary.count() === 1, 'the canary row is green');
    const waitingReason = await page.locator('tr.member[data-state="waiting"] td.reason').first().innerText();
    assert(waitingReason.includes('approval needed for wave 1'), `waiting reason: ${waitingReason}`);
    const seg = page.locator('#campaign-waves .wave').first().locator('.seg.state-succeeded');
    const w = await seg.evaluate((n) => n.style.width);
    assert(w === '100%', `canary bar full: ${w}`);
    assert(await page.locator('#campaign-resume').count() === 0, 'no resume at an approval gate');
  });

  await check('approve_confirms_then_runs_live', async () => {
    dialogs.length = 0;
    await page.click('#campaign-approve');
    await waitFor('a row running', async () => (await page.locator('tr.member-running').count()) > 0, 20000, 50);
    assert(dialogs.length === 1 && /Approve campaign "prod gate"/.test(dialogs[0]), `confirm: ${dialogs}`);
    const running = await page.locator('tr.member-running').count();
    assert(running <= 2, `max in flight 2 on screen: ${running}`);
    const href = await page.locator('tr.member-running a[href^="#/jobs/"]').first().getAttribute('href');
    assert(/^#\/jobs\/[0-9a-f-]{36}$/.test(href), `job link ${href}`);
    await waitFor('campaign succeeded', async () => (await page.locator('#view').getAttribute('data-state')) === 'succeeded', 60000);
    assert(await page.locator('tr.member[data-state="succeeded"]').count() === 6, 'six green rows');
    assert(await page.evaluate(() => window.__noReload === 1), 'the page reloaded');
    assert(await page.locator('#campaign-cancel').count() === 0, 'no buttons once finished');
    await page.screenshot({ path: process.env.FERRY_CAMPAIGNS_SCREENSHOT || '/tmp/ferry-campaigns.png', fullPage: true });
  });

  await check('new_campaign_form_preview_error_create_cancel', async () => {
    await page.goto(`${fx.base}/#/campaigns`);
    await page.locator('#campaign-form').waitFor();
    await page.fill('#cf-name', 'from the console');
    await page.fill('#cf-selector', 'env=prod');
    await page.selectOption('#cf-kind', 'preflight');
    await page.click('#cf-preview-btn');
    await waitFor('preview', async () => (await page.locator('#cf-preview').innerText()).includes('6 clusters match'));
    assert((await page.locator('#cf-preview li').count()) === 6, 'six names');
    await page.fill('#cf-max-in-flight', '150%');
    await page.click('#cf-submit');
    await page.locator('#error').waitFor({ state: 'visible' });
    const err = await page.locator('#error').innerText();
    assert(/400/.test(err) && /percentage/i.test(err), `error box: ${err}`);
    await page.fill('#cf-max-in-flight', '1');
    await page.fill('#cf-pause', 'manual');
    await page.click('#cf-submit');
    await waitFor('campaign page', async () => /#\/campaigns\/[0-9a-f-]{36}$/.test(page.url()));
    await page.locator('#campaign-cancel').waitFor();
    dialogs.length = 0;
    await page.click('#campaign-cancel');
    await waitFor('cancelled', async () => (await page.locator('#view').getAttribute('data-state')) === 'cancelled');
    assert(dialogs.length === 1 && /Cancel campaign "from the console"/.test(dialogs[0]), `confirm: ${dialogs}`);
  });

  await check('viewer_reads_only', async () => {
    await signIn(page, fx.base, fx.viewer);
    await page.locator(`#campaign-list tr[data-id="${gate.id}"]`).waitFor();
    assert(await page.locator('#campaign-form').count() === 0, 'viewer sees no form');
    await page.click(`#campaign-list tr[data-id="${gate.id}"] a`);
    await page.locator('#campaign-title').waitFor();
    assert(await page.locator('#campaign-actions button').count() === 0, 'viewer sees no buttons');
  });

  await check('token_never_in_url_and_no_page_errors', async () => {
    assert(!urls.some((u) => u.includes(fx.op) || u.includes(fx.viewer)), 'token in a URL');
    assert(pageErrors.length === 0, `page errors: ${pageErrors.join(' ; ')}`);
  });

  await check('ferryd_clean_shutdown', async () => {
    await ctx.close();
    await fx.stop();
    const text = fs.readFileSync(fx.log, 'utf8');
    assert(!/(ERROR: (Address|Leak)Sanitizer|runtime error:)/.test(text), 'sanitizer report in the ferryd log');
    const ex = fx.exited();
    assert(ex && ex.code === 0, `ferryd exited ${JSON.stringify(ex)}`);
  });
}

try {
  await main();
} catch (e) {
  fail('campaigns_console', e && e.stack ? e.stack : e);
} finally {
  for (const f of cleanups.reverse()) {
    try { await f(); } catch (e) { /* ignore */ }
  }
}
process.exit(failureCount() ? 1 : 0);

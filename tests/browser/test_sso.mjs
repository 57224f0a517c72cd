// Browser test of single sign-on (issue 15): headless Chromium signs in to
// the ferry console through a real OpenID provider and starts a job.
//
// What it does: a fresh database, `ferryd serve` (no workers: jobs stay
// queued) configured with the provider of oidc_provider.mjs (npm
// oidc-provider) as issuer and a group -> tenant/role map; a tenant "acme"
// with a cluster. In Chromium (playwright-core, /usr/bin/chromium): the
// console offers "Sign in with single sign-on", the provider's login and
// consent pages are filled in, the console comes back signed in as
// operator of acme, starts a preflight job from the cluster page (the
// request carries the CSRF token; the audit row names the person), a
// write without the CSRF header is refused, logout ends the session, and a
// viewer (another group) gets the read-only console. Screenshot:
// /tmp/ferry-sso.png.
//
// Output: PASS:/FAIL:/SKIP: lines (tests/run); exit status 1 on failure.

import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { assert, check, fail, failureCount, freePort, pass, skip, sleep, waitFor } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const SRC = process.env.FERRY_SRC || path.resolve(here, '../..');
const BUILD = process.env.FERRY_BUILD || path.join(SRC, 'build');
const CHROMIUM = process.env.FERRY_CHROMIUM || '/usr/bin/chromium';
const SCREENSHOT = process.env.FERRY_SSO_SCREENSHOT || '/tmp/ferry-sso.png';
const NAMES = ['sso_console_offers_sign_in', 'sso_sign_in_through_provider', 'sso_cookie_flags',
  'sso_start_job_from_console', 'sso_csrf_refused', 'sso_logout_ends_session', 'sso_viewer_read_only'];

const cleanups = [];

async function must(base, method, p, token, body, expect) {
  const h = { Accept: 'application/json' };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined) h['Content-Type'] = 'application/json';
  const res = await fetch(base + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== expect) throw new Error(`${method} ${p} → ${res.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}

function startProcess(cmd, args, env, logFile, cwd, stdin = 'ignore') {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, { env, cwd, stdio: [stdin, out, out] });
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, sig) => { exited = { code, sig }; });
  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 100 && !exited; i++) await sleep(50);
    if (!exited) child.kill('SIGKILL');
  };
  return { child, stop, exited: () => exited };
}

const tail = (f) => { try { return fs.readFileSync(f, 'utf8').trim().split('\n').slice(-15).join(' | '); } catch (e) { return ''; } };

async function setup() {
  const ferryd = path.join(BUILD, 'ferryd');
  if (!fs.existsSync(ferryd)) return { skip: `ferryd not built (${ferryd})` };
  const admin = process.env.FERRY_TEST_PG_ADMIN_URL;
  if (!admin) return { skip: 'FERRY_TEST_PG_ADMIN_URL not set (run through tests/run)' };
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sso-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const dbname = `ferry_sso_${process.pid}_${Date.now() % 100000}`;
  const mk = spawnSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${dbname}`], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`CREATE DATABASE failed: ${mk.stderr}`);
  cleanups.push(() => spawnSync('psql', [admin, '-q', '-c', `DROP DATABASE IF EXISTS ${dbname} WITH (FORCE)`]));
  const dbUrl = new URL(admin);
  dbUrl.pathname = `/${dbname}`;
  const sql = (q) => {
    const r = spawnSync('psql', ['-X', '-A', '-t', '-q', dbUrl.toString(), '-c', q], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`psql: ${r.stderr}`);
    return r.stdout.trim();
  };

  // The OpenID provider.
  const port = await freePort();
  const idpPort = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const idpCfg = path.join(tmp, 'idp.json');
  fs.mkdirSync(path.join(tmp, 'keys'));
  fs.writeFileSync(idpCfg, JSON.stringify({
    port: idpPort, client_id: 'ferry-console', client_secret: 'sso-browser-secret',
    redirect_uri: `${base}/v1/auth/callback`, keys_dir: path.join(tmp, 'keys'), kids: ['k1'],
    users: { alice: { groups: ['acme-ops'], name: 'Alice Ops' }, bob: { groups: ['acme-viewers'], name: 'Bob' } },
  }));
  const idpLog = path.join(tmp, 'idp.log');
  const idp = startProcess('node', [path.join(here, 'oidc_provider.mjs'), idpCfg], process.env, idpLog, here, 'pipe');
  cleanups.push(idp.stop);
  await waitFor('the OpenID provider', async () => {
    if (idp.exited()) throw new Error(`provider exited: ${tail(idpLog)}`);
    return fs.readFileSync(idpLog, 'utf8').includes('ready ');
  }, 30000);

  const env = Object.assign({}, process.env, {
    FERRY_DATABASE_URL: dbUrl.toString(),
    FERRY_LISTEN: `127.0.0.1:${port}`,
    FERRY_MASTER_KEY: `k1:${crypto.randomBytes(32).toString('hex')}`,
    FERRY_WEB_ROOT: path.join(SRC, 'web'),
    FERRY_DATA_DIR: path.join(tmp, 'data'),
    FERRY_WORKERS: '0',
    FERRY_LOG_LEVEL: 'info',
    FERRY_OIDC_ISSUER: `http://127.0.0.1:${idpPort}`,
    FERRY_OIDC_CLIENT_ID: 'ferry-console',
    FERRY_OIDC_CLIENT_SECRET: 'sso-browser-secret',
    FERRY_OIDC_REDIRECT_URL: `${base}/v1/auth/callback`,
    FERRY_OIDC_ROLE_MAP: 'acme-ops=acme:operator,acme-viewers=acme:viewer',
  });
  const mig = spawnSync(ferryd, ['migrate'], { env, encoding: 'utf8', timeout: 60000 });
  if (mig.status !== 0) throw new Error(`ferryd migrate failed: ${mig.stderr}`);
  const tc = spawnSync(ferryd, ['token', 'create', '--tenant', 'acme', '--role', 'admin', '--name', 'sso-test'], { env, encoding: 'utf8', timeout: 60000 });
  const m = /fy_[A-Za-z0-9_-]{20,}/.exec(`${tc.stdout}\n${tc.stderr}`);
  if (tc.status !== 0 || !m) throw new Error(`ferryd token create failed: ${tc.stderr}`);
  const log = path.join(tmp, 'ferryd.log');
  const srv = startProcess(ferryd, ['serve'], env, log, SRC);
  cleanups.push(srv.stop);
  await waitFor('ferryd /healthz', async () => {
    if (srv.exited()) throw new Error(`ferryd exited: ${tail(log)}`);
    const r = await fetch(`${base}/healthz`).catch(() => null);
    return r && r.status === 200;
  }, 30000, 150);
  const cluster = await must(base, 'POST', '/v1/clusters', m[0], { name: 'sso-gz-1', profile: 'tke',
    api_server: 'https://127.0.0.1:9', token: 'not-a-real-token' }, 201);
  return { base, token: m[0], cluster, sql, log, srv };
}

async function signIn(page, base, user) {
  await page.goto(`${base}/`);
  await page.waitForSelector('#sso-login', { state: 'visible' });
  await page.click('#sso-login');
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
  await page.waitForSelector('button:has-text("Continue")');
  await page.click('button:has-text("Continue")');
  await page.waitForURL((u) => u.toString().startsWith(`${base}/`));
  await page.waitForSelector('#whoami', { state: 'visible' });
}

async function main() {
  let pw;
  try { pw = await import('playwright-core'); } catch (e) { fail('playwright', `playwright-core is not installed: npm install in ${here}`); return; }
  if (!fs.existsSync(CHROMIUM)) { fail('chromium', `${CHROMIUM} not found`); return; }
  try { await import('oidc-provider'); } catch (e) { fail('oidc_provider', `npm package oidc-provider missing: npm install in ${here}`); return; }
  const s = await setup();
  if (s.skip) { for (const n of NAMES) console.log(`SKIP: ${n}: ${s.skip}`); return; }

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-sso-profile-'));
  cleanups.push(() => fs.rmSync(profile, { recursive: true, force: true }));
  const ctx = await pw.chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  cleanups.push(() => ctx.close());
  ctx.setDefaultTimeout(15000);
  const page = ctx.pages()[0] || await ctx.newPage();
  const bad = [];
  page.on('response', (r) => { if (r.status() >= 400) bad.push(`${r.request().method()} ${r.url()} ${r.status()}`); });

  await check('sso_console_offers_sign_in', async () => {
    await page.goto(`${s.base}/`);
    await page.waitForSelector('#sso-login', { state: 'visible' });
    const href = await page.getAttribute('#sso-login', 'href');
    assert(href.startsWith('/v1/auth/login?return_to='), `href ${href}`);
    assert(await page.isVisible('#token-input'), 'the API token form is still there');
  });

  const signedIn = await check('sso_sign_in_through_provider', async () => {
    await signIn(page, s.base, 'alice');
    const who = await page.textContent('#me-text');
    assert(who.includes('operator') && who.includes('acme'), `whoami "${who}"`);
    const title = await page.getAttribute('#me-text', 'title');
    assert(title === 'signed in as oidc:alice', `title "${title}"`);
    assert(!(await page.evaluate(() => sessionStorage.getItem('ferry.token'))), 'a token in sessionStorage');
    return who.trim();
  });

  await check('sso_cookie_flags', async () => {
    assert(signedIn, 'not signed in');
    const c = (await ctx.cookies(s.base)).find((x) => x.name === 'ferry_session');
    assert(c, 'no ferry_session cookie');
    assert(c.httpOnly, 'not HttpOnly');
    assert(c.sameSite === 'Lax', `SameSite ${c.sameSite}`);
    assert(await page.evaluate(() => !document.cookie.includes('ferry_session')), 'script can read the cookie');
  });

  await check('sso_start_job_from_console', async () => {
    assert(signedIn, 'not signed in');
    await page.goto(`${s.base}/#/clusters/${s.cluster.id}`);
    await page.waitForSelector('#job-form');
    await page.selectOption('#job-kind', 'preflight');
    await page.click('#job-submit');
    await page.waitForFunction(() => /^#\/jobs\/[0-9a-f-]{36}$/.test(location.hash)).catch(async (e) => {
      const err = await page.textContent('#error').catch(() => '');
      const dbg = await page.evaluate(async (id) => [await (await fetch('/v1/me')).text(),
        await (await fetch(`/v1/clusters/${id}`)).text()], s.cluster.id);
      throw new Error(`no job page (${page.url()}): ${err || e.message} ${bad.join(', ')}`);
    });
    const jobId = page.url().split('/').pop();
    const job = await must(s.base, 'GET', `/v1/jobs/${jobId}`, s.token, undefined, 200);
    assert(job.kind === 'preflight' && job.cluster_id === s.cluster.id, JSON.stringify(job).slice(0, 200));
    await page.waitForSelector('#job-summary');
    const actor = s.sql(`SELECT actor FROM audit_log WHERE method = 'POST' AND path LIKE '%/jobs' AND status = 202 ORDER BY id DESC LIMIT 1`);
    assert(actor === 'oidc:alice', `audit actor "${actor}"`);
    return `job ${jobId}`;
  });

  await check('sso_csrf_refused', async () => {
    assert(signedIn, 'not signed in');
    const r = await page.evaluate(async (id) => {
      const res = await fetch(`/v1/clusters/${id}/jobs`, { method: 'POST',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ kind: 'preflight' }) });
      return { status: res.status, body: await res.text() };
    }, s.cluster.id);
    assert(r.status === 403 && r.body.includes('CSRF'), `${r.status} ${r.body.slice(0, 200)}`);
  });

  await page.screenshot({ path: SCREENSHOT, fullPage: true }).catch(() => {});

  await check('sso_logout_ends_session', async () => {
    assert(signedIn, 'not signed in');
    assert(s.sql("SELECT count(*) FROM auth_sessions WHERE subject = 'alice'") === '1', 'no session row');
    await page.click('#logout');
    await page.waitForSelector('#login', { state: 'visible' });
    await waitFor('the session row to go', async () => s.sql("SELECT count(*) FROM auth_sessions WHERE subject = 'alice'") === '0', 5000);
    const st = await page.evaluate(async () => (await fetch('/v1/me')).status);
    assert(st === 401, `/v1/me after logout: ${st}`);
    await page.reload();
    await page.waitForSelector('#sso-login', { state: 'visible' });
    assert(!(await page.isVisible('#whoami')), 'still signed in after reload');
  });

  await check('sso_viewer_read_only', async () => {
    /* The provider still knows alice (its own session): a new person
     * signs in from a browser without the provider's cookies. */
    await ctx.clearCookies();
    await signIn(page, s.base, 'bob');
    const who = await page.textContent('#me-text');
    assert(who.includes('viewer'), `whoami "${who}"`);
    await page.goto(`${s.base}/#/clusters/${s.cluster.id}`);
    await page.waitForSelector('text=Your role is read-only');
    assert(!(await page.isVisible('#job-form')), 'job form shown to a viewer');
  });

  if (s.srv.exited()) fail('ferryd_alive', `ferryd exited: ${tail(s.log)}`);
  const logText = fs.readFileSync(s.log, 'utf8');
  for (const bad of ['AddressSanitizer', 'runtime error:', 'LeakSanitizer']) {
    if (logText.includes(bad)) fail('ferryd_sanitizers', `${bad} in ferryd's log`);
  }
}

main().catch((e) => fail('sso_browser', e && e.stack ? e.stack : e)).finally(async () => {
  for (const f of cleanups.reverse()) { try { await f(); } catch (e) { /* ignore */ } }
  process.exit(failureCount() ? 1 : 0);
});

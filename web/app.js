/*
 * ferry console: a small single-page app over the ferry REST API (/v1).
 *
 * The idea: no framework and no build step. People sign in with single
 * sign-on when the server has an OpenID provider (GET /v1/auth/session says
 * so): the server keeps the session in an HttpOnly cookie and the page sends
 * the session's CSRF token in X-CSRF-Token on every write. Otherwise (or in
 * addition) an API token can be pasted; it is kept in sessionStorage and sent
 * as "Authorization: Bearer". One view at a time is rendered into #view,
 * chosen by the URL fragment:
 *
 *   #/clusters[?selector=…]   cluster list with a label selector
 *   #/clusters/<id>           one cluster, its jobs, and the "start a job" form
 *   #/jobs[?state=…]          job list
 *   #/jobs/<id>               one job: phases, error, verify table, dry-run
 *                             diff and log; live while the job is active
 *
 * Safety: every piece of server data reaches the page through textContent or
 * attribute setters (see el()); innerHTML is never used, so a label such as
 * "<script>…" is shown as text and never runs.
 *
 * Live updates: a job that is queued or running is followed with the SSE
 * stream GET /v1/jobs/<id>/events/stream, read with fetch() so the token
 * stays in the Authorization header (never in a URL). If the stream cannot
 * be opened or breaks off, the view falls back to polling GET /v1/jobs/<id>
 * and GET /v1/jobs/<id>/events?after=… every second. Leaving the view stops
 * both (see the "view generation" counter).
 */
'use strict';

(function () {
  const TOKEN_KEY = 'ferry.token';
  const TERMINAL = new Set(['succeeded', 'failed', 'cancelled']);
  const POLL_MS = 1000;
  const PAGE = 50;

  const state = {
    me: null,
    auth: null,      /* GET /v1/auth/session: {sso: {enabled, login_url}, session} */
    gen: 0,          /* bumped on every navigation; async work checks it */
    cleanup: [],     /* functions that stop the current view's timers/streams */
  };

  /* ------------------------------------------------------------------ DOM */

  /* el('tag', {class, text, href, …}, child…): builds an element. Strings and
   * numbers among the children become text nodes; null/false are skipped. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'text') node.textContent = String(v);
        else if (k === 'class') node.className = v;
        else if (k === 'dataset') Object.assign(node.dataset, v);
        else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
        else if (k === 'checked' || k === 'disabled' || k === 'value' || k === 'hidden') node[k] = v;
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  const $ = (id) => document.getElementById(id);

  /* ----------------------------------------------------------- formatting */

  function fmtTime(iso) {
    if (!iso) return '—';
    const d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function timeEl(iso) {
    return el('time', { datetime: iso || null, title: iso || null, text: fmtTime(iso) });
  }

  function fmtDuration(ms) {
    if (ms === null || ms === undefined || isNaN(ms)) return '—';
    ms = Math.max(0, Math.round(ms));
    if (ms < 1000) return `${ms} ms`;
    const s = ms / 1000;
    if (s < 60) return `${s.toFixed(1)} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  function phaseDuration(ph) {
    if (ph.duration_ms !== null && ph.duration_ms !== undefined) return ph.duration_ms;
    if (ph.started_at && ph.finished_at) return Date.parse(ph.finished_at) - Date.parse(ph.started_at);
    if (ph.started_at && ph.state === 'running') return Date.now() - Date.parse(ph.started_at);
    return null;
  }

  function jobDuration(job) {
    if (!job.started_at) return null;
    const end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    return end - Date.parse(job.started_at);
  }

  /* A duration; when `since` is set it is still growing and tickDurations()
   * advances it every second while the job view is live. */
  function durationCell(tag, ms, since) {
    return el(tag, { class: since ? 'duration ticking' : 'duration', dataset: since ? { since } : null,
      text: fmtDuration(ms) });
  }

  function tickDurations(root) {
    for (const n of root.querySelectorAll('.ticking[data-since]')) {
      n.textContent = fmtDuration(Date.now() - Date.parse(n.dataset.since));
    }
  }

  function badge(s) {
    const v = s || 'unknown';
    return el('span', { class: `badge state-${v.replace(/[^a-z-]/g, '')}`, text: v });
  }

  function dash(v) {
    return v === null || v === undefined || v === '' ? '—' : String(v);
  }

  function labelChips(labels) {
    const wrap = el('span', { class: 'labels' });
    const entries = Object.entries(labels || {});
    if (!entries.length) return append(wrap, ['—']);
    for (const [k, v] of entries) wrap.appendChild(el('span', { class: 'label', text: `${k}=${v}` }));
    return wrap;
  }

  function table(headers, rows, emptyText) {
    const t = el('table', null,
      el('thead', null, el('tr', null, headers.map((h) => el('th', { text: h })))));
    const tb = el('tbody');
    if (!rows.length) {
      tb.appendChild(el('tr', { class: 'empty' }, el('td', { colspan: headers.length, text: emptyText || 'Nothing here.' })));
    }
    for (const r of rows) tb.appendChild(r);
    t.appendChild(tb);
    return el('div', { class: 'table-wrap' }, t);
  }

  /* ----------------------------------------------------------------- API */

  class ApiError extends Error {
    constructor(status, problem) {
      super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
      this.status = status;
      this.problem = problem || {};
    }
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY); }
  /* The single sign-on session ({csrf_token, subject, ...}) or null. */
  function ssoSession() { return state.auth && state.auth.session; }
  function signedIn() { return !!(token() || ssoSession()); }

  /* Who we are to the server: the pasted token, else the session cookie
   * (sent by the browser) with its CSRF token on writes. */
  function authHeaders(method) {
    const t = token();
    if (t) return { Authorization: `Bearer ${t}` };
    const s = ssoSession();
    if (s && method !== 'GET' && method !== 'HEAD') return { 'X-CSRF-Token': s.csrf_token };
    return {};
  }

  async function api(method, path, body, extraHeaders) {
    const headers = { Accept: 'application/json' };
    Object.assign(headers, authHeaders(method));
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    Object.assign(headers, extraHeaders || {});
    let res;
    try {
      res = await fetch(path, {
        method, headers, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, { title: 'Network error', detail: `Could not reach the ferry server (${e.message}).` });
    }
    const text = await res.text();
    let data = null;
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!res.ok) {
      const problem = data && typeof data === 'object' ? data
        : { title: `${res.status} ${res.statusText}`, detail: text.slice(0, 500) };
      if (!problem.status) problem.status = res.status;
      throw new ApiError(res.status, problem);
    }
    return { status: res.status, data, headers: res.headers };
  }

  function qs(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, v);
    const s = u.toString();
    return s ? `?${s}` : '';
  }

  /* ------------------------------------------------------------- errors */

  function showError(err) {
    const p = err instanceof ApiError ? err.problem : { title: 'Error', detail: String(err && err.message || err) };
    const box = $('error');
    let title = p.title || (p.status ? `HTTP ${p.status}` : 'Error');
    if (p.status && !String(title).includes(String(p.status))) title += ` (${p.status})`;
    $('error-title').textContent = title;
    $('error-detail').textContent = p.detail || '';
    const list = clear($('error-list'));
    if (Array.isArray(p.errors)) {
      for (const e of p.errors) {
        let line;
        if (e && typeof e === 'object') {
          const where = e.field || e.name || e.pointer || e.path || '';
          const what = e.detail || e.message || e.reason || JSON.stringify(e);
          line = where ? `${where}: ${what}` : what;
        } else {
          line = String(e);
        }
        list.appendChild(el('li', { text: line }));
      }
    }
    box.hidden = false;
    if (err instanceof ApiError && err.status === 401 && signedIn()) {
      /* The token was revoked or is wrong, or the session ended: back to
       * the sign-in form. */
      logout(true);
    }
  }

  function hideError() { $('error').hidden = true; }

  /* -------------------------------------------------------- session/login */

  function renderWhoami() {
    const me = state.me;
    const tenant = me.tenant_name ? `tenant ${me.tenant_name}` : 'platform-wide';
    $('me-text').textContent = `${me.role} · ${tenant}`;
    $('me-text').title = me.subject ? `signed in as ${me.subject}` : `token ${me.token_id || ''}`;
    $('whoami').hidden = false;
    $('nav').hidden = false;
  }

  function canWrite() { return state.me && (state.me.role === 'operator' || state.me.role === 'admin'); }

  function showLogin() {
    stopView();
    state.me = null;
    $('whoami').hidden = true;
    $('nav').hidden = true;
    clear($('view'));
    $('login').hidden = false;
    const sso = state.auth && state.auth.sso;
    $('sso').hidden = !(sso && sso.enabled);
    if (sso && sso.enabled) {
      const back = `/${location.hash || ''}`;
      $('sso-login').href = `${sso.login_url}?return_to=${encodeURIComponent(back)}`;
      $('sso-login').focus();
    } else {
      $('token-input').focus();
    }
  }

  async function logout(keepError) {
    sessionStorage.removeItem(TOKEN_KEY);
    const s = ssoSession();
    if (s) {
      state.auth.session = null;
      try {
        await fetch('/v1/auth/logout', { method: 'POST', cache: 'no-store',
          headers: { Accept: 'application/json', 'X-CSRF-Token': s.csrf_token } });
      } catch (e) { /* the cookie is gone with the session either way */ }
    }
    if (!keepError) hideError();
    showLogin();
  }

  /* Whether single sign-on is on and whether this browser has a session. */
  async function loadAuth() {
    try {
      const r = await fetch('/v1/auth/session', { headers: { Accept: 'application/json' }, cache: 'no-store' });
      state.auth = r.ok ? await r.json() : null;
    } catch (e) {
      state.auth = null;
    }
  }

  async function signIn(t) {
    if (t) sessionStorage.setItem(TOKEN_KEY, t);
    try {
      const r = await api('GET', '/v1/me');
      state.me = r.data;
    } catch (e) {
      sessionStorage.removeItem(TOKEN_KEY);
      showError(e);
      showLogin();
      return false;
    }
    $('login').hidden = true;
    renderWhoami();
    return true;
  }

  /* ------------------------------------------------------------ routing */

  function stopView() {
    state.gen++;
    for (const f of state.cleanup.splice(0)) {
      try { f(); } catch (e) { /* ignore */ }
    }
  }

  function parseHash() {
    const h = location.hash.replace(/^#/, '') || '/clusters';
    const [path, query] = h.split('?');
    const dec = (x) => { try { return decodeURIComponent(x); } catch (e) { return x; } };
    return { parts: path.split('/').filter(Boolean).map(dec), query: new URLSearchParams(query || '') };
  }

  async function route() {
    if (!signedIn()) { showLogin(); return; }
    if (!state.me) {
      if (!(await signIn(token()))) return;
    }
    stopView();
    const gen = state.gen;
    const { parts, query } = parseHash();
    for (const a of document.querySelectorAll('[data-nav]')) {
      a.classList.toggle('active', a.dataset.nav === parts[0]);
    }
    const view = clear($('view'));
    delete view.dataset.live;
    try {
      if (parts[0] === 'clusters' && parts[1]) await viewCluster(view, gen, parts[1]);
      else if (parts[0] === 'jobs' && parts[1]) await viewJob(view, gen, parts[1]);
      else if (parts[0] === 'jobs') await viewJobs(view, gen, query);
      else if (views[parts[0]]) await views[parts[0]](view, gen, parts, query);
      else await viewClusters(view, gen, query);
    } catch (e) {
      if (gen === state.gen) showError(e);
    }
  }

  function go(hash) {
    if (location.hash === hash) route();
    else location.hash = hash;
  }

  /* ------------------------------------------------------ cluster list */

  async function viewClusters(view, gen, query) {
    const selector = query.get('selector') || '';
    const input = el('input', { id: 'selector', name: 'selector', type: 'search', value: selector,
      placeholder: 'label selector, e.g. env=prod,team!=payments', spellcheck: 'false' });
    const form = el('form', { class: 'filter', id: 'cluster-filter' },
      el('label', { for: 'selector', text: 'Labels' }), input,
      el('button', { type: 'submit', text: 'Filter' }),
      selector ? el('a', { href: '#/clusters', class: 'button secondary', text: 'Clear' }) : null);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      hideError();
      go(`#/clusters${qs({ selector: input.value.trim() })}`);
    });
    const rowsHolder = el('div', { id: 'cluster-list' });
    append(view, [el('h1', { text: 'Clusters' }), form, rowsHolder]);

    const rows = [];
    const more = el('button', { type: 'button', class: 'secondary', id: 'clusters-more', text: 'Load more', hidden: true });
    let cursor = null;
    const load = async () => {
      const r = await api('GET', `/v1/clusters${qs({ selector, limit: PAGE, cursor })}`);
      if (gen !== state.gen) return;
      for (const c of r.data.items || []) rows.push(clusterRow(c));
      cursor = r.data.next_cursor || null;
      clear(rowsHolder).appendChild(table(
        ['Name', 'Profile', 'Labels', 'Kubernetes', 'Nodes', 'Cilium', 'Last contact', 'Active job'],
        rows, selector ? 'No cluster matches this selector.' : 'No clusters yet.'));
      rowsHolder.appendChild(more);
      more.hidden = !cursor;
    };
    more.addEventListener('click', () => load().catch(showError));
    await load();
  }

  function clusterRow(c) {
    return el('tr', { dataset: { clusterId: c.id } },
      el('td', null, el('a', { href: `#/clusters/${encodeURIComponent(c.id)}`, class: 'cluster-name', text: c.name })),
      el('td', { text: dash(c.profile) }),
      el('td', null, labelChips(c.labels)),
      el('td', { text: dash(c.kube_version) }),
      el('td', { text: dash(c.node_count) }),
      el('td', { text: c.cilium_version ? `${c.cilium_version}${c.release_revision ? ` (rev ${c.release_revision})` : ''}` : '—' }),
      el('td', null, timeEl(c.last_contact_at)),
      el('td', null, c.active_job_id
        ? el('a', { href: `#/jobs/${encodeURIComponent(c.active_job_id)}`, text: 'view' }) : '—'));
  }

  /* ------------------------------------------------------ cluster view */

  async function viewCluster(view, gen, id) {
    const r = await api('GET', `/v1/clusters/${encodeURIComponent(id)}`);
    if (gen !== state.gen) return;
    const c = r.data;
    const dl = el('dl', { class: 'facts' });
    const fact = (k, v) => append(dl, [el('dt', { text: k }), el('dd', null, v)]);
    fact('ID', el('code', { text: c.id }));
    fact('Profile', dash(c.profile));
    fact('Labels', labelChips(c.labels));
    fact('API server', el('code', { text: dash(c.api_server) }));
    if (c.tls_server_name) fact('TLS server name', c.tls_server_name);
    fact('CA bundle', c.has_ca_bundle ? 'stored' : 'none (system roots)');
    fact('Authentication', dash(c.auth));
    fact('Kubernetes', dash(c.kube_version));
    fact('Nodes', dash(c.node_count));
    fact('Cilium', c.cilium_version ? `${c.cilium_version}${c.release_revision ? ` (release revision ${c.release_revision})` : ''}` : 'not installed by ferry');
    releaseFacts(c, fact);
    fact('Last contact', timeEl(c.last_contact_at));
    fact('Created', timeEl(c.created_at));
    fact('Updated', timeEl(c.updated_at));
    fact('Active job', c.active_job_id
      ? el('a', { href: `#/jobs/${encodeURIComponent(c.active_job_id)}`, text: c.active_job_id }) : 'none');

    const jobsHolder = el('div', { id: 'cluster-jobs' });
    append(view, [
      el('p', { class: 'crumbs' }, el('a', { href: '#/clusters', text: 'Clusters' }), ' / '),
      el('h1', { id: 'cluster-title', text: c.name }),
      el('section', { class: 'card' }, dl),
      canWrite() ? jobForm(c) : el('p', { class: 'muted', text: 'Your role is read-only: starting jobs needs an operator or admin token.' }),
      releaseSection(c, gen),
      el('h2', { text: 'Jobs' }),
      jobsHolder,
    ]);
    await loadJobsInto(jobsHolder, gen, { cluster_id: c.id }, false);
  }

  function jobForm(c) {
    const kind = el('select', { id: 'job-kind', name: 'kind' },
      el('option', { value: 'install', text: 'install' }),
      el('option', { value: 'upgrade', text: 'upgrade' }),
      el('option', { value: 'preflight', text: 'preflight (read-only checks)' }),
      el('option', { value: 'connection', text: 'test connection' }));
    const version = el('input', { id: 'job-version', name: 'version', type: 'text', placeholder: 'e.g. 1.18.3', spellcheck: 'false' });
    const values = el('input', { id: 'job-values', name: 'values', type: 'file', accept: '.yaml,.yml,text/yaml,text/plain' });
    const dry = el('input', { id: 'job-dry-run', name: 'dry_run', type: 'checkbox' });
    const allow = el('input', { id: 'job-allow-existing', name: 'allow_existing_nodes', type: 'checkbox' });
    const installOnly = el('div', { class: 'install-only' },
      el('div', { class: 'field' }, el('label', { for: 'job-version', text: 'Cilium version' }), version),
      el('div', { class: 'field' }, el('label', { for: 'job-values', text: 'Values file (optional)' }), values),
      el('div', { class: 'field check' }, dry, el('label', { for: 'job-dry-run', text: 'Dry run (show what would change, change nothing)' })),
      el('div', { class: 'field check' }, allow, el('label', { for: 'job-allow-existing', text: 'Allow existing nodes' })));
    const submit = el('button', { type: 'submit', id: 'job-submit', text: 'Start job' });
    const upgrade = upgradeOptions();
    const form = el('form', { class: 'card job-form', id: 'job-form' },
      el('h2', { text: 'Start a job' }),
      el('div', { class: 'field' }, el('label', { for: 'job-kind', text: 'Kind' }), kind),
      installOnly, upgrade.node, submit);
    const installLike = () => kind.value === 'install' || kind.value === 'upgrade';
    const sync = () => { installOnly.hidden = !installLike(); upgrade.node.hidden = kind.value !== 'upgrade'; };
    kind.addEventListener('change', sync);
    sync();
    /* One idempotency key per form instance: a double click or a retried
     * request after a network error returns the same job. */
    let idemKey = newKey();
    for (const inp of [kind, version, values, dry, allow]) inp.addEventListener('change', () => { idemKey = newKey(); });
    upgrade.node.addEventListener('change', () => { idemKey = newKey(); });
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError();
      submit.disabled = true;
      try {
        const params = {};
        /* "test connection" is a preflight job that only reaches the API server. */
        const jobKind = kind.value === 'connection' ? 'preflight' : kind.value;
        if (kind.value === 'connection') params.connection_only = true;
        if (installLike()) {
          if (version.value.trim()) params.chart_version = version.value.trim();
          if (values.files && values.files[0]) params.values_yaml = [await values.files[0].text()];
          if (dry.checked) params.dry_run = true;
          if (allow.checked) params.allow_existing_nodes = true;
        }
        if (kind.value === 'upgrade') upgrade.read(params);
        const r = await api('POST', `/v1/clusters/${encodeURIComponent(c.id)}/jobs`,
          { kind: jobKind, params }, { 'Idempotency-Key': idemKey });
        const job = r.data || {};
        let jid = job.id;
        const loc = r.headers.get('Location');
        if (!jid && loc) jid = loc.split('/').pop();
        go(`#/jobs/${encodeURIComponent(jid)}`);
      } catch (e) {
        showError(e);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  function newKey() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return 'console-' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }

  /* ---------------------------------------------------- release lifecycle */

  /* The release facts of a cluster page: revision and its status, the last
   * successful job, the last drift check (with a link to its job). */
  function releaseFacts(c, fact) {
    fact('Release', c.release_revision
      ? el('span', { id: 'release-fact' }, `revision ${c.release_revision} `, badge(c.release_status || 'unknown'))
      : el('span', { id: 'release-fact', text: 'no release recorded' }));
    fact('Last success', timeEl(c.last_success_at));
    const lc = c.last_check;
    if (lc && typeof lc === 'object') {
      const counts = `${dash(lc.in_sync)} in sync, ${dash(lc.drifted)} drifted, ${dash(lc.missing)} missing`;
      fact('Last check', el('span', { id: 'last-check' }, badge(lc.outcome), ` ${counts} · `, timeEl(lc.at),
        lc.job_id ? [' · ', el('a', { href: `#/jobs/${encodeURIComponent(lc.job_id)}`, text: 'report' })] : null));
    } else {
      fact('Last check', el('span', { id: 'last-check', text: 'never checked' }));
    }
  }

  /* What each lifecycle button does: the job kind, the question the
   * confirmation asks, and its options (built per open, read on submit). */
  const LIFECYCLE_ACTIONS = [
    { kind: 'check', label: 'Check drift', danger: false,
      question: 'Compare every object of the current revision and the surroundings with the live cluster? This writes nothing.' },
    { kind: 'repair', label: 'Repair', danger: false,
      question: 'Put every drifted or missing object of the current revision back as ferry applied it?' },
    { kind: 'rollback', label: 'Rollback', danger: true,
      question: 'Roll the release back to an earlier revision? Its manifest and values are applied as a new revision.' },
    { kind: 'adopt', label: 'Adopt', danger: false,
      question: 'Take over a Cilium release installed by hand with Helm? ferry records it and changes nothing in the cluster.' },
    { kind: 'uninstall', label: 'Uninstall', danger: true,
      question: 'Uninstall Cilium from this cluster? Every object of the release is deleted and the install\'s changes are undone.' },
  ];

  /* The "Release history" part of a cluster page: lifecycle buttons
   * (operators and admins), their confirmation panel, and the revisions. */
  function releaseSection(c, gen) {
    const history = el('div', { id: 'revision-history' }, el('p', { class: 'muted', text: 'Loading…' }));
    const panel = el('div', { id: 'confirm-panel', class: 'card confirm', hidden: true });
    let revisions = [];
    const buttons = canWrite() ? el('div', { class: 'actions lifecycle-actions', id: 'lifecycle-actions' },
      LIFECYCLE_ACTIONS.map((a) => el('button', { type: 'button', id: `action-${a.kind}`,
        class: a.danger ? 'danger' : 'secondary', text: a.label,
        onclick: () => openConfirm(panel, c, a, revisions) }))) : null;
    const load = async () => {
      try {
        const r = await api('GET', `/v1/clusters/${encodeURIComponent(c.id)}/revisions`);
        if (gen !== state.gen) return;
        revisions = (r.data && r.data.items) || [];
        clear(history).appendChild(revisionTable(revisions, c));
      } catch (e) {
        if (gen !== state.gen) return;
        clear(history).appendChild(el('p', { class: 'muted', text: `Revision history unavailable: ${e.message}` }));
      }
    };
    load();
    return el('section', { id: 'release' }, el('h2', { text: 'Release history' }), buttons, panel, history);
  }

  function revisionTable(items, c) {
    const rows = items.map((rv) => el('tr', { dataset: { revision: String(rv.revision) },
      class: rv.revision === c.release_revision ? 'current' : null },
      el('td', { class: 'rev', text: dash(rv.revision) }),
      el('td', null, badge(rv.status)),
      el('td', { text: rv.chart_version ? `${rv.chart_name || 'cilium'} ${rv.chart_version}` : '—' }),
      el('td', { text: dash(rv.app_version) }),
      el('td', null, timeEl(rv.updated_at || rv.created_at)),
      el('td', { class: 'started-by', text: dash(rv.started_by) }),
      el('td', { text: dash(rv.description) }),
      el('td', null, rv.job_id ? el('a', { href: `#/jobs/${encodeURIComponent(rv.job_id)}`, text: 'job' }) : '—')));
    return table(['Revision', 'Status', 'Chart', 'App version', 'Date', 'Started by', 'Description', 'Job'],
      rows, 'No revisions: ferry has not installed or adopted a release here.');
  }

  /* Opens the confirmation panel for action `a`: nothing is sent before
   * "Confirm" is pressed. The job page opens once the job is created. */
  function openConfirm(panel, c, a, revisions) {
    hideError();
    clear(panel);
    panel.dataset.kind = a.kind;
    const opts = el('div', { class: 'confirm-options' });
    const read = [];  /* functions adding the options to params */
    const checkbox = (id, param, text) => {
      const box = el('input', { type: 'checkbox', id });
      opts.appendChild(el('div', { class: 'field check' }, box, el('label', { for: id, text })));
      read.push((p) => { if (box.checked) p[param] = true; });
    };
    const textField = (id, param, text, placeholder) => {
      const inp = el('input', { type: 'text', id, placeholder, spellcheck: 'false' });
      opts.appendChild(el('div', { class: 'field' }, el('label', { for: id, text }), inp));
      read.push((p) => { if (inp.value.trim()) p[param] = inp.value.trim(); });
    };
    if (a.kind === 'rollback') {
      /* every revision but the one deployed now; the default is the
       * previous one (Helm's) */
      const targets = revisions.filter((rv) => rv.status !== 'deployed');
      const sel = el('select', { id: 'confirm-revision' },
        el('option', { value: '', text: 'previous revision (default)' }),
        targets.map((rv) => el('option', { value: String(rv.revision),
          text: `${rv.revision}: ${rv.chart_version || '?'} (${rv.status}, ${fmtTime(rv.updated_at || rv.created_at)})` })));
      opts.appendChild(el('div', { class: 'field' }, el('label', { for: 'confirm-revision', text: 'Revision' }), sel));
      read.push((p) => { if (sel.value) p.revision = Number(sel.value); });
    } else if (a.kind === 'uninstall') {
      checkbox('confirm-keep-history', 'keep_history', 'Keep the release history (status uninstalled)');
      checkbox('confirm-delete-crds', 'delete_crds', 'Also delete Cilium\'s CRDs');
      checkbox('confirm-restore-eni-agent', 'restore_eni_agent', 'Restore the tke-eni-agent image');
      checkbox('confirm-force', 'force', 'Force: Cilium carries the only pod network (pods lose networking until another CNI runs)');
    } else if (a.kind === 'adopt') {
      textField('confirm-namespace', 'namespace', 'Release namespace', 'the profile\'s (kube-system)');
      textField('confirm-release-name', 'release_name', 'Release name', 'cilium');
    } else if (a.kind === 'check' || a.kind === 'repair') {
      const ign = el('textarea', { id: 'confirm-ignore', rows: 2, spellcheck: 'false',
        placeholder: 'one per line: /json/pointer, Kind:/pointer or Kind/name:/pointer' });
      opts.appendChild(el('div', { class: 'field' }, el('label', { for: 'confirm-ignore', text: 'Ignore fields (optional)' }), ign));
      read.push((p) => {
        const rules = ign.value.split('\n').map((l) => l.trim()).filter(Boolean).map(ignoreRule);
        if (rules.length) p.ignore = rules;
      });
    }
    checkbox('confirm-dry-run', 'dry_run', 'Dry run (report what would change, change nothing)');
    const submit = el('button', { type: 'button', id: 'confirm-submit', class: a.danger ? 'danger' : null,
      text: `Confirm ${a.label.toLowerCase()}` });
    const cancel = el('button', { type: 'button', id: 'confirm-cancel', class: 'secondary', text: 'Cancel' });
    cancel.addEventListener('click', () => { panel.hidden = true; clear(panel); });
    const idemKey = newKey();  /* one per opened confirmation: a double click starts one job */
    submit.addEventListener('click', async () => {
      hideError();
      submit.disabled = true;
      try {
        const params = {};
        for (const f of read) f(params);
        const r = await api('POST', `/v1/clusters/${encodeURIComponent(c.id)}/jobs`,
          { kind: a.kind, params }, { 'Idempotency-Key': idemKey });
        let jid = r.data && r.data.id;
        const loc = r.headers.get('Location');
        if (!jid && loc) jid = loc.split('/').pop();
        go(`#/jobs/${encodeURIComponent(jid)}`);
      } catch (e) {
        showError(e);
        submit.disabled = false;
      }
    });
    append(panel, [el('h3', { text: a.label }), el('p', { class: 'question', text: a.question }), opts,
      el('div', { class: 'actions' }, submit, ' ', cancel)]);
    panel.hidden = false;
  }

  /* The upgrade-only part of the job form: Helm's value modes and Flux's
   * remediation. Returns {node, read(params)}; read() adds only what is set. */
  function upgradeOptions() {
    const mode = el('select', { id: 'job-values-mode', name: 'values_mode' },
      el('option', { value: '', text: 'Helm\'s default (reuse the previous values when none are given)' }),
      el('option', { value: 'reuse_values', text: 'reuse the previous values, merge the given ones' }),
      el('option', { value: 'reset_values', text: 'reset to the chart\'s defaults, then the given ones' }),
      el('option', { value: 'reset_then_reuse_values', text: 'chart defaults, then the previous values, then the given ones' }));
    const onFailure = el('input', { id: 'job-on-failure', type: 'checkbox' });
    const retries = el('input', { id: 'job-retries', type: 'number', min: '0', step: '1', placeholder: '0' });
    const maxHistory = el('input', { id: 'job-max-history', type: 'number', min: '0', step: '1', placeholder: '10' });
    const node = el('div', { class: 'upgrade-only' },
      el('div', { class: 'field' }, el('label', { for: 'job-values-mode', text: 'Values' }), mode),
      el('div', { class: 'field check' }, onFailure, el('label', { for: 'job-on-failure', text: 'Roll back if the upgrade fails' })),
      el('div', { class: 'field' }, el('label', { for: 'job-retries', text: 'Retries before that' }), retries),
      el('div', { class: 'field' }, el('label', { for: 'job-max-history', text: 'Revisions kept' }), maxHistory));
    const read = (params) => {
      if (mode.value) params[mode.value] = true;
      if (onFailure.checked) params.on_failure = 'rollback';
      if (retries.value !== '') params.retries = Number(retries.value);
      if (maxHistory.value !== '') params.max_history = Number(maxHistory.value);
    };
    return { node, read };
  }

  /* "/p", "Kind:/p" or "Kind/name:/p" → {path, kind, name} (as `ferry check --ignore`). */
  function ignoreRule(line) {
    const m = /^(?:([^/:]+)(?:\/([^:]+))?:)?(\/.*)$/.exec(line);
    if (!m) return { path: line };  /* the server explains what is wrong */
    const rule = { path: m[3] };
    if (m[1]) rule.kind = m[1];
    if (m[2]) rule.name = m[2];
    return rule;
  }

  /* The result tables of lifecycle jobs on the job page: the drift report
   * of a check (or repair). Appended after renderResults(). */
  function renderLifecycleResults(box, job) {
    const chk = job.result && job.result.check;
    if (!chk || typeof chk !== 'object') return;
    const sum = chk.summary || {};
    const objects = Array.isArray(chk.objects) ? chk.objects : [];
    const order = { missing: 0, drifted: 1, in_sync: 2 };
    const sorted = objects.slice().sort((x, y) => (order[x.state] ?? 9) - (order[y.state] ?? 9));
    box.appendChild(el('h2', { text: 'Drift check' }));
    box.appendChild(el('p', { class: 'muted', id: 'check-summary',
      text: `${dash(sum.in_sync)} in sync, ${dash(sum.drifted)} drifted, ${dash(sum.missing)} missing` }));
    const cls = (v) => String(v || '').replace(/[^a-z_]/g, '').replace(/_/g, '-');
    box.appendChild(el('div', { id: 'check-table' }, table(['State', 'Kind', 'Namespace', 'Name', 'Drifted fields'],
      sorted.map((o) => el('tr', { class: `drift-${cls(o.state)}`, dataset: { kind: o.kind || '', name: o.name || '' } },
        el('td', null, el('span', { class: `badge drift-${cls(o.state)}`, text: dash(o.state) })),
        el('td', { text: dash(o.kind) }), el('td', { text: dash(o.namespace) }), el('td', { text: dash(o.name) }),
        el('td', { class: 'fields', text: Array.isArray(o.fields) ? o.fields.join(', ') : '' }))),
      'The check found no objects.')));
    const sur = Array.isArray(chk.surroundings) ? chk.surroundings : [];
    if (sur.length) {
      box.appendChild(el('div', { id: 'check-surroundings' }, table(['Surrounding', 'State', 'Detail'],
        sur.map((x) => el('tr', { class: `drift-${cls(x.state)}` },
          el('td', { text: dash(x.name) }),
          el('td', null, el('span', { class: `badge drift-${cls(x.state)}`, text: dash(x.state) })),
          el('td', { text: dash(x.detail) }))))));
    }
  }

  /* --------------------------------------------------------- job list */

  async function viewJobs(view, gen, query) {
    const st = query.get('state') || '';
    const sel = el('select', { id: 'job-state-filter', name: 'state' },
      ['', 'queued', 'running', 'succeeded', 'failed', 'cancelled'].map((s) =>
        el('option', { value: s, text: s || 'any state', selected: s === st ? true : null })));
    sel.addEventListener('change', () => go(`#/jobs${qs({ state: sel.value, cluster_id: query.get('cluster_id') })}`));
    const holder = el('div', { id: 'job-list' });
    append(view, [el('h1', { text: 'Jobs' }),
      el('div', { class: 'filter' }, el('label', { for: 'job-state-filter', text: 'State' }), sel), holder]);
    await loadJobsInto(holder, gen, { state: st, cluster_id: query.get('cluster_id') }, true);
  }

  async function loadJobsInto(holder, gen, filter, showCluster) {
    const rows = [];
    let cursor = null;
    const more = el('button', { type: 'button', class: 'secondary', text: 'Load more', hidden: true });
    const headers = ['Created', showCluster ? 'Cluster' : null, 'Kind', 'State', 'Duration', 'Error'].filter(Boolean);
    const load = async () => {
      const r = await api('GET', `/v1/jobs${qs(Object.assign({ limit: PAGE, cursor }, filter))}`);
      if (gen !== state.gen) return;
      for (const j of r.data.items || []) rows.push(jobRow(j, showCluster));
      cursor = r.data.next_cursor || null;
      clear(holder).appendChild(table(headers, rows, 'No jobs yet.'));
      holder.appendChild(more);
      more.hidden = !cursor;
    };
    more.addEventListener('click', () => load().catch(showError));
    await load();
  }

  function jobRow(j, showCluster) {
    return el('tr', { dataset: { jobId: j.id } },
      el('td', null, el('a', { href: `#/jobs/${encodeURIComponent(j.id)}`, class: 'job-link' }, timeEl(j.created_at))),
      showCluster ? el('td', null, el('a', { href: `#/clusters/${encodeURIComponent(j.cluster_id)}`, text: j.cluster_name || j.cluster_id })) : null,
      el('td', null, el('a', { href: `#/jobs/${encodeURIComponent(j.id)}`, text: j.kind })),
      el('td', null, badge(j.state)),
      el('td', { text: fmtDuration(jobDuration(j)) }),
      el('td', { class: 'error-cell', text: j.error || '' }));
  }

  /* ---------------------------------------------------------- job view */

  async function viewJob(view, gen, id) {
    const path = `/v1/jobs/${encodeURIComponent(id)}`;
    const first = await api('GET', path);
    if (gen !== state.gen) return;

    const summary = el('section', { class: 'card', id: 'job-summary' });
    const phases = el('section', { id: 'job-phases' });
    const results = el('section', { id: 'job-results' });
    const logList = el('ol', { class: 'log', id: 'job-log' });
    const liveNote = el('span', { class: 'live muted', id: 'job-live' });
    const title = el('h1', { id: 'job-title' });
    const crumbs = el('p', { class: 'crumbs' });
    append(view, [crumbs, title, summary, el('h2', { text: 'Phases' }), phases, results,
      el('h2', null, 'Log ', liveNote), el('div', { class: 'log-wrap' }, logList)]);

    let job = first.data;
    let lastEventId = 0;
    const seen = new Set();

    const render = () => {
      clear(crumbs);
      append(crumbs, [el('a', { href: '#/jobs', text: 'Jobs' }), ' / ',
        el('a', { href: `#/clusters/${encodeURIComponent(job.cluster_id)}`, text: job.cluster_name || job.cluster_id }), ' / ']);
      clear(title);
      append(title, [`${job.kind} job `, badge(job.state)]);
      renderSummary(summary, job, cancel);
      clear(phases).appendChild(phaseTable(job.phases || []));
      renderResults(results, job);
      renderLifecycleResults(results, job);
    };

    const addEvents = (items) => {
      for (const ev of items || []) {
        const eid = Number(ev.id);
        if (ev.id !== undefined && seen.has(String(ev.id))) continue;
        if (ev.id !== undefined) seen.add(String(ev.id));
        if (!isNaN(eid) && eid > lastEventId) lastEventId = eid;
        const lvl = String(ev.level || 'info');
        logList.appendChild(el('li', { class: `lvl-${lvl.replace(/[^a-z]/g, '')}` },
          el('span', { class: 'at', title: ev.at || null, text: fmtTime(ev.at) }),
          el('span', { class: 'lvl', text: lvl }),
          el('span', { class: 'phase', text: ev.phase || '' }),
          el('span', { class: 'msg', text: ev.message || '' })));
      }
      if (logList.children.length === 0) return;
      const wrap = logList.parentNode;
      if (wrap) wrap.scrollTop = wrap.scrollHeight;
    };

    const fetchEvents = async () => {
      /* Page through the log from the last event we have. */
      for (let i = 0; i < 50; i++) {
        const r = await api('GET', `${path}/events${qs({ after: lastEventId || null, limit: 200 })}`);
        if (gen !== state.gen) return;
        const items = (r.data && r.data.items) || [];
        const before = lastEventId;
        addEvents(items);
        if (items.length < 200 || lastEventId === before) break;
      }
    };

    async function cancel(btn) {
      hideError();
      btn.disabled = true;
      try {
        const r = await api('POST', `${path}/cancel`, {});
        if (gen !== state.gen) return;
        if (r.data && r.data.id) { job = r.data; render(); }
      } catch (e) {
        showError(e);
        btn.disabled = false;
      }
    }

    render();
    await fetchEvents();
    if (gen !== state.gen) return;
    if (logList.children.length === 0) logList.appendChild(el('li', { class: 'muted empty-log', text: 'No log lines yet.' }));

    if (TERMINAL.has(job.state)) { liveNote.textContent = ''; return; }

    /* ---- live: the SSE stream first, polling as the fallback */
    let abort = null;     /* AbortController of the stream request */
    let timer = null;     /* next poll */
    let endTimer = null;  /* closes a stream that outlives its finished job */
    const ticker = setInterval(() => tickDurations(view), 1000);
    const stopStream = () => {
      if (abort) { abort.abort(); abort = null; }
      if (endTimer) { clearTimeout(endTimer); endTimer = null; }
    };
    const stopLive = () => {
      stopStream();
      if (timer) { clearTimeout(timer); timer = null; }
      clearInterval(ticker);
    };
    state.cleanup.push(stopLive);

    const dropEmptyNote = () => {
      const n = logList.querySelector('.empty-log');
      if (n) n.remove();
    };
    let done = false;
    const finished = () => {
      done = true;
      stopLive();
      liveNote.textContent = '';
      view.dataset.live = 'done';
    };

    const poll = async () => {
      timer = null;
      if (gen !== state.gen) return;
      try {
        const r = await api('GET', path);
        if (gen !== state.gen) return;
        job = r.data;
        render();
        await fetchEvents();
        dropEmptyNote();
      } catch (e) {
        if (gen !== state.gen) return;
        if (e.status === 401 || e.status === 404) { showError(e); finished(); return; }
        /* transient: keep polling */
      }
      if (gen !== state.gen) return;
      if (TERMINAL.has(job.state)) { finished(); return; }
      timer = setTimeout(poll, POLL_MS);
    };

    const startPolling = () => {
      stopStream();
      if (gen !== state.gen || done) return;
      view.dataset.live = 'polling';
      liveNote.textContent = '● live (polling)';
      if (!timer) timer = setTimeout(poll, 0);
    };

    const onStreamEvent = (type, data, id) => {
      if (gen !== state.gen) return;
      if (type === 'log') {
        let ev;
        try { ev = JSON.parse(data); } catch (e) { return; /* ignore a malformed record */ }
        if (!ev || typeof ev !== 'object') return;
        if (ev.id === undefined && id) ev.id = id;
        dropEmptyNote();
        addEvents([ev]);
      } else if (type === 'job') {
        let j;
        try { j = JSON.parse(data); } catch (e) { return; }
        if (!j || !j.id) return;
        job = j;
        render();
        /* The server sends the last log lines and then ends the stream;
         * do not wait for it forever. */
        if (TERMINAL.has(job.state) && !endTimer) endTimer = setTimeout(stopStream, 3000);
      } else if (type === 'error') {
        throw new Error('the server ended the stream with an error');
      }
    };

    abort = new AbortController();
    const lastId = lastEventId;
    readEventStream(`${path}/events/stream`, lastId, abort.signal, onStreamEvent, () => {
      if (gen !== state.gen) return;
      view.dataset.live = 'stream';
      liveNote.textContent = '● live';
    }).then(async () => {
      /* The stream ended: normally because the job finished. Pick up
       * anything missed; keep following by polling if it is still active. */
      if (gen !== state.gen) return;
      if (TERMINAL.has(job.state)) {
        finished();
        await fetchEvents().catch(() => {});
      } else {
        startPolling();
      }
    }, () => {
      /* Could not open or broke off (older server, proxy, network):
       * polling also notices a finished job. */
      if (gen !== state.gen) return;
      if (TERMINAL.has(job.state)) { finished(); fetchEvents().catch(() => {}); return; }
      startPolling();
    });
  }

  /* Follows a text/event-stream with fetch() so the token travels in the
   * Authorization header (EventSource cannot send headers, and a token in the
   * URL would end up in logs and history). Calls onEvent(type, data, id) per
   * record and onOpen() once the response headers arrived. Resolves when the
   * server ends the stream; rejects on an HTTP error, a network error, an
   * abort, or when onEvent throws. */
  async function readEventStream(url, lastId, signal, onEvent, onOpen) {
    const headers = Object.assign({ Accept: 'text/event-stream' }, authHeaders('GET'));
    if (lastId) headers['Last-Event-ID'] = String(lastId);
    const res = await fetch(url, { headers, signal, cache: 'no-store' });
    const ct = res.headers.get('Content-Type') || '';
    if (!res.ok || !res.body || !ct.startsWith('text/event-stream')) {
      throw new ApiError(res.status, { title: `stream: HTTP ${res.status}` });
    }
    onOpen();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let type = '';
    let data = [];
    let id = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        let line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.endsWith('\r')) line = line.slice(0, -1);
        if (line === '') {
          /* a blank line dispatches the record */
          if (data.length) onEvent(type || 'message', data.join('\n'), id);
          type = ''; data = [];
          continue;
        }
        if (line[0] === ':') continue; /* comment / keep-alive */
        const c = line.indexOf(':');
        const field = c < 0 ? line : line.slice(0, c);
        let val = c < 0 ? '' : line.slice(c + 1);
        if (val[0] === ' ') val = val.slice(1);
        if (field === 'event') type = val;
        else if (field === 'data') data.push(val);
        else if (field === 'id') id = val;
      }
    }
  }

  function renderSummary(box, job, cancel) {
    clear(box);
    const dl = el('dl', { class: 'facts' });
    const fact = (k, v) => append(dl, [el('dt', { text: k }), el('dd', null, v)]);
    fact('ID', el('code', { text: job.id }));
    fact('Cluster', el('a', { href: `#/clusters/${encodeURIComponent(job.cluster_id)}`, text: job.cluster_name || job.cluster_id }));
    fact('Kind', job.kind);
    fact('State', el('span', { id: 'job-state' }, badge(job.state),
      job.cancel_requested && !TERMINAL.has(job.state) ? el('span', { class: 'muted', text: ' (cancel requested)' }) : null));
    fact('Attempt', dash(job.attempt));
    fact('Created', timeEl(job.created_at));
    fact('Started', timeEl(job.started_at));
    fact('Finished', timeEl(job.finished_at));
    fact('Duration', durationCell('span', jobDuration(job),
      job.started_at && !job.finished_at && !TERMINAL.has(job.state) ? job.started_at : null));
    const params = job.params || {};
    const shown = Object.assign({}, params);
    if (Array.isArray(shown.values_yaml)) shown.values_yaml = shown.values_yaml.map((y) => `(${String(y).length} bytes of YAML)`);
    if (Object.keys(shown).length) fact('Parameters', el('code', { class: 'params', text: JSON.stringify(shown) }));
    box.appendChild(dl);
    if (job.error) {
      box.appendChild(el('div', { class: 'job-error', id: 'job-error' },
        el('strong', { text: 'Error: ' }), el('span', { text: job.error })));
    }
    if (!TERMINAL.has(job.state) && canWrite()) {
      const btn = el('button', { type: 'button', class: 'danger', id: 'job-cancel',
        text: job.cancel_requested ? 'Cancel requested' : 'Cancel job', disabled: !!job.cancel_requested });
      btn.addEventListener('click', () => cancel(btn));
      box.appendChild(el('div', { class: 'actions' }, btn));
    }
  }

  function phaseTable(list) {
    const rows = list.slice().sort((a, b) => (a.seq || 0) - (b.seq || 0)).map((ph) => {
      const msg = el('td', { class: 'message' }, ph.message || '');
      if (ph.detail !== null && ph.detail !== undefined && !(typeof ph.detail === 'object' && !Object.keys(ph.detail).length)) {
        msg.appendChild(el('details', null, el('summary', { text: 'detail' }),
          el('pre', { text: typeof ph.detail === 'string' ? ph.detail : JSON.stringify(ph.detail, null, 2) })));
      }
      return el('tr', { dataset: { phase: ph.name } },
        el('td', { text: dash(ph.seq) }),
        el('td', { class: 'phase-name', text: ph.name }),
        el('td', null, badge(ph.state)),
        el('td', null, timeEl(ph.started_at)),
        el('td', null, timeEl(ph.finished_at)),
        durationCell('td', phaseDuration(ph),
          ph.state === 'running' && ph.started_at && (ph.duration_ms === null || ph.duration_ms === undefined) ? ph.started_at : null),
        el('td', { text: dash(ph.attempts) }),
        el('td', { text: dash(ph.api_calls) }),
        msg);
    });
    return table(['#', 'Phase', 'State', 'Started', 'Finished', 'Duration', 'Attempts', 'API calls', 'Message'],
      rows, 'No phases recorded yet.');
  }

  function renderResults(box, job) {
    clear(box);
    const result = job.result || {};
    const verify = result.verify && Array.isArray(result.verify.pods) ? result.verify.pods : null;
    if (verify) {
      box.appendChild(el('h2', { text: 'Verify: Cilium pods' }));
      box.appendChild(el('div', { id: 'verify-table' }, table(['Name', 'Ready', 'Status', 'Restarts', 'Age'],
        verify.map((p) => el('tr', { class: p.status === 'Running' ? '' : 'warn' },
          el('td', { text: dash(p.name) }), el('td', { text: dash(p.ready) }),
          el('td', { text: dash(p.status) }), el('td', { text: dash(p.restarts) }),
          el('td', { text: dash(p.age) }))),
        'No Cilium pods found.')));
    }
    const dry = result.dry_run && Array.isArray(result.dry_run.objects) ? result.dry_run.objects : null;
    if (dry) {
      const counts = {};
      for (const o of dry) counts[o.action] = (counts[o.action] || 0) + 1;
      box.appendChild(el('h2', { text: 'Dry run: what would change' }));
      box.appendChild(el('p', { class: 'muted', id: 'dry-run-summary',
        text: Object.entries(counts).map(([a, n]) => `${n} ${a}`).join(', ') || 'no objects' }));
      const order = { created: 0, changed: 1, deleted: 2, unchanged: 3 };
      const sorted = dry.slice().sort((a, b) => (order[a.action] ?? 9) - (order[b.action] ?? 9));
      box.appendChild(el('div', { id: 'dry-run-table' }, table(['Action', 'Kind', 'Namespace', 'Name', 'Changed fields'],
        sorted.map((o) => el('tr', { class: `action-${String(o.action || '').replace(/[^a-z]/g, '')}` },
          el('td', null, el('span', { class: `badge action-${String(o.action || '').replace(/[^a-z]/g, '')}`, text: dash(o.action) })),
          el('td', { text: dash(o.kind) }), el('td', { text: dash(o.namespace) }),
          el('td', { text: dash(o.name) }),
          el('td', { class: 'fields', text: Array.isArray(o.fields) && o.fields.length ? o.fields.join(', ') : '' }))),
        'The dry run found nothing to change.')));
    }
  }

  /* ------------------------------------------------- other pages' hooks */

  /* Pages kept in their own files (web/campaigns.js) register a view for
   * the first part of the hash in `views` and use these helpers. */
  const views = {};
  window.ferryConsole = { views, el, append, clear, api, qs, badge, dash, table, fmtTime, timeEl,
    showError, hideError, canWrite, readEventStream, go, state, TERMINAL };

  /* ------------------------------------------------------------- start */

  function init() {
    $('login-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError();
      const t = $('token-input').value.trim();
      if (!t) return;
      $('token-input').value = '';
      if (await signIn(t)) route();
    });
    $('logout').addEventListener('click', () => logout(false));
    $('error-close').addEventListener('click', hideError);
    /* Clicking the link of the page already shown reloads its data. */
    for (const a of document.querySelectorAll('.topbar a[href^="#"]')) {
      a.addEventListener('click', (ev) => {
        if (a.getAttribute('href') === location.hash) { ev.preventDefault(); hideError(); route(); }
      });
    }
    window.addEventListener('hashchange', () => { hideError(); route(); });
    loadAuth().then(route);
  }

  /* After DOMContentLoaded, which comes after every deferred script (the
   * other pages' files) has registered its views. */
  if (document.readyState !== 'complete') document.addEventListener('DOMContentLoaded', init);
  else init();
})();

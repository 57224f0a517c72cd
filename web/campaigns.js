/*
 * campaigns.js: the console's Campaigns pages (issue 11), in their own file;
 * app.js provides the helpers (window.ferryConsole) and calls the views.
 *
 *   #/campaigns        the list, and (operators) a "new campaign" form with
 *                      a preview of the clusters the selector matches
 *   #/campaigns/ID     one campaign: state and reason, waves as progress
 *                      bars, pause / resume / approve / cancel (operators,
 *                      each confirmed first), and the member clusters
 *                      coloured by state with their waiting reason and a
 *                      link to each job. Live: GET /v1/campaigns/ID/stream
 *                      (fetch + Authorization header), polling as fallback.
 *
 * Everything from the server is put into the page as text (el()), never as
 * HTML.
 */
(function () {
  const F = window.ferryConsole;
  if (!F) return;
  const { el, append, clear, api, qs, badge, dash, table, timeEl, showError, hideError, canWrite, go, state } = F;
  const FINISHED = new Set(['succeeded', 'failed', 'cancelled']);
  const MEMBER_STATES = ['succeeded', 'skipped', 'failed', 'running', 'waiting', 'pending', 'cancelled'];

  function newKey() {
    const a = new Uint8Array(12);
    crypto.getRandomValues(a);
    return `console-${Array.from(a, (b) => b.toString(16).padStart(2, '0')).join('')}`;
  }

  /* "10" -> 10, "10%" stays text; "" -> undefined. */
  function countValue(s) {
    const t = String(s || '').trim();
    if (!t) return undefined;
    return /^\d+$/.test(t) ? Number(t) : t;
  }

  function progressText(c) {
    const k = c.counts || {};
    return `${(k.succeeded || 0) + (k.skipped || 0)}/${c.total}`;
  }

  /* ------------------------------------------------------------ the list */

  async function viewList(view, gen) {
    const holder = el('div', { id: 'campaign-list' });
    append(view, [el('h1', { text: 'Campaigns' })]);
    if (canWrite()) view.appendChild(newForm(gen));
    view.appendChild(holder);
    const r = await api('GET', `/v1/campaigns${qs({ limit: 100 })}`);
    if (gen !== state.gen) return;
    const rows = (r.data.items || []).map((c) => el('tr', { 'data-id': c.id },
      el('td', null, el('a', { href: `#/campaigns/${encodeURIComponent(c.id)}`, text: c.name })),
      el('td', null, badge(c.state)),
      el('td', { text: c.kind }),
      el('td', null, el('code', { text: c.selector })),
      el('td', { text: progressText(c) }),
      el('td', { text: String((c.counts || {}).failed || 0) }),
      el('td', { class: 'reason', text: dash(c.reason) }),
      el('td', null, timeEl(c.created_at))));
    clear(holder).appendChild(table(['Name', 'State', 'Kind', 'Selector', 'Done', 'Failed', 'Reason', 'Created'],
      rows, 'No campaigns yet.'));
  }

  function newForm(gen) {
    const field = (id, label, attrs) => {
      const input = el('input', Object.assign({ id, name: id, spellcheck: 'false' }, attrs || {}));
      return { input, node: el('div', { class: 'field' }, el('label', { for: id, text: label }), input) };
    };
    const name = field('cf-name', 'Name', { required: true, placeholder: 'prod to 1.18.3' });
    const selector = field('cf-selector', 'Selector', { required: true, placeholder: 'env=prod' });
    const kind = el('select', { id: 'cf-kind', name: 'cf-kind' },
      ['upgrade', 'install', 'preflight'].map((k) => el('option', { value: k, text: k })));
    const version = field('cf-version', 'Chart version', { placeholder: '1.18.3' });
    const canary = field('cf-canary', 'Canary', { placeholder: '1' });
    const mif = field('cf-max-in-flight', 'Max in flight', { placeholder: '10 or 10%' });
    const waves = field('cf-waves', 'Waves', { placeholder: '10%,50%,100%' });
    const mf = field('cf-max-failures', 'Max failures', { placeholder: '2 or 5%' });
    const pbw = field('cf-pause', 'Pause between waves', { placeholder: '10m or manual' });
    const preview = el('div', { id: 'cf-preview', class: 'muted' });
    const previewBtn = el('button', { type: 'button', class: 'secondary', id: 'cf-preview-btn', text: 'Preview clusters' });
    previewBtn.addEventListener('click', async () => {
      hideError();
      const sel = selector.input.value.trim();
      try {
        const r = await api('GET', `/v1/clusters${qs({ selector: sel, limit: 200 })}`);
        if (gen !== state.gen) return;
        const items = r.data.items || [];
        clear(preview);
        append(preview, [el('strong', { text: `${items.length}${r.data.next_cursor ? '+' : ''} clusters match` }),
          el('ul', { class: 'preview-list' }, items.map((c) => el('li', { text: c.name })))]);
      } catch (e) { showError(e); }
    });
    const submit = el('button', { type: 'submit', id: 'cf-submit', text: 'Start campaign' });
    const form = el('form', { id: 'campaign-form', class: 'card' },
      el('h2', { text: 'New campaign' }),
      name.node, selector.node, el('div', { class: 'field' }, el('label', { for: 'cf-kind', text: 'Kind' }), kind),
      version.node, canary.node, mif.node, waves.node, mf.node, pbw.node,
      el('p', null, previewBtn, ' ', submit), preview);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      hideError();
      const strategy = {};
      const put = (k, v) => { if (v !== undefined) strategy[k] = v; };
      put('canary', countValue(canary.input.value));
      put('max_in_flight', countValue(mif.input.value));
      put('max_failures', countValue(mf.input.value));
      if (waves.input.value.trim()) strategy.waves = waves.input.value.split(',').map(countValue);
      if (pbw.input.value.trim()) strategy.pause_between_waves = pbw.input.value.trim();
      const params = {};
      if (version.input.value.trim()) params.chart_version = version.input.value.trim();
      const body = { name: name.input.value.trim(), selector: selector.input.value.trim(), kind: kind.value,
        params, strategy };
      if (!window.confirm(`Start "${body.name}" (${body.kind}) on every cluster matching ${body.selector}?`)) return;
      submit.disabled = true;
      try {
        const r = await api('POST', '/v1/campaigns', body, { 'Idempotency-Key': newKey() });
        go(`#/campaigns/${encodeURIComponent(r.data.id)}`);
      } catch (e) {
        showError(e);
      } finally {
        submit.disabled = false;
      }
    });
    return form;
  }

  /* -------------------------------------------------------- one campaign */

  function waveBar(w) {
    const k = w.counts || {};
    const bar = el('div', { class: 'wavebar', role: 'img', 'data-wave': String(w.wave),
      'aria-label': `wave ${w.wave}: ${MEMBER_STATES.map((s) => `${k[s] || 0} ${s}`).join(', ')}` });
    for (const s of MEMBER_STATES) {
      const n = k[s] || 0;
      if (!n) continue;
      bar.appendChild(el('span', { class: `seg state-${s}`, title: `${n} ${s}`,
        'data-n': String(n), 'data-state': s }));
    }
    /* widths through CSSOM (the page's CSP forbids inline style attributes) */
    for (const seg of bar.children) seg.style.width = `${(100 * Number(seg.dataset.n)) / (w.total || 1)}%`;
    const done = (k.succeeded || 0) + (k.skipped || 0) + (k.failed || 0) + (k.cancelled || 0);
    return el('div', { class: 'wave' },
      el('span', { class: 'wave-label', text: w.wave === 0 ? 'Canary' : `Wave ${w.wave}` }), bar,
      el('span', { class: 'wave-count', text: `${done}/${w.total}` }));
  }

  function memberRow(m) {
    return el('tr', { class: `member member-${m.state}`, 'data-cluster': m.cluster_id, 'data-state': m.state },
      el('td', { text: String(m.wave) }),
      el('td', null, el('a', { href: `#/clusters/${encodeURIComponent(m.cluster_id)}`, text: m.cluster_name })),
      el('td', null, badge(m.state)),
      el('td', { class: 'reason', text: m.error || m.reason || '' }),
      el('td', null, m.job_id ? el('a', { href: `#/jobs/${encodeURIComponent(m.job_id)}`, text: m.job_id.slice(0, 8) }) : '—'),
      el('td', null, timeEl(m.started_at)),
      el('td', null, timeEl(m.finished_at)));
  }

  async function viewOne(view, gen, id) {
    const path = `/v1/campaigns/${encodeURIComponent(id)}`;
    const first = await api('GET', path);
    if (gen !== state.gen) return;
    let camp = first.data;
    const members = new Map();   /* cluster_id -> row JSON */
    const loadMembers = async () => {
      let cursor = null;
      for (let i = 0; i < 100; i++) {
        const r = await api('GET', `${path}/clusters${qs({ limit: 200, cursor })}`);
        if (gen !== state.gen) return;
        for (const m of r.data.items || []) members.set(m.cluster_id, m);
        cursor = r.data.next_cursor;
        if (!cursor) break;
      }
    };
    await loadMembers();
    if (gen !== state.gen) return;

    const title = el('h1', { id: 'campaign-title' });
    const facts = el('section', { class: 'card', id: 'campaign-summary' });
    const actions = el('p', { id: 'campaign-actions' });
    const wavesBox = el('section', { id: 'campaign-waves' });
    const tableBox = el('section', { id: 'campaign-clusters' });
    const liveNote = el('span', { class: 'live muted', id: 'campaign-live' });
    append(view, [el('p', { class: 'crumbs' }, el('a', { href: '#/campaigns', text: 'Campaigns' }), ' / '),
      title, facts, actions, el('h2', null, 'Waves ', liveNote), wavesBox, el('h2', { text: 'Clusters' }), tableBox]);

    const act = async (what, btn) => {
      const extra = what === 'cancel' ? ' Running jobs stop at their next phase boundary; no more start.' : '';
      if (!window.confirm(`${what[0].toUpperCase()}${what.slice(1)} campaign "${camp.name}"?${extra}`)) return;
      hideError();
      btn.disabled = true;
      try {
        const r = await api('POST', `${path}/${what}`);
        if (gen !== state.gen) return;
        camp = r.data;
        render();
      } catch (e) {
        showError(e);
        btn.disabled = false;
      }
    };

    const render = () => {
      clear(title);
      append(title, [`${camp.name} `, badge(camp.state)]);
      clear(facts);
      const dl = el('dl', { class: 'facts' });
      const fact = (k, v) => append(dl, [el('dt', { text: k }), el('dd', null, v)]);
      fact('Reason', el('span', { id: 'campaign-reason', text: dash(camp.reason) }));
      fact('Kind', camp.kind);
      fact('Selector', el('code', { text: camp.selector }));
      fact('Clusters', `${camp.total} (canary ${camp.canary}, max in flight ${camp.max_in_flight}, failure budget ${camp.max_failures})`);
      fact('Progress', el('span', { id: 'campaign-progress', text: progressText(camp) }));
      fact('Created', timeEl(camp.created_at));
      fact('Finished', timeEl(camp.finished_at));
      facts.appendChild(dl);
      clear(actions);
      if (canWrite() && !FINISHED.has(camp.state)) {
        const b = (what, label, show) => {
          if (!show) return null;
          const btn = el('button', { type: 'button', id: `campaign-${what}`, class: what === 'cancel' ? 'danger' : '', text: label });
          btn.addEventListener('click', () => act(what, btn));
          return btn;
        };
        const paused = camp.state === 'paused';
        append(actions, [b('pause', 'Pause', !paused || camp.pause_kind === 'window'),
          b('resume', 'Resume', paused && camp.pause_kind !== 'approval' && camp.pause_kind !== 'window'),
          b('approve', 'Approve next wave', paused && camp.pause_kind === 'approval'),
          ' ', b('cancel', 'Cancel', true)]);
      }
      clear(wavesBox);
      for (const w of camp.wave_progress || []) wavesBox.appendChild(waveBar(w));
      const rows = Array.from(members.values()).sort((a, b) => a.position - b.position).map(memberRow);
      clear(tableBox).appendChild(table(['Wave', 'Cluster', 'State', 'Reason / error', 'Job', 'Started', 'Finished'],
        rows, 'No clusters.'));
      view.dataset.state = camp.state;
    };
    render();

    if (FINISHED.has(camp.state) && !(camp.counts || {}).running) return;

    /* ---- live: the SSE stream, polling as the fallback */
    let abort = new AbortController();
    let timer = null;
    let dirty = false;
    const redraw = () => { if (!dirty) { dirty = true; requestAnimationFrame(() => { dirty = false; if (gen === state.gen) render(); }); } };
    const stop = () => { if (abort) { abort.abort(); abort = null; } if (timer) { clearTimeout(timer); timer = null; } };
    state.cleanup.push(stop);
    const poll = async () => {
      timer = null;
      try {
        const r = await api('GET', path);
        if (gen !== state.gen) return;
        camp = r.data;
        await loadMembers();
        render();
      } catch (e) { /* transient: keep polling */ }
      if (gen !== state.gen || (FINISHED.has(camp.state) && !(camp.counts || {}).running)) return;
      timer = setTimeout(poll, 2000);
    };
    F.readEventStream(`${path}/stream`, null, abort.signal, (type, data) => {
      if (gen !== state.gen) return;
      let obj;
      try { obj = JSON.parse(data); } catch (e) { return; }
      if (type === 'cluster' && obj && obj.cluster_id) { members.set(obj.cluster_id, obj); redraw(); }
      else if (type === 'campaign' && obj && obj.id) { camp = obj; redraw(); }
    }, () => {
      if (gen !== state.gen) return;
      view.dataset.live = 'stream';
      liveNote.textContent = '● live';
    }).then(() => {
      if (gen !== state.gen) return;
      liveNote.textContent = '';
      view.dataset.live = 'done';
    }, () => {
      if (gen !== state.gen) return;
      view.dataset.live = 'polling';
      liveNote.textContent = '● live (polling)';
      timer = setTimeout(poll, 0);
    });
  }

  F.views.campaigns = async (view, gen, parts) => {
    if (parts[1]) await viewOne(view, gen, parts[1]);
    else await viewList(view, gen);
  };
})();

// The fleet page: counts, search and table, schema versions, servers,
// live operations and the recent audit.
'use strict';
(() => {
  const { h, api } = TP;
  const TIERS = ['free', 'standard', 'enterprise'];
  TP.TIERS = TIERS;
  const STATES = ['provisioning', 'active', 'suspended', 'deleting', 'deleted', 'failed'];

  TP.pages.push([/^#\/fleet$/, async (view) => {
    const counts = h('div', { class: 'cards', id: 'fleet-counts' });
    const versions = h('div', { id: 'schema-versions', class: 'live short' });
    const servers = h('div', { id: 'fleet-servers', class: 'live short' });
    // Where a periodic refresh's failure shows: a line of fixed height.
    const serversError = h('p', { class: 'error', role: 'alert' });
    const operations = h('div', { class: 'live', id: 'recent-operations' });
    const audit = h('div', { class: 'live short', id: 'recent-audit' });
    const charts = h('div', { id: 'fleet-charts' });
    // Rows arrive live: the table scrolls in a box of fixed height, its pager below.
    const tenants = h('div', { id: 'tenant-table', class: 'live tall' });
    const pager = h('div', { class: 'pager' });
    const search = h('input', { type: 'search', name: 'q', id: 'tenant-search', placeholder: 'slug, name or id',
      'aria-label': 'Search tenants by slug, name or id' });
    let cursors = [null];
    let q = '';

    async function loadCounts() {
      const s = await api('GET', '/v1/fleet/summary');
      const card = (n, k, id) => h('div', { class: 'card', id }, h('div', { class: 'n' }, n), h('div', { class: 'k' }, k));
      // Every state and tier has its card, zero or not, so none appears
      // or moves as counts change.
      TP.swap(counts, card(s.total, 'tenants', 'count-total'),
        ...STATES.map((k) => card(s.by_status[k] || 0, k, `count-status-${k}`)),
        ...TIERS.map((k) => card(s.by_tier[k] || 0, `tier ${k}`, `count-tier-${k}`)));
      // Tenants per schema version: bars the server draws, one per version.
      const chart = await TP.svgChart('/v1/migrations/versions', 'versions-chart',
        `Tenants per schema version (${Object.keys(s.by_schema_version).length} versions)`);
      TP.swap(versions,
        h('p', { class: 'muted' }, `Newest schema version: ${s.latest_version}. Runs going: ${s.migration_runs_running}.`),
        chart);
    }

    const loadTenants = TP.latest(async (current) => {
      const params = new URLSearchParams({ limit: '20' });
      if (q) params.set('q', q);
      const cursor = cursors[cursors.length - 1];
      if (cursor) params.set('cursor', cursor);
      const page = await api('GET', '/v1/tenants?' + params);
      if (!current()) return;
      const rows = page.tenants.map((t) => h('tr', { 'data-tenant': t.id, 'data-slug': t.slug },
        h('td', {}, h('a', { href: `#/tenants/${t.id}` }, t.slug)), h('td', {}, t.name),
        h('td', { class: 'status' }, TP.badge(t.status)), h('td', {}, t.tier),
        h('td', {}, t.parent_id ? h('a', { href: `#/tenants/${t.parent_id}` }, 'sub of ' + TP.short(t.parent_id)) : 'root'),
        h('td', {}, t.schema_version), h('td', {}, TP.fmtTime(t.created_at))));
      const prev = h('button', { type: 'button', disabled: cursors.length === 1,
        onclick: () => { cursors.pop(); loadTenants().catch(TP.showError); } }, 'Previous');
      const next = h('button', { type: 'button', disabled: !page.next_cursor,
        onclick: () => { cursors.push(page.next_cursor); loadTenants().catch(TP.showError); } }, 'Next');
      TP.swap(tenants, TP.table(['Slug', 'Name', 'Status', 'Tier', 'Parent', 'Schema', 'Created'], rows,
        q ? `No tenant matches “${q}”.` : 'No tenants yet.'));
      TP.swap(pager, prev, h('span', { class: 'muted' }, `Page ${cursors.length}`), next);
    });

    async function loadServers() {
      const { servers: list } = await api('GET', '/v1/servers');
      TP.swap(servers, ...list.map((s) => h('div', { class: 'server' },
        h('strong', {}, s.name), ' ', TP.badge(s.state),
        TP.bar('tenants', s.tenants, s.capacity, true),
        TP.bar('connections', s.connections.open, s.connections.budget, true))));
    }

    async function loadOperations() {
      const { operations: ops } = await api('GET', '/v1/operations?limit=12');
      TP.swap(operations, TP.table(['Kind', 'State', 'Tenant', 'Started'], ops.map((o) =>
        h('tr', { 'data-operation': o.id }, h('td', {}, o.kind,
          o.progress.total ? h('div', { class: 'muted' }, `${o.progress.done || 0} of ${o.progress.total}`) : ''),
        h('td', {}, TP.badge(o.state)),
        h('td', {}, o.tenant_id ? h('a', { href: `#/tenants/${o.tenant_id}` }, o.tenant_id.slice(-12)) : '—'),
        h('td', {}, TP.fmtTime(o.started_at)))), 'No operations yet.'));
    }

    async function loadAudit() {
      const { events } = await api('GET', '/v1/fleet/audit?limit=15');
      TP.swap(audit, TP.table(['When', 'Who', 'Action', 'Result'], events.map((e) =>
        h('tr', {}, h('td', {}, TP.fmtTime(e.timestamp)), h('td', {}, e.user_id),
          h('td', {}, e.action, h('div', { class: 'mono muted' }, e.resource)), h('td', {}, e.result))), 'Nothing audited yet.'));
    }

    // The fleet's top tenants this month and each server's utilisation,
    // drawn by the server.
    async function loadCharts() {
      const [top, load] = await Promise.all([
        TP.svgChart('/v1/usage/top?metric=requests&limit=10', 'top-tenants-chart', 'Top tenants by requests this month'),
        TP.svgChart('/v1/servers/load', 'server-load-chart', 'Server utilisation (%), as last sampled'),
      ]);
      TP.swap(charts, top, load);
    }

    const searchForm = h('form', { class: 'inline', role: 'search', onsubmit: (ev) => {
      ev.preventDefault(); q = search.value.trim(); cursors = [null]; loadTenants().catch(TP.showError);
    } }, search, h('button', { type: 'submit' }, 'Search'));

    // A first admin's key, shown once when a tenant is made with one.
    const adminKey = h('div', { id: 'first-admin-key', 'aria-live': 'polite' });
    const createForm = TP.form({ id: 'create-tenant', 'aria-label': 'Create a tenant' }, [
      TP.field('Slug', { name: 'slug', required: true, id: 'new-slug' }),
      TP.field('Name', { name: 'name', required: true, id: 'new-name' }),
      TP.select('Tier', 'tier', TIERS, 'standard'),
      TP.field('First admin (subject)', { name: 'admin_subject', id: 'new-admin-subject' }),
      TP.field('First admin (e-mail)', { name: 'admin_email', type: 'email', id: 'new-admin-email' }),
    ], 'Create tenant', async (v, form) => {
      const body = { slug: v.slug, name: v.name, tier: v.tier };
      if (v.admin_subject || v.admin_email) body.admin = { subject: v.admin_subject, email: v.admin_email };
      const made = await api('POST', '/v1/tenants', body);
      TP.swap(adminKey, made.admin_key ? [h('p', {}, `First admin key of ${made.slug}: copy it now, it is shown only once.`),
        h('div', { class: 'secret mono' }, made.admin_key.key)] : []);
      form.reset();
      q = ''; search.value = ''; cursors = [null];
      await Promise.all([loadTenants(), loadCounts()]);
    });

    view.append(h('h1', {}, 'Fleet'),
      h('div', { class: 'grid' },
        h('section', { class: 'panel wide', 'aria-labelledby': 'h-counts' }, h('h2', { id: 'h-counts' }, 'Tenants by state and tier'), counts),
        h('section', { class: 'panel wide', 'aria-labelledby': 'h-tenants' }, h('h2', { id: 'h-tenants' }, 'Tenants'),
          searchForm, tenants, pager, h('h2', {}, 'New tenant'), createForm, adminKey),
        h('section', { class: 'panel', 'aria-labelledby': 'h-versions' }, h('h2', { id: 'h-versions' }, 'Schema versions'), versions),
        h('section', { class: 'panel', 'aria-labelledby': 'h-servers' }, h('h2', { id: 'h-servers' }, 'Servers'), servers, serversError),
        h('section', { class: 'panel', 'aria-labelledby': 'h-ops' }, h('h2', { id: 'h-ops' }, 'Recent operations (live)'), operations),
        h('section', { class: 'panel', 'aria-labelledby': 'h-audit' }, h('h2', { id: 'h-audit' }, 'Recent audit'), audit),
        h('section', { class: 'panel wide', 'aria-labelledby': 'h-charts' }, h('h2', { id: 'h-charts' }, 'Usage and load'), charts)));

    const refresh = TP.throttled(300, () => Promise.all([loadTenants(), loadCounts(), loadOperations(), loadAudit()])
      .catch(TP.showError));
    TP.onEvent(refresh);
    TP.every(10000, () => loadServers().then(() => { serversError.textContent = ''; }, (e) => TP.showError(e, serversError)));
    await Promise.all([loadCounts(), loadTenants(), loadServers(), loadOperations(), loadAudit(),
      loadCharts().catch((e) => TP.showError(e, charts))]);
  }]);
})();

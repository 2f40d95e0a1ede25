// The tenant page: facts and actions, settings against their effective
// values, subtenants, API keys, domains, backups, point-in-time restore
// (recovery.js), migrations, operations.
'use strict';
(() => {
  const { h, api } = TP;

  // Flattens nested settings into dotted paths.
  function flatten(obj, prefix, out) {
    for (const [k, v] of Object.entries(obj || {})) {
      const path = prefix ? `${prefix}.${k}` : k;
      if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, path, out);
      else out[path] = v;
    }
    return out;
  }
  const show = (v) => v === undefined ? '' : (typeof v === 'string' ? v : JSON.stringify(v));

  function settingsTable(t) {
    const own = flatten(t.settings, '', {});
    const effective = flatten(t.effective_settings, '', {});
    const paths = [...new Set([...Object.keys(effective), ...Object.keys(own)])].sort();
    return TP.table(['Setting', 'Effective', 'Own', 'Source'], paths.map((p) => {
      const mine = p in own;
      // An own value the tier or the parent caps is in effect only up to the cap.
      const capped = mine && show(own[p]) !== show(effective[p]);
      return h('tr', { class: mine ? '' : 'inherited' }, h('td', { class: 'mono' }, p),
        h('td', {}, show(effective[p])), h('td', {}, mine ? show(own[p]) : '—'),
        h('td', {}, mine ? (capped ? 'own, capped' : 'own') : 'inherited'));
    }), 'No settings.');
  }

  function actions(t, reload) {
    if (!TP.isSuper()) return h('p', { class: 'muted' }, 'Lifecycle actions are for super_admin.');
    const named = `${t.slug} (${t.name})`;
    const simple = (label, path, opts) => h('button', { type: 'button', id: `action-${label.toLowerCase()}`,
      onclick: () => TP.confirm(Object.assign({
        title: `${label} tenant ${t.slug}?`, action: `${label} ${t.slug}`,
        text: `This will ${label.toLowerCase()} tenant ${named}, id ${t.id}.`,
        run: async () => { await api('POST', path); await reload(); },
      }, opts || {})) }, label);
    const buttons = [];
    if (t.status === 'active') buttons.push(simple('Suspend', `/v1/tenants/${t.id}/suspend`));
    if (t.status === 'suspended') buttons.push(simple('Resume', `/v1/tenants/${t.id}/resume`));
    if (t.status === 'deleted') buttons.push(simple('Restore', `/v1/tenants/${t.id}/restore`, { typed: t.slug }));
    if (t.status === 'active' || t.status === 'suspended') {
      buttons.push(h('button', { type: 'button', id: 'action-delete', class: 'danger', onclick: () => TP.confirm({
        title: `Delete tenant ${t.slug}?`, action: `Delete ${t.slug}`, typed: t.slug,
        text: `Tenant ${named} stops answering at once. Its database is kept for the retention period, then purged.`,
        run: async () => { await api('DELETE', `/v1/tenants/${t.id}`); await reload(); },
      }) }, 'Delete'));
    }
    if (!t.parent_id && t.status === 'active') {
      buttons.push(h('button', { type: 'button', id: 'action-move', onclick: async () => {
        let servers;
        try { ({ servers } = await api('GET', '/v1/servers')); } catch (e) { TP.showError(e); return; }
        const others = servers.filter((s) => s.id !== t.server_id && s.state === 'active');
        const select = h('select', { name: 'server', id: 'move-server' }, others.map((s) => h('option', { value: s.id }, s.name)));
        TP.confirm({
          title: `Move tenant ${t.slug}?`, action: `Move ${t.slug}`, typed: t.slug,
          text: others.length ? `Tenant ${named} is copied to the chosen server; writes pause at the cut-over.`
            : 'There is no other active server to move to.',
          extra: h('label', {}, 'To server', select), blocked: others.length === 0,
          run: async () => { await api('POST', `/v1/tenants/${t.id}/move`, { server: select.value }); await reload(); },
        });
      } }, 'Move…'));
    }
    return h('div', { class: 'actions' }, buttons);
  }

  async function keysPanel(t, box) {
    // The list is paged; a tenant's keys are few (a cap of live ones), so all are shown.
    const keys = [];
    for (let cursor = ''; ;) {
      const page = await api('GET', `/v1/tenants/${t.id}/api-keys?limit=500${cursor ? '&cursor=' + encodeURIComponent(cursor) : ''}`);
      keys.push(...page.api_keys);
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    const secret = h('div', { id: 'new-key-secret', 'aria-live': 'polite' });
    const rows = keys.map((k) => h('tr', { 'data-key': k.id }, h('td', {}, k.name), h('td', {}, k.role),
      h('td', { class: 'mono' }, 'tpk_' + k.prefix + '_…'), h('td', {}, TP.fmtTime(k.created_at)),
      h('td', {}, k.revoked_at ? 'revoked ' + TP.fmtTime(k.revoked_at) : (k.expires_at ? 'until ' + TP.fmtTime(k.expires_at) : 'active')),
      h('td', {}, k.revoked_at ? '' : h('button', { type: 'button', onclick: () => TP.confirm({
        title: `Revoke key ${k.name}?`, action: 'Revoke', text: `Key ${k.name} of tenant ${t.slug} stops working at once.`,
        run: async () => { await api('DELETE', `/v1/tenants/${t.id}/api-keys/${k.id}`); await keysPanel(t, box); },
      }) }, 'Revoke'))));
    const form = TP.form({ id: 'create-key', 'aria-label': 'Create an API key' }, [
      TP.field('Name', { name: 'name', required: true }),
      TP.select('Role', 'role', ['tenant_admin', 'viewer', 'agent'], 'viewer'),
    ], 'Create key', async (v) => {
      const made = await api('POST', `/v1/tenants/${t.id}/api-keys`, { name: v.name, role: v.role });
      await keysPanel(t, box);
      TP.swap(box.querySelector('#new-key-secret'), h('p', {}, `Key ${made.name}: copy it now, it is shown only once.`),
        h('div', { class: 'secret mono' }, made.key));
    });
    TP.swap(box, TP.table(['Name', 'Role', 'Key', 'Created', 'State', ''], rows, 'No API keys.'), form, secret);
  }

  async function domainsPanel(t, box) {
    const { domains } = await api('GET', `/v1/tenants/${t.id}/domains`);
    const list = h('ul', {}, domains.length ? domains.map((d) => h('li', {}, d)) : h('li', { class: 'muted' }, 'None'));
    const form = TP.isSuper() ? TP.form({ 'aria-label': 'Add a domain' }, [TP.field('Domain', { name: 'domain', required: true })],
      'Add domain', async (v) => { await api('POST', `/v1/tenants/${t.id}/domains`, { domain: v.domain }); await domainsPanel(t, box); }) : '';
    TP.swap(box, list, form);
  }

  async function backupsPanel(t, box, reload) {
    const { backups } = await api('GET', `/v1/tenants/${t.id}/backups`);
    const rows = backups.map((b) => h('tr', {}, h('td', {}, TP.fmtTime(b.created_at)), h('td', {}, b.reason),
      h('td', {}, (b.bytes / 1024).toFixed(1) + ' KiB'), h('td', {}, 'v' + b.schema_version),
      h('td', {}, h('button', { type: 'button', onclick: () => TP.confirm({
        title: `Restore tenant ${t.slug}?`, action: `Restore ${t.slug}`, typed: t.slug,
        text: `Tenant ${t.slug}'s database is replaced by the backup of ${TP.fmtTime(b.created_at)}.`,
        run: async () => { await api('POST', `/v1/tenants/${t.id}/backups/${b.id}/restore`); await reload(); },
      }) }, 'Restore'))));
    const status = h('p', { class: 'status-line muted', id: 'backup-status', 'aria-live': 'polite' });
    const error = h('p', { class: 'error', role: 'alert' });
    // A backup is an operation (202): follow it, then list the backups again.
    const take = h('button', { type: 'button', id: 'take-backup', onclick: async () => {
      take.disabled = true;
      error.textContent = '';
      try {
        const op = await api('POST', `/v1/tenants/${t.id}/backups`);
        status.textContent = 'Backup queued…';
        await new Promise((resolve) => {
          const stop = TP.every(1000, async () => {
            try {
              const now = await api('GET', `/v1/operations/${op.id}`);
              const bytes = now.progress.bytes ? ` · ${(now.progress.bytes / 1024).toFixed(1)} KiB` : '';
              status.textContent = `Backup ${now.state}${now.step ? ' · ' + now.step : ''}${bytes}`;
              if (now.state === 'queued' || now.state === 'running') return;
              stop();
              if (now.error) TP.showError(new TP.ApiError(0, now.error.code, now.error.message), error);
              resolve();
            } catch (e) { stop(); TP.showError(e, error); resolve(); }
          });
        });
        await backupsPanel(t, box, reload);
      } catch (e) { TP.showError(e, error); }
      finally { take.disabled = false; }
    } }, 'Take a backup');
    TP.swap(box, h('div', { class: 'live short' }, TP.table(['Taken', 'Why', 'Size', 'Schema', ''], rows, 'No backups.')),
      h('div', { class: 'actions' }, take), status, error);
  }

  async function subtenantsPanel(t, box, reload) {
    const subs = await api('GET', `/v1/tenants?parent_id=${t.id}&limit=100`);
    TP.swap(box, h('ul', { id: 'subtenant-tree' }, subs.tenants.length
      ? subs.tenants.map((s) => h('li', {}, h('a', { href: `#/tenants/${s.id}` }, s.slug), ` ${s.name} `, TP.badge(s.status)))
      : h('li', { class: 'muted' }, 'No subtenants.')),
    TP.isSuper() ? TP.form({ 'aria-label': 'Create a subtenant' }, [
      TP.field('Slug', { name: 'slug', required: true }), TP.field('Name', { name: 'name', required: true })],
    'Create subtenant', async (v) => { await api('POST', `/v1/tenants/${t.id}/subtenants`, v); await reload(); }) : '');
  }

  async function migrationsPanel(t, box) {
    const m = await api('GET', `/v1/tenants/${t.id}/migrations?limit=10`);
    TP.swap(box, h('p', {}, `Schema version ${m.schema_version} of ${m.latest_version}.`),
      TP.table(['Run', 'State', 'From', 'To', 'Applied', 'Error'], m.history.map((e) => h('tr', {},
        h('td', {}, h('a', { href: `#/migrations/${e.run_id}` }, TP.fmtTime(e.run_created_at))), h('td', {}, TP.badge(e.state)),
        h('td', {}, e.from_version ?? ''), h('td', {}, e.to_version ?? ''), h('td', {}, e.applied ?? ''), h('td', {}, e.error || ''))),
      'No fleet run has touched this tenant.'));
  }

  async function operationsPanel(t, box) {
    const { operations } = await api('GET', `/v1/operations?tenant=${t.id}&limit=10`);
    TP.swap(box, TP.table(['Kind', 'State', 'Step', 'Started', 'Error'], operations.map((o) => h('tr', {},
      h('td', {}, o.kind), h('td', {}, TP.badge(o.state)), h('td', {}, o.step || ''), h('td', {}, TP.fmtTime(o.started_at)),
      h('td', {}, o.error ? o.error.message : ''))), 'No operations.'));
  }

  TP.pages.push([/^#\/tenants\/([0-9a-fA-F-]{36})$/, async (view, rawId) => {
    const id = rawId.toLowerCase();
    const panel = (title, key, body) => h('section', { class: 'panel', id: `tenant-${key}`, 'aria-labelledby': `h-${key}` },
      h('h2', { id: `h-${key}` }, title), body);
    const boxes = {};
    for (const k of ['facts', 'settings', 'usage', 'subtenants', 'keys', 'sso', 'domains', 'backups', 'recovery', 'migrations', 'operations']) boxes[k] = h('div');
    const heading = h('h1', { tabindex: '-1' });
    const actionBox = h('div');
    // The tenant's state: what an event can change. Its forms are left alone,
    // so a live update never wipes what the operator is typing.
    async function reloadState() {
      const t = await api('GET', `/v1/tenants/${id}`);
      TP.swap(heading, `${t.name} `, TP.badge(t.status));
      heading.dataset.status = t.status;
      TP.swap(actionBox, actions(t, afterAction));
      TP.swap(boxes.facts, h('dl', { class: 'facts' },
        ...[['Slug', t.slug], ['Id', t.id], ['Tier', t.tier], ['Status', t.status],
          ['Parent', t.parent_id ? h('a', { href: `#/tenants/${t.parent_id}` }, t.parent_id) : 'none (a root tenant)'],
          ['Database', t.database || '—'], ['Server', t.server_id || '—'], ['Schema version', t.schema_version],
          ['Created', TP.fmtTime(t.created_at)], ['Error', t.error || '—']].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])));
      TP.swap(boxes.settings, settingsTable(t));
      if (TP.isSuper()) {
        await Promise.all([operationsPanel(t, boxes.operations).catch((e) => TP.showError(e, boxes.operations)),
          migrationsPanel(t, boxes.migrations).catch((e) => TP.showError(e, boxes.migrations))]);
      }
      return t;
    }
    // Everything, forms included: on first load and after the operator acts.
    async function reload() {
      const t = await reloadState();
      // Keys, subtenants and restores to a time belong to root tenants.
      const root = !t.parent_id;
      for (const k of ['keys', 'subtenants', 'usage']) view.querySelector(`#tenant-${k}`).hidden = !root;
      const recovery = view.querySelector('#tenant-recovery');
      if (recovery) recovery.hidden = !root;
      const tasks = [domainsPanel(t, boxes.domains).catch((e) => TP.showError(e, boxes.domains)),
        TP.identityPanel(t, boxes.sso).catch((e) => TP.showError(e, boxes.sso))];
      if (root) {
        tasks.push(TP.usagePanel(t, boxes.usage).catch((e) => TP.showError(e, boxes.usage)),
          keysPanel(t, boxes.keys).catch((e) => TP.showError(e, boxes.keys)),
          subtenantsPanel(t, boxes.subtenants, reload).catch((e) => TP.showError(e, boxes.subtenants)));
      }
      if (TP.isSuper()) tasks.push(backupsPanel(t, boxes.backups, reload).catch((e) => TP.showError(e, boxes.backups)));
      if (TP.isSuper() && root) tasks.push(TP.recoveryPanel(t, boxes.recovery, reload).catch((e) => TP.showError(e, boxes.recovery)));
      await Promise.all(tasks);
    }
    // After an action everything may have changed.
    const afterAction = () => reload();
    const superOnly = TP.isSuper() ? [panel('Backups', 'backups', boxes.backups),
      panel('Point-in-time restore', 'recovery', boxes.recovery), panel('Migrations', 'migrations', h('div', { class: 'live short' }, boxes.migrations)),
      panel('Operations (live)', 'operations', h('div', { class: 'live short' }, boxes.operations))] : [];
    view.append(heading, actionBox, h('div', { class: 'grid' }, panel('Tenant', 'facts', boxes.facts),
      panel('Settings: effective against its own', 'settings', boxes.settings),
      panel('Usage and quotas', 'usage', boxes.usage),
      panel('Subtenants', 'subtenants', boxes.subtenants), panel('API keys', 'keys', boxes.keys),
      panel('Single sign-on', 'sso', boxes.sso),
      panel('Domains', 'domains', boxes.domains), ...superOnly));
    const refresh = TP.throttled(250, () => reloadState().catch(TP.showError));
    TP.onEvent((e) => { if (e.tenant_id === id) refresh(); });
    await reload();
  }]);
})();

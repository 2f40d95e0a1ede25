// The migrations pages (runs with live progress, the canary wave, the
// failures, resume and cancel) and the servers page (add, drain, budgets).
'use strict';
(() => {
  const { h, api } = TP;
  const runIdOf = (op) => op.subject || (op.result || '').split('/').pop();

  TP.pages.push([/^#\/migrations$/, async (view) => {
    const runs = h('div', { id: 'migration-runs', class: 'live' });
    const error = h('p', { class: 'error', role: 'alert' });
    let going = false;
    async function load() {
      const { operations } = await api('GET', '/v1/operations?kind=fleet_run&limit=15');
      going = operations.some((o) => o.state === 'queued' || o.state === 'running');
      TP.swap(runs, TP.table(['Run', 'State', 'Progress', 'Started', 'Finished'], operations.map((o) => h('tr', {},
        h('td', {}, runIdOf(o) ? h('a', { href: `#/migrations/${runIdOf(o)}` }, TP.short(runIdOf(o))) : '—'),
        h('td', {}, TP.badge(o.state)), h('td', {}, o.progress.total ? `${o.progress.done || 0}/${o.progress.total}` : ''),
        h('td', {}, TP.fmtTime(o.started_at)), h('td', {}, TP.fmtTime(o.finished_at)))), 'No fleet runs yet.'));
    }
    const start = TP.form({ id: 'start-run', 'aria-label': 'Start a fleet migration' }, [
      TP.field('Concurrency', { name: 'concurrency', type: 'number', min: 1, max: 256, value: 4 }),
      TP.field('Canary tenants', { name: 'canary', type: 'number', min: 0, value: 1 }),
      TP.field('Failures allowed', { name: 'max_failures', type: 'number', min: 0, value: 0 }),
      h('label', {}, 'Verify every database', h('input', { type: 'checkbox', name: 'verify', value: 'true' })),
      // Lint: rules whose error findings the run starts despite (comma-separated).
      TP.field('Acknowledge lint rules', { name: 'acknowledge', placeholder: 'require-concurrent-index-creation' }),
      // Drift: tenants a scan found drifted are skipped unless this is set.
      h('label', {}, 'Migrate drifted tenants too', h('input', { type: 'checkbox', name: 'allow_drift', value: 'true' })),
    ], 'Start fleet migration', async (v) => {
      const op = await api('POST', '/v1/migrations/runs', {
        concurrency: Number(v.concurrency), canary: Number(v.canary), max_failures: Number(v.max_failures),
        verify: v.verify === 'true',
        acknowledge: (v.acknowledge || '').split(',').map((r) => r.trim()).filter(Boolean),
        allow_drift: v.allow_drift === 'true',
      });
      location.hash = `#/migrations/${runIdOf(op)}`;
    });
    view.append(h('h1', {}, 'Migrations'), h('div', { class: 'grid' },
      h('section', { class: 'panel wide' }, h('h2', {}, 'Start a run'),
        h('p', { class: 'muted' }, 'Migrates every tenant to the newest schema version: the canary tenants first, alone, then the rest.'), start),
      h('section', { class: 'panel wide' }, h('h2', {}, 'Runs'), runs, error), driftPanel()));
    TP.onEvent(TP.throttled(300, () => load().catch(TP.showError)));
    // A run's progress has no event of its own: poll while one is going.
    let polling = false;
    TP.every(1500, async () => {
      if (!going || polling) return;
      polling = true;
      try { await load(); error.textContent = ''; } catch (e) { TP.showError(e, error); } finally { polling = false; }
    });
    await load();
  }]);

  // Drift: the tenants whose schema differs from their version, each with
  // its per-object diff, and a scan started here and followed to its end.
  function driftPanel() {
    const list = h('div', { id: 'drift-list', class: 'live' });
    const status = h('p', { id: 'drift-status', class: 'muted', 'aria-live': 'polite' });
    const error = h('p', { class: 'error', role: 'alert' });
    let following = null;
    async function load() {
      const { counts: c, last_scan: s, drifted } = await api('GET', '/v1/migrations/drift');
      status.textContent = `${c.in_sync} in sync, ${c.drifted} drifted, ${c.unknown} unknown · `
        + (s ? `last scan ${TP.fmtTime(s.started_at)}: ${s.state}` : 'no scan yet');
      TP.swap(list, drifted.length ? drifted.map((t) => h('details', { 'data-tenant': t.tenant_id },
        h('summary', {}, h('a', { href: `#/tenants/${t.tenant_id}` }, t.slug),
          ` · ${t.diff.length} objects differ from version ${t.checked_version} · checked ${TP.fmtTime(t.checked_at)}`),
        TP.table(['Change', 'Kind', 'Object', 'DDL'], t.diff.map((o) => h('tr', {}, h('td', {}, TP.badge(o.change)),
          h('td', {}, o.kind), h('td', { class: 'mono' }, o.name), h('td', {}, h('code', {}, o.ddl || '—'))))))) : h('p', { class: 'muted' }, 'No drifted tenants.'));
    }
    const scan = h('button', { type: 'button', id: 'drift-scan', onclick: async () => {
      scan.disabled = true;
      try { following = (await api('POST', '/v1/migrations/drift/scans')).id; await follow(); } catch (e) { TP.showError(e, error); scan.disabled = false; }
    } }, 'Scan now');
    // The scan's operation, polled to its end, its progress shown meanwhile.
    async function follow() {
      if (!following) return;
      const op = await api('GET', `/v1/operations/${following}`);
      status.textContent = `Scanning: ${op.progress.done || 0}/${op.progress.total || '?'} tenants`;
      if (op.state === 'queued' || op.state === 'running') return;
      following = null;
      scan.disabled = false;
      await load();
    }
    TP.every(1000, () => follow().catch((e) => TP.showError(e, error)));
    TP.onEvent((e) => { if (e.type === 'tenant.drifted' && !following) load().catch((x) => TP.showError(x, error)); });
    load().catch((e) => TP.showError(e, error));
    return h('section', { class: 'panel wide', 'aria-labelledby': 'h-drift' }, h('h2', { id: 'h-drift' }, 'Drift'),
      h('p', { class: 'muted' }, 'Tenants whose schema differs from the one their version expects. A fleet run skips them unless told to migrate drifted tenants too.'),
      h('div', { class: 'actions' }, scan), status, list, error);
  }

  TP.pages.push([/^#\/migrations\/([0-9a-fA-F-]{36})$/, async (view, runId) => {
    const bar = h('progress', { id: 'run-progress', max: 100, value: 0, 'aria-label': 'Run progress' });
    const pct = h('strong', { id: 'run-percent' }, '0 %');
    const facts = h('dl', { class: 'facts' });
    const canary = h('p', { id: 'run-canary' });
    const failures = h('div', { id: 'run-failures' });
    const lint = h('div', { id: 'run-lint' });
    const buttons = h('div', { class: 'actions' });
    // Revert: the revert's operation, followed to its end once started here.
    const reverting = h('p', { id: 'run-revert', 'aria-live': 'polite' });
    let revertOp = null;
    async function followRevert() {
      if (!revertOp) return;
      const op = await api('GET', `/v1/operations/${revertOp}`);
      const ended = op.state !== 'queued' && op.state !== 'running';
      reverting.dataset.state = op.state;
      reverting.textContent = `Revert ${op.state}: ${op.progress.done || 0}/${op.progress.total || '?'} tenants`
        + (op.error ? ` · ${op.error.message || op.error.code || ''}` : '');
      if (ended) revertOp = null;
    }
    const error = h('p', { class: 'error', role: 'alert' });
    let finished = false;
    async function operation() {
      const { operations } = await api('GET', '/v1/operations?kind=fleet_run&limit=50');
      return operations.find((o) => runIdOf(o) === runId);
    }
    async function load() {
      const { run, counts, failures: failed } = await api('GET', `/v1/migrations/runs/${runId}`);
      const done = counts.succeeded + counts.failed + counts.skipped;
      const p = counts.total ? Math.floor((100 * done) / counts.total) : (run.state === 'succeeded' ? 100 : 0);
      bar.value = p;
      pct.textContent = `${p} %`;
      TP.swap(view.querySelector('h1'), 'Fleet run ', TP.badge(run.state));
      TP.swap(facts, ...[['Run', run.id], ['Target version', run.target_version], ['Tenants', counts.total],
        ['Succeeded', counts.succeeded], ['Skipped (already current)', counts.skipped], ['Failed', counts.failed],
        ['Pending', counts.pending + counts.running], ['Concurrency', run.concurrency], ['Started', TP.fmtTime(run.created_at)],
        ['Finished', TP.fmtTime(run.finished_at)], ['Error', run.error || '—']].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
      // The canary wave runs first, alone; its failures are marked.
      const wave = Math.min(run.canary, counts.total);
      const canaryFailed = failed.filter((f) => f.canary).length;
      const ended = run.state !== 'running' && run.state !== 'pending';
      canary.dataset.canary = wave === 0 ? 'none' : (canaryFailed ? 'failed' : (done >= wave ? 'passed' : 'running'));
      canary.textContent = wave === 0 ? 'No canary wave.'
        : canaryFailed ? `Canary wave of ${wave}: ${canaryFailed} failed` + (ended && done <= wave
          ? ', so the rest did not start.' : ', within the run\'s failure budget, so the rest went on.')
          : (done >= wave ? `Canary wave of ${wave} passed.` : `Canary wave of ${wave}: ${done} done.`);
      TP.swap(failures, TP.table(['Tenant', 'From', 'Error'], failed.map((f) => h('tr', {},
        h('td', {}, h('a', { href: `#/tenants/${f.tenant_id}` }, TP.short(f.tenant_id))), h('td', {}, f.from_version ?? ''),
        h('td', {}, f.error || ''))), 'No failures.'));
      // Lint: the findings on the run's pending migrations, and what it acknowledged.
      TP.swap(lint, h('p', { id: 'run-acknowledged' }, 'Acknowledged: ',
        (run.acknowledged || []).length ? run.acknowledged.join(', ') : 'none'),
      TP.table(['Rule', 'Severity', 'Where', 'Message'], (run.lint || []).map((f) => h('tr', {},
        h('td', { class: 'mono' }, f.rule), h('td', {}, TP.badge(f.severity)), h('td', { class: 'mono' }, `${f.file}:${f.line}`),
        h('td', {}, f.message))), 'No lint findings.'));
      finished = run.state !== 'running' && run.state !== 'pending';
      const op = finished ? null : await operation();
      TP.swap(buttons, 
        finished && (run.state === 'failed' || run.state === 'stopped' || counts.failed > 0)
          ? h('button', { type: 'button', id: 'run-resume', onclick: () => TP.confirm({
            title: 'Resume this run?', action: 'Resume run', text: `Retries the failed and pending tenants of run ${run.id}.`,
            run: async () => { await api('POST', `/v1/migrations/runs/${runId}/resume`); await load(); } }) }, 'Resume') : '',
        op && !op.cancel_requested ? h('button', { type: 'button', id: 'run-cancel', class: 'danger', onclick: () => TP.confirm({
          title: 'Cancel this run?', action: 'Cancel run', text: `Tenants already migrated stay migrated; run ${run.id} stops.`,
          run: async () => { await api('POST', `/v1/operations/${op.id}/cancel`); await load(); } }) }, 'Cancel') : '',
        finished && counts.succeeded > 0 ? h('button', { type: 'button', id: 'run-revert-start', class: 'danger', onclick: () => TP.confirm({
          title: 'Revert this run?', action: 'Revert run',
          text: `Takes the tenants run ${run.id} moved forward, and still at version ${run.target_version}, back to their version before it, `
            + 'with the down migrations. Tenants moved on since, drifted or failed are left alone and listed.',
          extra: h('label', {}, 'Accept data loss (down steps that drop a table or column) ',
            h('input', { type: 'checkbox', id: 'revert-accept-data-loss' })),
          run: async (box) => {
            const op = await api('POST', `/v1/migrations/runs/${runId}/revert`,
              { accept_data_loss: box.querySelector('#revert-accept-data-loss').checked });
            revertOp = op.id;
            await followRevert();
          } }) }, 'Revert') : '');
    }
    view.append(h('h1', {}, 'Fleet run'), h('div', { class: 'grid' },
      h('section', { class: 'panel wide' }, h('h2', {}, 'Progress'), h('div', { class: 'barline' }, h('span', {}, 'done'), bar, pct),
        canary, buttons, reverting, error),
      h('section', { class: 'panel' }, h('h2', {}, 'Run'), facts),
      h('section', { class: 'panel' }, h('h2', {}, 'Failed tenants'), failures),
      h('section', { class: 'panel wide' }, h('h2', {}, 'Lint'), lint)));
    // One poll at a time: a slow answer is not overtaken by the next poll.
    let polling = false;
    TP.every(1000, async () => {
      if (finished || polling) return;
      polling = true;
      try { await load(); } catch (e) { TP.showError(e, error); } finally { polling = false; }
    });
    TP.every(1000, () => followRevert().catch((e) => TP.showError(e, error)));
    TP.onEvent((e) => { if (e.type === 'migration_run.finished') load().catch((x) => TP.showError(x, error)); });
    await load();
  }]);

  TP.pages.push([/^#\/servers$/, async (view) => {
    const list = h('div', { id: 'server-list' });
    const drains = h('div', { id: 'drains', 'aria-live': 'polite' });
    async function load() {
      const { servers } = await api('GET', '/v1/servers');
      TP.swap(list, ...servers.map((s) => h('section', { class: 'panel', 'data-server': s.name },
        h('h2', {}, s.name, ' ', TP.badge(s.state)),
        h('p', { class: 'mono muted' }, `${s.admin_user}@${s.host}:${s.port}` + (s.is_catalog ? ' · the catalog server' : '')),
        TP.bar('tenants', s.tenants, s.capacity, true), TP.bar('connections', s.connections.open, s.connections.budget, true),
        TP.form({ 'aria-label': `Limits of ${s.name}` }, [
          TP.field('Capacity', { name: 'capacity', type: 'number', min: 1, value: s.capacity }),
          TP.field('Connection budget', { name: 'connection_budget', type: 'number', min: 1, value: s.connections.budget }),
        ], 'Save limits', async (v) => {
          await api('PATCH', `/v1/servers/${s.id}`, { capacity: Number(v.capacity), connection_budget: Number(v.connection_budget) });
          await load();
        }),
        h('div', { class: 'actions' }, s.state === 'active' && !s.is_catalog ? h('button', { type: 'button', onclick: () => TP.confirm({
          title: `Drain server ${s.name}?`, action: `Drain ${s.name}`, typed: s.name,
          text: `Every tenant on ${s.name} is moved to other servers; no new tenant is placed on it.`,
          run: async () => { const op = await api('POST', `/v1/servers/${s.id}/drain`); watch(op.id, s.name); await load(); },
        }) }, 'Drain…') : ''))));
      // Drains going on (started elsewhere, or before a reload) show too.
      const { operations } = await api('GET', '/v1/operations?kind=drain&state=running&limit=50');
      for (const op of operations) {
        const s = servers.find((x) => x.id === op.subject);
        watch(op.id, s ? s.name : TP.short(op.subject));
      }
    }
    const watched = new Set();
    function watch(opId, name) {
      if (watched.has(opId)) return;
      watched.add(opId);
      const bar = h('progress', { max: 100, value: 0 });
      const text = h('span', {}, 'starting');
      drains.append(h('div', { class: 'barline' }, h('span', {}, `drain ${name}`), bar, text));
      const stop = TP.every(1000, async () => {
        try {
          const op = await api('GET', `/v1/operations/${opId}`);
          const total = op.progress.total || 0;
          bar.value = total ? (100 * (op.progress.done || 0)) / total : (op.state === 'succeeded' ? 100 : 0);
          text.textContent = `${op.progress.done || 0}/${total} · ${op.state}` + (op.error ? ` · ${op.error.message}` : '');
          if (op.state !== 'queued' && op.state !== 'running') { stop(); load().catch(TP.showError); }
        } catch (e) { stop(); TP.showError(e); }
      });
    }
    const add = TP.form({ id: 'add-server', 'aria-label': 'Add a server' }, [
      TP.field('Name', { name: 'name', required: true }),
      TP.field('DSN', { name: 'dsn', required: true, placeholder: 'postgres://user:password@host:5432/postgres', size: 44 }),
      TP.field('Capacity', { name: 'capacity', type: 'number', min: 1, value: 1000 }),
      TP.field('Connection budget', { name: 'connection_budget', type: 'number', min: 1, value: 50 }),
    ], 'Add server', async (v, form) => {
      await api('POST', '/v1/servers', { name: v.name, dsn: v.dsn, capacity: Number(v.capacity),
        connection_budget: Number(v.connection_budget) });
      form.reset();
      await load();
    });
    view.append(h('h1', {}, 'Servers'), h('section', { class: 'panel wide' }, h('h2', {}, 'Add a server'), add, drains),
      TP.rebalancePanel(() => load().catch(TP.showError)), h('div', { class: 'grid' }, list));
    // Refreshes the bars, unless the operator is editing a form in the list.
    const error = h('p', { class: 'error', role: 'alert' });
    drains.after(error);
    TP.every(5000, () => {
      if (list.contains(document.activeElement)) return;
      load().then(() => { error.textContent = ''; }, (e) => TP.showError(e, error));
    });
    await load();
  }]);
})();

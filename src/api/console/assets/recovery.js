// The tenant page's point-in-time restore: the recovery window, read from
// the server's WAL archive, and a restore to a time (in place, or as a new
// tenant), followed as the operation it is.
(() => {
  const { h, api } = TP;

  // <input type=datetime-local> speaks the browser's own time zone; to the
  // millisecond, as the markers an operator looks for may be that close.
  const toLocal = (iso) => {
    const d = new Date(iso);
    d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
    return d.toISOString().slice(0, 23);
  };
  const fromLocal = (value) => new Date(value).toISOString();

  // The last restore's outcome per tenant: the panel is drawn again when
  // the restore ends, and must still say how it ended.
  const outcomes = {};
  function show(status, error, outcome) {
    status.textContent = outcome.text;
    status.dataset.state = outcome.state;
    if (outcome.error) TP.showError(new TP.ApiError(0, outcome.error.code, outcome.error.message), error);
  }

  // Follows the restore's operation, step by step, into `status`.
  function follow(t, op, status, error, done) {
    status.textContent = 'Restore queued…';
    const stop = TP.every(1000, async () => {
      try {
        const now = await api('GET', `/v1/operations/${op.id}`);
        const outcome = { state: now.state, text: `Restore ${now.state}${now.step ? ' · ' + now.step : ''}`, error: now.error };
        show(status, error, outcome);
        if (now.state === 'queued' || now.state === 'running') return;
        stop();
        outcomes[t.id] = outcome;
        done();
      } catch (e) { stop(); TP.showError(e, error); }
    });
  }

  TP.recoveryPanel = async function recoveryPanel(t, box, reload) {
    let w;
    try {
      w = await api('GET', `/v1/tenants/${t.id}/recovery-window`);
    } catch (e) {
      if (e instanceof TP.ApiError && e.code === 'no_wal_archive') {
        TP.swap(box, h('p', { class: 'muted', id: 'recovery-none' }, e.message));
        return;
      }
      throw e;
    }
    const now = w.server_reachable && !w.archiving_failing;
    const facts = h('dl', { class: 'facts', id: 'recovery-window' }, ...[
      ['Earliest', w.earliest ? TP.fmtTime(w.earliest) : 'no base backup yet'],
      ['Latest', w.latest ? (now ? 'now' : TP.fmtTime(w.latest)) : '—'],
      ['Last WAL archived', TP.fmtTime(w.last_archived_at)],
      ['Archiving', w.archiving_failing ? 'failing' : (w.server_reachable ? 'working' : 'server unreachable')],
      ['Base backups', String(w.backups.length)],
    ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
    if (!w.earliest) {
      TP.swap(box, facts);
      return;
    }
    const status = h('p', { class: 'status-line muted', id: 'restore-time-status', 'aria-live': 'polite' });
    const error = h('p', { class: 'error', role: 'alert' });
    const begin = async (body) => {
      error.textContent = '';
      const op = await api('POST', `/v1/tenants/${t.id}/restore-to-time`, body);
      follow(t, op, status, error, () => reload());
    };
    const form = TP.form({ 'aria-label': 'Restore to a time', id: 'restore-time' }, [
      h('label', {}, 'Time', h('input', {
        type: 'datetime-local', name: 'at', step: '0.001', required: true,
        min: toLocal(w.earliest), value: toLocal(w.latest || w.earliest),
      })),
      TP.field('As a new tenant with slug (empty: in place)', { name: 'slug' }),
    ], 'Restore to this time', async (v) => {
      const at = fromLocal(v.at);
      if (v.slug) return begin({ at, as_new: { slug: v.slug } });
      // In place: the tenant's data is replaced, so its slug is typed.
      TP.confirm({
        title: `Restore tenant ${t.slug} to ${TP.fmtTime(at)}?`, action: `Restore ${t.slug}`, typed: t.slug,
        text: `Tenant ${t.slug}'s database is replaced by its state as of ${new Date(at).toString()}. `
          + 'The tenant must be suspended or deleted first.',
        run: () => begin({ at }),
      });
    });
    if (outcomes[t.id]) show(status, error, outcomes[t.id]);
    TP.swap(box, facts, form, status, error);
  };
})();

// The servers page's rebalance: the plan (the moves that bring every server
// under a target utilisation with the fewest bytes moved, and where they
// leave each server) is shown first; applying it asks again, then follows
// the one operation that runs the moves.
'use strict';
(() => {
  const { h, api } = TP;
  const pct = (x) => `${(100 * x).toFixed(0)} %`;
  const mib = (n) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

  TP.rebalancePanel = function rebalancePanel(onDone) {
    const plan = h('div', { id: 'rebalance-plan' });
    const progress = h('div', { id: 'rebalance-progress', 'aria-live': 'polite' });

    function follow(opId) {
      const bar = h('progress', { max: 100, value: 0 });
      const text = h('span', {}, 'starting');
      TP.swap(progress, h('div', { class: 'barline' }, h('span', {}, 'rebalance'), bar, text));
      const stop = TP.every(1000, async () => {
        try {
          const op = await api('GET', `/v1/operations/${opId}`);
          const total = op.progress.total || 0;
          bar.value = total ? (100 * (op.progress.done || 0)) / total : (op.state === 'succeeded' ? 100 : 0);
          text.textContent = `${op.progress.done || 0}/${total} moves · ${op.state}` + (op.error ? ` · ${op.error.message}` : '');
          if (op.state !== 'queued' && op.state !== 'running') { stop(); onDone(); }
        } catch (e) { stop(); TP.showError(e); }
      });
    }

    function show(p, parallel) {
      const moves = TP.table(['Tenant', 'From', 'To', 'Bytes'], p.moves.map((m) =>
        h('tr', { 'data-move': m.slug }, h('td', {}, h('a', { href: `#/tenants/${m.tenant_id}` }, m.slug)),
          h('td', {}, m.from_name), h('td', {}, m.to_name), h('td', {}, mib(m.bytes)))),
      'No move is needed: every server is under the target.');
      const servers = TP.table(['Server', 'Now', 'After the plan'], p.servers.map((s) =>
        h('tr', { 'data-server': s.name }, h('td', {}, s.name), h('td', {}, pct(s.before)), h('td', {}, pct(s.after)))), '');
      const unresolved = p.unresolved.map((u) => h('p', { class: 'error' }, u));
      const apply = p.moves.length ? h('button', { type: 'button', id: 'rebalance-apply', class: 'danger', onclick: () => TP.confirm({
        title: `Move ${p.moves.length} tenant(s)?`, action: 'Rebalance',
        text: `${p.moves.length} tenant(s), ${mib(p.bytes)} in all, move ${parallel} at a time. Writes to each pause while it switches.`,
        run: async () => {
          const op = await api('POST', '/v1/servers/rebalance', { target: p.target, parallel });
          follow(op.id);
        },
      }) }, 'Apply plan…') : '';
      TP.swap(plan, h('p', { class: 'muted', id: 'rebalance-summary' },
        `Target ${pct(p.target)}: ${p.moves.length} move(s), ${mib(p.bytes)} to copy.`),
      moves, servers, ...unresolved, h('div', { class: 'actions' }, apply));
    }

    const form = TP.form({ id: 'rebalance-form', 'aria-label': 'Plan a rebalance' }, [
      TP.field('Target utilisation (%)', { name: 'target', type: 'number', min: 1, max: 100, value: 80 }),
      TP.field('Moves at once', { name: 'parallel', type: 'number', min: 1, max: 8, value: 2 }),
    ], 'Show plan', async (v) => {
      const target = Number(v.target) / 100;
      show(await api('GET', `/v1/servers/rebalance?target=${target}`), Number(v.parallel));
    });
    return h('section', { class: 'panel wide', 'aria-labelledby': 'h-rebalance' },
      h('h2', { id: 'h-rebalance' }, 'Rebalance by load'),
      h('p', { class: 'muted' }, 'Nothing moves until you apply the plan shown.'), form, plan, progress);
  };
})();

// The tenant page's usage: its quotas now (use against limit, and whether
// writes are refused) and its requests per hour over the last day, a bar
// chart the server draws (SVG) from the same report the API gives.
(() => {
  const { h, api } = TP;

  const quotaLabel = { storage_bytes: 'Storage', requests_per_month: 'Requests this month' };
  const mib = (n) => `${(n / (1024 * 1024)).toFixed(1)} MiB`;

  // A chart the server draws (SVG) for `path`, in a figure with `id`.
  // Parsed as SVG, never as HTML: nothing in it can run.
  TP.svgChart = async function svgChart(path, id, caption) {
    const res = await fetch(path, { headers: { Accept: 'image/svg+xml' }, credentials: 'same-origin' });
    if (!res.ok) throw new TP.ApiError(res.status, 'http_' + res.status, 'A chart could not be drawn.');
    const doc = new DOMParser().parseFromString(await res.text(), 'image/svg+xml');
    return h('figure', { class: 'chart-box', id }, document.importNode(doc.documentElement, true),
      h('figcaption', { class: 'muted' }, caption));
  };

  TP.usagePanel = async function usagePanel(t, box) {
    const report = await api('GET', `/v1/tenants/${t.id}/usage?granularity=hour`);
    const chart = await TP.svgChart(`/v1/tenants/${t.id}/usage?granularity=hour`, 'usage-chart',
      `Requests per hour, last 24 hours (${report.points.length} hours with any)`);
    const quotas = h('div', { id: 'usage-quotas' }, ...report.quotas.map((q) => {
      const line = q.quota === 'storage_bytes'
        ? TP.bar(quotaLabel[q.quota], mib(q.used), mib(q.limit), true)
        : TP.bar(quotaLabel[q.quota], q.used, q.limit, true);
      // TP.bar measures with its numbers: give it the raw ones.
      const fill = line.querySelector('.bar > span');
      fill.style.width = Math.min(100, (100 * q.used) / Math.max(1, q.limit)).toFixed(1) + '%';
      line.dataset.quota = q.quota;
      line.dataset.exceeded = String(q.exceeded);
      if (q.exceeded) line.append(h('span', { class: 'badge s-failed' }, 'writes refused'));
      return line;
    }));
    TP.swap(box, quotas, chart);
  };
})();

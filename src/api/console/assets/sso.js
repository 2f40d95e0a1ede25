// The tenant page's single sign-on panel: the tenant's own identity
// provider (or its root's), set, changed or removed through the same API
// as every client: `/v1/tenants/{id}/identity-provider`.
'use strict';
(() => {
  const { h, api } = TP;

  // Mappings as the operator writes them: one a line, `group = role`, or
  // `group = role @ subtenant-id`. The last `=` splits, so a group may hold one.
  const mappingLines = (mappings) => mappings.map((m) =>
    `${m.group} = ${m.role}${m.subtenant_id ? ' @ ' + m.subtenant_id : ''}`).join('\n');
  function parseMappings(text) {
    return text.split('\n').map((l) => l.trim()).filter(Boolean).map((line, i) => {
      const at = line.lastIndexOf('=');
      if (at < 1) throw new Error(`mapping line ${i + 1}: write it as "group = role" or "group = role @ subtenant-id"`);
      const [role, subtenant] = line.slice(at + 1).split('@').map((x) => x.trim());
      const m = { group: line.slice(0, at).trim(), role };
      if (subtenant) m.subtenant_id = subtenant;
      return m;
    });
  }

  TP.identityPanel = async function identityPanel(t, box) {
    let p = null;
    try {
      p = await api('GET', `/v1/tenants/${t.id}/identity-provider`);
    } catch (e) {
      if (!(e instanceof TP.ApiError && e.code === 'identity_provider_not_found')) throw e;
    }
    const own = p && !p.inherited;
    const facts = p ? h('dl', { class: 'facts', id: 'sso-facts' }, ...[
      ['Issuer', p.issuer + (p.inherited ? ' (its root\'s)' : '')],
      ['Keys', p.jwks_uri + (p.discovered ? ' (discovered)' : '')],
      ['Audience', p.audience], ['User claim', p.user_claim], ['Groups claim', p.groups_claim],
      ['Console client', p.client_id ? `${p.client_id}${p.client_secret_set ? ' (confidential)' : ' (public, PKCE)'}` : 'none: no console sign-in'],
      ['Sign-in', p.client_id ? h('a', { href: `/console/sign-in?tenant=${encodeURIComponent(t.slug)}` }, `/console/sign-in?tenant=${t.slug}`) : '—'],
    ].flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])) : h('p', { class: 'muted', id: 'sso-none' },
      'No identity provider: people sign in with API keys or the installation\'s tokens.');
    const rows = (p ? p.mappings : []).map((m) => h('tr', {}, h('td', {}, m.group), h('td', {}, m.role),
      h('td', { class: 'mono' }, m.subtenant_id || 'whole tenant')));
    const mappings = p ? TP.table(['Group', 'Role', 'Held to'], rows, 'No mappings: only the first admin gets in.') : '';
    const fields = [
      TP.field('Issuer', { name: 'issuer', required: true, value: own ? p.issuer : '', placeholder: 'the OpenID issuer URL' }),
      TP.field('Keys URL (blank: discovery)', { name: 'jwks_uri', value: own && !p.discovered ? p.jwks_uri : '' }),
      TP.field('Audience', { name: 'audience', required: true, value: own ? p.audience : 'tenant-plane' }),
      TP.field('User claim', { name: 'user_claim', value: own ? p.user_claim : 'sub' }),
      TP.field('Groups claim', { name: 'groups_claim', value: own ? p.groups_claim : 'groups' }),
      h('label', {}, 'Mappings, one a line: group = role [@ subtenant-id]',
        h('textarea', { name: 'mappings', id: 'sso-mappings', spellcheck: 'false' }, own ? mappingLines(p.mappings) : '')),
      TP.field('Console client id', { name: 'client_id', value: own && p.client_id ? p.client_id : '' }),
      TP.field('Client secret (blank: keep)', { name: 'client_secret', type: 'password', autocomplete: 'off' }),
    ];
    if (!t.parent_id) {
      fields.push(h('label', {}, h('input', { type: 'checkbox', name: 'subtenants_may_override', checked: !!(own && p.subtenants_may_override) }),
        ' Subtenants may set their own'));
    }
    const form = TP.form({ id: 'sso-form', 'aria-label': 'Set the identity provider' }, fields,
      own ? 'Save provider' : 'Set provider', async (v) => {
        const body = { issuer: v.issuer.trim(), audience: v.audience.trim(), mappings: parseMappings(v.mappings || '') };
        for (const k of ['jwks_uri', 'user_claim', 'groups_claim', 'client_id', 'client_secret']) {
          if (v[k] && v[k].trim()) body[k] = v[k].trim();
        }
        if (!t.parent_id) body.subtenants_may_override = v.subtenants_may_override === 'on';
        await api('PUT', `/v1/tenants/${t.id}/identity-provider`, body);
        await identityPanel(t, box);
      });
    const remove = own ? h('button', { type: 'button', id: 'sso-remove', onclick: () => TP.confirm({
      title: `Remove ${t.slug}'s identity provider?`, action: 'Remove',
      text: `Tokens of ${p.issuer} stop working for ${t.slug} at once${t.parent_id ? '; it uses its root\'s provider again' : ''}.`,
      run: async () => { await api('DELETE', `/v1/tenants/${t.id}/identity-provider`); await identityPanel(t, box); },
    }) }, 'Remove provider') : '';
    TP.swap(box, facts, mappings, form, remove);
  };
})();

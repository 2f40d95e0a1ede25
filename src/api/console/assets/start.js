// The sign-in page, and the console's start.
'use strict';
(() => {
  const { h } = TP;

  TP.pages.push([/^#\/sign-in$/, async (view) => {
    document.getElementById('top').hidden = true;
    const error = h('p', { class: 'error', role: 'alert', id: 'sign-in-error' });
    const credential = h('textarea', { name: 'credential', id: 'credential', required: true,
      autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'credential-help' });
    const form = h('form', { class: 'panel signin', id: 'sign-in' },
      h('h1', {}, 'Sign in to tenant-plane'),
      h('label', { for: 'credential' }, 'Token or API key'), credential,
      h('p', { class: 'muted', id: 'credential-help' },
        'A super_admin token sees the whole fleet; a tenant_admin token or API key sees its own tenant. ',
        'It is kept in an HttpOnly cookie, never in this page.'),
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'), error);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      error.textContent = '';
      try {
        TP.session = await TP.api('POST', '/console/session', { credential: credential.value.trim() });
        location.hash = TP.home();
      } catch (e) { TP.showError(e, error); }
    });
    // Single sign-on: the tenant's own identity provider signs its admins
    // in; the browser goes there and comes back with the session cookie.
    const slug = h('input', { name: 'tenant', id: 'sso-tenant', required: true,
      autocomplete: 'organization', spellcheck: 'false', pattern: '[a-z][a-z0-9\\-]{1,62}',
      'aria-describedby': 'sso-help' });
    const sso = h('form', { class: 'panel signin', id: 'sso-sign-in' },
      h('h2', {}, 'Single sign-on'),
      h('label', { for: 'sso-tenant' }, 'Tenant'), slug,
      h('p', { class: 'muted', id: 'sso-help' },
        "Your tenant's slug: you sign in at your company's identity provider."),
      h('button', { type: 'submit', id: 'sso-continue' }, 'Continue with your identity provider'));
    sso.addEventListener('submit', (ev) => {
      ev.preventDefault();
      location.assign('/console/sign-in?tenant=' + encodeURIComponent(slug.value.trim()));
    });
    view.append(form, sso);
    credential.focus();
  }]);

  document.getElementById('sign-out').addEventListener('click', TP.signOut);
  // The skip link moves the focus; it must not change the route.
  document.querySelector('.skip').addEventListener('click', (ev) => {
    ev.preventDefault();
    document.getElementById('main').focus();
  });
  window.addEventListener('hashchange', TP.render);
  TP.render();
})();

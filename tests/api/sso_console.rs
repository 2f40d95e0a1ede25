//! The console's sign-in through a tenant's own identity provider, in
//! Chromium against a real OpenID provider (npm's oidc-provider, with its
//! own login form): the authorization code flow with PKCE, state and
//! nonce, ending in the console's session cookie; and that cookie, once
//! signed out, refused when replayed.

use reqwest::Method;
use serde_json::json;

use crate::helpers::spawn_app_with;
use crate::kit::browser;
use crate::kit::console::with_cookie;
use crate::kit::oidc::{
    allow_loopback, console_client, provider_body, set_provider, OidcProvider, CLIENT_SECRET,
};
use crate::kit::ok_json;

#[tokio::test]
async fn a_tenant_admin_signs_in_to_the_console_through_its_provider_and_a_signed_out_cookie_is_refused(
) {
    let Some(b) = browser::start().await else {
        return;
    };
    let app = spawn_app_with(allow_loopback).await;
    let tenant = app.create_tenant("acme-sso", json!({})).await;
    let id = tenant["id"].as_str().unwrap();
    let callback = app.url("/console/sign-in/callback");
    let ana = json!({ "groups": ["care-admins"], "preferred_username": "ana", "email": "ana@acme.example" });
    let idp = OidcProvider::start(
        vec![console_client("tenant-plane-console", &callback)],
        json!({ "ana": ana }),
    );
    let body = json!({
        "issuer": idp.issuer(), "audience": "tenant-plane",
        "client_id": "tenant-plane-console", "client_secret": CLIENT_SECRET,
        "user_claim": "preferred_username",
        "mappings": [{ "group": "care-admins", "role": "tenant_admin" }],
    });
    let set = ok_json(set_provider(&app, id, &body).await, 200).await;
    assert_eq!(set["client_secret_set"], true);
    assert!(
        !set.to_string().contains(CLIENT_SECRET),
        "the secret is never shown: {set}"
    );

    // A link opened from elsewhere (here: typed) first shows where it goes.
    b.client
        .goto(&app.url("/console/sign-in?tenant=acme-sso"))
        .await
        .unwrap();
    b.until(
        "the page naming the provider",
        20,
        "return !!document.querySelector('#provider-host')",
    )
    .await;
    b.click("#continue").await;
    let at_provider = format!(
        "return location.origin === {} && !!document.querySelector('input[name=login]')",
        json!(idp.issuer())
    );
    b.until(
        "the provider's login form, from that page",
        20,
        &at_provider,
    )
    .await;

    // From the console's own sign-in page, straight to the provider.
    b.client.goto(&app.url("/console/#/sign-in")).await.unwrap();
    b.until(
        "the sign-in page",
        20,
        "return !!document.querySelector('#sso-tenant')",
    )
    .await;
    b.type_into("#sso-tenant", "acme-sso").await;
    b.click("#sso-continue").await;
    // The provider's own login form, on the provider's origin.
    b.until("the provider's login form", 20, &at_provider).await;
    b.type_into("input[name=login]", "ana").await;
    b.type_into("input[name=password]", "any password").await;
    b.click("button.login-submit").await;
    b.until(
        "the provider's consent form",
        20,
        "return !!document.querySelector('input[name=prompt][value=consent]')",
    )
    .await;
    b.click("button.login-submit").await;
    // Back in the console, signed in as the provider's user.
    let home = format!(
        "return location.origin === {} && (document.querySelector('#who') || {{}}).textContent.includes('ana')",
        json!(app.address)
    );
    b.until("the console, signed in as ana", 30, &home).await;
    let (status, session) = b.fetch("/console/session").await;
    assert_eq!(
        (status, session["role"].as_str()),
        (200, Some("tenant_admin")),
        "{session}"
    );
    assert_eq!(session["tenant_id"], id);

    let cookies = b.client.get_all_cookies().await.unwrap();
    let session_cookie = cookies
        .iter()
        .find(|c| c.name() == "tp_session")
        .expect("the session cookie");
    assert_eq!(session_cookie.http_only(), Some(true));
    let copy = format!("tp_session={}", session_cookie.value());
    let replayed = with_cookie(&app, Method::GET, "/console/session", &copy, None, None).await;
    assert_eq!(
        replayed.status(),
        200,
        "a copy works while the session lasts"
    );

    b.click("#sign-out").await;
    b.until(
        "the sign-in page again",
        20,
        "return location.hash === '#/sign-in'",
    )
    .await;
    let replayed = with_cookie(&app, Method::GET, "/console/session", &copy, None, None).await;
    assert_eq!(
        replayed.status(),
        401,
        "a signed-out session's cookie is refused"
    );
    let audit = ok_json(app.admin(Method::GET, "/v1/fleet/audit", None).await, 200).await;
    let signed_in = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "console.sign_in" && e["user_id"] == "ana");
    assert!(signed_in, "{audit}");
    b.close().await;
}

#[tokio::test]
async fn a_callback_without_its_sign_in_with_another_state_or_another_issuer_is_refused_and_a_link_from_elsewhere_gets_a_page_naming_the_provider(
) {
    let app = spawn_app_with(allow_loopback).await;
    let forged = app
        .request(Method::GET, "/console/sign-in/callback?state=x&code=y")
        .send()
        .await;
    let (status, code, _) = crate::helpers::envelope(forged).await;
    assert_eq!((status, code.as_str()), (403, "sign_in_failed"));
    let unknown = app
        .request(Method::GET, "/console/sign-in?tenant=no-such-tenant")
        .send()
        .await;
    let (status, code, _) = crate::helpers::envelope(unknown).await;
    assert_eq!((status, code.as_str()), (404, "tenant_not_found"));

    // A sign-in begun for real, answered wrongly.
    let tenant = app.create_tenant("sso-callback", json!({})).await;
    let callback = app.url("/console/sign-in/callback");
    let idp = OidcProvider::start(vec![console_client("console", &callback)], json!({}));
    let mut body = provider_body(&idp.issuer(), json!([]));
    body["client_id"] = "console".into();
    ok_json(
        set_provider(&app, tenant["id"].as_str().unwrap(), &body).await,
        200,
    )
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A link from anywhere but the console's own pages (a mail, another
    // site) gets a page that names the provider, not a redirect.
    for from in [None, Some("cross-site"), Some("none"), Some("same-site")] {
        let mut request = no_redirects.get(app.url("/console/sign-in?tenant=sso-callback"));
        if let Some(from) = from {
            request = request.header("sec-fetch-site", from);
        }
        let page = request.send().await.unwrap();
        assert_eq!(page.status(), 200, "{from:?}");
        assert!(page.headers().get("location").is_none(), "{from:?}");
        let kind = page.headers()["content-type"].to_str().unwrap();
        assert!(kind.starts_with("text/html"), "{kind}");
        let html = page.text().await.unwrap();
        let host = reqwest::Url::parse(&idp.issuer()).unwrap();
        let host = host.host_str().unwrap();
        assert!(
            html.contains(&format!("<strong id=\"provider-host\">{host}</strong>")),
            "{html}"
        );
        let href = html
            .split("id=\"continue\" href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("a link on to the provider")
            .replace("&amp;", "&");
        assert!(
            href.starts_with(&format!("{}/auth?", idp.issuer())),
            "{href}"
        );
    }
    // From the console's own sign-in page: straight to the provider.
    let started = no_redirects
        .get(app.url("/console/sign-in?tenant=sso-callback"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    let location = started.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&format!("{}/auth?", idp.issuer())),
        "{location}"
    );
    for needed in [
        "code_challenge=",
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "scope=openid",
    ] {
        assert!(location.contains(needed), "{needed} in {location}");
    }
    let pending = started.headers()["set-cookie"].to_str().unwrap();
    let cookie = pending.split(';').next().unwrap().to_string();
    assert!(
        pending.contains("HttpOnly") && pending.contains("SameSite=Lax"),
        "{pending}"
    );
    let state = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let answer = |query: String| {
        let request = no_redirects
            .get(app.url(&format!("/console/sign-in/callback?{query}")))
            .header("cookie", &cookie);
        async move { crate::helpers::envelope(request.send().await.unwrap()).await }
    };
    let other_state = answer("state=another&code=c".into()).await;
    assert_eq!(
        (other_state.0, other_state.1.as_str()),
        (403, "sign_in_failed")
    );
    let other_issuer = answer(format!(
        "state={state}&code=c&iss=https%3A%2F%2Fevil.example"
    ))
    .await;
    assert_eq!(
        (other_issuer.0, other_issuer.1.as_str()),
        (403, "sign_in_failed")
    );
    let denied = answer(format!("state={state}&error=access_denied")).await;
    assert_eq!((denied.0, denied.1.as_str()), (403, "sign_in_failed"));
    // The right state and issuer, but a code the provider never issued.
    let iss: String = url_encoded(&idp.issuer());
    let bad_code = answer(format!("state={state}&code=made-up&iss={iss}")).await;
    assert_eq!((bad_code.0, bad_code.1.as_str()), (502, "sign_in_failed"));
}

fn url_encoded(value: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", value)])
        .unwrap()
        .query()
        .unwrap()
        .trim_start_matches("v=")
        .to_string()
}

#[tokio::test]
async fn a_tenant_admin_sets_and_removes_the_tenants_provider_on_its_console_page() {
    let app = spawn_app_with(allow_loopback).await;
    let made = app
        .admin(
            Method::POST,
            "/v1/tenants",
            Some(json!({ "name": "Panel", "slug": "sso-panel",
                "admin": { "subject": "pat", "email": "pat@panel.example" } })),
        )
        .await;
    let made = ok_json(made, 201).await;
    let id = made["id"].as_str().unwrap().to_string();
    let key = made["admin_key"]["key"].as_str().unwrap().to_string();
    let idp = OidcProvider::start(vec![], json!({}));
    let Some(b) = browser::start().await else {
        return;
    };
    browser::sign_in(&b, &app.url("/console/"), &key).await;
    b.client
        .goto(&app.url(&format!("/console/#/tenants/{id}")))
        .await
        .unwrap();
    b.until(
        "the single sign-on form",
        20,
        "return !!document.querySelector('#sso-form') && !!document.querySelector('#sso-none')",
    )
    .await;
    b.type_into("#sso-form input[name=issuer]", &idp.issuer())
        .await;
    b.type_into(
        "#sso-mappings",
        "care-admins = tenant_admin\nsupport = viewer",
    )
    .await;
    b.click("#sso-form button[type=submit]").await;
    let shown = format!(
        "const f = document.querySelector('#sso-facts'); return !!f && f.textContent.includes({})",
        json!(idp.issuer())
    );
    b.until("the provider, set", 20, &shown).await;
    let rows = b
        .eval("return [...document.querySelectorAll('#tenant-sso tbody tr')].map((r) => [r.cells[0].textContent, r.cells[1].textContent])")
        .await;
    assert_eq!(
        rows,
        json!([["care-admins", "tenant_admin"], ["support", "viewer"]])
    );
    b.screenshot_at("tenant-sso", "#tenant-sso").await;
    let path = format!("/v1/tenants/{id}/identity-provider");
    let api = ok_json(app.admin(Method::GET, &path, None).await, 200).await;
    assert_eq!(
        api["mappings"][1],
        json!({ "group": "support", "role": "viewer" })
    );
    assert_eq!(api["jwks_uri"], format!("{}/jwks", idp.issuer()));

    b.click("#sso-remove").await;
    b.until(
        "the confirmation",
        10,
        "return document.querySelector('#confirm').open",
    )
    .await;
    b.click("#confirm-ok").await;
    b.until(
        "no provider",
        20,
        "return !!document.querySelector('#sso-none')",
    )
    .await;
    assert_eq!(app.admin(Method::GET, &path, None).await.status(), 404);
    b.close().await;
}

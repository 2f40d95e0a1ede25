//! Asymmetric tokens: RS256, ES256 and EdDSA keys in a JWKS file, verified
//! by `kid`; rotation without a restart; `iss`, `aud` and `nbf`; and the
//! `token` command signing with the newest key it holds. The keys are made
//! at test time by `openssl genpkey`, in PKCS#8 PEM, and published as JWKs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::{envelope, spawn_app_with, TestApp, JWT_SECRET};
use crate::kit::binary::{command, run};
use crate::kit::keys::{write_jwks, TestKey};

fn super_admin(extra: Value) -> Value {
    let now = chrono::Utc::now().timestamp();
    let mut claims =
        json!({ "sub": "issuer-test", "role": "super_admin", "exp": now + 600, "iat": now });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

async fn status_with(app: &TestApp, token: &str) -> u16 {
    app.get("/v1/servers", Some(token)).await.status().as_u16()
}

/// Polls until `token` gets `want`, for at most 15 s (the file is read every second).
async fn until_status(app: &TestApp, token: &str, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = status_with(app, token).await;
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "still {got}, not {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn jwks_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("jwks.json")
}

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_are_verified_by_their_kid_and_forged_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rsa = TestKey::generate(dir.path(), "rsa-1", Algorithm::RS256);
    let ec = TestKey::generate(dir.path(), "ec-1", Algorithm::ES256);
    let ed = TestKey::generate(dir.path(), "ed-1", Algorithm::EdDSA);
    let stranger = TestKey::generate(dir.path(), "rsa-1", Algorithm::RS256);
    write_jwks(&jwks_path(&dir), &[&rsa, &ec, &ed]);
    let path = jwks_path(&dir);
    let app = spawn_app_with(|s| s.jwt_public_keys = Some(path)).await;

    for key in [&rsa, &ec, &ed] {
        let token = key.mint(&super_admin(json!({})), None);
        assert_eq!(status_with(&app, &token).await, 200, "{:?}", key.alg);
    }
    // HS256 with the installation's secret stays accepted.
    assert_eq!(status_with(&app, &app.super_admin_token()).await, 200);

    let forged = [
        (
            "an unknown kid",
            rsa.mint(&super_admin(json!({})), Some("nobody")),
        ),
        (
            "another key with a listed kid",
            stranger.mint(&super_admin(json!({})), None),
        ),
        (
            "an EC key's kid on an RSA signature",
            rsa.mint(&super_admin(json!({})), Some("ec-1")),
        ),
        (
            "a token that expired",
            ed.mint(&super_admin(json!({ "exp": 1000 })), None),
        ),
        (
            "a token not valid yet",
            ec.mint(
                &super_admin(json!({ "nbf": chrono::Utc::now().timestamp() + 3600 })),
                None,
            ),
        ),
    ];
    for (what, token) in forged {
        let (status, code, _) = envelope(app.get("/v1/servers", Some(&token)).await).await;
        assert_eq!(status, 401, "{what}: {code}");
    }
    // The RSA public key used as an HMAC secret (algorithm confusion).
    let public = serde_json::to_vec(&rsa.jwk()).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(
        &header,
        &super_admin(json!({})),
        &EncodingKey::from_secret(&public).unwrap(),
    )
    .unwrap();
    assert_eq!(status_with(&app, &confused).await, 401);
}

#[tokio::test]
async fn a_rotated_out_key_keeps_working_until_it_leaves_the_jwks_then_its_tokens_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let old = TestKey::generate(dir.path(), "2026-old", Algorithm::ES256);
    let new = TestKey::generate(dir.path(), "2026-new", Algorithm::EdDSA);
    let path = jwks_path(&dir);
    write_jwks(&path, &[&old]);
    let app = spawn_app_with(|s| s.jwt_public_keys = Some(path.clone())).await;
    let old_token = old.mint(&super_admin(json!({})), None);
    let new_token = new.mint(&super_admin(json!({})), None);
    assert_eq!(status_with(&app, &old_token).await, 200);
    assert_eq!(status_with(&app, &new_token).await, 401);

    // Both keys at once: both tokens work, with no restart.
    write_jwks(&path, &[&old, &new]);
    until_status(&app, &new_token, 200).await;
    assert_eq!(status_with(&app, &old_token).await, 200);

    // A broken edit keeps the keys that were good.
    std::fs::write(&path, b"{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(status_with(&app, &old_token).await, 200);

    // The old key leaves: its token, though verified and remembered, is refused.
    write_jwks(&path, &[&new]);
    until_status(&app, &old_token, 401).await;
    assert_eq!(status_with(&app, &new_token).await, 200);
}

#[tokio::test]
async fn a_configured_issuer_and_audience_are_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let key = TestKey::generate(dir.path(), "rsa-iss", Algorithm::RS256);
    let path = jwks_path(&dir);
    write_jwks(&path, &[&key]);
    let app = spawn_app_with(|s| {
        s.jwt_public_keys = Some(path);
        s.jwt_issuer = Some("https://login.example.test".into());
        s.jwt_audience = Some("tenant-plane".into());
    })
    .await;
    let good = json!({ "iss": "https://login.example.test", "aud": "tenant-plane" });
    assert_eq!(
        status_with(&app, &key.mint(&super_admin(good), None)).await,
        200
    );
    let list_aud =
        json!({ "iss": "https://login.example.test", "aud": ["billing", "tenant-plane"] });
    assert_eq!(
        status_with(&app, &key.mint(&super_admin(list_aud), None)).await,
        200
    );
    for bad in [
        json!({}),
        json!({ "aud": "tenant-plane" }),
        json!({ "iss": "https://login.example.test" }),
        json!({ "iss": "https://evil.example.test", "aud": "tenant-plane" }),
        json!({ "iss": "https://login.example.test", "aud": "billing" }),
    ] {
        let token = key.mint(&super_admin(bad.clone()), None);
        assert_eq!(status_with(&app, &token).await, 401, "{bad}");
    }
    // An HS256 token must say the same.
    assert_eq!(status_with(&app, &app.super_admin_token()).await, 401);
}

#[tokio::test]
async fn the_token_command_signs_with_the_newest_jwks_key_it_holds_a_private_key_for() {
    let keys_dir = tempfile::tempdir().unwrap();
    let private = tempfile::tempdir().unwrap();
    let old = TestKey::generate(keys_dir.path(), "k1", Algorithm::RS256);
    let new = TestKey::generate(keys_dir.path(), "k2", Algorithm::ES256);
    let path = jwks_path(&keys_dir);
    write_jwks(&path, &[&old, &new]);
    let mint = || {
        let mut cmd = command();
        cmd.args(["token", "--role", "super_admin"])
            .env("TENANT_PLANE_JWT_SECRET", JWT_SECRET)
            .env("TENANT_PLANE_JWT_PUBLIC_KEYS", &path)
            .env("TENANT_PLANE_JWT_PRIVATE_KEYS", private.path());
        cmd
    };
    // Holding no private key is an error that names the folder.
    let (code, _, stderr) = run(&mut mint()).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("k1") && stderr.contains("k2"), "{stderr}");
    // Only the old key's private half: it signs with that.
    std::fs::write(private.path().join("k1.pem"), &old.pem).unwrap();
    let (code, stdout, stderr) = run(&mut mint()).await;
    assert_eq!(code, 0, "{stderr}");
    let header = jsonwebtoken::decode_header(stdout.trim()).unwrap();
    assert_eq!(
        (header.alg, header.kid.as_deref()),
        (Algorithm::RS256, Some("k1"))
    );
    // Both: the newest (the last in the JWKS).
    std::fs::write(private.path().join("k2.pem"), &new.pem).unwrap();
    let (code, stdout, stderr) = run(&mut mint()).await;
    assert_eq!(code, 0, "{stderr}");
    let token = stdout.trim();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(
        (header.alg, header.kid.as_deref()),
        (Algorithm::ES256, Some("k2"))
    );
    let public = tenant_plane::auth::jwks::PublicKeys::load(&path).unwrap();
    let verifier = tenant_plane::auth::JwtKeys::hs256(&JWT_SECRET.to_string().into())
        .unwrap()
        .with_public_keys(public);
    assert_eq!(
        verifier.verify(token).unwrap().role,
        tenant_plane::auth::Role::SuperAdmin
    );
}

#[tokio::test]
async fn an_hs256_token_whose_header_names_a_kid_is_refused_even_when_signed_with_the_installation_secret(
) {
    let dir = tempfile::tempdir().unwrap();
    let rsa = TestKey::generate(dir.path(), "rsa-1", Algorithm::RS256);
    let path = jwks_path(&dir);
    write_jwks(&path, &[&rsa]);
    let app = spawn_app_with(|s| s.jwt_public_keys = Some(path.clone())).await;
    let hs256 = |kid: &str| {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(kid.into());
        jsonwebtoken::encode(
            &header,
            &super_admin(json!({})),
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()).unwrap(),
        )
        .unwrap()
    };
    let (named, unknown) = (hs256("rsa-1"), hs256("nobody"));
    for token in [&named, &unknown] {
        let (status, code, _) = envelope(app.get("/v1/servers", Some(token)).await).await;
        assert_eq!((status, code.as_str()), (401, "invalid_token"));
    }
    // The same secret with no kid is the installation's own token.
    assert_eq!(status_with(&app, &app.super_admin_token()).await, 200);
}

#[tokio::test]
async fn a_key_replaced_under_the_same_kid_refuses_the_old_keys_tokens_once_the_file_is_read_again()
{
    let dir = tempfile::tempdir().unwrap();
    let old = TestKey::generate(dir.path(), "signing", Algorithm::ES256);
    let new = TestKey::generate(dir.path(), "signing", Algorithm::ES256);
    let path = jwks_path(&dir);
    write_jwks(&path, &[&old]);
    let app = spawn_app_with(|s| s.jwt_public_keys = Some(path.clone())).await;
    let old_token = old.mint(&super_admin(json!({})), None);
    let new_token = new.mint(&super_admin(json!({})), None);
    // Verified, and so remembered.
    assert_eq!(status_with(&app, &old_token).await, 200);
    assert_eq!(status_with(&app, &new_token).await, 401);

    write_jwks(&path, &[&new]);
    until_status(&app, &new_token, 200).await;
    assert_eq!(status_with(&app, &old_token).await, 401);
    // An unrelated edit that keeps the key keeps its tokens working.
    let other = TestKey::generate(dir.path(), "other", Algorithm::EdDSA);
    write_jwks(&path, &[&new, &other]);
    until_status(&app, &other.mint(&super_admin(json!({})), None), 200).await;
    assert_eq!(status_with(&app, &new_token).await, 200);
}

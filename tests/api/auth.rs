//! Control-plane routes need a valid super_admin token; every bad token gets
//! 401 and every wrong role 403, both in the envelope.

use tenant_plane::auth::{Claims, Role};
use tenant_plane::domain::TenantId;

use crate::helpers::{envelope, sign, spawn_app};

/// Made with PyJWT 2 (`jwt.encode(claims, JWT_SECRET, algorithm="HS256")`),
/// claims `{"sub":"ext-operator","role":"super_admin","exp":4102444800,"iat":1700000000}`.
const EXTERNAL_SUPER_ADMIN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJleHQtb3BlcmF0b3IiLCJyb2xlIjoic3VwZXJfYWRtaW4iLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTcwMDAwMDAwMH0.W1dV0z6rJ-9_SLeQbHf-JdRJ_Vx0bWvYWC0Mvj9AanM";

/// Made with PyJWT 2: an agent of one tenant with a `permissions` claim.
const EXTERNAL_AGENT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJleHQtYWdlbnQiLCJ0ZW5hbnRfaWQiOiIwMTkwZjZhNC0yYzFlLTdhM2ItOWQ0ZS01ZjZhN2I4YzlkMGUiLCJyb2xlIjoiYWdlbnQiLCJwZXJtaXNzaW9ucyI6W3sicmVzb3VyY2UiOiJjYWxscyIsImFjdGlvbnMiOlsicmVhZCJdLCJzY29wZSI6Im93biJ9XSwiZXhwIjo0MTAyNDQ0ODAwfQ.aQYqnoX_dA3zkWZ8pUsmrRZ1X1U6IbhWErRYTqEut3A";

/// Made with PyJWT 2 with the right secret but HS512: the algorithm is pinned.
const EXTERNAL_HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJleHQtb3BlcmF0b3IiLCJyb2xlIjoic3VwZXJfYWRtaW4iLCJleHAiOjQxMDI0NDQ4MDB9.1x3PPSD_TieDK2CbGyp2rpGaxT5Z1d5jiMV8BUpyLD4BDQkS2QbtHHIl0HSWiJnwRo6sZRyZbVGt1Q5KoB86pw";

/// URL-safe base64 without padding, as JWT segments are written.
fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn claims(role: Role, exp_from_now: i64) -> Claims {
    let mut claims = Claims::new("u1", role, None, None, std::time::Duration::from_secs(60));
    claims.exp = chrono::Utc::now().timestamp() + exp_from_now;
    claims
}

async fn status_and_code(app: &crate::helpers::TestApp, auth: Option<&str>) -> (u16, String) {
    let mut req = app.client.get(app.url("/v1/servers"));
    if let Some(value) = auth {
        req = req.header("Authorization", value);
    }
    let response = req.send().await.unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        return (200, String::new());
    }
    if status == 401 {
        assert_eq!(
            response.headers().get("www-authenticate").unwrap(),
            "Bearer",
            "401 names the scheme"
        );
    }
    let (_, code, _) = envelope(response).await;
    (status, code)
}

#[tokio::test]
async fn every_bad_token_on_a_control_plane_route_gets_401_in_the_envelope() {
    let app = spawn_app().await;
    let valid = sign(claims(Role::SuperAdmin, 300));
    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body_super = b64(br#"{"sub":"x","role":"super_admin","exp":4102444800}"#);
    let (head, rest) = valid.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("no header", None, "missing_credentials"),
        (
            "not bearer",
            Some(format!("Basic {}", b64(b"a:b"))),
            "invalid_token",
        ),
        ("garbage", Some("Bearer not-a-jwt".into()), "invalid_token"),
        ("empty bearer", Some("Bearer ".into()), "invalid_token"),
        (
            "expired",
            Some(format!("Bearer {}", sign(claims(Role::SuperAdmin, -3600)))),
            "token_expired",
        ),
        (
            "wrong signature",
            Some(format!("Bearer {head}.{body_super}.{signature}")),
            "invalid_token",
        ),
        (
            "alg none",
            Some(format!("Bearer {header_none}.{body_super}.")),
            "invalid_token",
        ),
        (
            "alg HS512",
            Some(format!("Bearer {EXTERNAL_HS512}")),
            "invalid_token",
        ),
        (
            "no exp",
            Some(format!(
                "Bearer {head}.{}.{signature}",
                b64(br#"{"sub":"x","role":"super_admin"}"#)
            )),
            "invalid_token",
        ),
        (
            "tenant role without tenant",
            Some(format!("Bearer {}", sign(claims(Role::TenantAdmin, 300)))),
            "invalid_token",
        ),
    ];
    for (name, header, expected) in cases {
        let (status, code) = status_and_code(&app, header.as_deref()).await;
        assert_eq!((status, code.as_str()), (401, expected), "case: {name}");
    }
    assert_eq!(
        status_and_code(&app, Some(&format!("Bearer {valid}")))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_wrong_role_on_a_control_plane_route_gets_403_in_the_envelope() {
    let app = spawn_app().await;
    let tenant = TenantId::generate();
    let sub = TenantId::generate();
    for role in [
        Role::TenantAdmin,
        Role::SubtenantAdmin,
        Role::Agent,
        Role::Viewer,
    ] {
        let token = app.token(role, Some(tenant), Some(sub));
        let (status, code) = status_and_code(&app, Some(&format!("Bearer {token}"))).await;
        assert_eq!((status, code.as_str()), (403, "forbidden"), "{role:?}");
    }
}

#[tokio::test]
async fn a_token_minted_by_another_jwt_library_is_accepted() {
    let app = spawn_app().await;
    let (status, _) = status_and_code(&app, Some(&format!("Bearer {EXTERNAL_SUPER_ADMIN}"))).await;
    assert_eq!(status, 200);
    // The agent token parses (claims, permissions) and is refused only for its role.
    let (status, code) = status_and_code(&app, Some(&format!("Bearer {EXTERNAL_AGENT}"))).await;
    assert_eq!((status, code.as_str()), (403, "forbidden"));
}

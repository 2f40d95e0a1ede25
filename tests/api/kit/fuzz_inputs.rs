//! What the fuzz test sends: proptest strategies for requests over every
//! route the spec lists, with their methods, path segments, credentials,
//! headers, bodies and queries.

use proptest::prelude::*;
use reqwest::Method;
use serde_json::Value;
use tenant_plane::auth::Role;

/// A route the spec lists, with its methods; the fuzz test adds one no
/// route serves.
pub type Routes = std::sync::Arc<Vec<(String, Vec<Method>)>>;

/// One generated request, before the fixture's ids are filled in.
#[derive(Debug, Clone)]
pub struct Generated {
    pub method: Method,
    pub route: usize,
    pub segment: Segment,
    pub credential: Credential,
    pub tenant_header: Option<Segment>,
    pub body: Body,
    pub query: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Segment {
    OwnTenant,
    OtherTenant,
    RandomUuid,
    Text(String),
}

#[derive(Debug, Clone)]
pub enum Credential {
    None,
    Role(Role),
    OtherTenantAdmin,
    Expired,
    Garbage(String),
    FakeApiKey,
}

#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Bytes(Vec<u8>),
    WrongType(Value),
}

fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop::sample::select(vec![
        "name",
        "slug",
        "tier",
        "type",
        "status",
        "agent_id",
        "settings",
        "server",
        "dsn",
        "duration",
        "configuration",
        "role",
        "permissions",
        "domain",
        "target_version",
        "dry_run",
        "concurrency",
        "canary",
        "customer_phone",
        "state",
        "capacity",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "[a-z0-9-]{0,12}".prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        prop::sample::select(vec![
            "free",
            "standard",
            "enterprise",
            "voice",
            "chat",
            "in_progress",
            "completed",
            "draining"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(keys.clone(), inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

fn segment() -> impl Strategy<Value = Segment> {
    prop_oneof![
        3 => Just(Segment::OwnTenant),
        2 => Just(Segment::OtherTenant),
        2 => Just(Segment::RandomUuid),
        1 => prop::sample::select(vec!["", "%00", "..%2F..", "not-a-uuid", "00000000-0000-0000-0000-000000000000", "%F0%9F%92%A9", "'; DROP TABLE tenants; --"])
            .prop_map(|s| Segment::Text(s.to_string())),
        1 => "[a-zA-Z0-9%._~-]{1,300}".prop_map(Segment::Text),
    ]
}

pub fn generated(routes: Routes) -> impl Strategy<Value = Generated> {
    let method = prop::sample::select(vec![
        Method::GET,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::PUT,
    ]);
    let credential = prop_oneof![
        1 => Just(Credential::None),
        4 => prop::sample::select(vec![Role::SuperAdmin, Role::TenantAdmin, Role::SubtenantAdmin, Role::Agent, Role::Viewer]).prop_map(Credential::Role),
        1 => Just(Credential::OtherTenantAdmin),
        1 => Just(Credential::Expired),
        1 => "[ -~]{0,64}".prop_map(Credential::Garbage),
        1 => Just(Credential::FakeApiKey),
    ];
    let body = prop_oneof![
        2 => Just(Body::None),
        4 => json_value().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
        1 => json_value().prop_map(Body::WrongType),
    ];
    let query = prop::option::of(prop_oneof![
        "[a-z_]{1,10}=[a-zA-Z0-9%-]{0,20}",
        Just("limit=-1".to_string()),
        Just("limit=99999999999".to_string()),
        Just("from=yesterday&to=%ZZ".to_string()),
        Just("status=bogus".to_string()),
        Just("cursor=not-a-uuid".to_string()),
    ]);
    let pick = (any::<bool>(), any::<prop::sample::Index>());
    (
        (method, pick),
        0..routes.len(),
        segment(),
        credential,
        prop::option::of(segment()),
        body,
        query,
    )
        .prop_map(
            move |(
                (method, (any_method, index)),
                route,
                segment,
                credential,
                tenant_header,
                body,
                query,
            )| {
                // Mostly a method the route serves; now and then any (a 405).
                let method = if any_method && index.index(4) == 0 {
                    method
                } else {
                    let served = &routes[route].1;
                    if served.is_empty() {
                        method
                    } else {
                        served[index.index(served.len())].clone()
                    }
                };
                Generated {
                    method,
                    route,
                    segment,
                    credential,
                    tenant_header,
                    body,
                    query,
                }
            },
        )
}

//! The spec and the routes as the table builds them: every operation in
//! the spec with a unique id, every code an `ErrorCode`, every reference
//! resolved, each 405's `Allow` the spec's methods, and each body checked
//! with the schema the spec publishes for it.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};
use utoipa::ToSchema;

use super::*;
use crate::api::http::body;
use crate::api::http::ErrorCode;

/// The methods the spec lists for each path, as a 405's `Allow` writes them.
fn spec_methods() -> BTreeMap<String, String> {
    let doc = serde_json::to_value(document()).unwrap();
    let order = [
        "get", "put", "post", "delete", "patch", "head", "options", "trace",
    ];
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let listed: Vec<String> = order
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| m.to_uppercase())
                .collect();
            (path.clone(), listed.join(", "))
        })
        .collect()
}

/// The `Allow` of each resource the table builds.
fn allow_by_path() -> BTreeMap<String, String> {
    by_path()
        .into_iter()
        .map(|(path, routes)| {
            let methods: Vec<Method> = routes.into_iter().map(|(m, _)| m).collect();
            (path, Allow::new(&methods).as_str().to_string())
        })
        .collect()
}

#[test]
fn every_route_is_in_the_spec_with_its_id_and_each_id_is_unique() {
    let doc = serde_json::to_value(document()).unwrap();
    let mut ids = HashSet::new();
    for route in ROUTES {
        let endpoint = &route.endpoint;
        let path = endpoint.path();
        for method in endpoint.methods() {
            let method = method_of(&method).as_str().to_lowercase();
            let operation = &doc["paths"][&path][&method];
            assert_eq!(
                operation["operationId"], endpoint.id,
                "{method} {path} is not in the spec with its id"
            );
        }
        assert!(ids.insert(endpoint.id), "{} is used twice", endpoint.id);
    }
}

#[test]
fn every_code_in_the_spec_is_an_error_code_and_every_error_code_is_declared_or_excused() {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(codes) = map.get("x-error-codes").and_then(|c| c.as_array()) {
                    out.extend(codes.iter().map(|c| c.as_str().unwrap().to_string()));
                }
                map.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut in_spec = Vec::new();
    walk(&serde_json::to_value(document()).unwrap(), &mut in_spec);
    let in_spec: HashSet<ErrorCode> = in_spec
        .iter()
        .map(|c| ErrorCode::parse(c).unwrap_or_else(|| panic!("{c} is not an ErrorCode")))
        .collect();
    for code in ErrorCode::ALL {
        let excused = ErrorCode::UNDECLARED.iter().any(|(c, _)| c == code);
        assert!(
            in_spec.contains(code) != excused,
            "{code}: declared by an operation and excused, or neither"
        );
    }
}

#[test]
fn every_reference_in_the_spec_resolves() {
    fn walk(v: &Value, doc: &Value, missing: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                    if doc.pointer(r.trim_start_matches('#')).is_none() {
                        missing.push(r.to_string());
                    }
                }
                map.values().for_each(|v| walk(v, doc, missing));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, doc, missing)),
            _ => {}
        }
    }
    let doc = serde_json::to_value(document()).unwrap();
    let mut missing = Vec::new();
    walk(&doc, &doc, &mut missing);
    missing.sort();
    missing.dedup();
    assert!(missing.is_empty(), "unresolved: {missing:?}");
}

#[test]
fn a_405_lists_the_methods_the_spec_declares() {
    let allow = allow_by_path();
    assert_eq!(allow["/v1/agents/{id}"], "GET, DELETE, PATCH");
    assert_eq!(allow["/v1/servers/{id}/drain"], "POST");
    assert!(!allow.contains_key("/nope"));
    assert_eq!(allow, spec_methods(), "every resource's Allow vs the spec");
}

#[test]
fn the_data_plane_is_routed_first() {
    let data_plane: Vec<bool> = by_path()
        .iter()
        .map(|(_, routes)| routes.iter().all(|(_, r)| r.endpoint.data_plane()))
        .collect();
    let first_other = data_plane.iter().position(|d| !d).unwrap();
    assert!(first_other >= 6, "{first_other}");
    assert!(data_plane[first_other..].iter().all(|d| !d));
}

#[test]
fn every_schema_of_the_spec_compiles_into_a_validator() {
    let schemas = &document().components.as_ref().unwrap().schemas;
    assert!(schemas.len() >= 10, "{}", schemas.len());
    for name in schemas.keys() {
        body::compile(name, schemas.clone());
    }
}

/// `T`'s schema, and every schema it references, as the validator takes
/// them, are the spec's.
fn same_as_spec<T: ToSchema>() {
    let spec = serde_json::to_value(document()).unwrap();
    let mut own = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut own);
    let mut own: std::collections::BTreeMap<_, _> = own.into_iter().collect();
    openapi::rules::apply(&mut own);
    for (name, schema) in own {
        assert_eq!(
            serde_json::to_value(schema).unwrap(),
            spec["components"]["schemas"][&name],
            "{name}, as {} references it",
            T::name()
        );
    }
}

#[test]
fn a_body_is_checked_with_the_schemas_the_spec_publishes() {
    same_as_spec::<servers::RegisterServer>();
    same_as_spec::<tenants::migrate::MigrateTenant>();
    same_as_spec::<tenants::update::UpdateTenant>();
    same_as_spec::<api_keys::CreateKey>();
}

#[test]
fn a_body_the_spec_refuses_is_refused_without_echoing_it() {
    let secret = "postgres://admin:hunter2@db.example:5432/postgres?x";
    let body = json!({ "name": "pg-1", "dsn": secret });
    let err = body::check::<servers::RegisterServer>(&body).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidBody);
    assert!(!format!("{err}").contains("hunter2"), "{err}");
    assert!(format!("{err}").contains("body/dsn"), "{err}");
    // A struct is an object, never an array by position.
    type Migrate = tenants::migrate::MigrateTenant;
    assert!(body::check::<Migrate>(&json!([1])).is_err());
    assert!(body::check::<Migrate>(&json!({})).is_ok());
}

#[test]
fn an_unknown_nested_setting_is_named_with_its_path_not_hidden_behind_one_of() {
    let body = json!({ "settings": { "features": { "maxAgentz": 5 } } });
    let err = body::check::<tenants::update::UpdateTenant>(&body)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`maxAgentz`"), "{err}");
    assert!(err.contains("body/settings/features/maxAgentz"), "{err}");
    assert!(!err.contains("oneOf"), "{err}");
}

#[test]
fn a_subtenant_admin_key_must_name_its_subtenant_in_the_spec_and_the_server() {
    let spec = serde_json::to_value(document()).unwrap();
    assert!(spec["components"]["schemas"]["CreateKey"]["if"].is_object());
    type Key = api_keys::CreateKey;
    let bare = json!({ "name": "ops", "role": "subtenant_admin" });
    assert!(body::check::<Key>(&bare).is_err());
    let named = json!({
        "name": "ops",
        "role": "subtenant_admin",
        "subtenant_id": uuid::Uuid::now_v7(),
    });
    assert!(
        body::check::<Key>(&named).is_ok(),
        "{:?}",
        body::check::<Key>(&named).err().map(|e| e.to_string())
    );
    assert!(body::check::<Key>(&json!({ "name": "ops", "role": "viewer" })).is_ok());
}

//! `/openapi.json`: the API description, generated from the handlers'
//! `#[utoipa::path]` attributes and the request and response types, with
//! each operation's id and errors from `operations.rs`.

mod operations;

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::HttpResponse;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::{Modify, OpenApi};

use crate::api::operations as long_operations;
use crate::api::{
    api_keys, backups, console, data, domains, events, health, migrations, overview, servers,
    tenants,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenant-plane",
        description = "Control plane and data plane for database-per-tenant PostgreSQL. Every non-2xx response has the body `ErrorEnvelope`; each operation lists the statuses it can answer and, under `x-error-codes`, the codes each one carries. A request this document allows is accepted, or refused only for a reason of state (404, 409, 429, 503). A method a path does not list gets 405 with `Allow`."
    ),
    paths(
        health::healthz, health::readyz,
        data::agents::create, data::agents::list, data::agents::show, data::agents::update, data::agents::delete,
        data::calls::create, data::calls::list, data::calls::show, data::calls::update,
        data::insights::summary, data::insights::audit,
        tenants::create::create, tenants::create::create_subtenant,
        tenants::read::list, tenants::read::show, tenants::update::update,
        tenants::lifecycle::suspend, tenants::lifecycle::resume, tenants::lifecycle::restore, tenants::lifecycle::delete,
        api_keys::create, api_keys::list, api_keys::revoke, domains::add_domain, domains::list_domains,
        migrations::start_run, migrations::show_run, migrations::resume_run, migrations::versions, tenants::migrate::migrate_tenant, tenants::migrate::history,
        servers::list, servers::show, servers::register, servers::update, servers::drain, tenants::relocate::move_tenant,
        long_operations::list, long_operations::show, long_operations::cancel,
        backups::take, backups::list, backups::show, backups::restore, backups::restore_as_new,
        events::stream, events::deliveries,
        overview::summary, overview::audit, console::sign_in, console::show_session, console::sign_out,
        crate::api::metrics::render, openapi_json,
    ),
    components(schemas(crate::api::ErrorEnvelope, crate::api::ErrorBody, crate::api::wire::PageLimit, crate::api::wire::Sequence, crate::catalog::OpKind, long_operations::OperationState, events::DeliveryState)),
    modifiers(&BearerAuth, &Operations, &Conditional)
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static utoipa::openapi::OpenApi {
    static DOC: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);
    &DOC
}

/// The methods the spec lists for a route pattern, for a 405's `Allow`.
pub fn allowed_methods(pattern: &str) -> Option<&'static str> {
    static ALLOW: LazyLock<HashMap<String, String>> = LazyLock::new(|| {
        document()
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods: Vec<String> = methods_of(item)
                    .into_iter()
                    .map(|(m, _)| m.to_uppercase())
                    .collect();
                (path.clone(), methods.join(", "))
            })
            .collect()
    });
    ALLOW.get(pattern).map(String::as_str)
}

fn methods_of(item: &PathItem) -> Vec<(&'static str, &Operation)> {
    [
        ("get", &item.get),
        ("put", &item.put),
        ("post", &item.post),
        ("delete", &item.delete),
        ("patch", &item.patch),
        ("head", &item.head),
        ("options", &item.options),
        ("trace", &item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_ref().map(|op| (m, op)))
    .collect()
}

fn methods_of_mut(item: &mut PathItem) -> Vec<(&'static str, &mut Operation)> {
    [
        ("get", &mut item.get),
        ("put", &mut item.put),
        ("post", &mut item.post),
        ("delete", &mut item.delete),
        ("patch", &mut item.patch),
        ("head", &mut item.head),
        ("options", &mut item.options),
        ("trace", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.as_mut().map(|op| (m, op)))
    .collect()
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT, or a tenant API key tpk_…")
                    .build(),
            ),
        );
        // The console's session; any route that takes a bearer credential
        // also takes it, and unsafe methods then need `X-CSRF-Token`.
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::with_description(
                    "tp_session",
                    "Set by POST /console/session (named __Host-tp_session over TLS); unsafe requests made with it must send X-CSRF-Token",
                ),
            )),
        );
    }
}

/// Sets each operation's id and error responses from `operations.rs`, and
/// the tenant headers on the data plane's.
struct Operations;

impl Modify for Operations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            for (method, operation) in methods_of_mut(item) {
                let declared = operations::find(method, path).unwrap_or_else(|| {
                    panic!("{method} {path} has no entry in api/openapi/operations.rs")
                });
                operation.operation_id = Some(declared.id.to_string());
                let responses = &mut operation.responses.responses;
                responses.retain(|status, _| !status.ends_with("XX"));
                for (status, codes) in declared.statuses() {
                    responses.insert(status.to_string(), error_response(status, &codes));
                }
                if declared.data_plane {
                    let params = operation.parameters.get_or_insert_with(Vec::new);
                    params.push(tenant_header(
                        crate::api::TENANT_HEADER,
                        "The tenant, for a super_admin token (a tenant's own credential names it already). Or use a domain the tenant registered as the Host.",
                    ));
                    params.push(tenant_header(
                        crate::api::SUBTENANT_HEADER,
                        "Narrows a tenant-wide credential to one of its subtenants.",
                    ));
                }
            }
        }
    }
}

fn error_response(
    status: u16,
    codes: &[crate::api::ErrorCode],
) -> RefOr<utoipa::openapi::Response> {
    let reason = actix_web::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let list = codes
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = ResponseBuilder::new()
        .description(format!("{reason}: {list}"))
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
                .build(),
        )
        .build();
    response.extensions = Some(utoipa::openapi::extensions::Extensions::from_iter([(
        "x-error-codes",
        serde_json::json!(codes),
    )]));
    RefOr::T(response)
}

fn tenant_header(name: &str, description: &str) -> utoipa::openapi::path::Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String).format(
            Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Uuid,
            )),
        )))
        .build()
}

/// Rules between fields that a derive cannot state: a `subtenant_admin`
/// key must name its subtenant.
struct Conditional;

impl Modify for Conditional {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let schemas = &mut openapi
            .components
            .as_mut()
            .expect("components are declared")
            .schemas;
        if let Some(RefOr::T(Schema::Object(create_key))) = schemas.get_mut("CreateKey") {
            let rule = utoipa::openapi::extensions::Extensions::from_iter([
                (
                    "if",
                    serde_json::json!({
                        "properties": { "role": { "const": "subtenant_admin" } },
                        "required": ["role"]
                    }),
                ),
                (
                    "then",
                    serde_json::json!({
                        "required": ["subtenant_id"],
                        "properties": { "subtenant_id": { "type": "string", "format": "uuid" } }
                    }),
                ),
            ]);
            create_key.extensions = Some(rule);
        } else {
            panic!("the CreateKey schema is missing from the spec");
        }
    }
}

/// `GET /openapi.json`
#[utoipa::path(get, path = "/openapi.json", tag = "meta", responses((status = 200, description = "This document")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_in_the_table_is_in_the_spec_and_each_id_is_unique() {
        let doc = document();
        let mut ids = std::collections::HashSet::new();
        for declared in operations::OPERATIONS {
            let item = doc
                .paths
                .paths
                .get(declared.path)
                .unwrap_or_else(|| panic!("{} is not in the spec", declared.path));
            assert!(
                methods_of(item).iter().any(|(m, _)| *m == declared.method),
                "{} {} is not in the spec",
                declared.method,
                declared.path
            );
            assert!(ids.insert(declared.id), "{} is used twice", declared.id);
        }
    }

    #[test]
    fn every_code_in_the_spec_is_an_error_code_and_every_error_code_is_declared_or_excused() {
        use crate::api::ErrorCode;
        fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(codes) = map.get("x-error-codes").and_then(|c| c.as_array()) {
                        out.extend(codes.iter().map(|c| c.as_str().unwrap().to_string()));
                    }
                    map.values().for_each(|v| walk(v, out));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut in_spec = Vec::new();
        walk(&serde_json::to_value(document()).unwrap(), &mut in_spec);
        let in_spec: std::collections::HashSet<ErrorCode> = in_spec
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
        fn walk(v: &serde_json::Value, doc: &serde_json::Value, missing: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(r) = map.get("$ref").and_then(|r| r.as_str()) {
                        if doc.pointer(r.trim_start_matches('#')).is_none() {
                            missing.push(r.to_string());
                        }
                    }
                    map.values().for_each(|v| walk(v, doc, missing));
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, doc, missing)),
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
        assert_eq!(
            allowed_methods("/v1/agents/{id}"),
            Some("GET, DELETE, PATCH")
        );
        assert_eq!(allowed_methods("/v1/servers/{id}/drain"), Some("POST"));
        assert_eq!(allowed_methods("/nope"), None);
    }
}

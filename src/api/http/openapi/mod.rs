//! The API description served at `/openapi.json`, built from the routes'
//! one registration each (`api::routes`). A handler's `#[utoipa::path]`
//! states its method, path, parameters, body and success responses; its
//! registration names its operation id and the error sets it can answer.
//! This module writes the rest, once for every operation:
//! - every error status the sets name, in the envelope, with its codes
//!   under `x-error-codes` (an attribute states no error response);
//! - `bearer` security on an operation that declares `AUTH`, unless its
//!   attribute states its own (the console's session) or its credential
//!   comes in the body (signing in);
//! - the tenant headers on an operation that declares `DATA`;
//! - the rules between fields (`rules.rs`), the same ones the body
//!   validators hold.
//!
//! It knows no handler: the api root passes the registrations in.

mod errors;
pub mod rules;

pub use errors::{by_status, Codes, AUTH, BODY, DATA, LOCKED, PATH, QUERY, TENANT, WRITES};

use utoipa::openapi::path::{HttpMethod, Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Required};
use utoipa::OpenApi;

/// A schema by name, as the spec's components hold it.
pub type Component = (String, RefOr<Schema>);

/// One operation as its registration declares it: what the handler's
/// `#[utoipa::path]` generated, and what the attribute does not say.
pub struct Endpoint {
    /// The spec's `operationId`.
    pub id: &'static str,
    /// The error sets it can answer.
    pub errors: &'static [Codes],
    /// The credential comes in the body, not in a header: no `bearer`.
    credential_in_body: bool,
    path: fn() -> String,
    methods: fn() -> Vec<HttpMethod>,
    operation: fn() -> Operation,
    tags: fn() -> Vec<&'static str>,
    schemas: fn(&mut Vec<Component>),
}

impl Endpoint {
    /// The endpoint of the handler whose attribute generated `P`.
    pub const fn of<P>(id: &'static str, errors: &'static [Codes]) -> Self
    where
        P: utoipa::Path + utoipa::__dev::Tags<'static> + utoipa::__dev::SchemaReferences,
    {
        Self {
            id,
            errors,
            credential_in_body: false,
            path: P::path,
            methods: P::methods,
            operation: P::operation,
            tags: <P as utoipa::__dev::Tags<'static>>::tags,
            schemas: <P as utoipa::__dev::SchemaReferences>::schemas,
        }
    }

    /// Marks an operation whose credential comes in the body: it answers
    /// `AUTH`'s errors but takes no `bearer` security.
    pub const fn credential_in_body(self) -> Self {
        Self {
            credential_in_body: true,
            ..self
        }
    }

    /// The route pattern, as actix and the spec write it.
    pub fn path(&self) -> String {
        (self.path)()
    }

    pub fn methods(&self) -> Vec<HttpMethod> {
        (self.methods)()
    }

    /// Whether the data plane serves it (it takes the tenant headers).
    pub fn data_plane(&self) -> bool {
        errors::declares(self.errors, DATA)
    }

    /// The operation as the spec shows it.
    fn operation(&self, tenant_headers: &[(&str, &str)]) -> Operation {
        let mut operation = (self.operation)();
        operation
            .tags
            .get_or_insert_with(Vec::new)
            .extend((self.tags)().into_iter().map(str::to_string));
        operation.operation_id = Some(self.id.to_string());
        let responses = &mut operation.responses.responses;
        for (status, codes) in by_status(self.errors) {
            responses.insert(status.to_string(), error_response(status, &codes));
        }
        let bearer = errors::declares(self.errors, AUTH) && !self.credential_in_body;
        if bearer && operation.security.is_none() {
            operation.security = Some(vec![SecurityRequirement::new(
                "bearer",
                Vec::<String>::new(),
            )]);
        }
        if self.data_plane() {
            let params = operation.parameters.get_or_insert_with(Vec::new);
            params.extend(
                tenant_headers
                    .iter()
                    .map(|(name, description)| tenant_header(name, description)),
            );
        }
        operation
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenant-plane",
        description = "Control plane and data plane for database-per-tenant PostgreSQL. Every non-2xx response has the body `ErrorEnvelope`; each operation lists the statuses it can answer and, under `x-error-codes`, the codes each one carries. A request this document allows is accepted, or refused only for a reason of state (404, 409, 429, 503). A method a path does not list gets 405 with `Allow`. No text in a request may hold U+0000 (NUL), which PostgreSQL cannot store: a body with one gets 422 `invalid_body`, a query string with one (`%00`) 400 `invalid_query`."
    ),
    components(schemas(
        crate::api::http::ErrorEnvelope,
        crate::api::http::ErrorBody,
        crate::api::http::wire::PageLimit,
        crate::api::http::wire::Sequence
    ))
)]
struct Base;

/// The document for `endpoints`, with `schemas` besides the ones their
/// attributes name (those that only a parameter or a `value_type` uses),
/// and `tenant_headers` (name, description) on the data plane's.
pub fn build<'a>(
    endpoints: impl IntoIterator<Item = &'a Endpoint>,
    schemas: Vec<Component>,
    tenant_headers: &[(&str, &str)],
) -> utoipa::openapi::OpenApi {
    let mut doc = Base::openapi();
    let mut referenced = schemas;
    for endpoint in endpoints {
        (endpoint.schemas)(&mut referenced);
        doc.paths.add_path_operation(
            endpoint.path(),
            endpoint.methods(),
            endpoint.operation(tenant_headers),
        );
    }
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.extend(referenced);
    add_security_schemes(components);
    let applied = rules::apply(&mut components.schemas);
    for name in rules::concerned() {
        assert!(
            applied.contains(&name),
            "the {name} schema is missing from the spec"
        );
    }
    doc
}

fn add_security_schemes(components: &mut utoipa::openapi::Components) {
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

fn error_response(
    status: u16,
    codes: &[crate::api::http::ErrorCode],
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

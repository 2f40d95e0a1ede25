//! `Json<T>`: a request body checked against the published spec's schema for
//! `T` before it is parsed into `T`. Serde alone is looser than the spec (a
//! derived struct also takes a JSON array, by position), so the spec's own
//! validator decides first: what `/openapi.json` refuses, the server refuses
//! with 422 `invalid_body`, naming where and which rule, never the value.

use std::collections::HashMap;
use std::sync::LazyLock;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{ApiError, ErrorCode};

/// A JSON body that matched the spec's schema for `T`, parsed into `T`.
pub struct Json<T>(pub T);

impl<T> Json<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: DeserializeOwned + utoipa::ToSchema + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        // `web::Json` keeps the body limit, the media type check and the
        // syntax errors (400 malformed_json) of the app's JsonConfig.
        let raw = web::Json::<Value>::from_request(req, payload);
        Box::pin(async move {
            let value = raw.await?.into_inner();
            Ok(Json(parse_checked::<T>(value)?))
        })
    }
}

/// Checks `value` against the spec's schema for `T`, then parses it.
pub fn parse_checked<T: DeserializeOwned + utoipa::ToSchema>(value: Value) -> Result<T, ApiError> {
    check(&T::name(), &value)?;
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Checks `value` against the spec's component schema `name`.
pub fn check(name: &str, value: &Value) -> Result<(), ApiError> {
    let validator = VALIDATORS
        .get(name)
        .unwrap_or_else(|| panic!("the spec has no schema {name}"));
    match validator.iter_errors(value).next() {
        None => Ok(()),
        Some(e) => Err(invalid(describe(&e, name))),
    }
}

/// One error in words. Inside a `oneOf` or `anyOf` (an optional object is
/// `oneOf: [null, {…}]`), the branch that got furthest speaks instead of
/// the `oneOf`: an unknown property is named with its path, not hidden
/// behind "breaks the `oneOf` rule".
fn describe(e: &jsonschema::ValidationError<'_>, name: &str) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    if let Kind::OneOfNotValid { context } | Kind::AnyOf { context } = e.kind() {
        let telling = context
            .iter()
            .flatten()
            .filter(|inner| !matches!(inner.kind(), Kind::Type { .. }))
            .max_by_key(|inner| {
                (
                    inner.instance_path().as_str().len(),
                    matches!(inner.kind(), Kind::AdditionalProperties { .. }),
                )
            });
        if let Some(inner) = telling {
            return describe(inner, name);
        }
    }
    let path = e.instance_path().as_str();
    let at = match path {
        "" => "the body".to_string(),
        path => format!("body{path}"),
    };
    if let Kind::AdditionalProperties { unexpected } = e.kind() {
        let named: Vec<String> = unexpected
            .iter()
            .map(|p| format!("`{p}` (at body{path}/{p})"))
            .collect();
        return format!(
            "{at} has no property {} in the {name} schema in /openapi.json",
            named.join(", ")
        );
    }
    let rule = e
        .schema_path()
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or("schema")
        .to_string();
    format!("{at} breaks the `{rule}` rule of the {name} schema in /openapi.json")
}

fn invalid(message: String) -> ApiError {
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        ErrorCode::InvalidBody,
        message,
    )
}

/// One validator per component schema of the spec, compiled once.
static VALIDATORS: LazyLock<HashMap<String, jsonschema::Validator>> = LazyLock::new(|| {
    let doc = serde_json::to_value(crate::api::openapi::document()).expect("the spec serialises");
    let components = doc["components"].clone();
    components["schemas"]
        .as_object()
        .expect("the spec has schemas")
        .keys()
        .map(|name| {
            let root = serde_json::json!({
                "$ref": format!("#/components/schemas/{name}"),
                "components": components,
            });
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("the spec's {name} schema does not compile: {e}"));
            (name.clone(), validator)
        })
        .collect()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_of_the_spec_compiles_into_a_validator() {
        assert!(VALIDATORS.len() >= 10, "{}", VALIDATORS.len());
    }

    #[test]
    fn a_body_the_spec_refuses_is_refused_without_echoing_it() {
        let secret = "postgres://admin:hunter2@db.example:5432/postgres?x";
        let body = serde_json::json!({ "name": "pg-1", "dsn": secret });
        let err = check("RegisterServer", &body).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidBody);
        assert!(!format!("{err}").contains("hunter2"), "{err}");
        assert!(format!("{err}").contains("body/dsn"), "{err}");
        // A struct is an object, never an array by position.
        assert!(check("MigrateTenant", &serde_json::json!([1])).is_err());
        assert!(check("MigrateTenant", &serde_json::json!({})).is_ok());
    }

    #[test]
    fn an_unknown_nested_setting_is_named_with_its_path_not_hidden_behind_one_of() {
        let body = serde_json::json!({ "settings": { "features": { "maxAgentz": 5 } } });
        let err = check("UpdateTenant", &body).unwrap_err().to_string();
        assert!(err.contains("`maxAgentz`"), "{err}");
        assert!(err.contains("body/settings/features/maxAgentz"), "{err}");
        assert!(!err.contains("oneOf"), "{err}");
    }
}

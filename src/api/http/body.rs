//! `Json<T>`: a request body checked against the published spec's schema for
//! `T` before it is parsed into `T`. Serde alone is looser than the spec (a
//! derived struct also takes a JSON array, by position), so the spec's own
//! validator decides first: what `/openapi.json` refuses, the server refuses
//! with 422 `invalid_body`, naming where and which rule, never the value.
//!
//! The validator for `T` comes from `T`'s own schema and the schemas it
//! references, the very ones the spec publishes, with the same rules
//! between fields (`openapi::rules`); it is compiled on first use and kept
//! for the life of the process (one per body type). Nothing here knows the
//! routes or the spec document.

use std::any::TypeId;
use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, RwLock};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use serde_json::Value;

use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

use crate::api::http::{openapi, ApiError, ErrorCode};

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
pub fn parse_checked<T: DeserializeOwned + utoipa::ToSchema + 'static>(
    value: Value,
) -> Result<T, ApiError> {
    check::<T>(&value)?;
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

/// Checks `value` against the spec's schema for `T`, and that no text in
/// it holds U+0000 (NUL), which PostgreSQL stores in neither `text` nor
/// `jsonb`: the spec says so once, for every body.
pub fn check<T: utoipa::ToSchema + 'static>(value: &Value) -> Result<(), ApiError> {
    if let Some(e) = validator::<T>().iter_errors(value).next() {
        return Err(invalid(describe(&e, &T::name())));
    }
    let mut at = String::new();
    if nul_at(value, &mut at) {
        let at = if at.is_empty() {
            "the body".into()
        } else {
            format!("body{at}")
        };
        return Err(invalid(format!(
            "{at} holds U+0000 (NUL), which no text here may hold"
        )));
    }
    Ok(())
}

/// Whether a string or a property name in `value` holds a NUL; `at` is
/// left at its place (a JSON pointer; a property name with one is not
/// named).
fn nul_at(value: &Value, at: &mut String) -> bool {
    let within = |at: &mut String, step: &str, inner: &Value| {
        let len = at.len();
        at.push('/');
        at.push_str(&step.replace('~', "~0").replace('/', "~1"));
        let found = nul_at(inner, at);
        if !found {
            at.truncate(len);
        }
        found
    };
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .any(|(i, item)| within(at, &i.to_string(), item)),
        Value::Object(map) => map.iter().any(|(key, inner)| {
            if key.contains('\0') {
                return true;
            }
            within(at, key, inner)
        }),
        _ => false,
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

/// The validator for `T`, compiled on its first use. Each is leaked once:
/// there are as many as body types, and they live as long as the process.
fn validator<T: utoipa::ToSchema + 'static>() -> &'static jsonschema::Validator {
    static COMPILED: LazyLock<RwLock<HashMap<TypeId, &'static jsonschema::Validator>>> =
        LazyLock::new(Default::default);
    let key = TypeId::of::<T>();
    if let Some(validator) = COMPILED.read().expect("never poisoned").get(&key) {
        return validator;
    }
    let mut schemas = vec![(T::name().into_owned(), T::schema())];
    T::schemas(&mut schemas);
    let compiled = compile(&T::name(), schemas);
    let mut all = COMPILED.write().expect("never poisoned");
    all.entry(key)
        .or_insert_with(|| Box::leak(Box::new(compiled)))
}

/// A validator for the schema `name` among `schemas` (it and every schema
/// it references), with the rules between fields that the spec states.
pub fn compile(
    name: &str,
    schemas: impl IntoIterator<Item = (String, RefOr<Schema>)>,
) -> jsonschema::Validator {
    let mut schemas: BTreeMap<String, RefOr<Schema>> = schemas.into_iter().collect();
    openapi::rules::apply(&mut schemas);
    let root = serde_json::json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": { "schemas": schemas },
    });
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("the spec's {name} schema does not compile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body with a rule on a field and a referenced schema, optional.
    #[derive(serde::Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Probe {
        #[schema(pattern = "^[a-z]+$")]
        word: String,
        inner: Option<ProbeInner>,
    }

    #[derive(serde::Deserialize, utoipa::ToSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct ProbeInner {
        size: Option<u32>,
    }

    #[test]
    fn a_body_is_checked_against_its_own_schema_and_the_ones_it_references() {
        assert!(
            check::<Probe>(&serde_json::json!({ "word": "ok", "inner": { "size": 3 } })).is_ok()
        );
        let err = check::<Probe>(&serde_json::json!({ "word": "ok", "inner": { "sise": 3 } }))
            .unwrap_err()
            .to_string();
        assert!(err.contains("`sise` (at body/inner/sise)"), "{err}");
        assert!(!err.contains("oneOf"), "{err}");
        // A struct is an object, never an array by position.
        assert!(check::<Probe>(&serde_json::json!(["ok", null])).is_err());
    }

    #[test]
    fn a_refused_body_is_named_by_where_and_which_rule_never_by_its_value() {
        let err = check::<Probe>(&serde_json::json!({ "word": "Hunter2" })).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidBody);
        let message = err.to_string();
        assert!(!message.contains("Hunter2"), "{message}");
        assert!(message.contains("body/word"), "{message}");
        assert!(message.contains("`pattern`"), "{message}");
    }

    #[test]
    fn a_nul_anywhere_in_a_body_is_refused_and_named_by_where_it_is() {
        let value = serde_json::json!({ "word": "ok", "inner": { "size": 3 } });
        assert!(!nul_at(&value, &mut String::new()));
        let mut at = String::new();
        let nested = serde_json::json!({ "a": [1, { "b/c": "x\u{0}y" }] });
        assert!(nul_at(&nested, &mut at));
        assert_eq!(at, "/a/1/b~1c");
        let mut at = String::new();
        assert!(nul_at(&serde_json::json!({ "k\u{0}": 1 }), &mut at));
        assert_eq!(at, "");
        let refused = check::<ProbeAny>(&serde_json::json!({ "note": "a\u{0}b" })).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::InvalidBody);
        assert!(
            refused.to_string().contains("body/note holds U+0000"),
            "{refused}"
        );
    }

    /// A body whose one field takes any text.
    #[derive(serde::Deserialize, utoipa::ToSchema)]
    #[allow(dead_code)]
    struct ProbeAny {
        note: String,
    }

    #[test]
    fn a_validator_is_compiled_once_per_type() {
        assert!(std::ptr::eq(validator::<Probe>(), validator::<Probe>()));
        assert!(!std::ptr::eq(
            validator::<Probe>(),
            validator::<ProbeInner>()
        ));
    }
}

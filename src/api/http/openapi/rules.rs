//! Rules between fields that a derive cannot state, added to the schemas
//! they concern. The spec (`build`) and the body validators (`body.rs`)
//! both take them from here, so what the spec says and what the server
//! refuses cannot differ.

use std::collections::BTreeMap;

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::RefOr;

/// A rule: the schema it concerns, and what it adds to it.
struct Rule {
    schema: &'static str,
    extensions: fn() -> Extensions,
}

const RULES: &[Rule] = &[Rule {
    schema: "CreateKey",
    extensions: subtenant_admin_names_its_subtenant,
}];

/// A `subtenant_admin` key must name its subtenant.
fn subtenant_admin_names_its_subtenant() -> Extensions {
    Extensions::from_iter([
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
    ])
}

/// Adds each rule to its schema among `schemas`, if there. Returns the
/// names of the schemas changed.
pub fn apply(schemas: &mut BTreeMap<String, RefOr<Schema>>) -> Vec<&'static str> {
    let mut applied = Vec::new();
    for rule in RULES {
        if let Some(RefOr::T(Schema::Object(object))) = schemas.get_mut(rule.schema) {
            object.extensions = Some((rule.extensions)());
            applied.push(rule.schema);
        }
    }
    applied
}

/// Every schema a rule concerns, for the spec to check they all are there.
pub fn concerned() -> impl Iterator<Item = &'static str> {
    RULES.iter().map(|rule| rule.schema)
}

//! The name of a lint rule, as a run's `acknowledge` names it.
//!
//! Rule: a `RuleName` is one of [`rules::known`]; the schema the API
//! publishes lists exactly those names, so the body validator refuses any
//! other one.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

use super::rules;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleName(String);

impl RuleName {
    pub fn parse(name: &str) -> Option<Self> {
        rules::is_known(name).then(|| Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl<'de> Deserialize<'de> for RuleName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("no lint rule is named {name:?}")))
    }
}

impl utoipa::PartialSchema for RuleName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A lint rule (squawk's name, or `ban-truncate`) whose Error findings are acknowledged.",
            ))
            .enum_values(Some(rules::known().iter().cloned()))
            .into()
    }
}

impl utoipa::ToSchema for RuleName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LintRule")
    }
}

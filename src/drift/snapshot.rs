//! The normalized schema: every object under a stable name, with the parts
//! its definition is made of, sorted by kind and name.
//!
//! Rules: a snapshot holds each (kind, name) once, in order, however the
//! objects were read; its fingerprint is the SHA-256 of that sorted form,
//! so it depends on the schema alone, never on the order of reading.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ObjectKind;

/// A database's schema, objects sorted by kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Unsorted")]
pub struct SchemaSnapshot {
    objects: Vec<SchemaObject>,
}

/// A snapshot as read back (from the catalog): sorted again on the way in.
#[derive(Deserialize)]
struct Unsorted {
    objects: Vec<SchemaObject>,
}

impl From<Unsorted> for SchemaSnapshot {
    fn from(read: Unsorted) -> Self {
        Self::from_objects(read.objects)
    }
}

/// One object of a schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaObject {
    /// Stable within its kind: `public.calls.status` for a column,
    /// `public.calls_owner_idx` for an index.
    pub name: String,
    #[serde(flatten)]
    pub shape: Shape,
}

/// What an object is, in the parts its DDL needs. Texts PostgreSQL
/// produced (`definition`, `data_type`, expressions) are kept as it wrote
/// them, with every name schema-qualified (`describe` runs with an empty
/// `search_path`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shape {
    Schema {
        schema: String,
    },
    Extension {
        extension: String,
        schema: String,
    },
    Table {
        schema: String,
        table: String,
        /// `table`, `partitioned table` or `foreign table`.
        relkind: String,
        unlogged: bool,
    },
    Column {
        schema: String,
        table: String,
        column: String,
        data_type: String,
        /// `(schema, name)` of a collation other than the type's own.
        collation: Option<(String, String)>,
        not_null: bool,
        default: Option<String>,
        /// `always` or `by default`.
        identity: Option<String>,
        /// The expression of a stored generated column.
        generated: Option<String>,
    },
    Constraint {
        schema: String,
        table: String,
        constraint: String,
        definition: String,
    },
    Index {
        schema: String,
        index: String,
        definition: String,
    },
    RowSecurity {
        schema: String,
        table: String,
        enabled: bool,
        forced: bool,
    },
    Policy {
        schema: String,
        table: String,
        policy: String,
        /// `ALL`, `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
        command: String,
        permissive: bool,
        /// Role names, sorted; `PUBLIC` for everyone.
        roles: Vec<String>,
        using: Option<String>,
        with_check: Option<String>,
    },
    Sequence {
        schema: String,
        sequence: String,
        data_type: String,
        start: i64,
        increment: i64,
        min: i64,
        max: i64,
        cache: i64,
        cycle: bool,
    },
    View {
        schema: String,
        view: String,
        materialized: bool,
        definition: String,
    },
    Function {
        schema: String,
        function: String,
        /// The identity arguments (`integer, text`).
        arguments: String,
        procedure: bool,
        /// `CREATE OR REPLACE …` as `pg_get_functiondef` writes it.
        definition: String,
    },
    Trigger {
        schema: String,
        table: String,
        trigger: String,
        definition: String,
        enabled: bool,
    },
    Grant {
        /// `table`, `sequence`, `function`, `procedure` or `schema`.
        target: String,
        /// The object's schema (for a schema, its own name).
        schema: String,
        /// The object's name (empty for a schema).
        object: String,
        /// A routine's identity arguments.
        arguments: Option<String>,
        /// A role name, or `PUBLIC`.
        grantee: String,
        privilege: String,
        grantable: bool,
    },
}

impl Shape {
    pub fn kind(&self) -> ObjectKind {
        match self {
            Self::Schema { .. } => ObjectKind::Schema,
            Self::Extension { .. } => ObjectKind::Extension,
            Self::Table { .. } => ObjectKind::Table,
            Self::Column { .. } => ObjectKind::Column,
            Self::Constraint { .. } => ObjectKind::Constraint,
            Self::Index { .. } => ObjectKind::Index,
            Self::RowSecurity { .. } => ObjectKind::RowSecurity,
            Self::Policy { .. } => ObjectKind::Policy,
            Self::Sequence { .. } => ObjectKind::Sequence,
            Self::View { .. } => ObjectKind::View,
            Self::Function { .. } => ObjectKind::Function,
            Self::Trigger { .. } => ObjectKind::Trigger,
            Self::Grant { .. } => ObjectKind::Grant,
        }
    }

    /// The definition an operator reads in a diff.
    pub fn definition(&self) -> String {
        match self {
            Self::Schema { schema } => format!("schema {schema}"),
            Self::Extension { extension, schema } => format!("extension {extension} in {schema}"),
            Self::Table {
                relkind, unlogged, ..
            } => format!("{}{relkind}", if *unlogged { "unlogged " } else { "" }),
            Self::Column { .. } => self.column_definition().unwrap_or_default(),
            Self::Constraint { definition, .. }
            | Self::Index { definition, .. }
            | Self::Function { definition, .. } => definition.clone(),
            Self::RowSecurity {
                enabled, forced, ..
            } => format!(
                "row level security {}{}",
                if *enabled { "enabled" } else { "disabled" },
                if *forced { ", forced" } else { "" }
            ),
            Self::Policy {
                command,
                permissive,
                roles,
                using,
                with_check,
                ..
            } => {
                let mut text = format!(
                    "{} FOR {command} TO {}",
                    if *permissive { "PERMISSIVE" } else { "RESTRICTIVE" },
                    roles.join(", ")
                );
                if let Some(using) = using {
                    text.push_str(&format!(" USING ({using})"));
                }
                if let Some(check) = with_check {
                    text.push_str(&format!(" WITH CHECK ({check})"));
                }
                text
            }
            Self::Sequence {
                data_type,
                start,
                increment,
                min,
                max,
                cache,
                cycle,
                ..
            } => format!(
                "AS {data_type} INCREMENT {increment} MINVALUE {min} MAXVALUE {max} START {start} CACHE {cache}{}",
                if *cycle { " CYCLE" } else { " NO CYCLE" }
            ),
            Self::View { definition, .. } => definition.trim().to_string(),
            Self::Trigger {
                definition,
                enabled,
                ..
            } => {
                if *enabled {
                    definition.clone()
                } else {
                    format!("{definition} (disabled)")
                }
            }
            Self::Grant {
                privilege,
                grantable,
                ..
            } => format!(
                "{privilege}{}",
                if *grantable { " WITH GRANT OPTION" } else { "" }
            ),
        }
    }

    /// `type [COLLATE c] [NOT NULL] [DEFAULT e | GENERATED …]`, as in a
    /// column definition of `CREATE TABLE` or `ADD COLUMN`.
    pub(super) fn column_definition(&self) -> Option<String> {
        let Self::Column {
            data_type,
            collation,
            not_null,
            default,
            identity,
            generated,
            ..
        } = self
        else {
            return None;
        };
        let mut text = data_type.clone();
        if let Some((schema, name)) = collation {
            text.push_str(&format!(" COLLATE {}", qualified(schema, name)));
        }
        if let Some(expr) = generated {
            text.push_str(&format!(" GENERATED ALWAYS AS ({expr}) STORED"));
        }
        if let Some(identity) = identity {
            text.push_str(&format!(
                " GENERATED {} AS IDENTITY",
                identity.to_uppercase()
            ));
        }
        if *not_null {
            text.push_str(" NOT NULL");
        }
        if let Some(expr) = default {
            text.push_str(&format!(" DEFAULT {expr}"));
        }
        Some(text)
    }
}

/// `"schema"."name"`.
pub(super) fn qualified(schema: &str, name: &str) -> String {
    format!(
        "{}.{}",
        crate::sql::quote_ident(schema),
        crate::sql::quote_ident(name)
    )
}

impl SchemaObject {
    pub fn kind(&self) -> ObjectKind {
        self.shape.kind()
    }
}

impl SchemaSnapshot {
    /// Sorts `objects` by kind and name; a repeated (kind, name) keeps its
    /// first occurrence.
    pub fn from_objects(mut objects: Vec<SchemaObject>) -> Self {
        objects.sort_by(|a, b| (a.kind(), &a.name).cmp(&(b.kind(), &b.name)));
        objects.dedup_by(|b, a| a.kind() == b.kind() && a.name == b.name);
        Self { objects }
    }

    pub fn objects(&self) -> &[SchemaObject] {
        &self.objects
    }

    /// The object of `kind` named `name`.
    pub fn get(&self, kind: ObjectKind, name: &str) -> Option<&SchemaObject> {
        self.objects
            .binary_search_by(|o| (o.kind(), o.name.as_str()).cmp(&(kind, name)))
            .ok()
            .map(|i| &self.objects[i])
    }

    /// SHA-256 (hex) of the sorted snapshot's JSON: equal schemas, equal
    /// fingerprints.
    pub fn fingerprint(&self) -> String {
        // Serializing fixed structs in a fixed order cannot fail or vary.
        let canonical = serde_json::to_vec(&self.objects).expect("a snapshot serializes");
        hex::encode(Sha256::digest(&canonical))
    }
}

//! Reads a database's schema from `pg_catalog`: one query per kind of
//! object (never one per table), sent together in one read-only snapshot.
//!
//! Rules:
//! - Every schema but `pg_catalog`, `information_schema` and the `pg_*`
//!   ones (toast, temporary) is described; objects an extension owns are
//!   its extension's, not listed one by one.
//! - It runs with an empty `search_path`, so every name PostgreSQL writes
//!   (types, defaults, index and constraint definitions) is qualified the
//!   same way whatever the session's settings.
//! - No owner, grantor, or privilege an owner holds by owning is read: the
//!   owner is the migrating administrator, which may differ per server.
//!   Privileges are read against the object's default ACL when it has none,
//!   so an explicit ACL equal to the default is no change.
//! - Index backing a constraint (primary key, unique, exclusion) are the
//!   constraint's, not listed as indexes.

use futures_util::try_join;
use tokio_postgres::{Client, Row};

use super::queries::*;
use super::snapshot::{SchemaObject, Shape};
use super::{DriftError, SchemaSnapshot};

/// The schema of the database `client` is connected to, read in one
/// read-only transaction (left before it returns).
pub async fn describe(client: &Client) -> Result<SchemaSnapshot, DriftError> {
    client
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL search_path = ''",
        )
        .await
        .map_err(DriftError::Describe)?;
    let read = read_all(client).await;
    let end = if read.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = client.batch_execute(end).await;
    let objects = read.map_err(DriftError::Describe)?;
    ended.map_err(DriftError::Describe)?;
    Ok(SchemaSnapshot::from_objects(objects))
}

/// Every query at once: tokio-postgres pipelines them on the session.
async fn read_all(client: &Client) -> Result<Vec<SchemaObject>, tokio_postgres::Error> {
    let (schemas, extensions, tables, columns, constraints, indexes) = try_join!(
        client.query(SCHEMAS, &[]),
        client.query(EXTENSIONS, &[]),
        client.query(TABLES, &[]),
        client.query(COLUMNS, &[]),
        client.query(CONSTRAINTS, &[]),
        client.query(INDEXES, &[]),
    )?;
    let (policies, sequences, views, functions, triggers, grants) = try_join!(
        client.query(POLICIES, &[]),
        client.query(SEQUENCES, &[]),
        client.query(VIEWS, &[]),
        client.query(FUNCTIONS, &[]),
        client.query(TRIGGERS, &[]),
        client.query(GRANTS, &[]),
    )?;
    let mut objects = Vec::new();
    objects.extend(schemas.iter().map(schema));
    objects.extend(extensions.iter().map(extension));
    for row in &tables {
        objects.push(table(row));
        objects.extend(row_security(row));
    }
    objects.extend(columns.iter().map(column));
    objects.extend(constraints.iter().map(constraint));
    objects.extend(indexes.iter().map(index));
    objects.extend(policies.iter().map(policy));
    objects.extend(sequences.iter().map(sequence));
    objects.extend(views.iter().map(view));
    objects.extend(functions.iter().map(function));
    objects.extend(triggers.iter().map(trigger));
    objects.extend(grants.iter().map(grant));
    Ok(objects)
}

fn object(name: String, shape: Shape) -> SchemaObject {
    SchemaObject { name, shape }
}

fn schema(row: &Row) -> SchemaObject {
    let schema: String = row.get(0);
    object(schema.clone(), Shape::Schema { schema })
}

fn extension(row: &Row) -> SchemaObject {
    let extension: String = row.get(0);
    object(
        extension.clone(),
        Shape::Extension {
            extension,
            schema: row.get(1),
        },
    )
}

fn table(row: &Row) -> SchemaObject {
    let (schema, table): (String, String) = (row.get(0), row.get(1));
    let relkind = match row.get::<_, String>(2).as_str() {
        "p" => "partitioned table",
        "f" => "foreign table",
        _ => "table",
    };
    object(
        format!("{schema}.{table}"),
        Shape::Table {
            schema,
            table,
            relkind: relkind.to_string(),
            unlogged: row.get(3),
        },
    )
}

/// Row-level security, when enabled or forced: an object of its own, so a
/// table that has none shows no difference but the table's.
fn row_security(row: &Row) -> Option<SchemaObject> {
    let (enabled, forced): (bool, bool) = (row.get(4), row.get(5));
    if !enabled && !forced {
        return None;
    }
    let (schema, table): (String, String) = (row.get(0), row.get(1));
    Some(object(
        format!("{schema}.{table}"),
        Shape::RowSecurity {
            schema,
            table,
            enabled,
            forced,
        },
    ))
}

fn column(row: &Row) -> SchemaObject {
    let (schema, table, column): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let collation = match (row.get(4), row.get(5)) {
        (Some(schema), Some(name)) => Some((schema, name)),
        _ => None,
    };
    object(
        format!("{schema}.{table}.{column}"),
        Shape::Column {
            schema,
            table,
            column,
            data_type: row.get(3),
            collation,
            not_null: row.get(6),
            default: row.get(7),
            identity: row.get(8),
            generated: row.get(9),
        },
    )
}

fn constraint(row: &Row) -> SchemaObject {
    let (schema, table, constraint): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    object(
        format!("{schema}.{table}.{constraint}"),
        Shape::Constraint {
            schema,
            table,
            constraint,
            definition: row.get(3),
        },
    )
}

fn index(row: &Row) -> SchemaObject {
    let (schema, index): (String, String) = (row.get(0), row.get(1));
    object(
        format!("{schema}.{index}"),
        Shape::Index {
            schema,
            index,
            definition: row.get(2),
        },
    )
}

fn policy(row: &Row) -> SchemaObject {
    let (schema, table, policy): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let command = match row.get::<_, String>(3).as_str() {
        "r" => "SELECT",
        "a" => "INSERT",
        "w" => "UPDATE",
        "d" => "DELETE",
        _ => "ALL",
    };
    object(
        format!("{schema}.{table}.{policy}"),
        Shape::Policy {
            schema,
            table,
            policy,
            command: command.to_string(),
            permissive: row.get(4),
            roles: row.get(5),
            using: row.get(6),
            with_check: row.get(7),
        },
    )
}

fn sequence(row: &Row) -> SchemaObject {
    let (schema, sequence): (String, String) = (row.get(0), row.get(1));
    object(
        format!("{schema}.{sequence}"),
        Shape::Sequence {
            schema,
            sequence,
            data_type: row.get(2),
            start: row.get(3),
            increment: row.get(4),
            min: row.get(5),
            max: row.get(6),
            cache: row.get(7),
            cycle: row.get(8),
        },
    )
}

fn view(row: &Row) -> SchemaObject {
    let (schema, view): (String, String) = (row.get(0), row.get(1));
    object(
        format!("{schema}.{view}"),
        Shape::View {
            schema,
            view,
            materialized: row.get(2),
            definition: row.get(3),
        },
    )
}

fn function(row: &Row) -> SchemaObject {
    let (schema, function, arguments): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    object(
        format!("{schema}.{function}({arguments})"),
        Shape::Function {
            schema,
            function,
            arguments,
            procedure: row.get(3),
            definition: row.get(4),
        },
    )
}

fn trigger(row: &Row) -> SchemaObject {
    let (schema, table, trigger): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    object(
        format!("{schema}.{table}.{trigger}"),
        Shape::Trigger {
            schema,
            table,
            trigger,
            definition: row.get(3),
            enabled: row.get(4),
        },
    )
}

fn grant(row: &Row) -> SchemaObject {
    let (target, schema, object_name): (String, String, String) =
        (row.get(0), row.get(1), row.get(2));
    let arguments: Option<String> = row.get(3);
    let (grantee, privilege): (String, String) = (row.get(4), row.get(5));
    let on = match (&arguments, target.as_str()) {
        (_, "schema") => schema.clone(),
        (Some(args), _) => format!("{schema}.{object_name}({args})"),
        (None, _) => format!("{schema}.{object_name}"),
    };
    object(
        format!("{target} {on} to {grantee}: {privilege}"),
        Shape::Grant {
            target,
            schema,
            object: object_name,
            arguments,
            grantee,
            privilege,
            grantable: row.get(6),
        },
    )
}

//! The DDL that undoes one difference: creates what is missing, removes
//! what was added, turns a changed object back into the expected one.
//!
//! Rules: every identifier is quoted (`sql::quote_ident`) and every object
//! qualified with its schema; texts PostgreSQL wrote (definitions, types,
//! expressions) are used as written; `None` where no DDL can be written
//! from the snapshot alone (a missing table, a changed identity) or where
//! it would only guess (a changed materialized view), or where it would
//! decide the fate of rows (an added table).

use super::snapshot::{qualified, Shape};
use crate::sql::quote_ident;

/// What creates `shape` in the tenant.
pub(super) fn missing_ddl(shape: &Shape) -> Option<String> {
    Some(match shape {
        Shape::Schema { schema } => format!("CREATE SCHEMA {}", quote_ident(schema)),
        Shape::Extension { extension, schema } => format!(
            "CREATE EXTENSION IF NOT EXISTS {} SCHEMA {}",
            quote_ident(extension),
            quote_ident(schema)
        ),
        Shape::Table { .. } => return None,
        Shape::Column {
            schema,
            table,
            column,
            ..
        } => format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            qualified(schema, table),
            quote_ident(column),
            shape.column_definition()?
        ),
        Shape::Constraint {
            schema,
            table,
            constraint,
            definition,
        } => format!(
            "ALTER TABLE {} ADD CONSTRAINT {} {definition}",
            qualified(schema, table),
            quote_ident(constraint)
        ),
        Shape::Index { definition, .. } | Shape::Function { definition, .. } => {
            definition.trim().to_string()
        }
        Shape::RowSecurity {
            schema,
            table,
            enabled,
            forced,
        } => row_security_ddl(schema, table, *enabled, *forced),
        Shape::Policy { .. } => create_policy(shape)?,
        Shape::Sequence {
            schema, sequence, ..
        } => format!(
            "CREATE SEQUENCE {} {}",
            qualified(schema, sequence),
            shape.definition()
        ),
        Shape::View {
            schema,
            view,
            materialized,
            definition,
        } => format!(
            "CREATE {}VIEW {} AS {}",
            if *materialized { "MATERIALIZED " } else { "" },
            qualified(schema, view),
            definition.trim().trim_end_matches(';')
        ),
        Shape::Trigger {
            schema,
            table,
            trigger,
            definition,
            enabled,
        } => {
            let mut ddl = definition.clone();
            if !enabled {
                ddl.push_str(&format!(
                    "; ALTER TABLE {} DISABLE TRIGGER {}",
                    qualified(schema, table),
                    quote_ident(trigger)
                ));
            }
            ddl
        }
        Shape::Grant { grantable, .. } => format!(
            "GRANT {} TO {}{}",
            grant_on(shape)?,
            grantee(shape)?,
            if *grantable { " WITH GRANT OPTION" } else { "" }
        ),
    })
}

/// What removes `shape` from the tenant.
pub(super) fn added_ddl(shape: &Shape) -> Option<String> {
    Some(match shape {
        Shape::Schema { schema } => format!("DROP SCHEMA {}", quote_ident(schema)),
        Shape::Extension { extension, .. } => format!("DROP EXTENSION {}", quote_ident(extension)),
        // Dropping a table is a decision about its rows, not a repair.
        Shape::Table { .. } => return None,
        Shape::Column {
            schema,
            table,
            column,
            ..
        } => format!(
            "ALTER TABLE {} DROP COLUMN {}",
            qualified(schema, table),
            quote_ident(column)
        ),
        Shape::Constraint {
            schema,
            table,
            constraint,
            ..
        } => format!(
            "ALTER TABLE {} DROP CONSTRAINT {}",
            qualified(schema, table),
            quote_ident(constraint)
        ),
        Shape::Index { schema, index, .. } => format!("DROP INDEX {}", qualified(schema, index)),
        Shape::RowSecurity { schema, table, .. } => row_security_ddl(schema, table, false, false),
        Shape::Policy {
            schema,
            table,
            policy,
            ..
        } => format!(
            "DROP POLICY {} ON {}",
            quote_ident(policy),
            qualified(schema, table)
        ),
        Shape::Sequence {
            schema, sequence, ..
        } => format!("DROP SEQUENCE {}", qualified(schema, sequence)),
        Shape::View {
            schema,
            view,
            materialized,
            ..
        } => format!(
            "DROP {}VIEW {}",
            if *materialized { "MATERIALIZED " } else { "" },
            qualified(schema, view)
        ),
        Shape::Function {
            schema,
            function,
            arguments,
            procedure,
            ..
        } => format!(
            "DROP {} {}({arguments})",
            if *procedure { "PROCEDURE" } else { "FUNCTION" },
            qualified(schema, function)
        ),
        Shape::Trigger {
            schema,
            table,
            trigger,
            ..
        } => format!(
            "DROP TRIGGER {} ON {}",
            quote_ident(trigger),
            qualified(schema, table)
        ),
        Shape::Grant { .. } => format!("REVOKE {} FROM {}", grant_on(shape)?, grantee(shape)?),
    })
}

/// What turns `actual` back into `expected` (same kind and name).
pub(super) fn changed_ddl(expected: &Shape, actual: &Shape) -> Option<String> {
    match (expected, actual) {
        (Shape::Column { .. }, Shape::Column { .. }) => alter_column(expected, actual),
        (Shape::Function { definition, .. }, _) => Some(definition.trim().to_string()),
        (
            Shape::RowSecurity {
                schema,
                table,
                enabled,
                forced,
            },
            _,
        ) => Some(row_security_ddl(schema, table, *enabled, *forced)),
        (Shape::Grant { grantable, .. }, Shape::Grant { grantable: had, .. })
            if grantable != had =>
        {
            Some(if *grantable {
                missing_ddl(expected)?
            } else {
                format!(
                    "REVOKE GRANT OPTION FOR {} FROM {}",
                    grant_on(expected)?,
                    grantee(expected)?
                )
            })
        }
        (
            Shape::Sequence {
                schema, sequence, ..
            },
            _,
        ) => Some(format!(
            "ALTER SEQUENCE {} {}",
            qualified(schema, sequence),
            expected.definition()
        )),
        (
            Shape::View {
                materialized: false,
                schema,
                view,
                definition,
            },
            _,
        ) => Some(format!(
            "CREATE OR REPLACE VIEW {} AS {}",
            qualified(schema, view),
            definition.trim().trim_end_matches(';')
        )),
        (Shape::Constraint { .. }, _)
        | (Shape::Index { .. }, _)
        | (Shape::Policy { .. }, _)
        | (Shape::Trigger { .. }, _) => Some(format!(
            "{}; {}",
            added_ddl(actual)?,
            missing_ddl(expected)?
        )),
        _ => None,
    }
}

/// `ALTER TABLE … ALTER COLUMN …` for a changed type, collation,
/// nullability or default; `None` when identity or generation differ.
fn alter_column(expected: &Shape, actual: &Shape) -> Option<String> {
    let (
        Shape::Column {
            schema,
            table,
            column,
            data_type,
            collation,
            not_null,
            default,
            identity,
            generated,
        },
        Shape::Column {
            data_type: had_type,
            collation: had_collation,
            not_null: had_not_null,
            default: had_default,
            identity: had_identity,
            generated: had_generated,
            ..
        },
    ) = (expected, actual)
    else {
        return None;
    };
    if identity != had_identity || generated != had_generated {
        return None;
    }
    let col = quote_ident(column);
    let mut actions = Vec::new();
    if data_type != had_type || collation != had_collation {
        let collate = collation
            .as_ref()
            .map(|(s, n)| format!(" COLLATE {}", qualified(s, n)))
            .unwrap_or_default();
        actions.push(format!("ALTER COLUMN {col} TYPE {data_type}{collate}"));
    }
    if default != had_default {
        actions.push(match default {
            Some(expr) => format!("ALTER COLUMN {col} SET DEFAULT {expr}"),
            None => format!("ALTER COLUMN {col} DROP DEFAULT"),
        });
    }
    if not_null != had_not_null {
        let verb = if *not_null { "SET" } else { "DROP" };
        actions.push(format!("ALTER COLUMN {col} {verb} NOT NULL"));
    }
    (!actions.is_empty()).then(|| {
        format!(
            "ALTER TABLE {} {}",
            qualified(schema, table),
            actions.join(", ")
        )
    })
}

fn row_security_ddl(schema: &str, table: &str, enabled: bool, forced: bool) -> String {
    format!(
        "ALTER TABLE {} {} ROW LEVEL SECURITY, {} ROW LEVEL SECURITY",
        qualified(schema, table),
        if enabled { "ENABLE" } else { "DISABLE" },
        if forced { "FORCE" } else { "NO FORCE" }
    )
}

fn create_policy(shape: &Shape) -> Option<String> {
    let Shape::Policy {
        schema,
        table,
        policy,
        command,
        permissive,
        roles,
        using,
        with_check,
    } = shape
    else {
        return None;
    };
    let roles: Vec<String> = roles.iter().map(|r| role(r)).collect();
    let mut ddl = format!(
        "CREATE POLICY {} ON {} AS {} FOR {command} TO {}",
        quote_ident(policy),
        qualified(schema, table),
        if *permissive {
            "PERMISSIVE"
        } else {
            "RESTRICTIVE"
        },
        roles.join(", ")
    );
    if let Some(using) = using {
        ddl.push_str(&format!(" USING ({using})"));
    }
    if let Some(check) = with_check {
        ddl.push_str(&format!(" WITH CHECK ({check})"));
    }
    Some(ddl)
}

/// `<privilege> ON <kind> <object>` of a grant.
fn grant_on(shape: &Shape) -> Option<String> {
    let Shape::Grant {
        target,
        schema,
        object,
        arguments,
        privilege,
        ..
    } = shape
    else {
        return None;
    };
    // Privilege names come from PostgreSQL (`aclexplode`): letters only.
    if !privilege
        .chars()
        .all(|c| c.is_ascii_uppercase() || c == ' ')
    {
        return None;
    }
    let on = match target.as_str() {
        "schema" => format!("SCHEMA {}", quote_ident(schema)),
        "sequence" => format!("SEQUENCE {}", qualified(schema, object)),
        "function" | "procedure" => format!(
            "{} {}({})",
            target.to_uppercase(),
            qualified(schema, object),
            arguments.as_deref().unwrap_or("")
        ),
        _ => format!("TABLE {}", qualified(schema, object)),
    };
    Some(format!("{privilege} ON {on}"))
}

fn grantee(shape: &Shape) -> Option<String> {
    match shape {
        Shape::Grant { grantee, .. } => Some(role(grantee)),
        _ => None,
    }
}

/// A role name quoted, or the `PUBLIC` keyword.
fn role(name: &str) -> String {
    if name == "PUBLIC" {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

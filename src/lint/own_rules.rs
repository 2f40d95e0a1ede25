//! The findings squawk does not make and a tenant migration needs:
//! - a plain `TRUNCATE` ([`TRUNCATE_TABLE`]): it empties the table on every
//!   tenant (squawk flags only `TRUNCATE … CASCADE`);
//! - `CREATE INDEX CONCURRENTLY` in a file of ONE statement: squawk skips
//!   such a file (it may run outside a transaction), but refinery runs
//!   every migration in one, where it fails; reported under squawk's own
//!   rule, `ban-concurrent-index-creation-in-transaction`;
//! - `DROP INDEX CONCURRENTLY` ([`DROP_INDEX_CONCURRENTLY`]): it cannot run
//!   in a transaction either.

use squawk_linter::Rule;
use squawk_syntax::ast::{self, AstNode};
use squawk_syntax::{Parse, SourceFile};

use super::position::Lines;
use super::rules::{DROP_INDEX_CONCURRENTLY, TRUNCATE_TABLE};
use super::{Finding, Severity};

pub(super) fn findings(file: &str, parsed: &Parse<SourceFile>, lines: &Lines) -> Vec<Finding> {
    let finding = |rule: &str, at: u32, message: &str, help: &str| {
        let (line, column) = lines.at(at as usize);
        Finding {
            rule: rule.to_string(),
            severity: Severity::Error,
            file: file.to_string(),
            line,
            column,
            message: message.to_string(),
            help: Some(help.to_string()),
        }
    };
    let stmts: Vec<ast::Stmt> = parsed.tree().stmts().collect();
    let alone = stmts.len() == 1;
    stmts
        .iter()
        .filter_map(|stmt| match stmt {
            ast::Stmt::Truncate(t) if t.drop_behavior().is_none() => Some(finding(
                TRUNCATE_TABLE,
                u32::from(t.syntax().text_range().start()),
                "TRUNCATE empties the table on every tenant.",
                "Delete only the rows that must go, or acknowledge the rule.",
            )),
            ast::Stmt::CreateIndex(c) if alone => c.concurrently_token().map(|token| {
                finding(
                    &Rule::BanConcurrentIndexCreationInTransaction.to_string(),
                    u32::from(token.text_range().start()),
                    "CREATE INDEX CONCURRENTLY cannot run in the transaction each migration runs in.",
                    "Build the index out of band, then ship CREATE INDEX IF NOT EXISTS.",
                )
            }),
            ast::Stmt::DropIndex(d) => d.concurrently_token().map(|token| {
                finding(
                    DROP_INDEX_CONCURRENTLY,
                    u32::from(token.text_range().start()),
                    "DROP INDEX CONCURRENTLY cannot run in the transaction each migration runs in.",
                    "Drop the index out of band, then ship DROP INDEX IF EXISTS.",
                )
            }),
            _ => None,
        })
        .collect()
}

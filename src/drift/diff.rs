//! Object-by-object comparison of two snapshots, with the DDL that brings
//! the tenant back to the expected schema where one can be written.
//!
//! Rules:
//! - `Added` is in the tenant only, `Missing` in the expected schema only,
//!   `Changed` in both with different definitions; equal objects are not
//!   listed, so an empty diff is "in sync".
//! - Each difference carries the DDL that undoes it where one can be
//!   written (`ddl.rs`).

use super::ddl::{added_ddl, changed_ddl, missing_ddl};
use super::snapshot::SchemaObject;
use super::{DiffChange, ObjectDiff, SchemaSnapshot};

/// How `actual` (a tenant's schema) differs from `expected`, in the order
/// of kind and name.
pub fn diff(expected: &SchemaSnapshot, actual: &SchemaSnapshot) -> Vec<ObjectDiff> {
    let (mut want, mut have) = (
        expected.objects().iter().peekable(),
        actual.objects().iter().peekable(),
    );
    let mut out = Vec::new();
    loop {
        let order = match (want.peek(), have.peek()) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(w), Some(h)) => (w.kind(), &w.name).cmp(&(h.kind(), &h.name)),
        };
        match order {
            std::cmp::Ordering::Less => {
                let w = want.next().expect("peeked");
                out.push(entry(
                    w,
                    DiffChange::Missing,
                    Some(w),
                    None,
                    missing_ddl(&w.shape),
                ));
            }
            std::cmp::Ordering::Greater => {
                let h = have.next().expect("peeked");
                out.push(entry(
                    h,
                    DiffChange::Added,
                    None,
                    Some(h),
                    added_ddl(&h.shape),
                ));
            }
            std::cmp::Ordering::Equal => {
                let (w, h) = (want.next().expect("peeked"), have.next().expect("peeked"));
                if w.shape != h.shape {
                    let ddl = changed_ddl(&w.shape, &h.shape);
                    out.push(entry(w, DiffChange::Changed, Some(w), Some(h), ddl));
                }
            }
        }
    }
    out
}

fn entry(
    object: &SchemaObject,
    change: DiffChange,
    expected: Option<&SchemaObject>,
    actual: Option<&SchemaObject>,
    ddl: Option<String>,
) -> ObjectDiff {
    ObjectDiff {
        kind: object.kind(),
        name: object.name.clone(),
        change,
        expected: expected.map(|o| o.shape.definition()),
        actual: actual.map(|o| o.shape.definition()),
        ddl,
    }
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;

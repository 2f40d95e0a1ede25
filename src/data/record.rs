//! `record!`: a record read from a tenant database, declared once. From one
//! list of fields it makes the struct, `columns!()` (its columns in its
//! order, as one literal, so every query stays one literal and no string
//! is built per request) and `from_row` (which reads them in that order).
//!
//! Rule: the column list and the mapper cannot drift apart; a field whose
//! column has another name says so with `as "column"`.

/// A field's column: its own name, or the one `as` gives.
macro_rules! column {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident $column:literal) => {
        $column
    };
}

/// See the module's documentation.
macro_rules! record {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(#[$first_meta:meta])*
            pub $first:ident: $first_ty:ty $(as $first_column:literal)?
            $(, $(#[$field_meta:meta])* pub $field:ident: $ty:ty $(as $column:literal)?)* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(#[$first_meta])*
            pub $first: $first_ty,
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        macro_rules! columns {
            () => {
                concat!(
                    column!($first $($first_column)?)
                    $(, ", ", column!($field $($column)?))*
                )
            };
        }

        fn from_row(r: &tokio_postgres::Row) -> $name {
            let mut at = 0..;
            $name {
                $first: r.get(at.next().expect("a column")),
                $($field: r.get(at.next().expect("a column")),)*
            }
        }
    };
}

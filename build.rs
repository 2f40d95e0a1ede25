//! Rebuilds when a migration is added: refinery embeds the migration
//! directories at compile time, and cargo would not notice a new file there.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=tenant_template/migrations");
}

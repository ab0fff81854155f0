//! `sqlx::migrate!` embeds `migrations/` at compile time but does not tell Cargo to watch the
//! folder, so a new or edited migration would not trigger a rebuild (sqlx documents this build
//! script as the fix).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

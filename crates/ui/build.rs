//! The page is embedded from `ui/dist` (built by `scripts/ui.sh`): rebuild when it changes.
fn main() {
    println!("cargo:rerun-if-changed=../../ui/dist");
}

//! The built page (`ui/dist`, made by `scripts/ui.sh`), embedded in the binary so that no
//! Node.js is needed to run it. A binary built before the page was has none, and says so.

/// The files of `ui/dist`.
#[derive(rust_embed::Embed)]
#[folder = "../../ui/dist/"]
#[allow_missing = true]
pub(crate) struct Assets;

//! The sample firm of `steward serve --demo`.

use std::sync::Arc;

use steward_engine::Engine;

// TODO: generate the sample firm with the generator crate once it builds; until then
// `--demo` installs the example rules only and says so.
pub async fn generate(_engine: &Arc<Engine>) -> anyhow::Result<()> {
    anyhow::bail!("the sample firm generator is not wired into this build yet")
}

//! `repodata.json` for a directory of packages, so an air-gapped site can serve a channel
//! from a shared filesystem.

use std::path::Path;

use anyhow::Result;

use crate::error::UserError;

pub async fn index_dir(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        return Err(
            UserError::failure(format!("{} is not a directory", dir.display()))
                .with_hint("give the channel directory, the one that holds noarch/ and linux-64/")
                .into(),
        );
    }
    // Every channel needs noarch/, even when all its packages are platform-specific.
    let noarch = dir.join("noarch");
    std::fs::create_dir_all(&noarch).map_err(|e| {
        UserError::failure(format!("cannot create {}: {e}", noarch.display()))
            .with_hint("check that you can write there")
    })?;
    rattler_index::index_fs(rattler_index::IndexFsConfig {
        channel: dir.to_path_buf(),
        target_platform: None,
        repodata_patch: None,
        write_zst: false,
        write_shards: false,
        repodata_revisions: vec![],
        package_revision_assignment: Default::default(),
        force: true,
        max_parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
        multi_progress: None,
    })
    .await
    .map_err(|e| UserError::failure(format!("failed to index {}: {e:#}", dir.display())))?;
    Ok(())
}

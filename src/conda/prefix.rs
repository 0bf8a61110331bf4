//! The package records of an installed prefix.

use std::path::Path;

use anyhow::{Context, Result};
use rattler_conda_types::PrefixRecord;

pub(crate) fn installed_records(prefix: &Path) -> Result<Vec<PrefixRecord>> {
    PrefixRecord::collect_from_prefix::<PrefixRecord>(prefix)
        .with_context(|| format!("failed to read {}", prefix.join("conda-meta").display()))
}

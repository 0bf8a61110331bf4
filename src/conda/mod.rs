//! The conda engine, built on rattler: channels and repodata (`rattler_repodata_gateway`),
//! solving (`resolvo`), linking from the shared package cache (`rattler::install`), and the
//! variables an environment's activation scripts set (`rattler_shell`).

pub mod activation;
pub(crate) mod bundle;
pub(crate) mod cache;
pub mod channels;
pub(crate) mod clean;
mod dirmodes;
pub(crate) mod disk;
pub(crate) mod envfile;
pub mod index;
pub mod install;
pub(crate) mod lockfile;
mod network;
pub(crate) mod pip;
pub(crate) mod prefix;
pub(crate) mod pyc;
pub mod solve;
pub mod specs;
pub(crate) mod wheel;

use std::path::PathBuf;

use rattler_conda_types::Subdir;
use url::Url;

pub use network::{Credentials, Network};

/// The platform environments are built for: the one envmod runs on.
pub const PLATFORM: Subdir = Subdir::Linux64;

/// Everything the engine needs from the settings.
#[derive(Debug, Clone)]
pub struct CondaSettings {
    pub channels: Vec<String>,
    pub channel_alias: Url,
    /// The first directory holds the package cache; repodata is cached beside it.
    pub pkgs_dirs: Vec<PathBuf>,
    /// Caches someone else fills: read after `pkgs_dirs`, never written.
    pub readonly_pkgs_dirs: Vec<PathBuf>,
    pub offline: bool,
    /// When to compile `.pyc` files for what is installed (`compile_pyc`, `--compile`,
    /// `--no-compile`).
    pub compile_pyc: pyc::Policy,
}

impl CondaSettings {
    /// Every `pkgs_dirs` entry is read, then every `readonly_pkgs_dirs` entry; packages are
    /// extracted into the first `pkgs_dirs` entry. Refused when others could have written
    /// one of them, or one of the `entries` (`name-version-build`) about to be linked.
    pub(crate) fn package_cache(
        &self,
        entries: &[String],
    ) -> anyhow::Result<rattler::package_cache::PackageCache> {
        cache::package_cache(&self.pkgs_dirs, &self.readonly_pkgs_dirs, entries)
    }

    pub fn repodata_cache_dir(&self) -> PathBuf {
        self.pkgs_dirs[0].parent().map_or_else(
            || self.pkgs_dirs[0].join("repodata"),
            |p| p.join("repodata"),
        )
    }
}

//! What an environment produces outside its prefix, or derives from it: the modulefile
//! the activation script and the Jupyter kernel. Every output offers the same four steps, and `env::ops` calls them in one
//! order for all of them: plan (path and content) and check before the environment is
//! swapped, write after it, remove when the environment goes or the output moves.

pub(crate) mod activate;
pub(crate) mod kernel;
pub(crate) mod modulefile;

use std::path::PathBuf;

use anyhow::Result;

use crate::{conda::activation::EnvVar, manifest::Manifest};

/// What only the installed prefix knows: versions of the requested packages and the
/// variables its activation scripts set.
#[derive(Debug, Default, Clone)]
pub(crate) struct PrefixFacts {
    pub(crate) extensions: Vec<String>,
    pub(crate) env_vars: Vec<EnvVar>,
    /// Activation variables left out because their values hold control characters.
    pub(crate) unsafe_vars: Vec<String>,
    /// Left out, with why: names no shell takes, or that steer envmod's own bookkeeping.
    pub(crate) refused_vars: Vec<(String, &'static str)>,
    /// Set, and named in a warning: variables with which shells or programs run code.
    pub(crate) risky_vars: Vec<String>,
}

/// A file an output is about to write.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) path: PathBuf,
    pub(crate) content: String,
}

pub(crate) trait Output {
    /// What it is, for messages: "modulefile".
    fn what(&self) -> &'static str;
    /// The file this output writes for `manifest`, or `None` when it has none.
    fn plan(&self, manifest: &Manifest, facts: &PrefixFacts) -> Result<Option<Planned>>;
    /// Fail, with a hint, if `planned` cannot or must not be written.
    fn check(&self, manifest: &Manifest, planned: &Planned) -> Result<()>;
    fn write(&self, planned: &Planned) -> Result<()>;
    /// Remove what this output wrote for `manifest`; returns the files removed.
    fn remove(&self, manifest: &Manifest) -> Result<Vec<PathBuf>>;
}

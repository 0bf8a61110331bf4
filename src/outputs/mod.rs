//! What an environment produces outside its prefix, or derives from it: the modulefile
//! the activation script and the Jupyter kernel. Every output offers the same four steps, and `write` calls them in one
//! order for all of them: plan (path and content) and check before the environment is
//! swapped, write after it, remove when the environment goes or the output moves.
//!
//! Where they go is read back from the manifest, which group members of a shared
//! environment can write; so every path and name it holds for them is checked against the
//! rules that made it (`check_recorded`) before any output is planned from it.

pub(crate) mod activate;
pub(crate) mod kernel;
pub(crate) mod modulefile;
pub(crate) mod state;
pub(crate) mod write;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{conda::activation::EnvVar, error::UserError, manifest::Manifest};

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

/// A field of a manifest that envmod could not have written: it contradicts the rest of
/// the manifest or the rules for its kind of name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsound {
    /// The field as the JSON spells it: `module.root`, `kernel.module_vars`.
    pub(crate) field: &'static str,
    /// What is wrong with it, after "`field` in FILE ".
    pub(crate) detail: String,
}

/// Refuse a manifest whose outputs do not hold together, naming the first field that
/// does not.
pub(crate) fn check_recorded(manifest: &Manifest, real: &Path) -> Result<()> {
    let found = modulefile::unsound(manifest)
        .or_else(|| unsound_modules(manifest))
        .or_else(|| manifest.kernel.as_ref().and_then(kernel::unsound));
    match found {
        Some(u) => Err(inconsistent(real, u.field, &u.detail)),
        None => Ok(()),
    }
}

/// A recorded module that is not a module name: the modulefile depends on it and the
/// kernel loads it, so a path there would load a file whoever owns it can change.
fn unsound_modules(manifest: &Manifest) -> Option<Unsound> {
    manifest.modules.iter().find_map(|m| {
        crate::site::modules::check_name(&m.full_name)
            .err()
            .map(|why| Unsound {
                field: "modules",
                detail: format!(
                    "names {}, which is not a module name: {why}",
                    crate::escape::shown(&m.full_name)
                ),
            })
    })
}

/// The error for a manifest field that envmod did not write as it is.
pub(crate) fn inconsistent(real: &Path, field: &str, detail: &str) -> anyhow::Error {
    let path = Manifest::path_in(real);
    UserError::failure(format!(
        "`{field}` in {} {detail}; envmod never writes that, so it acts on nothing the manifest says",
        path.display()
    ))
    .with_hint(
        "someone who can write that file changed it: put back what envmod wrote (or `envmod delete --force` the environment and create it again); nothing was changed",
    )
    .into()
}

/// An absolute path with nothing a reader could take two ways: no `.`, `..` or empty
/// components, no control characters.
pub(crate) fn is_plain_absolute(path: &Path) -> bool {
    let text = path.to_string_lossy();
    let Some(rest) = text.strip_prefix('/') else {
        return false;
    };
    !text.chars().any(char::is_control)
        && rest
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

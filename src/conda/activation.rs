//! The variables an environment's `etc/conda/activate.d` scripts set. rattler_shell runs the
//! activation in a clean bash and reports what changed; the modulefile then sets the same
//! values, so `module load` gives what `conda activate` would.

use std::{collections::HashMap, ffi::OsStr, path::Path};

use anyhow::{Context, Result};
use rattler_shell::{
    activation::{ActivationVariables, Activator, PathModificationBehavior},
    shell::Bash,
};
use serde::Serialize;

use crate::conda::PLATFORM;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: String,
}

/// Set by the modulefile itself, or bookkeeping of conda's own shell integration.
fn handled_elsewhere(name: &str) -> bool {
    matches!(
        name,
        "PATH"
            | "CONDA_PREFIX"
            | "CONDA_DEFAULT_ENV"
            | "CONDA_SHLVL"
            | "CONDA_PROMPT_MODIFIER"
            | "PS1"
            | "_"
            | "SHLVL"
            | "PWD"
            | "OLDPWD"
    ) || name.starts_with("CONDA_ENV_SHLVL_")
        || name.starts_with("CONDA_PREFIX_")
        || name.starts_with("BASH_FUNC_")
}

/// Activate `prefix` in a clean shell and return the variables its scripts set.
pub fn env_vars(prefix: &Path) -> Result<Vec<EnvVar>> {
    let activator = Activator::from_path(prefix, Bash::default(), PLATFORM)
        .with_context(|| format!("failed to read activation scripts of {}", prefix.display()))?;
    if activator.activation_scripts.is_empty() && activator.env_vars.is_empty() {
        return Ok(Vec::new());
    }
    let clean: HashMap<&OsStr, &OsStr> = [
        (OsStr::new("PATH"), OsStr::new("/usr/bin:/bin")),
        (OsStr::new("HOME"), OsStr::new("/nonexistent")),
    ]
    .into();
    let vars = ActivationVariables {
        conda_prefix: None,
        path: None,
        path_modification_behavior: PathModificationBehavior::Prepend,
        current_env: HashMap::new(),
    };
    let changed = activator
        .run_activation(vars, Some(clean))
        .with_context(|| format!("an activation script of {} failed", prefix.display()))?;
    let mut out: Vec<EnvVar> = changed
        .into_iter()
        .filter(|(k, _)| !handled_elsewhere(k))
        .map(|(name, value)| EnvVar { name, value })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

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

/// Keep `variables` in `<prefix>/conda-meta/state`, where conda keeps an environment's own
/// variables (`conda env config vars`) and where activation reads them.
pub(crate) fn write_state(prefix: &Path, variables: &[(String, String)]) -> Result<()> {
    let path = prefix.join("conda-meta/state");
    let mut state: serde_json::Value =
        match crate::fs::read_text(&path, crate::fs::SMALL_FILE, crate::fs::Links::Refuse) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is damaged", path.display()))?,
            Err(_) => serde_json::json!({}),
        };
    let object = state
        .as_object_mut()
        .with_context(|| format!("{} is not a JSON object", path.display()))?;
    let vars = object
        .entry("env_vars")
        .or_insert_with(|| serde_json::json!({}));
    let vars = vars
        .as_object_mut()
        .with_context(|| format!("{}: env_vars is not an object", path.display()))?;
    for (name, value) in variables {
        vars.insert(name.clone(), serde_json::Value::String(value.clone()));
    }
    std::fs::create_dir_all(prefix.join("conda-meta"))?;
    crate::fs::write_atomic(&path, serde_json::to_string_pretty(&state)?.as_bytes())
}

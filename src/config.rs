//! The YAML config file schema shared by the site file and the user file. Every key is
//! optional: a missing key falls through to the next layer. Unknown keys are reported, not
//! ignored, because a misspelt `envs_dri` silently doing nothing is the worst outcome.

use std::{collections::BTreeMap, path::Path};

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleSystemChoice {
    Auto,
    Lmod,
    Tcl,
    None,
}

#[derive(Debug, Default, Deserialize)]
pub struct ConfigFile {
    pub envs_dir: Option<String>,
    pub module_root: Option<String>,
    pub module_system: Option<ModuleSystemChoice>,
    pub python: Option<String>,
    pub ignore_modules: Option<Vec<String>>,
    pub templates_dir: Option<String>,
    pub allow_stacking: Option<bool>,
    pub ld_library_path: Option<bool>,
    pub channels: Option<Vec<String>>,
    pub channel_alias: Option<String>,
    pub pkgs_dirs: Option<Vec<String>>,
    pub offline: Option<bool>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_yaml::Value>,
}

impl ConfigFile {
    /// Read a config file. A missing file is an empty config; an unreadable or invalid one
    /// is an error that names the file.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("failed to read config file {}", path.display()));
            }
        };
        if text.trim().is_empty() {
            return Ok(Some(Self::default()));
        }
        let cfg: Self = serde_yaml::from_str(&text).map_err(|e| {
            crate::error::UserError::failure(format!("invalid config file {}: {e}", path.display()))
                .with_hint("fix the YAML, or see site-config/envmod.yaml for every key")
        })?;
        Ok(Some(cfg))
    }

    pub fn unknown_keys(&self) -> impl Iterator<Item = &str> {
        self.unknown.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_key_and_collects_unknown_ones() {
        let cfg: ConfigFile = serde_yaml::from_str(
            "envs_dir: /apps/envs\nmodule_root: ~/mods\nmodule_system: tcl\npython: /usr/bin/python3\n\
             ignore_modules: [StdEnv, 'xalt/*']\ntemplates_dir: /etc/envmod/templates\n\
             allow_stacking: true\nld_library_path: false\nenvs_dri: typo\n",
        )
        .unwrap();
        assert_eq!(cfg.envs_dir.as_deref(), Some("/apps/envs"));
        assert_eq!(cfg.module_system, Some(ModuleSystemChoice::Tcl));
        assert_eq!(cfg.ignore_modules.unwrap(), vec!["StdEnv", "xalt/*"]);
        assert_eq!(cfg.unknown.keys().collect::<Vec<_>>(), vec!["envs_dri"]);
    }
}

//! What the cluster gives us: the site's Python and its packages, the module system in use,
//! the modules the user has loaded right now and what they provide, and the machine's
//! virtual packages.

pub(crate) mod distributions;
pub mod modules;
pub(crate) mod provides;
pub mod python;
pub(crate) mod quota;
pub(crate) mod run;
pub(crate) mod virtual_packages;

use std::{fmt, path::PathBuf};

use serde::{Deserialize, Serialize};

use crate::environ::Environ;

/// What the site's configuration says the cluster gives a solve.
#[derive(Debug, Clone)]
pub(crate) struct SiteSettings {
    /// `module_provides`, highest layer first, the defaults last.
    pub(crate) rules: Vec<provides::Rule>,
    /// `site_package_names` over the built-in table.
    pub(crate) names: distributions::NameTable,
}

/// The module system asked for, by flag (`--module-system`) or by config (`module_system`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ModuleSystemChoice {
    Auto,
    Lmod,
    Tcl,
    None,
}

/// The kind of modulefile to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModuleSystem {
    Lmod,
    Tcl,
}

impl ModuleSystem {
    /// `auto` follows the module system of the current shell: Lmod exports `LMOD_CMD`,
    /// Environment Modules exports `MODULES_CMD`. Neither means no modulefile.
    pub(crate) fn resolve(choice: ModuleSystemChoice, env: &Environ) -> Option<Self> {
        match choice {
            ModuleSystemChoice::Lmod => Some(Self::Lmod),
            ModuleSystemChoice::Tcl => Some(Self::Tcl),
            ModuleSystemChoice::None => None,
            ModuleSystemChoice::Auto if env.get("LMOD_CMD").is_some() => Some(Self::Lmod),
            ModuleSystemChoice::Auto if env.get("MODULES_CMD").is_some() => Some(Self::Tcl),
            ModuleSystemChoice::Auto => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lmod => "lmod",
            Self::Tcl => "tcl",
        }
    }
}

/// Where a rule or a name-table entry came from: only the config files and the built-in
/// tables hold them (a variable cannot spell an ordered map). Shown and serialized as the
/// settings' own sources are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub(crate) enum RuleSource {
    Default,
    SiteFile(PathBuf),
    UserFile(PathBuf),
}

impl fmt::Display for RuleSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleSource::Default => f.write_str("default"),
            RuleSource::SiteFile(p) => write!(f, "site file {}", p.display()),
            RuleSource::UserFile(p) => write!(f, "user file {}", p.display()),
        }
    }
}

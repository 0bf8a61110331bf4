//! What the cluster gives us: the site's Python, the module system in use, and the modules
//! the user has loaded right now.

pub mod modules;
pub mod python;
pub(crate) mod quota;
pub(crate) mod run;

use serde::{Deserialize, Serialize};

use crate::environ::Environ;

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

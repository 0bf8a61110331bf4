//! What templates see. Everything a modulefile needs is computed here, so templates stay
//! declarative and a site override cannot get the logic wrong.

use serde::Serialize;

use crate::{conda::activation::EnvVar, env::manifest::Manifest};

/// What only the installed prefix knows: versions of the requested packages and the
/// variables its activation scripts set.
#[derive(Debug, Default, Clone)]
pub struct PrefixFacts {
    pub extensions: Vec<String>,
    pub env_vars: Vec<EnvVar>,
}

#[derive(Debug, Serialize)]
pub struct ModulefileContext {
    pub envmod_version: &'static str,
    pub env_name: String,
    /// The command that rewrites this modulefile, for its header.
    pub regenerate: String,
    pub module_name: String,
    pub module_version: String,
    pub prefix: String,
    pub bin_dir: String,
    pub lib_dir: String,
    pub description: String,
    pub python_version: String,
    pub python_short: String,
    pub python_executable: String,
    pub python_mode: String,
    /// Full names of recorded modules, in load order.
    pub depends: Vec<String>,
    /// `(name, name/version)` pairs for the version guard.
    pub guards: Vec<Guard>,
    pub specs: Vec<String>,
    /// `name/version` of each requested package, for Lmod's `module spider`.
    pub extensions: Vec<String>,
    pub env_vars: Vec<EnvVar>,
    pub family: Option<String>,
    pub ld_library_path: bool,
    pub created: String,
}

#[derive(Debug, Serialize)]
pub struct Guard {
    pub name: String,
    pub full_name: String,
}

pub struct ModulefileOptions {
    pub allow_stacking: bool,
    pub ld_library_path: bool,
}

/// Not `envmod`: Environment Modules treats a family name as a conflict with the module of
/// that name, which is envmod's own tool module at many sites.
pub const FAMILY: &str = "envmod_env";

impl ModulefileContext {
    pub fn new(m: &Manifest, opts: &ModulefileOptions, facts: &PrefixFacts) -> Self {
        let module = m.module_name();
        let py = &m.python.site;
        Self {
            envmod_version: env!("CARGO_PKG_VERSION"),
            env_name: m.name.to_string(),
            regenerate: format!("envmod module {}", m.cli_target()),
            module_name: module.to_string(),
            module_version: module.version.clone(),
            prefix: m.prefix.to_string_lossy().into_owned(),
            bin_dir: m.prefix.join("bin").to_string_lossy().into_owned(),
            lib_dir: m.prefix.join("lib").to_string_lossy().into_owned(),
            description: m
                .description
                .clone()
                .unwrap_or_else(|| default_description(m)),
            python_version: py.version.clone(),
            python_short: py.short_version(),
            python_executable: py.executable.to_string_lossy().into_owned(),
            python_mode: match m.python.mode {
                crate::env::manifest::PythonMode::Site => "site".into(),
                crate::env::manifest::PythonMode::Conda => "conda".into(),
            },
            depends: m.modules.iter().map(|l| l.full_name.clone()).collect(),
            guards: m
                .modules
                .iter()
                .filter_map(|l| {
                    l.family_name().map(|n| Guard {
                        name: n.to_string(),
                        full_name: l.full_name.clone(),
                    })
                })
                .collect(),
            specs: m.specs.clone(),
            extensions: facts.extensions.clone(),
            env_vars: facts.env_vars.clone(),
            family: (!opts.allow_stacking).then(|| FAMILY.to_string()),
            ld_library_path: opts.ld_library_path,
            created: m.created.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }
}

fn default_description(m: &Manifest) -> String {
    let py = &m.python.site;
    match m.python.mode {
        crate::env::manifest::PythonMode::Site => {
            format!(
                "Python environment {} on the site Python {}",
                m.name, py.version
            )
        }
        crate::env::manifest::PythonMode::Conda => {
            format!("conda environment {} with Python {}", m.name, py.version)
        }
    }
}

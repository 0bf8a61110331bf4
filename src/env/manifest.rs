//! The manifest is envmod's record of an environment. Every command after `create` reads it
//! instead of guessing. It lives at `<prefix>/.envmod/manifest.json`: not in `conda-meta/`,
//! where conda and rattler would parse any `*.json` as a package record.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    names::{EnvName, ModuleName},
    site::{ModuleSystem, modules::LoadedModule, python::SitePython},
};

pub const MANIFEST_DIR: &str = ".envmod";
pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub envmod_version: String,
    pub name: EnvName,
    pub prefix: PathBuf,
    pub created: chrono::DateTime<chrono::Utc>,
    pub description: Option<String>,
    pub python: PythonInfo,
    /// Modules loaded at creation, in load order; the modulefile depends on them.
    pub modules: Vec<LoadedModule>,
    /// Match specs the user asked for, in the order given.
    #[serde(default)]
    pub specs: Vec<String>,
    #[serde(default)]
    pub channels: Vec<String>,
    pub module: Option<ModuleInfo>,
    /// Created with `-p`: commands that name it again need the prefix, not the name.
    #[serde(default)]
    pub by_prefix: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PythonInfo {
    pub mode: PythonMode,
    #[serde(flatten)]
    pub site: SitePython,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PythonMode {
    /// A venv-style prefix on top of the site's interpreter.
    Site,
    /// A full conda prefix with its own Python.
    Conda,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleInfo {
    pub system: ModuleSystem,
    pub root: PathBuf,
    pub name: ModuleName,
    pub file: PathBuf,
}

impl Manifest {
    pub fn path_in(prefix: &Path) -> PathBuf {
        prefix.join(MANIFEST_DIR).join(MANIFEST_FILE)
    }

    /// How a command line names this environment: `-n NAME` or `-p PREFIX`.
    pub fn cli_target(&self) -> String {
        if self.by_prefix {
            format!(
                "-p {}",
                crate::render::escape::sh_quote(&self.prefix.to_string_lossy())
            )
        } else {
            format!("-n {}", self.name)
        }
    }

    pub fn module_name(&self) -> ModuleName {
        ModuleName::for_python(
            self.name.clone(),
            self.python.site.major,
            self.python.site.minor,
        )
    }

    /// Read the manifest of `prefix`; `Ok(None)` when the directory is not an envmod env.
    pub fn read(prefix: &Path) -> Result<Option<Self>> {
        let path = Self::path_in(prefix);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", path.display())),
        };
        let manifest: Self = serde_json::from_str(&text)
            .with_context(|| format!("envmod manifest {} is damaged", path.display()))?;
        Ok(Some(manifest))
    }

    /// Write the manifest into `root` (the staging dir or the prefix itself), by rename.
    pub fn write_into(&self, root: &Path) -> Result<()> {
        let path = Self::path_in(root);
        let dir = path.parent().expect("manifest path has a parent");
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        let json = serde_json::to_string_pretty(self)?;
        crate::env::lock::write_atomic(&path, json.as_bytes())
    }
}

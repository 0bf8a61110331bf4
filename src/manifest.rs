//! The manifest is envmod's record of an environment. Every command after `create` reads it
//! instead of guessing. It lives at `<prefix>/.envmod/manifest.json`: not in `conda-meta/`,
//! where conda and rattler would parse any `*.json` as a package record.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::{
    names::{EnvName, ModuleName},
    site::{
        ModuleSystem,
        modules::{LoadedModule, ModuleVar},
        python::Interpreter,
    },
};

pub(crate) const MANIFEST_DIR: &str = ".envmod";
pub(crate) const MANIFEST_FILE: &str = "manifest.json";
pub(crate) const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Manifest {
    pub(crate) manifest_version: u32,
    pub(crate) envmod_version: String,
    pub(crate) name: EnvName,
    pub(crate) prefix: PathBuf,
    pub(crate) created: chrono::DateTime<chrono::Utc>,
    pub(crate) description: Option<String>,
    pub(crate) python: PythonInfo,
    /// Modules loaded at creation, in load order; the modulefile depends on them.
    pub(crate) modules: Vec<LoadedModule>,
    /// Match specs the user asked for, in the order given.
    #[serde(default)]
    pub(crate) specs: Vec<String>,
    #[serde(default)]
    pub(crate) channels: Vec<String>,
    /// Specs a file gave for some platforms only (`sel(linux): pkg`), every one of them:
    /// `specs` holds this platform's, and a lock for another platform takes that one's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) selected: Vec<Selected>,
    /// The pip section, installed by the env's pip after the conda packages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) pip: Vec<String>,
    /// Modules of the file it was built from that this site did not have
    /// (`--skip-missing-modules`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) skipped_modules: Vec<String>,
    pub(crate) module: Option<ModuleInfo>,
    /// Its Jupyter kernel, if one was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kernel: Option<KernelInfo>,
    /// Who created it (a login name), which later changes by a group member keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
    /// Shared with others (`create --shared`, `envmod share`): every change keeps the modes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) shared: Option<Sharing>,
    /// `envmod freeze`: install, remove and delete are refused until `envmod unfreeze`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) frozen: bool,
    /// Created with `-p`: commands that name it again need the prefix, not the name.
    #[serde(default)]
    pub(crate) by_prefix: bool,
    /// The environment changed but its outputs (the modulefile) were not brought up to date
    /// yet; the next command on it finishes them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) outputs_pending: bool,
    /// What its `etc/conda/activate.d` scripts set when its packages last changed. Commands
    /// that change only metadata read this instead of running the scripts; `None` until a
    /// package change has run them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) activation: Option<std::collections::BTreeMap<String, String>>,
    /// What the site gave the solve besides the Python itself; every later solve applies it
    /// again, as recorded, whatever the shell has loaded then. `None`: made before envmod
    /// knew stand-ins, and solved as then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) provided: Option<Provisions>,
    /// Brought under envmod by `envmod adopt`: its packages were there before, so `delete`
    /// removes only what envmod wrote unless asked for the prefix too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) adopted: Option<Adopted>,
    /// The site's `module_name_template` when it was adopted: its module keeps that name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) module_template: Option<String>,
}

/// What an adopted environment was, and what envmod set aside when it wrote its own files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Adopted {
    pub(crate) kind: AdoptedKind,
    /// Its own `bin/activate` (a venv's), kept in `.envmod/` and put back by `delete`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) kept_activate: bool,
    /// The user's own Jupyter kernel for it, whose name envmod's kernel took; its files are
    /// kept in `.envmod/` and put back by `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) kernel: Option<TakenKernel>,
}

/// A kernel an adoption took over: its name and directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct TakenKernel {
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum AdoptedKind {
    Conda,
    Pixi,
    Venv,
}

/// Where an adopted environment's own `bin/activate` is kept.
pub(crate) const KEPT_ACTIVATE: &str = "activate.before-envmod";

/// The modules' stand-ins and the site Python's packages, as a solve takes them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Provisions {
    /// One per recorded module that matched a rule, in load order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) modules: Vec<crate::site::provides::ModuleProvision>,
    /// Where the site Python's distributions are read (site mode, unless ignored): a later
    /// change reads them again without starting the interpreter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) site_packages: Vec<PathBuf>,
    /// `--ignore-site-packages`: the site Python's distributions never count as installed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) ignore_site_packages: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PythonInfo {
    pub(crate) mode: PythonMode,
    #[serde(flatten)]
    pub(crate) site: Interpreter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PythonMode {
    /// A venv-style prefix on top of the site's interpreter.
    Site,
    /// A full conda prefix with its own Python.
    Conda,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ModuleInfo {
    pub(crate) system: ModuleSystem,
    pub(crate) root: PathBuf,
    pub(crate) name: ModuleName,
    pub(crate) file: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sharing {
    /// The group that owns it and may change it; `None`: readable by all, changed by the
    /// owner only.
    pub(crate) group: Option<String>,
}

impl Sharing {
    /// The modes to apply, with the group looked up now.
    pub(crate) fn modes(&self) -> Result<crate::fs::Share> {
        let gid = match &self.group {
            Some(g) => Some(crate::fs::group_id(g).ok_or_else(|| {
                crate::error::UserError::usage(format!("there is no group {g:?}"))
                    .with_hint("`getent group` lists the groups; ask your admin for a course group")
            })?),
            None => None,
        };
        if let (Some(gid), Some(g)) = (gid, &self.group)
            && !crate::fs::in_group(gid)
        {
            return Err(crate::error::UserError::usage(format!(
                "you are not a member of the group {g}"
            ))
            .with_hint("`id -Gn` lists your groups; newgrp or a new login picks up a new one")
            .into());
        }
        Ok(crate::fs::Share {
            gid,
            group_write: self.group.is_some(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct KernelInfo {
    /// The kernel's directory name: `jupyter kernelspec list` shows it.
    pub(crate) name: String,
    pub(crate) display_name: String,
    /// `<data dir>/kernels/<name>`.
    pub(crate) dir: PathBuf,
    /// What the recorded modules set, read from the module system when the kernel was
    /// added; the launcher sets these where no module system exists.
    #[serde(default)]
    pub(crate) module_vars: Vec<ModuleVar>,
}

impl Manifest {
    pub(crate) fn path_in(prefix: &Path) -> PathBuf {
        prefix.join(MANIFEST_DIR).join(MANIFEST_FILE)
    }

    /// How a command line names this environment: `-n NAME` or `-p PREFIX`.
    pub(crate) fn cli_target(&self) -> String {
        if self.by_prefix {
            format!(
                "-p {}",
                crate::escape::sh_quote(&self.prefix.to_string_lossy())
            )
        } else {
            format!("-n {}", self.name)
        }
    }

    pub(crate) fn module_name(&self) -> ModuleName {
        if let Some(named) = self
            .module_template
            .as_deref()
            .and_then(|t| ModuleName::from_template(t, &self.name, &self.python.site.version))
        {
            return named;
        }
        ModuleName::for_python(
            self.name.clone(),
            self.python.site.major,
            self.python.site.minor,
        )
    }

    /// Read the manifest of `prefix`; `Ok(None)` when the directory is not an envmod env.
    pub(crate) fn read(prefix: &Path) -> Result<Option<Self>> {
        let path = Self::path_in(prefix);
        let text = match crate::fs::read_text(&path, crate::fs::DOCUMENT, crate::fs::Links::Refuse)
        {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let manifest: Self = serde_json::from_str(&text)
            .with_context(|| format!("envmod manifest {} is damaged", path.display()))?;
        Ok(Some(manifest))
    }

    /// Write the manifest into `root` (the staging dir or the prefix itself), by rename.
    pub(crate) fn write_into(&self, root: &Path) -> Result<()> {
        // The environment of a group is the group's to change: `.envmod` may have been
        // swapped for a link to somewhere the user running envmod can write.
        let json = serde_json::to_string_pretty(self)?;
        crate::fs::write_placed(&Self::path_in(root), json.as_bytes(), None)
    }
}

/// A `sel(EXPR): spec` entry of an environment file (micromamba's selectors), kept whether
/// this platform took it or not, so a lock for another platform takes that one's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Selected {
    pub(crate) selector: String,
    pub(crate) spec: String,
}

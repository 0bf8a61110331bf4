//! What a new environment's plans share, from specs or a file (`create`) or from a lock
//! (`lock`): what `create` is asked for, the manifest it records, and the kernel it adds.

use std::{collections::BTreeMap, path::PathBuf};

use anyhow::Result;

use crate::{
    conda,
    env::{
        apply::{Base, Build, Packages},
        ctx::Ctx,
        from_file::Source,
        plan::{Plan, package_changes},
        prefix::EnvTarget,
        registry::Registry,
    },
    error::UserError,
    manifest::{MANIFEST_VERSION, Manifest, Provisions, PythonInfo, PythonMode},
    outputs::{kernel, modulefile},
    site::{ModuleSystem, modules::LoadedModule, provides, python},
};

/// What `envmod create` was asked for, resolved: the target, the file already read, and
/// every setting it reads.
pub(crate) struct CreateSettings {
    pub(crate) target: EnvTarget,
    /// `-f FILE`, already read.
    pub(crate) file: Option<Source>,
    /// `--clone SRC`: the environment to copy.
    pub(crate) clone: Option<EnvTarget>,
    /// `-c` given on the command line: added to a file's channels.
    pub(crate) cli_channels: Vec<String>,
    /// `--site-python` was given: it, not the file, decides the Python.
    pub(crate) site_python_flag: bool,
    pub(crate) module_map: BTreeMap<String, Option<String>>,
    pub(crate) skip_missing_modules: bool,
    pub(crate) python: Option<String>,
    /// `--python X.Y`: a conda Python from the channels instead of the site's.
    pub(crate) conda_python: Option<String>,
    pub(crate) specs: Vec<String>,
    pub(crate) module_system: Option<ModuleSystem>,
    pub(crate) module_root: PathBuf,
    /// The site's `module_name_template`, unless it is the built-in one: recorded, so the
    /// module keeps its name whatever the config says later.
    pub(crate) module_template: Option<String>,
    pub(crate) ignore_modules: Vec<String>,
    pub(crate) description: Option<String>,
    /// `--kernel`: add a Jupyter kernel as one of its outputs.
    pub(crate) kernel: bool,
    /// `--shared [--group G]`.
    pub(crate) shared: Option<crate::manifest::Sharing>,
    pub(crate) registry: Registry,
    pub(crate) interpreter_cache: PathBuf,
    /// The site Python's packages do not count as installed (`--ignore-site-packages`).
    pub(crate) ignore_site_packages: bool,
    /// `--dry-run`: report the plan and change nothing.
    pub(crate) dry_run: bool,
}

/// What the recorded modules provide by this site's rules; `-v` says which rules were
/// passed over, and why.
pub(super) fn derive(recorded: &[LoadedModule], ctx: &Ctx<'_>) -> provides::Derived {
    let derived = provides::derive(recorded, &ctx.site.rules);
    for note in &derived.notes {
        ctx.printer.detail(note);
    }
    derived
}

/// The provisions a new environment records: what its modules provide, and the site Python's
/// library directories (site mode, not ignored) for every later solve to read its packages
/// from.
pub(super) fn provisions(
    derived: provides::Derived,
    library_dirs: Vec<PathBuf>,
    ignore_site_packages: bool,
) -> Provisions {
    Provisions {
        modules: derived.provisions,
        site_packages: if ignore_site_packages {
            Vec::new()
        } else {
            library_dirs
        },
        ignore_site_packages,
    }
}

/// What a create decided, for its manifest.
pub(super) struct Built {
    pub(super) mode: PythonMode,
    pub(super) interpreter: python::Interpreter,
    pub(super) modules: Vec<LoadedModule>,
    pub(super) specs: Vec<String>,
    pub(super) channels: Vec<String>,
    pub(super) selected: Vec<conda::envfile::Selected>,
    pub(super) pip: Vec<String>,
    pub(super) skipped_modules: Vec<String>,
    pub(super) provided: Provisions,
}

impl Built {
    fn manifest(self, s: &CreateSettings) -> Manifest {
        let target = &s.target;
        let mut manifest = Manifest {
            manifest_version: MANIFEST_VERSION,
            envmod_version: env!("CARGO_PKG_VERSION").to_string(),
            name: target.name.clone(),
            prefix: target.prefix.clone(),
            created: chrono::Utc::now(),
            description: s.description.clone(),
            python: PythonInfo {
                mode: self.mode,
                site: self.interpreter,
            },
            modules: self.modules,
            specs: self.specs,
            channels: self.channels,
            selected: self.selected,
            pip: self.pip,
            skipped_modules: self.skipped_modules,
            module: None,
            kernel: None,
            frozen: false,
            shared: s.shared.clone(),
            owner: crate::fs::current_user(),
            by_prefix: target.by_prefix,
            outputs_pending: false,
            provided: Some(self.provided),
            activation: None,
            adopted: None,
            module_template: s.module_template.clone(),
        };
        manifest.module = s
            .module_system
            .map(|system| modulefile::info_for(&manifest, system, &s.module_root));
        manifest
    }

    /// The plan for a new environment with `packages` under the manifest this records.
    pub(super) fn into_plan(
        self,
        s: CreateSettings,
        packages: Packages,
        keep: Option<crate::env::cleanup::CleanupGuard>,
        ctx: &Ctx<'_>,
    ) -> Result<Plan> {
        let mut manifest = self.manifest(&s);
        with_kernel(&mut manifest, &s, ctx)?;
        let changes = package_changes(&[], &packages.records, manifest.python.mode);
        Ok(Plan {
            build: Build {
                next: manifest,
                packages: Some(packages),
                base: Base::Fresh {
                    target: s.target,
                    registry: s.registry,
                },
            },
            changes,
            keep,
        })
    }
}

/// `--kernel`: the kernel becomes one of the outputs `create` writes. ipykernel must come
/// with the packages or be in the site Python, checked before anything is built.
fn with_kernel(manifest: &mut Manifest, s: &CreateSettings, ctx: &Ctx<'_>) -> Result<()> {
    if !s.kernel {
        return Ok(());
    }
    let in_specs = manifest.specs.iter().any(|spec| {
        conda::specs::Spec::parse(spec).is_ok_and(|s| s.name().as_normalized() == "ipykernel")
    });
    if !in_specs {
        if manifest.python.mode == PythonMode::Conda {
            return Err(UserError::usage(format!(
                "--kernel needs ipykernel, and {} does not ask for it",
                manifest.name
            ))
            .with_hint("add ipykernel to the packages")
            .into());
        }
        // Not built yet: only the site's packages, asked of the Python this user chose.
        let site = Some(Ok(manifest.python.site.executable.as_path()));
        kernel::require_ipykernel(manifest, &manifest.prefix, site)
            .map_err(|e| e.context("--kernel: add ipykernel to the packages"))?;
    }
    manifest.kernel = Some(kernel::plan_kernel(
        manifest,
        None,
        None,
        None,
        ctx.environ,
        ctx.printer,
    )?);
    Ok(())
}

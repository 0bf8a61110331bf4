//! `envmod adopt`: an environment made by conda, pixi, venv or conda-env-mod, brought under
//! envmod as it is. Its packages are never touched: envmod adds only its manifest (in
//! `.envmod/`), the modulefile, `bin/activate` and a kernel, and `delete` of an adopted
//! environment takes away only those unless it is asked for the prefix too.

mod conda;
mod release;
mod venv;

use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
};

use anyhow::Result;

pub(crate) use release::release;

use crate::{
    env::{ctx::Ctx, lock::EnvLock, prefix::EnvTarget, record, registry::Registry},
    error::UserError,
    manifest::{
        Adopted, AdoptedKind, KEPT_ACTIVATE, MANIFEST_DIR, MANIFEST_VERSION, Manifest, PythonInfo,
        PythonMode,
    },
    outputs::{modulefile, write::Scripts},
    site::{ModuleSystem, modules::LoadedModule},
};

/// Where the adopted environments' outputs go.
pub(crate) struct AdoptOptions {
    pub(crate) module_system: Option<ModuleSystem>,
    pub(crate) module_root: PathBuf,
    pub(crate) registry: Registry,
    pub(crate) dry_run: bool,
}

/// What kind of environment a directory holds, from the files that make it one.
fn kind_of(real: &Path) -> Option<AdoptedKind> {
    let is_dir = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
    let is_file = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_file());
    if is_dir(&real.join("conda-meta")) {
        let pixi = real
            .parent()
            .and_then(|envs| (envs.file_name()? == "envs").then(|| envs.parent()?.file_name()))
            .flatten()
            .is_some_and(|d| d == ".pixi");
        return Some(if pixi {
            AdoptedKind::Pixi
        } else {
            AdoptedKind::Conda
        });
    }
    is_file(&real.join("pyvenv.cfg")).then_some(AdoptedKind::Venv)
}

pub(crate) fn kind_name(kind: AdoptedKind) -> &'static str {
    match kind {
        AdoptedKind::Conda => "conda environment",
        AdoptedKind::Pixi => "pixi environment",
        AdoptedKind::Venv => "venv",
    }
}

/// Adopt the environment at `target`, recording `modules` as the ones it is built on.
pub(crate) fn adopt(
    target: &EnvTarget,
    modules: Vec<LoadedModule>,
    opts: &AdoptOptions,
    ctx: &Ctx<'_>,
) -> Result<Manifest> {
    let real = target.real_path()?;
    if !real.symlink_metadata().is_ok_and(|m| m.is_dir()) {
        return Err(UserError::usage(format!(
            "there is no environment at {}",
            target.prefix.display()
        ))
        .with_hint("name the directory of an existing conda environment or venv with -p")
        .into());
    }
    let _lock = EnvLock::acquire(&real, &target.name)?;
    if crate::env::prefix::has_envmod_dir(&real) {
        return Err(UserError::usage(format!(
            "{} is already an envmod environment",
            target.prefix.display()
        ))
        .with_hint(format!(
            "`envmod module {}` writes its modulefile again",
            target.cli()
        ))
        .into());
    }
    let kind = kind_of(&real).ok_or_else(|| {
        UserError::usage(format!(
            "{} is neither a conda environment (it has no conda-meta/) nor a venv (no pyvenv.cfg)",
            target.prefix.display()
        ))
        .with_hint("name the prefix of a conda, pixi or venv environment")
    })?;
    let mut manifest = describe(target, &real, kind, modules, ctx)?;
    manifest.module = opts
        .module_system
        .map(|system| modulefile::info_for(&manifest, system, &opts.module_root));
    if opts.dry_run {
        return Ok(manifest);
    }
    write(&real, &mut manifest, ctx)?;
    if target.by_prefix {
        opts.registry.add(&target.prefix)?;
    }
    Ok(manifest)
}

/// The manifest an adopted environment gets, from what is in it.
fn describe(
    target: &EnvTarget,
    real: &Path,
    kind: AdoptedKind,
    modules: Vec<LoadedModule>,
    ctx: &Ctx<'_>,
) -> Result<Manifest> {
    let (python, specs, channels, pip, provided) = match kind {
        AdoptedKind::Conda | AdoptedKind::Pixi => {
            let records = crate::conda::prefix::installed_records(real)?;
            let python = PythonInfo {
                mode: PythonMode::Conda,
                site: conda::interpreter(&target.prefix, &records)?,
            };
            let specs = conda::requested_specs(real, &records)?;
            (python, specs, conda::channels(&records), Vec::new(), None)
        }
        AdoptedKind::Venv => {
            let v = venv::describe(real, ctx)?;
            (v.python, Vec::new(), Vec::new(), v.pip, Some(v.provided))
        }
    };
    Ok(Manifest {
        manifest_version: MANIFEST_VERSION,
        envmod_version: env!("CARGO_PKG_VERSION").to_string(),
        name: target.name.clone(),
        prefix: target.prefix.clone(),
        created: chrono::Utc::now(),
        description: None,
        python,
        modules,
        specs,
        channels,
        selected: Vec::new(),
        pip,
        skipped_modules: Vec::new(),
        module: None,
        kernel: None,
        owner: crate::fs::current_user(),
        shared: None,
        frozen: false,
        by_prefix: target.by_prefix,
        outputs_pending: false,
        activation: None,
        provided: Some(provided.unwrap_or_default()),
        adopted: Some(Adopted {
            kind,
            kept_activate: false,
        }),
    })
}

/// Write the manifest and the outputs; a failure takes back everything written.
fn write(real: &Path, manifest: &mut Manifest, ctx: &Ctx<'_>) -> Result<()> {
    ctx.outputs().check(manifest)?;
    let dir = real.join(MANIFEST_DIR);
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(|e| {
            UserError::failure(format!("cannot create {}: {e}", dir.display()))
                .with_hint("adopt an environment you can write; nothing was changed")
        })?;
    let activate = real.join("bin/activate");
    if activate.symlink_metadata().is_ok() {
        std::fs::rename(&activate, dir.join(KEPT_ACTIVATE))?;
        if let Some(a) = manifest.adopted.as_mut() {
            a.kept_activate = true;
        }
    }
    manifest.outputs_pending = true;
    let written = manifest.write_into(real).and_then(|()| {
        ctx.outputs()
            .write(manifest, real, None, Scripts::IfTrusted)
    });
    if let Err(e) = written {
        release::undo(real, manifest, ctx);
        return Err(UserError::failure(format!(
            "cannot adopt {}: {e:#}",
            manifest.prefix.display()
        ))
        .with_hint("fix that and adopt it again; nothing of it was changed")
        .into());
    }
    record::save(
        ctx.environ,
        real,
        manifest,
        record::Channels::Used,
        ctx.printer,
    );
    manifest.outputs_pending = false;
    manifest.write_into(real)
}

/// Adopt every environment a tree of conda-env-mod modulefiles names.
pub(crate) fn from_modules(
    dir: &Path,
    _only: Option<&crate::names::EnvName>,
    _envs_dir: &Path,
    _opts: &AdoptOptions,
    _ctx: &Ctx<'_>,
) -> Result<()> {
    Err(UserError::usage(format!("cannot read {} yet", dir.display())).into())
}

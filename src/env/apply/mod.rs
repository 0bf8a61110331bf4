//! The one build step every change ends in, whatever planned it: `create` (from specs, a
//! file or a lock), `install`, `remove` and the changes that touch only the manifest and the
//! outputs. Each safety rule is written here once: outputs are checked before anything on
//! disk changes; packages go into a private tree (an empty one for a new environment, a
//! hard-linked clone of the live one otherwise) that is renamed or swapped in whole; after
//! that an output that fails is recorded as pending in the manifest and finished by the next
//! command on the environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rattler_conda_types::RepoDataRecord;

mod build;
mod pip_copy;

pub(crate) use pip_copy::{PipCopy, pip_dists};

use build::{fill, in_place, staging_error};

use crate::{
    conda,
    env::{
        cleanup::{self, Staging},
        ctx::Ctx,
        lock::{self, EnvLock},
        prefix::{self, Accept, EnvTarget, Opened},
        record,
        registry::Registry,
        swap, venv,
    },
    error::UserError,
    failpoint,
    manifest::{KernelInfo, Manifest, ModuleInfo, PythonMode},
    outputs::write::Scripts,
};

/// What a plan hands the build step: the manifest the environment will have, and the
/// packages to put under it.
pub(crate) struct Build {
    pub(crate) next: Manifest,
    /// `None`: no package changes, only the manifest and the outputs.
    pub(crate) packages: Option<Packages>,
    pub(crate) base: Base,
}

/// The packages a plan settled on, installed exactly as they are.
#[derive(Default)]
pub(crate) struct Packages {
    pub(crate) records: Vec<RepoDataRecord>,
    pub(crate) specs: Vec<conda::specs::Spec>,
    /// The client `records` were solved with.
    pub(crate) network: conda::Network,
    pub(crate) pip: Pip,
    /// `variables:` of an environment file, kept in `conda-meta/state` as conda keeps them.
    pub(crate) variables: Vec<(String, String)>,
}

/// What pip installs after the conda packages.
pub(crate) enum Pip {
    /// Requirement lines, run where the file they came from is.
    Lines { lines: Vec<String>, cwd: PathBuf },
    /// The wheels of a lock or a bundle.
    Wheels(Vec<conda::pip::LockedWheel>),
    /// The pip packages of the environment a clone copies.
    Copy(Box<PipCopy>),
}

impl Default for Pip {
    fn default() -> Self {
        Pip::Lines {
            lines: Vec::new(),
            cwd: PathBuf::new(),
        }
    }
}

/// What the build starts from.
pub(crate) enum Base {
    /// Nothing yet at `target`: an empty tree, moved into place.
    Fresh {
        target: EnvTarget,
        registry: Registry,
    },
    /// An environment already there, opened under its lock.
    Existing(Box<Existing>),
}

/// An environment a change starts from.
pub(crate) struct Existing {
    pub(crate) target: EnvTarget,
    pub(crate) opened: Opened,
    /// Its manifest before the change, as far as this user trusts it.
    pub(crate) old: Manifest,
    /// It was moved or copied here and is being re-pointed at this place.
    pub(crate) relocated: bool,
    /// The change shares it (`envmod share`): its whole tree gets the shared modes.
    pub(crate) shares: bool,
    /// Channels of the manifest that this user did not choose, whose scripts are named.
    pub(crate) unchosen: Vec<String>,
}

/// What a build did, for the command's report.
pub(crate) struct Changed {
    pub(crate) manifest: Manifest,
    pub(crate) packages: Option<conda::install::Changes>,
    pub(crate) old_module: Option<ModuleInfo>,
    pub(crate) old_kernel: Option<KernelInfo>,
}

/// Run the build step `build` describes.
pub(crate) async fn apply(build: Build, ctx: &Ctx<'_>) -> Result<Changed> {
    let Build {
        next,
        packages,
        base,
    } = build;
    ctx.outputs().check(&next)?;
    match base {
        Base::Fresh { target, registry } => {
            let manifest =
                fresh(&target, next, packages.unwrap_or_default(), &registry, ctx).await?;
            Ok(Changed {
                manifest,
                packages: None,
                old_module: None,
                old_kernel: None,
            })
        }
        Base::Existing(existing) => change(*existing, next, packages, ctx).await,
    }
}

/// Build a new environment in a staging directory, move it into place, then write its
/// outputs; any failure, or an interrupt, leaves nothing behind.
async fn fresh(
    target: &EnvTarget,
    mut manifest: Manifest,
    packages: Packages,
    registry: &Registry,
    ctx: &Ctx<'_>,
) -> Result<Manifest> {
    let real = target.real_path()?;
    if real.symlink_metadata().is_ok() {
        return Err(prefix::already_exists(target));
    }
    let _lock = EnvLock::acquire(&real, &target.name)?;
    if real.symlink_metadata().is_ok() {
        return Err(prefix::already_exists(target));
    }
    let sharing = manifest.shared.as_ref().map(|s| s.modes()).transpose()?;
    if let Some(modes) = &sharing {
        // Whoever may change the environment must be able to take its lock.
        modes.apply(&lock::lock_path(&real, &target.name))?;
    }
    lock::clear_leftovers(&real, &target.name)?;

    let staging_path = lock::staging_dir(&real, &target.name);
    let staging = Staging::create(&staging_path).map_err(|e| staging_error(&staging_path, e))?;
    let root = staging
        .make_tree()
        .map_err(|e| staging_error(&staging_path, e))?;
    if manifest.python.mode == PythonMode::Site {
        venv::write_layout(&root.held_path(), &target.prefix, &manifest.python.site)?;
    }
    failpoint::hit("create:staged");
    // What a plain mkdir would have given it, the setgid bit of a group directory included.
    let mode = (0o777 & !crate::fs::umask()) | (root.meta().mode & 0o2000);
    fill(&root, mode, &manifest, packages, (&real, true), ctx).await?;
    let guard = staging.move_into(&real).with_context(|| {
        format!(
            "failed to move the new environment into {}",
            target.prefix.display()
        )
    })?;
    failpoint::hit("create:renamed");
    // A new environment whose outputs fail is removed whole: the guard still holds it.
    guard.finish_with(|| {
        ctx.outputs()
            .write(&mut manifest, &real, None, Scripts::Run(&[]))?;
        manifest.write_into(&real)?;
        if let Some(modes) = &sharing {
            modes.apply(&Manifest::path_in(&real))?;
        }
        Ok(())
    })?;
    record::save(
        ctx.environ,
        &real,
        &manifest,
        record::Channels::Used,
        ctx.printer,
    );
    if target.by_prefix {
        registry.add(&target.prefix)?;
    }
    Ok(manifest)
}

/// Change an existing environment: its packages in a clone swapped in whole, or (with no
/// packages to change) its manifest in place; then its outputs.
async fn change(
    existing: Existing,
    mut next: Manifest,
    packages: Option<Packages>,
    ctx: &Ctx<'_>,
) -> Result<Changed> {
    let Existing {
        target,
        mut opened,
        old,
        relocated,
        shares,
        unchosen,
    } = existing;
    let target = &target;
    next.outputs_pending = true;
    let mut changes = None;
    let mut guard = None;
    let mut untrusted_before = Vec::new();
    let run_scripts = packages.is_some() || relocated;
    let channels_used = match packages.is_some() {
        true => record::Channels::Used,
        false => record::Channels::Kept,
    };
    if run_scripts {
        // Until the scripts of the new tree have run: an interrupted change runs them when
        // the next command finishes its outputs.
        next.activation = None;
    }
    match packages {
        Some(packages) => {
            untrusted_before = conda::activation::untrusted_scripts(&opened.real)?;
            let staging_path = lock::staging_dir(&opened.real, &target.name);
            let staging =
                Staging::create(&staging_path).map_err(|e| staging_error(&staging_path, e))?;
            let own_links = match old.python.mode {
                // A venv envmod adopted keeps the links `python -m venv` made.
                PythonMode::Site if old.adopted.is_some() => venv::adopted_links(&old.python.site),
                PythonMode::Site => venv::own_links(&old.python.site),
                PythonMode::Conda => Vec::new(),
            };
            let staged = swap::clone_tree(&opened.real, staging.dir(), &own_links)?;
            failpoint::hit("change:cloned");
            changes = fill(
                &staged.root,
                staged.mode,
                &next,
                packages,
                (&opened.real, false),
                ctx,
            )
            .await?;
            staging.exchange_with(&opened.real)?;
            // Dropping the staging directory removes the old tree, now in it.
            guard = Some(staging);
        }
        None => in_place(&next, &old, shares, &opened.real, target, ctx)?,
    }
    cleanup::set_committed(Some(format!(
        "{} was changed; its modulefile is brought up to date by the next envmod command on it (`envmod module {}`)",
        next.name,
        target.cli()
    )));
    failpoint::hit("change:exchanged");
    opened.manifest = next;
    // A relocated copy's old outputs are the original's, never the copy's to remove.
    let replaced = (!relocated).then_some(&old);
    untrusted_before.extend(conda::activation::scripts_from_channels(
        &opened.real,
        &unchosen,
    )?);
    let scripts = match run_scripts {
        true => Scripts::Run(&untrusted_before),
        false => Scripts::Recorded,
    };
    finish_outputs(&mut opened, replaced, target, scripts, channels_used, ctx)?;
    // The old tree, now at the staging path.
    if let Some(g) = guard {
        let left = g.path();
        if let Err(e) = g.discard() {
            let (problem, fix) = crate::fs::blocked::explain(&e);
            ctx.printer.warn(format!(
                "{} was changed, but its old files are left in {}: {problem}; {fix}, and the next envmod command on it removes them",
                opened.manifest.name,
                left.display()
            ));
        }
    }
    Ok(Changed {
        manifest: opened.manifest,
        packages: changes,
        old_module: old.module,
        old_kernel: old.kernel,
    })
}

/// After the swap: write the outputs, then record that they are done. A failure leaves the
/// manifest saying "pending", and the error says so and how it gets finished.
fn finish_outputs(
    opened: &mut Opened,
    old: Option<&Manifest>,
    target: &EnvTarget,
    scripts: Scripts<'_>,
    channels: record::Channels,
    ctx: &Ctx<'_>,
) -> Result<()> {
    if let Err(e) = ctx
        .outputs()
        .write(&mut opened.manifest, &opened.real, old, scripts)
    {
        return Err(UserError::failure(format!(
            "{} was changed, but its modulefile could not be brought up to date: {e:#}",
            opened.manifest.name
        ))
        .with_hint(format!(
            "fix that, then run `envmod module {}` (any envmod command on the environment finishes it)",
            target.cli()
        ))
        .into());
    }
    record::save(
        ctx.environ,
        &opened.real,
        &opened.manifest,
        channels,
        ctx.printer,
    );
    opened.manifest.outputs_pending = false;
    opened.manifest.write_into(&opened.real)?;
    if let Some(sharing) = &opened.manifest.shared {
        sharing
            .modes()?
            .apply_beneath(&opened.real, &Manifest::path_in(Path::new("")))?;
    }
    cleanup::set_committed(None);
    Ok(())
}

/// Open an existing environment and first finish outputs an earlier command left pending,
/// unless `finish` is false (a dry run changes nothing).
pub(crate) fn open(
    target: &EnvTarget,
    accept: Accept,
    finish: bool,
    ctx: &Ctx<'_>,
) -> Result<Opened> {
    let mut opened = prefix::open(target, accept)?;
    // Pending outputs of a manifest that names places this user never chose are left to
    // the command, which refuses them or replaces them from its own flags.
    if finish
        && opened.manifest.outputs_pending
        && accept == Accept::Intact
        && record::agrees(ctx.environ, &opened.real, &opened.manifest)
    {
        ctx.printer.info(format!(
            "{}: finishing the modulefile an interrupted command left out of date",
            opened.manifest.name
        ));
        // A package change that stopped before its outputs has not run the scripts yet. The
        // manifest that says so is the group's to edit, so a command that changes no packages
        // runs them only when no one else wrote one.
        let scripts = match opened.manifest.activation {
            None => Scripts::IfTrusted,
            _ => Scripts::Recorded,
        };
        finish_outputs(
            &mut opened,
            None,
            target,
            scripts,
            record::Channels::Kept,
            ctx,
        )?;
    }
    Ok(opened)
}

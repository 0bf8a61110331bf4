//! What goes into an environment's tree: the packages and everything that comes with them
//! in a private tree before it is moved in, or the manifest alone in the live one.

use std::path::Path;

use anyhow::{Context, Result};

use crate::{
    conda,
    env::{
        apply::{Packages, Pip},
        ctx::Ctx,
        lock,
        prefix::EnvTarget,
        swap, venv,
    },
    error::UserError,
    failpoint,
    fs::tree,
    manifest::{Manifest, PythonMode},
};

/// Put `packages` into the private tree `root` (a `fresh` empty one, or a clone of the live
/// tree at `real`), with what goes along: state, pip, compiled bytecode, the manifest `next` and
/// the modes; then open the root up to `mode`, ready to be moved in. The clone's changes come
/// back; a new tree gets none.
pub(super) async fn fill(
    root: &tree::Dir,
    mode: u32,
    next: &Manifest,
    packages: Packages,
    (real, fresh): (&Path, bool),
    ctx: &Ctx<'_>,
) -> Result<Option<conda::install::Changes>> {
    // Every step below names the tree through its descriptor: see `cleanup::Staging`.
    let dir = root.held_path();
    let Packages {
        records,
        specs,
        network,
        pip,
        variables,
    } = packages;
    let sharing = next.shared.as_ref().map(|s| s.modes()).transpose()?;
    // Nothing to compile in a first-day environment: no interpreter start for it.
    let installs =
        !fresh || !records.is_empty() || !next.pip.is_empty() || matches!(pip, Pip::Copy(_));
    let mut changes = None;
    if fresh && records.is_empty() {
        std::fs::create_dir_all(dir.join("conda-meta"))?;
    } else {
        let request = conda::install::InstallRequest {
            dir: &dir,
            target_prefix: &next.prefix,
            records,
            specs,
            skip_python: next.python.mode == PythonMode::Site,
            network: &network,
            copy_from_cache: sharing.as_ref().is_some_and(|m| m.group_write),
        };
        let installed = conda::install::install(ctx.conda, request, ctx.printer).await?;
        if fresh {
            ctx.printer
                .detail(format!("installed {}", installed.installed.join(", ")));
        } else {
            changes = Some(installed);
        }
    }
    if !variables.is_empty() {
        conda::activation::write_state(&dir, &variables)?;
    }
    match pip {
        Pip::Lines { lines, cwd } => {
            conda::pip::install(&dir, &next.prefix, &lines, &cwd, ctx.printer)?
        }
        Pip::Wheels(wheels) => {
            let client = (!ctx.conda.offline).then(|| network.client()).transpose()?;
            conda::pip::install_wheels(&dir, &next.prefix, &wheels, client.as_ref(), ctx.printer)
                .await?;
        }
        Pip::Copy(src) => {
            let copied = super::pip_copy::copy(&src, &dir, &next.prefix, ctx.printer)?;
            ctx.printer
                .detail(format!("copied {copied} files of pip packages"));
        }
    }
    if installs && ctx.conda.compile_pyc.wants(next.shared.is_some(), real) {
        // A new environment's site Python was chosen, and started, by this very command.
        let interpreter = compiler(next, |exe| match fresh {
            true => Ok(exe),
            false => venv::may_run(ctx.environ, real, exe).map(|()| exe),
        });
        conda::pyc::compile(&dir, &next.prefix, &interpreter, ctx.printer)?;
    }
    failpoint::hit(match fresh {
        true => "create:installed",
        false => "change:installed",
    });
    next.write_into(&dir)?;
    if let Some(modes) = &sharing {
        modes.apply_below(root)?;
    }
    swap::open_up(root, sharing.as_ref(), mode)?;
    Ok(changes)
}

/// A change of the manifest alone, written into the live tree; sharing an environment
/// gives its whole tree the shared modes.
pub(super) fn in_place(
    next: &Manifest,
    old: &Manifest,
    shares: bool,
    real: &Path,
    target: &EnvTarget,
    ctx: &Ctx<'_>,
) -> Result<()> {
    next.write_into(real)?;
    let Some(sharing) = &next.shared else {
        return Ok(());
    };
    let modes = sharing.modes()?;
    if !shares {
        return modes.apply_beneath(real, &Manifest::path_in(Path::new("")));
    }
    // Its users can no longer write the cache. Compiled in place only while no one but this
    // user could have written the tree.
    if old.shared.is_none() && ctx.conda.compile_pyc.wants(true, real) {
        let interpreter = compiler(next, |exe| {
            venv::may_run(ctx.environ, real, exe).map(|()| exe)
        });
        conda::pyc::compile(real, &next.prefix, &interpreter, ctx.printer)?;
    }
    if modes.group_write {
        // Files hard-linked from a package cache (or shared with another environment) would
        // take the group's write access with them.
        let root =
            tree::Dir::open(real).with_context(|| format!("failed to open {}", real.display()))?;
        let copied = tree::separate_links(&root)?;
        if copied > 0 {
            ctx.printer.info(format!(
                "copied {copied} files that were hard links into the package cache, so the group's write access stays in the environment"
            ));
        }
    }
    modes.apply_tree(real)?;
    modes.apply(&lock::lock_path(real, &target.name))
}

/// The interpreter that compiles `manifest`'s environment: in site mode its site Python, if
/// `site` lets envmod start it.
fn compiler<'a>(
    manifest: &'a Manifest,
    site: impl FnOnce(&'a Path) -> Result<&'a Path, String>,
) -> conda::pyc::Compiler<'a> {
    let python = &manifest.python;
    match python.mode {
        PythonMode::Site => conda::pyc::Compiler::Site(site(&python.site.executable)),
        PythonMode::Conda => conda::pyc::Compiler::Conda {
            major: python.site.major,
            minor: python.site.minor,
        },
    }
}

/// Why the staging directory at `path` could not be made. It is made under the lock, just
/// after any leftover of envmod's own was removed, so one that is there was put there since.
pub(super) fn staging_error(path: &Path, e: std::io::Error) -> anyhow::Error {
    let dir = path.parent().unwrap_or(Path::new("/"));
    match e.kind() {
        std::io::ErrorKind::AlreadyExists => UserError::failure(format!(
            "cannot create {}: someone who can write {} put something there while envmod was starting",
            path.display(),
            dir.display()
        ))
        .with_hint("find out who did (ls -l), then run the command again, which removes it; nothing was changed"),
        _ => UserError::failure(format!("cannot create {}: {e}", path.display())).with_hint(
            "check that you can write to that directory, or choose another with --prefix or envs_dir",
        ),
    }
    .into()
}

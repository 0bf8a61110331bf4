//! Removing an environment: renamed aside first, under its lock, so a failure before that
//! changes nothing and one after it leaves a trash directory that `list` and doctor name;
//! then its outputs, then the tree.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    env::{
        ctx::Ctx,
        lock::{self, EnvLock},
        prefix::{self, EnvTarget},
        record::{self, Replacing},
        registry::Registry,
    },
    error::UserError,
    failpoint,
    manifest::Manifest,
};

/// What `delete` removed.
pub(crate) struct Deleted {
    pub(crate) name: String,
    /// Each output removed, with what it is (`modulefile`, `Jupyter kernel`, ...).
    pub(crate) outputs: Vec<(&'static str, PathBuf)>,
    /// An adopted environment let go of: only what envmod wrote was removed.
    pub(crate) released: bool,
}

/// Remove an environment: rename it aside first (so a failure there changes nothing), then
/// its outputs, then the tree. With `force`, a directory whose manifest is damaged, or that
/// is a copy of another environment, is removed too, and only outputs that name it go.
pub(crate) fn delete(
    target: &EnvTarget,
    force: bool,
    with_prefix: bool,
    registry: &Registry,
    ctx: &Ctx<'_>,
) -> Result<Deleted> {
    let real = target.real_path()?;
    let _lock = EnvLock::acquire(&real, &target.name)?;
    lock::clear_leftovers(&real, &target.name)?;
    let manifest = match prefix::read_manifest(target, &real) {
        Ok(m) if m.frozen => return Err(prefix::frozen(&m)),
        // With --force, only the outputs this user recorded go, whatever the manifest says.
        Ok(m) if crate::fs::same_dir(&m.prefix, &real) => Some(record::trusted(
            ctx.environ,
            &real,
            &m,
            if force {
                Replacing::EVERYTHING
            } else {
                Replacing::NOTHING
            },
            &target.cli(),
        )?),
        Ok(_) if force => {
            ctx.printer.warn(format!(
                "{} is a copy of another environment; removing the copy and leaving the modulefiles alone",
                target.prefix.display()
            ));
            None
        }
        Ok(m) => {
            return Err(prefix::relocated(
                target,
                &m,
                &format!(
                    "`envmod delete {} --force` removes only this copy",
                    target.cli()
                ),
            ));
        }
        Err(_) if force && prefix::has_envmod_dir(&real) => {
            ctx.printer.warn(format!(
                "{}: the manifest is damaged; removing the directory, but not its modulefile (find it with `module avail {}`)",
                target.prefix.display(),
                target.name
            ));
            None
        }
        Err(e) => return Err(e),
    };
    if let Some(m) = &manifest
        && m.adopted.is_some()
        && !with_prefix
    {
        return Ok(Deleted {
            name: m.name.to_string(),
            outputs: crate::env::adopt::release(target, &real, m, registry, ctx)?,
            released: true,
        });
    }
    let blockers = crate::fs::tree::blockers(&real)?;
    if !blockers.is_empty() {
        let (problem, fix) = crate::fs::blocked::blocked_by(&blockers);
        return Err(UserError::failure(format!(
            "cannot delete {}: {problem}",
            target.prefix.display()
        ))
        .with_hint(format!("{fix}; nothing was removed"))
        .into());
    }
    let deleted = remove_aside(target, &real, manifest.as_ref(), registry, ctx)?;
    record::forget(ctx.environ, &real);
    Ok(deleted)
}

fn remove_aside(
    target: &EnvTarget,
    real: &Path,
    manifest: Option<&Manifest>,
    registry: &Registry,
    ctx: &Ctx<'_>,
) -> Result<Deleted> {
    let trash = lock::trash_dir(real, &target.name);
    std::fs::rename(real, &trash).map_err(|e| {
        UserError::failure(format!("cannot remove {}: {e}", target.prefix.display()))
            .with_hint("check the permissions of its parent directory; nothing was removed")
    })?;
    failpoint::hit("delete:trashed");
    let mut outputs = Vec::new();
    if let Some(m) = manifest {
        for out in ctx.outputs().all() {
            match out.remove(m) {
                Ok(removed) => outputs.extend(removed.into_iter().map(|f| (out.what(), f))),
                Err(e) => {
                    // Put the environment back: it keeps the outputs that are still there.
                    let _ = std::fs::rename(&trash, real);
                    return Err(UserError::failure(format!(
                        "cannot remove the {} of {}: {e:#}",
                        out.what(),
                        m.name
                    ))
                    .with_hint(
                        "fix that and run the delete again; the environment was left in place",
                    )
                    .into());
                }
            }
        }
    }
    // Left in the registry if this fails, so that `list` and doctor still find the trash.
    if let Err(e) = crate::fs::tree::remove_tree(&trash) {
        let (problem, fix) = crate::fs::blocked::explain(&e);
        return Err(UserError::failure(format!(
            "{} was deleted, but some of its files are left in {}: {problem}",
            target.prefix.display(),
            trash.display()
        ))
        .with_hint(format!(
            "{fix}; then rm -rf {}",
            crate::escape::sh_quote(&trash.to_string_lossy())
        ))
        .into());
    }
    registry.remove(&target.prefix)?;
    if let Some(m) = manifest {
        registry.remove(&m.prefix)?;
    }
    Ok(Deleted {
        name: manifest.map_or_else(|| target.name.to_string(), |m| m.name.to_string()),
        outputs,
        released: false,
    })
}

//! Letting go of an adopted environment: what envmod wrote goes (its manifest, modulefile,
//! kernel and `bin/activate`, with the environment's own `bin/activate` put back), and the
//! packages, which were there before envmod, stay.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    env::{ctx::Ctx, prefix::EnvTarget, record, registry::Registry},
    error::UserError,
    manifest::{KEPT_ACTIVATE, MANIFEST_DIR, Manifest},
    site::modules::GENERATED_MARKER,
};

/// Remove what envmod wrote for the adopted environment `manifest` at `real`, under the
/// caller's lock; the outputs it removed.
pub(crate) fn release(
    target: &EnvTarget,
    real: &Path,
    manifest: &Manifest,
    registry: &Registry,
    ctx: &Ctx<'_>,
) -> Result<Vec<(&'static str, PathBuf)>> {
    let mut outputs = Vec::new();
    for out in ctx.outputs().all() {
        let what = out.what();
        outputs.extend(
            out.remove(manifest)
                .map(|files| files.into_iter().map(move |f| (what, f)))
                .map_err(|e| {
                    UserError::failure(format!(
                        "cannot remove the {} of {}: {e:#}",
                        out.what(),
                        manifest.name
                    ))
                    .with_hint(
                        "fix that and run the delete again; the environment is still adopted",
                    )
                })?,
        );
    }
    super::kernel::put_back(ctx.environ, manifest)?;
    restore_activate(real, manifest)?;
    crate::fs::tree::remove_tree(&real.join(MANIFEST_DIR)).map_err(|e| {
        UserError::failure(format!(
            "cannot remove {}: {e}",
            real.join(MANIFEST_DIR).display()
        ))
        .with_hint("check its permissions; its packages were not touched")
    })?;
    record::forget(ctx.environ, real);
    registry.remove(&target.prefix)?;
    registry.remove(&manifest.prefix)?;
    Ok(outputs)
}

/// In `.envmod/` while an adoption is under way: written before anything else of it, and
/// removed after its last step.
pub(super) const ADOPTING: &str = "adopting";

/// Whether `real` holds an adoption that was stopped where no signal handler could take it
/// back (SIGKILL, a crash): `.envmod/` is the user's own and still says it is being adopted.
pub(super) fn half_done(real: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let dir = real.join(MANIFEST_DIR);
    let mine = dir
        .symlink_metadata()
        .is_ok_and(|m| m.is_dir() && m.uid() == nix::unistd::geteuid().as_raw());
    mine && dir
        .join(ADOPTING)
        .symlink_metadata()
        .is_ok_and(|m| m.is_file())
}

/// Take back the adoption `half_done` found, from the manifest it had written if it got that
/// far.
pub(super) fn undo_half_done(real: &Path, ctx: &Ctx<'_>) {
    let manifest = match Manifest::read(real) {
        Ok(Some(m)) => m,
        _ => {
            let _ = restore_kept_activate(real);
            let _ = crate::fs::tree::remove_tree(&real.join(MANIFEST_DIR));
            return;
        }
    };
    undo(real, &manifest, ctx);
    record::forget(ctx.environ, real);
}

/// Take back a half-done adoption; what cannot be taken back stays for `delete` to find.
pub(super) fn undo(real: &Path, manifest: &Manifest, ctx: &Ctx<'_>) {
    // Until the kernel taken over is set aside, the kernel.json that runs this environment
    // is still the user's own, not envmod's.
    let own_kernel_in_place = manifest
        .adopted
        .as_ref()
        .is_some_and(|a| a.kernel.is_some())
        && !super::kernel::is_set_aside(ctx.environ, manifest);
    let manifest = &Manifest {
        kernel: manifest.kernel.clone().filter(|_| !own_kernel_in_place),
        ..manifest.clone()
    };
    for out in ctx.outputs().all() {
        let _ = out.remove(manifest);
    }
    let _ = super::kernel::put_back(ctx.environ, manifest);
    let _ = restore_activate(real, manifest);
    let _ = crate::fs::tree::remove_tree(&real.join(MANIFEST_DIR));
}

/// Remove envmod's `bin/activate` (only one that says envmod wrote it) and put back the one
/// the environment had.
fn restore_activate(real: &Path, manifest: &Manifest) -> Result<()> {
    let activate = real.join("bin/activate");
    let ours = crate::fs::read_head(&activate, 256, crate::fs::Links::Refuse)
        .is_ok_and(|head| String::from_utf8_lossy(&head).contains(GENERATED_MARKER));
    if ours {
        std::fs::remove_file(&activate)?;
    }
    if manifest.adopted.as_ref().is_some_and(|a| a.kept_activate) {
        restore_kept_activate(real)?;
    }
    Ok(())
}

/// Put the environment's own `bin/activate` back from `.envmod/`, where there is none now.
fn restore_kept_activate(real: &Path) -> Result<()> {
    let activate = real.join("bin/activate");
    let kept = real.join(MANIFEST_DIR).join(KEPT_ACTIVATE);
    if kept.symlink_metadata().is_ok_and(|m| m.is_file()) && activate.symlink_metadata().is_err() {
        std::fs::rename(&kept, &activate)?;
    }
    Ok(())
}

//! Writing an adoption into the environment, in an order that leaves the environment usable
//! at every step and lets a later adopt take back one that was stopped halfway.

use std::{os::unix::fs::DirBuilderExt, path::Path};

use anyhow::Result;

use super::{kernel, release};
use crate::{
    env::{ctx::Ctx, record},
    error::UserError,
    manifest::{KEPT_ACTIVATE, MANIFEST_DIR, Manifest},
    outputs::write::Scripts,
};

/// Write the manifest and the outputs; a failure takes back everything written.
pub(super) fn write(
    real: &Path,
    manifest: &mut Manifest,
    taken: Option<&kernel::Found>,
    ctx: &Ctx<'_>,
) -> Result<()> {
    // The kernel taken over is not envmod's yet: it is set aside below, before envmod's is
    // written in its place.
    let checked = Manifest {
        kernel: None,
        ..manifest.clone()
    };
    ctx.outputs().check(&checked)?;
    let dir = real.join(MANIFEST_DIR);
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(|e| {
            UserError::failure(format!("cannot create {}: {e}", dir.display()))
                .with_hint("adopt an environment you can write; nothing was changed")
        })?;
    // Written first and removed last: an adoption stopped where no handler runs (SIGKILL, a
    // crash) is taken back by the next one (`release::half_done`).
    let written = crate::fs::write_placed(&dir.join(release::ADOPTING), b"", Some(0o644))
        .and_then(|()| keep_activate(real, manifest));
    if let Err(e) = written {
        let _ = crate::fs::tree::remove_tree(&dir);
        return Err(UserError::failure(format!(
            "cannot adopt {}: {e:#}",
            manifest.prefix.display()
        ))
        .with_hint("fix that and adopt it again; nothing of it was changed")
        .into());
    }
    manifest.outputs_pending = true;
    let written = manifest
        .write_into(real)
        .and_then(|()| taken.map_or(Ok(()), |found| kernel::set_aside(found, ctx.environ)))
        .and_then(|()| {
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
    manifest.write_into(real)?;
    std::fs::remove_file(dir.join(release::ADOPTING))?;
    Ok(())
}

/// Keep the environment's own `bin/activate` in `.envmod/` under a second name, so that
/// envmod's replaces it by rename and `. bin/activate` works at every moment in between. A
/// file that cannot be linked (not the user's, under `protected_hardlinks`) is moved.
fn keep_activate(real: &Path, manifest: &mut Manifest) -> Result<()> {
    let activate = real.join("bin/activate");
    if activate.symlink_metadata().is_err() {
        return Ok(());
    }
    let kept = real.join(MANIFEST_DIR).join(KEPT_ACTIVATE);
    if std::fs::hard_link(&activate, &kept).is_err() {
        std::fs::rename(&activate, &kept)?;
    }
    if let Some(a) = manifest.adopted.as_mut() {
        a.kept_activate = true;
    }
    Ok(())
}

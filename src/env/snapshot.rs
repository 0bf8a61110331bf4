//! What the commands that only read an environment see of it: `export` a snapshot of what
//! is installed and what activating it sets, `shell-hook` its activation script. Both read
//! under a shared lock, so a student can read the course's environment; only the user who
//! wrote its outputs finishes what an interrupted command left first.

use std::path::PathBuf;

use anyhow::Result;
use rattler_conda_types::PrefixRecord;

use crate::{
    conda,
    env::{
        ctx::Ctx,
        lock,
        prefix::{self, Accept, EnvTarget},
        record::{self, Replacing},
    },
    manifest::Manifest,
    outputs::{activate::HookShell, write::Scripts},
};

/// The activation script of the environment `target` names, for `shell`, from what is
/// installed now.
pub(crate) fn activation_script(
    target: &EnvTarget,
    shell: HookShell,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let opened = prefix::open_to_read(target)?;
    let (facts, _) =
        ctx.outputs()
            .prefix_facts(&opened.manifest, &opened.real, Scripts::Recorded)?;
    ctx.outputs()
        .activate()
        .render(&opened.manifest, &facts, shell)
}

/// An environment as it is on disk, read under its lock: what `export` writes out.
pub(crate) struct Snapshot {
    pub(crate) manifest: Manifest,
    pub(crate) records: Vec<PrefixRecord>,
    /// Distributions pip installed, not conda.
    pub(crate) pip: Vec<conda::pip::PipDist>,
    /// What activating it sets (`conda-meta/state`, and its packages' activate.d scripts as
    /// recorded when its packages last changed).
    pub(crate) variables: Vec<conda::activation::EnvVar>,
    /// Where it is on disk, for the files pip installed.
    pub(crate) real: PathBuf,
    /// Held while the snapshot is in use: its pip files are read after it is taken.
    _lock: lock::ReadLock,
}

pub(crate) fn snapshot(target: &EnvTarget, ctx: &Ctx<'_>) -> Result<Snapshot> {
    finish_pending(target, ctx);
    let mut opened = prefix::open_to_read(target)?;
    // What an export writes (modules, channels, what the modules provided) is what this user
    // chose: a group member's edit of the manifest would otherwise travel to another site.
    opened.manifest = record::trusted(
        ctx.environ,
        &opened.real,
        &opened.manifest,
        Replacing::NOTHING,
        &target.cli(),
    )?;
    let records = conda::prefix::installed_records(&opened.real)?;
    let pip = conda::pip::installed(&opened.real, &conda::pip::conda_files(&records))?;
    let (facts, _) =
        ctx.outputs()
            .activation_facts(&opened.manifest, &opened.real, Scripts::Recorded)?;
    let variables = facts.env_vars;
    Ok(Snapshot {
        manifest: opened.manifest,
        records,
        pip,
        variables,
        real: opened.real,
        _lock: opened._lock,
    })
}

/// Finish the outputs an interrupted command left pending, when this user wrote them: the
/// next command on an environment brings its modulefile up to date, an export too. Anyone
/// else only reads, and leaves them to the next change; so does an export that cannot
/// finish them, since what it reads is whole either way.
fn finish_pending(target: &EnvTarget, ctx: &Ctx<'_>) {
    let Ok(real) = target.real_path() else {
        return;
    };
    // Read without the lock, only to decide: `open` reads it again under the lock, and
    // a damaged manifest is left for `open_to_read` to explain.
    let pending = prefix::read_manifest(target, &real).is_ok_and(|m| m.outputs_pending);
    if pending
        && record::wrote(ctx.environ, &real)
        && let Err(e) = crate::env::apply::open(target, Accept::Intact, true, ctx)
    {
        ctx.printer.warn(format!(
            "exporting {} as it is: {e:#}",
            target.prefix.display()
        ));
    }
}

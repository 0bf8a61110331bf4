//! What every command needs of an environment besides planning and building it (`plan`,
//! `apply`): its outputs (checked before anything on disk changes, written after), what it
//! sets when activated, a snapshot for `export`, and `delete`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use rattler_conda_types::PrefixRecord;

use crate::{
    conda::{self, activation::EnvVar},
    env::{
        lock::{self, EnvLock},
        prefix::{self, EnvTarget},
        record::{self, Replacing},
        registry::Registry,
    },
    error::UserError,
    failpoint,
    manifest::Manifest,
    outputs::{
        Output, PrefixFacts,
        activate::{Activate, HookShell},
        kernel::Kernel,
        modulefile::Modulefile,
    },
};

// Every command takes these from here, with the pipeline they drive.
pub(crate) use crate::env::ctx::{Ctx, channels_for};

impl Ctx<'_> {
    fn outputs(&self) -> Vec<Box<dyn Output + '_>> {
        vec![
            Box::new(Modulefile {
                renderer: self.renderer,
                options: self.options,
            }),
            Box::new(Activate {
                renderer: self.renderer,
                options: self.options,
            }),
            Box::new(Kernel),
        ]
    }
}

// ----------------------------------------------------------------------------- outputs

/// Plan every output for `manifest` and check that it can be written, before anything on
/// disk changes. The facts of the installed prefix are not known yet; the templates and the
/// destinations are what can fail here.
pub(crate) fn check_outputs(manifest: &Manifest, ctx: &Ctx<'_>) -> Result<()> {
    for out in ctx.outputs() {
        if let Some(planned) = out.plan(manifest, &PrefixFacts::default())? {
            out.check(manifest, &planned)?;
        }
    }
    Ok(())
}

/// Write every output for `manifest` from the installed prefix at `real`, and remove what
/// `old` wrote where the new outputs went elsewhere. When `scripts` runs the activation
/// scripts, `manifest` records what they set.
pub(crate) fn write_outputs(
    manifest: &mut Manifest,
    real: &Path,
    old: Option<&Manifest>,
    scripts: Scripts<'_>,
    ctx: &Ctx<'_>,
) -> Result<()> {
    let (facts, record) = prefix_facts(manifest, real, scripts, ctx)?;
    if let Some(record) = record {
        manifest.activation = Some(record);
    }
    for name in &facts.unsafe_vars {
        ctx.printer.warn(format!(
            "not putting {name} into the modulefile: its value holds a newline or another control character, which the module system would run as shell code"
        ));
    }
    for (name, why) in &facts.refused_vars {
        ctx.printer.warn(format!(
            "not setting the variable {name:?} of {}: it {why}",
            manifest.name
        ));
    }
    for name in &facts.risky_vars {
        ctx.printer.warn(format!(
            "{} sets {name}, with which shells or programs run the code its value names: check that you trust it",
            manifest.name
        ));
    }
    let manifest = &*manifest;
    for out in ctx.outputs() {
        let planned = out.plan(manifest, &facts)?;
        if let Some(planned) = &planned {
            out.check(manifest, planned)?;
            // The directories this write creates, which a shared environment shares too.
            let created: Vec<PathBuf> = planned
                .path
                .ancestors()
                .skip(1)
                .take_while(|d| d.symlink_metadata().is_err())
                .map(Path::to_path_buf)
                .collect();
            let place_gid = planned
                .path
                .ancestors()
                .skip(1)
                .find_map(|d| d.symlink_metadata().ok())
                .map(|m| std::os::unix::fs::MetadataExt::gid(&m));
            out.write(planned)?;
            if let Some(sharing) = &manifest.shared {
                let mut modes = sharing.modes()?;
                // Group write only where the group already shares the place (the course's
                // module root or Jupyter prefix): a kernel in the owner's own data dir
                // must not open the owner's home to the group. Readable by all anywhere.
                if modes.gid.is_some() && place_gid != modes.gid {
                    modes = crate::fs::Share {
                        gid: None,
                        group_write: false,
                    };
                }
                modes.apply(&planned.path)?;
                if let Some(dir) = planned.path.parent() {
                    modes.apply(dir)?;
                }
                for dir in &created {
                    modes.apply(dir)?;
                }
            }
        }
        if let Some(old) = old {
            let moved = match (out.plan(old, &PrefixFacts::default())?, &planned) {
                (Some(o), Some(n)) => o.path != n.path,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if moved {
                out.remove(old)?;
            }
        }
    }
    Ok(())
}

/// Whether a command runs the environment's activate.d scripts, or reads back what they set
/// when they last ran. Only a command that changed the packages (or re-pointed the prefix)
/// runs them: a script a group member adds to a shared environment then runs for nobody
/// until the owner changes the packages, and then with a warning that names it.
#[derive(Clone, Copy)]
pub(crate) enum Scripts<'a> {
    /// Run them, naming first every one that someone else could have written. The scripts
    /// given were untrusted in the tree the new one was cloned from (where a copy may have
    /// given them a new owner), or came from channels the user did not choose; each with
    /// who, as the warning phrases it.
    Run(&'a [(PathBuf, String)]),
    /// Run them only if nobody else could have written any; otherwise read back the record.
    IfTrusted,
    Recorded,
}

type Record = std::collections::BTreeMap<String, String>;

/// Read the installed environment for what the outputs advertise and set; with the record
/// of what the activation scripts set when `scripts` ran them.
fn prefix_facts(
    manifest: &Manifest,
    real: &Path,
    scripts: Scripts<'_>,
    ctx: &Ctx<'_>,
) -> Result<(PrefixFacts, Option<Record>)> {
    // Only requested packages become extensions, so an env without specs (the first-day
    // create) skips reading conda-meta, and the thread pool that reading starts.
    let records = if manifest.specs.is_empty() {
        Vec::new()
    } else {
        conda::prefix::installed_records(real)?
    };
    let mut extensions = Vec::new();
    for spec in &manifest.specs {
        let name = conda::specs::spec_package_name(spec)?;
        if let Some(r) = records
            .iter()
            .find(|r| r.repodata_record.package_record.name == name)
        {
            let p = &r.repodata_record.package_record;
            extensions.push(format!("{}/{}", p.name.as_normalized(), p.version));
        }
    }
    let (mut facts, record) = activation_facts(manifest, real, scripts, ctx)?;
    facts.extensions = extensions;
    Ok((facts, record))
}

/// What activating the environment sets: its own variables (data, read as JSON), then what
/// its scripts set, run now or read back from the manifest. Every name is checked, wherever
/// it came from: the manifest and the state of a shared environment are the group's to edit.
fn activation_facts(
    manifest: &Manifest,
    real: &Path,
    scripts: Scripts<'_>,
    ctx: &Ctx<'_>,
) -> Result<(PrefixFacts, Option<Record>)> {
    use conda::activation as act;
    let own = act::own_vars(real)?;
    let mut facts = PrefixFacts::default();
    // Read once: what is judged is what runs.
    let read = match scripts {
        Scripts::Run(_) | Scripts::IfTrusted => Some(act::read_scripts(real)?),
        Scripts::Recorded => None,
    };
    let mut untrusted: Vec<(PathBuf, String)> = read
        .iter()
        .flatten()
        .filter_map(|s| s.writer.as_ref().map(|w| (s.path.clone(), w.phrase())))
        .collect();
    if let Scripts::Run(before) = scripts {
        for (script, why) in before {
            if script.is_file() && !untrusted.iter().any(|(s, _)| s == script) {
                untrusted.push((script.clone(), why.clone()));
            }
        }
    }
    let run = match (scripts, read) {
        (Scripts::IfTrusted, Some(_)) if !untrusted.is_empty() => {
            for (script, why) in &untrusted {
                ctx.printer.warn(format!(
                    "not running {}, an activation script {why}: only a package change runs it, after naming it",
                    script.display()
                ));
            }
            None
        }
        (_, read) => read,
    };
    let (from_scripts, record) = match run {
        Some(read) => {
            for (script, why) in &untrusted {
                ctx.printer.warn(format!(
                    "running {}, an activation script {why}: remove it if you do not trust it",
                    script.display()
                ));
            }
            let (set, not_text) = act::run_scripts(real, &read, &own)?;
            facts.refused_vars.extend(
                not_text
                    .into_iter()
                    .map(|n| (n, "has a value that is not UTF-8 text")),
            );
            let record: Record = set.into_iter().map(|v| (v.name, v.value)).collect();
            (record.clone(), Some(record))
        }
        None => match &manifest.activation {
            Some(recorded) => (recorded.clone(), None),
            None => {
                if matches!(scripts, Scripts::IfTrusted) {
                    ctx.printer.warn(format!(
                        "the modulefile of {} leaves out what its activation scripts set until the next `envmod install` or `envmod remove` on it",
                        manifest.name
                    ));
                } else if !act::scripts(real)?.is_empty() {
                    ctx.printer.warn(format!(
                        "the envmod that built {} did not record what its activate.d scripts set, so its modulefile leaves that out until the next `envmod install` or `envmod remove` on it",
                        manifest.name
                    ));
                }
                (Record::new(), None)
            }
        },
    };
    // conda's order: the environment's own variables, then what the scripts change.
    let mut all: Record = own.into_iter().map(|v| (v.name, v.value)).collect();
    all.extend(from_scripts);
    for (name, value) in all {
        if let Some(why) = act::refusal(&name) {
            facts.refused_vars.push((name, why));
        } else if value.chars().any(char::is_control) {
            facts.unsafe_vars.push(name);
        } else {
            if act::runs_code(&name) {
                facts.risky_vars.push(name.clone());
            }
            facts.env_vars.push(EnvVar { name, value });
        }
    }
    Ok((facts, record))
}

// ------------------------------------------------------------------------- shell hook

/// The activation script of the environment `target` names, for `shell`, from what is
/// installed now.
pub(crate) fn activation_script(
    target: &EnvTarget,
    shell: HookShell,
    ctx: &Ctx<'_>,
) -> Result<String> {
    let opened = prefix::open_to_read(target)?;
    let (facts, _) = prefix_facts(&opened.manifest, &opened.real, Scripts::Recorded, ctx)?;
    Activate {
        renderer: ctx.renderer,
        options: ctx.options,
    }
    .render(&opened.manifest, &facts, shell)
}

// ------------------------------------------------------------------------------ export

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
    let (facts, _) = activation_facts(&opened.manifest, &opened.real, Scripts::Recorded, ctx)?;
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

// ------------------------------------------------------------------------------ delete

/// The refusal of a change to a frozen environment, naming the way out.
pub(crate) fn frozen(m: &Manifest) -> anyhow::Error {
    UserError::failure(format!(
        "{} is frozen: its packages cannot be installed, removed or deleted",
        m.name
    ))
    .with_hint(format!("envmod unfreeze {}", m.cli_target()))
    .into()
}

/// What `delete` removed.
pub(crate) struct Deleted {
    pub(crate) name: String,
    pub(crate) outputs: Vec<PathBuf>,
}

/// Remove an environment: rename it aside first (so a failure there changes nothing), then
/// its outputs, then the tree. With `force`, a directory whose manifest is damaged, or that
/// is a copy of another environment, is removed too, and only outputs that name it go.
pub(crate) fn delete(
    target: &EnvTarget,
    force: bool,
    registry: &Registry,
    ctx: &Ctx<'_>,
) -> Result<Deleted> {
    let real = target.real_path()?;
    let _lock = EnvLock::acquire(&real, &target.name)?;
    lock::clear_leftovers(&real, &target.name)?;
    let manifest = match prefix::read_manifest(target, &real) {
        Ok(m) if m.frozen => return Err(frozen(&m)),
        // With --force, only the outputs this user recorded go, whatever the manifest says.
        Ok(m) if prefix::same_dir(&m.prefix, &real) => Some(record::trusted(
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
    let blockers = crate::fs::tree::blockers(&real)?;
    if !blockers.is_empty() {
        let (problem, fix) = crate::env::blocked::blocked_by(&blockers);
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
        for out in ctx.outputs() {
            match out.remove(m) {
                Ok(removed) => outputs.extend(removed),
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
        let (problem, fix) = crate::env::blocked::explain(&e);
        return Err(UserError::failure(format!(
            "{} was deleted, but some of its files are left in {}: {problem}",
            target.prefix.display(),
            trash.display()
        ))
        .with_hint(format!(
            "{fix}; then rm -rf {}",
            crate::render::escape::sh_quote(&trash.to_string_lossy())
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
    })
}

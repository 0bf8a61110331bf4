//! THE pipeline every change to an environment goes through:
//! load → plan (specs, channels, solve) → check outputs → stage → install → swap → write
//! outputs → record. `create`, `install`/`remove`, `module` and `delete` are configurations
//! of it, so each safety rule is written once: outputs are checked before anything on disk
//! changes; after the swap an output that fails is recorded as pending in the manifest and
//! finished by the next command on the environment.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rattler_conda_types::{PrefixRecord, RepoDataRecord};

use crate::{
    conda::{self, specs::Spec},
    env::{
        cleanup::{self, Staging},
        lock::{self, EnvLock},
        prefix::{self, Accept, EnvTarget, Opened},
        record::{self, Replacing},
        registry::Registry,
        request, swap, venv,
    },
    error::UserError,
    failpoint,
    manifest::{KernelInfo, Manifest, ModuleInfo, PythonMode},
    outputs::{modulefile, write::Scripts},
    site::{ModuleSystem, python::Interpreter},
};

// Every command takes these from here, with the pipeline they drive.
pub(crate) use crate::env::ctx::{Channels, Ctx, channels, channels_for};

// ------------------------------------------------------------------------------- plan

/// The conda Python a solve chose, as the manifest records it.
pub(crate) fn conda_interpreter(records: &[RepoDataRecord], prefix: &Path) -> Result<Interpreter> {
    let python = records
        .iter()
        .find(|r| r.package_record.name.as_normalized() == "python")
        .ok_or_else(|| {
            UserError::failure("the solution has no python package").with_hint("check --python")
        })?;
    let version = python.package_record.version.to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(3), parts.next().unwrap_or(0));
    Ok(Interpreter {
        executable: prefix.join(format!("bin/python{major}.{minor}")),
        version,
        major,
        minor,
        pip: records
            .iter()
            .any(|r| r.package_record.name.as_normalized() == "pip"),
    })
}

// ----------------------------------------------------------------------------- outputs

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

/// Open an existing environment and first finish outputs an earlier command left pending.
pub(crate) fn open(target: &EnvTarget, accept: Accept, ctx: &Ctx<'_>) -> Result<Opened> {
    let mut opened = prefix::open(target, accept)?;
    // Pending outputs of a manifest that names places this user never chose are left to
    // the command, which refuses them or replaces them from its own flags.
    if opened.manifest.outputs_pending
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

// ------------------------------------------------------------------------------ create

/// Everything `create` decided before the pipeline runs.
pub(crate) struct NewEnv {
    pub(crate) target: EnvTarget,
    pub(crate) manifest: Manifest,
    pub(crate) specs: Vec<Spec>,
    pub(crate) records: Vec<RepoDataRecord>,
    /// The client `records` were solved with.
    pub(crate) network: conda::Network,
    /// `variables:` of an environment file, kept in `conda-meta/state` as conda keeps them.
    pub(crate) variables: Vec<(String, String)>,
    /// Where the pip section runs (the directory of the file it came from).
    pub(crate) pip_cwd: PathBuf,
    /// The pip packages of a lock or a bundle, installed instead of a pip section.
    pub(crate) pip_wheels: Vec<conda::pip::LockedWheel>,
}

/// Build a new environment in a staging directory, move it into place, then write its
/// outputs; any failure, or an interrupt, leaves nothing behind.
pub(crate) async fn create(new: NewEnv, registry: &Registry, ctx: &Ctx<'_>) -> Result<Manifest> {
    let NewEnv {
        target,
        mut manifest,
        specs,
        records,
        network,
        variables,
        pip_cwd,
        pip_wheels,
    } = new;
    ctx.outputs().check(&manifest)?;
    let real = target.real_path()?;
    if real.symlink_metadata().is_ok() {
        return Err(prefix::already_exists(&target));
    }
    let _lock = EnvLock::acquire(&real, &target.name)?;
    if real.symlink_metadata().is_ok() {
        return Err(prefix::already_exists(&target));
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
    // Every step below names the tree through its descriptor: see `cleanup::Staging`.
    let dir = root.held_path();
    let mode = manifest.python.mode;
    if mode == PythonMode::Site {
        venv::write_layout(&dir, &target.prefix, &manifest.python.site)?;
    }
    failpoint::hit("create:staged");
    // Nothing to compile in a first-day environment: no interpreter start for it.
    let installs = !records.is_empty() || !manifest.pip.is_empty();
    if !records.is_empty() {
        let request = conda::install::InstallRequest {
            dir: &dir,
            target_prefix: &target.prefix,
            records,
            specs,
            skip_python: mode == PythonMode::Site,
            network: &network,
            copy_from_cache: sharing.as_ref().is_some_and(|m| m.group_write),
        };
        let changes = conda::install::install(ctx.conda, request, ctx.printer).await?;
        ctx.printer
            .detail(format!("installed {}", changes.installed.join(", ")));
    } else {
        std::fs::create_dir_all(dir.join("conda-meta"))?;
    }
    if !variables.is_empty() {
        conda::activation::write_state(&dir, &variables)?;
    }
    if pip_wheels.is_empty() {
        conda::pip::install(&dir, &target.prefix, &manifest.pip, &pip_cwd, ctx.printer)?;
    } else {
        let client = (!ctx.conda.offline).then(|| network.client()).transpose()?;
        conda::pip::install_wheels(
            &dir,
            &target.prefix,
            &pip_wheels,
            client.as_ref(),
            ctx.printer,
        )
        .await?;
    }
    if installs
        && ctx
            .conda
            .compile_pyc
            .wants(manifest.shared.is_some(), &real)
    {
        // The site Python was chosen, and started, by this very command.
        let interpreter = compiler(&manifest, Ok);
        conda::pyc::compile(&dir, &target.prefix, &interpreter, ctx.printer)?;
    }
    failpoint::hit("create:installed");
    manifest.write_into(&dir)?;
    if let Some(modes) = &sharing {
        modes.apply_below(&root)?;
    }
    // What a plain mkdir would have given it, the setgid bit of a group directory included.
    let mode = (0o777 & !crate::fs::umask()) | (root.meta().mode & 0o2000);
    swap::open_up(&root, sharing.as_ref(), mode)?;
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

/// Why the staging directory at `path` could not be made. It is made under the lock, just
/// after any leftover of envmod's own was removed, so one that is there was put there since.
fn staging_error(path: &Path, e: std::io::Error) -> anyhow::Error {
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

// ------------------------------------------------------------------------------ change

/// A change to an existing environment.
pub(crate) enum Change {
    Install(Added),
    Remove(Vec<String>),
    /// No package change: write the outputs again, maybe re-pointing a copied environment.
    Outputs(OutputsChange),
    /// No package change: add, move or (`None`) remove the Jupyter kernel.
    Kernel(Option<KernelInfo>),
    /// No package change: freeze (`true`) or unfreeze the environment.
    Freeze(bool),
    /// No package change: share it with everyone or a group, whatever the umask.
    Share(crate::manifest::Sharing),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ChangeKind {
    Share,
    Other,
}

/// What `install` adds: conda specs, and pip lines installed after them by the env's pip.
#[derive(Default)]
pub(crate) struct Added {
    pub(crate) specs: Vec<String>,
    pub(crate) pip: Vec<String>,
    /// Where pip runs: the directory of the file the lines came from.
    pub(crate) pip_cwd: PathBuf,
    /// Channels a file brings, searched after the environment's own.
    pub(crate) channels: Vec<String>,
    /// `--ignore-site-packages`: from now on the site Python's packages do not count as
    /// installed in this environment.
    pub(crate) ignore_site_packages: bool,
}

/// Where `envmod module` writes the modulefile.
pub(crate) struct OutputsChange {
    /// `None` keeps the environment's module system; `Some(None)` drops its modulefile.
    pub(crate) system: Option<Option<ModuleSystem>>,
    /// `None` keeps the environment's module root, or else uses `default_root`.
    pub(crate) root: Option<PathBuf>,
    pub(crate) default_root: PathBuf,
    pub(crate) adopt: bool,
}

/// What a change did, for the command's report.
pub(crate) struct Changed {
    pub(crate) manifest: Manifest,
    pub(crate) packages: Option<conda::install::Changes>,
    pub(crate) old_module: Option<ModuleInfo>,
    pub(crate) old_kernel: Option<KernelInfo>,
}

/// Apply `change` to the environment `target` names. `channels` are the ones given on the
/// command line; otherwise the environment's own, then the config's, are used.
pub(crate) async fn change(
    target: &EnvTarget,
    change: Change,
    cli_channels: &[String],
    ctx: &Ctx<'_>,
) -> Result<Changed> {
    let adopt = matches!(&change, Change::Outputs(o) if o.adopt);
    let accept = if adopt {
        Accept::Relocated
    } else {
        Accept::Intact
    };
    let mut opened = open(target, accept, ctx)?;
    if opened.manifest.frozen && matches!(change, Change::Install(_) | Change::Remove(_)) {
        return Err(frozen(&opened.manifest));
    }
    let replacing = match &change {
        Change::Outputs(o) => Replacing {
            prefix: o.adopt,
            module_system: o.system.is_some(),
            module_root: o.root.is_some(),
            ..Replacing::NOTHING
        },
        Change::Kernel(_) => Replacing {
            kernel: true,
            ..Replacing::NOTHING
        },
        Change::Share(_) => Replacing {
            shared: true,
            ..Replacing::NOTHING
        },
        _ => Replacing::NOTHING,
    };
    opened.manifest = record::trusted(
        ctx.environ,
        &opened.real,
        &opened.manifest,
        replacing,
        &target.cli(),
    )?;
    let old = opened.manifest.clone();
    let mut next = old.clone();
    if adopt {
        adopt_into(&mut next, target, &opened.real)?;
    }

    // What is installed, read once, for the changes that solve.
    let installed = match &change {
        Change::Outputs(_) | Change::Kernel(_) | Change::Freeze(_) | Change::Share(_) => Vec::new(),
        _ => conda::prefix::installed_records(&opened.real)?,
    };
    let (specs, removing) = match &change {
        Change::Install(added) => {
            for spec in &added.specs {
                if conda::specs::spec_package_name(spec)?.as_normalized() == "python"
                    && old.python.mode == PythonMode::Site
                {
                    return Err(UserError::usage(
                        "python comes from the site in this environment and cannot be installed",
                    )
                    .with_hint("create an environment with --python VERSION for a conda Python")
                    .into());
                }
            }
            let specs = conda::specs::with_added(&old.specs, &added.specs)?;
            (Some(specs), None)
        }
        Change::Remove(names) => (Some(removed_specs(&old, names, &installed)?), Some(names)),
        Change::Outputs(_) | Change::Kernel(_) | Change::Freeze(_) | Change::Share(_) => {
            (None, None)
        }
    };

    let mut plan = None;
    // Channels of the manifest this user did not install from last time.
    let mut unchosen = Vec::new();
    if let Some(specs) = specs {
        let mut conda_specs = Spec::parse_all(&specs)?;
        let names = specs
            .iter()
            .map(|s| conda::specs::spec_package_name(s))
            .collect::<Result<Vec<_>>>()?;
        if old.python.mode == PythonMode::Conda
            && !names.iter().any(|n| n.as_normalized() == "python")
        {
            // The env's Python stays what it was created with.
            conda_specs.push(Spec::parse(&format!(
                "python =={}",
                old.python.site.version
            ))?);
        }
        let mut raw_channels = if !cli_channels.is_empty() {
            cli_channels.to_vec()
        } else if !old.channels.is_empty() {
            old.channels.clone()
        } else {
            ctx.conda.channels.clone()
        };
        if let Change::Install(added) = &change {
            for c in &added.channels {
                if !raw_channels.contains(c) {
                    raw_channels.push(c.clone());
                }
            }
        }
        if cli_channels.is_empty() {
            unchosen = unchosen_channels(&old, &opened.real, ctx);
        }
        let channels = channels_for(&raw_channels, &mut conda_specs, ctx)?;
        if cli_channels.is_empty() {
            unchosen.extend(spec_only_channels(
                &change,
                &specs,
                &conda_specs,
                &raw_channels,
                (old.name.as_str(), &opened.real),
                ctx,
            )?);
        }
        let site = (old.python.mode == PythonMode::Site).then_some(&old.python.site);
        if let Change::Install(added) = &change
            && added.ignore_site_packages
        {
            let provided = next.provided.get_or_insert_with(Default::default);
            provided.ignore_site_packages = true;
            provided.site_packages.clear();
        }
        let solved = request::solve(
            request::Inputs {
                platform: conda::PLATFORM,
                channels: &channels,
                specs: conda_specs.clone(),
                site_python: site,
                provisions: next.provided.as_ref(),
                installed: installed
                    .iter()
                    .map(|r| r.repodata_record.clone())
                    .collect(),
                constraints: Vec::new(),
            },
            ctx,
        )
        .await?;
        solved.report(ctx.printer);
        let solved = solved.into_records();
        if let Some(names) = removing {
            for raw in names {
                let name = conda::specs::spec_package_name(raw)?;
                if solved.iter().any(|r| r.package_record.name == name) {
                    let name = name.as_normalized();
                    return Err(UserError::failure(format!(
                        "{name} is still needed by the remaining packages ({}); nothing was changed",
                        specs.join(" ")
                    ))
                    .with_hint("remove the packages that depend on it as well")
                    .into());
                }
            }
        }
        if old.python.mode == PythonMode::Conda {
            // `install python=3.13` moves a conda env to another Python, and its module name.
            next.python.site = conda_interpreter(&solved, &old.prefix)?;
        }
        next.specs = specs;
        next.channels = channels.list.iter().map(conda::channels::display).collect();
        plan = Some((solved, conda_specs, channels.network));
    }

    if let Change::Kernel(kernel) = &change {
        next.kernel = kernel.clone();
    }
    if let Change::Freeze(frozen) = &change {
        next.frozen = *frozen;
    }
    let change_kind = match &change {
        Change::Share(sharing) => {
            sharing.modes()?;
            next.shared = Some(sharing.clone());
            ChangeKind::Share
        }
        _ => ChangeKind::Other,
    };
    let pip = match &change {
        Change::Install(added) if !added.pip.is_empty() => {
            next.pip.extend(added.pip.iter().cloned());
            Some((added.pip.clone(), added.pip_cwd.clone()))
        }
        _ => None,
    };

    // Where the outputs go now: a new system or root, or the same one under a new module name.
    let current = old.module.as_ref().map(|m| (m.system, m.root.clone()));
    let module_target = match change {
        Change::Outputs(o) => {
            let system = match o.system {
                Some(choice) => choice,
                None => match &current {
                    Some((system, _)) => Some(*system),
                    None => {
                        return Err(UserError::usage(format!(
                            "{} has no modulefile to write again",
                            old.name
                        ))
                        .with_hint("pass --module-system lmod or --module-system tcl")
                        .into());
                    }
                },
            };
            let root = o
                .root
                .or(current.map(|(_, root)| root))
                .unwrap_or(o.default_root);
            system.map(|system| (system, root))
        }
        _ => current,
    };
    next.module = module_target.map(|(system, root)| modulefile::info_for(&next, system, &root));
    ctx.outputs().check(&next)?;

    next.outputs_pending = true;
    let mut packages = None;
    let mut guard = None;
    let mut untrusted_before = Vec::new();
    let run_scripts = plan.is_some() || adopt;
    let channels_used = match plan.is_some() {
        true => record::Channels::Used,
        false => record::Channels::Kept,
    };
    if run_scripts {
        // Until the scripts of the new tree have run: an interrupted change runs them when
        // the next command finishes its outputs.
        next.activation = None;
    }
    match plan {
        Some((records, conda_specs, network)) => {
            untrusted_before = conda::activation::untrusted_scripts(&opened.real)?;
            let staging_path = lock::staging_dir(&opened.real, &target.name);
            let staging =
                Staging::create(&staging_path).map_err(|e| staging_error(&staging_path, e))?;
            let own_links = match old.python.mode {
                PythonMode::Site => venv::own_links(&old.python.site),
                PythonMode::Conda => Vec::new(),
            };
            let staged = swap::clone_tree(&opened.real, staging.dir(), &own_links)?;
            // Every step below names the tree through its descriptor: see `cleanup::Staging`.
            let dir = staged.root.held_path();
            failpoint::hit("change:cloned");
            let request = conda::install::InstallRequest {
                dir: &dir,
                target_prefix: &next.prefix,
                records,
                specs: conda_specs,
                skip_python: next.python.mode == PythonMode::Site,
                network: &network,
                copy_from_cache: next.shared.as_ref().is_some_and(|s| s.group.is_some()),
            };
            packages = Some(conda::install::install(ctx.conda, request, ctx.printer).await?);
            if let Some((lines, cwd)) = &pip {
                conda::pip::install(&dir, &next.prefix, lines, cwd, ctx.printer)?;
            }
            if ctx
                .conda
                .compile_pyc
                .wants(next.shared.is_some(), &opened.real)
            {
                let interpreter = compiler(&next, |exe| {
                    venv::may_run(ctx.environ, &opened.real, exe).map(|()| exe)
                });
                conda::pyc::compile(&dir, &next.prefix, &interpreter, ctx.printer)?;
            }
            failpoint::hit("change:installed");
            next.write_into(&dir)?;
            let sharing = next.shared.as_ref().map(|s| s.modes()).transpose()?;
            if let Some(modes) = &sharing {
                modes.apply_below(&staged.root)?;
            }
            swap::open_up(&staged.root, sharing.as_ref(), staged.mode)?;
            staging.exchange_with(&opened.real)?;
            // Dropping the staging directory removes the old tree, now in it.
            guard = Some(staging);
        }
        None => {
            next.write_into(&opened.real)?;
            if let Some(sharing) = &next.shared {
                let modes = sharing.modes()?;
                if matches!(change_kind, ChangeKind::Share) {
                    // Its users can no longer write the cache. Compiled in place only while
                    // no one but this user could have written the tree.
                    if old.shared.is_none() && ctx.conda.compile_pyc.wants(true, &opened.real) {
                        let interpreter = compiler(&next, |exe| {
                            venv::may_run(ctx.environ, &opened.real, exe).map(|()| exe)
                        });
                        conda::pyc::compile(&opened.real, &next.prefix, &interpreter, ctx.printer)?;
                    }
                    if modes.group_write {
                        // Files hard-linked from a package cache (or shared with another
                        // environment) would take the group's write access with them.
                        let root = crate::fs::tree::Dir::open(&opened.real)
                            .with_context(|| format!("failed to open {}", opened.real.display()))?;
                        let copied = crate::fs::tree::separate_links(&root)?;
                        if copied > 0 {
                            ctx.printer.info(format!(
                                "copied {copied} files that were hard links into the package cache, so the group's write access stays in the environment"
                            ));
                        }
                    }
                    modes.apply_tree(&opened.real)?;
                    modes.apply(&lock::lock_path(&opened.real, &target.name))?;
                } else {
                    modes.apply_beneath(&opened.real, &Manifest::path_in(Path::new("")))?;
                }
            }
        }
    }
    cleanup::set_committed(Some(format!(
        "{} was changed; its modulefile is brought up to date by the next envmod command on it (`envmod module {}`)",
        next.name,
        target.cli()
    )));
    failpoint::hit("change:exchanged");
    opened.manifest = next;
    // An adopted copy's old outputs are the original's, never the copy's to remove.
    let replaced = (!adopt).then_some(&old);
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
            let (problem, fix) = crate::env::blocked::explain(&e);
            ctx.printer.warn(format!(
                "{} was changed, but its old files are left in {}: {problem}; {fix}, and the next envmod command on it removes them",
                opened.manifest.name,
                left.display()
            ));
        }
    }
    Ok(Changed {
        manifest: opened.manifest,
        packages,
        old_module: old.module,
        old_kernel: old.kernel,
    })
}

/// The channels of `old` (the manifest, which group members may edit) that this user's last
/// package change did not install from, named in a warning when the list differs at all.
/// A group member may install from another channel; what this user's change installs from
/// it is theirs to see first.
fn unchosen_channels(old: &Manifest, real: &Path, ctx: &Ctx<'_>) -> Vec<String> {
    let Some(yours) = record::channels(ctx.environ, real) else {
        return Vec::new();
    };
    if old.channels == yours {
        return Vec::new();
    }
    let added: Vec<String> = old
        .channels
        .iter()
        .filter(|c| !yours.contains(c))
        .cloned()
        .collect();
    let what = if added.is_empty() {
        "the same channels in another order, or fewer".to_string()
    } else {
        format!("{} added", added.join(", "))
    };
    ctx.printer.warn(format!(
        "{} now installs from the channel list {}, not {} as your last change did: {what} by someone who can write {}; pass -c to choose the channels yourself",
        old.name,
        old.channels.join(" "),
        yours.join(" "),
        Manifest::path_in(real).display()
    ));
    added
}

/// The channels that only the manifest's specs name (`chan::pkg`, which group members may
/// edit), not its channel list or this change: searched, since a spec names them, and
/// named in a warning, as channels this user did not choose.
fn spec_only_channels(
    change: &Change,
    specs: &[String],
    parsed: &[Spec],
    raw: &[String],
    (name, real): (&str, &Path),
    ctx: &Ctx<'_>,
) -> Result<Vec<String>> {
    let added: &[String] = match change {
        Change::Install(added) => &added.specs,
        _ => &[],
    };
    let listed: Vec<String> = channels(raw, ctx)?
        .list
        .iter()
        .map(conda::channels::display)
        .collect();
    let mut out: Vec<String> = Vec::new();
    for (spec, parsed) in specs.iter().zip(parsed) {
        let Some(channel) = parsed.channel() else {
            continue;
        };
        let shown = conda::channels::display(channel);
        if added.contains(spec) || listed.contains(&shown) || out.contains(&shown) {
            continue;
        }
        ctx.printer.warn(format!(
            "{} installs `{spec}` from {shown}, a channel that only a spec in {} names, not the environment's channel list; pass -c to choose the channels yourself",
            name,
            Manifest::path_in(real).display()
        ));
        out.push(shown);
    }
    Ok(out)
}

/// The refusal of a change to a frozen environment, naming the way out.
pub(crate) fn frozen(m: &Manifest) -> anyhow::Error {
    UserError::failure(format!(
        "{} is frozen: its packages cannot be installed, removed or deleted",
        m.name
    ))
    .with_hint(format!("envmod unfreeze {}", m.cli_target()))
    .into()
}

/// The requested specs once `names` are removed, refusing names that are not there.
fn removed_specs(
    manifest: &Manifest,
    names: &[String],
    installed: &[PrefixRecord],
) -> Result<Vec<String>> {
    let mut parsed = Vec::new();
    for raw in names {
        let name = conda::specs::spec_package_name(raw)?;
        if name.as_normalized() == "python" {
            return Err(UserError::usage("python cannot be removed from an environment").into());
        }
        let requested = manifest
            .specs
            .iter()
            .any(|s| conda::specs::spec_package_name(s).is_ok_and(|n| n == name));
        let present = installed
            .iter()
            .any(|r| r.repodata_record.package_record.name == name);
        if !requested && !present {
            return Err(UserError::failure(format!(
                "package {raw} is not installed in {}",
                manifest.name
            ))
            .with_hint(format!(
                "`envmod list` and {} show what is there",
                manifest.prefix.join("conda-meta").display()
            ))
            .into());
        }
        parsed.push(name);
    }
    conda::specs::without(&manifest.specs, &parsed)
}

/// Re-point a copied or moved environment at the path it now has.
fn adopt_into(next: &mut Manifest, target: &EnvTarget, real: &Path) -> Result<()> {
    let installed = conda::prefix::installed_records(real)?;
    if let Some(r) = installed.iter().find(|r| {
        r.paths_data
            .paths
            .iter()
            .any(|p| p.prefix_placeholder.is_some())
    }) {
        return Err(UserError::failure(format!(
            "{} cannot be re-pointed: package {} has files with the old prefix built in",
            target.prefix.display(),
            r.repodata_record.package_record.name.as_normalized()
        ))
        .with_hint(format!(
            "create the environment again at the new place (`envmod create {} …`)",
            target.cli()
        ))
        .into());
    }
    next.name = target.name.clone();
    next.prefix = target.prefix.clone();
    next.by_prefix = target.by_prefix;
    if next.python.mode == PythonMode::Site {
        venv::rewrite_for_prefix(real, &next.prefix, &next.python.site)?;
    }
    Ok(())
}

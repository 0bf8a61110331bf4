//! A change to an existing environment, planned: the trusted manifest and the request
//! become the next manifest and, when packages change, the solved packages. Nothing on disk
//! changes here; the build step (`env::apply`) does that.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    conda::{self, specs::Spec},
    env::{
        apply::{self, Base, Build, Existing, Packages, Pip},
        ctx::{Ctx, channels, channels_for},
        plan::{
            Plan, conda_interpreter,
            named::{self, removed_specs},
            package_changes,
        },
        prefix::frozen,
        prefix::{Accept, EnvTarget},
        record::{self, Replacing},
        request, venv,
    },
    error::UserError,
    manifest::{KernelInfo, Manifest, PythonMode},
    outputs::modulefile,
    site::ModuleSystem,
};

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
    /// The same requested specs, solved again with newer versions allowed.
    Update(Updating),
}

/// What `update` lets move.
pub(crate) struct Updating {
    /// The packages that may move; none: all of them.
    pub(crate) names: Vec<String>,
    /// Where the site Python's facts are remembered, for probing it again.
    pub(crate) interpreter_cache: PathBuf,
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
    /// The environment was moved or copied to where the target names: re-point it there.
    pub(crate) relocated: bool,
}

/// Plan `change` to the environment `target` names. `channels` are the ones given on the
/// command line; otherwise the environment's own, then the config's, are used. A `dry_run`
/// leaves even outputs an earlier command left pending as they are.
pub(crate) async fn change(
    target: &EnvTarget,
    change: Change,
    cli_channels: &[String],
    dry_run: bool,
    ctx: &Ctx<'_>,
) -> Result<Plan> {
    let relocated = matches!(&change, Change::Outputs(o) if o.relocated);
    let accept = if relocated {
        Accept::Relocated
    } else {
        Accept::Intact
    };
    let mut opened = apply::open(target, accept, !dry_run, ctx)?;
    if opened.manifest.frozen
        && matches!(
            change,
            Change::Install(_) | Change::Remove(_) | Change::Update(_)
        )
    {
        return Err(frozen(&opened.manifest));
    }
    let replacing = match &change {
        Change::Outputs(o) => Replacing {
            prefix: o.relocated,
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
    if relocated {
        relocate_into(&mut next, target, &opened.real)?;
    }

    // What is installed, read once, for the changes that solve.
    let installed = match &change {
        Change::Outputs(_) | Change::Kernel(_) | Change::Freeze(_) | Change::Share(_) => Vec::new(),
        _ => conda::prefix::installed_records(&opened.real)?,
    };
    let (specs, removing) = match &change {
        Change::Install(added) => {
            for spec in &added.specs {
                if Spec::parse(spec)?.is_python() && old.python.mode == PythonMode::Site {
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
        Change::Update(u) => {
            named::check_site_python(&old, &u.interpreter_cache, target)?;
            let specs = named::updated_specs(&old, &u.names, &installed)?;
            // On the site's Python an env that requests nothing has nothing to solve for:
            // no channel is read.
            let nothing = specs.is_empty() && old.python.mode == PythonMode::Site;
            ((!nothing).then_some(specs), None)
        }
        Change::Outputs(_) | Change::Kernel(_) | Change::Freeze(_) | Change::Share(_) => {
            (None, None)
        }
    };

    let mut plan = None;
    // Channels of the manifest this user did not install from last time.
    let mut unchosen = Vec::new();
    if let Some(specs) = specs {
        let parsed = Spec::parse_all(&specs)?;
        let asks_python = parsed.iter().any(Spec::is_python);
        let mut conda_specs = parsed;
        if old.python.mode == PythonMode::Conda && !asks_python {
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
                installed: named::favored(&change, &installed),
                constraints: Vec::new(),
            },
            ctx,
        )
        .await?;
        solved.report(ctx.printer);
        let solved = solved.into_records();
        if let Some(names) = removing {
            for raw in names {
                let spec = Spec::parse(raw)?;
                if solved.iter().any(|r| r.package_record.name == *spec.name()) {
                    let name = spec.name().as_normalized();
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
    let changes = match &plan {
        Some((solved, _, _)) => package_changes(&installed, solved, next.python.mode),
        None => Default::default(),
    };

    if let Change::Kernel(kernel) = &change {
        next.kernel = kernel.clone();
    }
    if let Change::Freeze(frozen) = &change {
        next.frozen = *frozen;
    }
    let shares = match &change {
        Change::Share(sharing) => {
            sharing.modes()?;
            next.shared = Some(sharing.clone());
            true
        }
        _ => false,
    };
    let pip = match &change {
        Change::Install(added) if !added.pip.is_empty() => {
            next.pip.extend(added.pip.iter().cloned());
            Pip::Lines {
                lines: added.pip.clone(),
                cwd: added.pip_cwd.clone(),
            }
        }
        _ => Pip::default(),
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
    let packages = plan.map(|(records, specs, network)| Packages {
        records,
        specs,
        network,
        pip,
        variables: Vec::new(),
    });
    Ok(Plan {
        build: Build {
            next,
            packages,
            base: Base::Existing(Box::new(Existing {
                target: target.clone(),
                opened,
                old,
                relocated,
                shares,
                unchosen,
            })),
        },
        changes,
        keep: None,
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

/// Re-point a copied or moved environment at the path it now has.
fn relocate_into(next: &mut Manifest, target: &EnvTarget, real: &Path) -> Result<()> {
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

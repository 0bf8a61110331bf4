//! `envmod install` and `envmod remove`: a new set of requested specs, solved against what
//! is installed, applied to a hard-linked clone and swapped in atomically. A kill at any
//! moment leaves the old environment or the new one, never a mix.

use std::path::PathBuf;

use anyhow::Result;
use rattler_conda_types::{PrefixRecord, RepoDataRecord};

use crate::{
    commands::{delete::read_manifest, module},
    conda::{self, CondaSettings},
    env::{
        cleanup::CleanupGuard,
        failpoint,
        lock::{self, EnvLock},
        manifest::{Manifest, PythonMode},
        swap,
    },
    error::UserError,
    printer::Printer,
    render::{Renderer, context::ModulefileOptions},
    settings::EnvTarget,
};

pub enum Change {
    Install(Vec<String>),
    Remove(Vec<String>),
}

pub struct ChangeSettings {
    pub target: EnvTarget,
    pub change: Change,
    pub conda: CondaSettings,
    /// Channels given on the command line; otherwise the env's own, then the config's.
    pub explicit_channels: bool,
    pub templates_dir: Option<PathBuf>,
    pub options: ModulefileOptions,
}

/// The requested specs after the change: a new spec replaces an old one for the same package.
fn new_specs(
    manifest: &Manifest,
    change: &Change,
    installed: &[PrefixRecord],
) -> Result<Vec<String>> {
    let mut specs = manifest.specs.clone();
    match change {
        Change::Install(added) => {
            conda::solve::parse_specs(added)?;
            for spec in added {
                let name = module::spec_name_of(spec);
                if name == "python" && manifest.python.mode == PythonMode::Site {
                    return Err(UserError::usage(
                        "python comes from the site in this environment and cannot be installed",
                    )
                    .with_hint("create an environment with --python VERSION for a conda Python")
                    .into());
                }
                specs.retain(|s| module::spec_name_of(s) != name);
                specs.push(spec.clone());
            }
        }
        Change::Remove(names) => {
            for raw in names {
                let name = raw.to_ascii_lowercase();
                let requested = specs.iter().any(|s| module::spec_name_of(s) == name);
                let present = installed
                    .iter()
                    .any(|r| r.repodata_record.package_record.name.as_normalized() == name);
                if name == "python" {
                    return Err(
                        UserError::usage("python cannot be removed from an environment").into(),
                    );
                }
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
                specs.retain(|s| module::spec_name_of(s) != name);
            }
        }
    }
    Ok(specs)
}

pub async fn run(s: ChangeSettings, printer: &Printer) -> Result<()> {
    let _lock = EnvLock::acquire(&s.target.prefix, &s.target.name)?;
    lock::clear_leftovers(&s.target.prefix, &s.target.name)?;
    let mut manifest = read_manifest(&s.target)?;
    let installed = PrefixRecord::collect_from_prefix::<PrefixRecord>(&manifest.prefix)?;
    let specs = new_specs(&manifest, &s.change, &installed)?;

    let mut conda_specs = conda::solve::parse_specs(&specs)?;
    if manifest.python.mode == PythonMode::Conda
        && !specs.iter().any(|sp| module::spec_name_of(sp) == "python")
    {
        // The env's Python stays what it was created with.
        conda_specs.extend(conda::solve::parse_specs(&[format!(
            "python =={}",
            manifest.python.site.version
        )])?);
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let raw_channels = if s.explicit_channels || manifest.channels.is_empty() {
        s.conda.channels.clone()
    } else {
        manifest.channels.clone()
    };
    let channels = raw_channels
        .iter()
        .map(|c| conda::channels::resolve(c, &s.conda.channel_alias, &cwd))
        .collect::<Result<Vec<_>>>()?;
    let site_python = match manifest.python.mode {
        PythonMode::Site => Some(conda::solve::site_python_record(&manifest.python.site)?),
        PythonMode::Conda => None,
    };
    let request = conda::solve::SolveRequest {
        channels: &channels,
        specs: conda_specs.clone(),
        site_python,
        locked: installed
            .iter()
            .map(|r| r.repodata_record.clone())
            .collect(),
    };
    let records: Vec<RepoDataRecord> = conda::solve::solve(&s.conda, request, printer).await?;
    if let Change::Remove(names) = &s.change {
        for name in names {
            if records
                .iter()
                .any(|r| r.package_record.name.as_normalized() == name.to_ascii_lowercase())
            {
                return Err(UserError::failure(format!(
                    "{name} is still needed by the remaining packages ({}); nothing was changed",
                    specs.join(" ")
                ))
                .with_hint("remove the packages that depend on it as well")
                .into());
            }
        }
    }

    if manifest.python.mode == PythonMode::Conda {
        // `install python=3.13` moves a conda env to another Python, and its module name with it.
        manifest.python.site = super::create::conda_interpreter(&records, &manifest.prefix)?;
    }
    // Load the site's templates before the swap: a broken one must not leave a changed env
    // with a stale modulefile.
    let renderer = Renderer::new(s.templates_dir.as_deref())?;
    let old_module = manifest.module.clone();
    if let Some(info) = &old_module {
        module::render(
            &manifest,
            info.system,
            &renderer,
            &s.options,
            &Default::default(),
        )?;
        module::check_writable(&module::modulefile_path(&manifest, info.system, &info.root))?;
    }

    let staging = lock::staging_dir(&manifest.prefix, &manifest.name);
    let guard = CleanupGuard::new(&staging);
    swap::clone_tree(&manifest.prefix, guard.path())?;
    failpoint::hit("change:cloned");
    let request = conda::install::InstallRequest {
        dir: guard.path(),
        target_prefix: &manifest.prefix,
        records,
        specs: conda_specs,
        skip_python: manifest.python.mode == PythonMode::Site,
    };
    let changes = conda::install::install(&s.conda, request, printer).await?;
    failpoint::hit("change:installed");
    manifest.specs = specs;
    manifest.channels = channels.iter().map(conda::channels::display).collect();
    manifest.write_into(guard.path())?;
    guard.exchange_with(&manifest.prefix)?;
    failpoint::hit("change:exchanged");

    if let Some(old) = old_module {
        let info = module::write(&manifest, old.system, &old.root, &renderer, &s.options)?;
        if info.file != old.file {
            module::remove_file(&old.file)?;
        }
        manifest.module = Some(info);
        manifest.write_into(&manifest.prefix.clone())?;
    }
    // Dropping the guard removes the old tree, now at the staging path.
    drop(guard);

    let mut summary = Vec::new();
    if !changes.installed.is_empty() {
        summary.push(format!("installed {}", changes.installed.join(", ")));
    }
    if !changes.removed.is_empty() {
        summary.push(format!("removed {}", changes.removed.join(", ")));
    }
    if summary.is_empty() {
        summary.push("nothing to change".into());
    }
    printer.info(format!("{}: {}", manifest.name, summary.join("; ")));
    Ok(())
}

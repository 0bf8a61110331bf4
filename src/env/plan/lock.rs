//! `create -f` with a lock file or a bundle, planned: exactly the locked packages, checked
//! against what this site's modules provide, with no solve (but for conda's builds of what
//! a missing module gave, with `--skip-missing-modules`).

use std::path::Path;

use anyhow::{Context, Result};
use rattler_conda_types::RepoDataRecord;

use crate::{
    conda::{self, specs::Spec},
    env::{
        apply::{Packages, Pip},
        ctx::{Ctx, channels},
        from_file::{self, Source},
        plan::{
            Plan, conda_interpreter,
            new_env::{Built, CreateSettings, derive, provisions},
        },
        prefix, request, stack,
    },
    error::UserError,
    manifest::{Provisions, PythonMode},
    site::python,
};

/// `create -f` with a lock file or a bundle: exactly the locked packages, with no solve.
/// The lock names no modules and no Python mode: a lock with a `python` package is a conda
/// Python environment, one without is built on the site's Python.
pub(super) async fn from_lock(s: CreateSettings, ctx: &Ctx<'_>) -> Result<Plan> {
    let (env, printer) = (ctx.environ, ctx.printer);
    let target = &s.target;
    if target.prefix.symlink_metadata().is_ok() {
        return Err(prefix::already_exists(target));
    }
    if !s.specs.is_empty() {
        return Err(UserError::usage(
            "a lock file is installed exactly as it is; it takes no extra packages",
        )
        .with_hint(format!(
            "create it first, then `envmod install {} {}`",
            target.cli(),
            s.specs.join(" ")
        ))
        .into());
    }
    if s.conda_python.is_some() {
        return Err(
            UserError::usage("a lock file fixes the Python; --python cannot change it")
                .with_hint("export the lock again from an environment with the Python you want")
                .into(),
        );
    }
    let lock_path = match &s.file {
        Some(Source::Lock(p) | Source::Bundle(p)) => p.clone(),
        _ => unreachable!("from_lock is called for locks and bundles"),
    };
    let lock_path = lock_path.as_path();
    let (unpacked, lock, network) = match &s.file {
        Some(Source::Lock(path)) => {
            let lock = conda::lockfile::read(path, conda::PLATFORM)?;
            let network = channels(&lock.channels, ctx)
                .map(|c| c.network)
                .unwrap_or_default();
            (None, lock, network)
        }
        Some(Source::Bundle(path)) => {
            // Unpacked beside the environment, so the packages are on its filesystem.
            let real = target.real_path()?;
            let parent = real.parent().unwrap_or(Path::new("/"));
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
            let (guard, unpacked, lock) = from_file::unpack_bundle(path, parent, conda::PLATFORM)?;
            printer.detail(format!(
                "unpacked {} and its packages into {}",
                unpacked.lock.display(),
                unpacked.channel.display()
            ));
            (Some(guard), lock, conda::Network::default())
        }
        _ => unreachable!("from_lock is called for locks and bundles"),
    };
    let platforms: Vec<&str> = lock.platforms.iter().map(|p| p.as_str()).collect();
    printer.detail(format!("the lock is for {}", platforms.join(", ")));
    if !lock.virtuals.is_empty() {
        let made: Vec<String> = lock
            .virtuals
            .iter()
            .map(|v| format!("{} {}", v.name.as_normalized(), v.version))
            .collect();
        printer.detail(format!("the lock was made with {}", made.join(", ")));
    }
    // What this site's modules give, checked against what the lock rests on before anything
    // is installed.
    let (recorded, _) = stack::from_shell(env, &s.ignore_modules, printer)?;
    let derived = derive(&recorded, ctx);
    let here = request::site(&derived.provisions, conda::PLATFORM, ctx)?;
    let fit = from_file::check_lock_stand_ins(
        &lock.records,
        &lock.stand_ins,
        &here.stand_ins,
        &here.virtual_packages,
        s.skip_missing_modules,
        lock_path,
    )?;
    for warning in &fit.warnings {
        printer.warn(warning);
    }
    // What this site's modules stand in for, as a solve would say it.
    here.report_for(&lock.stand_ins, &lock.records, printer);
    let has_python = lock
        .records
        .iter()
        .any(|r| r.package_record.name.as_normalized() == "python");
    let mut records = lock.records;
    let mut library_dirs = Vec::new();
    let (mode, interpreter) = if has_python {
        (
            PythonMode::Conda,
            conda_interpreter(&records, &target.prefix)?,
        )
    } else {
        let located = python::locate(s.python.as_deref(), env)?;
        let probed = python::Probe::start(&located, Some(&s.interpreter_cache))?.wait()?;
        library_dirs = probed.library_dirs;
        let found = probed.python;
        from_file::check_lock_python(&records, &found, lock_path)?;
        if !lock.pip.is_empty() && !found.pip {
            return Err(UserError::failure(format!(
                "{} has pip packages, but the site Python {} has no pip",
                lock_path.display(),
                found.executable.display()
            ))
            .with_hint("use a site Python with pip (--site-python PATH)")
            .into());
        }
        // The site Python stands in for the `python` record the packages link against, as
        // it does in a solve; the installer never installs it.
        records.push(conda::solve::site_python_record(&found)?);
        (PythonMode::Site, found)
    };
    let provided = provisions(derived, library_dirs, s.ignore_site_packages);
    if !fit.missing.is_empty() {
        records = fill_in(
            records,
            &fit.missing,
            &lock.channels,
            (mode == PythonMode::Site).then_some(&interpreter),
            &provided,
            unpacked.is_some(),
            ctx,
        )
        .await?;
    }
    let names: Vec<String> = records
        .iter()
        .filter(|r| mode == PythonMode::Conda || r.package_record.name.as_normalized() != "python")
        .map(|r| r.package_record.name.as_normalized().to_string())
        .collect();
    let pip = lock
        .pip
        .iter()
        .map(|w| format!("{}=={}", w.name, w.version))
        .collect();
    printer.info(format!(
        "Installing the {} locked packages (no solve)",
        names.len()
    ));
    let built = Built {
        mode,
        interpreter,
        modules: recorded,
        specs: names.clone(),
        channels: lock.channels.clone(),
        selected: Vec::new(),
        pip,
        skipped_modules: Vec::new(),
        provided,
    };
    let packages = Packages {
        specs: Spec::parse_all(&names)?,
        records,
        network,
        pip: match lock.pip.is_empty() {
            true => Pip::default(),
            false => Pip::Wheels(lock.pip),
        },
        variables: Vec::new(),
    };
    built.into_plan(s, packages, unpacked, ctx)
}

/// `--skip-missing-modules` with a lock whose modules provided `missing` and no module here
/// does: the locked packages stay exactly as locked, and a solve on the lock's channels adds
/// conda's builds of what the modules gave.
async fn fill_in(
    records: Vec<RepoDataRecord>,
    missing: &[rattler_conda_types::PackageName],
    channels: &[String],
    site_python: Option<&python::Interpreter>,
    provided: &Provisions,
    bundle: bool,
    ctx: &Ctx<'_>,
) -> Result<Vec<RepoDataRecord>> {
    let names: Vec<&str> = missing.iter().map(|n| n.as_normalized()).collect();
    if bundle {
        return Err(UserError::failure(format!(
            "the bundle's packages rest on {} from a module, and it holds no conda build of them",
            names.join(", ")
        ))
        .with_hint("load a module that provides them, or build from the environment.yml with --skip-missing-modules where the channels can be reached")
        .into());
    }
    ctx.printer.info(format!(
        "Solving for conda's {}, which no module here provides",
        names.join(", ")
    ));
    let mut specs: Vec<String> = records
        .iter()
        .filter(|r| !(site_python.is_some() && r.package_record.name.as_normalized() == "python"))
        .map(|r| {
            let p = &r.package_record;
            format!("{} =={} {}", p.name.as_normalized(), p.version, p.build)
        })
        .collect();
    specs.extend(names.iter().map(|n| (*n).to_owned()));
    let channels = crate::env::ctx::channels(channels, ctx)?;
    let solved = request::solve(
        request::Inputs {
            platform: conda::PLATFORM,
            channels: &channels,
            specs: Spec::parse_all(&specs)?,
            site_python,
            provisions: Some(provided),
            installed: Vec::new(),
            constraints: Vec::new(),
        },
        ctx,
    )
    .await?;
    solved.report(ctx.printer);
    Ok(solved.into_records())
}

//! `envmod create`: an environment on the site's Python (or a conda Python), its packages,
//! then its modulefile. The prefix is built in a staging directory beside its final place
//! and renamed in, and the modulefile is written last, so no failure leaves a half-built env
//! or a modulefile without an env.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rattler_conda_types::RepoDataRecord;

use crate::{
    conda,
    env::{
        from_file::{self, Source},
        ops::{self, Ctx, NewEnv},
        prefix, request, stack,
    },
    environ::Environ,
    error::UserError,
    manifest::{MANIFEST_VERSION, Manifest, Provisions, PythonInfo, PythonMode},
    outputs::{kernel, modulefile},
    render::escape::sh_quote,
    settings::CreateSettings,
    site::{
        modules::{LoadedModule, Skipped},
        provides, python,
    },
};

pub(crate) async fn run(s: CreateSettings, ctx: &Ctx<'_>) -> Result<()> {
    if let Some(sharing) = &s.shared {
        // An unknown group, or one the user is not in, costs nothing.
        sharing.modes()?;
    }
    if matches!(s.file, Some(Source::Lock(_) | Source::Bundle(_))) {
        return from_lock(s, ctx).await;
    }
    let (env, printer) = (ctx.environ, ctx.printer);
    let target = &s.target;
    if target.prefix.symlink_metadata().is_ok() {
        return Err(prefix::already_exists(target));
    }
    if let Some(d) = s
        .description
        .as_deref()
        .filter(|d| d.chars().any(char::is_control))
    {
        return Err(UserError::usage(format!(
            "--description {d:?} holds a newline or another control character"
        ))
        .with_hint("give a one-line description")
        .into());
    }
    let yml = match &s.file {
        Some(Source::Yml(f)) => Some(&**f),
        _ => None,
    };
    for warning in yml.iter().flat_map(|f| &f.warnings) {
        printer.warn(warning);
    }
    if let Some(f) = yml
        && let Some(old) = &f.prefix
    {
        printer.info(format!(
            "note: ignoring `prefix: {}` in {}; the environment goes to {}",
            old.display(),
            f.path.display(),
            target.prefix.display()
        ));
    }
    let from_file = yml.and_then(|f| f.envmod.as_ref());
    // The Python: --python, else a conda Python when the file was exported from one (and
    // --site-python does not say otherwise), else the site's.
    let conda_python = s.conda_python.clone().or_else(|| {
        from_file
            .filter(|e| e.python.mode == PythonMode::Conda && !s.site_python_flag)
            .map(|e| e.python.version.clone())
    });
    // A file's modules are loaded first, in a scratch shell as `module load ENV` will: the
    // stack they give holds the site Python this environment is built on.
    let file_stack = match from_file {
        Some(e) => Some(stack::mapped(
            &e.modules,
            &s.module_map,
            s.skip_missing_modules,
            &yml.map_or_else(String::new, |f| format!("{} ", f.path.display())),
            env,
            printer,
        )?),
        None => None,
    };
    let python_env = file_stack
        .as_ref()
        .and_then(|m| m.environ.as_ref())
        .unwrap_or(env);
    // The site Python is started next and asked for its facts while envmod does the work
    // that does not depend on them.
    let probe = match &conda_python {
        None => {
            let interpreter = python::locate(s.python.as_deref(), python_env)?;
            let probe = python::Probe::start(&interpreter, Some(&s.interpreter_cache))?;
            Some((interpreter, probe))
        }
        Some(_) => None,
    };
    let (mut spec_strings, mut specs): (Vec<String>, Vec<_>) = match yml {
        Some(f) => {
            let file_specs: Vec<String> = f.specs.iter().map(|l| l.value.clone()).collect();
            conda::specs::with_added_parsed(&file_specs, &s.specs)?
                .into_iter()
                .unzip()
        }
        None => (s.specs.clone(), conda::specs::parse_specs(&s.specs)?),
    };
    let asks_python = specs.iter().any(|s| {
        s.name
            .as_exact()
            .is_some_and(|n| n.as_normalized() == "python")
    });
    if let Some(version) = &conda_python
        && !asks_python
    {
        // `--python 3.12` means any 3.12; a file's exact version means that version.
        let spec = match s.conda_python {
            Some(_) => format!("python {version}.*"),
            None => format!("python =={version}"),
        };
        specs.extend(conda::specs::parse_specs(&[spec])?);
    }
    let (recorded, skipped, missing) = match file_stack {
        Some(m) => (m.modules, Vec::new(), m.missing),
        None => {
            let (recorded, skipped) = stack::from_shell(env, &s.ignore_modules, printer)?;
            (recorded, skipped, Vec::new())
        }
    };
    let derived = derive(&recorded, ctx);
    let mut variant = Vec::new();
    if let (Some(f), Some(e)) = (yml, from_file) {
        let fit = from_file::check_provisions(
            &e.provided,
            &derived.provisions,
            &recorded,
            &s.module_map,
            s.skip_missing_modules,
            f,
        )?;
        for warning in fit.warnings {
            printer.warn(warning);
        }
        variant = fit.constraints;
    }
    let ignore_site_packages =
        s.ignore_site_packages || from_file.is_some_and(|e| e.ignore_site_packages);
    let mut library_dirs = Vec::new();
    let site_python = match probe {
        Some((interpreter, probe)) => {
            let probed = probe.wait()?;
            library_dirs = probed.library_dirs;
            let found = probed.python;
            printer.detail(format!(
                "site Python {} ({}) found via {}",
                found.version,
                found.executable.display(),
                interpreter.display()
            ));
            Some(found)
        }
        None => None,
    };
    if let (Some(found), Some(f)) = (&site_python, yml) {
        from_file::check_site_python(found, f, s.site_python_flag)?;
        from_file::check_python_pin(found, f, s.site_python_flag)?;
        if !f.pip.is_empty() && !found.pip {
            return Err(UserError::failure(format!(
                "{} has a pip section, but the site Python {} has no pip",
                f.path.display(),
                found.executable.display()
            ))
            .with_hint("use a site Python with pip (--site-python PATH), or a conda Python with pip (--python X.Y)")
            .into());
        }
    }

    for skip in &skipped {
        match skip {
            Skipped::Sticky(m) => printer.detail(format!("not recording sticky module {m}")),
            Skipped::Ignored(m) => printer.detail(format!("not recording {m} (ignore_modules)")),
            Skipped::Tool(m) => printer.detail(format!("not recording {m}: it is envmod itself")),
            Skipped::Envmod(m) => {
                printer.info(format!("not recording {m}: it is an envmod environment"))
            }
            Skipped::Path(m) => printer.warn(format!(
                "not recording {m}: it was loaded by path, and envmod records only module names found on MODULEPATH; to record it, `module use` its directory and load it by name"
            )),
        }
    }

    let provisions = provisions(derived, library_dirs, ignore_site_packages);

    // --kernel: ipykernel joins the packages unless they or the site Python have it.
    let add_ipykernel = s.kernel
        && !specs.iter().any(|m| {
            m.name
                .as_exact()
                .is_some_and(|n| n.as_normalized() == "ipykernel")
        })
        && !site_python
            .as_ref()
            .is_some_and(|p| kernel::site_has_ipykernel(&p.executable));

    // Solve before touching the disk: an unsatisfiable request must cost nothing.
    let mut channels = ops::Channels::default();
    let mut records: Vec<RepoDataRecord> = Vec::new();
    if !specs.is_empty() || add_ipykernel {
        let raw_channels = match yml {
            Some(f) => {
                from_file::file_channels(f, &spec_strings, &s.cli_channels, &ctx.conda.channels)
            }
            None => ctx.conda.channels.clone(),
        };
        channels = ops::channels_for(&raw_channels, &mut specs, ctx)?;
        if add_ipykernel {
            let site = site_python.is_some();
            ipykernel_from_channels(&channels, site, s.shared.is_some(), ctx).await?;
            printer.info("--kernel: adding ipykernel to the packages");
            spec_strings.push("ipykernel".to_string());
            specs.extend(conda::specs::parse_specs(&["ipykernel".to_string()])?);
        }
        let solved = request::solve(
            request::Inputs {
                platform: conda::PLATFORM,
                channels: &channels,
                specs: specs.clone(),
                site_python: site_python.as_ref(),
                provisions: Some(&provisions),
                installed: Vec::new(),
                constraints: variant,
            },
            ctx,
        )
        .await
        .map_err(|e| match yml {
            Some(f) => from_file::name_the_line(e, f),
            None => e,
        })?;
        solved.report(printer);
        records = solved.into_records();
    }
    let (mode, interpreter) = match site_python {
        Some(p) => (PythonMode::Site, p),
        None => (
            PythonMode::Conda,
            ops::conda_interpreter(&records, &target.prefix)?,
        ),
    };

    let built = Built {
        mode,
        interpreter,
        modules: recorded,
        specs: spec_strings,
        channels: channels.list.iter().map(conda::channels::display).collect(),
        selected: yml.map(|f| f.selected.clone()).unwrap_or_default(),
        pip: yml.map(|f| f.pip.clone()).unwrap_or_default(),
        skipped_modules: missing,
        provided: provisions,
    };
    let mut manifest = built.manifest(&s);
    with_kernel(&mut manifest, &s, ctx)?;
    let new = NewEnv {
        target: target.clone(),
        manifest,
        specs,
        records,
        network: channels.network,
        variables: yml.map(|f| f.variables.clone()).unwrap_or_default(),
        pip_cwd: yml.map_or_else(|| env.cwd().to_path_buf(), |f| f.dir().to_path_buf()),
        pip_wheels: Vec::new(),
    };
    let manifest = ops::create(new, &s.registry, ctx).await?;
    report(&manifest, env, printer);
    Ok(())
}

/// `--kernel` without ipykernel anywhere yet: one of the channels must have it, or the
/// error names the fix. A shared environment is never sent to pip, which writes with the
/// user's umask.
async fn ipykernel_from_channels(
    channels: &ops::Channels,
    site: bool,
    shared: bool,
    ctx: &Ctx<'_>,
) -> Result<()> {
    let found = conda::solve::has_package(
        ctx.conda,
        &channels.list,
        &channels.network,
        conda::PLATFORM,
        "ipykernel",
    )
    .await?;
    if found {
        return Ok(());
    }
    let searched = match channels.list.as_slice() {
        [] => "no channel is configured".to_string(),
        list => format!(
            "none of the channels has it: {}",
            list.iter()
                .map(conda::channels::display)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let hint = match shared {
        true => "add a channel that has ipykernel, e.g. `-c conda-forge`",
        false => {
            "add a channel that has ipykernel, e.g. `-c conda-forge`; or create without --kernel, `pip install ipykernel` after `module load`, then `envmod kernel add`"
        }
    };
    let missing = match site {
        true => "neither the packages nor the site Python have it",
        false => "the packages do not include it",
    };
    Err(UserError::failure(format!(
        "--kernel needs ipykernel: {missing}, and {searched}"
    ))
    .with_hint(hint)
    .into())
}

/// `--kernel`: the kernel becomes one of the outputs `create` writes. ipykernel must come
/// with the packages or be in the site Python, checked before anything is built.
fn with_kernel(manifest: &mut Manifest, s: &CreateSettings, ctx: &Ctx<'_>) -> Result<()> {
    if !s.kernel {
        return Ok(());
    }
    let in_specs = manifest.specs.iter().any(|spec| {
        conda::specs::spec_package_name(spec).is_ok_and(|n| n.as_normalized() == "ipykernel")
    });
    if !in_specs {
        if manifest.python.mode == PythonMode::Conda {
            return Err(UserError::usage(format!(
                "--kernel needs ipykernel, and {} does not ask for it",
                manifest.name
            ))
            .with_hint("add ipykernel to the packages")
            .into());
        }
        // Not built yet: only the site's packages, asked of the Python this user chose.
        let site = Some(Ok(manifest.python.site.executable.as_path()));
        kernel::require_ipykernel(manifest, &manifest.prefix, site)
            .map_err(|e| e.context("--kernel: add ipykernel to the packages"))?;
    }
    manifest.kernel = Some(kernel::plan_kernel(
        manifest,
        None,
        None,
        None,
        ctx.environ,
        ctx.printer,
    )?);
    Ok(())
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
    let channels = ops::channels(channels, ctx)?;
    let solved = request::solve(
        request::Inputs {
            platform: conda::PLATFORM,
            channels: &channels,
            specs: conda::specs::parse_specs(&specs)?,
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

/// What the recorded modules provide by this site's rules; `-v` says which rules were
/// passed over, and why.
fn derive(recorded: &[LoadedModule], ctx: &Ctx<'_>) -> provides::Derived {
    let derived = provides::derive(recorded, &ctx.site.rules);
    for note in &derived.notes {
        ctx.printer.detail(note);
    }
    derived
}

/// The provisions a new environment records: what its modules provide, and the site Python's
/// library directories (site mode, not ignored) for every later solve to read its packages
/// from.
fn provisions(
    derived: provides::Derived,
    library_dirs: Vec<PathBuf>,
    ignore_site_packages: bool,
) -> Provisions {
    Provisions {
        modules: derived.provisions,
        site_packages: if ignore_site_packages {
            Vec::new()
        } else {
            library_dirs
        },
        ignore_site_packages,
    }
}

/// What a create decided, for its manifest.
struct Built {
    mode: PythonMode,
    interpreter: python::Interpreter,
    modules: Vec<LoadedModule>,
    specs: Vec<String>,
    channels: Vec<String>,
    selected: Vec<conda::envfile::Selected>,
    pip: Vec<String>,
    skipped_modules: Vec<String>,
    provided: Provisions,
}

impl Built {
    fn manifest(self, s: &CreateSettings) -> Manifest {
        let target = &s.target;
        let mut manifest = Manifest {
            manifest_version: MANIFEST_VERSION,
            envmod_version: env!("CARGO_PKG_VERSION").to_string(),
            name: target.name.clone(),
            prefix: target.prefix.clone(),
            created: chrono::Utc::now(),
            description: s.description.clone(),
            python: PythonInfo {
                mode: self.mode,
                site: self.interpreter,
            },
            modules: self.modules,
            specs: self.specs,
            channels: self.channels,
            selected: self.selected,
            pip: self.pip,
            skipped_modules: self.skipped_modules,
            module: None,
            kernel: None,
            frozen: false,
            shared: s.shared.clone(),
            owner: crate::fs::current_user(),
            by_prefix: target.by_prefix,
            outputs_pending: false,
            provided: Some(self.provided),
            activation: None,
        };
        manifest.module = s
            .module_system
            .map(|system| modulefile::info_for(&manifest, system, &s.module_root));
        manifest
    }
}

/// `create -f` with a lock file or a bundle: exactly the locked packages, with no solve.
/// The lock names no modules and no Python mode: a lock with a `python` package is a conda
/// Python environment, one without is built on the site's Python.
async fn from_lock(s: CreateSettings, ctx: &Ctx<'_>) -> Result<()> {
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
            let network = ops::channels(&lock.channels, ctx)
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
            ops::conda_interpreter(&records, &target.prefix)?,
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
    let mut manifest = built.manifest(&s);
    with_kernel(&mut manifest, &s, ctx)?;
    let new = NewEnv {
        target: target.clone(),
        manifest,
        specs: conda::specs::parse_specs(&names)?,
        records,
        network,
        variables: Vec::new(),
        pip_cwd: env.cwd().to_path_buf(),
        pip_wheels: lock.pip,
    };
    let manifest = ops::create(new, &s.registry, ctx).await?;
    drop(unpacked);
    report(&manifest, env, printer);
    Ok(())
}

fn report(m: &Manifest, env: &Environ, printer: &crate::printer::Printer) {
    let py = &m.python.site;
    let kind = match m.python.mode {
        PythonMode::Site => "the site's Python",
        PythonMode::Conda => "conda Python",
    };
    printer.info(format!(
        "Created environment {} on {kind} {} in {}",
        m.name,
        py.version,
        m.prefix.display()
    ));
    if !m.specs.is_empty() {
        printer.info(format!("Packages: {}", m.specs.join(" ")));
    }
    if !m.modules.is_empty() {
        let names: Vec<_> = m.modules.iter().map(|l| l.full_name.as_str()).collect();
        printer.info(format!("Recorded modules: {}", names.join(" ")));
    }
    let mut lines = Vec::new();
    match &m.module {
        Some(info) => {
            let root = info.root.to_string_lossy();
            let on_path = env
                .get("MODULEPATH")
                .is_some_and(|p| p.split(':').any(|d| d == root));
            if !on_path {
                lines.push(format!("module use {}", tilde(&info.root, env)));
            }
            lines.push(format!("module load {}", info.name));
        }
        None => lines.push(format!(
            ". {}        # bash, zsh, sh; `deactivate` undoes it",
            sh_quote(&m.prefix.join("bin/activate").to_string_lossy())
        )),
    }
    lines.push(format!(
        "envmod install {} <package>   # or: pip install <package>",
        m.cli_target()
    ));
    printer.boxed("To use it", &lines);
    if !py.pip && m.python.mode == PythonMode::Site {
        printer.warn(format!(
            "the site Python {} has no pip; `pip install` will not work until pip is available",
            py.executable.display()
        ));
    }
}

/// A path as users type it in a shell: `~/…` under HOME, quoted where needed.
fn tilde(p: &std::path::Path, env: &Environ) -> String {
    match env
        .home()
        .and_then(|h| p.strip_prefix(h).ok().map(|r| r.to_path_buf()))
    {
        Some(rest) if rest.as_os_str().is_empty() => "~".into(),
        Some(rest) => format!("~/{}", sh_quote(&rest.to_string_lossy())),
        None => sh_quote(&p.to_string_lossy()),
    }
}

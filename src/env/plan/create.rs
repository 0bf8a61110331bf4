//! `create` from specs or an environment file, planned: the file's modules replayed, the
//! Python chosen and probed, what the modules provide, and one solve; nothing on disk changes
//! until the plan is built.

use anyhow::Result;
use rattler_conda_types::RepoDataRecord;

use crate::{
    conda::{self, specs::Spec},
    env::{
        apply::{Packages, Pip},
        ctx::{Channels, Ctx, channels_for},
        from_file::{self, Source},
        plan::{
            Plan, conda_interpreter,
            new_env::{Built, CreateSettings, derive, provisions},
        },
        prefix, request, stack,
    },
    error::UserError,
    manifest::PythonMode,
    outputs::kernel,
    site::{modules::Skipped, python},
};

/// Plan a new environment from specs or an environment file: the Python, the recorded
/// modules, what they provide, and the solved packages.
pub(crate) async fn create(s: CreateSettings, ctx: &Ctx<'_>) -> Result<Plan> {
    if let Some(sharing) = &s.shared {
        // An unknown group, or one the user is not in, costs nothing.
        sharing.modes()?;
    }
    if s.clone.is_some() {
        return super::clone::from_clone(s, ctx).await;
    }
    if matches!(s.file, Some(Source::Lock(_) | Source::Bundle(_))) {
        return super::lock::from_lock(s, ctx).await;
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
            let specs = conda::specs::with_added_specs(&file_specs, &s.specs)?;
            (specs.iter().map(|s| s.text().to_owned()).collect(), specs)
        }
        None => (s.specs.clone(), Spec::parse_all(&s.specs)?),
    };
    let asks_python = specs.iter().any(Spec::is_python);
    if let Some(version) = &conda_python
        && !asks_python
    {
        // `--python 3.12` means any 3.12; a file's exact version means that version.
        let spec = match s.conda_python {
            Some(_) => format!("python {version}.*"),
            None => format!("python =={version}"),
        };
        specs.push(Spec::parse(&spec)?);
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
        check_file_python(found, f, s.site_python_flag)?;
    }
    report_skipped(&skipped, printer);

    let provisions = provisions(derived, library_dirs, ignore_site_packages);

    // --kernel: ipykernel joins the packages unless they or the site Python have it.
    let add_ipykernel = s.kernel
        && !specs
            .iter()
            .any(|m| m.name().as_normalized() == "ipykernel")
        && !site_python
            .as_ref()
            .is_some_and(|p| kernel::site_has_ipykernel(&p.executable));

    // Solve before touching the disk: an unsatisfiable request must cost nothing.
    let mut channels = Channels::default();
    let mut records: Vec<RepoDataRecord> = Vec::new();
    if !specs.is_empty() || add_ipykernel {
        let raw_channels = match yml {
            Some(f) => {
                from_file::file_channels(f, &spec_strings, &s.cli_channels, &ctx.conda.channels)
            }
            None => ctx.conda.channels.clone(),
        };
        channels = channels_for(&raw_channels, &mut specs, ctx)?;
        if add_ipykernel {
            let site = site_python.is_some();
            ipykernel_from_channels(&channels, site, s.shared.is_some(), ctx).await?;
            printer.info("--kernel: adding ipykernel to the packages");
            spec_strings.push("ipykernel".to_string());
            specs.push(Spec::parse("ipykernel")?);
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
            conda_interpreter(&records, &target.prefix)?,
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
    let packages = Packages {
        pip: Pip::Lines {
            lines: built.pip.clone(),
            cwd: yml.map_or_else(|| env.cwd().to_path_buf(), |f| f.dir().to_path_buf()),
        },
        records,
        specs,
        network: channels.network,
        variables: yml.map(|f| f.variables.clone()).unwrap_or_default(),
    };
    built.into_plan(s, packages, None, ctx)
}

/// `--kernel` without ipykernel anywhere yet: one of the channels must have it, or the
/// error names the fix. A shared environment is never sent to pip, which writes with the
/// user's umask.
async fn ipykernel_from_channels(
    channels: &Channels,
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

/// The site Python against what an environment file asks of it: its version, and pip for a
/// pip section.
fn check_file_python(
    found: &python::Interpreter,
    f: &crate::conda::envfile::EnvFile,
    site_python_flag: bool,
) -> Result<()> {
    from_file::check_site_python(found, f, site_python_flag)?;
    from_file::check_python_pin(found, f, site_python_flag)?;
    if !f.pip.is_empty() && !found.pip {
        return Err(UserError::failure(format!(
            "{} has a pip section, but the site Python {} has no pip",
            f.path.display(),
            found.executable.display()
        ))
        .with_hint("use a site Python with pip (--site-python PATH), or a conda Python with pip (--python X.Y)")
        .into());
    }
    Ok(())
}

/// Why each loaded module that is not recorded is left out: said under `-v`, or louder where
/// the user may have meant it to be recorded.
fn report_skipped(skipped: &[Skipped], printer: &crate::printer::Printer) {
    for skip in skipped {
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
}

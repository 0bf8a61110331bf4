//! `envmod create`: an environment on the site's Python (or a conda Python), its packages,
//! then its modulefile. The prefix is built in a staging directory beside its final place
//! and renamed in, and the modulefile is written last, so no failure leaves a half-built env
//! or a modulefile without an env.

use std::path::PathBuf;

use anyhow::{Context, Result};
use rattler_conda_types::RepoDataRecord;

use crate::{
    commands::module,
    conda::{self, CondaSettings},
    env::{
        cleanup::CleanupGuard,
        failpoint,
        lock::{self, EnvLock},
        manifest::{MANIFEST_VERSION, Manifest, ModuleInfo, PythonInfo, PythonMode},
        registry::Registry,
        venv,
    },
    environ::Environ,
    error::UserError,
    printer::Printer,
    render::{Renderer, context::ModulefileOptions, escape::sh_quote},
    settings::EnvTarget,
    site::{
        ModuleSystem,
        modules::{self, Skipped},
        python::{self, SitePython},
    },
};

pub struct CreateSettings {
    pub target: EnvTarget,
    pub python: Option<String>,
    /// `--python X.Y`: a conda Python from the channels instead of the site's.
    pub conda_python: Option<String>,
    pub specs: Vec<String>,
    pub conda: CondaSettings,
    pub module_system: Option<ModuleSystem>,
    pub module_root: PathBuf,
    pub ignore_modules: Vec<String>,
    pub templates_dir: Option<PathBuf>,
    pub options: ModulefileOptions,
    pub description: Option<String>,
    pub registry: Registry,
    pub interpreter_cache: PathBuf,
}

fn already_exists(target: &EnvTarget) -> anyhow::Error {
    let hint = if Manifest::path_in(&target.prefix).is_file() {
        let how = if target.by_prefix {
            format!("-p {}", sh_quote(&target.prefix.to_string_lossy()))
        } else {
            format!("-n {}", target.name)
        };
        format!("choose another name, or remove it first with `envmod delete {how}`")
    } else {
        "choose another name or prefix; envmod never writes into an existing directory".to_string()
    };
    UserError::failure(format!("{} already exists", target.prefix.display()))
        .with_hint(hint)
        .into()
}

pub async fn run(s: CreateSettings, env: &Environ, printer: &Printer) -> Result<()> {
    let target = &s.target;
    if target.prefix.symlink_metadata().is_ok() {
        return Err(already_exists(target));
    }
    // The site Python is started first and asked for its facts while envmod does the work
    // that does not depend on them.
    let probe = match &s.conda_python {
        None => {
            let interpreter = python::locate(s.python.as_deref(), env)?;
            let probe = python::Probe::start(&interpreter, Some(&s.interpreter_cache))?;
            Some((interpreter, probe))
        }
        Some(_) => None,
    };
    let mut specs = conda::solve::parse_specs(&s.specs)?;
    if let Some(version) = &s.conda_python {
        specs.push(conda::solve::parse_specs(&[format!("python {version}.*")])?.remove(0));
    }
    let (recorded, skipped) = modules::capture(env, &s.ignore_modules);
    // Compiled before touching the disk: a broken site template must not cost an env.
    let renderer = Renderer::new(s.templates_dir.as_deref())?;
    let site_python = match probe {
        Some((interpreter, probe)) => {
            let found = probe.wait()?;
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

    for skip in &skipped {
        match skip {
            Skipped::Sticky(m) => printer.detail(format!("not recording sticky module {m}")),
            Skipped::Ignored(m) => printer.detail(format!("not recording {m} (ignore_modules)")),
            Skipped::Tool(m) => printer.detail(format!("not recording {m}: it is envmod itself")),
            Skipped::Envmod(m) => {
                printer.info(format!("not recording {m}: it is an envmod environment"))
            }
        }
    }

    // Solve before touching the disk: an unsatisfiable request must cost nothing.
    let mut channels = Vec::new();
    let mut records: Vec<RepoDataRecord> = Vec::new();
    if !specs.is_empty() {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        for raw in &s.conda.channels {
            channels.push(conda::channels::resolve(raw, &s.conda.channel_alias, &cwd)?);
        }
        let request = conda::solve::SolveRequest {
            channels: &channels,
            specs: specs.clone(),
            site_python: site_python
                .as_ref()
                .map(conda::solve::site_python_record)
                .transpose()?,
            locked: Vec::new(),
        };
        records = conda::solve::solve(&s.conda, request, printer).await?;
    }
    let (mode, interpreter) = match site_python {
        Some(p) => (PythonMode::Site, p),
        None => (
            PythonMode::Conda,
            conda_interpreter(&records, &target.prefix)?,
        ),
    };

    let mut manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        envmod_version: env!("CARGO_PKG_VERSION").to_string(),
        name: target.name.clone(),
        prefix: target.prefix.clone(),
        created: chrono::Utc::now(),
        description: s.description.clone(),
        python: PythonInfo {
            mode,
            site: interpreter,
        },
        modules: recorded,
        specs: s.specs.clone(),
        channels: channels.iter().map(conda::channels::display).collect(),
        module: None,
        by_prefix: target.by_prefix,
    };

    // Render before touching the disk: a template that fails on this env must not cost it.
    if let Some(system) = s.module_system {
        module::render(
            &manifest,
            system,
            &renderer,
            &s.options,
            &Default::default(),
        )?;
        let file = module::modulefile_path(&manifest, system, &s.module_root);
        module::check_writable(&file)?;
        manifest.module = Some(ModuleInfo {
            system,
            root: s.module_root.clone(),
            name: manifest.module_name(),
            file,
        });
    }

    let _lock = EnvLock::acquire(&target.prefix, &target.name)?;
    if target.prefix.symlink_metadata().is_ok() {
        return Err(already_exists(target));
    }
    lock::clear_leftovers(&target.prefix, &target.name)?;

    let staging = lock::staging_dir(&target.prefix, &target.name);
    let mut guard = CleanupGuard::create(&staging).map_err(|e| {
        UserError::failure(format!("cannot create {}: {e}", staging.display()))
            .with_hint("check that you can write to that directory, or choose another with --prefix or envs_dir")
    })?;
    if mode == PythonMode::Site {
        venv::write_layout(guard.path(), &target.prefix, &manifest.python.site)?;
    }
    failpoint::hit("create:staged");
    if !records.is_empty() {
        let request = conda::install::InstallRequest {
            dir: guard.path(),
            target_prefix: &target.prefix,
            records,
            specs,
            skip_python: mode == PythonMode::Site,
        };
        let changes = conda::install::install(&s.conda, request, printer).await?;
        printer.detail(format!("installed {}", changes.installed.join(", ")));
    } else {
        std::fs::create_dir_all(guard.path().join("conda-meta"))?;
    }
    failpoint::hit("create:installed");
    manifest.write_into(guard.path())?;
    guard.rename(&target.prefix).with_context(|| {
        format!(
            "failed to move the new environment into {}",
            target.prefix.display()
        )
    })?;
    failpoint::hit("create:renamed");

    guard.finish_with(|| match &manifest.module {
        Some(info) => {
            module::write(&manifest, info.system, &info.root, &renderer, &s.options).map(|_| ())
        }
        None => Ok(()),
    })?;
    if target.by_prefix {
        s.registry.add(&target.prefix)?;
    }

    report(&manifest, env, printer);
    Ok(())
}

/// The conda Python the solve chose, as the manifest records it.
pub(crate) fn conda_interpreter(
    records: &[RepoDataRecord],
    prefix: &std::path::Path,
) -> Result<SitePython> {
    let python = records
        .iter()
        .find(|r| r.package_record.name.as_normalized() == "python")
        .ok_or_else(|| {
            UserError::failure("the solution has no python package").with_hint("check --python")
        })?;
    let version = python.package_record.version.to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(3), parts.next().unwrap_or(0));
    Ok(SitePython {
        executable: prefix.join(format!("bin/python{major}.{minor}")),
        version,
        major,
        minor,
        pip: records
            .iter()
            .any(|r| r.package_record.name.as_normalized() == "pip"),
    })
}

fn report(m: &Manifest, env: &Environ, printer: &Printer) {
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
            "export PATH={}:\"$PATH\"",
            sh_quote(&m.prefix.join("bin").to_string_lossy())
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

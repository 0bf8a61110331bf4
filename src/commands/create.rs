//! `envmod create`: an environment on the site's Python (or a conda Python), its packages,
//! then its modulefile. The prefix is built in a staging directory beside its final place
//! and renamed in, and the modulefile is written last, so no failure leaves a half-built env
//! or a modulefile without an env.

use std::path::PathBuf;

use anyhow::Result;
use rattler_conda_types::RepoDataRecord;

use crate::{
    conda,
    env::{
        ops::{self, Ctx, NewEnv},
        prefix::{self, EnvTarget},
        registry::Registry,
    },
    environ::Environ,
    error::UserError,
    manifest::{MANIFEST_VERSION, Manifest, PythonInfo, PythonMode},
    outputs::modulefile,
    render::escape::sh_quote,
    site::{
        ModuleSystem,
        modules::{self, Skipped},
        python,
    },
};

pub(crate) struct CreateSettings {
    pub(crate) target: EnvTarget,
    pub(crate) python: Option<String>,
    /// `--python X.Y`: a conda Python from the channels instead of the site's.
    pub(crate) conda_python: Option<String>,
    pub(crate) specs: Vec<String>,
    pub(crate) module_system: Option<ModuleSystem>,
    pub(crate) module_root: PathBuf,
    pub(crate) ignore_modules: Vec<String>,
    pub(crate) description: Option<String>,
    pub(crate) registry: Registry,
    pub(crate) interpreter_cache: PathBuf,
}

pub(crate) async fn run(s: CreateSettings, ctx: &Ctx<'_>) -> Result<()> {
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
    let mut specs = conda::specs::parse_specs(&s.specs)?;
    if let Some(version) = &s.conda_python {
        specs.extend(conda::specs::parse_specs(&[format!("python {version}.*")])?);
    }
    let (recorded, skipped) = modules::capture(env, &s.ignore_modules);
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
    let mut channels = ops::Channels::default();
    let mut records: Vec<RepoDataRecord> = Vec::new();
    if !specs.is_empty() {
        channels = ops::channels(&ctx.conda.channels, ctx)?;
        records = ops::solve(
            &channels,
            specs.clone(),
            site_python.as_ref(),
            Vec::new(),
            ctx,
        )
        .await?;
    }
    let (mode, interpreter) = match site_python {
        Some(p) => (PythonMode::Site, p),
        None => (
            PythonMode::Conda,
            ops::conda_interpreter(&records, &target.prefix)?,
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
        channels: channels.list.iter().map(conda::channels::display).collect(),
        module: None,
        by_prefix: target.by_prefix,
        outputs_pending: false,
    };

    manifest.module = s
        .module_system
        .map(|system| modulefile::info_for(&manifest, system, &s.module_root));
    let new = NewEnv {
        target: target.clone(),
        manifest,
        specs,
        records,
        network: channels.network,
    };
    let manifest = ops::create(new, &s.registry, ctx).await?;
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

//! `envmod create`: an environment on the site's Python (or a conda Python), its packages,
//! then its modulefile. The prefix is built in a staging directory beside its final place
//! and renamed in, and the modulefile is written last, so no failure leaves a half-built env
//! or a modulefile without an env.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Result;
use rattler_conda_types::RepoDataRecord;

use crate::{
    conda::{self, envfile::EnvFile},
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
        modules::{self, LoadedModule, Skipped},
        python,
    },
};

pub(crate) struct CreateSettings {
    pub(crate) target: EnvTarget,
    /// `-f FILE`, already read.
    pub(crate) file: Option<Source>,
    /// `-c` given on the command line: added to a file's channels.
    pub(crate) cli_channels: Vec<String>,
    /// `--site-python` was given: it, not the file, decides the Python.
    pub(crate) site_python_flag: bool,
    pub(crate) module_map: BTreeMap<String, Option<String>>,
    pub(crate) skip_missing_modules: bool,
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
    let yml = match &s.file {
        Some(Source::Yml(f)) => Some(f),
        _ => None,
    };
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
    // The site Python is started first and asked for its facts while envmod does the work
    // that does not depend on them.
    let probe = match &conda_python {
        None => {
            let interpreter = python::locate(s.python.as_deref(), env)?;
            let probe = python::Probe::start(&interpreter, Some(&s.interpreter_cache))?;
            Some((interpreter, probe))
        }
        Some(_) => None,
    };
    let spec_strings = match yml {
        Some(f) => {
            let file_specs: Vec<String> = f.specs.iter().map(|l| l.value.clone()).collect();
            conda::specs::with_added(&file_specs, &s.specs)?
        }
        None => s.specs.clone(),
    };
    let mut specs = conda::specs::parse_specs(&spec_strings)?;
    let names = spec_strings
        .iter()
        .map(|s| conda::specs::spec_package_name(s))
        .collect::<Result<Vec<_>>>()?;
    let asks_python = names.iter().any(|n| n.as_normalized() == "python");
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
    let (recorded, skipped, missing) = match from_file {
        Some(e) => {
            let (kept, missing) =
                file_modules(e, &s.module_map, s.skip_missing_modules, yml, env, printer)?;
            (kept, Vec::new(), missing)
        }
        None => {
            let (recorded, skipped) = modules::capture(env, &s.ignore_modules);
            (recorded, skipped, Vec::new())
        }
    };
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
    if let (Some(found), Some(f)) = (&site_python, yml) {
        check_site_python(found, f, &s)?;
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
        }
    }

    // Solve before touching the disk: an unsatisfiable request must cost nothing.
    let mut channels = ops::Channels::default();
    let mut records: Vec<RepoDataRecord> = Vec::new();
    if !specs.is_empty() {
        let raw_channels = match yml {
            Some(f) => file_channels(f, &spec_strings, &s.cli_channels, ctx),
            None => ctx.conda.channels.clone(),
        };
        channels = ops::channels(&raw_channels, ctx)?;
        records = ops::solve(
            &channels,
            specs.clone(),
            site_python.as_ref(),
            Vec::new(),
            ctx,
        )
        .await
        .map_err(|e| match yml {
            Some(f) => name_the_line(e, f),
            None => e,
        })?;
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
        specs: spec_strings,
        channels: channels.list.iter().map(conda::channels::display).collect(),
        pip: yml.map(|f| f.pip.clone()).unwrap_or_default(),
        skipped_modules: missing,
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
        variables: yml.map(|f| f.variables.clone()).unwrap_or_default(),
        pip_cwd: yml.map_or_else(|| env.cwd().to_path_buf(), |f| f.dir().to_path_buf()),
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

/// What `-f` names, sniffed from its content rather than its extension.
pub(crate) enum Source {
    Yml(EnvFile),
    Lock(PathBuf),
    Bundle(PathBuf),
}

impl Source {
    /// Read `path` (absolute) enough to know what it is; an environment.yml is parsed whole.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let unreadable = |e: std::io::Error| -> anyhow::Error {
            UserError::usage(format!("cannot read {}: {e}", path.display()))
                .with_hint("give the path of an environment.yml, a lock file or a bundle")
                .into()
        };
        let bytes = std::fs::read(path).map_err(unreadable)?;
        if bytes.len() > 262 && &bytes[257..262] == b"ustar" {
            return Ok(Source::Bundle(path.to_path_buf()));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            UserError::usage(format!(
                "{} is neither a text file (environment.yml, lock file) nor a bundle (.tar)",
                path.display()
            ))
        })?;
        if looks_like_lock(&text) {
            return Ok(Source::Lock(path.to_path_buf()));
        }
        Ok(Source::Yml(conda::envfile::read(path, &text)?))
    }

    /// The environment name the file gives, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Source::Yml(f) => f.name.as_deref(),
            Source::Lock(_) | Source::Bundle(_) => None,
        }
    }
}

/// A lock file (pixi.lock format) starts with its format version and has no `dependencies`.
fn looks_like_lock(text: &str) -> bool {
    let mut version = false;
    let mut packages = false;
    for line in text.lines() {
        if line.starts_with("version:") {
            version = true;
        }
        if line.starts_with("packages:") || line.starts_with("environments:") {
            packages = true;
        }
        if line.starts_with("dependencies:") {
            return false;
        }
    }
    version && packages
}

/// The file's channels, then the command line's; a file without channels uses the
/// configured ones. A `channel::pkg` spec brings its channel along.
fn file_channels(f: &EnvFile, specs: &[String], cli: &[String], ctx: &Ctx<'_>) -> Vec<String> {
    let mut out = if f.channels.is_empty() && cli.is_empty() {
        ctx.conda.channels.clone()
    } else {
        f.channels.clone()
    };
    for c in cli {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    for spec in specs {
        if let Some((channel, _)) = spec.split_once("::")
            && !out.iter().any(|c| c == channel)
        {
            out.push(channel.to_string());
        }
    }
    out
}

/// A solve error about a package the file asks for names the file and the line.
fn name_the_line(e: anyhow::Error, f: &EnvFile) -> anyhow::Error {
    let text = format!("{e:#}");
    for spec in &f.specs {
        if let Ok(name) = conda::specs::spec_package_name(&spec.value) {
            let name = name.as_normalized();
            let mentioned = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
                .any(|w| w == name);
            if mentioned {
                let hint = crate::error::hint_of(&e).map(str::to_string);
                // The solver's line about this package, without its tree drawing.
                let detail = text
                    .lines()
                    .skip(1)
                    .find(|l| l.contains(name))
                    .or_else(|| text.lines().next())
                    .unwrap_or_default()
                    .trim_start_matches(|c: char| !c.is_alphanumeric())
                    .trim_end_matches(['.', ':']);
                let mut err = UserError::failure(format!(
                    "{}, line {}: cannot build `{}`: {detail}",
                    f.path.display(),
                    spec.line,
                    spec.value,
                ));
                if let Some(h) = hint {
                    err = err.with_hint(h);
                }
                return err.into();
            }
        }
    }
    e
}

/// In site mode, the file's Python must be the site Python's minor version: packages and pip
/// wheels were chosen for it.
fn check_site_python(found: &python::SitePython, f: &EnvFile, s: &CreateSettings) -> Result<()> {
    let Some(section) = &f.envmod else {
        return Ok(());
    };
    let wanted = section.python.minor();
    if wanted == found.short_version() {
        return Ok(());
    }
    let how = if s.site_python_flag {
        "--site-python gives"
    } else {
        "the site Python here is"
    };
    Err(UserError::failure(format!(
        "{} was built for Python {wanted}, but {how} {} ({}); nothing was created",
        f.path.display(),
        found.version,
        found.executable.display()
    ))
    .with_hint(format!(
        "use --python {wanted} for a conda Python {wanted}, or --site-python PATH for a site Python {wanted}"
    ))
    .into())
}

/// The modules the file recorded, mapped to this site's names and looked up through the
/// module system. Returns the modules to record and the ones left out.
fn file_modules(
    section: &conda::envfile::EnvmodSection,
    map: &BTreeMap<String, Option<String>>,
    skip_missing: bool,
    f: Option<&EnvFile>,
    env: &Environ,
    printer: &crate::printer::Printer,
) -> Result<(Vec<LoadedModule>, Vec<String>)> {
    let mapped = modules::apply_map(&section.modules, map);
    let as_loaded = |names: &[String]| {
        names
            .iter()
            .map(|n| LoadedModule {
                full_name: n.clone(),
                file: None,
            })
            .collect::<Vec<_>>()
    };
    if mapped.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let mut missing = Vec::new();
    for name in &mapped {
        match modules::is_available(env, name)? {
            None => {
                printer.warn(format!(
                    "no module system here: the environment is built without loading {}; they stay recorded for where a module system exists",
                    mapped.join(" ")
                ));
                return Ok((as_loaded(&mapped), Vec::new()));
            }
            Some(true) => {}
            Some(false) => missing.push(name.clone()),
        }
    }
    if missing.is_empty() {
        return Ok((as_loaded(&mapped), Vec::new()));
    }
    // The original names, as module_map lines are keyed by them.
    let original = |m: &String| {
        section
            .modules
            .iter()
            .find(|o| modules::apply_map(std::slice::from_ref(*o), map).first() == Some(m))
            .cloned()
            .unwrap_or_else(|| m.clone())
    };
    if skip_missing {
        printer.warn(format!(
            "building without modules this site does not have: {}",
            missing.join(" ")
        ));
        let kept: Vec<String> = mapped
            .into_iter()
            .filter(|m| !missing.contains(m))
            .collect();
        return Ok((as_loaded(&kept), missing.iter().map(original).collect()));
    }
    let file = f.map_or_else(String::new, |f| format!("{} ", f.path.display()));
    let lines: Vec<String> = missing
        .iter()
        .map(|m| format!("{}: <module here>", original(m)))
        .collect();
    Err(UserError::failure(format!(
        "modules that {file}was built on do not exist here: {}; nothing was created",
        missing.join(" ")
    ))
    .with_hint(format!(
        "map them to this site's modules in module_map (config) or a --module-map FILE, one line each:\n  {}\n(`null` leaves a module out), or pass --skip-missing-modules",
        lines.join("\n  ")
    ))
    .into())
}

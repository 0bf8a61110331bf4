//! What `create -f` and `install -f` build from: an environment.yml, a lock file or a
//! bundle, and the checks that run against this site before anything is built: the file's
//! modules (mapped with `module_map`, looked up through the module system), its Python,
//! and its channels. Errors name the file and, where there is one, the line.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use anyhow::Result;

use crate::{
    conda::{self, envfile::EnvFile},
    env::ops::Added,
    environ::Environ,
    error::UserError,
    printer::Printer,
    site::{
        modules::{self, LoadedModule},
        python::SitePython,
    },
};

/// What `-f` names, sniffed from its content rather than its extension.
pub(crate) enum Source {
    Yml(Box<EnvFile>),
    Lock(PathBuf),
    Bundle(PathBuf),
}

impl Source {
    /// Read `path` (absolute) enough to know what it is; an environment.yml is parsed whole.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let unreadable = |e: crate::fs::ReadError| -> anyhow::Error {
            UserError::usage(e.to_string())
                .with_hint("give the path of an environment.yml, a lock file or a bundle")
                .into()
        };
        if conda::bundle::looks_like_bundle(path) {
            return Ok(Source::Bundle(path.to_path_buf()));
        }
        let bytes = crate::fs::read_regular(path, crate::fs::DOCUMENT, crate::fs::Links::Follow)
            .map_err(unreadable)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            UserError::usage(format!(
                "{} is neither a text file (environment.yml, lock file) nor a bundle (.tar)",
                path.display()
            ))
        })?;
        if conda::lockfile::looks_like_lock(&text) {
            return Ok(Source::Lock(path.to_path_buf()));
        }
        Ok(Source::Yml(Box::new(conda::envfile::read(path, &text)?)))
    }

    /// The environment name the file gives, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Source::Yml(f) => f.name.as_deref(),
            Source::Lock(_) | Source::Bundle(_) => None,
        }
    }
}

/// The file's channels, then the command line's; a file without channels uses the
/// configured ones. A `channel::pkg` spec brings its channel along.
pub(crate) fn file_channels(
    f: &EnvFile,
    specs: &[String],
    cli: &[String],
    configured: &[String],
) -> Vec<String> {
    let mut out = if f.channels.is_empty() && cli.is_empty() {
        configured.to_vec()
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
pub(crate) fn name_the_line(e: anyhow::Error, f: &EnvFile) -> anyhow::Error {
    let text = format!("{e:#}");
    let words: std::collections::HashSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .collect();
    for spec in &f.specs {
        if let Ok(name) = conda::specs::spec_package_name(&spec.value) {
            let name = name.as_normalized();
            if words.contains(name) {
                // The solver's line about this package, without its tree drawing.
                let detail = text
                    .lines()
                    .skip(1)
                    .find(|l| l.contains(name))
                    .or_else(|| text.lines().next())
                    .unwrap_or_default()
                    .trim_start_matches(|c: char| !c.is_alphanumeric())
                    .trim_end_matches(['.', ':']);
                // The solver's own hint points at specs "above", which this line replaces.
                let err = UserError::failure(format!(
                    "{}, line {}: cannot build `{}`: {detail}",
                    f.path.display(),
                    spec.line,
                    spec.value,
                ))
                .with_hint(
                    "fix that line of the file, or add a channel that has the package with -c",
                );
                return err.into();
            }
        }
    }
    e
}

/// In site mode, the file's Python must be the site Python's minor version: packages and pip
/// wheels were chosen for it.
pub(crate) fn check_site_python(
    found: &SitePython,
    f: &EnvFile,
    site_python_flag: bool,
) -> Result<()> {
    let Some(section) = &f.envmod else {
        return Ok(());
    };
    let wanted = section.python.minor();
    if wanted == found.short_version() {
        return Ok(());
    }
    let how = if site_python_flag {
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
pub(crate) fn file_modules(
    section: &conda::envfile::EnvmodSection,
    map: &BTreeMap<String, Option<String>>,
    skip_missing: bool,
    f: Option<&EnvFile>,
    env: &Environ,
    printer: &Printer,
) -> Result<(Vec<LoadedModule>, Vec<String>)> {
    let mapped = modules::apply_map(&section.modules, map)?;
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
            .find(|o| {
                modules::apply_map(std::slice::from_ref(*o), map)
                    .is_ok_and(|to| to.first() == Some(m))
            })
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

/// A lock built on another site's Python fits this one only if every package's `python`
/// requirement accepts this site's version (a cp311 build does not run on 3.12).
pub(crate) fn check_lock_python(
    records: &[rattler_conda_types::RepoDataRecord],
    found: &SitePython,
    file: &Path,
) -> Result<()> {
    use rattler_conda_types::{MatchSpec, ParseStrictness, Version};
    use std::str::FromStr;
    let Ok(version) = Version::from_str(&found.version) else {
        return Ok(());
    };
    for r in records {
        for dep in &r.package_record.depends {
            let Ok(spec) = MatchSpec::from_str(dep, ParseStrictness::Lenient) else {
                continue;
            };
            if spec
                .name
                .as_exact()
                .is_none_or(|n| n.as_normalized() != "python")
            {
                continue;
            }
            if spec.version.as_ref().is_some_and(|v| !v.matches(&version)) {
                return Err(UserError::failure(format!(
                    "{}: {} needs `{dep}`, but the site Python here is {} ({}); nothing was created",
                    file.display(),
                    r.package_record.name.as_normalized(),
                    found.version,
                    found.executable.display()
                ))
                .with_hint("use --site-python PATH for a site Python that fits, or export the lock again with a conda Python (`envmod create --python X.Y`)")
                .into());
            }
        }
    }
    Ok(())
}

/// Unpack `bundle` for `platform` into a new `.envmod-bundle-XXXXXX` directory in `parent`,
/// which the returned guard removes when dropped, and which an interrupt removes too.
pub(crate) fn unpack_bundle(
    bundle: &Path,
    parent: &Path,
    platform: rattler_conda_types::Subdir,
) -> Result<(
    crate::env::cleanup::CleanupGuard,
    conda::bundle::Unpacked,
    conda::lockfile::ReadLock,
)> {
    let (guard, _) = tempfile::Builder::new()
        .prefix(".envmod-bundle-")
        .disable_cleanup(true)
        .make_in(parent, |p| {
            crate::env::cleanup::CleanupGuard::create_private(p).map(|(guard, _)| guard)
        })
        .map_err(|e| {
            UserError::failure(format!(
                "cannot unpack bundle {} in {}: {e}",
                bundle.display(),
                parent.display()
            ))
            .with_hint("check that you can write to that directory")
        })?
        .into_parts();
    let (unpacked, lock) = conda::bundle::unpack(bundle, guard.path(), platform)?;
    Ok((guard, unpacked, lock))
}

/// What `install -f FILE` adds: the file's specs before the command line's, its pip section
/// (run from the file's directory) and its channels.
pub(crate) fn additions(path: &Path, specs: Vec<String>) -> Result<Added> {
    let Source::Yml(file) = Source::read(path)? else {
        return Err(UserError::usage(
            "install -f reads an environment.yml; a lock file or a bundle makes a new environment",
        )
        .with_hint("envmod create -n NAME -f FILE")
        .into());
    };
    let file_specs: Vec<String> = file.specs.iter().map(|l| l.value.clone()).collect();
    Ok(Added {
        specs: conda::specs::with_added(&file_specs, &specs)?,
        pip: file.pip.clone(),
        pip_cwd: file.dir().to_path_buf(),
        channels: file.channels.clone(),
        ..Added::default()
    })
}

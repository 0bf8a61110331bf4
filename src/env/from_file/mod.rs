//! What `create -f` and `install -f` build from: an environment.yml, a lock file or a
//! bundle, and the checks that run against this site before anything is built: the file's
//! modules (mapped with `module_map`, looked up through the module system), its Python,
//! and its channels. Errors name the file and, where there is one, the line.
//!
//! The checks live beside it: [`python`] for the file's Python, [`provisions`] for what the
//! file's modules provided, [`locked`] for what a lock's packages need of this site.

mod locked;
mod provisions;
mod python;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::{
    conda::{self, envfile::EnvFile, specs::Spec},
    env::plan::Added,
    error::UserError,
};

pub(crate) use locked::check_lock_stand_ins;
pub(crate) use provisions::check_provisions;
pub(crate) use python::{check_lock_python, check_python_pin, check_site_python};

/// What `-f` names, sniffed from its content rather than its extension.
pub(crate) enum Source {
    Yml(Box<EnvFile>),
    Lock(PathBuf),
    Bundle(PathBuf),
}

/// What `-f` reads as standard input, as conda does.
pub(crate) const STDIN: &str = "-";

/// How standard input is named in messages.
const STDIN_NAME: &str = "standard input";

impl Source {
    /// Read what `-f ARG` names: `-` is standard input, anything else a path from `cwd`.
    pub(crate) fn read_arg(arg: &Path, cwd: &Path) -> Result<Self> {
        if arg == Path::new(STDIN) {
            let text = read_stdin()?;
            return Ok(Source::Yml(Box::new(conda::envfile::read_in(
                Path::new(STDIN_NAME),
                cwd,
                &text,
                conda::PLATFORM,
            )?)));
        }
        Self::read(&cwd.join(arg))
    }

    /// Where the file is, or how standard input is named.
    pub(crate) fn shown(&self) -> std::path::Display<'_> {
        match self {
            Source::Yml(f) => f.path.display(),
            Source::Lock(p) | Source::Bundle(p) => p.display(),
        }
    }

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

/// The environment.yml on standard input, read within the limit a file has. A lock or a
/// bundle is refused: its local packages are found beside it, and standard input is
/// beside nothing.
fn read_stdin() -> Result<String> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(UserError::usage(
            "-f - reads the environment file from standard input, which is a terminal",
        )
        .with_hint("pipe the file in (`envmod create -f - < environment.yml`), or give its path")
        .into());
    }
    let limit = crate::fs::DOCUMENT;
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| UserError::usage(format!("cannot read {STDIN_NAME}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(UserError::usage(
            crate::fs::ReadError::TooLarge {
                path: STDIN_NAME.into(),
                limit,
            }
            .to_string(),
        )
        .with_hint("give -f the path of the environment.yml")
        .into());
    }
    let from_a_file = |what: &str| -> anyhow::Error {
        UserError::usage(format!(
            "{STDIN_NAME} holds {what}; envmod reads one only from a file, beside which its local packages are"
        ))
        .with_hint("save it and give its path: envmod create -n NAME -f FILE")
        .into()
    };
    if bytes.get(257..262) == Some(b"ustar") {
        return Err(from_a_file("a bundle"));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        UserError::usage(format!(
            "{STDIN_NAME} is not text, so not an environment.yml"
        ))
        .with_hint("pipe in an environment.yml, or give -f the path of a lock file or a bundle")
    })?;
    if conda::lockfile::looks_like_lock(&text) {
        return Err(from_a_file("a lock file"));
    }
    Ok(text)
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
        if let Ok(parsed) = Spec::parse(&spec.value) {
            let name = parsed.name().as_normalized();
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
pub(crate) fn additions(
    arg: &Path,
    cwd: &Path,
    specs: Vec<String>,
    printer: &crate::printer::Printer,
) -> Result<Added> {
    let Source::Yml(file) = Source::read_arg(arg, cwd)? else {
        return Err(UserError::usage(
            "install -f reads an environment.yml; a lock file or a bundle makes a new environment",
        )
        .with_hint("envmod create -n NAME -f FILE")
        .into());
    };
    for warning in &file.warnings {
        printer.warn(warning);
    }
    let file_specs: Vec<String> = file.specs.iter().map(|l| l.value.clone()).collect();
    Ok(Added {
        specs: conda::specs::with_added(&file_specs, &specs)?,
        pip: file.pip.clone(),
        pip_cwd: file.dir().to_path_buf(),
        channels: file.channels.clone(),
        ..Added::default()
    })
}

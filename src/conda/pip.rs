//! The pip section of an environment: installed by the environment's own pip, inside the
//! staging tree, after the conda packages and before the swap; and read back for `export` as
//! the distributions that pip, not conda, put into the environment.
//!
//! pip runs with the user's own pip configuration (`PIP_INDEX_URL`, `PIP_FIND_LINKS`,
//! `PIP_NO_INDEX`, pip.conf), as it would after `module load`. The scripts it writes start
//! with the staging path; they are rewritten to the final prefix before the swap.

use std::{
    collections::HashSet,
    io::Write,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, Result};

use crate::{error::UserError, site::run::OutputWithin};

/// How many of pip's last output lines an error shows.
const TAIL_LINES: usize = 12;

/// Install `requirements` (lines of a requirements file) into the environment being built in
/// `staging`, which will live at `prefix`. Relative paths in the lines were resolved by the
/// caller; `cwd` is where pip runs (the directory of the file they came from).
pub(crate) fn install(
    staging: &Path,
    prefix: &Path,
    requirements: &[String],
    cwd: &Path,
    printer: &crate::printer::Printer,
) -> Result<()> {
    if requirements.is_empty() {
        return Ok(());
    }
    let python = staging.join("bin/python");
    if !python.exists() {
        return Err(
            UserError::failure("the environment has no bin/python to run pip with")
                .with_hint("add python (and pip) to the dependencies, or build on a site Python")
                .into(),
        );
    }
    let mut list = tempfile::Builder::new()
        .prefix("pip-requirements")
        .suffix(".txt")
        .tempfile_in(staging)
        .context("cannot write the pip requirements")?;
    for line in requirements {
        writeln!(list, "{line}")?;
    }
    list.flush()?;
    printer.info(format!(
        "Installing the pip section: {}",
        requirements.join(" ")
    ));
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--no-input",
            "--disable-pip-version-check",
            // Compiled files would name the staging path in every traceback.
            "--no-compile",
            "--no-warn-script-location",
            "-r",
        ])
        .arg(list.path())
        .current_dir(cwd)
        // Into the environment, whatever pip.conf says about user installs or targets.
        .env("PIP_USER", "0")
        .env_remove("PIP_TARGET")
        .env_remove("PIP_PREFIX")
        .env_remove("PIP_ROOT")
        .env_remove("PYTHONHOME")
        .env("PYTHONNOUSERSITE", "1")
        .output_within(crate::site::run::LONG)
        .with_context(|| format!("failed to run {} -m pip", python.display()))?;
    drop(list);
    if !out.status.success() {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n  ");
        return Err(UserError::failure(format!(
            "pip could not install the pip section; nothing was created. pip said:\n  {tail}"
        ))
        .with_hint(
            "fix the pip lines, or pip's configuration (PIP_INDEX_URL, PIP_FIND_LINKS, pip.conf)",
        )
        .into());
    }
    relocate_scripts(staging, prefix)
}

/// Point the scripts pip wrote in `staging/bin` at `prefix`, where they will run.
fn relocate_scripts(staging: &Path, prefix: &Path) -> Result<()> {
    let from = staging.to_string_lossy().into_owned();
    let to = prefix.to_string_lossy().into_owned();
    let bin = staging.join("bin");
    for entry in
        std::fs::read_dir(&bin).with_context(|| format!("failed to read {}", bin.display()))?
    {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let path = entry.path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if !bytes.starts_with(b"#!") {
            continue;
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        if !text.contains(&from) {
            continue;
        }
        let fixed = text.replace(&from, &to);
        let mode = entry.metadata()?.permissions();
        crate::fs::write_atomic(&path, fixed.as_bytes())?;
        std::fs::set_permissions(&path, mode)?;
    }
    Ok(())
}

/// A distribution pip installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PipDist {
    pub(crate) name: String,
    pub(crate) version: String,
    /// Where it came from, when pip recorded a direct URL or path.
    pub(crate) location: Option<String>,
}

/// Every distribution in `prefix` that no conda package owns: what pip installed.
/// `conda_files` are the paths (relative to the prefix) of every conda package's files.
pub(crate) fn installed(prefix: &Path, conda_files: &HashSet<PathBuf>) -> Result<Vec<PipDist>> {
    let owned_dirs: HashSet<&Path> = conda_files.iter().filter_map(|p| p.parent()).collect();
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for lib in ["lib", "lib64"] {
        let Ok(entries) = std::fs::read_dir(prefix.join(lib)) else {
            continue;
        };
        for py in entries.flatten() {
            let name = py.file_name();
            if !name.to_string_lossy().starts_with("python") {
                continue;
            }
            let site = Path::new(lib).join(&name).join("site-packages");
            // `lib64` is often a link to `lib`.
            let Ok(real) = std::fs::canonicalize(prefix.join(&site)) else {
                continue;
            };
            if !seen.insert(real) {
                continue;
            }
            let Ok(dists) = std::fs::read_dir(prefix.join(&site)) else {
                continue;
            };
            for dist in dists.flatten() {
                let file = dist.file_name();
                if !file.to_string_lossy().ends_with(".dist-info") {
                    continue;
                }
                let rel = site.join(&file);
                if owned_dirs.contains(rel.as_path()) {
                    continue;
                }
                let dir = dist.path();
                let installer = crate::fs::read_text(
                    &dir.join("INSTALLER"),
                    crate::fs::SMALL_FILE,
                    crate::fs::Links::Refuse,
                )
                .unwrap_or_default();
                if installer.trim() == "conda" {
                    continue;
                }
                let Some((name, version)) = metadata(&dir.join("METADATA")) else {
                    continue;
                };
                out.push(PipDist {
                    name,
                    version,
                    location: direct_url(&dir.join("direct_url.json")),
                });
            }
        }
    }
    out.sort_by_key(|d| d.name.to_lowercase());
    Ok(out)
}

fn metadata(path: &Path) -> Option<(String, String)> {
    let text = String::from_utf8_lossy(
        &crate::fs::read_head(path, crate::fs::SMALL_FILE, crate::fs::Links::Refuse).ok()?,
    )
    .into_owned();
    let mut name = None;
    let mut version = None;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_string());
        }
    }
    Some((name?, version?))
}

fn direct_url(path: &Path) -> Option<String> {
    let text = crate::fs::read_text(path, crate::fs::SMALL_FILE, crate::fs::Links::Refuse).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value.get("url")?.as_str().map(str::to_string)
}

/// The relative paths of every file the conda packages of `prefix` installed.
pub(crate) fn conda_files(records: &[rattler_conda_types::PrefixRecord]) -> HashSet<PathBuf> {
    records
        .iter()
        .flat_map(|r| r.files.iter().cloned())
        .collect()
}

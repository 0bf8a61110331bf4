//! The pip section of an environment: installed by the environment's own pip, inside the
//! staging tree, after the conda packages and before the swap; and read back for `export` as
//! the distributions that pip, not conda, put into the environment.
//!
//! pip runs with the user's own pip configuration (`PIP_INDEX_URL`, `PIP_FIND_LINKS`,
//! `PIP_NO_INDEX`, pip.conf), as it would after `module load`. The scripts it writes start
//! with the staging path; they are rewritten to the final prefix before the swap.
//!
//! The pip packages of a lock or a bundle are different: someone else wrote them, and a line
//! for pip to read could be an option (`-e DIR`, `-r FILE`, `--index-url`) or an sdist whose
//! setup.py runs. So a locked pip package is a wheel at a URL or a path with the sha256 it
//! must have; envmod fetches it into the staging tree, checks the hash, and has pip install
//! exactly those files (`--no-index --no-deps --require-hashes`, ignoring pip's
//! configuration), which runs no code from them.

use std::{
    collections::HashSet,
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
};

use anyhow::{Context, Result};
use rattler_digest::{HashingWriter, Sha256, Sha256Hash};
use reqwest_middleware::ClientWithMiddleware;

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
    let out = pip_install(&python)
        .arg("-r")
        .arg(list.path())
        .current_dir(cwd)
        .output_within(crate::site::run::LONG)
        .with_context(|| format!("failed to run {} -m pip", python.display()))?;
    drop(list);
    if !out.status.success() {
        return Err(UserError::failure(format!(
            "pip could not install the pip section; nothing was created. pip said:\n  {}",
            pip_said(&out)
        ))
        .with_hint(
            "fix the pip lines, or pip's configuration (PIP_INDEX_URL, PIP_FIND_LINKS, pip.conf)",
        )
        .into());
    }
    relocate_scripts(staging, prefix)
}

/// `python -m pip install`, into the environment whatever pip.conf says about user installs
/// or targets.
fn pip_install(python: &Path) -> Command {
    let mut cmd = Command::new(python);
    cmd.args([
        "-m",
        "pip",
        "install",
        "--no-input",
        "--disable-pip-version-check",
        // Compiled files would name the staging path in every traceback.
        "--no-compile",
        "--no-warn-script-location",
    ])
    .env("PIP_USER", "0")
    .env_remove("PIP_TARGET")
    .env_remove("PIP_PREFIX")
    .env_remove("PIP_ROOT")
    .env_remove("PYTHONHOME")
    .env("PYTHONNOUSERSITE", "1");
    cmd
}

/// The last lines pip printed.
fn pip_said(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n  ")
}

/// Where a locked wheel is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WheelSource {
    /// An absolute path (a relative one in the lock is resolved against the lock's directory).
    Path(PathBuf),
    /// An `https:` or `http:` URL.
    Url(url::Url),
}

/// A pip package of a lock: a wheel, where it is, and the sha256 it must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockedWheel {
    /// The distribution's name, normalised (PEP 503).
    pub(crate) name: String,
    pub(crate) version: String,
    /// The wheel's file name, which pip reads the name, version and tags from.
    pub(crate) file_name: String,
    pub(crate) source: WheelSource,
    pub(crate) sha256: Sha256Hash,
    /// Where the lock names it, for errors: "lock file X, line N".
    pub(crate) shown: String,
}

/// Install the locked `wheels` into the environment being built in `staging`, which will
/// live at `prefix`. Each wheel is copied or downloaded (with `client`; none when `offline`)
/// into the staging tree and checked against its sha256 before pip sees it, so what pip
/// installs is what the lock names even if the original changes meanwhile.
pub(crate) async fn install_wheels(
    staging: &Path,
    prefix: &Path,
    wheels: &[LockedWheel],
    client: Option<&ClientWithMiddleware>,
    printer: &crate::printer::Printer,
) -> Result<()> {
    if wheels.is_empty() {
        return Ok(());
    }
    let python = staging.join("bin/python");
    if !python.exists() {
        return Err(UserError::failure(
            "the lock has pip packages, but the environment has no bin/python to run pip with",
        )
        .with_hint("lock python and pip with the packages, or build on a site Python with pip")
        .into());
    }
    let dir = tempfile::Builder::new()
        .prefix(".envmod-wheels")
        .tempdir_in(staging)
        .context("cannot make a directory for the pip packages")?;
    let mut requirements = String::new();
    let mut copies = Vec::new();
    for (i, wheel) in wheels.iter().enumerate() {
        let slot = dir.path().join(i.to_string());
        std::fs::create_dir(&slot)?;
        let copy = slot.join(&wheel.file_name);
        fetch_wheel(wheel, &copy, client).await?;
        let url = url::Url::from_file_path(&copy)
            .map_err(|()| anyhow::anyhow!("cannot make a file URL for {}", copy.display()))?;
        requirements.push_str(&format!(
            "{} @ {url} --hash=sha256:{}\n",
            wheel.name,
            hex(&wheel.sha256)
        ));
        copies.push((url, wheel));
    }
    let list = dir.path().join("requirements.txt");
    std::fs::write(&list, &requirements).context("cannot write the pip requirements")?;
    let names: Vec<String> = wheels
        .iter()
        .map(|w| format!("{}=={}", w.name, w.version))
        .collect();
    printer.info(format!(
        "Installing the locked pip packages: {}",
        names.join(" ")
    ));
    let out = pip_install(&python)
        // Only these files: no index, no links, no configuration of the user's to add any.
        .args([
            "--isolated",
            "--no-index",
            "--no-deps",
            "--require-hashes",
            "-r",
        ])
        .arg(&list)
        .env("PIP_CONFIG_FILE", "/dev/null")
        .current_dir(dir.path())
        .output_within(crate::site::run::LONG)
        .with_context(|| format!("failed to run {} -m pip", python.display()))?;
    if !out.status.success() {
        return Err(UserError::failure(format!(
            "pip could not install the locked pip packages; nothing was created. pip said:\n  {}",
            pip_said(&out)
        ))
        .with_hint("the wheels matched their sha256: check that the environment has pip and that they are built for this Python and platform, or lock the environment again here")
        .into());
    }
    record_origins(staging, &copies)?;
    drop(dir);
    relocate_scripts(staging, prefix)
}

/// Point each installed distribution's `direct_url.json` at where the lock said its wheel
/// is, with its sha256, instead of at the copy in the staging tree that pip installed: the
/// environment then exports to a lock that names the same wheels.
fn record_origins(staging: &Path, copies: &[(url::Url, &LockedWheel)]) -> Result<()> {
    let mut sites = Vec::new();
    for lib in ["lib", "lib64"] {
        if let Ok(entries) = std::fs::read_dir(staging.join(lib)) {
            sites.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("python"))
                    .map(|e| e.path().join("site-packages")),
            );
        }
    }
    for site in sites {
        let Ok(entries) = std::fs::read_dir(&site) else {
            continue;
        };
        for dist in entries.flatten() {
            let dir = dist.path();
            let Some(dir_name) = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".dist-info"))
            else {
                continue;
            };
            let path = dir.join("direct_url.json");
            if !path
                .symlink_metadata()
                .is_ok_and(|m| m.is_file() && m.len() < 1 << 20)
            {
                continue;
            }
            let (Some(url), _) = direct_url(&path) else {
                continue;
            };
            let Some((_, wheel)) = copies.iter().find(|(copy, _)| copy.as_str() == url) else {
                continue;
            };
            let origin = match &wheel.source {
                WheelSource::Path(p) => url::Url::from_file_path(p)
                    .map_err(|()| anyhow::anyhow!("cannot make a file URL for {}", p.display()))?,
                WheelSource::Url(u) => u.clone(),
            };
            let digest = hex(&wheel.sha256);
            let json = serde_json::json!({
                "url": origin.as_str(),
                "archive_info": {"hash": format!("sha256={digest}"), "hashes": {"sha256": digest}},
            })
            .to_string();
            crate::fs::write_atomic(&path, json.as_bytes())?;
            update_record(&dir, &dir_name, "direct_url.json", json.as_bytes())?;
        }
    }
    Ok(())
}

/// The RECORD line of `dist_info/file` made to match its new `bytes`.
fn update_record(dir: &Path, dist_info: &str, file: &str, bytes: &[u8]) -> Result<()> {
    use base64::Engine;
    let record = dir.join("RECORD");
    let Ok(text) = std::fs::read_to_string(&record) else {
        return Ok(());
    };
    let name = format!("{dist_info}/{file},");
    let digest = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(rattler_digest::compute_bytes_digest::<Sha256>(bytes));
    let updated: String = text
        .lines()
        .map(|l| {
            if l.starts_with(&name) {
                format!("{name}sha256={digest},{}\n", bytes.len())
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    crate::fs::write_atomic(&record, updated.as_bytes())
}

/// The most envmod copies or downloads of one locked wheel. A lock records no size for a
/// pip package, so this is a ceiling well above the largest wheels on PyPI (a GPU build of
/// a deep-learning framework is about 2.5 GB), and it keeps a download without end from
/// filling the disk.
const WHEEL_LIMIT: u64 = 4 << 30;

/// How long one locked wheel may take to download: the largest, over a slow link, with
/// room to spare; a server that trickles bytes for ever is stopped.
const WHEEL_TIME: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The limits a download of a locked wheel gets (shorter in a test build, when asked).
fn wheel_limits() -> (u64, std::time::Duration) {
    let bytes = crate::failpoint::limit("WHEEL_BYTES").unwrap_or(WHEEL_LIMIT);
    let time = crate::failpoint::timeout_ms("WHEEL_DOWNLOAD")
        .map_or(WHEEL_TIME, std::time::Duration::from_millis);
    (bytes, time)
}

/// `n` bytes in the largest binary unit that keeps it whole.
fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n => format!("{n} bytes"),
    }
}

fn duration(d: std::time::Duration) -> String {
    match d.as_secs() {
        s if s >= 60 && s % 60 == 0 => format!("{} minutes", s / 60),
        1 => "1 second".to_string(),
        s => format!("{s} seconds"),
    }
}

/// Copy or download `wheel` to `to`, refusing it unless it has the locked sha256, and
/// refusing it as soon as it is larger than a wheel can be or takes too long to arrive.
async fn fetch_wheel(
    wheel: &LockedWheel,
    to: &Path,
    client: Option<&ClientWithMiddleware>,
) -> Result<()> {
    let (limit, time) = wheel_limits();
    let from = match &wheel.source {
        WheelSource::Path(p) => p.display().to_string(),
        WheelSource::Url(u) => u.to_string(),
    };
    let too_large = || -> anyhow::Error {
        UserError::failure(format!(
            "{}: the pip package {} {} at {from} is larger than {}, the most envmod fetches of a wheel",
            wheel.shown, wheel.name, wheel.version, bytes(limit)
        ))
        .with_hint("nothing was created; check that the location names the wheel the lock means, or download the wheel and lock its path")
        .into()
    };
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("cannot write {}", to.display()))?;
    let mut out = HashingWriter::<_, Sha256>::new(out);
    let unreachable = |reason: String| -> anyhow::Error {
        UserError::failure(format!(
            "{}: cannot get the pip package {} {}: {reason}",
            wheel.shown, wheel.name, wheel.version
        ))
        .with_hint("check that the wheel is still there, or lock the environment again")
        .into()
    };
    match &wheel.source {
        WheelSource::Path(path) => {
            // Non-blocking, so a FIFO planted where the wheel should be cannot hang envmod.
            let file = crate::fs::open_regular(path, crate::fs::Links::Follow)
                .map_err(|e| unreachable(e.to_string()))?;
            if file.metadata().map_or(0, |m| m.len()) > limit {
                return Err(too_large());
            }
            let copied = std::io::copy(&mut file.take(limit + 1), &mut out)
                .map_err(|e| unreachable(format!("{}: {e}", path.display())))?;
            if copied > limit {
                return Err(too_large());
            }
        }
        WheelSource::Url(url) => {
            let Some(client) = client else {
                return Err(UserError::failure(format!(
                    "{}: the pip package {} {} is at {url}, and envmod is offline",
                    wheel.shown, wheel.name, wheel.version
                ))
                .with_hint(
                    "run without --offline, or build from a bundle, which carries its pip packages",
                )
                .into());
            };
            let download = async {
                let mut response = client
                    .get(url.clone())
                    .send()
                    .await
                    .map_err(|e| unreachable(format!("{e:#}")))?
                    .error_for_status()
                    .map_err(|e| unreachable(e.without_url().to_string()))?;
                if response.content_length().is_some_and(|n| n > limit) {
                    return Err(too_large());
                }
                let mut got = 0u64;
                while let Some(chunk) = response
                    .chunk()
                    .await
                    .map_err(|e| unreachable(e.without_url().to_string()))?
                {
                    got += chunk.len() as u64;
                    if got > limit {
                        return Err(too_large());
                    }
                    out.write_all(&chunk)
                        .with_context(|| format!("cannot write {}", to.display()))?;
                }
                Ok(())
            };
            tokio::time::timeout(time, download).await.map_err(|_| -> anyhow::Error {
                UserError::failure(format!(
                    "{}: the pip package {} {} at {url} did not arrive within {}, the most envmod waits for a wheel",
                    wheel.shown, wheel.name, wheel.version, duration(time)
                ))
                .with_hint("nothing was created; check the network and that the server serves the wheel, or download it and lock its path")
                .into()
            })??;
        }
    }
    let (file, actual) = out.finalize();
    file.sync_all().ok();
    if actual != wheel.sha256 {
        return Err(UserError::failure(format!(
            "{}: {from}: its sha256 differs from the one the lock gives (expected {}, got {}); the file may have been tampered with",
            wheel.shown,
            hex(&wheel.sha256),
            hex(&actual)
        ))
        .with_hint("nothing was created; get the wheel again from whoever wrote the lock, or lock the environment again")
        .into());
    }
    Ok(())
}

pub(crate) fn hex(hash: &Sha256Hash) -> String {
    hash.iter().map(|b| format!("{b:02x}")).collect()
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
    /// The sha256 of the archive at `location`, when pip recorded it.
    pub(crate) sha256: Option<Sha256Hash>,
    /// Its `.dist-info` directory, relative to the prefix.
    pub(crate) dist_info: PathBuf,
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
                let (location, sha256) = direct_url(&dir.join("direct_url.json"));
                out.push(PipDist {
                    name,
                    version,
                    location,
                    sha256,
                    dist_info: rel,
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

/// The URL pip recorded a distribution came from, and the archive's sha256 when it recorded
/// one (`archive_info.hashes`, or the older `archive_info.hash`).
fn direct_url(path: &Path) -> (Option<String>, Option<Sha256Hash>) {
    let Some(value) = crate::fs::read_text(path, crate::fs::SMALL_FILE, crate::fs::Links::Refuse)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    else {
        return (None, None);
    };
    let url = value
        .get("url")
        .and_then(|u| u.as_str())
        .map(str::to_string);
    let archive = value.get("archive_info");
    let hex = archive
        .and_then(|a| a.pointer("/hashes/sha256"))
        .and_then(|h| h.as_str())
        .or_else(|| {
            archive
                .and_then(|a| a.get("hash"))
                .and_then(|h| h.as_str())
                .and_then(|h| h.strip_prefix("sha256="))
        });
    let sha256 = hex.and_then(rattler_digest::parse_digest_from_hex::<Sha256>);
    (url, sha256)
}

/// The relative paths of every file the conda packages of `prefix` installed.
pub(crate) fn conda_files(records: &[rattler_conda_types::PrefixRecord]) -> HashSet<PathBuf> {
    records
        .iter()
        .flat_map(|r| r.files.iter().cloned())
        .collect()
}

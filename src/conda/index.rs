//! `repodata.json` for a directory of packages, so an air-gapped site can serve a channel
//! from a shared filesystem.
//!
//! rattler_index stops at the first archive it cannot read (and panics on a damaged
//! `.conda`), so one bad copy would keep a whole channel from being served. Every archive is
//! read here first; when some are damaged, the index is built in a hidden directory beside the
//! channel that holds hard links to the good archives only, and its `repodata.json` files are
//! moved into the channel. The user's files are never moved or removed.

use std::{
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::{Context, Result};
use rattler_conda_types::{
    Subdir,
    package::{CondaArchiveType, DistArchiveIdentifier, DistArchiveType},
};

use crate::error::UserError;

/// An archive left out of the index, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) path: PathBuf,
    pub(crate) reason: String,
}

/// Attestation sidecars that travel with their package (`<package>.sigs`).
const SIDECAR_SUFFIX: &str = ".sigs";

/// Index `dir` and return the archives that were left out because they cannot be read.
pub(crate) async fn index_dir(dir: &Path) -> Result<Vec<Skipped>> {
    if !dir.is_dir() {
        return Err(
            UserError::failure(format!("{} is not a directory", dir.display()))
                .with_hint("give the channel directory, the one that holds noarch/ and linux-64/")
                .into(),
        );
    }
    // The index is for the channel's readers, whatever the umask of whoever runs it.
    let _umask = super::dirmodes::UmaskFor::dir(dir);
    // Every channel needs noarch/, even when all its packages are platform-specific.
    let noarch = dir.join("noarch");
    std::fs::create_dir_all(&noarch).map_err(|e| {
        UserError::failure(format!("cannot create {}: {e}", noarch.display()))
            .with_hint("check that you can write there")
    })?;
    let subdirs = subdirs(dir)?;
    let archives: Vec<PathBuf> = subdirs
        .iter()
        .map(|s| archives_in(&dir.join(s)))
        .collect::<Result<Vec<_>>>()?
        .concat();
    let skipped = tokio::task::spawn_blocking(move || check_all(&archives))
        .await
        .context("checking the package archives stopped unexpectedly")?;
    if skipped.is_empty() {
        run_index(dir, dir).await?;
    } else {
        index_without(dir, &subdirs, &skipped).await?;
    }
    Ok(skipped)
}

async fn run_index(shown: &Path, root: &Path) -> Result<()> {
    rattler_index::index_fs(rattler_index::IndexFsConfig {
        channel: root.to_path_buf(),
        target_platform: None,
        repodata_patch: None,
        write_zst: false,
        write_shards: false,
        repodata_revisions: vec![],
        package_revision_assignment: Default::default(),
        force: true,
        max_parallel: std::thread::available_parallelism().map_or(2, |n| n.get()),
        multi_progress: None,
    })
    .await
    .map_err(|e| UserError::failure(format!("failed to index {}: {e:#}", shown.display())))?;
    Ok(())
}

/// The directories of `dir` that rattler_index treats as subdirs.
fn subdirs(dir: &Path) -> Result<Vec<String>> {
    let paths = entries(dir, |path, name| {
        path.is_dir() && Subdir::from_str(name).is_ok()
    })?;
    let mut out: Vec<String> = paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    out.sort();
    Ok(out)
}

/// The files of a subdir that rattler_index would read as packages.
fn archives_in(subdir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = entries(subdir, |path, name| {
        path.is_file() && DistArchiveIdentifier::try_from_filename(name).is_some()
    })?;
    out.sort();
    Ok(out)
}

/// The entries of `dir` that `keep` accepts, given their path and file name.
fn entries(dir: &Path, keep: impl Fn(&Path, &str) -> bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if keep(&entry.path(), &name) {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Read every archive's `info/index.json` the way rattler_index will, a few at a time.
fn check_all(archives: &[PathBuf]) -> Vec<Skipped> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let next = std::sync::atomic::AtomicUsize::new(0);
    let skipped = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..workers.min(archives.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(path) = archives.get(i) else { break };
                    if let Err(reason) = check_archive(path)
                        && let Ok(mut s) = skipped.lock()
                    {
                        s.push(Skipped {
                            path: path.clone(),
                            reason,
                        });
                    }
                }
            });
        }
    });
    let mut skipped = skipped.into_inner().unwrap_or_default();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    skipped
}

/// Whether rattler_index can read the package record of `path`; why not, on one line.
fn check_archive(path: &Path) -> Result<(), String> {
    let one_line = |e: &dyn std::fmt::Display| e.to_string().replace('\n', " ");
    match DistArchiveType::try_from(path) {
        Some(DistArchiveType::Conda(CondaArchiveType::Conda)) => {
            // rattler_index opens the zip with `expect`; an unreadable one must never get there.
            let file = std::fs::File::open(path).map_err(|e| one_line(&e))?;
            rattler_package_streaming::seek::stream_conda_info(file)
                .map_err(|e| format!("not a readable .conda archive: {}", one_line(&e)))?;
        }
        Some(DistArchiveType::Conda(CondaArchiveType::TarBz2)) => {}
        Some(DistArchiveType::Wheel(_)) | None => {
            return Err("not a conda package (.conda or .tar.bz2)".to_string());
        }
    }
    rattler_index::package_record_from_archive(path)
        .map(|_| ())
        .map_err(|e| format!("cannot read info/index.json: {}", one_line(&e)))
}

/// Index only the good archives: link them into a hidden copy of the channel's layout,
/// index that, and move the resulting repodata into the channel.
async fn index_without(dir: &Path, subdirs: &[String], skipped: &[Skipped]) -> Result<()> {
    // Hidden, and not a subdir name, so neither rattler_index nor envmod reads it as one.
    let shadow = tempfile::Builder::new()
        .prefix(".envmod-index-")
        .tempdir_in(dir)
        .map_err(|e| {
            UserError::failure(format!("cannot write into {}: {e}", dir.display()))
                .with_hint("check that you can write there")
        })?;
    let bad: Vec<&Path> = skipped.iter().map(|s| s.path.as_path()).collect();
    for subdir in subdirs {
        let from = dir.join(subdir);
        let to = shadow.path().join(subdir);
        std::fs::create_dir_all(&to)
            .with_context(|| format!("failed to create {}", to.display()))?;
        for entry in std::fs::read_dir(&from)
            .with_context(|| format!("failed to read {}", from.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let package = name.strip_suffix(SIDECAR_SUFFIX).unwrap_or(&name);
            let archive = from.join(package);
            // The old repodata.json keeps the first-indexed timestamps of packages.
            let wanted = path.is_file()
                && DistArchiveIdentifier::try_from_filename(package).is_some()
                && !bad.contains(&archive.as_path());
            if name == "repodata.json" {
                // A copy: the index must never write through a link into the user's file.
                std::fs::copy(&path, to.join("repodata.json"))
                    .with_context(|| format!("failed to copy {}", path.display()))?;
            } else if wanted {
                link_or_copy(&path, &to.join(name.as_ref()))?;
            }
        }
    }
    run_index(dir, shadow.path()).await?;
    for subdir in subdirs {
        let built = shadow.path().join(subdir).join("repodata.json");
        let target = dir.join(subdir).join("repodata.json");
        std::fs::rename(&built, &target)
            .with_context(|| format!("failed to write {}", target.display()))?;
    }
    Ok(())
}

/// A hard link costs nothing; a copy is the fallback where links are not allowed (archives
/// owned by someone else under `fs.protected_hardlinks`).
fn link_or_copy(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)
        .map(|_| ())
        .with_context(|| format!("failed to copy {} to {}", from.display(), to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreadable_archives_are_named_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let conda = dir.path().join("a-1.0-0.conda");
        let bz2 = dir.path().join("b-1.0-0.tar.bz2");
        std::fs::write(&conda, b"PK\x03\x04 not really a zip").unwrap();
        std::fs::write(&bz2, b"BZh9 not really bzip2").unwrap();
        let skipped = check_all(&[conda.clone(), bz2.clone()]);
        let paths: Vec<&Path> = skipped.iter().map(|s| s.path.as_path()).collect();
        assert_eq!(paths, vec![conda.as_path(), bz2.as_path()]);
        assert!(
            skipped
                .iter()
                .all(|s| !s.reason.is_empty() && !s.reason.contains('\n'))
        );
    }
}

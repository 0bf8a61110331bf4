//! `repodata.json` for a directory of packages, so an air-gapped site can serve a channel
//! from a shared filesystem.
//!
//! rattler_index stops at the first archive it cannot read (and panics on a damaged
//! `.conda`), so one bad copy would keep a whole channel from being served. Every archive is
//! read here first; when some are damaged, the index is built in a hidden directory beside the
//! channel that holds hard links to the good archives only, and its `repodata.json` files are
//! moved into the channel. The user's files are never moved or removed.
//!
//! rattler_index also panics on a symbolic link to a directory (opendal's "mode DIR not
//! match"), and passes over a FIFO or a dangling link named as a package without a word. So
//! the channel is surveyed first: a linked subdir is refused, what is named as a package but
//! is no file is reported like a damaged archive, and other linked directories are kept out
//! of rattler_index's sight by the same hidden copy.

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
    let layout = survey(dir)?;
    let archives = layout.archives;
    let damaged = tokio::task::spawn_blocking(move || check_all(&archives))
        .await
        .context("checking the package archives stopped unexpectedly")?;
    let mut skipped = layout.unusable;
    skipped.extend(damaged);
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if skipped.is_empty() && !layout.linked_dirs {
        run_index(dir, dir).await?;
    } else {
        index_without(dir, &layout.subdirs, &skipped).await?;
    }
    Ok(skipped)
}

/// What a channel directory holds, as the index sees it.
struct Layout {
    /// The subdirs (`noarch`, `linux-64`, ...), each a real directory.
    subdirs: Vec<String>,
    /// The regular files (or links to them) named as package archives.
    archives: Vec<PathBuf>,
    /// What is named as a package archive but is no file: a FIFO, a directory, a link to
    /// nothing.
    unusable: Vec<Skipped>,
    /// Whether a link to a directory sits in the channel or a subdir: rattler_index panics
    /// on one (opendal's "mode DIR not match"), so the index is then built from a copy of
    /// the layout that leaves it out.
    linked_dirs: bool,
}

/// Look at every entry of `dir` and its subdirs without reading a package. A subdir that is
/// a symbolic link is refused: following it would write repodata.json into the directory it
/// points to, which belongs to some other channel.
fn survey(dir: &Path) -> Result<Layout> {
    let is_linked_dir = |path: &Path, meta: &std::fs::Metadata| meta.is_symlink() && path.is_dir();
    let mut layout = Layout {
        subdirs: Vec::new(),
        archives: Vec::new(),
        unusable: Vec::new(),
        linked_dirs: false,
    };
    for (path, name, meta) in entries(dir)? {
        if Subdir::from_str(&name).is_err() {
            layout.linked_dirs |= is_linked_dir(&path, &meta);
            continue;
        }
        if meta.is_symlink() {
            let target = std::fs::canonicalize(&path)
                .unwrap_or_else(|_| dir.join(std::fs::read_link(&path).unwrap_or_default()));
            let shown = crate::escape::sh_quote(&path.to_string_lossy());
            return Err(UserError::failure(format!(
                "{} is a symbolic link to {}; envmod index does not follow a linked subdir, since it writes repodata.json into it",
                path.display(),
                target.display()
            ))
            .with_hint(format!(
                "replace the link with a copy of that directory (`rm {shown} && cp -a {} {shown}`), or index the channel that holds it",
                crate::escape::sh_quote(&target.to_string_lossy())
            ))
            .into());
        }
        if !meta.is_dir() {
            continue;
        }
        layout.subdirs.push(name.clone());
        for (path, name, meta) in entries(&path)? {
            if name == "repodata.json" && !meta.is_file() {
                // The index reads the old one (for its timestamps) and replaces it.
                return Err(UserError::failure(format!(
                    "{} is {}, not a regular file; envmod index would read it and replace it",
                    path.display(),
                    if meta.is_symlink() {
                        "a symbolic link"
                    } else {
                        kind(&meta.file_type())
                    }
                ))
                .with_hint(format!(
                    "remove it (`rm {}`); the index writes it again",
                    crate::escape::sh_quote(&path.to_string_lossy())
                ))
                .into());
            }
            if DistArchiveIdentifier::try_from_filename(&name).is_none() {
                layout.linked_dirs |= is_linked_dir(&path, &meta);
                continue;
            }
            match path.metadata() {
                Ok(m) if m.is_file() => layout.archives.push(path),
                followed => {
                    layout.linked_dirs |= is_linked_dir(&path, &meta);
                    let reason = match (meta.is_symlink(), followed) {
                        (true, Err(_)) => format!(
                            "a symbolic link to {}, which does not exist",
                            std::fs::read_link(&path).unwrap_or_default().display()
                        ),
                        (true, Ok(m)) => format!(
                            "a symbolic link to {}, not a package archive",
                            kind(&m.file_type())
                        ),
                        (false, _) => format!("{}, not a package archive", kind(&meta.file_type())),
                    };
                    layout.unusable.push(Skipped { path, reason });
                }
            }
        }
    }
    layout.subdirs.sort();
    layout.archives.sort();
    Ok(layout)
}

fn kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    }
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

/// The entries of `dir`: path, name and what `lstat` says.
fn entries(dir: &Path) -> Result<Vec<(PathBuf, String, std::fs::Metadata)>> {
    let mut out = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to read {}", dir.display()))?
    {
        let entry = entry.with_context(|| format!("failed to read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = path.symlink_metadata() else {
            continue;
        };
        out.push((path, name, meta));
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
            let file = crate::fs::open_regular(path, crate::fs::Links::Follow)
                .map_err(|e| one_line(&e))?;
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
    // A hard link to a symbolic link would be the link itself, and a relative one would
    // point elsewhere from the copy: link what it points to.
    let from = &std::fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
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

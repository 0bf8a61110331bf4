//! Locks and atomic writes. Every change to an environment happens under a per-name lock,
//! is prepared beside its final place, and appears there by `rename`, so a crash or a
//! Ctrl-C at any moment leaves either the old state or the new one.

use std::{
    fs::File,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::{error::UserError, names::EnvName};

/// Held for as long as a command works on one environment. The kernel drops the lock when
/// the process dies, so a killed envmod never blocks the next one.
#[derive(Debug)]
pub(crate) struct EnvLock {
    _file: File,
}

impl EnvLock {
    /// Take the lock for `prefix`, failing at once if another envmod holds it.
    pub(crate) fn acquire(prefix: &Path, name: &EnvName) -> Result<Self> {
        let parent = prefix
            .parent()
            .context("environment prefix has no parent directory")?;
        std::fs::create_dir_all(parent).map_err(|e| {
            UserError::failure(format!("cannot create {}: {e}", parent.display())).with_hint(
                "choose a writable location with --prefix, or set envs_dir in the config",
            )
        })?;
        // The lock file is never removed: deleting it would let two processes lock two
        // different inodes under the same name.
        let path = lock_path(prefix, name);
        let file = crate::fs::open_lock_file(&path)?;
        lock_within(&file, File::try_lock, &path, name)?;
        Ok(Self { _file: file })
    }
}

/// A shared lock, for commands that only read an environment (export, shell-hook): readers
/// share it with each other, and a change excludes them, so a reader sees the environment
/// before a change or after it, never in between. It needs no write permission: the lock
/// file is opened read-only and never created, and where there is none (an environment
/// envmod never changed since it lost it) the reader goes ahead without one.
#[derive(Debug)]
pub(crate) struct ReadLock {
    _file: Option<File>,
}

impl ReadLock {
    pub(crate) fn acquire(prefix: &Path, name: &EnvName) -> Result<Self> {
        let path = lock_path(prefix, name);
        let Some(file) = crate::fs::open_lock_file_to_read(&path)? else {
            return Ok(Self { _file: None });
        };
        lock_within(&file, File::try_lock_shared, &path, name)?;
        Ok(Self { _file: Some(file) })
    }
}

/// How long a command waits for the lock before it gives up: long enough for a reader
/// (a student's `shell-hook` at login) to finish, so it never makes a change fail, and
/// short enough that nobody waits on a change that takes minutes.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

fn lock_within(
    file: &File,
    try_lock: fn(&File) -> Result<(), std::fs::TryLockError>,
    path: &Path,
    name: &EnvName,
) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        match try_lock(file) {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(UserError::failure(format!(
                    "environment '{name}' is being changed by another envmod process"
                ))
                .with_hint("wait for it to finish, then try again")
                .into());
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("failed to lock {}", path.display()));
            }
        }
    }
}

/// The lock file of the environment at `prefix`.
pub(crate) fn lock_path(prefix: &Path, name: &EnvName) -> PathBuf {
    sibling(prefix, &format!(".{name}.envmod-lock"))
}

/// Directories envmod prepares next to an environment before moving them into place.
/// Their names start with `.NAME.envmod-` so they are recognisably envmod's own.
pub(crate) fn staging_dir(prefix: &Path, name: &EnvName) -> PathBuf {
    sibling(prefix, &format!(".{name}.envmod-staging"))
}

pub(crate) fn trash_dir(prefix: &Path, name: &EnvName) -> PathBuf {
    sibling(prefix, &format!(".{name}.envmod-trash"))
}

fn sibling(prefix: &Path, file_name: &str) -> PathBuf {
    prefix.parent().unwrap_or(Path::new("/")).join(file_name)
}

/// Remove what an earlier, interrupted envmod left next to `prefix`. Only called with the
/// lock held, and only on envmod's own staging and trash names. A leftover that cannot be
/// removed (a group member made a directory in it that the group cannot write) stops the
/// command with the name of whoever can free it.
pub(crate) fn clear_leftovers(prefix: &Path, name: &EnvName) -> Result<()> {
    // A two-rename swap interrupted between its renames: the old tree is parked aside and
    // nothing is at the prefix. Put the old tree back; otherwise the aside copy is stale.
    let aside = crate::env::swap::swap_aside(prefix);
    if aside.symlink_metadata().is_ok() {
        if prefix.symlink_metadata().is_err() {
            std::fs::rename(&aside, prefix)
                .with_context(|| format!("failed to restore {}", prefix.display()))?;
        } else {
            remove_leftover(&aside, prefix)?;
        }
    }
    let (staging, trash) = (staging_dir(prefix, name), trash_dir(prefix, name));
    let removing = crate::env::cleanup::removing_path;
    for dir in [removing(&staging), removing(&trash), staging, trash] {
        if dir.symlink_metadata().is_ok() {
            remove_leftover(&dir, prefix)?;
        }
    }
    Ok(())
}

fn remove_leftover(dir: &Path, prefix: &Path) -> Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if let Some(who) = crate::fs::others_may_rename_in(parent)
        && !is_envmod_leftover(dir)
    {
        return Err(UserError::failure(format!(
            "{} has the name of a directory envmod leaves when interrupted, but holds no environment envmod was building; {who} can rename directories in {} to that name",
            dir.display(),
            parent.display()
        ))
        .with_hint("move it back where it belongs (or anywhere else), then run the command again; envmod removed nothing")
        .into());
    }
    crate::fs::tree::remove_tree(dir).map_err(|e| {
        let (problem, fix) = crate::fs::blocked::explain(&e);
        UserError::failure(format!(
            "cannot remove {}, which an interrupted envmod left beside {}: {problem}",
            dir.display(),
            prefix.display()
        ))
        .with_hint(format!("{fix}; then run the command again"))
        .into()
    })
}

/// Whether `dir` holds what envmod leaves when interrupted: an environment's tree (with its
/// `.envmod`), or a staging directory (nothing but the tree it was filling). In a directory
/// others may rename in, a directory of this user's renamed to a leftover's name holds
/// neither, and is not envmod's to remove.
fn is_envmod_leftover(dir: &Path) -> bool {
    let is_dir = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
    if is_dir(&dir.join(crate::manifest::MANIFEST_DIR)) {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries
        .flatten()
        .all(|e| e.file_name() == crate::env::swap::TREE && e.file_type().is_ok_and(|t| t.is_dir()))
}

/// A directory that an interrupted envmod left beside an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Leftover {
    pub(crate) path: PathBuf,
    /// The name of the environment it belongs to.
    pub(crate) env: String,
}

/// envmod's own leftovers in `dir`: staging, trash and swap directories, and those being
/// removed (`.NAME.envmod-staging`, `.NAME.envmod-trash.envmod-removing`, …).
pub(crate) fn leftovers_in(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<Leftover> = entries
        .flatten()
        .filter_map(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            let file = file.strip_suffix(".envmod-removing").unwrap_or(&file);
            let rest = file.strip_prefix('.')?;
            [".envmod-staging", ".envmod-trash", ".envmod-swap"]
                .iter()
                .find_map(|suffix| rest.strip_suffix(suffix))
                .filter(|env| !env.is_empty())
                .map(|env| Leftover {
                    path: e.path(),
                    env: env.to_string(),
                })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_share_the_lock_and_never_create_it() {
        let root = tempfile::tempdir().unwrap();
        let prefix = root.path().join("proj");
        let name: EnvName = "proj".parse().unwrap();
        let _none = ReadLock::acquire(&prefix, &name).unwrap();
        assert!(lock_path(&prefix, &name).symlink_metadata().is_err());
        drop(EnvLock::acquire(&prefix, &name).unwrap());
        let first = ReadLock::acquire(&prefix, &name).unwrap();
        let _second = ReadLock::acquire(&prefix, &name).unwrap();
        assert!(first._file.is_some());
    }

    #[test]
    fn leftovers_of_an_interrupted_run_are_cleared_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let prefix = root.path().join("proj");
        let name: EnvName = "proj".parse().unwrap();
        let staging = staging_dir(&prefix, &name);
        let leftovers = [
            staging.clone(),
            trash_dir(&prefix, &name),
            crate::env::cleanup::removing_path(&staging),
        ];
        for dir in &leftovers {
            std::fs::create_dir_all(dir.join("lib/python3.11")).unwrap();
        }
        std::fs::create_dir_all(prefix.join("bin")).unwrap();
        std::fs::create_dir_all(root.path().join("other.envmod-removing")).unwrap();

        clear_leftovers(&prefix, &name).unwrap();
        for dir in &leftovers {
            assert!(!dir.exists(), "{} was left", dir.display());
        }
        assert!(prefix.join("bin").is_dir(), "the env itself was touched");
        assert!(root.path().join("other.envmod-removing").is_dir());
    }

    #[test]
    fn leftovers_are_found_by_their_names() {
        let root = tempfile::tempdir().unwrap();
        for dir in [
            ".proj.envmod-staging",
            ".proj.envmod-trash.envmod-removing",
            ".a.b.envmod-swap",
            "proj",
            ".envmod-staging",
            ".proj.envmod-lock",
        ] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        let found: Vec<(String, String)> = leftovers_in(root.path())
            .into_iter()
            .map(|l| {
                let file = l.path.file_name().unwrap().to_string_lossy().into_owned();
                (file, l.env)
            })
            .collect();
        assert_eq!(
            found,
            vec![
                (".a.b.envmod-swap".into(), "a.b".into()),
                (".proj.envmod-staging".into(), "proj".into()),
                (".proj.envmod-trash.envmod-removing".into(), "proj".into()),
            ]
        );
    }
}

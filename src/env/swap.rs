//! Changing an environment without ever showing a half-changed one: the change is made on a
//! hard-linked clone beside the prefix, and the clone is swapped in with one atomic
//! `renameat2(RENAME_EXCHANGE)`. Running jobs keep their open files; new ones see either the
//! old tree or the new one.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path};

use anyhow::{Context, Result};

use crate::{error::UserError, fs::tree};

/// Directories whose files rattler and envmod rewrite; they are copied, not linked, so a
/// write in the clone can never reach the live environment.
const COPIED_DIRS: &[&str] = &["conda-meta", ".envmod"];

/// The clone of a live tree, private to this user until [`open_up`].
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) root: tree::Dir,
    /// The live root's mode, which the clone's root gets when it is opened up.
    pub(crate) mode: u32,
}

/// Recreate `src` at `dst` (see `fs::tree::clone_tree`): directories and symlinks as they
/// are, regular files as hard links (copies where linking is refused, and under the
/// metadata directories), in a new directory nobody else can enter. Refused, before anything
/// changes, when the live tree holds directories this user could not remove once it is
/// replaced.
pub(crate) fn clone_tree(src: &Path, dst: &Path) -> Result<Staged> {
    let from = tree::Dir::open(src).with_context(|| format!("failed to open {}", src.display()))?;
    let (parent, name) =
        tree::Dir::parent_of(dst).with_context(|| format!("failed to open {}", dst.display()))?;
    let cloned = tree::clone_tree(&from, &parent, name, COPIED_DIRS)?;
    if !cloned.blockers.is_empty() {
        let (problem, fix) = crate::env::blocked::blocked_by(&cloned.blockers);
        return Err(UserError::failure(format!(
            "cannot change {}: envmod replaces its files with new ones, and could not remove the old ones: {problem}",
            src.display()
        ))
        .with_hint(format!("{fix}; nothing was changed"))
        .into());
    }
    Ok(Staged {
        root: cloned.root,
        mode: from.meta().mode,
    })
}

/// Give a private staging tree its final mode, the last step before it moves into place:
/// the shared modes, or `mode`. Refused if `path` no longer names it (someone who can write
/// its parent directory put another directory there).
pub(crate) fn open_up(
    root: &tree::Dir,
    path: &Path,
    share: Option<&crate::fs::Share>,
    mode: u32,
) -> Result<()> {
    if !root.is_at(path) {
        return Err(UserError::failure(format!(
            "{} was replaced while envmod was building it; nothing was changed",
            path.display()
        ))
        .with_hint(
            "someone who can write that directory did it; find out who, then run the command again",
        )
        .into());
    }
    match share {
        Some(modes) => modes.apply_node(root),
        None => root
            .set_mode(mode)
            .with_context(|| format!("failed to set the mode of {}", path.display())),
    }
}

/// Swap two directories in one step. Filesystems without `RENAME_EXCHANGE` (some network
/// filesystems) get two renames, with the old tree moved aside first.
pub(crate) fn exchange(a: &Path, b: &Path) -> Result<()> {
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if !matches!(
        err.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP)
    ) {
        return Err(err)
            .with_context(|| format!("failed to swap {} and {}", a.display(), b.display()));
    }
    // Named like the other leftovers, so the next command can finish or undo the swap.
    let aside = swap_aside(b);
    std::fs::rename(b, &aside).with_context(|| format!("failed to move {} aside", b.display()))?;
    std::fs::rename(a, b).with_context(|| format!("failed to move {} into place", a.display()))?;
    std::fs::rename(&aside, a)
        .with_context(|| format!("failed to move {} back", aside.display()))?;
    Ok(())
}

/// Where the two-rename fallback parks the live tree while the new one moves in.
pub(crate) fn swap_aside(prefix: &Path) -> std::path::PathBuf {
    let name = prefix
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    prefix.with_file_name(format!(".{name}.envmod-swap"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn clone_links_files_copies_metadata_and_keeps_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("env");
        std::fs::create_dir_all(src.join("lib/pkg")).unwrap();
        std::fs::create_dir_all(src.join("conda-meta")).unwrap();
        std::fs::write(src.join("lib/pkg/mod.py"), "x = 1\n").unwrap();
        std::fs::write(src.join("conda-meta/pkg.json"), "{}").unwrap();
        std::os::unix::fs::symlink("lib", src.join("lib64")).unwrap();
        let dst = dir.path().join("clone");
        let staged = clone_tree(&src, &dst).unwrap();
        assert_eq!(
            std::fs::metadata(&dst).unwrap().mode() & 0o777,
            0o700,
            "private until it is opened up"
        );
        open_up(&staged.root, &dst, None, staged.mode).unwrap();
        assert_eq!(
            std::fs::metadata(&dst).unwrap().mode() & 0o7777,
            std::fs::metadata(&src).unwrap().mode() & 0o7777
        );
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&src.join("lib/pkg/mod.py")),
            ino(&dst.join("lib/pkg/mod.py"))
        );
        assert_ne!(
            ino(&src.join("conda-meta/pkg.json")),
            ino(&dst.join("conda-meta/pkg.json"))
        );
        assert_eq!(
            std::fs::read_link(dst.join("lib64")).unwrap(),
            Path::new("lib")
        );
    }

    #[test]
    fn exchange_swaps_two_directories() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        std::fs::write(a.join("which"), "a").unwrap();
        std::fs::write(b.join("which"), "b").unwrap();
        exchange(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(a.join("which")).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(b.join("which")).unwrap(), "a");
    }
}

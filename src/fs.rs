//! Filesystem steps that must be safe in directories other people can write to. A module
//! root or envs directory shared by a group (docs/admin.md) lets any member plant a symlink
//! at a name envmod is about to write; so temporary files get unpredictable names and are
//! created with `O_CREAT|O_EXCL` (which never follows a link), and lock files are opened
//! with `O_NOFOLLOW`.

use std::{
    fs::File,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::{Context, Result};

use crate::error::UserError;

pub(crate) mod tree;

/// Write a file so that readers see either the old content or the new, never a mix. The
/// file gets the usual mode (0666 less the umask), so a shared module root stays readable.
/// There is no fsync: the rename is what guards against a killed process, and the files are
/// small and can be regenerated (`envmod module`), so a create does not wait on the disk.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .context("path has no file name")?
        .to_string_lossy();
    let result = (|| -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".envmod-tmp")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)?;
        tmp.write_all(contents)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    result.with_context(|| format!("failed to write {}", path.display()))
}

/// Open (creating it if needed) a lock file without following a symlink at its path, and
/// only if it is a regular file: a planted link must never make envmod create or open a file
/// somewhere else.
pub(crate) fn open_lock_file(path: &Path) -> Result<File> {
    let refuse = || -> anyhow::Error {
        UserError::failure(format!(
            "lock file {} is not a regular file (a symbolic link?); envmod will not use it",
            path.display()
        ))
        .with_hint("remove it (and find out who put it there); envmod creates it again")
        .into()
    };
    if path
        .symlink_metadata()
        .is_ok_and(|m| !m.file_type().is_file())
    {
        return Err(refuse());
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o666)
        .open(path)
        .map_err(|e| -> anyhow::Error {
            if e.raw_os_error() == Some(libc::ELOOP) {
                return refuse();
            }
            UserError::failure(format!("cannot create lock file {}: {e}", path.display()))
                .with_hint("check that you can write to that directory")
                .into()
        })?;
    if !file.metadata()?.file_type().is_file() {
        return Err(refuse());
    }
    Ok(file)
}

/// Whether this process may create a file in `dir`, or in the nearest existing ancestor
/// that `create_dir_all` would start from. Asks the kernel (`access(2)` with the effective
/// ids), so read-only mounts and missing permissions both answer no.
pub(crate) fn can_create_in(dir: &Path) -> std::io::Result<()> {
    let mut existing = dir;
    while existing.symlink_metadata().is_err() {
        match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => existing = p,
            _ => break,
        }
    }
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(existing.as_os_str()))
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_a_file_and_ignores_planted_links() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("file");
        for pid in 0..64 {
            let _ = std::os::unix::fs::symlink(
                &victim,
                dir.path().join(format!(".file.envmod-tmp-{pid}")),
            );
        }
        write_atomic(&target, b"new").unwrap();
        write_atomic(&target, b"newer").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "newer");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    }

    #[test]
    fn lock_files_that_are_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("created-elsewhere");
        let lock = dir.path().join(".x.envmod-lock");
        std::os::unix::fs::symlink(&elsewhere, &lock).unwrap();
        let err = open_lock_file(&lock).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        assert!(!elsewhere.exists());
        std::fs::remove_file(&lock).unwrap();
        open_lock_file(&lock).unwrap();
        assert!(lock.symlink_metadata().unwrap().is_file());
    }
}

/// The modes of a shared environment (`create --shared`, `envmod share`), applied whatever
/// the umask of whoever builds or changes it: every directory setgid, everything readable
/// by all, writable by the owner, and by the group with `group_write`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Share {
    pub(crate) gid: Option<u32>,
    pub(crate) group_write: bool,
}

impl Share {
    /// `root` and everything below it, never following a symlink.
    pub(crate) fn apply_tree(&self, root: &Path) -> Result<()> {
        let dir =
            tree::Dir::open(root).with_context(|| format!("failed to open {}", root.display()))?;
        self.apply_node(&dir)?;
        self.apply_below(&dir)
    }

    /// Everything below `root`, which keeps its own mode (a staging tree stays private
    /// until it is swapped in).
    pub(crate) fn apply_below(&self, root: &tree::Dir) -> Result<()> {
        tree::walk_below(root, &mut |node| self.apply_node(node))
    }

    /// `path` alone; a symlink there is left alone, never followed.
    pub(crate) fn apply(&self, path: &Path) -> Result<()> {
        let node =
            tree::Node::open(path).with_context(|| format!("failed to read {}", path.display()))?;
        self.apply_node(&node)
    }

    /// `rel` below the directory `root`, reached without following a link on the way.
    pub(crate) fn apply_beneath(&self, root: &Path, rel: &Path) -> Result<()> {
        let path = root.join(rel);
        let dir =
            tree::Dir::open(root).with_context(|| format!("failed to open {}", root.display()))?;
        let node = tree::Node::open_beneath(&dir, rel)
            .with_context(|| format!("failed to read {}", path.display()))?;
        self.apply_node(&node)
    }

    /// What `node` holds open: a name swapped for a link since cannot redirect the change.
    pub(crate) fn apply_node(&self, node: &tree::Node) -> Result<()> {
        let (meta, path) = (node.meta(), node.path());
        if !matches!(meta.kind, tree::Kind::Dir | tree::Kind::File) {
            return Ok(());
        }
        crate::failpoint::hit_on("share:checked", path);
        let mode = self.mode_for(meta);
        if let Some(gid) = self.gid
            && meta.gid != gid
            && let Err(e) = node.set_group(gid)
        {
            return Err(UserError::failure(format!(
                "cannot give {} to the group: {e}",
                path.display()
            ))
            .with_hint("you must be a member of the group (`id -Gn`), and own the files")
            .into());
        }
        if meta.mode != mode
            && let Err(e) = node.set_mode(mode)
        {
            // A file hard-linked from a package cache someone else owns: fine if everyone
            // can already read it.
            let readable = meta.mode & 0o444 == 0o444;
            if !(readable && e.kind() == std::io::ErrorKind::PermissionDenied) {
                return Err(e)
                    .with_context(|| format!("failed to set the mode of {}", path.display()));
            }
        }
        Ok(())
    }

    /// The mode an entry like `meta` gets.
    fn mode_for(&self, meta: &tree::Meta) -> u32 {
        let gw = if self.group_write { 0o020 } else { 0 };
        if meta.kind == tree::Kind::Dir {
            0o2755 | gw
        } else {
            0o644 | gw | if meta.mode & 0o100 != 0 { 0o111 } else { 0 }
        }
    }
}

/// The umask of this process, which a directory made private at first gets in the end.
pub(crate) fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// The id of group `name`, if it exists.
pub(crate) fn group_id(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: getgrnam is given a valid C string and its result is read at once, on this
    // thread, before any other call that could reuse its static buffer.
    let gr = unsafe { libc::getgrnam(c.as_ptr()) };
    if gr.is_null() {
        None
    } else {
        // SAFETY: non-null result of getgrnam.
        Some(unsafe { (*gr).gr_gid })
    }
}

/// Whether this process can give files to group `gid`: root, or a member.
pub(crate) fn in_group(gid: u32) -> bool {
    // SAFETY: plain libc queries with a buffer of the size getgroups reports.
    unsafe {
        if libc::geteuid() == 0 || libc::getegid() == gid {
            return true;
        }
        let n = libc::getgroups(0, std::ptr::null_mut());
        if n <= 0 {
            return false;
        }
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let n = libc::getgroups(n, groups.as_mut_ptr());
        n > 0 && groups[..n as usize].contains(&gid)
    }
}

/// The login name of user `uid` (the number when it has none).
pub(crate) fn user_name(uid: u32) -> Option<String> {
    // SAFETY: getpwuid's result is read at once, on this thread, before any other call that
    // could reuse its static buffer.
    unsafe {
        let pw = libc::getpwuid(uid);
        if pw.is_null() {
            return Some(uid.to_string());
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

/// The login name of whoever runs envmod.
pub(crate) fn current_user() -> Option<String> {
    // SAFETY: geteuid cannot fail.
    user_name(unsafe { libc::geteuid() })
}

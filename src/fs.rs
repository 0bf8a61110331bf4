//! Filesystem steps that must be safe in directories other people can write to. A module
//! root or envs directory shared by a group (docs/admin.md) lets any member plant a symlink
//! at a name envmod is about to write; so temporary files get unpredictable names and are
//! created with `O_CREAT|O_EXCL` (which never follows a link), and lock files are opened
//! with `O_NOFOLLOW`.

use std::{
    fs::File,
    io::Write,
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};

use crate::error::UserError;

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

/// What a file named on the command line for output (`export -o`) is now: nothing, or a
/// regular file, whose metadata is returned. A device, FIFO or socket is refused: the rename
/// that replaces a file would replace the node itself (as root, `/dev/full` became a file).
/// So is a symbolic link: a link planted where someone will write would redirect the write.
pub(crate) fn output_target(path: &Path) -> Result<Option<std::fs::Metadata>> {
    let meta = match path.symlink_metadata() {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot write {}", path.display())),
    };
    if meta.file_type().is_symlink() {
        return Err(UserError::usage(format!(
            "{} is a symbolic link; envmod writes only to regular files, never through a link",
            path.display()
        ))
        .with_hint("give the path the link points to, or remove the link")
        .into());
    }
    if !meta.is_file() {
        return Err(UserError::usage(format!(
            "{} is {}, not a regular file; envmod writes only to regular files",
            path.display(),
            kind_of(meta.file_type())
        ))
        .with_hint("give the path of a new or existing regular file")
        .into());
    }
    Ok(Some(meta))
}

/// Write a file named for output by replacing it atomically, as `write_atomic` does, but
/// only over a regular file (see `output_target`), and keeping the mode of the file it
/// replaces (and, for root, its owner), so a private file stays private.
pub(crate) fn write_output(path: &Path, contents: &[u8]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let old = output_target(path)?;
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
        if let Some(old) = &old {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o777))?;
            // SAFETY: geteuid cannot fail.
            if unsafe { libc::geteuid() } == 0 {
                std::os::unix::fs::fchown(tmp.as_file(), Some(old.uid()), Some(old.gid()))?;
            }
        }
        tmp.write_all(contents)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    })();
    result.with_context(|| format!("failed to write {}", path.display()))
}

/// How a read treats a symbolic link at the last component of its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Links {
    /// A path the user named (`-f FILE`, `~/.bashrc`): a link there is the user's own.
    Follow,
    /// A file inside a tree others can write (a shared module root or environment): a link
    /// there may have been planted, and is read as no file of envmod's.
    Refuse,
}

/// The most envmod reads of a settings-sized file: a config file, a module map, a
/// kernel.json, conda-meta/state, a probe cache entry.
pub(crate) const SMALL_FILE: u64 = 4 << 20;
/// The most envmod reads of a document: an environment.yml, a lock file, a manifest, the
/// registry. A lock of thousands of packages for several platforms is a few MiB.
pub(crate) const DOCUMENT: u64 = 64 << 20;

/// Why a file was not read. Every message is one line that names the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    #[error("{} does not exist", .0.display())]
    NotFound(PathBuf),
    #[error("{} is {kind}, not a regular file; envmod reads only regular files", path.display())]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{} is larger than {}, the most envmod reads of such a file", path.display(), size(*limit))]
    TooLarge { path: PathBuf, limit: u64 },
    #[error("{} is not UTF-8 text", .0.display())]
    NotText(PathBuf),
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ReadError {
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, ReadError::NotFound(_))
    }
}

fn size(n: u64) -> String {
    if n >= 1 << 20 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{} KiB", n >> 10)
    }
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else {
        "not a file"
    }
}

/// Open a file for reading only if it is a regular file. The type is checked before the
/// open (opening a device or a FIFO can block, or rewind a tape) and again on the open
/// descriptor, which `O_NONBLOCK` keeps from blocking if the path was swapped in between.
pub(crate) fn open_regular(path: &Path, links: Links) -> Result<File, ReadError> {
    let io = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound(path.to_path_buf()),
        _ if source.raw_os_error() == Some(libc::ELOOP) => ReadError::NotRegular {
            path: path.to_path_buf(),
            kind: "a symbolic link",
        },
        _ => ReadError::Io {
            path: path.to_path_buf(),
            source,
        },
    };
    let not_regular = |ft| ReadError::NotRegular {
        path: path.to_path_buf(),
        kind: kind_of(ft),
    };
    let meta = match links {
        Links::Follow => path.metadata(),
        Links::Refuse => path.symlink_metadata(),
    }
    .map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let nofollow = if links == Links::Refuse {
        libc::O_NOFOLLOW
    } else {
        0
    };
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | nofollow)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    Ok(file)
}

/// The whole of a regular file of at most `limit` bytes.
pub(crate) fn read_regular(path: &Path, limit: u64, links: Links) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let file = open_regular(path, links)?;
    let too_large = || ReadError::TooLarge {
        path: path.to_path_buf(),
        limit,
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > limit {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(len as usize);
    // One byte past the limit tells a file that grew since the fstat.
    file.take(limit + 1)
        .read_to_end(&mut buf)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > limit {
        return Err(too_large());
    }
    Ok(buf)
}

/// [`read_regular`], as UTF-8 text.
pub(crate) fn read_text(path: &Path, limit: u64, links: Links) -> Result<String, ReadError> {
    String::from_utf8(read_regular(path, limit, links)?)
        .map_err(|_| ReadError::NotText(path.to_path_buf()))
}

/// The first `len` bytes of a regular file (fewer if it is shorter), whatever its size.
pub(crate) fn read_head(path: &Path, len: u64, links: Links) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let mut buf = Vec::new();
    open_regular(path, links)?
        .take(len)
        .read_to_end(&mut buf)
        .map_err(|source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(buf)
}

#[cfg(test)]
mod reader_tests {
    use std::os::unix::fs::FileTypeExt;

    use super::*;

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    #[test]
    fn only_regular_files_are_read_and_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let err = read_regular(&fifo, SMALL_FILE, Links::Follow).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} is a FIFO, not a regular file; envmod reads only regular files",
                fifo.display()
            )
        );
        let err = read_head(Path::new("/dev/zero"), 10, Links::Follow).unwrap_err();
        assert!(err.to_string().contains("is a device"), "{err}");
        assert!(
            read_text(dir.path(), SMALL_FILE, Links::Follow)
                .unwrap_err()
                .to_string()
                .contains("is a directory")
        );

        let file = dir.path().join("file");
        std::fs::write(&file, "12345").unwrap();
        assert_eq!(read_text(&file, 5, Links::Follow).unwrap(), "12345");
        let err = read_regular(&file, 4, Links::Follow).unwrap_err();
        assert!(matches!(err, ReadError::TooLarge { limit: 4, .. }), "{err}");
        assert_eq!(read_head(&file, 2, Links::Refuse).unwrap(), b"12");
        assert!(
            read_text(&dir.path().join("none"), 5, Links::Follow)
                .unwrap_err()
                .is_not_found()
        );

        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_head(&link, 5, Links::Follow).unwrap(), b"12345");
        let err = read_head(&link, 5, Links::Refuse).unwrap_err();
        assert!(err.to_string().contains("is a symbolic link"), "{err}");
        let big = dir.path().join("big");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(DOCUMENT + 1)
            .unwrap();
        let err = read_regular(&big, DOCUMENT, Links::Follow).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("is larger than 64 MiB, the most envmod reads of such a file"),
            "{err}"
        );
    }

    #[test]
    fn outputs_are_regular_files_that_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        mkfifo(&fifo);
        let err = write_output(&fifo, b"x").unwrap_err().to_string();
        assert!(err.contains("is a FIFO, not a regular file"), "{err}");
        assert!(fifo.symlink_metadata().unwrap().file_type().is_fifo());
        let file = dir.path().join("out");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_output(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o640);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let err = write_output(&link, b"x").unwrap_err().to_string();
        assert!(err.contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }
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
    /// `path` and everything below it, never following a symlink.
    pub(crate) fn apply_tree(&self, root: &Path) -> Result<()> {
        self.apply(root)?;
        let meta = root
            .symlink_metadata()
            .with_context(|| format!("failed to read {}", root.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(root)
                .with_context(|| format!("failed to read {}", root.display()))?
            {
                self.apply_tree(&entry?.path())?;
            }
        }
        Ok(())
    }

    /// `path` alone.
    pub(crate) fn apply(&self, path: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = path
            .symlink_metadata()
            .with_context(|| format!("failed to read {}", path.display()))?;
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let gw = if self.group_write { 0o020 } else { 0 };
        let mode = if meta.is_dir() {
            0o2755 | gw
        } else {
            0o644 | gw | if meta.mode() & 0o100 != 0 { 0o111 } else { 0 }
        };
        if let Some(gid) = self.gid
            && meta.gid() != gid
            && let Err(e) = std::os::unix::fs::chown(path, None, Some(gid))
        {
            return Err(UserError::failure(format!(
                "cannot give {} to the group: {e}",
                path.display()
            ))
            .with_hint("you must be a member of the group (`id -Gn`), and own the files")
            .into());
        }
        if meta.mode() & 0o7777 != mode
            && let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        {
            // A file hard-linked from a package cache someone else owns: fine if everyone
            // can already read it.
            let readable = meta.mode() & 0o444 == 0o444;
            if !(readable && e.kind() == std::io::ErrorKind::PermissionDenied) {
                return Err(e)
                    .with_context(|| format!("failed to set the mode of {}", path.display()));
            }
        }
        Ok(())
    }
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

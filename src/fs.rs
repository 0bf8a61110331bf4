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

pub(crate) mod blocked;
pub(crate) mod tree;
pub(crate) mod trust;

/// Write a file so that readers see either the old content or the new, never a mix. The
/// file gets the usual mode (0666 less the umask), so a shared module root stays readable.
/// There is no fsync: the rename is what guards against a killed process, and the files are
/// small and can be regenerated (`envmod module`), so a create does not wait on the disk.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    replace_file(path, contents, |_| Ok(()))
}

/// [`write_atomic`], with `prepare` given the new file before its content goes in.
fn replace_file(
    path: &Path,
    contents: &[u8],
    prepare: impl FnOnce(&File) -> std::io::Result<()>,
) -> Result<()> {
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
        prepare(tmp.as_file())?;
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
    replace_file(path, contents, |tmp| {
        if let Some(old) = &old {
            tmp.set_permissions(std::fs::Permissions::from_mode(old.mode() & 0o777))?;
            if nix::unistd::geteuid().is_root() {
                std::os::unix::fs::fchown(tmp, Some(old.uid()), Some(old.gid()))?;
            }
        }
        Ok(())
    })
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
    #[error("{} is reached through a symbolic link (or a file where a directory should be); envmod does not follow links there", .0.display())]
    Through(PathBuf),
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
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
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

/// [`write_atomic`] for a file in a tree others may write (an environment, a shared module
/// root or Jupyter prefix): the directories on the way are opened one by one, made where
/// they are missing, and never reached through a link someone else planted (see
/// `tree::Dir::open_following`); the file is created new and renamed into place through its
/// directory's descriptor. `mode` is the new file's mode (else 0666 less the umask).
pub(crate) fn write_placed(path: &Path, contents: &[u8], mode: Option<u32>) -> Result<()> {
    let result = (|| -> std::io::Result<()> {
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("the path has no file name"))?;
        let parent = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        tree::Dir::make_all(parent)?.write_file(name, contents, mode)
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
            if let Some(denied) = lock_denied(path, &e) {
                return denied;
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

/// The error for a lock file that exists but that this user may not open: whose it is, its
/// mode, and the fix. In a directory a group shares, any member can replace the lock file
/// with one only they may write, and every command then stops there.
fn lock_denied(path: &Path, e: &std::io::Error) -> Option<anyhow::Error> {
    use std::os::unix::fs::MetadataExt;
    if e.kind() != std::io::ErrorKind::PermissionDenied {
        return None;
    }
    let meta = path.symlink_metadata().ok().filter(|m| m.is_file())?;
    let owner = user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string());
    let mode = meta.mode() & 0o7777;
    let mine = meta.uid() == nix::unistd::geteuid().as_raw();
    let quoted = crate::escape::sh_quote(&path.to_string_lossy());
    let parent = path.parent().unwrap_or(Path::new("/"));
    if !mine && nix::unistd::access(parent, nix::unistd::AccessFlags::W_OK).is_err() {
        // Not a lock someone planted: this user cannot change anything there.
        let env_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix('.')?.strip_suffix(".envmod-lock"))
            .unwrap_or("ENV");
        let prefix = crate::escape::sh_quote(&parent.join(env_name).to_string_lossy());
        return Some(
            UserError::failure(format!(
                "you cannot write {}, where the environment is: only {owner} (or its group) can change it",
                parent.display()
            ))
            .with_hint(format!(
                "for a copy of your own that you can change, run `envmod create -n NAME --clone {prefix}`"
            ))
            .into(),
        );
    }
    let hint = if mine {
        format!("make it writable again: chmod u+w {quoted}")
    } else {
        format!(
            "{owner} (or someone who can write its directory) put it there; when no envmod is running on the environment, remove it (`rm {quoted}`) and run the command again: envmod makes a new one"
        )
    };
    Some(
        UserError::failure(format!(
            "cannot take the lock: the lock file {} belongs to {owner} and has mode {mode:04o}, which you cannot write",
            path.display()
        ))
        .with_hint(hint)
        .into(),
    )
}

/// Open an existing lock file for reading only, for a shared lock: `None` when there is
/// none. Never creates it, so a reader needs no write permission anywhere; `O_NONBLOCK`
/// keeps a FIFO planted there from blocking the open.
pub(crate) fn open_lock_file_to_read(path: &Path) -> Result<Option<File>> {
    let refuse = || -> anyhow::Error {
        UserError::failure(format!(
            "lock file {} is not a regular file (a symbolic link?); envmod will not use it",
            path.display()
        ))
        .with_hint("ask the owner of the environment to remove it; envmod creates it again")
        .into()
    };
    let file = match File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Err(refuse()),
        Err(e) => {
            return Err(UserError::failure(format!(
                "cannot read lock file {}: {e}",
                path.display()
            ))
            .with_hint("ask the owner of the environment to run `envmod share` on it")
            .into());
        }
    };
    if !file.metadata()?.file_type().is_file() {
        return Err(refuse());
    }
    Ok(Some(file))
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
    use nix::{
        fcntl::{AT_FDCWD, AtFlags},
        unistd::{AccessFlags, faccessat},
    };
    faccessat(
        AT_FDCWD,
        existing,
        AccessFlags::W_OK | AccessFlags::X_OK,
        AtFlags::AT_EACCESS,
    )
    .map_err(std::io::Error::from)
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

    #[test]
    fn reading_a_lock_creates_nothing_and_refuses_links_and_fifos() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join(".x.envmod-lock");
        assert!(open_lock_file_to_read(&lock).unwrap().is_none());
        assert!(
            lock.symlink_metadata().is_err(),
            "a reader created the lock"
        );
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &lock).unwrap();
        assert!(open_lock_file_to_read(&lock).is_err());
        std::fs::remove_file(&lock).unwrap();
        nix::unistd::mkfifo(&lock, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let err = open_lock_file_to_read(&lock).unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
        std::fs::remove_file(&lock).unwrap();
        open_lock_file(&lock).unwrap();
        assert!(open_lock_file_to_read(&lock).unwrap().is_some());
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
        let mode = self.mode_for(meta, path);
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

    /// The mode an entry like `meta` at `path` gets. Activation scripts stay writable by
    /// their owner alone: envmod runs them itself, and tells who could have written one by
    /// its owner and mode, which a group's write access would leave saying nothing.
    fn mode_for(&self, meta: &tree::Meta, path: &Path) -> u32 {
        let owner_only = path
            .parent()
            .is_some_and(|d| d.ends_with("etc/conda/activate.d"));
        let gw = if self.group_write && !owner_only {
            0o020
        } else {
            0
        };
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
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// Whether this process can give files to group `gid`: root, or a member.
pub(crate) fn in_group(gid: u32) -> bool {
    use nix::unistd::{Gid, getegid, geteuid, getgroups};
    geteuid().is_root()
        || getegid().as_raw() == gid
        || getgroups().is_ok_and(|groups| groups.contains(&Gid::from_raw(gid)))
}

/// Who besides this user (and root) can rename this user's directories in `dir`, and so
/// give any of them a leftover's name: its owner, or its group or everyone when they may
/// write it and no sticky bit stops them.
pub(crate) fn others_may_rename_in(dir: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).ok()?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        return Some(user_name(meta.uid()).unwrap_or_else(|| meta.uid().to_string()));
    }
    if meta.mode() & libc::S_ISVTX != 0 {
        return None;
    }
    if meta.mode() & 0o002 != 0 {
        return Some("everyone".into());
    }
    if meta.mode() & 0o020 != 0 {
        let group = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(meta.gid()))
            .ok()
            .flatten()
            .map_or_else(|| meta.gid().to_string(), |g| g.name);
        return Some(format!("the group {group}"));
    }
    None
}

/// The login name of user `uid` (the number when it has none).
pub(crate) fn user_name(uid: u32) -> Option<String> {
    Some(match nix::unistd::User::from_uid(uid.into()) {
        Ok(Some(user)) => user.name,
        _ => uid.to_string(),
    })
}

/// The login name of whoever runs envmod.
pub(crate) fn current_user() -> Option<String> {
    user_name(nix::unistd::geteuid().as_raw())
}

/// Open `rel` (plain components only) below the directory `root` without following a
/// symbolic link at any step, so that whoever can write inside `root` (a group member in a
/// shared environment) cannot point the open anywhere else. The last component must be a
/// directory when `dir`, else anything that is not a link; it is opened non-blocking, so a
/// FIFO cannot hang the caller.
fn open_beneath(root: &Path, rel: &Path, dir: bool) -> std::io::Result<std::os::fd::OwnedFd> {
    use nix::{
        fcntl::{AT_FDCWD, OFlag, openat},
        sys::stat::Mode,
    };
    let open_at = |at: std::os::fd::BorrowedFd<'_>, name: &std::ffi::OsStr, flags: OFlag| {
        openat(at, name, flags | OFlag::O_CLOEXEC, Mode::empty()).map_err(std::io::Error::from)
    };
    let parts: Vec<&std::ffi::OsStr> = rel
        .components()
        .map(|c| match c {
            std::path::Component::Normal(p) => Ok(p),
            _ => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
        })
        .collect::<std::io::Result<_>>()?;
    let mut fd = open_at(
        AT_FDCWD,
        root.as_os_str(),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    )?;
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let kind = if last && !dir {
            OFlag::O_NONBLOCK | OFlag::O_NOCTTY
        } else {
            OFlag::O_DIRECTORY
        };
        use std::os::fd::AsFd;
        fd = open_at(fd.as_fd(), part, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | kind)?;
    }
    Ok(fd)
}

/// [`open_regular`] for `rel` (plain components only) below the directory `root`, with no
/// link followed at any step (see [`open_beneath`]): for a file in a tree others can write,
/// where a link in any directory on the way could lead out of the tree. As with
/// `open_regular`, the type is checked before the open, so a device is never opened.
pub(crate) fn open_regular_beneath(root: &Path, rel: &Path) -> Result<File, ReadError> {
    let path = root.join(rel);
    let io = |source: std::io::Error| match source.raw_os_error() {
        Some(libc::ENOENT) => ReadError::NotFound(path.clone()),
        // Only the directories on the way are opened this way: the file itself is looked at
        // with fstatat first.
        Some(libc::ELOOP | libc::ENOTDIR) => ReadError::Through(path.clone()),
        _ => ReadError::Io {
            path: path.clone(),
            source,
        },
    };
    let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
        return Err(io(std::io::Error::from(std::io::ErrorKind::InvalidInput)));
    };
    let dir = open_beneath(root, parent, true).map_err(io)?;
    let not_regular = |meta: &std::fs::Metadata| ReadError::NotRegular {
        path: path.clone(),
        kind: kind_of(meta.file_type()),
    };
    let st = nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| io(e.into()))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => "a symbolic link",
            libc::S_IFDIR => "a directory",
            libc::S_IFIFO => "a FIFO",
            libc::S_IFSOCK => "a socket",
            libc::S_IFCHR | libc::S_IFBLK => "a device",
            _ => "not a file",
        };
        return Err(ReadError::NotRegular {
            path: path.clone(),
            kind,
        });
    }
    use nix::fcntl::OFlag;
    let file = File::from(
        nix::fcntl::openat(
            &dir,
            name,
            OFlag::O_RDONLY
                | OFlag::O_NOFOLLOW
                | OFlag::O_NONBLOCK
                | OFlag::O_NOCTTY
                | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| io(e.into()))?,
    );
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok(file)
}

/// The content of the regular file `rel` below `root` (see [`open_beneath`]), at most
/// `limit` bytes; `Ok(None)` when it does not exist.
pub(crate) fn read_beneath(root: &Path, rel: &Path, limit: u64) -> Result<Option<Vec<u8>>> {
    use std::io::Read;
    let path = root.join(rel);
    let fd = match open_beneath(root, rel, false) {
        Ok(fd) => fd,
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(None);
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(UserError::failure(format!(
                "{} is reached through a symbolic link; envmod does not follow it",
                path.display()
            ))
            .with_hint("replace the link with the file or directory itself (and find out who put it there)")
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
    };
    let mut file = File::from(fd);
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(UserError::failure(format!(
            "{} is not a regular file; envmod does not read it",
            path.display()
        ))
        .with_hint("remove it (and find out who put it there)")
        .into());
    }
    let mut bytes = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("failed to read {}", path.display()))?;
    if bytes.len() as u64 > limit {
        return Err(UserError::failure(format!(
            "{} is larger than {limit} bytes, more than envmod reads",
            path.display()
        ))
        .with_hint("remove what does not belong in it")
        .into());
    }
    Ok(Some(bytes))
}

/// The names in the directory `rel` below `root` (see [`open_beneath`]), sorted; empty when
/// it does not exist.
pub(crate) fn list_beneath(root: &Path, rel: &Path) -> Result<Vec<std::ffi::OsString>> {
    use std::os::unix::ffi::OsStrExt;
    let path = root.join(rel);
    let fd = match open_beneath(root, rel, true) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(UserError::failure(format!(
                "{} is reached through a symbolic link; envmod does not follow it",
                path.display()
            ))
            .with_hint("replace the link with the directory itself (and find out who put it there)")
            .into());
        }
        Err(e) => return Err(e).with_context(|| format!("failed to open {}", path.display())),
    };
    let read_error = || format!("failed to read {}", path.display());
    let mut dir = nix::dir::Dir::from_fd(fd).with_context(read_error)?;
    let mut names = Vec::new();
    for entry in dir.iter() {
        let entry = entry.with_context(read_error)?;
        let name = std::ffi::OsStr::from_bytes(entry.file_name().to_bytes());
        if name != "." && name != ".." {
            names.push(name.to_os_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Whether two paths name the same directory today, links resolved.
pub(crate) fn same_dir(recorded: &Path, real: &Path) -> bool {
    match (std::fs::canonicalize(recorded), std::fs::canonicalize(real)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

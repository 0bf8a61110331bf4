//! Trees that other people can write: a shared environment, the clone `install` builds beside
//! it, and what an interrupted envmod left. A member of the group can swap any entry for a
//! symlink between the moment envmod looks at it and the moment it acts, so nothing here acts
//! on a path below the root: every directory is opened from its parent's descriptor with
//! `O_NOFOLLOW|O_DIRECTORY`, every other entry with `O_PATH|O_NOFOLLOW`, and modes, owners,
//! links and removals apply to what was opened, never to a name looked up again.

use std::{
    ffi::{OsStr, OsString},
    fs::File,
    io,
    os::{
        fd::{AsFd, AsRawFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Path, PathBuf},
};

use anyhow::{Context, Result};
use nix::{
    errno::Errno,
    fcntl::{AT_FDCWD, AtFlags, OFlag, openat, readlinkat},
    sys::stat::{FchmodatFlags, FileStat, Mode, fchmod, fchmodat, fstat, fstatat, mkdirat},
    unistd::{Gid, UnlinkatFlags, fchownat, geteuid, linkat, symlinkat, unlinkat},
};

/// Deeper than any package tree: a deeper one was made to run envmod out of descriptors.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink,
    /// A FIFO, socket or device: never opened, never copied.
    Other,
}

/// What `fstat` said about an entry that is held open.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    pub(crate) kind: Kind,
    /// The permission bits, set-id and sticky bits included.
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// How many names the inode has: above one, another tree (a package cache) shares it.
    pub(crate) nlink: u64,
    /// The space it takes, in 512-byte blocks, as quotas count it.
    pub(crate) blocks: u64,
    dev: u64,
    ino: u64,
}

impl Meta {
    /// The inode, to tell which names are links of one file.
    pub(crate) fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

impl From<FileStat> for Meta {
    fn from(st: FileStat) -> Self {
        let kind = match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFREG => Kind::File,
            libc::S_IFLNK => Kind::Symlink,
            _ => Kind::Other,
        };
        Self {
            kind,
            mode: st.st_mode & 0o7777,
            uid: st.st_uid,
            gid: st.st_gid,
            nlink: st.st_nlink,
            blocks: st.st_blocks as u64,
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

fn mode_bits(mode: u32) -> Mode {
    Mode::from_bits_truncate(mode as libc::mode_t)
}

/// An entry of a tree, held open: what its methods change is the object `meta` describes,
/// whatever has happened to its name since.
#[derive(Debug)]
pub(crate) struct Node {
    fd: OwnedFd,
    meta: Meta,
    path: PathBuf,
    /// Opened `O_PATH`, which `fchmod` does not accept.
    path_only: bool,
}

impl Node {
    /// `path` itself, never what a symlink there points to. The parent is resolved as usual:
    /// a configured path may pass through links its owner made.
    pub(crate) fn open(path: &Path) -> io::Result<Node> {
        let (parent, name) = split(path)?;
        Dir::open_following(parent)?.node(name)
    }

    /// `rel` below `root`, every component opened without following a link, so that no
    /// link anyone put in the tree leads out of it.
    pub(crate) fn open_beneath(root: &Dir, rel: &Path) -> io::Result<Node> {
        let mut names = rel.components().map(|c| match c {
            std::path::Component::Normal(n) => Ok(n),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a plain relative path", rel.display()),
            )),
        });
        let last = names
            .next_back()
            .unwrap_or_else(|| Err(io::ErrorKind::InvalidInput.into()))?;
        let mut dir: Option<Dir> = None;
        for name in names {
            let next = dir.as_ref().unwrap_or(root).open_dir(name?)?;
            dir = Some(next);
        }
        dir.as_ref().unwrap_or(root).node(last)
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The path it was opened by, for messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn set_mode(&self, mode: u32) -> io::Result<()> {
        if !self.path_only {
            return Ok(fchmod(&self.fd, mode_bits(mode))?);
        }
        if self.meta.kind == Kind::Symlink {
            return Err(io::ErrorKind::Unsupported.into());
        }
        // The descriptor's /proc link names the inode it holds, not a path anyone can swap.
        Ok(fchmodat(
            AT_FDCWD,
            proc_path(&self.fd).as_path(),
            mode_bits(mode),
            FchmodatFlags::FollowSymlink,
        )?)
    }

    pub(crate) fn set_group(&self, gid: u32) -> io::Result<()> {
        Ok(fchownat(
            &self.fd,
            "",
            None,
            Some(Gid::from_raw(gid)),
            AtFlags::AT_EMPTY_PATH,
        )?)
    }
}

fn proc_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

fn split(path: &Path) -> io::Result<(&Path, &OsStr)> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((parent, name))
}

/// A directory, opened for reading without following a symlink at its name.
#[derive(Debug)]
pub(crate) struct Dir(Node);

impl std::ops::Deref for Dir {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.0
    }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Dir {
    /// `path`, which must be a directory itself, not a link to one. Its parents are
    /// resolved as [`Dir::open_following`] does.
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        match split(path) {
            Ok((parent, name)) => Self::open_following(parent)?.open_dir(name),
            // `/` or `.`: nothing above to resolve.
            Err(_) => Self::from_fd(openat(AT_FDCWD, path, DIR_FLAGS, Mode::empty())?, path),
        }
    }

    /// The directory `path` resolves to: for the parents of the paths envmod is given (an
    /// envs directory, a module root), which may pass through links their owners made. Each
    /// component is opened from its parent's descriptor; a symbolic link is followed only
    /// when it is trusted ([`trusted_link`]), so a link a group member plants in a directory
    /// the group can write leads nowhere.
    pub(crate) fn open_following(path: &Path) -> io::Result<Dir> {
        Self::walk(path, false)
    }

    /// [`Dir::open_following`], making the directories that are missing (mode 0777 less the
    /// umask), as `create_dir_all` would.
    pub(crate) fn make_all(path: &Path) -> io::Result<Dir> {
        Self::walk(path, true)
    }

    fn walk(path: &Path, create: bool) -> io::Result<Dir> {
        let start = if path.is_absolute() { "/" } else { "." };
        let mut dir = Self::from_fd(
            openat(AT_FDCWD, start, DIR_FLAGS, Mode::empty())?,
            Path::new(start),
        )?;
        for c in path.components() {
            let name = match c {
                std::path::Component::Normal(n) => n,
                std::path::Component::RootDir | std::path::Component::CurDir => continue,
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("{} holds `..`", path.display()),
                    ));
                }
            };
            dir = match dir.open_dir(name) {
                Ok(next) => next,
                Err(e) if matches!(errno(&e), Some(Errno::ELOOP | Errno::ENOTDIR)) => {
                    let meta = dir.meta_at(name)?;
                    if meta.kind != Kind::Symlink {
                        return Err(e);
                    }
                    if !trusted_link(&meta, dir.meta()) {
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!(
                                "{} is a symbolic link that {} made in a directory others can write; envmod does not follow it",
                                dir.path.join(name).display(),
                                crate::fs::user_name(meta.uid).unwrap_or_default()
                            ),
                        ));
                    }
                    let flags = DIR_FLAGS.difference(OFlag::O_NOFOLLOW);
                    let fd = openat(&dir.0.fd, name, flags, Mode::empty())?;
                    Self::from_fd(fd, &dir.path.join(name))?
                }
                Err(e) if create && errno(&e) == Some(Errno::ENOENT) => {
                    match mkdirat(&dir.0.fd, name, mode_bits(0o777)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    dir.open_dir(name)?
                }
                Err(e) => return Err(e),
            };
        }
        Ok(dir)
    }

    /// The parent of `path`, resolved as usual, and the last component, which the caller
    /// then acts on without following.
    pub(crate) fn parent_of(path: &Path) -> io::Result<(Dir, &OsStr)> {
        let (parent, name) = split(path)?;
        Ok((Self::open_following(parent)?, name))
    }

    fn from_fd(fd: OwnedFd, path: &Path) -> io::Result<Dir> {
        let meta = Meta::from(fstat(&fd)?);
        Ok(Dir(Node {
            fd,
            meta,
            path: path.to_path_buf(),
            path_only: false,
        }))
    }

    /// The directory `name` inside this one; a symlink there is refused (`ENOTDIR` or `ELOOP`).
    pub(crate) fn open_dir(&self, name: &OsStr) -> io::Result<Dir> {
        let fd = openat(&self.0.fd, name, DIR_FLAGS, Mode::empty())?;
        Self::from_fd(fd, &self.path.join(name))
    }

    /// The entry `name`, whatever it is: a directory comes back readable, anything else
    /// opened `O_PATH` (a FIFO is not opened for reading, a device is not opened at all).
    pub(crate) fn node(&self, name: &OsStr) -> io::Result<Node> {
        let fd = openat(
            &self.0.fd,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let meta = Meta::from(fstat(&fd)?);
        if meta.kind == Kind::Dir {
            let dir = self.open_dir(name)?;
            if (dir.meta.dev, dir.meta.ino) != (meta.dev, meta.ino) {
                return Err(Errno::EAGAIN.into());
            }
            return Ok(dir.0);
        }
        Ok(Node {
            fd,
            meta,
            path: self.path.join(name),
            path_only: true,
        })
    }

    /// Make the directory `name` here, mode `mode` (less the umask), and open it. Refused
    /// unless what is then at `name` is this user's and closed to everyone else when `mode`
    /// is: in a directory others can write, someone may have put their own there.
    pub(crate) fn make_dir(&self, name: &OsStr, mode: u32) -> io::Result<Dir> {
        mkdirat(&self.0.fd, name, mode_bits(mode))?;
        let dir = self.open_dir(name)?;
        let others = dir.meta.mode & 0o077 & !mode;
        if dir.meta.uid != me() || others != 0 {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} was replaced as it was made", dir.path.display()),
            ));
        }
        Ok(dir)
    }

    /// The entries, without `.` and `..`, with their kind where the filesystem says it.
    pub(crate) fn entries(&self) -> io::Result<Vec<(OsString, Option<Kind>)>> {
        // A descriptor of its own: reading moves the offset, which `self` must keep at 0.
        let fd = openat(&self.0.fd, ".", DIR_FLAGS, Mode::empty())?;
        let mut stream = nix::dir::Dir::from_fd(fd)?;
        let mut out = Vec::new();
        for entry in stream.iter() {
            let entry = entry?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = entry.file_type().map(|t| match t {
                nix::dir::Type::Directory => Kind::Dir,
                nix::dir::Type::File => Kind::File,
                nix::dir::Type::Symlink => Kind::Symlink,
                _ => Kind::Other,
            });
            out.push((OsStr::from_bytes(name).to_os_string(), kind));
        }
        Ok(out)
    }

    /// What `name` is now, without following it.
    /// Remove the entry `name`, a file or link, or (`dir`) an empty directory; a link is
    /// removed, never followed.
    pub(crate) fn remove_at(&self, name: &OsStr, dir: bool) -> io::Result<()> {
        let flags = match dir {
            true => UnlinkatFlags::RemoveDir,
            false => UnlinkatFlags::NoRemoveDir,
        };
        Ok(unlinkat(&self.0.fd, name, flags)?)
    }

    pub(crate) fn meta_at(&self, name: &OsStr) -> io::Result<Meta> {
        Ok(Meta::from(fstatat(
            &self.0.fd,
            name,
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )?))
    }

    /// Replace the file `name` in this directory with `contents`, so that readers see the old
    /// file or the new one. The new file is created under a random name with
    /// `O_CREAT|O_EXCL|O_NOFOLLOW`, given `mode` (or 0666 less the umask), and renamed onto
    /// `name` through this directory's descriptor: a link planted at either name, or a
    /// directory swapped for a link on the way here, is never written through.
    pub(crate) fn write_file(
        &self,
        name: &OsStr,
        contents: &[u8],
        mode: Option<u32>,
    ) -> io::Result<()> {
        use std::io::Write;
        self.replace_file(name, mode, &mut |file| file.write_all(contents))
    }

    fn replace_file(
        &self,
        name: &OsStr,
        mode: Option<u32>,
        fill: &mut dyn FnMut(&mut File) -> io::Result<()>,
    ) -> io::Result<()> {
        let mut tries = 0;
        let (tmp, fd) = loop {
            let tmp = OsString::from(format!(
                ".{}.{:016x}.envmod-tmp",
                name.to_string_lossy(),
                random_u64()
            ));
            match openat(
                &self.0.fd,
                tmp.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                mode_bits(0o666),
            ) {
                Ok(fd) => break (tmp, fd),
                Err(Errno::EEXIST) if tries < 8 => tries += 1,
                Err(e) => return Err(e.into()),
            }
        };
        let result = (|| -> io::Result<()> {
            let mut file = File::from(fd);
            fill(&mut file)?;
            if let Some(mode) = mode {
                fchmod(&file, mode_bits(mode))?;
            }
            nix::fcntl::renameat(&self.0.fd, tmp.as_os_str(), &self.0.fd, name)?;
            Ok(())
        })();
        if result.is_err() {
            let _ = unlinkat(&self.0.fd, tmp.as_os_str(), UnlinkatFlags::NoRemoveDir);
        }
        result
    }

    /// Give the regular file `name` an inode of its own: a copy, made new beside it with its
    /// mode, renamed over it.
    fn copy_in_place(&self, name: &OsStr) -> io::Result<()> {
        let fd = openat(
            &self.0.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        let meta = Meta::from(fstat(&fd)?);
        if meta.kind != Kind::File {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a regular file", self.path.join(name).display()),
            ));
        }
        let mut src = File::from(fd);
        self.replace_file(name, Some(meta.mode & 0o777), &mut |file| {
            io::copy(&mut src, file).map(|_| ())
        })
    }

    fn kind_of(&self, name: &OsStr, kind: Option<Kind>) -> io::Result<Kind> {
        match kind {
            Some(k) => Ok(k),
            None => Ok(self.meta_at(name)?.kind),
        }
    }
}

/// Whether a symbolic link may be followed on the way to a place envmod writes: one this
/// user or root made, or one made by the owner of a directory nobody else can write (who
/// controls what is there anyway). A link someone else put in a directory the group can
/// write is theirs to point anywhere, such as into this user's home.
fn trusted_link(link: &Meta, dir: &Meta) -> bool {
    link.uid == me() || link.uid == 0 || (link.uid == dir.uid && dir.mode & 0o022 == 0)
}

/// The effective uid, asked once: envmod never changes it.
fn me() -> u32 {
    static ME: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *ME.get_or_init(|| geteuid().as_raw())
}

fn errno(e: &io::Error) -> Option<Errno> {
    e.raw_os_error().map(Errno::from_raw)
}

/// Visit every entry below `root`, each directory before what is in it. Links are visited,
/// never followed; an entry that vanishes while the walk runs is skipped.
pub(crate) fn walk_below(root: &Dir, visit: &mut dyn FnMut(&Node) -> Result<()>) -> Result<()> {
    walk_dir(root, visit, 0)
}

/// Give every regular file below `root` that has other hard links an inode of its own, so
/// that modes given to the tree (a group's write access) reach no other tree: a package
/// cache, or another environment built from it, shares those inodes. Returns how many files
/// were copied.
pub(crate) fn separate_links(root: &Dir) -> Result<u64> {
    separate_in(root, 0)
}

fn separate_in(dir: &Dir, depth: usize) -> Result<u64> {
    if depth >= MAX_DEPTH {
        return Err(too_deep(dir));
    }
    let mut copied = 0;
    let entries = dir
        .entries()
        .with_context(|| format!("failed to read {}", dir.path.display()))?;
    for (name, _) in entries {
        let meta = match dir.meta_at(&name) {
            Ok(m) => m,
            Err(e) if errno(&e) == Some(Errno::ENOENT) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("failed to read {}", dir.path.join(&name).display()));
            }
        };
        match meta.kind {
            Kind::Dir => copied += separate_in(&dir.open_dir(&name)?, depth + 1)?,
            Kind::File if meta.nlink > 1 => {
                dir.copy_in_place(&name).with_context(|| {
                    format!("failed to copy {}", dir.path.join(&name).display())
                })?;
                copied += 1;
            }
            _ => {}
        }
    }
    Ok(copied)
}

fn walk_dir(dir: &Dir, visit: &mut dyn FnMut(&Node) -> Result<()>, depth: usize) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep(dir));
    }
    let entries = dir
        .entries()
        .with_context(|| format!("failed to read {}", dir.path.display()))?;
    for (name, kind) in entries {
        let opened = match kind {
            // Listed as a directory: opened as one straight away, and as whatever it is now
            // if that was refused.
            Some(Kind::Dir) => dir
                .open_dir(&name)
                .map(|d| d.0)
                .or_else(|_| dir.node(&name)),
            _ => dir.node(&name),
        };
        let node = match opened {
            Ok(n) => n,
            Err(e) if matches!(errno(&e), Some(Errno::ENOENT | Errno::EAGAIN)) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("failed to open {}", dir.path.join(&name).display()));
            }
        };
        visit(&node)?;
        if node.meta.kind == Kind::Dir {
            walk_dir(&Dir(node), visit, depth + 1)?;
        }
    }
    Ok(())
}

fn too_deep(dir: &Dir) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is more than {MAX_DEPTH} directories deep; envmod does not go further",
        dir.path.display()
    )
}

// ----------------------------------------------------------------------------- blockers

/// A directory whose entries this user cannot remove, and so the tree that holds it.
#[derive(Debug, Clone)]
pub(crate) struct Blocker {
    pub(crate) path: PathBuf,
    pub(crate) owner: u32,
    pub(crate) mode: u32,
    pub(crate) group: u32,
    /// The group of the directory it is in: the one its owner can give it.
    pub(crate) parent_group: u32,
}

impl Blocker {
    fn new(path: PathBuf, meta: &Meta, parent: &Meta) -> Self {
        Self {
            path,
            owner: meta.uid,
            mode: meta.mode,
            group: meta.gid,
            parent_group: parent.gid,
        }
    }
}

/// Whether this user can remove every entry of the directory `dir`, which holds `entries`.
/// The owner of a directory can always open it up (the removal does), so only other
/// people's directories block.
fn blocks(dir: &Dir, entries: &[(OsString, Option<Kind>)]) -> bool {
    let m = &dir.meta;
    let me = me();
    if entries.is_empty() || me == 0 || m.uid == me {
        return false;
    }
    let bits = if super::in_group(m.gid) {
        (m.mode >> 3) & 0o7
    } else {
        m.mode & 0o7
    };
    if bits & 0o3 != 0o3 {
        return true;
    }
    // Sticky: only the owner of an entry may remove it.
    m.mode & 0o1000 != 0
        && entries
            .iter()
            .any(|(name, _)| dir.meta_at(name).is_ok_and(|e| e.uid != me))
}

/// The directories below `root` (and `root` itself) that keep this user from removing it.
pub(crate) fn blockers(root: &Path) -> Result<Vec<Blocker>> {
    let dir = Dir::open(root).with_context(|| format!("failed to open {}", root.display()))?;
    let mut found = Vec::new();
    let parent = dir.meta;
    scan(&dir, &parent, &mut found, 0)?;
    Ok(found)
}

fn scan(dir: &Dir, parent: &Meta, found: &mut Vec<Blocker>, depth: usize) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep(dir));
    }
    let entries = match dir.entries() {
        Ok(e) => e,
        Err(e) if errno(&e) == Some(Errno::EACCES) => {
            found.push(Blocker::new(dir.path.clone(), &dir.meta, parent));
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", dir.path.display())),
    };
    if blocks(dir, &entries) {
        found.push(Blocker::new(dir.path.clone(), &dir.meta, parent));
    }
    for (name, kind) in &entries {
        if !matches!(dir.kind_of(name, *kind), Ok(Kind::Dir)) {
            continue;
        }
        match dir.open_dir(name) {
            Ok(sub) => scan(&sub, &dir.meta, found, depth + 1)?,
            Err(e) if errno(&e) == Some(Errno::EACCES) => {
                if let Ok(m) = dir.meta_at(name) {
                    found.push(Blocker::new(dir.path.join(name), &m, &dir.meta));
                }
            }
            Err(_) => {}
        }
    }
    Ok(())
}

// -------------------------------------------------------------------------------- clone

/// A new tree made by [`clone_tree`].
#[derive(Debug)]
pub(crate) struct Cloned {
    /// Its root, mode 0700 until the caller opens it up.
    pub(crate) root: Dir,
    /// Directories of the source that this user could not remove (see [`blockers`]),
    /// found on the way; a directory it could not read is among them and was not cloned.
    pub(crate) blockers: Vec<Blocker>,
}

/// Recreate `src` as `name` in `parent`: directories with their modes, symlinks as they
/// are, regular files as hard links, or as copies under the directories named in `copied`
/// (which keep no symlinks: nothing envmod or rattler writes there is one) and where a link
/// is refused. The new root is made mode 0700, so nobody else can reach
/// into the clone while it is built; every entry is created new (`mkdirat`, `symlinkat`,
/// `linkat`, `O_CREAT|O_EXCL|O_NOFOLLOW`), so nothing is ever written through a link.
pub(crate) fn clone_tree(src: &Dir, parent: &Dir, name: &OsStr, copied: &[&str]) -> Result<Cloned> {
    let root = parent
        .make_dir(name, 0o700)
        .with_context(|| format!("failed to create {}", parent.path.join(name).display()))?;
    let mut cloned = Cloned {
        root,
        blockers: Vec::new(),
    };
    let mut blockers = Vec::new();
    let from_parent = src.meta;
    clone_dir(
        src,
        &from_parent,
        &cloned.root,
        copied,
        false,
        &mut blockers,
        0,
    )?;
    cloned.blockers = blockers;
    Ok(cloned)
}

fn clone_dir(
    src: &Dir,
    src_parent: &Meta,
    dst: &Dir,
    copied: &[&str],
    copy_files: bool,
    blockers: &mut Vec<Blocker>,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep(src));
    }
    if copy_files {
        crate::failpoint::hit("clone:copying");
    }
    let entries = match src.entries() {
        Ok(e) => e,
        Err(e) if errno(&e) == Some(Errno::EACCES) => {
            blockers.push(Blocker::new(src.path.clone(), &src.meta, src_parent));
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("failed to read {}", src.path.display())),
    };
    if blocks(src, &entries) {
        blockers.push(Blocker::new(src.path.clone(), &src.meta, src_parent));
    }
    for (name, kind) in entries {
        let from = src.path.join(&name);
        let kind = match src.kind_of(&name, kind) {
            Ok(k) => k,
            Err(e) if errno(&e) == Some(Errno::ENOENT) => continue,
            Err(e) => return Err(e).with_context(|| format!("failed to read {}", from.display())),
        };
        let copy = copy_files || copied.iter().any(|d| name.as_bytes() == d.as_bytes());
        match kind {
            Kind::Dir => {
                let sub = match src.open_dir(&name) {
                    Ok(d) => d,
                    // Gone, or swapped for something else since it was listed.
                    Err(e)
                        if matches!(
                            errno(&e),
                            Some(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR)
                        ) =>
                    {
                        continue;
                    }
                    Err(e) if errno(&e) == Some(Errno::EACCES) => {
                        if let Ok(m) = src.meta_at(&name) {
                            blockers.push(Blocker::new(from, &m, &src.meta));
                        }
                        continue;
                    }
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("failed to open {}", from.display()));
                    }
                };
                let to = dst.make_dir(&name, 0o700).with_context(|| {
                    format!("failed to create {}", dst.path.join(&name).display())
                })?;
                to.set_mode(sub.meta.mode)
                    .with_context(|| format!("failed to set the mode of {}", to.path.display()))?;
                clone_dir(&sub, &src.meta, &to, copied, copy, blockers, depth + 1)?;
            }
            // envmod and rattler keep only regular files in the copied directories: a link
            // there is someone else's, and the new tree goes without it.
            Kind::Symlink if copy_files => {}
            Kind::Symlink => copy_link(src, dst, &name)?,
            Kind::File if !copy => link_or_copy(src, dst, &name)?,
            Kind::File => copy_file(src, dst, &name, !copy_files)?,
            // A FIFO or socket: linked where allowed, never opened.
            Kind::Other => {
                let _ = linkat(
                    &src.0.fd,
                    name.as_os_str(),
                    &dst.0.fd,
                    name.as_os_str(),
                    AtFlags::empty(),
                );
            }
        }
    }
    Ok(())
}

fn copy_link(src: &Dir, dst: &Dir, name: &OsStr) -> Result<()> {
    let target = match readlinkat(&src.0.fd, name) {
        Ok(t) => t,
        Err(Errno::ENOENT | Errno::EINVAL) => return Ok(()),
        Err(e) => {
            return Err(io::Error::from(e))
                .with_context(|| format!("failed to read {}", src.path.join(name).display()));
        }
    };
    symlinkat(target.as_os_str(), &dst.0.fd, name)
        .map_err(io::Error::from)
        .with_context(|| format!("failed to copy link {}", src.path.join(name).display()))
}

/// `linkat` without `AT_SYMLINK_FOLLOW`: what is linked is the entry itself, even if it
/// became a link since it was listed.
fn link_or_copy(src: &Dir, dst: &Dir, name: &OsStr) -> Result<()> {
    match linkat(&src.0.fd, name, &dst.0.fd, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        // Another filesystem, a full link count, or another user's file that the kernel's
        // protected_hardlinks keeps from being linked.
        Err(Errno::EXDEV | Errno::EPERM | Errno::EMLINK | Errno::EACCES) => {
            copy_file(src, dst, name, true)
        }
        Err(e) => Err(io::Error::from(e))
            .with_context(|| format!("failed to link {}", src.path.join(name).display())),
    }
}

/// Copy the regular file `name`; if it became a link since it was listed, the link is
/// copied as one when `links`, and left out otherwise.
fn copy_file(src: &Dir, dst: &Dir, name: &OsStr, links: bool) -> Result<()> {
    let from_path = src.path.join(name);
    let from = match openat(
        &src.0.fd,
        name,
        OFlag::O_RDONLY
            | OFlag::O_NOFOLLOW
            | OFlag::O_NONBLOCK
            | OFlag::O_NOCTTY
            | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::ELOOP) if links => return copy_link(src, dst, name),
        Err(Errno::ELOOP) => return Ok(()),
        Err(e) => {
            return Err(io::Error::from(e))
                .with_context(|| format!("failed to copy {}", from_path.display()));
        }
    };
    let meta = Meta::from(fstat(&from).map_err(io::Error::from)?);
    if meta.kind != Kind::File {
        return Ok(());
    }
    let to = openat(
        &dst.0.fd,
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(io::Error::from)
    .with_context(|| format!("failed to create {}", dst.path.join(name).display()))?;
    let (mut from, mut to) = (File::from(from), File::from(to));
    io::copy(&mut from, &mut to)
        .with_context(|| format!("failed to copy {}", from_path.display()))?;
    // Never a set-id bit: the copy belongs to whoever runs envmod, not to the file's owner.
    fchmod(to.as_fd(), mode_bits(meta.mode & 0o777)).map_err(io::Error::from)?;
    Ok(())
}

// ------------------------------------------------------------------------------- remove

/// A tree that could not be removed whole; what could be removed is gone.
#[derive(Debug)]
pub(crate) struct RemoveError {
    pub(crate) path: PathBuf,
    pub(crate) error: io::Error,
    /// The directories whose entries this user cannot remove.
    pub(crate) blockers: Vec<Blocker>,
}

impl std::fmt::Display for RemoveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed to remove {}: {}",
            self.path.display(),
            self.error
        )
    }
}

impl std::error::Error for RemoveError {}

#[derive(Default)]
struct Removal {
    blockers: Vec<Blocker>,
    error: Option<io::Error>,
}

impl Removal {
    fn fail(&mut self, e: io::Error) {
        self.error.get_or_insert(e);
    }
}

/// Remove `path` and everything below it. A symlink is removed itself, never followed, at
/// the top as below. Each directory this user owns is first closed to everyone else, so a
/// member of the group cannot add entries while it is emptied; if something below it cannot
/// be removed, it gets its mode back, so that whoever owns that can still reach it.
pub(crate) fn remove_tree(path: &Path) -> Result<(), RemoveError> {
    let fail = |error: io::Error, blockers: Vec<Blocker>| RemoveError {
        path: path.to_path_buf(),
        error,
        blockers,
    };
    let (parent, name) = match Dir::parent_of(path) {
        Ok(p) => p,
        Err(e) if errno(&e) == Some(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(fail(e, Vec::new())),
    };
    let mut removal = Removal::default();
    let above = parent.meta;
    remove_entry(&parent, &above, name, None, &mut removal, 0);
    if removal.blockers.is_empty() && removal.error.is_none() {
        return Ok(());
    }
    let error = removal
        .error
        .unwrap_or_else(|| io::Error::from(io::ErrorKind::PermissionDenied));
    Err(fail(error, removal.blockers))
}

fn remove_entry(
    dir: &Dir,
    parent: &Meta,
    name: &OsStr,
    kind: Option<Kind>,
    removal: &mut Removal,
    depth: usize,
) {
    let kind = match dir.kind_of(name, kind) {
        Ok(k) => k,
        Err(e) if errno(&e) == Some(Errno::ENOENT) => return,
        Err(e) => return removal.fail(e),
    };
    if kind == Kind::Dir {
        match dir.open_dir(name) {
            Ok(sub) => return remove_dir(dir, parent, name, &sub, removal, depth),
            Err(e) if errno(&e) == Some(Errno::ENOENT) => return,
            Err(e) if errno(&e) == Some(Errno::EACCES) => {
                if let Ok(m) = dir.meta_at(name) {
                    removal
                        .blockers
                        .push(Blocker::new(dir.path.join(name), &m, &dir.meta));
                }
                return;
            }
            // Swapped for a link or a file since it was listed: removed as one below.
            Err(_) => {}
        }
    }
    match unlinkat(&dir.0.fd, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => {}
        Err(Errno::EACCES | Errno::EPERM) => blocked(dir, parent, removal),
        Err(Errno::EISDIR) => remove_entry(dir, parent, name, Some(Kind::Dir), removal, depth),
        Err(e) => removal.fail(e.into()),
    }
}

/// Empty `sub` (the directory `name` in `dir`), then remove it. A writer still in it
/// (another thread of this process, or a member's directory this user cannot close) may add
/// an entry between the listing and the removal: then it is emptied again.
fn remove_dir(
    dir: &Dir,
    parent: &Meta,
    name: &OsStr,
    sub: &Dir,
    removal: &mut Removal,
    depth: usize,
) {
    for attempt in 0..3 {
        if !empty(sub, &dir.meta, removal, depth + 1) {
            return;
        }
        match unlinkat(&dir.0.fd, name, UnlinkatFlags::RemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => return,
            Err(Errno::ENOTEMPTY | Errno::EEXIST) if attempt < 2 => {}
            Err(Errno::EACCES | Errno::EPERM) => return blocked(dir, parent, removal),
            Err(e) => return removal.fail(e.into()),
        }
    }
}

fn blocked(dir: &Dir, parent: &Meta, removal: &mut Removal) {
    if !removal.blockers.iter().any(|b| b.path == dir.path) {
        removal
            .blockers
            .push(Blocker::new(dir.path.clone(), &dir.meta, parent));
    }
}

/// Remove everything in `dir`; whether all of it went.
fn empty(dir: &Dir, parent: &Meta, removal: &mut Removal, depth: usize) -> bool {
    if depth >= MAX_DEPTH {
        removal.fail(io::Error::other(too_deep(dir).to_string()));
        return false;
    }
    let mine = dir.meta.uid == me();
    let closed = mine && dir.meta.mode != 0o700 && dir.set_mode(0o700).is_ok();
    let (blockers, failed) = (removal.blockers.len(), removal.error.is_some());
    match dir.entries() {
        Ok(entries) => {
            for (name, kind) in entries {
                remove_entry(dir, parent, &name, kind, removal, depth);
            }
        }
        Err(e) if errno(&e) == Some(Errno::EACCES) => {
            removal
                .blockers
                .push(Blocker::new(dir.path.clone(), &dir.meta, parent))
        }
        Err(e) => removal.fail(e),
    }
    let emptied = removal.blockers.len() == blockers && removal.error.is_some() == failed;
    if !emptied && closed {
        let _ = dir.set_mode(dir.meta.mode);
    }
    emptied
}

// --------------------------------------------------------------------------------- held

impl Dir {
    /// A path that names this directory for as long as it is held open, whatever happens to
    /// its name: `/proc/PID/fd/N` of this process, which only this user (and root) can
    /// resolve. Steps
    /// that take a path (rattler, and the interpreter the pyc compile and pip run) work in a
    /// tree others could rename below a directory they can write; through this path they
    /// stay in it. The pid is the one `/proc` knows, which in a container may differ from
    /// `getpid()`.
    pub(crate) fn held_path(&self) -> PathBuf {
        static PID: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        let pid = PID.get_or_init(|| {
            std::fs::read_link("/proc/self")
                .unwrap_or_else(|_| PathBuf::from(std::process::id().to_string()))
        });
        Path::new("/proc")
            .join(pid)
            .join("fd")
            .join(self.0.fd.as_raw_fd().to_string())
    }

    /// The descriptor and the identity of the directory, for a signal handler that must
    /// find it again (see [`current_place_of`]).
    pub(crate) fn held(&self) -> Held {
        Held {
            fd: self.0.fd.as_raw_fd(),
            dev: self.meta.dev,
            ino: self.meta.ino,
        }
    }

    /// Rename the entry `name` of this directory to `to_name` in `to`, with `renameat2`
    /// `flags` (`RENAME_EXCHANGE`, `RENAME_NOREPLACE` or none). Both ends are named from
    /// descriptors: an entry of a directory nobody else can write is the one envmod put
    /// there.
    pub(crate) fn rename_entry(
        &self,
        name: &OsStr,
        to: &Dir,
        to_name: &OsStr,
        flags: u32,
    ) -> io::Result<()> {
        nix::fcntl::renameat2(
            &self.0.fd,
            name,
            &to.0.fd,
            to_name,
            nix::fcntl::RenameFlags::from_bits_retain(flags),
        )
        .map_err(io::Error::from)
    }
}

/// A directory held open, as a signal handler may use it: its descriptor (valid while the
/// [`Dir`] it came from lives) and its identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Held {
    fd: i32,
    dev: u64,
    ino: u64,
}

/// Where the directory `held` is now: the path the kernel gives its descriptor, if that path
/// still names it (not when it was removed, or when someone renamed another directory onto
/// the name since).
pub(crate) fn current_place_of(held: Held) -> Option<PathBuf> {
    let now = std::fs::read_link(format!("/proc/self/fd/{}", held.fd)).ok()?;
    if !now.is_absolute() {
        return None;
    }
    let st = fstatat(AT_FDCWD, &now, AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
    ((st.st_dev, st.st_ino) == (held.dev, held.ino)).then_some(now)
}

/// Remove the directory `dir` holds and everything in it, wherever its name is now: a member
/// of the group that can write its parent may have renamed it. What is in it is removed
/// through its descriptor; its own name goes only if that name still leads to it.
pub(crate) fn remove_held(dir: &Dir) -> Result<(), RemoveError> {
    let mut removal = Removal::default();
    let meta = dir.meta;
    if empty(dir, &meta, &mut removal, 0)
        && let Some(now) = current_place_of(dir.held())
    {
        let result = Dir::parent_of(&now).and_then(|(parent, name)| {
            let m = parent.meta_at(name)?;
            if (m.dev, m.ino) != (meta.dev, meta.ino) {
                return Ok(());
            }
            match unlinkat(&parent.0.fd, name, UnlinkatFlags::RemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => Ok(()),
                Err(e) => Err(e.into()),
            }
        });
        if let Err(e) = result {
            removal.fail(e);
        }
    }
    if removal.blockers.is_empty() && removal.error.is_none() {
        return Ok(());
    }
    Err(RemoveError {
        path: current_place_of(dir.held()).unwrap_or_else(|| dir.path.clone()),
        error: removal
            .error
            .unwrap_or_else(|| io::Error::from(io::ErrorKind::PermissionDenied)),
        blockers: removal.blockers,
    })
}

// -------------------------------------------------------------------------------- links

/// A symbolic link in a tree that leads out of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Escape {
    /// The link, relative to the root of the tree.
    pub(crate) link: PathBuf,
    pub(crate) target: PathBuf,
}

/// More links than this on the way, and the kernel gives up (`ELOOP`); so does envmod.
const MAX_HOPS: u32 = 40;

/// The symbolic links below `root` that lead out of it, so that whatever writes or removes
/// files below `root` by path could be taken outside: an absolute target; a relative one
/// whose `..` climbs above `root`, itself or through another link on the way; and one whose
/// `..` follows a name that is not there (something may make it a link later). `allowed`
/// are the links (relative path and target) that may lead out, which envmod made itself; as
/// a step on the way to somewhere else they lead out too.
pub(crate) fn escaping_links(root: &Dir, allowed: &[(PathBuf, PathBuf)]) -> Result<Vec<Escape>> {
    let mut links = Vec::new();
    links_below(root, Path::new(""), &mut links, 0)?;
    let mut out = Vec::new();
    for (link, target) in links {
        if allowed.iter().any(|(l, t)| *l == link && *t == target) {
            continue;
        }
        let mut at: Vec<OsString> = link
            .parent()
            .into_iter()
            .flat_map(Path::components)
            .map(|c| c.as_os_str().to_os_string())
            .collect();
        let mut hops = 0;
        let inside = resolve(root, &mut at, &target, allowed, &mut hops)
            .with_context(|| format!("failed to follow {}", root.path.join(&link).display()))?;
        if !inside {
            out.push(Escape { link, target });
        }
    }
    Ok(out)
}

/// Every symbolic link below `dir` (which is `rel` below the root), with its target, but for
/// those that plainly stay beside themselves. Files are not opened: the kind the directory
/// gives is enough.
fn links_below(
    dir: &Dir,
    rel: &Path,
    links: &mut Vec<(PathBuf, PathBuf)>,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        return Err(too_deep(dir));
    }
    let entries = dir
        .entries()
        .with_context(|| format!("failed to read {}", dir.path.display()))?;
    for (name, kind) in entries {
        let kind = match dir.kind_of(&name, kind) {
            Ok(k) => k,
            Err(e) if errno(&e) == Some(Errno::ENOENT) => continue,
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("failed to read {}", dir.path.join(&name).display()));
            }
        };
        match kind {
            Kind::Dir => {
                let sub = dir.open_dir(&name).with_context(|| {
                    format!("failed to open {}", dir.path.join(&name).display())
                })?;
                links_below(&sub, &rel.join(&name), links, depth + 1)?;
            }
            Kind::Symlink => {
                let target =
                    PathBuf::from(readlinkat(&dir.0.fd, name.as_os_str()).with_context(|| {
                        format!("failed to read {}", dir.path.join(&name).display())
                    })?);
                // Most links name a file beside them (`libfoo.so -> libfoo.so.1`): if that is
                // no link itself, the link stays inside, and one look settles it.
                let beside = target.components().count() == 1
                    && matches!(
                        target.components().next(),
                        Some(std::path::Component::Normal(_))
                    );
                if beside
                    && dir.meta_at(target.as_os_str()).map_or_else(
                        |e| errno(&e) == Some(Errno::ENOENT),
                        |m| m.kind != Kind::Symlink,
                    )
                {
                    continue;
                }
                links.push((rel.join(&name), target));
            }
            Kind::File | Kind::Other => {}
        }
    }
    Ok(())
}

/// Follow `target` from the directory `at` (names below `root`), as the kernel would, links
/// on the way included; `at` becomes where it leads. Whether it stays inside `root`.
fn resolve(
    root: &Dir,
    at: &mut Vec<OsString>,
    target: &Path,
    allowed: &[(PathBuf, PathBuf)],
    hops: &mut u32,
) -> io::Result<bool> {
    let mut missing = false;
    for c in target.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                if missing || at.pop().is_none() {
                    return Ok(false);
                }
            }
            std::path::Component::Normal(name) => {
                at.push(name.to_os_string());
                if missing {
                    continue;
                }
                match kind_beneath(root, at)? {
                    None => missing = true,
                    Some(Kind::Symlink) => {
                        *hops += 1;
                        let rel: PathBuf = at.iter().collect();
                        if *hops > MAX_HOPS || allowed.iter().any(|(l, _)| *l == rel) {
                            return Ok(false);
                        }
                        let next = Node::open_beneath(root, &rel)?;
                        let next = PathBuf::from(readlinkat(&next.fd, "")?);
                        at.pop();
                        if !resolve(root, at, &next, allowed, hops)? {
                            return Ok(false);
                        }
                    }
                    Some(_) => {}
                }
            }
            std::path::Component::RootDir | std::path::Component::Prefix(_) => return Ok(false),
        }
    }
    Ok(true)
}

/// What the entry `names` below `root` is, not following it; `None` when it is not there
/// (or a name on the way is not a directory, where the kernel stops too).
fn kind_beneath(root: &Dir, names: &[OsString]) -> io::Result<Option<Kind>> {
    let Some((last, dirs)) = names.split_last() else {
        return Ok(Some(Kind::Dir));
    };
    let mut dir: Option<Dir> = None;
    for name in dirs {
        match dir.as_ref().unwrap_or(root).open_dir(name) {
            Ok(next) => dir = Some(next),
            Err(e) if matches!(errno(&e), Some(Errno::ENOENT | Errno::ENOTDIR)) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    match dir.as_ref().unwrap_or(root).meta_at(last) {
        Ok(m) => Ok(Some(m.kind)),
        Err(e) if matches!(errno(&e), Some(Errno::ENOENT | Errno::ENOTDIR)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Unpredictable enough for a temporary name that someone else may try to guess.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn a_clone_links_files_copies_metadata_keeps_links_and_starts_private() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("env");
        std::fs::create_dir_all(src.join("lib/pkg")).unwrap();
        std::fs::create_dir_all(src.join("conda-meta")).unwrap();
        std::fs::write(src.join("lib/pkg/mod.py"), "x = 1\n").unwrap();
        std::fs::write(src.join("conda-meta/pkg.json"), "{}").unwrap();
        std::fs::write(src.join("conda-meta/tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src.join("conda-meta/tool"),
            std::fs::Permissions::from_mode(0o4755),
        )
        .unwrap();
        std::fs::set_permissions(src.join("lib"), std::fs::Permissions::from_mode(0o2775)).unwrap();
        symlink("lib", src.join("lib64")).unwrap();
        symlink("/nonexistent/target", src.join("lib/dangling")).unwrap();
        symlink("/nonexistent/target", src.join("conda-meta/planted")).unwrap();

        let from = Dir::open(&src).unwrap();
        let parent = Dir::open(dir.path()).unwrap();
        let cloned = clone_tree(&from, &parent, OsStr::new("clone"), &["conda-meta"]).unwrap();
        let dst = dir.path().join("clone");
        assert!(cloned.blockers.is_empty());
        assert_eq!(current_place_of(cloned.root.held()), Some(dst.clone()));
        assert_eq!(mode(&dst), 0o700, "the clone's root starts private");
        assert_eq!(mode(&dst.join("lib")), 0o2775);
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
            std::fs::read_to_string(dst.join("conda-meta/pkg.json")).unwrap(),
            "{}"
        );
        assert_eq!(
            mode(&dst.join("conda-meta/tool")),
            0o755,
            "a copy keeps no set-id bit"
        );
        assert_eq!(
            std::fs::read_link(dst.join("lib64")).unwrap(),
            Path::new("lib")
        );
        assert_eq!(
            std::fs::read_link(dst.join("lib/dangling")).unwrap(),
            Path::new("/nonexistent/target")
        );
        assert!(
            dst.join("conda-meta/planted").symlink_metadata().is_err(),
            "a link in a copied directory is left out"
        );
    }

    #[test]
    fn a_clone_refuses_a_root_someone_else_made_first() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("env");
        std::fs::create_dir(&src).unwrap();
        std::fs::create_dir(dir.path().join("clone")).unwrap();
        let err = clone_tree(
            &Dir::open(&src).unwrap(),
            &Dir::open(dir.path()).unwrap(),
            OsStr::new("clone"),
            &[],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("File exists"), "{err:#}");
    }

    #[test]
    fn removing_a_tree_removes_links_and_never_what_they_point_to() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("precious"), "x").unwrap();
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("a/b")).unwrap();
        std::fs::write(tree.join("a/b/f"), "y").unwrap();
        symlink(&victim, tree.join("a/link")).unwrap();
        std::fs::set_permissions(tree.join("a"), std::fs::Permissions::from_mode(0o555)).unwrap();
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert!(victim.join("precious").is_file());

        // A link at the top is removed as a link.
        let top = dir.path().join("top");
        symlink(&victim, &top).unwrap();
        remove_tree(&top).unwrap();
        assert!(top.symlink_metadata().is_err());
        assert!(victim.join("precious").is_file());
        remove_tree(&dir.path().join("never-was")).unwrap();
    }

    #[test]
    fn a_walk_visits_links_without_following_them() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), "").unwrap();
        symlink(&outside, root.join("sub/link")).unwrap();
        let mut seen = Vec::new();
        walk_below(&Dir::open(&root).unwrap(), &mut |n| {
            seen.push((
                n.path().strip_prefix(&root).unwrap().to_path_buf(),
                n.meta().kind,
            ));
            Ok(())
        })
        .unwrap();
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                (PathBuf::from("sub"), Kind::Dir),
                (PathBuf::from("sub/file"), Kind::File),
                (PathBuf::from("sub/link"), Kind::Symlink),
            ]
        );
        assert!(
            Dir::open(&root.join("sub/link")).is_err(),
            "a link is not a directory"
        );
    }

    #[test]
    fn a_node_changes_the_file_it_opened_even_after_a_swap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        let private = dir.path().join("private");
        std::fs::write(&file, "").unwrap();
        std::fs::write(&private, "").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        let node = Node::open(&file).unwrap();
        std::fs::rename(&file, dir.path().join("moved")).unwrap();
        symlink(&private, &file).unwrap();
        node.set_mode(0o644).unwrap();
        assert_eq!(mode(&dir.path().join("moved")), 0o644);
        assert_eq!(mode(&private), 0o600);
        assert_eq!(Node::open(&file).unwrap().meta().kind, Kind::Symlink);
    }

    #[test]
    fn a_path_beneath_a_root_never_passes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("env");
        let elsewhere = dir.path().join("elsewhere");
        std::fs::create_dir_all(root.join("meta")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(root.join("meta/file"), "").unwrap();
        std::fs::write(elsewhere.join("file"), "").unwrap();
        symlink(&elsewhere, root.join("link")).unwrap();
        let r = Dir::open(&root).unwrap();
        let node = Node::open_beneath(&r, Path::new("meta/file")).unwrap();
        assert_eq!(node.meta().kind, Kind::File);
        let err = Node::open_beneath(&r, Path::new("link/file")).unwrap_err();
        assert!(
            matches!(errno(&err), Some(Errno::ELOOP | Errno::ENOTDIR)),
            "{err}"
        );
        assert!(Node::open_beneath(&r, Path::new("../env/meta/file")).is_err());
    }
}

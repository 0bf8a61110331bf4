//! Paths to remove if envmod is interrupted. A signal handler (installed in `main`) takes
//! the same mutex that guards every rename into place, so it sees either "staging dir exists"
//! or "final prefix exists", never a moment in between.

use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use crate::fs::tree::{self, RemoveError};

/// A path to remove on an interrupt, and for a staging directory, the directory itself as
/// envmod holds it open: someone who can write the directory it is in may have renamed it.
pub(crate) struct Pending {
    path: PathBuf,
    held: Option<tree::Held>,
}

static PENDING: Mutex<Vec<Pending>> = Mutex::new(Vec::new());

/// Set once a change has reached the disk and only its outputs are left to write: an
/// interrupt from then on must say what it left, not that nothing was changed.
static COMMITTED: Mutex<Option<String>> = Mutex::new(None);

pub(crate) fn set_committed(what: Option<String>) {
    *COMMITTED.lock().unwrap_or_else(|e| e.into_inner()) = what;
}

/// What an interrupt leaves behind, for the line the signal handler prints.
pub(crate) fn interrupted_message() -> String {
    COMMITTED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .unwrap_or_else(|| "nothing was left half-made".into())
}

fn pending() -> MutexGuard<'static, Vec<Pending>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes its directory when dropped, or when the process is interrupted, unless the work
/// was finished with `finish_with`. Created only for directories envmod itself made.
#[derive(Debug)]
pub(crate) struct CleanupGuard {
    path: PathBuf,
    armed: bool,
}

impl CleanupGuard {
    /// Create the directory, mode 0700, and guard it in one step, so an interrupt cannot
    /// arrive between the two and leave an unguarded directory behind. It stays private
    /// until `swap::open_up`: in a directory a group can write, nobody else can reach into
    /// it while it is built.
    pub(crate) fn create_private(path: &Path) -> std::io::Result<(Self, tree::Dir)> {
        let mut list = pending();
        std::fs::DirBuilder::new().mode(0o700).create(path)?;
        list.push(Pending::at(path));
        let guard = Self {
            path: path.to_path_buf(),
            armed: true,
        };
        let dir = tree::Dir::open(path)?;
        let me = nix::unistd::geteuid().as_raw();
        if dir.meta().uid != me || dir.meta().mode & 0o077 != 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} was replaced as it was made", path.display()),
            ));
        }
        Ok((guard, dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Run the last step of the work and keep the directory, with the signal handler held off
    /// throughout: an interrupt then finds the work either undone or complete, never a
    /// finished last step (a modulefile, say) next to a removed directory.
    pub(crate) fn finish_with<T>(
        mut self,
        last: impl FnOnce() -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut list = pending();
        let result = last();
        if result.is_ok() {
            list.retain(|p| p.path != self.path);
            self.armed = false;
        }
        drop(list);
        result
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if self.armed {
            let mut list = pending();
            let _ = tree::remove_tree(&self.path);
            list.retain(|p| p.path != self.path);
        }
    }
}

impl Pending {
    fn at(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            held: None,
        }
    }
}

/// The directory a create or a change builds its tree in: `.NAME.envmod-staging` beside the
/// environment, this user's, holding the tree as `tree` (`swap::TREE`). It is held open from
/// the moment it is made, and every step works through descriptors or through the
/// descriptor's path ([`tree::Dir::held_path`]), so a member of the group that can write the
/// envs directory may rename it, or put a directory of its own at its name, and change
/// nothing: the tree is moved into place from this directory's descriptor, and nobody else
/// can change what is in it (mode 0711: it can be entered, not listed or written, so the
/// owner of a file left in an old tree can still reach it). It is removed where it is,
/// when dropped or on an interrupt.
#[derive(Debug)]
pub(crate) struct Staging {
    /// The directory it is in: the envs directory.
    parent: tree::Dir,
    dir: tree::Dir,
    armed: bool,
}

impl Staging {
    /// Make the directory `path` and guard it in one step.
    pub(crate) fn create(path: &Path) -> std::io::Result<Self> {
        let (parent, name) = tree::Dir::parent_of(path)?;
        let mut list = pending();
        let dir = parent.make_dir(name, 0o700)?;
        list.push(Pending {
            path: path.to_path_buf(),
            held: Some(dir.held()),
        });
        // Setgid where the envs directory is, so the tree gets its group as a plain mkdir would.
        dir.set_mode(0o711 | (parent.meta().mode & 0o2000))?;
        Ok(Self {
            parent,
            dir,
            armed: true,
        })
    }

    /// The directory, for `swap::clone_tree` to clone into.
    pub(crate) fn dir(&self) -> &tree::Dir {
        &self.dir
    }

    /// A new, empty tree: mode 0700, so nobody else can reach into it while it is built.
    pub(crate) fn make_tree(&self) -> std::io::Result<tree::Dir> {
        self.dir
            .make_dir(std::ffi::OsStr::new(crate::env::swap::TREE), 0o700)
    }

    /// Where the directory is now, for messages.
    pub(crate) fn path(&self) -> PathBuf {
        tree::current_place_of(self.dir.held()).unwrap_or_else(|| self.dir.path().to_path_buf())
    }

    /// Move the new tree to `real`, where nothing may be yet, and guard it there (an output
    /// that fails removes it), with no window in which an interrupt would find neither. The
    /// staging directory, now empty, goes.
    pub(crate) fn move_into(mut self, real: &Path) -> std::io::Result<CleanupGuard> {
        let name = real.file_name().ok_or(std::io::ErrorKind::InvalidInput)?;
        let tree = std::ffi::OsStr::new(crate::env::swap::TREE);
        let mut list = pending();
        match self
            .dir
            .rename_entry(tree, &self.parent, name, libc::RENAME_NOREPLACE)
        {
            // Filesystems without the flag (some network filesystems): a plain rename, which
            // cannot replace a directory that has entries.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                self.dir.rename_entry(tree, &self.parent, name, 0)?
            }
            result => result?,
        }
        let held = self.dir.held();
        list.retain(|p| p.held != Some(held));
        list.push(Pending::at(real));
        self.armed = false;
        let _ = tree::remove_held(&self.dir);
        Ok(CleanupGuard {
            path: real.to_path_buf(),
            armed: true,
        })
    }

    /// Swap the new tree with the live one at `real` in one step; afterwards the old tree is
    /// in this directory, and goes with it. Filesystems without `RENAME_EXCHANGE` get two
    /// renames, with the live tree moved aside first under a name the next command finds.
    pub(crate) fn exchange_with(&self, real: &Path) -> anyhow::Result<()> {
        use anyhow::Context;
        let name = real
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} has no file name", real.display()))?;
        let tree = std::ffi::OsStr::new(crate::env::swap::TREE);
        let _list = pending();
        let failed = |e: std::io::Error| {
            anyhow::Error::from(e).context(format!(
                "failed to swap the new tree of {} into place",
                real.display()
            ))
        };
        match self
            .dir
            .rename_entry(tree, &self.parent, name, libc::RENAME_EXCHANGE)
        {
            Ok(()) => return Ok(()),
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
                ) => {}
            Err(e) => return Err(failed(e)),
        }
        let aside = crate::env::swap::swap_aside(real);
        let aside_name = aside
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("{} has no file name", aside.display()))?;
        self.parent
            .rename_entry(name, &self.parent, aside_name, 0)
            .with_context(|| format!("failed to move {} aside", real.display()))?;
        self.dir
            .rename_entry(tree, &self.parent, name, 0)
            .with_context(|| format!("failed to move the new tree into {}", real.display()))?;
        self.parent
            .rename_entry(aside_name, &self.dir, tree, 0)
            .with_context(|| format!("failed to move {} back", aside.display()))
    }

    /// Remove the directory now, saying what kept any of it there.
    pub(crate) fn discard(mut self) -> Result<(), RemoveError> {
        self.remove()
    }

    fn remove(&mut self) -> Result<(), RemoveError> {
        let mut list = pending();
        self.armed = false;
        let result = tree::remove_held(&self.dir);
        let held = self.dir.held();
        list.retain(|p| p.held != Some(held));
        result
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.remove();
        }
    }
}

/// A file written under a temporary name beside where it goes (a bundle, say), removed when
/// dropped or when the process is interrupted, unless `persist` renamed it into place.
#[derive(Debug)]
pub(crate) struct PendingFile {
    path: PathBuf,
    file: std::fs::File,
    armed: bool,
}

impl PendingFile {
    /// Create `.NAME.XXXXXX.envmod-tmp` beside `out`, new (`O_EXCL`, never through a link)
    /// and guarded in one step.
    pub(crate) fn beside(out: &Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = out
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = out
            .file_name()
            .ok_or_else(|| std::io::Error::other("the path has no file name"))?
            .to_string_lossy();
        let (file, path) = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".envmod-tmp")
            .disable_cleanup(true)
            .make_in(dir, |path| {
                let mut list = pending();
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .read(true)
                    .create_new(true)
                    .mode(0o666)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                    .open(path)?;
                list.push(Pending::at(path));
                Ok(file)
            })?
            .into_parts();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            armed: true,
        })
    }

    pub(crate) fn file(&mut self) -> &mut std::fs::File {
        &mut self.file
    }

    /// Rename the file onto `out`, with the signal handler held off: an interrupt finds
    /// either the temporary file, which it removes, or the finished one.
    pub(crate) fn persist(mut self, out: &Path) -> std::io::Result<()> {
        let mut list = pending();
        std::fs::rename(&self.path, out)?;
        list.retain(|p| p.path != self.path);
        self.armed = false;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.armed {
            let mut list = pending();
            let _ = std::fs::remove_file(&self.path);
            list.retain(|p| p.path != self.path);
        }
    }
}

/// Called from the signal handler: remove everything still pending. The returned guard keeps
/// other threads from renaming anything until the process exits. A staging directory is
/// removed where it is now, and only if that is still it; a directory someone else put at
/// its old name is theirs.
pub(crate) fn remove_pending() -> MutexGuard<'static, Vec<Pending>> {
    super::undo::set_interrupted();
    super::undo::wait_for_self_undoing();
    let list = pending();
    for p in list.iter() {
        let path = match p.held {
            Some(held) => match tree::current_place_of(held) {
                Some(now) => now,
                None => continue,
            },
            None => p.path.clone(),
        };
        if path.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            let _ = std::fs::remove_file(&path);
        } else {
            remove_under_writers(&path);
        }
    }
    list
}

/// Where `dir` is moved while it is removed after an interrupt (see `remove_under_writers`).
pub(crate) fn removing_path(dir: &Path) -> PathBuf {
    let mut name = dir.as_os_str().to_os_string();
    name.push(".envmod-removing");
    PathBuf::from(name)
}

/// Remove `dir` while other threads may still be writing into it: an install links files in
/// parallel and creates parent directories as it goes, so a plain `remove_dir_all` can fail
/// with "directory not empty" or race with a writer that recreates a subdirectory. The
/// directory is first renamed aside, so later writes by its path no longer resolve into it;
/// the aside copy is then removed (retrying while in-flight writes land, which for a staging
/// tree, written through its descriptor, still go on until the process exits), and the whole
/// step is repeated while the original path keeps reappearing. What is still left, the next
/// command on the environment removes.
fn remove_under_writers(dir: &Path) {
    let aside = removing_path(dir);
    for _ in 0..20 {
        if dir.symlink_metadata().is_err() && aside.symlink_metadata().is_err() {
            return;
        }
        if dir.symlink_metadata().is_ok() && std::fs::rename(dir, &aside).is_err() {
            let _ = tree::remove_tree(dir);
        }
        let _ = tree::remove_tree(&aside);
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staging_directory_renamed_away_still_moves_its_own_tree_and_goes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".e.envmod-staging");
        let staging = Staging::create(&path).unwrap();
        let tree = staging.make_tree().unwrap();
        // Someone who can write the envs directory renames it, and puts their own in its place.
        let stolen = dir.path().join("stolen");
        std::fs::rename(&path, &stolen).unwrap();
        std::fs::create_dir_all(path.join("tree/bin")).unwrap();
        std::fs::write(path.join("tree/bin/python"), "theirs").unwrap();
        std::fs::write(tree.held_path().join("mine"), "built here").unwrap();
        assert_eq!(staging.path(), stolen);
        let real = dir.path().join("e");
        let guard = staging.move_into(&real).unwrap();
        assert_eq!(
            std::fs::read_to_string(real.join("mine")).unwrap(),
            "built here"
        );
        assert!(
            !stolen.exists(),
            "the staging directory goes, wherever it is"
        );
        assert_eq!(
            std::fs::read_to_string(path.join("tree/bin/python")).unwrap(),
            "theirs",
            "a directory someone else put at its name is theirs"
        );
        guard.finish_with(|| Ok(())).unwrap();
        assert!(real.join("mine").exists());
    }

    #[test]
    fn an_exchange_swaps_in_the_new_tree_and_the_old_one_goes_with_the_staging_directory() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("e");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("which"), "old").unwrap();
        let path = dir.path().join(".e.envmod-staging");
        let staging = Staging::create(&path).unwrap();
        let tree = staging.make_tree().unwrap();
        std::fs::write(tree.held_path().join("which"), "new").unwrap();
        std::fs::rename(&path, dir.path().join("stolen")).unwrap();
        staging.exchange_with(&real).unwrap();
        assert_eq!(std::fs::read_to_string(real.join("which")).unwrap(), "new");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("stolen/tree/which")).unwrap(),
            "old"
        );
        staging.discard().unwrap();
        assert!(!dir.path().join("stolen").exists());
        // Dropped without finishing: the staging directory and what is in it go.
        let staging = Staging::create(&path).unwrap();
        staging.make_tree().unwrap();
        drop(staging);
        assert!(!path.exists());
    }
}

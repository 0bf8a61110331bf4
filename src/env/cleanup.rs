//! Paths to remove if envmod is interrupted. A signal handler (installed in `main`) takes
//! the same mutex that guards every rename into place, so it sees either "staging dir exists"
//! or "final prefix exists", never a moment in between.

use std::{
    os::unix::fs::DirBuilderExt,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use crate::fs::tree::{self, RemoveError};

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

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

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
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
    /// Guard a directory that some later step creates (a clone, say).
    pub(crate) fn new(path: &Path) -> Self {
        pending().push(path.to_path_buf());
        Self {
            path: path.to_path_buf(),
            armed: true,
        }
    }

    /// Create the directory, mode 0700, and guard it in one step, so an interrupt cannot
    /// arrive between the two and leave an unguarded directory behind. It stays private
    /// until `swap::open_up`: in a directory a group can write, nobody else can reach into
    /// it while it is built.
    pub(crate) fn create_private(path: &Path) -> std::io::Result<(Self, tree::Dir)> {
        let mut list = pending();
        std::fs::DirBuilder::new().mode(0o700).create(path)?;
        list.push(path.to_path_buf());
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

    /// Rename the guarded directory to `to` and keep guarding it there, with no window in
    /// which an interrupt would find neither.
    pub(crate) fn rename(&mut self, to: &Path) -> std::io::Result<()> {
        let mut list = pending();
        std::fs::rename(&self.path, to)?;
        list.retain(|p| p != &self.path);
        list.push(to.to_path_buf());
        self.path = to.to_path_buf();
        Ok(())
    }

    /// Swap the guarded directory with `live` (see `swap::exchange`). Afterwards the guard
    /// holds what was live, and removes it when dropped.
    pub(crate) fn exchange_with(&self, live: &Path) -> anyhow::Result<()> {
        let _list = pending();
        crate::env::swap::exchange(&self.path, live)
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
            list.retain(|p| p != &self.path);
            self.armed = false;
        }
        drop(list);
        result
    }

    /// Remove the directory now, saying what kept any of it there.
    pub(crate) fn discard(mut self) -> Result<(), RemoveError> {
        let mut list = pending();
        self.armed = false;
        let result = tree::remove_tree(&self.path);
        list.retain(|p| p != &self.path);
        result
    }
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        if self.armed {
            let mut list = pending();
            let _ = tree::remove_tree(&self.path);
            list.retain(|p| p != &self.path);
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
                list.push(path.to_path_buf());
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
        list.retain(|p| p != &self.path);
        self.armed = false;
        Ok(())
    }
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if self.armed {
            let mut list = pending();
            let _ = std::fs::remove_file(&self.path);
            list.retain(|p| p != &self.path);
        }
    }
}

/// Called from the signal handler: remove everything still pending. The returned guard keeps
/// other threads from renaming anything until the process exits.
pub(crate) fn remove_pending() -> MutexGuard<'static, Vec<PathBuf>> {
    let list = pending();
    for p in list.iter() {
        if p.symlink_metadata().is_ok_and(|m| !m.is_dir()) {
            let _ = std::fs::remove_file(p);
        } else {
            remove_under_writers(p);
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
/// directory is first renamed aside, so later writes no longer resolve into it; the aside
/// copy is then removed (retrying while in-flight writes land), and the whole step is repeated
/// while the original path keeps reappearing.
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

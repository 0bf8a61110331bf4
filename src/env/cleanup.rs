//! Paths to remove if envmod is interrupted. A signal handler (installed in `main`) takes
//! the same mutex that guards every rename into place, so it sees either "staging dir exists"
//! or "final prefix exists", never a moment in between.

use std::{
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn pending() -> MutexGuard<'static, Vec<PathBuf>> {
    PENDING.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes its directory when dropped, or when the process is interrupted, unless the work
/// was finished with `finish_with`. Created only for directories envmod itself made.
#[derive(Debug)]
pub struct CleanupGuard {
    path: PathBuf,
    armed: bool,
}

impl CleanupGuard {
    pub fn new(path: &Path) -> Self {
        pending().push(path.to_path_buf());
        Self {
            path: path.to_path_buf(),
            armed: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the guarded directory to `to` and keep guarding it there, with no window in
    /// which an interrupt would find neither.
    pub fn rename(&mut self, to: &Path) -> std::io::Result<()> {
        let mut list = pending();
        std::fs::rename(&self.path, to)?;
        list.retain(|p| p != &self.path);
        list.push(to.to_path_buf());
        self.path = to.to_path_buf();
        Ok(())
    }

    /// Swap the guarded directory with `live` (see `swap::exchange`). Afterwards the guard
    /// holds what was live, and removes it when dropped.
    pub fn exchange_with(&self, live: &Path) -> anyhow::Result<()> {
        let _list = pending();
        crate::env::swap::exchange(&self.path, live)
    }

    /// Run the last step of the work and keep the directory, with the signal handler held off
    /// throughout: an interrupt then finds the work either undone or complete, never a
    /// finished last step (a modulefile, say) next to a removed directory.
    pub fn finish_with<T>(mut self, last: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let mut list = pending();
        let result = last();
        if result.is_ok() {
            list.retain(|p| p != &self.path);
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
            let _ = std::fs::remove_dir_all(&self.path);
            list.retain(|p| p != &self.path);
        }
    }
}

/// Called from the signal handler: remove everything still pending. The returned guard keeps
/// other threads from renaming anything until the process exits.
pub fn remove_pending() -> MutexGuard<'static, Vec<PathBuf>> {
    let list = pending();
    for p in list.iter() {
        let _ = std::fs::remove_dir_all(p);
    }
    list
}

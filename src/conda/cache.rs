//! Leftovers of package extractions that were killed midway. rattler extracts a package into
//! a temporary `.<name-version-build><6 random characters>` directory beside its cache entry
//! and renames it into place; a SIGKILL or power cut in between leaves the temporary directory
//! behind, and nothing ever removes it. On a shared cache that is gigabytes over a semester.

use std::{
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

/// The lock rattler holds on a package cache for a whole installation, extraction included.
const GLOBAL_LOCK: &str = ".cache.lock";

/// Random characters tempfile appends to the prefix rattler gives it.
const RANDOM_LEN: usize = 6;

/// Remove leftover extraction directories from every cache in `pkgs_dirs` whose lock can be
/// taken right now. A cache that is locked is in use by another installation, whose
/// extractions in progress look exactly like leftovers, so it is left alone. Best effort:
/// nothing here may stop an installation.
pub(crate) fn clean_stale_extractions(pkgs_dirs: &[PathBuf]) {
    for dir in pkgs_dirs {
        let Some(_lock) = try_lock(&dir.join(GLOBAL_LOCK)) else {
            continue;
        };
        for leftover in leftovers(dir) {
            let _ = std::fs::remove_dir_all(&leftover);
        }
    }
}

/// An exclusive, non-blocking lock on an existing lock file; the same `flock` rattler takes.
/// A cache without the lock file has never been written by rattler and holds no leftovers.
fn try_lock(path: &Path) -> Option<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .ok()?;
    // SAFETY: flock on a descriptor this function owns; the lock ends when `file` is closed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    (rc == 0).then_some(file)
}

/// Temporary extraction directories in one cache: hidden directories named after a cache
/// entry whose metadata file (`<entry>.lock`, written before extraction starts) exists, plus
/// the random suffix. Anything else, cache entries and users' files alike, never matches.
fn leftovers(cache: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter(|e| {
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                return false;
            };
            let Some(rest) = name.strip_prefix('.') else {
                return false;
            };
            if rest.len() <= RANDOM_LEN || !rest.is_char_boundary(rest.len() - RANDOM_LEN) {
                return false;
            }
            let (entry, random) = rest.split_at(rest.len() - RANDOM_LEN);
            random.chars().all(|c| c.is_ascii_alphanumeric())
                && cache.join(format!("{entry}.lock")).is_file()
        })
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_with_leftover() -> (tempfile::TempDir, PathBuf, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().to_path_buf();
        std::fs::write(cache.join(GLOBAL_LOCK), "").unwrap();
        let entry = cache.join("alpha-1.0-pyh_0");
        std::fs::create_dir_all(entry.join("info")).unwrap();
        std::fs::write(cache.join("alpha-1.0-pyh_0.lock"), "").unwrap();
        let leftover = cache.join(".alpha-1.0-pyh_0Ab3xZ9");
        std::fs::create_dir_all(leftover.join("site-packages")).unwrap();
        (dir, entry, leftover)
    }

    #[test]
    fn leftovers_go_and_everything_else_stays() {
        let (dir, entry, leftover) = cache_with_leftover();
        // Hidden directories that are not extractions of a known entry stay.
        let other = dir.path().join(".config-abcdef");
        std::fs::create_dir_all(&other).unwrap();
        let short = dir.path().join(".abc");
        std::fs::create_dir_all(&short).unwrap();
        clean_stale_extractions(&[dir.path().to_path_buf()]);
        assert!(!leftover.exists());
        assert!(entry.join("info").is_dir());
        assert!(other.is_dir() && short.is_dir());
    }

    #[test]
    fn a_locked_cache_is_left_alone() {
        let (dir, _entry, leftover) = cache_with_leftover();
        let held = try_lock(&dir.path().join(GLOBAL_LOCK)).expect("lock");
        clean_stale_extractions(&[dir.path().to_path_buf()]);
        assert!(
            leftover.is_dir(),
            "removed while another install held the lock"
        );
        drop(held);
        clean_stale_extractions(&[dir.path().to_path_buf()]);
        assert!(!leftover.exists());
    }

    #[test]
    fn a_cache_rattler_never_wrote_is_left_alone() {
        let (dir, _entry, leftover) = cache_with_leftover();
        std::fs::remove_file(dir.path().join(GLOBAL_LOCK)).unwrap();
        clean_stale_extractions(&[dir.path().to_path_buf(), dir.path().join("missing")]);
        assert!(leftover.is_dir());
    }
}

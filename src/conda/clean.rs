//! What a package cache holds that nothing uses any more, and its removal.
//!
//! A cache is shared in two ways: environments hard-link its files (an environment of another
//! account, which this user cannot see, shows only as a link count above one), and other
//! accounts may read it or, in a cache a group writes, put entries of their own in it. So an
//! entry goes only when this user owns all of it, no file of it has another link, and no
//! environment this user can see names it; everything else stays. The cache is opened once
//! and every entry is opened from its descriptor without following a link, so a link someone
//! planted in the cache (to this user's home, say) is an entry of theirs, never a way in.
//! Removal happens under rattler's own cache lock, which an installation that writes the
//! cache holds from its first extraction to its last link, and one that only reads it
//! (another account's, through `readonly_pkgs_dirs`) holds shared from its first read to its
//! last link, so no installation is ever left linking from an entry that is going.

use std::{
    collections::HashMap,
    ffi::{OsStr, OsString},
    fs::File,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::fs::tree::{self, Kind};

/// rattler's cache lock (`CacheGlobalLock`): an exclusive `flock` on this file in the cache.
const LOCK_FILE: &str = ".cache.lock";

/// How long clean waits for an installation to let go of the cache before it leaves it.
const LOCK_WAIT: Duration = Duration::from_secs(2);

/// Held while a cache is cleaned; the lock ends when it is dropped.
pub(crate) struct CacheLock {
    _file: File,
}

/// Take rattler's lock on the cache `dir`, creating its lock file as rattler would (never
/// through a link someone put at its name). `Ok(None)`: an installation holds it.
pub(crate) fn lock(dir: &Path) -> Result<Option<CacheLock>, String> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => {
                let owner = std::fs::metadata(dir)
                    .map(|m| owner(std::os::unix::fs::MetadataExt::uid(&m)))
                    .unwrap_or_else(|_| "someone else".into());
                format!("you cannot write it (it is {owner}'s), so envmod cannot take its lock")
            }
            _ => format!("cannot open its lock {}: {e}", path.display()),
        })?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err(format!("its lock {} is not a regular file", path.display()));
    }
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(CacheLock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }
}

/// Space and inodes, as a quota counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Size {
    pub(crate) bytes: u64,
    pub(crate) files: u64,
}

impl Size {
    pub(crate) fn add(&mut self, meta: &tree::Meta) {
        self.bytes += meta.blocks * 512;
        self.files += 1;
    }
}

/// An entry nothing uses, held open until it is removed.
pub(crate) struct Unused {
    pub(crate) path: PathBuf,
    pub(crate) size: Size,
    /// A package archive (`.conda`, `.tar.bz2`) rather than an extracted package.
    pub(crate) archive: bool,
    name: OsString,
    /// The wheel directory it is in, if not the cache itself.
    within: Option<Arc<tree::Dir>>,
    held: Held,
}

enum Held {
    Dir(tree::Dir),
    File((u64, u64)),
}

/// What one cache holds: the entries that can go, and the others with why they stay.
pub(crate) struct Scan {
    pub(crate) unused: Vec<Unused>,
    pub(crate) kept: Vec<(PathBuf, String)>,
}

/// Sort the entries of `cache` (held under its lock). `in_use`: whether an environment names
/// the entry `name-version-build`. `leaving`: links of files that go with the leftovers
/// being removed too (on a dry run, still there), which keep no entry in use.
pub(crate) fn scan(
    cache: &tree::Dir,
    in_use: &dyn Fn(&str) -> bool,
    leaving: &HashMap<(u64, u64), u64>,
) -> std::io::Result<Scan> {
    let mut scan = Scan {
        unused: Vec::new(),
        kept: Vec::new(),
    };
    scan_dir(cache, None, in_use, leaving, &mut scan)?;
    Ok(scan)
}

/// rattler's converted wheels, `wheels-v<conversion version>`: entries of the same kind as
/// the cache's own (extracted packages with `info/`, `.lock` beside them), one level down,
/// which the environments linked from them name in the same way.
fn is_wheel_dir(name: &str) -> bool {
    name.strip_prefix("wheels-v")
        .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
}

/// Sort the entries of `dir`: the cache itself (`within` None), or its wheel directory.
fn scan_dir(
    dir: &tree::Dir,
    within: Option<&Arc<tree::Dir>>,
    in_use: &dyn Fn(&str) -> bool,
    leaving: &HashMap<(u64, u64), u64>,
    scan: &mut Scan,
) -> std::io::Result<()> {
    let cache = dir;
    let mut entries = cache.entries()?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind) in entries {
        let Some(text) = name.to_str() else { continue };
        // Hidden names are rattler's locks and extractions in progress, and `.lock` files
        // go with their entries.
        if text.starts_with('.') || text.ends_with(".lock") {
            continue;
        }
        let path = cache.path().join(&name);
        if within.is_none() && is_wheel_dir(text) && matches!(kind, Some(Kind::Dir) | None) {
            // Opened without following a link, like every entry.
            let Ok(wheels) = cache.open_dir(&name) else {
                continue;
            };
            let wheels = Arc::new(wheels);
            if let Err(e) = scan_dir(&wheels, Some(&wheels), in_use, leaving, scan) {
                scan.kept.push((path, format!("cannot list it: {e}")));
            }
            continue;
        }
        let archive_stem = text
            .strip_suffix(".conda")
            .or_else(|| text.strip_suffix(".tar.bz2"));
        let judged = match (kind, archive_stem) {
            (Some(Kind::File) | None, Some(_)) => judge_archive(cache, &name),
            (Some(Kind::Dir) | None, _) => judge_dir(cache, &name, leaving),
            _ => continue,
        };
        let (held, size) = match judged {
            Judged::NotAnEntry => continue,
            Judged::Kept(why) => {
                scan.kept.push((path, why));
                continue;
            }
            Judged::Unused(held, size) => (held, size),
        };
        if in_use(archive_stem.unwrap_or(text)) {
            scan.kept
                .push((path, "an environment you can see uses it".into()));
            continue;
        }
        scan.unused.push(Unused {
            path,
            size,
            archive: archive_stem.is_some(),
            name,
            within: within.cloned(),
            held,
        });
    }
    Ok(())
}

enum Judged {
    NotAnEntry,
    Kept(String),
    Unused(Held, Size),
}

fn owner(uid: u32) -> String {
    crate::fs::user_name(uid).unwrap_or_else(|| uid.to_string())
}

fn me() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// An extracted package: a directory (never a link to one) with `info/` in it.
fn judge_dir(cache: &tree::Dir, name: &OsStr, leaving: &HashMap<(u64, u64), u64>) -> Judged {
    let Ok(dir) = cache.open_dir(name) else {
        return Judged::NotAnEntry;
    };
    if !dir
        .meta_at(OsStr::new("info"))
        .is_ok_and(|m| m.kind == Kind::Dir)
    {
        return Judged::NotAnEntry;
    }
    if dir.meta().uid != me() {
        return Judged::Kept(format!("it belongs to {}", owner(dir.meta().uid)));
    }
    let mut size = Size::default();
    size.add(dir.meta());
    let mut kept: Option<String> = None;
    let walked = tree::walk_below(&dir, &mut |node| {
        let m = node.meta();
        let links = m.nlink - leaving.get(&m.id()).copied().unwrap_or(0);
        kept = if m.uid != me() {
            Some(format!("it holds files of {}", owner(m.uid)))
        } else if m.kind == Kind::File && links > 1 {
            Some("its files are linked into an environment (perhaps another account's)".into())
        } else {
            size.add(m);
            return Ok(());
        };
        anyhow::bail!("kept")
    });
    if let Some(why) = kept {
        return Judged::Kept(why);
    }
    if let Err(e) = walked {
        return Judged::Kept(format!("{e:#}"));
    }
    if let Ok(m) = cache.meta_at(&sidecar(name))
        && m.kind == Kind::File
        && m.uid == me()
    {
        size.add(&m);
    }
    Judged::Unused(Held::Dir(dir), size)
}

/// A package archive: a regular file of this user's with no other link.
fn judge_archive(cache: &tree::Dir, name: &OsStr) -> Judged {
    let Ok(m) = cache.meta_at(name) else {
        return Judged::NotAnEntry;
    };
    if m.kind != Kind::File {
        return Judged::NotAnEntry;
    }
    if m.uid != me() {
        return Judged::Kept(format!("it belongs to {}", owner(m.uid)));
    }
    if m.nlink > 1 {
        return Judged::Kept("it has another link".into());
    }
    let mut size = Size::default();
    size.add(&m);
    Judged::Unused(Held::File(m.id()), size)
}

/// rattler's metadata file of an entry, `<entry>.lock`.
fn sidecar(name: &OsStr) -> OsString {
    let mut lock = name.to_os_string();
    lock.push(".lock");
    lock
}

/// Remove an unused entry, as it was judged: the directory held open (wherever its name is
/// now), then its metadata file; an archive only if its name still leads to the same file.
pub(crate) fn remove(cache: &tree::Dir, entry: Unused) -> Result<(), String> {
    let cache = entry.within.as_deref().unwrap_or(cache);
    match entry.held {
        Held::Dir(dir) => {
            tree::remove_held(&dir).map_err(|e| crate::fs::blocked::explain(&e).0)?;
            let lock = sidecar(&entry.name);
            if let Ok(m) = cache.meta_at(&lock)
                && m.kind == Kind::File
                && m.uid == me()
            {
                let _ = cache.remove_at(&lock, false);
            }
            Ok(())
        }
        Held::File(id) => match cache.meta_at(&entry.name) {
            Ok(m) if m.id() == id && m.uid == me() => cache
                .remove_at(&entry.name, false)
                .map_err(|e| format!("cannot remove {}: {e}", entry.path.display())),
            _ => Ok(()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, tree::Dir) {
        let dir = tempfile::tempdir().unwrap();
        for entry in ["used-1.0-0", "free-1.0-0", "linked-1.0-0"] {
            std::fs::create_dir_all(dir.path().join(entry).join("info")).unwrap();
            std::fs::write(dir.path().join(entry).join("info/index.json"), "{}").unwrap();
            std::fs::write(dir.path().join(format!("{entry}.lock")), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("not-a-package")).unwrap();
        std::fs::write(dir.path().join("old-1.0-0.conda"), "zip").unwrap();
        let elsewhere = dir.path().join("elsewhere");
        std::fs::hard_link(dir.path().join("linked-1.0-0/info/index.json"), &elsewhere).unwrap();
        let held = tree::Dir::open(dir.path()).unwrap();
        (dir, held)
    }

    #[test]
    fn only_entries_nothing_uses_go() {
        let (dir, held) = cache();
        let _lock = lock(dir.path()).unwrap().expect("free");
        let scan = scan(&held, &|n| n == "used-1.0-0", &HashMap::new()).unwrap();
        let names = |v: Vec<&PathBuf>| -> Vec<String> {
            v.iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            names(scan.unused.iter().map(|u| &u.path).collect()),
            ["free-1.0-0", "old-1.0-0.conda"]
        );
        assert_eq!(
            names(scan.kept.iter().map(|k| &k.0).collect()),
            ["linked-1.0-0", "used-1.0-0"]
        );
        assert!(scan.unused.iter().all(|u| u.size.bytes > 0));
        for u in scan.unused {
            remove(&held, u).unwrap();
        }
        assert!(!dir.path().join("free-1.0-0").exists());
        assert!(!dir.path().join("free-1.0-0.lock").exists());
        assert!(!dir.path().join("old-1.0-0.conda").exists());
        for stays in [
            "used-1.0-0",
            "linked-1.0-0/info",
            "not-a-package",
            "elsewhere",
        ] {
            assert!(dir.path().join(stays).exists(), "{stays}");
        }
    }

    #[test]
    fn converted_wheels_nothing_uses_go_and_count() {
        let (dir, held) = cache();
        let wheels = dir.path().join("wheels-v2");
        for entry in ["wused-1.0-py3_none_any_0", "wfree-1.0-py3_none_any_0"] {
            std::fs::create_dir_all(wheels.join(entry).join("info")).unwrap();
            std::fs::write(wheels.join(entry).join("info/index.json"), "{}").unwrap();
            std::fs::write(wheels.join(format!("{entry}.lock")), "").unwrap();
        }
        // A link in the cache's place for converted wheels is never followed.
        let mine = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(mine.path().join("precious-1.0-0/info")).unwrap();
        std::os::unix::fs::symlink(mine.path(), dir.path().join("wheels-v3")).unwrap();
        let _lock = lock(dir.path()).unwrap().expect("free");
        let in_use = |n: &str| n == "used-1.0-0" || n == "wused-1.0-py3_none_any_0";
        let scan = scan(&held, &in_use, &HashMap::new()).unwrap();
        let free = wheels.join("wfree-1.0-py3_none_any_0");
        let unused: Vec<&PathBuf> = scan.unused.iter().map(|u| &u.path).collect();
        assert!(unused.contains(&&free), "{unused:?}");
        assert!(
            !unused
                .iter()
                .any(|p| p.starts_with(dir.path().join("wheels-v3")))
        );
        assert!(scan.unused.iter().all(|u| u.size.bytes > 0));
        for u in scan.unused {
            remove(&held, u).unwrap();
        }
        assert!(!free.exists());
        assert!(!wheels.join("wfree-1.0-py3_none_any_0.lock").exists());
        assert!(wheels.join("wused-1.0-py3_none_any_0/info").is_dir());
        assert!(mine.path().join("precious-1.0-0/info").is_dir());
    }

    #[test]
    fn a_held_lock_keeps_clean_out() {
        let (dir, _held) = cache();
        let first = lock(dir.path()).unwrap().expect("free");
        assert!(lock(dir.path()).unwrap().is_none(), "locked twice");
        drop(first);
        assert!(lock(dir.path()).unwrap().is_some());
    }

    #[test]
    fn a_link_in_the_cache_is_never_followed() {
        let (dir, held) = cache();
        let mine = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(mine.path().join("info")).unwrap();
        std::fs::write(mine.path().join("precious"), "mine").unwrap();
        std::os::unix::fs::symlink(mine.path(), dir.path().join("evil-1.0-0")).unwrap();
        std::os::unix::fs::symlink(
            mine.path().join("precious"),
            dir.path().join("evil-2.0-0.conda"),
        )
        .unwrap();
        let scan = scan(&held, &|_| false, &HashMap::new()).unwrap();
        assert!(
            scan.unused
                .iter()
                .all(|u| !u.path.to_string_lossy().contains("evil")),
            "a link was taken for an entry"
        );
        for u in scan.unused {
            remove(&held, u).unwrap();
        }
        assert_eq!(
            std::fs::read_to_string(mine.path().join("precious")).unwrap(),
            "mine"
        );
        assert!(mine.path().join("info").is_dir());
    }
}

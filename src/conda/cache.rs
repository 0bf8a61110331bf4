//! The package cache's layers, and who may have written them.
//!
//! envmod links files from a cache entry into environments without reading them again, so
//! whoever can write a cache decides what those environments run. A cache is used only when
//! nobody but its owner (and root) can write it, or replace it, or has put an entry in it:
//! a cache a group shares for writing is refused, and the set-up that shares packages
//! safely is a cache one account fills, read by the others through `readonly_pkgs_dirs`.
//!
//! Leftovers of package extractions that were killed midway are removed here too. rattler
//! extracts a package into a temporary `.<name-version-build><6 random characters>`
//! directory beside its cache entry and renames it into place; a SIGKILL or power cut in
//! between leaves the temporary directory behind, and nothing ever removes it. On a shared
//! cache that is gigabytes over a semester.

use std::{
    collections::HashSet,
    ffi::OsString,
    os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Component, Path, PathBuf},
};

use anyhow::Result;
use rattler::package_cache::PackageCache;
use rattler_cache::validation::ValidationMode;

use crate::error::UserError;

/// The lock rattler holds on a package cache for a whole installation, extraction included.
const GLOBAL_LOCK: &str = ".cache.lock";

/// Random characters tempfile appends to the prefix rattler gives it.
const RANDOM_LEN: usize = 6;

/// The package cache envmod installs from: every `pkgs_dirs` entry, then every
/// `readonly_pkgs_dirs` entry, read in that order; packages are extracted into the first
/// `pkgs_dirs` entry. Refused when someone other than a cache's owner could have put
/// packages in it, or one of the `entries` about to be linked (`name-version-build`).
pub(crate) fn package_cache(
    pkgs_dirs: &[PathBuf],
    readonly: &[PathBuf],
    entries: &[String],
) -> Result<PackageCache> {
    for (i, dir) in pkgs_dirs.iter().enumerate() {
        check_layer(dir, i == 0, Entries::Named(entries))?;
    }
    for dir in readonly {
        check_layer(dir, false, Entries::Named(entries))?;
    }
    Ok(PackageCache::new_layered(
        pkgs_dirs.iter().chain(readonly).cloned(),
        false,
        ValidationMode::default(),
    ))
}

/// Which entries of a cache to look at: the ones an installation links, or all of them.
#[derive(Clone, Copy)]
enum Entries<'a> {
    Named(&'a [String]),
    All,
}

/// What [`package_cache`] would refuse, as problem and fix: the first problem of each layer.
pub(crate) fn layer_problems(pkgs_dirs: &[PathBuf], readonly: &[PathBuf]) -> Vec<(String, String)> {
    let written = pkgs_dirs.iter().enumerate().map(|(i, d)| (d, i == 0));
    let read = readonly.iter().map(|d| (d, false));
    written
        .chain(read)
        .filter_map(|(dir, w)| check_layer(dir, w, Entries::All).err())
        .map(|e| match e.downcast_ref::<UserError>() {
            Some(u) => (u.message.clone(), u.hint.clone().unwrap_or_default()),
            None => (e.to_string(), String::new()),
        })
        .collect()
}

/// Create the cache envmod extracts into, writable by its owner only, whatever the umask:
/// a cache that came out group-writable would be refused by the next command.
pub(crate) fn prepare_written(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755 & !super::dirmodes::current_umask())
        .create(dir)
        .map_err(|e| {
            UserError::failure(format!(
                "cannot create the package cache {}: {e}",
                dir.display()
            ))
            .with_hint("set pkgs_dirs to a directory you can write, or create this one")
        })?;
    Ok(())
}

/// What one installation extracts into the cache it writes gets the modes that the cache
/// directory gives its readers, whatever the umask: an instructor with `umask 077` filling
/// a course's cache would otherwise leave entries, and the lock files that readers open
/// first, that nobody else can open. Lock files are made before rattler opens them, so a
/// reader never finds one it cannot open; directories are fixed once extracted, and a
/// reader that comes in between finds the entry unreadable and extracts its own copy.
pub(crate) struct Fill {
    dir: PathBuf,
    before: HashSet<OsString>,
    dir_mode: u32,
    file_mode: u32,
}

impl Fill {
    /// `stems`: the entries the installation links; those in none of `dir` and `elsewhere`
    /// (the other layers) will be extracted into `dir`.
    pub(crate) fn start(dir: &Path, stems: &[String], elsewhere: &[PathBuf]) -> Option<Self> {
        let mask = super::dirmodes::umask_following(dir, super::dirmodes::current_umask())?;
        let before = std::fs::read_dir(dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        let fill = Fill {
            dir: dir.to_path_buf(),
            before,
            dir_mode: 0o777 & !mask,
            file_mode: 0o666 & !mask,
        };
        fill.create_lock(GLOBAL_LOCK);
        for stem in stems {
            let cached = std::iter::once(dir)
                .chain(elsewhere.iter().map(PathBuf::as_path))
                .any(|d| d.join(stem).is_dir());
            if !cached {
                fill.create_lock(&format!("{stem}.lock"));
            }
        }
        Some(fill)
    }

    /// An empty lock file is what rattler starts from when it makes one itself.
    fn create_lock(&self, name: &str) {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(self.file_mode)
            .open(self.dir.join(name));
        if let Ok(file) = created {
            let _ = file.set_permissions(std::fs::Permissions::from_mode(self.file_mode));
        }
    }

    /// Give what the installation added to the cache its modes. Best effort: a mode left
    /// as it was costs others an extraction of their own, never this installation.
    pub(crate) fn finish(self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            if self.before.contains(&entry.file_name()) {
                continue;
            }
            let path = entry.path();
            match path.symlink_metadata() {
                Ok(m) if m.is_dir() => self.fix_dirs(&path, &m),
                Ok(m) if m.is_file() => set_mode(&path, &m, self.file_mode),
                _ => {}
            }
        }
    }

    /// Directories only: packaged files keep the modes of their archive.
    fn fix_dirs(&self, dir: &Path, meta: &std::fs::Metadata) {
        set_mode(dir, meta, (meta.mode() & 0o7000) | self.dir_mode);
        let Ok(children) = std::fs::read_dir(dir) else {
            return;
        };
        for child in children.filter_map(Result::ok) {
            let path = child.path();
            if let Ok(m) = path.symlink_metadata()
                && m.is_dir()
            {
                self.fix_dirs(&path, &m);
            }
        }
    }
}

fn set_mode(path: &Path, meta: &std::fs::Metadata, mode: u32) {
    if meta.mode() & 0o7777 != mode {
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
}

/// Shared locks on the lock files of the caches `read`, which an installation reads and
/// links from but does not write: a cache's owner cleaning it takes the same lock
/// exclusively, so no entry goes while it is linked from.
/// The lock file is opened for reading only, never created (the cache is someone else's)
/// and never through a link; a cache without one, or one this user cannot open, is read
/// unlocked as before. A clean in progress is waited for, within a bound: after it the
/// installation goes on unlocked rather than hang on a lock its owner never lets go.
/// Returns the locks held, and the caches left unlocked because their lock stayed taken for
/// `wait`.
pub(crate) fn lock_layers(
    written: &Path,
    read: &[PathBuf],
    wait: std::time::Duration,
) -> (Vec<std::fs::File>, Vec<PathBuf>) {
    use std::os::unix::fs::MetadataExt;
    let id = |m: &std::fs::Metadata| (m.dev(), m.ino());
    let written_dir = std::fs::metadata(written).ok().map(|m| id(&m));
    let written_lock = std::fs::symlink_metadata(written.join(GLOBAL_LOCK))
        .ok()
        .map(|m| id(&m));
    let mut held: Vec<(std::fs::File, (u64, u64))> = Vec::new();
    let mut busy = Vec::new();
    for dir in read {
        // rattler holds the written cache's lock exclusively, through another descriptor:
        // a shared lock on the same file here would wait for this very process.
        if std::fs::metadata(dir).ok().map(|m| id(&m)) == written_dir {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(dir.join(GLOBAL_LOCK))
        else {
            continue;
        };
        let Some(lock) = file.metadata().ok().filter(|m| m.is_file()).map(|m| id(&m)) else {
            continue;
        };
        if Some(lock) == written_lock || held.iter().any(|(_, h)| *h == lock) {
            continue;
        }
        let start = std::time::Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => {
                    held.push((file, lock));
                    break;
                }
                Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    busy.push(dir.clone());
                    break;
                }
                Err(std::fs::TryLockError::Error(_)) => break,
            }
        }
    }
    (held.into_iter().map(|(f, _)| f).collect(), busy)
}

/// Whoever besides its owner (and root) can write a file or directory: everyone, or a group
/// that is not the owner's own private group.
fn others_who_can_write(meta: &std::fs::Metadata) -> Option<String> {
    let mode = meta.mode();
    if mode & 0o002 != 0 {
        return Some("everyone".to_string());
    }
    if mode & 0o020 != 0 && !is_private_group(meta.gid(), meta.uid()) {
        return Some(format!("group {}", group_name(meta.gid())));
    }
    None
}

/// Refuse a cache layer that others could have written: the layer itself, any directory
/// above it (which could swap it for another), or an entry in it (a package directory or
/// its `.lock`) that is not its owner's or that others can write. What lies deeper in an
/// entry is not looked at: to change it, one must be able to write the entry, which was
/// made by the same process under the same umask. `written`: envmod extracts into it, so it
/// must be the user's own.
fn check_layer(dir: &Path, written: bool, entries: Entries) -> Result<()> {
    let refuse = |message: String, hint: String| -> anyhow::Error {
        UserError::failure(message).with_hint(hint).into()
    };
    let me = euid();
    let layer = std::fs::metadata(dir).ok().filter(|m| m.is_dir());
    let owner = layer.as_ref().map_or(me, |m| m.uid());
    let trusted = |uid: u32| uid == me || uid == 0 || uid == owner;
    // The path as written (each link in it sits in a directory of the chain) and as
    // resolved; a cache that does not exist yet, as it will be created.
    let mut chains = vec![chain(dir)];
    let mut existing = dir;
    while existing.symlink_metadata().is_err() {
        match existing.parent() {
            Some(p) => existing = p,
            None => break,
        }
    }
    if let (Ok(real), Ok(rest)) = (existing.canonicalize(), dir.strip_prefix(existing)) {
        chains.push(chain(&real.join(rest)));
    }
    // Whether the cache can be reached by others at all: the kernel walks the resolved path,
    // and a directory of the user's (or root's) that nobody else may enter, a home of mode
    // 0700 say, keeps everything below it private, whatever its modes.
    let mut reachable = true;
    for dirs in &chains {
        reachable = true;
        for pair in dirs.windows(2) {
            let (above, below) = (&pair[0], &pair[1]);
            let Ok(meta) = above.symlink_metadata() else {
                break;
            };
            if !meta.is_dir() {
                continue;
            }
            let owned = trusted(meta.uid());
            if owned && meta.mode() & 0o011 == 0 {
                reachable = false;
                break;
            }
            let who = if owned {
                others_who_can_write(&meta)
            } else {
                Some(user_name(meta.uid()))
            };
            let Some(who) = who else {
                continue;
            };
            // A sticky directory (/tmp) lets nobody but its owner rename what others own in
            // it; what does not exist yet there, anyone could make first.
            let sticky = meta.mode() & 0o1000 != 0;
            if owned && sticky && below.symlink_metadata().is_ok_and(|m| trusted(m.uid())) {
                continue;
            }
            return Err(refuse(
                format!(
                    "the package cache {} is inside {}, which {who} can write: they could put a cache of their own in its place",
                    dir.display(),
                    above.display()
                ),
                "move the cache below directories that only you or root can write (pkgs_dirs, readonly_pkgs_dirs)".to_string(),
            ));
        }
    }
    if !reachable {
        return Ok(());
    }
    let Some(meta) = layer else {
        return Ok(());
    };
    if let Some(who) = others_who_can_write(&meta) {
        return Err(refuse(
            format!(
                "the package cache {} can be written by {who}: the packages linked from it could have been changed by someone else",
                dir.display()
            ),
            format!(
                "make it writable by its owner alone (chmod go-w {}), and let others read it with readonly_pkgs_dirs (docs/admin.md, \"Sharing a package cache\")",
                dir.display()
            ),
        ));
    }
    if written && meta.uid() != me {
        return Err(refuse(
            format!(
                "the package cache {} belongs to {}: envmod extracts packages into the first of pkgs_dirs, which must be your own",
                dir.display(),
                user_name(meta.uid())
            ),
            format!(
                "set pkgs_dirs to a directory of your own, and name {} in readonly_pkgs_dirs to read packages from it",
                dir.display()
            ),
        ));
    }
    let paths: Vec<PathBuf> = match entries {
        Entries::Named(stems) => stems
            .iter()
            .flat_map(|stem| [dir.join(stem), dir.join(format!("{stem}.lock"))])
            .collect(),
        // Unreadable: rattler cannot read its entries either.
        Entries::All => std::fs::read_dir(dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default(),
    };
    for entry in paths {
        let Ok(m) = entry.symlink_metadata() else {
            continue;
        };
        let problem = if !trusted(m.uid()) {
            format!("belongs to {}", user_name(m.uid()))
        } else if m.file_type().is_symlink() {
            continue;
        } else if let Some(who) = others_who_can_write(&m) {
            format!("can be written by {who}")
        } else {
            continue;
        };
        let fix = if written {
            format!(
                "remove it (rm -rf {}) and run the command again",
                sh_quote(&entry)
            )
        } else {
            format!(
                "ask {}, who fills the cache, to remove it, or leave {} out of readonly_pkgs_dirs",
                user_name(meta.uid()),
                dir.display()
            )
        };
        return Err(refuse(
            format!(
                "{} in the package cache {} {problem}: envmod links only packages the cache's owner put there",
                entry.display(),
                dir.display()
            ),
            fix,
        ));
    }
    Ok(())
}

/// `/`, `/a`, `/a/b`, … `path`.
fn chain(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    let mut at = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => continue,
            Component::ParentDir => {
                at.pop();
            }
            other => at.push(other),
        }
        out.push(at.clone());
    }
    out
}

fn sh_quote(path: &Path) -> String {
    let s = path.display().to_string();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn user_name(uid: u32) -> String {
    crate::fs::user_name(uid).unwrap_or_else(|| uid.to_string())
}

fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(gid.into()) {
        Ok(Some(group)) => group.name,
        _ => gid.to_string(),
    }
}

/// Whether `gid` is the private group of user `uid` (a group of the user's own name, the
/// user's primary group, with no other member): then group write is the owner's alone.
fn is_private_group(gid: u32, uid: u32) -> bool {
    let Ok(Some(user)) = nix::unistd::User::from_uid(uid.into()) else {
        return false;
    };
    let Ok(Some(group)) = nix::unistd::Group::from_gid(gid.into()) else {
        return false;
    };
    user.gid.as_raw() == gid && group.name == user.name && group.mem.iter().all(|m| *m == user.name)
}

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
    // The lock ends when `file` is closed.
    file.try_lock().is_ok().then_some(file)
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
    fn layers_are_locked_shared_and_a_cleaning_owner_is_waited_for_within_bounds() {
        const WAIT: std::time::Duration = std::time::Duration::from_millis(300);
        let written = tempfile::tempdir().unwrap();
        let (dir, _, _) = cache_with_leftover();
        let read = dir.path().to_path_buf();
        let (missing, planted) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        std::os::unix::fs::symlink(read.join(GLOBAL_LOCK), planted.path().join(GLOBAL_LOCK))
            .unwrap();
        let layers = [
            read.clone(),
            missing.path().to_path_buf(),
            planted.path().to_path_buf(),
            written.path().to_path_buf(),
        ];
        let (held, busy) = lock_layers(written.path(), &layers, WAIT);
        assert_eq!(
            (held.len(), busy.len()),
            (1, 0),
            "one lock, not through the link"
        );
        // A clean's exclusive lock now waits; another installation's shared lock does not.
        assert!(try_lock(&read.join(GLOBAL_LOCK)).is_none());
        assert_eq!(lock_layers(written.path(), &layers, WAIT).0.len(), 1);
        drop(held);
        let clean = try_lock(&read.join(GLOBAL_LOCK)).expect("free once released");
        let start = std::time::Instant::now();
        let (held, busy) = lock_layers(written.path(), &layers, WAIT);
        assert!(held.is_empty() && busy == [read.clone()], "{busy:?}");
        assert!(start.elapsed() >= WAIT);
        drop(clean);
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

    fn refusal(dir: &Path, written: bool) -> String {
        match check_layer(dir, written, Entries::All) {
            Ok(()) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    fn chmod(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_cache_others_can_write_is_refused_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let cache = dir.path().join("pkgs");
        // Not there yet, below a directory only its owner writes: fine, it will be made.
        assert_eq!(refusal(&cache, true), "");
        std::fs::create_dir(&cache).unwrap();
        chmod(&cache, 0o755);
        assert_eq!(refusal(&cache, true), "");
        chmod(&cache, 0o777);
        assert!(refusal(&cache, true).contains("can be written by everyone"));
        assert!(refusal(&cache, false).contains("can be written by everyone"));
        chmod(&cache, 0o755);
        // An entry others can write.
        let entry = cache.join("alpha-1.0-0");
        std::fs::create_dir(&entry).unwrap();
        chmod(&entry, 0o777);
        let why = refusal(&cache, true);
        assert!(
            why.contains("alpha-1.0-0") && why.contains("everyone"),
            "{why}"
        );
        chmod(&entry, 0o755);
        // A directory above it that others can write, without the sticky bit…
        chmod(dir.path(), 0o777);
        assert!(refusal(&cache, true).contains("is inside"));
        assert!(refusal(&dir.path().join("new"), true).contains("is inside"));
        // …and with it, as /tmp: what its owner made there stays theirs, but a cache not
        // made yet could be made first by anyone.
        chmod(dir.path(), 0o1777);
        assert_eq!(refusal(&cache, true), "");
        assert!(refusal(&dir.path().join("new"), true).contains("is inside"));
        chmod(dir.path(), 0o700);
    }

    #[test]
    fn a_cache_nobody_else_can_reach_is_private_whatever_its_modes() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let cache = home.join(".cache/pkgs");
        std::fs::create_dir_all(&cache).unwrap();
        chmod(&cache, 0o777);
        chmod(&home, 0o755);
        assert!(refusal(&cache, true).contains("can be written by everyone"));
        chmod(&home, 0o700);
        assert_eq!(refusal(&cache, true), "");
    }

    #[test]
    fn links_are_judged_where_they_point_and_where_they_sit() {
        let dir = tempfile::tempdir().unwrap();
        chmod(dir.path(), 0o755);
        let open = dir.path().join("open");
        let real = open.join("pkgs");
        std::fs::create_dir_all(&real).unwrap();
        chmod(&open, 0o777);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(refusal(&link, true).contains("is inside"));
        chmod(&open, 0o755);
        assert_eq!(refusal(&link, true), "");
    }

    #[test]
    fn what_an_installation_extracts_follows_the_cache_directory() {
        use std::os::unix::fs::DirBuilderExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("pkgs");
        std::fs::create_dir(&cache).unwrap();
        chmod(&cache, 0o2750);
        std::fs::create_dir(cache.join("old-1.0-0")).unwrap();
        chmod(&cache.join("old-1.0-0"), 0o700);
        let fill = Fill::start(&cache, &["new-1.0-0".into(), "old-1.0-0".into()], &[]).unwrap();
        let mode = |p: &str| cache.join(p).symlink_metadata().unwrap().mode() & 0o7777;
        assert_eq!(mode("new-1.0-0.lock"), 0o640);
        assert_eq!(mode(GLOBAL_LOCK), 0o640);
        assert!(!cache.join("old-1.0-0.lock").exists());
        // What rattler extracts under a strict umask.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(cache.join("new-1.0-0/info"))
            .unwrap();
        chmod(&cache.join("new-1.0-0"), 0o2700);
        chmod(&cache.join("new-1.0-0/info"), 0o2700);
        std::fs::write(cache.join("new-1.0-0/info/index.json"), "{}").unwrap();
        chmod(&cache.join("new-1.0-0/info/index.json"), 0o644);
        fill.finish();
        assert_eq!(mode("new-1.0-0"), 0o2750);
        assert_eq!(mode("new-1.0-0/info"), 0o2750);
        assert_eq!(mode("new-1.0-0/info/index.json"), 0o644);
        // What was there before is not the installation's to change.
        assert_eq!(mode("old-1.0-0"), 0o700);
    }

    #[test]
    fn a_cache_rattler_never_wrote_is_left_alone() {
        let (dir, _entry, leftover) = cache_with_leftover();
        std::fs::remove_file(dir.path().join(GLOBAL_LOCK)).unwrap();
        clean_stale_extractions(&[dir.path().to_path_buf(), dir.path().join("missing")]);
        assert!(leftover.is_dir());
    }
}

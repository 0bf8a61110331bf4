//! `envmod clean`: give back the space of package-cache entries no environment uses and of
//! what interrupted envmod runs left beside environments. A user runs it when the quota is
//! full, often on a cache others read too, so it removes only what is provably the user's and
//! unused, and reports what it freed (or, on a dry run, would free) as the quota counts it:
//! space and files the user owns.

use std::{
    collections::{HashMap, HashSet},
    ffi::OsStr,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    conda::clean::{self as cache, Size},
    env::{lock, registry::Registry},
    fs::tree::{self, Kind},
    names::EnvName,
};

/// What to clean, resolved from the settings.
pub(crate) struct Request {
    /// The caches to clean: the first of pkgs_dirs, or all of them.
    pub(crate) caches: Vec<PathBuf>,
    pub(crate) envs_dir: PathBuf,
    pub(crate) shared_envs_dirs: Vec<PathBuf>,
    pub(crate) registry: Registry,
    pub(crate) dry_run: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Removed {
    pub(crate) path: PathBuf,
    /// `package`, `archive` or `leftover`.
    pub(crate) what: &'static str,
    pub(crate) bytes: u64,
    pub(crate) files: u64,
}

#[derive(Debug, Serialize)]
pub(crate) struct Kept {
    pub(crate) path: PathBuf,
    pub(crate) reason: String,
}

/// A cache that was not cleaned: why, and what the user does about it.
#[derive(Debug, Serialize)]
pub(crate) struct Skipped {
    pub(crate) path: PathBuf,
    pub(crate) reason: String,
    pub(crate) fix: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) dry_run: bool,
    /// Removed, or on a dry run, what would be.
    pub(crate) removed: Vec<Removed>,
    /// Entries and leftovers that stay, and why.
    pub(crate) kept: Vec<Kept>,
    /// Caches that were not cleaned at all, and why.
    pub(crate) skipped: Vec<Skipped>,
    pub(crate) bytes: u64,
    pub(crate) files: u64,
}

impl Report {
    /// The error a run ends with when a cache it was to clean was not: the space asked for
    /// was not freed, which a script must be able to tell.
    pub(crate) fn unfinished(&self) -> Option<anyhow::Error> {
        let first = self.skipped.first()?;
        let more = match self.skipped.len() {
            1 => String::new(),
            n => format!(" (and {} more caches, above)", n - 1),
        };
        Some(
            crate::error::UserError::failure(format!(
                "{} was not cleaned: {}{more}",
                crate::escape::shown(&first.path.to_string_lossy()),
                crate::escape::shown(&first.reason)
            ))
            .with_hint(first.fix.clone())
            .into(),
        )
    }
}

pub(crate) fn clean(req: &Request) -> Report {
    let mut report = Report {
        dry_run: req.dry_run,
        removed: Vec::new(),
        kept: Vec::new(),
        skipped: Vec::new(),
        bytes: 0,
        files: 0,
    };
    let used = entries_in_use(&prefixes(req));
    let leaving = clean_leftovers(req, &mut report);
    if !req.dry_run {
        crate::conda::cache::clean_stale_extractions(&req.caches);
    }
    for dir in &req.caches {
        clean_cache(dir, &used, &leaving, req.dry_run, &mut report);
    }
    for r in &report.removed {
        report.bytes += r.bytes;
        report.files += r.files;
    }
    report
}

/// Every environment this user can find: in envs_dir, in the site's shared_envs_dirs, and
/// those made with `-p`. Whether envmod made them does not matter: a conda environment
/// links from the same cache.
fn prefixes(req: &Request) -> Vec<PathBuf> {
    let mut found = req.registry.registered();
    for dir in std::iter::once(&req.envs_dir).chain(&req.shared_envs_dirs) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        found.extend(
            entries
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .map(|e| e.path()),
        );
    }
    found.sort();
    found.dedup();
    found
}

/// The cache entries the environments at `prefixes` were linked from: each package's record
/// in `conda-meta` is named after its entry and records the entry's directory. A record that
/// cannot be read still counts by its name: an entry kept too many is space, one removed too
/// many is a broken environment.
fn entries_in_use(prefixes: &[PathBuf]) -> HashSet<String> {
    #[derive(serde::Deserialize)]
    struct Record {
        extracted_package_dir: Option<PathBuf>,
    }
    let meta = Path::new("conda-meta");
    let mut used = HashSet::new();
    for prefix in prefixes {
        let Ok(names) = crate::fs::list_beneath(prefix, meta) else {
            continue;
        };
        for name in names {
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            used.insert(stem.to_string());
            let read = crate::fs::read_beneath(prefix, &meta.join(&name), crate::fs::DOCUMENT);
            if let Ok(Some(bytes)) = read
                && let Ok(record) = serde_json::from_slice::<Record>(&bytes)
                && let Some(dir) = record.extracted_package_dir
                && let Some(entry) = dir.file_name().and_then(OsStr::to_str)
            {
                used.insert(entry.to_string());
            }
        }
    }
    used
}

/// Remove (or on a dry run, measure) this user's leftovers of interrupted runs, each under
/// its environment's lock so that a run still going keeps its staging directory. Returns the
/// links their files hold, which on a dry run still keep cache entries in use.
fn clean_leftovers(req: &Request, report: &mut Report) -> HashMap<(u64, u64), u64> {
    let mut leaving = HashMap::new();
    let me = nix::unistd::geteuid().as_raw();
    for dir in req.registry.dirs(&req.envs_dir) {
        let renamer = crate::fs::others_may_rename_in(&dir);
        for left in lock::leftovers_in(&dir) {
            let mut keep = |reason: String| {
                report.kept.push(Kept {
                    path: left.path.clone(),
                    reason,
                })
            };
            let Ok(name) = left.env.parse::<EnvName>() else {
                continue;
            };
            let prefix = dir.join(name.as_str());
            let Ok(held) = tree::Dir::open(&left.path) else {
                continue;
            };
            if held.meta().uid != me {
                keep(format!("it belongs to {}", owner(held.meta().uid)));
                continue;
            }
            if let Some(who) = &renamer {
                keep(format!(
                    "{who} can rename directories of yours in {} to this name, so it may be no leftover of envmod's; if it is, remove it yourself",
                    dir.display()
                ));
                continue;
            }
            if left.path == crate::env::swap::swap_aside(&prefix)
                && prefix.symlink_metadata().is_err()
            {
                keep(format!(
                    "it is the tree of {name}, moved aside by an interrupted change; the next envmod command on {name} puts it back"
                ));
                continue;
            }
            let _lock = match req.dry_run {
                true => None,
                false => match lock::EnvLock::acquire(&prefix, &name) {
                    Ok(l) => Some(l),
                    Err(_) => {
                        keep(format!("{name} is being changed by another envmod"));
                        continue;
                    }
                },
            };
            let mut size = Size::default();
            size.add(held.meta());
            let _ = tree::walk_below(&held, &mut |node| {
                let m = node.meta();
                if m.kind == Kind::File && m.nlink > 1 {
                    *leaving.entry(m.id()).or_insert(0) += 1;
                }
                if m.uid == me && (m.kind == Kind::Dir || m.nlink == 1) {
                    size.add(m);
                }
                Ok(())
            });
            if !req.dry_run
                && let Err(e) = tree::remove_tree(&left.path)
            {
                keep(crate::fs::blocked::explain(&e).0);
                continue;
            }
            report.removed.push(Removed {
                path: left.path.clone(),
                what: "leftover",
                bytes: size.bytes,
                files: size.files,
            });
        }
    }
    leaving
}

fn clean_cache(
    dir: &Path,
    used: &HashSet<String>,
    leaving: &HashMap<(u64, u64), u64>,
    dry_run: bool,
    report: &mut Report,
) {
    let mut skip = |reason: String, fix: &str| {
        report.skipped.push(Skipped {
            path: dir.to_path_buf(),
            reason,
            fix: fix.to_string(),
        })
    };
    const NOT_YOURS: &str = "clean it as the account that owns it, or take it out of pkgs_dirs in your envmod config; the rest was cleaned";
    const AGAIN: &str = "run envmod clean again when the installation has finished";
    let held = match tree::Dir::open_following(dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => return skip(format!("cannot open it: {e}"), NOT_YOURS),
    };
    let _lock = match cache::lock(dir) {
        Ok(Some(l)) => l,
        Ok(None) => {
            return skip("an installation is using it".into(), AGAIN);
        }
        Err(why) => return skip(why, NOT_YOURS),
    };
    let scan = match cache::scan(&held, &|n| used.contains(n), leaving) {
        Ok(s) => s,
        Err(e) => return skip(format!("cannot list it: {e}"), NOT_YOURS),
    };
    for (path, reason) in scan.kept {
        report.kept.push(Kept { path, reason });
    }
    for entry in scan.unused {
        let removed = Removed {
            path: entry.path.clone(),
            what: if entry.archive { "archive" } else { "package" },
            bytes: entry.size.bytes,
            files: entry.size.files,
        };
        if !dry_run && let Err(reason) = cache::remove(&held, entry) {
            report.kept.push(Kept {
                path: removed.path,
                reason,
            });
            continue;
        }
        report.removed.push(removed);
    }
}

fn owner(uid: u32) -> String {
    crate::fs::user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// Space left within the user's quotas where `dirs` are, as `(holder, mount, KiB left)`, when
/// the site's `quota` program can tell.
pub(crate) fn quota_left(dirs: &[PathBuf], path_var: Option<&str>) -> Vec<(String, PathBuf, u64)> {
    let mut mounts: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| crate::conda::disk::mount_point_of(d))
        .collect();
    mounts.sort();
    mounts.dedup();
    crate::site::quota::usage(&mounts, path_var)
        .unwrap_or_default()
        .into_iter()
        .filter(|u| u.resource == crate::site::quota::Resource::Space)
        .map(|u| (u.holder, u.mount, u.limit.saturating_sub(u.used)))
        .collect()
}

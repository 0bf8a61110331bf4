//! Linking solved records into a prefix from the shared package cache. Files are hard-linked
//! from the cache where the filesystem allows, so a class of 300 environments with the same
//! packages costs the disk of one.

use std::{
    collections::HashSet,
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::{Context, Result};
use rattler::install::{
    IndicatifReporter, InstallationResultRecord, Installer, LinkOptions, Reporter, Transaction,
    TransactionOperation,
};
use rattler_conda_types::{PackageName, PrefixRecord, RepoDataRecord};

use crate::{
    conda::{CondaSettings, Network, PLATFORM, cache, disk, prefix, pyc, specs::Spec},
    error::UserError,
    printer::Printer,
    site::provides::is_stand_in,
};

pub struct InstallRequest<'a> {
    /// Where the files go now (a staging directory)…
    pub dir: &'a Path,
    /// …and the prefix they are built for, written into scripts and text files.
    pub target_prefix: &'a Path,
    pub records: Vec<RepoDataRecord>,
    pub specs: Vec<Spec>,
    /// Leave `python` alone: it is the site's interpreter, not a conda package.
    pub skip_python: bool,
    /// The client the records were solved with: their URLs carry no credentials.
    pub network: &'a Network,
    /// Copy files instead of hard-linking them: in an environment the group can write, a
    /// hard link would let the group write the cache's file, and every other environment
    /// linked to it.
    pub copy_from_cache: bool,
}

/// Names of what a transaction added and removed, for the summary line. Built from the
/// transaction itself: on a terminal the progress bars replace the line reporter, which
/// then sees nothing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// `name version` of every package linked, upgrades' new versions included.
    pub installed: Vec<String>,
    /// `name version` of every package unlinked, upgrades' old versions included.
    pub removed: Vec<String>,
    /// `name old → new` for packages whose version or build changed.
    pub upgraded: Vec<String>,
}

impl Changes {
    fn from_transaction(
        operations: &[TransactionOperation<InstallationResultRecord, RepoDataRecord>],
    ) -> Self {
        let mut changes = Changes::default();
        for op in operations {
            if let Some(old) = op.record_to_remove() {
                changes.removed.push(describe_installed(old));
            }
            if let Some(new) = op.record_to_install() {
                changes.installed.push(describe(new));
            }
            if let TransactionOperation::Change { old, new } = op {
                let new = &new.package_record;
                changes.upgraded.push(moved(
                    new.name.as_normalized(),
                    (&old.version().to_string(), old.build().as_str()),
                    (&new.version.to_string(), new.build.as_str()),
                ));
            }
        }
        changes
    }
}

/// `alpha 1.0 → 2.0` for a package that moves, up or down; `alpha 1.0 (h1_0 → h2_0)` for
/// one that keeps its version and changes its build.
pub fn moved(name: &str, (old, old_build): (&str, &str), (new, new_build): (&str, &str)) -> String {
    match old == new {
        true => format!("{name} {old} ({old_build} → {new_build})"),
        false => format!("{name} {old} → {new}"),
    }
}

pub async fn install(
    settings: &CondaSettings,
    req: InstallRequest<'_>,
    printer: &Printer,
) -> Result<Changes> {
    let mut req = req;
    // A module's stand-in or a site package is the cluster's, never a conda package to link;
    // filtered rather than ignored, so that a conda build it now replaces is removed.
    req.records.retain(|r| !is_stand_in(&r.url));
    let entries: Vec<String> = req.records.iter().map(entry_name).collect();
    let package_cache = settings.package_cache(&entries)?;
    let written = &settings.pkgs_dirs[0];
    cache::prepare_written(written)?;
    cache::clean_stale_extractions(&settings.pkgs_dirs);
    if settings.offline {
        let dirs: Vec<PathBuf> = settings
            .pkgs_dirs
            .iter()
            .chain(&settings.readonly_pkgs_dirs)
            .cloned()
            .collect();
        let missing = missing_from_cache(&req.records, &dirs, req.skip_python);
        if !missing.is_empty() {
            return Err(UserError::failure(format!(
                "offline, and not in the package cache: {}",
                missing.join(", ")
            ))
            .with_hint("run once without --offline to download them; nothing was changed")
            .into());
        }
    }
    let installed = prefix::records_to_change(req.dir, req.target_prefix)?;
    // Before the unlink: rattler would otherwise leave a directory that still holds a
    // `__pycache__`, and the next version's files would load the old bytecode.
    let unlinked = installed.iter().filter(|old| {
        !req.records.iter().any(|new| {
            new.url == old.repodata_record.url
                && new.package_record.name == old.repodata_record.package_record.name
                && new.package_record.version == old.repodata_record.package_record.version
                && new.package_record.build == old.repodata_record.package_record.build
        })
    });
    let unlinked: Vec<&Path> = unlinked
        .flat_map(|r| r.paths_data.paths.iter().map(|p| p.relative_path.as_path()))
        .collect();
    pyc::remove_bytecode(req.dir, unlinked).with_context(|| {
        format!(
            "failed to remove the compiled files of what is replaced in {}",
            req.target_prefix.display()
        )
    })?;
    // Where a noarch package's files go comes from the python record, which a solve may
    // take from the environment's own (editable) records.
    if let Some(r) = req.records.iter().find(|r| {
        r.package_record
            .python_site_packages_path
            .as_deref()
            .is_some_and(|p| !prefix::plain(Path::new(p)))
    }) {
        return Err(UserError::failure(format!(
            "package {} gives the site-packages path {:?}, which is not a plain path inside the environment",
            describe(r),
            r.package_record.python_site_packages_path.as_deref().unwrap_or_default()
        ))
        .with_hint("use a channel you trust; nothing was changed")
        .into());
    }
    let mut installer = Installer::new()
        .with_download_client(req.network.client()?)
        .with_target_platform(PLATFORM)
        .with_package_cache(package_cache)
        .with_requested_specs(req.specs.into_iter().map(Spec::into_match_spec).collect())
        .with_installed_packages(installed)
        .with_execute_link_scripts(false)
        .with_alternative_target_prefix(req.target_prefix);
    if req.copy_from_cache {
        installer = installer.with_link_options(LinkOptions {
            allow_hard_links: Some(false),
            ..LinkOptions::default()
        });
    }
    if req.skip_python {
        installer =
            installer.with_ignored_packages(HashSet::from([PackageName::from_str("python")?]));
    }
    let layers = LayerLocks::new(
        written,
        &settings.pkgs_dirs[1..],
        &settings.readonly_pkgs_dirs,
        printer,
    );
    if printer.wants_progress_bars() {
        installer = installer.with_reporter(Guarded {
            inner: IndicatifReporter::builder()
                .with_multi_progress(indicatif::MultiProgress::new())
                .clear_when_done(true)
                .finish(),
            layers: layers.clone(),
        });
    } else {
        installer = installer.with_reporter(Guarded {
            inner: LineReporter::new(printer.clone()),
            layers: layers.clone(),
        });
    }
    let fill = cache::Fill::start(written, &entries, &settings.readonly_pkgs_dirs);
    let result = installer.install(req.dir, req.records).await;
    layers.release();
    if let Some(fill) = fill {
        fill.finish();
    }
    let result = result.map_err(|e| {
        if let Some(kind) = disk::no_space_in(&e) {
            return where_space_ran_out(kind, &e, req.dir, settings);
        }
        if let Some(changed) = hash_mismatch(&e) {
            return changed;
        }
        let offline = if settings.offline {
            " (offline: only cached packages can be used)"
        } else {
            ""
        };
        // Download errors quote the URL, a `/t/TOKEN/` put back by the middleware included.
        let e = req.network.redact(&e.to_string());
        UserError::failure(format!("failed to install packages{offline}: {e}"))
            .with_hint("nothing was changed; check the channel and the package cache (pkgs_dirs)")
    })?;
    let changes = Changes::from_transaction(&result.transaction.operations);
    // rattler marks new prefixes as caches; backup tools would then skip the environment.
    let _ = std::fs::remove_file(req.dir.join("CACHEDIR.TAG"));
    prefix::strip_credentials_from_records(&req.dir.join("conda-meta"))?;
    share_package_records(&req.dir.join("conda-meta"))?;
    Ok(changes)
}

/// The error for an archive whose sha256 is not the one its record gives: rattler reports it
/// as "failed to fetch", which reads like a network problem, when the file has changed.
fn hash_mismatch(e: &rattler::install::InstallerError) -> Option<UserError> {
    use rattler::package_cache::{PackageCacheError, PackageCacheLayerError};
    use rattler_package_streaming::ExtractError;
    let rattler::install::InstallerError::FailedToFetch(name, PackageCacheError::LayerError(layer)) =
        e
    else {
        return None;
    };
    let Some(PackageCacheLayerError::FetchError(fetch)) =
        layer.downcast_ref::<PackageCacheLayerError>()
    else {
        return None;
    };
    let Some(ExtractError::HashMismatch {
        expected, actual, ..
    }) = fetch.downcast_ref::<ExtractError>()
    else {
        return None;
    };
    Some(
        UserError::failure(format!(
            "{name}: its sha256 differs from the one its record gives (expected {expected}, got {actual}); the file may have been tampered with"
        ))
        .with_hint("nothing was changed; use a channel you trust, or ask its owner to index it again (`envmod index DIR`) if the package was rebuilt on purpose"),
    )
}

/// The full-disk error for the filesystem that ran out: of the environment's and the package
/// cache's, the one with less room left. A quota is per user, not per filesystem, so there
/// the cache counts only when the failure names a path in it (downloads and extraction).
fn where_space_ran_out(
    kind: disk::NoSpace,
    err: &(dyn std::error::Error + 'static),
    dir: &Path,
    settings: &CondaSettings,
) -> UserError {
    let cache = settings.pkgs_dirs.first();
    let cache_is_fuller = match (kind, cache) {
        (_, None) => false,
        (disk::NoSpace::DiskFull, Some(cache)) => {
            match (disk::available_bytes(cache), disk::available_bytes(dir)) {
                (Some(c), Some(d)) => c < d,
                _ => false,
            }
        }
        (disk::NoSpace::QuotaExceeded, Some(cache)) => {
            let mut text = String::new();
            let mut next = Some(err);
            while let Some(e) = next {
                text.push_str(&e.to_string());
                next = e.source();
            }
            !text.contains(&dir.display().to_string())
                && text.contains(&cache.display().to_string())
        }
    };
    match cache {
        Some(cache) if cache_is_fuller => disk::no_space_error(kind, cache, "package cache"),
        _ => disk::no_space_error(kind, dir, "environment"),
    }
}

/// rattler writes each `conda-meta/*.json` through a temporary file, which leaves it readable
/// by its owner only, whatever the umask. Give the records the mode every other file envmod
/// writes gets (0666 less the umask), read from the `conda-meta` directory itself, which was
/// created under the same umask: a group that shares an environment can then read and change
/// it, and a course environment's package list is readable by its students.
fn share_package_records(conda_meta: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(dir) = std::fs::metadata(conda_meta) else {
        return Ok(());
    };
    let mode = dir.permissions().mode() & 0o666;
    for entry in std::fs::read_dir(conda_meta)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_file() && meta.permissions().mode() & 0o777 == 0o600 && mode != 0o600 {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))
                .with_context(|| format!("failed to set the mode of {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Records whose archives are neither cached nor on a local channel.
fn missing_from_cache(
    records: &[RepoDataRecord],
    pkgs_dirs: &[std::path::PathBuf],
    skip_python: bool,
) -> Vec<String> {
    let cached: Vec<String> = pkgs_dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    records
        .iter()
        .filter(|r| r.url.scheme() != "file")
        .filter(|r| !(skip_python && r.package_record.name.as_normalized() == "python"))
        .filter(|r| {
            let stem = entry_name(r);
            !cached
                .iter()
                .any(|c| c == &stem || c.starts_with(&format!("{stem}-")))
        })
        .map(describe)
        .collect()
}

/// The directory a record's package is extracted to in a cache.
fn entry_name(r: &RepoDataRecord) -> String {
    let p = &r.package_record;
    format!("{}-{}-{}", p.name.as_normalized(), p.version, p.build)
}

fn describe_installed(r: &InstallationResultRecord) -> String {
    format!("{} {}", r.name().as_normalized(), r.version())
}

fn describe(r: &RepoDataRecord) -> String {
    format!(
        "{} {}",
        r.package_record.name.as_normalized(),
        r.package_record.version
    )
}

/// Plain lines for logs and pipes: what is linked and unlinked, one package a line.
struct LineReporter {
    printer: Printer,
}

impl LineReporter {
    fn new(printer: Printer) -> Self {
        Self { printer }
    }
}

impl Reporter for LineReporter {
    fn on_transaction_start(&self, _: &Transaction<PrefixRecord, RepoDataRecord>) {}
    fn on_transaction_operation_start(&self, _: usize) {}
    fn on_populate_cache_start(&self, operation: usize, _: &RepoDataRecord) -> usize {
        operation
    }
    fn on_validate_start(&self, cache_entry: usize) -> usize {
        cache_entry
    }
    fn on_validate_complete(&self, _: usize) {}
    fn on_download_start(&self, cache_entry: usize) -> usize {
        cache_entry
    }
    fn on_download_progress(&self, _: usize, _: u64, _: Option<u64>) {}
    fn on_download_completed(&self, _: usize) {}
    fn on_populate_cache_complete(&self, _: usize) {}
    fn on_unlink_start(&self, operation: usize, record: &PrefixRecord) -> usize {
        let what = describe(&record.repodata_record);
        if self.printer.wants_progress_lines() {
            self.printer.info(format!("  - {what}"));
        }
        operation
    }
    fn on_unlink_complete(&self, _: usize) {}
    fn on_link_start(&self, operation: usize, record: &RepoDataRecord) -> usize {
        let what = describe(record);
        if self.printer.wants_progress_lines() {
            self.printer.info(format!("  + {what}"));
        }
        operation
    }
    fn on_link_complete(&self, _: usize) {}
    fn on_transaction_operation_complete(&self, _: usize) {}
    fn on_transaction_complete(&self) {}
    fn on_post_link_start(&self, _: &str, _: &str) -> usize {
        0
    }
    fn on_post_link_complete(&self, _: usize, _: bool) {}
    fn on_pre_unlink_start(&self, _: &str, _: &str) -> usize {
        0
    }
    fn on_pre_unlink_complete(&self, _: usize, _: bool) {}
}

/// The shared locks on the caches an installation reads but does not write, taken once
/// rattler holds the lock of the cache it writes (so two installations that read each other's
/// caches never wait for each other in a circle) and before it reads any entry.
#[derive(Clone)]
struct LayerLocks {
    written: PathBuf,
    read: Vec<PathBuf>,
    printer: Printer,
    held: std::sync::Arc<std::sync::Mutex<Vec<std::fs::File>>>,
}

impl LayerLocks {
    fn new(written: &Path, more: &[PathBuf], readonly: &[PathBuf], printer: &Printer) -> Self {
        Self {
            written: written.to_path_buf(),
            read: more.iter().chain(readonly).cloned().collect(),
            printer: printer.clone(),
            held: Default::default(),
        }
    }

    fn take(&self) {
        let wait = crate::failpoint::timeout_ms("LAYER_LOCK").unwrap_or(10_000);
        let wait = std::time::Duration::from_millis(wait);
        let (held, busy) = cache::lock_layers(&self.written, &self.read, wait);
        for dir in busy {
            self.printer.warn(format!(
                "the package cache {} stayed locked (its owner may be cleaning it); going on without its lock",
                dir.display()
            ));
        }
        if let Ok(mut slot) = self.held.lock() {
            *slot = held;
        }
    }

    fn release(&self) {
        if let Ok(mut slot) = self.held.lock() {
            slot.clear();
        }
    }
}

/// A reporter that also holds [`LayerLocks`] for the transaction.
struct Guarded<R> {
    inner: R,
    layers: LayerLocks,
}

impl<R: Reporter> Reporter for Guarded<R> {
    fn on_transaction_start(&self, t: &Transaction<PrefixRecord, RepoDataRecord>) {
        self.layers.take();
        self.inner.on_transaction_start(t)
    }
    fn on_transaction_operation_start(&self, op: usize) {
        self.inner.on_transaction_operation_start(op)
    }
    fn on_populate_cache_start(&self, op: usize, r: &RepoDataRecord) -> usize {
        self.inner.on_populate_cache_start(op, r)
    }
    fn on_validate_start(&self, entry: usize) -> usize {
        self.inner.on_validate_start(entry)
    }
    fn on_validate_complete(&self, i: usize) {
        self.inner.on_validate_complete(i)
    }
    fn on_download_start(&self, entry: usize) -> usize {
        self.inner.on_download_start(entry)
    }
    fn on_download_progress(&self, i: usize, done: u64, total: Option<u64>) {
        self.inner.on_download_progress(i, done, total)
    }
    fn on_download_completed(&self, i: usize) {
        self.inner.on_download_completed(i)
    }
    fn on_populate_cache_complete(&self, entry: usize) {
        self.inner.on_populate_cache_complete(entry)
    }
    fn on_unlink_start(&self, op: usize, r: &PrefixRecord) -> usize {
        self.inner.on_unlink_start(op, r)
    }
    fn on_unlink_complete(&self, i: usize) {
        self.inner.on_unlink_complete(i)
    }
    fn on_link_start(&self, op: usize, r: &RepoDataRecord) -> usize {
        let i = self.inner.on_link_start(op, r);
        // Its cache entry is validated, and nothing is linked from it yet.
        crate::failpoint::hit("install:linking");
        i
    }
    fn on_link_complete(&self, i: usize) {
        self.inner.on_link_complete(i)
    }
    fn on_transaction_operation_complete(&self, op: usize) {
        self.inner.on_transaction_operation_complete(op)
    }
    fn on_transaction_complete(&self) {
        self.inner.on_transaction_complete()
    }
    fn on_post_link_start(&self, name: &str, script: &str) -> usize {
        self.inner.on_post_link_start(name, script)
    }
    fn on_post_link_complete(&self, i: usize, ok: bool) {
        self.inner.on_post_link_complete(i, ok)
    }
    fn on_pre_unlink_start(&self, name: &str, script: &str) -> usize {
        self.inner.on_pre_unlink_start(name, script)
    }
    fn on_pre_unlink_complete(&self, i: usize, ok: bool) {
        self.inner.on_pre_unlink_complete(i, ok)
    }
}

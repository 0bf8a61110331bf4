//! Bundles: one `.tar` holding a lock file and every package archive it names, for sites
//! whose compute nodes cannot reach a channel. A plain tar needs no envmod to inspect or
//! copy, and the archives are already compressed, so the bundle is not compressed again.
//!
//! The lock's sha256 for each archive is checked when the bundle is written (so a bad
//! download never ends up in one) and again when it is unpacked (so a copy damaged on the way
//! to the site is caught before anything is installed from it).
//!
//! The pip packages travel the same way, as wheels in `pip/` that the bundle's lock names by
//! relative path and sha256: a bundle needs no index either.
//!
//! A bundle from someone else is data: its members are unpacked as new files and
//! directories with modes envmod chooses, so no member's mode can lock its owner out of the
//! unpacked tree or carry a set-id bit.
//!
//! Where the bundle is written and where it is unpacked is the caller's: both are removed
//! if envmod is interrupted, which only the environment layer can arrange.

use std::{
    collections::BTreeSet,
    fs::File,
    io::{BufReader, BufWriter, Read, Seek, Write},
    path::{Component, Path, PathBuf},
};

use anyhow::{Context, Result};
use rattler_conda_types::{RepoDataRecord, Subdir};
use rattler_digest::{HashingReader, Sha256, Sha256Hash};
use reqwest_middleware::ClientWithMiddleware;

use crate::{
    conda::{
        lockfile,
        pip::{WheelSource, hex},
        wheel::BundleWheel,
    },
    error::UserError,
};

/// The lock's name at the top of a bundle.
pub(crate) const LOCK_NAME: &str = "envmod.lock";

/// The directory of a bundle that holds the archives, laid out as a channel: `<subdir>/<file>`.
const PACKAGES_DIR: &str = "pkgs";

/// The directory of a bundle that holds the pip packages' wheels.
pub(crate) const WHEELS_DIR: &str = "pip";

/// Write the bundle `out` into `to` (a temporary file beside `out` that the caller renames
/// onto it): `envmod.lock` first, then `pkgs/<subdir>/<filename>` for each record's archive,
/// read from a `file://` URL or downloaded with `client`, then `pip/<wheel>` for each wheel.
/// Each file is checked against its sha256 as it is written.
pub(crate) async fn write(
    to: &mut File,
    out: &Path,
    lock_text: &str,
    records: &[RepoDataRecord],
    wheels: &[BundleWheel],
    client: &ClientWithMiddleware,
) -> Result<()> {
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tar = tar::Builder::new(BufWriter::new(to));
    let write_err = |e: std::io::Error| {
        anyhow::Error::from(UserError::failure(format!(
            "cannot write bundle {}: {e}",
            out.display()
        )))
    };

    let lock = lock_text.as_bytes();
    append(&mut tar, LOCK_NAME, lock, lock.len() as u64).map_err(write_err)?;
    crate::failpoint::hit("bundle:writing");

    let mut written = BTreeSet::new();
    for record in records {
        let member = member_path(record).map_err(|reason| {
            UserError::failure(format!("cannot bundle {}: {reason}", record.identifier))
        })?;
        if !written.insert(member.clone()) {
            continue;
        }
        let expected = record.package_record.sha256.ok_or_else(|| {
            UserError::failure(format!(
                "cannot bundle {}: its record gives no sha256 to verify it against",
                record.identifier
            ))
        })?;
        let (source, len) = open_archive(record, dir, client).await?;
        let mut reader = HashingReader::<_, Sha256>::new(source.take(len));
        append(&mut tar, &member, &mut reader, len).map_err(write_err)?;
        let (_, actual) = reader.finalize();
        check_sha256(record, &expected, &actual)?;
    }

    for wheel in wheels {
        let member = wheel_member(&wheel.file_name).map_err(|reason| {
            UserError::failure(format!(
                "cannot bundle the pip package {}: {reason}",
                wheel.name
            ))
        })?;
        if !written.insert(member.clone()) {
            continue;
        }
        let mut file = &wheel.file;
        file.rewind().map_err(write_err)?;
        let mut reader = HashingReader::<_, Sha256>::new(file.take(wheel.len));
        append(&mut tar, &member, &mut reader, wheel.len).map_err(write_err)?;
        let (_, actual) = reader.finalize();
        if actual != wheel.sha256 {
            return Err(UserError::failure(format!(
                "{member}: the wheel of {} {} changed while it was bundled: its sha256 differs (expected {}, got {}); the file may have been tampered with",
                wheel.name,
                wheel.version,
                hex(&wheel.sha256),
                hex(&actual)
            ))
            .with_hint("nothing was written; export the bundle again")
            .into());
        }
    }

    let buffered = tar.into_inner().map_err(write_err)?;
    let file = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    file.sync_all().map_err(write_err)?;
    Ok(())
}

/// Where a wheel lives in a bundle.
fn wheel_member(file_name: &str) -> std::result::Result<String, String> {
    if file_name.is_empty()
        || file_name.starts_with('.')
        || file_name.contains(['/', '\\', '\0'])
        || !file_name.ends_with(".whl")
    {
        return Err(format!("unusable wheel name {file_name:?}"));
    }
    Ok(format!("{WHEELS_DIR}/{file_name}"))
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    path: &str,
    data: impl Read,
    len: u64,
) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(len);
    header.set_mode(0o644);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    tar.append_data(&mut header, path, data)
}

/// The archive a record names, opened for reading, with its length. A download goes to a
/// temporary file beside the bundle first: a tar entry needs its length before its bytes.
async fn open_archive(
    record: &RepoDataRecord,
    dir: &Path,
    client: &ClientWithMiddleware,
) -> Result<(File, u64)> {
    let url = &record.url;
    let fetch_err = |reason: String| {
        anyhow::Error::from(
            UserError::failure(format!(
                "cannot fetch {} from {url}: {reason}",
                record.identifier
            ))
            .with_hint("check that the channel still serves it, or lock the environment again"),
        )
    };
    match url.scheme() {
        "file" => {
            let path = url
                .to_file_path()
                .map_err(|()| fetch_err("not a local path".to_string()))?;
            let file = crate::fs::open_regular(&path, crate::fs::Links::Follow)
                .map_err(|e| fetch_err(e.to_string()))?;
            let len = file.metadata().map_err(|e| fetch_err(e.to_string()))?.len();
            Ok((file, len))
        }
        "http" | "https" => {
            let mut download = tempfile::tempfile_in(dir)
                .with_context(|| format!("cannot make a temporary file in {}", dir.display()))?;
            let mut response = client
                .get(url.clone())
                .send()
                .await
                .map_err(|e| fetch_err(http_reason(e)))?
                .error_for_status()
                .map_err(|e| fetch_err(e.without_url().to_string()))?;
            let mut len = 0u64;
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| fetch_err(e.without_url().to_string()))?
            {
                download.write_all(&chunk).with_context(|| {
                    format!("cannot save {} in {}", record.identifier, dir.display())
                })?;
                len += chunk.len() as u64;
            }
            std::io::Seek::rewind(&mut download)?;
            Ok((download, len))
        }
        other => Err(fetch_err(format!("envmod cannot fetch {other}: URLs"))),
    }
}

/// The reason a request failed, without its URL: the authentication middleware may have
/// put a token into it.
fn http_reason(err: reqwest_middleware::Error) -> String {
    match err {
        reqwest_middleware::Error::Reqwest(e) => e.without_url().to_string(),
        reqwest_middleware::Error::Middleware(e) => format!("{e:#}"),
    }
}

fn check_sha256(record: &RepoDataRecord, expected: &Sha256Hash, actual: &Sha256Hash) -> Result<()> {
    if expected == actual {
        return Ok(());
    }
    Err(UserError::failure(format!(
        "{} from {}: its sha256 differs from the one its record gives (expected {}, got {}); the file may have been tampered with",
        record.identifier,
        record.url,
        hex(expected),
        hex(actual)
    ))
    .with_hint("nothing was written; use a channel you trust, or lock the environment again if the package was rebuilt on purpose")
    .into())
}

/// Where a record's archive lives in a bundle. The subdir and file name come from a lock,
/// which may have been written by anyone, so neither may lead out of the bundle.
fn member_path(record: &RepoDataRecord) -> std::result::Result<String, String> {
    let subdir: Subdir = record
        .package_record
        .subdir
        .parse()
        .map_err(|_| format!("unknown subdir {:?}", record.package_record.subdir))?;
    let file_name = record.identifier.to_string();
    if file_name.is_empty() || file_name.starts_with('.') || file_name.contains(['/', '\\', '\0']) {
        return Err(format!("unusable file name {file_name:?}"));
    }
    Ok(format!("{PACKAGES_DIR}/{}/{file_name}", subdir.as_str()))
}

/// A bundle unpacked for installing.
#[derive(Debug)]
pub(crate) struct Unpacked {
    pub(crate) lock: PathBuf,
    /// The packages, laid out as `<subdir>/<file>`.
    pub(crate) channel: PathBuf,
}

/// Unpack `bundle` into `dir` (a new, empty directory on the environment's filesystem that
/// the caller removes), refusing members outside it, and check every archive and wheel the
/// lock names for `platform` against its sha256. The records come back pointing at the
/// unpacked files, so installing them needs no network and no channel.
pub(crate) fn unpack(
    bundle: &Path,
    dir: &Path,
    platform: Subdir,
) -> Result<(Unpacked, lockfile::ReadLock)> {
    let shown = bundle.display();
    let damaged = |reason: String| {
        anyhow::Error::from(
            UserError::usage(format!("bundle {shown} cannot be unpacked: {reason}")).with_hint(
                "copy the bundle again, or write a new one where the channels are reachable",
            ),
        )
    };
    let file = crate::fs::open_regular(bundle, crate::fs::Links::Follow).map_err(|e| {
        UserError::failure(format!("cannot read bundle {shown}: {e}"))
            .with_hint("check the path and that you can read it")
    })?;
    let mut archive = tar::Archive::new(BufReader::new(file));
    for entry in archive.entries().map_err(|e| damaged(e.to_string()))? {
        let mut entry = entry.map_err(|e| damaged(e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| damaged(e.to_string()))?
            .into_owned();
        let safe = path.components().next().is_some()
            && path
                .components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !safe {
            return Err(UserError::usage(format!(
                "bundle {shown} has a member outside it ({}); envmod will not unpack it",
                path.display()
            ))
            .with_hint("use a bundle written by envmod")
            .into());
        }
        let kind = entry.header().entry_type();
        if !matches!(kind, tar::EntryType::Regular | tar::EntryType::Directory) {
            return Err(UserError::usage(format!(
                "bundle {shown} has a member that is not a file or directory ({}); envmod will not unpack it",
                path.display()
            ))
            .with_hint("use a bundle written by envmod")
            .into());
        }
        let rel: PathBuf = path
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        if kind == tar::EntryType::Directory {
            make_dirs(dir, &rel, &shown)?;
        } else {
            if let Some(parent) = rel.parent() {
                make_dirs(dir, parent, &shown)?;
            }
            unpack_file(&mut entry, dir, &rel, &shown)?;
        }
        crate::failpoint::hit("bundle:unpacking");
    }

    let lock = dir.join(LOCK_NAME);
    if !lock.is_file() {
        return Err(
            UserError::usage(format!("bundle {shown} has no {LOCK_NAME}"))
                .with_hint("use a bundle written by envmod")
                .into(),
        );
    }
    let mut read = lockfile::read_as(&lock, &format!("{LOCK_NAME} in bundle {shown}"), platform)?;
    for record in &mut read.records {
        let member = member_path(record).map_err(|reason| {
            UserError::usage(format!(
                "bundle {shown} names the package {}: {reason}",
                record.identifier
            ))
        })?;
        let archive = dir.join(&member);
        if !archive.is_file() {
            return Err(UserError::usage(format!(
                "bundle {shown} lacks {member}, which its {LOCK_NAME} names"
            ))
            .with_hint("copy the bundle again, or write a new one where the channels are reachable")
            .into());
        }
        let actual = rattler_digest::compute_file_digest::<Sha256>(&archive)
            .with_context(|| format!("cannot read {member} unpacked from bundle {shown}"))?;
        if record.package_record.sha256 != Some(actual) {
            return Err(changed_member(&member, &shown));
        }
        record.url = url::Url::from_file_path(&archive)
            .map_err(|()| anyhow::anyhow!("cannot make a file URL for {}", archive.display()))?;
    }

    let wheels = dir.join(WHEELS_DIR);
    for wheel in &read.pip {
        let inside = match &wheel.source {
            WheelSource::Path(path) => {
                path.parent() == Some(wheels.as_path())
                    && wheel_member(&wheel.file_name).is_ok()
                    && path.file_name() == Some(std::ffi::OsStr::new(&wheel.file_name))
            }
            WheelSource::Url(_) => false,
        };
        let member = format!("{WHEELS_DIR}/{}", wheel.file_name);
        if !inside {
            return Err(UserError::usage(format!(
                "{}: the pip package {} {} is not in bundle {shown}: a bundle's lock names its wheels as {WHEELS_DIR}/FILE",
                wheel.shown, wheel.name, wheel.version
            ))
            .with_hint("use a bundle written by `envmod export --format bundle`")
            .into());
        }
        let path = dir.join(&member);
        if !path.symlink_metadata().is_ok_and(|m| m.is_file()) {
            return Err(UserError::usage(format!(
                "bundle {shown} lacks {member}, which its {LOCK_NAME} names"
            ))
            .with_hint("copy the bundle again, or write a new one")
            .into());
        }
        let actual = rattler_digest::compute_file_digest::<Sha256>(&path)
            .with_context(|| format!("cannot read {member} unpacked from bundle {shown}"))?;
        if actual != wheel.sha256 {
            return Err(changed_member(&member, &shown));
        }
    }

    let channel = dir.join(PACKAGES_DIR);
    Ok((Unpacked { lock, channel }, read))
}

/// What is unpacked is data to read, so it gets modes envmod chooses, never the members':
/// a member's mode 0000 would lock its owner out of the directory that must be removed
/// afterwards, and a set-id bit has no business in it.
const UNPACKED_DIR_MODE: u32 = 0o700;
const UNPACKED_FILE_MODE: u32 = 0o600;

/// The directory `rel` (and its parents) in the unpack directory `dir`.
fn make_dirs(dir: &Path, rel: &Path, shown: &dyn std::fmt::Display) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if rel.as_os_str().is_empty() {
        return Ok(());
    }
    let path = dir.join(rel);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(UNPACKED_DIR_MODE)
        .create(&path)
        .map_err(|e| {
            if path.symlink_metadata().is_ok_and(|m| !m.is_dir())
                || e.raw_os_error() == Some(libc::ENOTDIR)
            {
                return UserError::usage(format!(
                    "bundle {shown} has a file where its member {} needs a directory; envmod will not unpack it",
                    rel.display()
                ))
                .with_hint("use a bundle written by envmod")
                .into();
            }
            unpack_failed(&path, shown, e)
        })
}

/// The regular member `entry` as the new file `rel` in the unpack directory `dir`.
fn unpack_file(
    entry: &mut impl Read,
    dir: &Path,
    rel: &Path,
    shown: &dyn std::fmt::Display,
) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(rel);
    let mut out = File::options()
        .write(true)
        .create_new(true)
        .mode(UNPACKED_FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| -> anyhow::Error {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                return UserError::usage(format!(
                    "bundle {shown} has two members named {}; envmod will not unpack it",
                    rel.display()
                ))
                .with_hint("use a bundle written by envmod")
                .into();
            }
            unpack_failed(&path, shown, e)
        })?;
    let mut buf = vec![0; 256 << 10];
    loop {
        let n = match entry.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(UserError::usage(format!(
                    "bundle {shown} cannot be unpacked: {}: {e}",
                    rel.display()
                ))
                .with_hint(
                    "copy the bundle again, or write a new one where the channels are reachable",
                )
                .into());
            }
        };
        out.write_all(&buf[..n])
            .map_err(|e| unpack_failed(&path, shown, e))?;
    }
}

/// A write into the unpack directory failed: this machine's problem, not the bundle's.
fn unpack_failed(path: &Path, shown: &dyn std::fmt::Display, e: std::io::Error) -> anyhow::Error {
    UserError::failure(format!(
        "cannot unpack bundle {shown}: cannot write {}: {e}",
        path.display()
    ))
    .with_hint(
        "check that the filesystem of the environments has space and that you can write there",
    )
    .into()
}

/// The refusal of a bundle member whose sha256 is not the one its lock gives.
fn changed_member(member: &str, shown: &dyn std::fmt::Display) -> anyhow::Error {
    UserError::usage(format!(
        "{member} in bundle {shown}: its sha256 differs from the one in its {LOCK_NAME}; the file may have been tampered with"
    ))
    .with_hint("copy the bundle again from where it was written, or write a new one")
    .into()
}

/// A tar archive: the "ustar" magic at offset 257.
pub(crate) fn looks_like_bundle(path: &Path) -> bool {
    crate::fs::read_head(path, 262, crate::fs::Links::Follow)
        .is_ok_and(|head| head.get(257..262) == Some(b"ustar"))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rattler_conda_types::{
        PackageName, PackageRecord, Version, package::DistArchiveIdentifier,
    };
    use rattler_digest::compute_bytes_digest;

    use super::*;
    use crate::conda::lockfile::PlatformLock;

    /// A channel directory with one archive per (name, subdir); the bytes need not be a
    /// real package, only match their hash.
    fn channel(dir: &Path, packages: &[(&str, &str)]) -> Vec<RepoDataRecord> {
        packages
            .iter()
            .map(|(name, subdir)| {
                let file_name = format!("{name}-1.0-h0_0.conda");
                let bytes = format!("archive of {name} for {subdir}").repeat(100);
                let path = dir.join(subdir).join(&file_name);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &bytes).unwrap();
                let mut package_record = PackageRecord::new(
                    PackageName::from_str(name).unwrap(),
                    Version::from_str("1.0").unwrap(),
                    "h0_0".parse().unwrap(),
                );
                package_record.subdir = (*subdir).to_string();
                package_record.sha256 = Some(compute_bytes_digest::<Sha256>(&bytes));
                RepoDataRecord {
                    url: url::Url::from_file_path(&path).unwrap(),
                    identifier: DistArchiveIdentifier::from_str(&file_name).unwrap(),
                    package_record,
                    channel: None,
                }
            })
            .collect()
    }

    fn client() -> ClientWithMiddleware {
        reqwest_middleware::ClientBuilder::new(reqwest::Client::builder().build().unwrap()).build()
    }

    /// [`write`] into a file beside `out`, renamed onto it when it succeeds.
    async fn write_file(out: &Path, lock: &str, records: &[RepoDataRecord]) -> Result<()> {
        let tmp = out.with_extension("partial");
        let mut file = File::create(&tmp).unwrap();
        let result = write(&mut file, out, lock, records, &[], &client()).await;
        match &result {
            Ok(()) => std::fs::rename(&tmp, out).unwrap(),
            Err(_) => std::fs::remove_file(&tmp).unwrap(),
        }
        result
    }

    /// A new directory to unpack into.
    fn unpack_dir(parent: &Path) -> PathBuf {
        let dir = parent.join("unpacked");
        std::fs::create_dir(&dir).unwrap();
        dir
    }

    async fn bundle(dir: &Path, records: &[RepoDataRecord]) -> PathBuf {
        let lock = lockfile::render(
            &["file:///srv/channel".to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: records.to_vec(),
                pip: Vec::new(),
                provided: Vec::new(),
            }],
        )
        .unwrap();
        let out = dir.join("env.tar");
        write_file(&out, &lock, records).await.unwrap();
        out
    }

    fn message(err: &anyhow::Error) -> String {
        let message = err.to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        message
    }

    #[tokio::test]
    async fn unpacked_records_point_into_the_bundle() {
        let src = tempfile::tempdir().unwrap();
        let records = channel(src.path(), &[("zlib", "linux-64"), ("tzdata", "noarch")]);
        let out = bundle(src.path(), &records).await;
        assert!(looks_like_bundle(&out));
        assert!(!looks_like_bundle(
            &src.path().join("linux-64/zlib-1.0-h0_0.conda")
        ));
        let leftovers: Vec<_> = std::fs::read_dir(src.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("envmod-tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let envs = tempfile::tempdir().unwrap();
        let dir = unpack_dir(envs.path());
        let (unpacked, lock) = unpack(&out, &dir, Subdir::Linux64).unwrap();
        assert_eq!(unpacked.lock, dir.join(LOCK_NAME));
        assert_eq!(unpacked.channel, dir.join("pkgs"));
        assert_eq!(lock.records.len(), 2);
        for record in &lock.records {
            let path = record.url.to_file_path().unwrap();
            assert!(path.starts_with(&unpacked.channel), "{}", record.url);
            let original = records
                .iter()
                .find(|r| r.identifier == record.identifier)
                .unwrap();
            assert_eq!(
                std::fs::read(&path).unwrap(),
                std::fs::read(original.url.to_file_path().unwrap()).unwrap()
            );
            assert_eq!(
                path,
                unpacked
                    .channel
                    .join(&record.package_record.subdir)
                    .join(record.identifier.to_string())
            );
        }
    }

    #[tokio::test]
    async fn a_changed_archive_is_named_with_the_bundle() {
        let src = tempfile::tempdir().unwrap();
        let records = channel(src.path(), &[("zlib", "linux-64"), ("tzdata", "noarch")]);
        let out = bundle(src.path(), &records).await;
        let mut bytes = std::fs::read(&out).unwrap();
        let needle = b"archive of zlib for linux-64";
        let at = bytes
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap();
        bytes[at] ^= 0x01;
        std::fs::write(&out, bytes).unwrap();

        let envs = tempfile::tempdir().unwrap();
        let err = unpack(&out, &unpack_dir(envs.path()), Subdir::Linux64).unwrap_err();
        assert_eq!(
            message(&err),
            format!(
                "pkgs/linux-64/zlib-1.0-h0_0.conda in bundle {}: its sha256 differs from the one in its envmod.lock; the file may have been tampered with",
                out.display()
            )
        );
    }

    #[tokio::test]
    async fn a_missing_archive_is_named_with_the_bundle() {
        let src = tempfile::tempdir().unwrap();
        let records = channel(src.path(), &[("zlib", "linux-64"), ("tzdata", "noarch")]);
        let lock = lockfile::render(
            &[],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: records.clone(),
                pip: Vec::new(),
                provided: Vec::new(),
            }],
        )
        .unwrap();
        let out = src.path().join("env.tar");
        write_file(&out, &lock, &records[..1]).await.unwrap();

        let envs = tempfile::tempdir().unwrap();
        let err = unpack(&out, &unpack_dir(envs.path()), Subdir::Linux64).unwrap_err();
        assert_eq!(
            message(&err),
            format!(
                "bundle {} lacks pkgs/noarch/tzdata-1.0-h0_0.conda, which its envmod.lock names",
                out.display()
            )
        );
    }

    #[tokio::test]
    async fn an_archive_that_changed_before_bundling_is_refused() {
        let src = tempfile::tempdir().unwrap();
        let records = channel(src.path(), &[("zlib", "linux-64")]);
        std::fs::write(records[0].url.to_file_path().unwrap(), b"something else").unwrap();
        let out = src.path().join("env.tar");
        let err = write_file(&out, "version: 6\n", &records)
            .await
            .unwrap_err();
        assert!(
            message(&err).starts_with("zlib-1.0-h0_0.conda from file://"),
            "{err}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn members_get_modes_envmod_chooses_and_appear_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("modes.tar");
        let mut tar = tar::Builder::new(File::create(&out).unwrap());
        let mut member = |name: &str, kind: tar::EntryType, mode: u32, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(kind);
            header.set_size(data.len() as u64);
            header.set_mode(mode);
            tar.append_data(&mut header, name, data).unwrap();
        };
        member("pkgs", tar::EntryType::Directory, 0, b"");
        member("pkgs/a", tar::EntryType::Regular, 0o4777, b"a");
        member("pkgs/a", tar::EntryType::Regular, 0o644, b"b");
        drop(tar);

        let envs = dir.path().join("envs");
        std::fs::create_dir(&envs).unwrap();
        let unpacked = unpack_dir(&envs);
        let err = unpack(&out, &unpacked, Subdir::Linux64).unwrap_err();
        assert!(
            message(&err).contains("has two members named pkgs/a"),
            "{err}"
        );
        let mode = |p: &Path| p.metadata().unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&unpacked.join("pkgs")), 0o700);
        assert_eq!(mode(&unpacked.join("pkgs/a")), 0o600);
        assert_eq!(std::fs::read(unpacked.join("pkgs/a")).unwrap(), b"a");
    }

    #[test]
    fn members_outside_the_bundle_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("evil.tar");
        let mut tar = tar::Builder::new(File::create(&out).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        // `append_data` refuses `..` itself, so the name goes into the header directly.
        header.as_gnu_mut().unwrap().name[..9].copy_from_slice(b"../escape");
        header.set_cksum();
        tar.append(&header, &b"x"[..]).unwrap();
        tar.finish().unwrap();
        drop(tar);

        let envs = dir.path().join("envs");
        std::fs::create_dir(&envs).unwrap();
        let err = unpack(&out, &unpack_dir(&envs), Subdir::Linux64).unwrap_err();
        assert!(
            message(&err).contains("has a member outside it (../escape)"),
            "{err}"
        );
        assert!(!envs.join("escape").exists());
    }
}

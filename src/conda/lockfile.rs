//! Lock files in the pixi.lock format, read and written with `rattler_lock`. Using the format
//! pixi and py-rattler already read means a lock envmod writes can be inspected, diffed and
//! installed by those tools too, and a lock they wrote can be installed by envmod.
//!
//! envmod promises that what it installs from a lock is what the lock names, byte for byte,
//! so every conda package in a lock must carry its sha256: writing and reading both refuse a
//! record without one. A pip package is read the same way: a wheel at a URL or a path
//! (relative to the lock), with its sha256; anything else is refused, naming its line.
//!
//! What a module stood in for (an `openmpi` or `__cuda` the environment was built on) is no
//! package anyone can download, so a lock never holds one: it marks it in the platform's
//! `virtual-packages`, as `name=version=build`, and `create -f` at another site finds a
//! module there that provides it. Tools that know only virtual packages read the marks as
//! strings and pass over them.

use std::{path::Path, str::FromStr};

use anyhow::{Context, Result};
use rattler_conda_types::{
    GenericVirtualPackage, MatchSpec, PackageName, ParseStrictness, RepoDataRecord, Subdir, Version,
};
use rattler_digest::Sha256Hash;
use rattler_lock::{
    CondaPackageData, DEFAULT_ENVIRONMENT_NAME, LockFile, LockedPackage, PackageHashes,
    ParseCondaLockError, PlatformData, PlatformName, PypiDistributionData, PypiPackageData,
    UrlOrPath, Verbatim,
};

use crate::{
    conda::pip::{LockedWheel, WheelSource},
    error::UserError,
    site::provides::{self, StandIn, StandIns},
};

/// A pip-installed distribution as a lock records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LockedPip {
    pub(crate) name: String,
    pub(crate) version: String,
    /// URL, absolute path, or path relative to the lock where it came from; None when unknown
    pub(crate) location: Option<String>,
    /// The sha256 of the file at `location`.
    pub(crate) sha256: Option<Sha256Hash>,
}

/// Everything locked for one platform.
#[derive(Debug, Clone)]
pub(crate) struct PlatformLock {
    pub(crate) platform: Subdir,
    pub(crate) records: Vec<RepoDataRecord>,
    pub(crate) pip: Vec<LockedPip>,
    /// The marks of what modules provided ([`marks`]): `openmpi=4.1.6=envmod_module`,
    /// `mpi=1.0=openmpi`, `__cuda=12.2=0`.
    pub(crate) provided: Vec<String>,
}

/// What a lock holds for one platform of its environment.
#[derive(Debug, Clone)]
pub(crate) struct ReadLock {
    pub(crate) channels: Vec<String>,
    /// Every platform the environment is locked for, the one read included.
    pub(crate) platforms: Vec<Subdir>,
    pub(crate) records: Vec<RepoDataRecord>,
    pub(crate) pip: Vec<LockedWheel>,
    /// The packages a module provided where the lock was made, which a module must provide
    /// here too: name, version and build.
    pub(crate) stand_ins: Vec<(PackageName, Version, String)>,
    /// The virtual packages the lock names (`__cuda=12.2=0`), as the machine or a module
    /// gave them where it was made.
    pub(crate) virtuals: Vec<GenericVirtualPackage>,
}

/// The mark of a stand-in record, as a virtual package displays: `openmpi=4.1.6=envmod_module`.
pub(crate) fn mark(name: &PackageName, version: &Version, build: &str) -> String {
    format!("{}={version}={build}", name.as_normalized())
}

/// The marks a lock of `records` carries: each stand-in record some record depends on by
/// name and none of `records` is (a record of that name is what the lock installs), then
/// every virtual package a module provided, which a package may need at run time even
/// where no record names it. Constraints are not marked: what they chose is in `records`.
pub(crate) fn marks(records: &[RepoDataRecord], stand_ins: &StandIns) -> Vec<String> {
    use std::collections::BTreeSet;
    let held: BTreeSet<&str> = records
        .iter()
        .filter(|r| !provides::is_stand_in(&r.url))
        .map(|r| r.package_record.name.as_normalized())
        .collect();
    let needed: BTreeSet<PackageName> = records
        .iter()
        .flat_map(|r| &r.package_record.depends)
        .filter_map(|dep| dependency_name(dep))
        .collect();
    let mut out: Vec<String> = stand_ins
        .records
        .iter()
        .map(|s| &s.value.package_record)
        .filter(|p| needed.contains(&p.name) && !held.contains(p.name.as_normalized()))
        .map(|p| mark(&p.name, &p.version, p.build.as_str()))
        .collect();
    out.extend(stand_ins.virtuals.iter().map(|v| v.value.to_string()));
    out
}

/// The package a dependency string names, if it names one exactly.
fn dependency_name(dep: &str) -> Option<PackageName> {
    MatchSpec::from_str(dep, ParseStrictness::Lenient)
        .ok()?
        .name
        .as_exact()
        .cloned()
}

/// The lock text: one environment named `default` (which pixi and py-rattler find as the
/// default environment), its credential-free `channels`, and every platform.
pub(crate) fn render(channels: &[String], platforms: &[PlatformLock]) -> Result<String> {
    let platform_data = platforms
        .iter()
        .map(|p| PlatformData {
            name: PlatformName::from(&p.platform),
            subdir: p.platform,
            virtual_packages: p.provided.clone(),
        })
        .collect();
    let mut builder = LockFile::builder()
        .with_platforms(platform_data)
        .context("cannot write a lock file")?;
    builder.set_channels(
        DEFAULT_ENVIRONMENT_NAME,
        channels.iter().map(String::as_str),
    );
    for platform in platforms {
        let name = platform.platform.as_str();
        builder.add_environment_platform(DEFAULT_ENVIRONMENT_NAME, name)?;
        // A stand-in is marked, never held: no tool could fetch it.
        for record in platform
            .records
            .iter()
            .filter(|r| !provides::is_stand_in(&r.url))
        {
            if record.package_record.sha256.is_none() {
                return Err(UserError::failure(format!(
                    "cannot lock {}: its channel gives no sha256 for it",
                    record.identifier
                ))
                .with_hint("a lock must let every package be verified; re-index the channel (`envmod index DIR`) so its repodata carries hashes")
                .into());
            }
            builder.add_conda_package(
                DEFAULT_ENVIRONMENT_NAME,
                name,
                CondaPackageData::from(record.clone()),
            )?;
        }
        for pip in &platform.pip {
            builder.add_pypi_package(DEFAULT_ENVIRONMENT_NAME, name, pypi_data(pip)?)?;
        }
    }
    builder
        .finish()
        .render_to_string()
        .context("cannot write a lock file")
}

/// rattler_lock needs a location for every PyPI package, and it is what pixi installs from.
/// When envmod does not know where a distribution came from, it writes the relative path
/// `name==version`: the pip requirement that reproduces it, which no tool can mistake for a
/// real index (as a made-up `https://pypi.org/...` URL could be), and which a tool that tries
/// to install it reports as a missing file rather than silently fetching something else.
/// It has no sha256, so envmod's own reading refuses it, naming the package.
fn pypi_data(pip: &LockedPip) -> Result<PypiPackageData> {
    let mut data = PypiDistributionData {
        name: pip_field(pip, "name", &pip.name)?,
        version: pip_field(pip, "version", &pip.version)?,
        location: Verbatim::new(UrlOrPath::Path(String::new().into())),
        index_url: None,
        hash: pip.sha256.map(PackageHashes::Sha256),
        requires_dist: Vec::new(),
        requires_python: None,
    };
    let location = match &pip.location {
        Some(location) => pip_field(pip, "location", location)?,
        None => UrlOrPath::Path(fallback_location(&data.name, &data.version).into()),
    };
    data.location = Verbatim::new(location);
    Ok(data.into())
}

fn pip_field<T>(pip: &LockedPip, what: &str, raw: &str) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    raw.parse().map_err(|e| {
        UserError::failure(format!(
            "cannot lock the pip package {}=={}: invalid {what} {raw:?}: {e}",
            pip.name, pip.version
        ))
        .into()
    })
}

fn fallback_location(name: &impl std::fmt::Display, version: &impl std::fmt::Display) -> String {
    format!("{name}=={version}")
}

/// Read the default environment (or the only one) of the lock at `path` for `platform`.
/// Every local file it names, conda package or wheel, must be a regular file: opening a
/// FIFO someone named as a package would hang the install, so they are checked here, before
/// anything is fetched.
pub(crate) fn read(path: &Path, platform: Subdir) -> Result<ReadLock> {
    let (read, local) = parse(path, &path.display(), platform)?;
    let wheels = read.pip.iter().filter_map(|w| match &w.source {
        WheelSource::Path(p) => Some((p.clone(), w.shown.clone())),
        WheelSource::Url(_) => None,
    });
    for (file, at) in local.into_iter().chain(wheels) {
        check_local(&file, &at)?;
    }
    Ok(read)
}

/// [`read`], naming the file `shown` in errors: a lock unpacked from a bundle is named by
/// the bundle, not by a temporary path. Its packages are installed from the bundle, so the
/// local files it names are not looked at.
pub(super) fn read_as(
    path: &Path,
    shown: &dyn std::fmt::Display,
    platform: Subdir,
) -> Result<ReadLock> {
    parse(path, shown, platform).map(|(read, _)| read)
}

/// A file the lock names, checked as the install would open it (following a link, which the
/// lock's author may have meant): a missing file is left for the install to report, since
/// the package may already be in the cache.
fn check_local(file: &Path, at: &str) -> Result<()> {
    match crate::fs::open_regular(file, crate::fs::Links::Follow) {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(UserError::usage(format!("{at}: {e}"))
            .with_hint("a lock names package archives and wheels; replace the entry with the file's real location, or lock the environment again")
            .into()),
    }
}

/// The lock read, and the local files its conda packages name, each with its place in the
/// lock ("lock file X, line N").
fn parse(
    path: &Path,
    shown: &dyn std::fmt::Display,
    platform: Subdir,
) -> Result<(ReadLock, Vec<(std::path::PathBuf, String)>)> {
    let text =
        crate::fs::read_text(path, crate::fs::DOCUMENT, crate::fs::Links::Follow).map_err(|e| {
            UserError::failure(e.to_string()).with_hint("check the path and that you can read it")
        })?;
    crate::yaml::check(&text).map_err(|e| invalid(shown, &e.to_string()))?;
    // Before rattler reads it, which would refuse such an entry for a field it lacks.
    if let Some(line) = line_of(&text, "conda", |v| {
        url::Url::parse(v).is_ok_and(|u| provides::is_stand_in(&u))
    }) {
        return Err(stand_in_package(
            &format!("lock file {shown}, line {line}"),
            None,
        ));
    }
    let lock = LockFile::from_str_with_base_directory(&text, path.parent())
        .map_err(|e| invalid(shown, &parse_message(&e)))?;

    let environment = match lock.default_environment() {
        Some(environment) => environment,
        None => {
            let mut environments = lock.environments();
            match (environments.next(), environments.len()) {
                (Some((_, only)), 0) => only,
                (None, _) => return Err(invalid(shown, "it has no environment")),
                (Some(_), _) => {
                    let mut names: Vec<&str> = lock.environments().map(|(n, _)| n).collect();
                    names.sort_unstable();
                    return Err(UserError::usage(format!(
                        "lock file {shown} has no default environment (it has: {})",
                        names.join(", ")
                    ))
                    .with_hint("envmod installs the environment named `default`, or the only one in the file")
                    .into());
                }
            }
        }
    };

    let mut platforms: Vec<Subdir> = environment.platforms().map(|p| p.subdir()).collect();
    platforms.sort_unstable();
    let Some(locked) = lock
        .platform(platform.as_str())
        .filter(|p| environment.packages(*p).is_some())
    else {
        let names: Vec<&str> = platforms.iter().map(|p| p.as_str()).collect();
        return Err(UserError::usage(format!(
            "lock file {shown} has no packages for {platform} (it has: {})",
            if names.is_empty() {
                "no platform".to_string()
            } else {
                names.join(", ")
            }
        ))
        .with_hint(format!(
            "lock the environment for {platform} too, e.g. on a {platform} machine"
        ))
        .into());
    };

    let (stand_ins, virtuals) = read_marks(locked.virtual_packages(), &text, shown)?;
    let mut records = Vec::new();
    let mut pip = Vec::new();
    let mut local = Vec::new();
    for package in environment.packages(locked).into_iter().flatten() {
        match package {
            LockedPackage::Conda(CondaPackageData::Binary(data)) => {
                if data.location.as_url().is_some_and(provides::is_stand_in) {
                    return Err(stand_in_package(
                        &format!("lock file {shown}"),
                        Some(&data.package_record.name),
                    ));
                }
                if data.package_record.sha256.is_none() {
                    return Err(UserError::usage(format!(
                        "lock file {shown} gives no sha256 for {}",
                        data.file_name
                    ))
                    .with_hint("envmod installs only packages whose hash it can verify; lock the environment again with a tool that records sha256")
                    .into());
                }
                let record = RepoDataRecord::try_from(data.as_ref())
                    .map_err(|e| invalid(shown, &format!("package {}: {e}", data.file_name)))?;
                if record.url.scheme() == "file"
                    && let Ok(file) = record.url.to_file_path()
                {
                    let given = data.location.as_str();
                    let same = |value: &str| {
                        value == given
                            || url::Url::parse(value)
                                .ok()
                                .and_then(|u| u.to_file_path().ok())
                                .is_some_and(|p| p == file)
                    };
                    let at = match line_of(&text, "conda", same) {
                        Some(line) => format!("lock file {shown}, line {line}"),
                        None => format!("lock file {shown}"),
                    };
                    local.push((file, at));
                }
                records.push(record);
            }
            LockedPackage::Conda(CondaPackageData::Source(data)) => {
                return Err(UserError::usage(format!(
                    "lock file {shown} has the conda source package {} at {}, which envmod cannot build",
                    data.name().as_source(),
                    data.location
                ))
                .with_hint("build the package, put it in a channel and lock the environment again")
                .into());
            }
            LockedPackage::Pypi(data) => pip.push(locked_wheel(data, &text, shown, path)?),
        }
    }

    let read = ReadLock {
        channels: environment
            .channels()
            .iter()
            .map(|c| c.url.clone())
            .collect(),
        platforms,
        records,
        pip,
        stand_ins,
        virtuals,
    };
    Ok((read, local))
}

/// The refusal of a conda package whose location is a stand-in's.
fn stand_in_package(at: &str, name: Option<&PackageName>) -> anyhow::Error {
    let what = name.map_or_else(
        || "a conda package".to_owned(),
        |n| format!("the package {}", n.as_source()),
    );
    UserError::usage(format!(
        "{at}: {what} is at an {}: URL, which names a module, not a package anyone can download",
        provides::STAND_IN_SCHEME
    ))
    .with_hint("a lock marks what a module provided under `platforms: virtual-packages`; export the lock again with envmod")
    .into()
}

/// The marks of one platform: `__` entries are virtual packages, read as rattler reads them
/// (a missing version or build is `0`); any other is a stand-in, `name=version=build`,
/// checked as a module's rule is, since `create -f` looks for a module that provides it.
#[allow(clippy::type_complexity)]
fn read_marks(
    entries: &[String],
    text: &str,
    shown: &dyn std::fmt::Display,
) -> Result<(
    Vec<(PackageName, Version, String)>,
    Vec<GenericVirtualPackage>,
)> {
    let mut stand_ins = Vec::new();
    let mut virtuals = Vec::new();
    for entry in entries {
        let refuse = |why: String| -> anyhow::Error {
            let at = match mark_line(text, entry) {
                Some(line) => format!("lock file {shown}, line {line}"),
                None => format!("lock file {shown}"),
            };
            UserError::usage(format!("{at}: the virtual package {entry:?} {why}"))
                .with_hint("each entry of `virtual-packages` is `name=version=build` (`__cuda=12.2=0`, `openmpi=4.1.6=envmod_module`); fix it, or export the lock again")
                .into()
        };
        if entry.starts_with("__") {
            let quoted = serde_json::Value::String(entry.clone());
            let virtual_package: GenericVirtualPackage =
                serde_json::from_value(quoted).map_err(|e| refuse(format!("is not valid: {e}")))?;
            virtuals.push(virtual_package);
            continue;
        }
        let parts: Vec<&str> = entry.split('=').collect();
        let [name, version, build] = parts[..] else {
            return Err(refuse("is not `name=version=build`".into()));
        };
        match StandIn::from_str(&format!("{name} {version} {build}")) {
            Ok(StandIn::Record {
                name,
                version,
                build,
            }) => stand_ins.push((name, version, build)),
            Ok(_) => return Err(refuse("is not one exact package".into())),
            Err(why) => return Err(refuse(format!("is not a package a module provides: {why}"))),
        }
    }
    Ok((stand_ins, virtuals))
}

/// The line of the `virtual-packages` item `entry`, quoted or not.
fn mark_line(text: &str, entry: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let value = line.trim();
            let Some(value) = value.strip_prefix("- ") else {
                return false;
            };
            let value = value.trim();
            value == entry
                || (value.len() >= 2
                    && (value.starts_with('\'') || value.starts_with('"'))
                    && value[1..value.len() - 1] == *entry)
        })
        .map(|i| i + 1)
}

/// A lock's pip package as the wheel to install, or the refusal that names its line. The
/// entry was written by someone else: it is a location and a hash, never a line for pip.
fn locked_wheel(
    data: &PypiPackageData,
    text: &str,
    shown: &dyn std::fmt::Display,
    lock: &Path,
) -> Result<LockedWheel> {
    let location = data.location();
    let given = location
        .given()
        .map_or_else(|| location.inner().to_string(), str::to_string);
    let at = match line_of(text, "pypi", |value| value == given) {
        Some(line) => format!("lock file {shown}, line {line}"),
        None => format!("lock file {shown}"),
    };
    let name = data.name().to_string();
    let refuse = |what: String, hint: &str| -> anyhow::Error {
        UserError::usage(format!("{at}: {what}"))
            .with_hint(hint.to_string())
            .into()
    };
    let relock = "a lock names each pip package by its wheel's URL or path and sha256; export the environment again (`envmod export --format bundle` carries the wheels)";
    if given.trim_start().starts_with('-') {
        return Err(refuse(
            format!(
                "the pip entry `{given}` of {name} is a pip option, not the location of a wheel"
            ),
            relock,
        ));
    }
    let Some(wheel) = data.as_wheel() else {
        return Err(refuse(
            format!(
                "the pip package {name} is the source tree {given}, which envmod does not build"
            ),
            "build a wheel of it (`pip wheel`), and lock that wheel with its sha256",
        ));
    };
    let version = wheel.version.to_string();
    let Some(sha256) = wheel.hash.as_ref().and_then(PackageHashes::sha256).copied() else {
        return Err(refuse(
            format!(
                "the pip package {name} {version} ({given}) has no sha256, so envmod cannot check what it installs"
            ),
            "export a bundle (`envmod export --format bundle`), which carries every pip package with its sha256, or pip install it once the environment is built",
        ));
    };
    let file_name = location
        .inner()
        .file_name()
        .filter(|f| !f.is_empty() && !f.starts_with('.') && !f.contains(['/', '\\', '\0']))
        .map(str::to_string);
    let Some(file_name) = file_name.filter(|f| f.ends_with(".whl")) else {
        return Err(refuse(
            format!("the pip package {name} {version} is at {given}, which is not a wheel (.whl)"),
            "envmod installs locked pip packages from wheels only, which run no code when installed; build a wheel (`pip wheel`) and lock that",
        ));
    };
    let source = match location.inner() {
        UrlOrPath::Path(path) => {
            let path = Path::new(path.as_str());
            let dir = lock.parent().unwrap_or(Path::new("/"));
            WheelSource::Path(if path.is_absolute() {
                path.to_path_buf()
            } else {
                dir.join(path)
            })
        }
        UrlOrPath::Url(url) if matches!(url.scheme(), "https" | "http") => {
            WheelSource::Url(url.clone())
        }
        UrlOrPath::Url(url) => {
            return Err(refuse(
                format!(
                    "the pip package {name} {version} is at a {}: URL, which envmod does not fetch",
                    url.scheme()
                ),
                "give the wheel's https: URL or its path",
            ));
        }
    };
    Ok(LockedWheel {
        name,
        version,
        file_name,
        source,
        sha256,
        shown: at,
    })
}

/// The 1-based number of the line that gives a location of a `kind` package (`- pypi: …`
/// or `- conda: …`, quoted or not) that `given` accepts; the last one, which is the package's own
/// entry rather than its environment's.
fn line_of(text: &str, kind: &str, given: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let value = line.trim_start();
            let value = value.strip_prefix("- ").unwrap_or(value).trim_start();
            let Some(value) = value.strip_prefix(kind).and_then(|v| v.strip_prefix(':')) else {
                return false;
            };
            let value = value.trim();
            let unquoted = if value.len() >= 2 && value.starts_with('\'') && value.ends_with('\'') {
                value[1..value.len() - 1].replace("''", "'")
            } else if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
                value[1..value.len() - 1].to_string()
            } else {
                value.to_string()
            };
            given(&unquoted)
        })
        .map(|(i, _)| i + 1)
        .last()
}

fn invalid(shown: &dyn std::fmt::Display, reason: &str) -> anyhow::Error {
    UserError::usage(format!("lock file {shown} is not valid: {reason}"))
        .with_hint("give a lock file written by envmod, pixi or rattler (pixi.lock format)")
        .into()
}

/// The parser's message on one line, with the line and column when the YAML itself is broken.
fn parse_message(err: &ParseCondaLockError) -> String {
    let mut message = err.to_string().replace('\n', " ");
    if let ParseCondaLockError::ParseError(yaml) = err
        && let Some(at) = yaml.location()
        && !message.contains("line ")
    {
        message = format!("{message} at line {} column {}", at.line(), at.column());
    }
    message
}

/// Whether `text` is a pixi/rattler lock (a top-level `version:` number and `environments:`
/// or `packages:`) rather than an environment.yml.
pub(crate) fn looks_like_lock(text: &str) -> bool {
    let mut version = false;
    let mut body = false;
    for line in text.lines() {
        let line = line.trim_end();
        if let Some(value) = line.strip_prefix("version:") {
            let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
            version |= !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
        } else if line.starts_with("environments:") || line.starts_with("packages:") {
            body = true;
        }
    }
    version && body
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rattler_conda_types::{
        PackageName, PackageRecord, Version, package::DistArchiveIdentifier,
    };
    use rattler_digest::{Md5, Sha256, compute_bytes_digest};

    use super::*;

    fn record(name: &str, version: &str, subdir: &str, base: &str) -> RepoDataRecord {
        let mut package_record = PackageRecord::new(
            PackageName::from_str(name).unwrap(),
            Version::from_str(version).unwrap(),
            "h1234_0".parse().unwrap(),
        );
        package_record.subdir = subdir.to_string();
        package_record.sha256 = Some(compute_bytes_digest::<Sha256>(name));
        package_record.md5 = Some(compute_bytes_digest::<Md5>(name));
        let file_name = format!("{name}-{version}-h1234_0.conda");
        RepoDataRecord {
            url: url::Url::parse(&format!("{base}/{subdir}/{file_name}")).unwrap(),
            identifier: DistArchiveIdentifier::from_str(&file_name).unwrap(),
            package_record,
            channel: Some(format!("{base}/")),
        }
    }

    fn pip(name: &str, version: &str, location: Option<&str>, sha256: bool) -> LockedPip {
        LockedPip {
            name: name.to_string(),
            version: version.to_string(),
            location: location.map(str::to_string),
            sha256: sha256.then(|| compute_bytes_digest::<Sha256>(name)),
        }
    }

    fn write(dir: &Path, text: &str) -> std::path::PathBuf {
        let path = dir.join("envmod.lock");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn message(err: &anyhow::Error) -> String {
        let message = err.to_string();
        assert!(!message.contains('\n'), "one line: {message}");
        message
    }

    #[test]
    fn render_then_read_keeps_records_and_pip_packages() {
        let dir = tempfile::tempdir().unwrap();
        let channel = "https://conda.example.org/forge";
        let numpy = record("numpy", "1.26.4", "linux-64", channel);
        let tzdata = record("tzdata", "2024a", "noarch", "file:///srv/channel");
        let pips = vec![
            pip(
                "requests",
                "2.31.0",
                Some("https://files.example.org/requests-2.31.0-py3-none-any.whl"),
                true,
            ),
            pip(
                "local-tool",
                "0.1",
                Some("/opt/wheels/local_tool-0.1-py3-none-any.whl"),
                true,
            ),
            pip(
                "beside",
                "2.0",
                Some("wheels/beside-2.0-py3-none-any.whl"),
                true,
            ),
        ];
        let text = render(
            &[channel.to_string(), "file:///srv/channel".to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: vec![numpy.clone(), tzdata.clone()],
                pip: pips.clone(),
                provided: Vec::new(),
            }],
        )
        .unwrap();
        assert!(looks_like_lock(&text), "{text}");
        assert!(!text.contains("pypi.org"), "{text}");

        let path = write(dir.path(), &text);
        let read = read(&path, Subdir::Linux64).unwrap();
        assert_eq!(
            read.channels,
            vec![channel.to_string(), "file:///srv/channel".to_string()]
        );
        assert_eq!(read.platforms, vec![Subdir::Linux64]);
        let mut records = read.records.clone();
        records.sort_by_key(|r| r.identifier.to_string());
        for (got, want) in records.iter().zip([&numpy, &tzdata]) {
            let (g, w) = (&got.package_record, &want.package_record);
            assert_eq!(g.name, w.name);
            assert_eq!(g.version, w.version);
            assert_eq!(g.build, w.build);
            assert_eq!(g.subdir, w.subdir);
            assert_eq!(g.sha256, w.sha256);
            assert_eq!(g.md5, w.md5);
            assert_eq!(got.url, want.url);
            assert_eq!(got.identifier, want.identifier);
        }
        assert_eq!(records.len(), 2);
        let mut got: Vec<_> = read
            .pip
            .iter()
            .map(|w| (w.name.as_str(), w.version.as_str(), &w.source, w.sha256))
            .collect();
        got.sort_by_key(|w| w.0);
        let hash = |name: &str| compute_bytes_digest::<Sha256>(name);
        let requests = WheelSource::Url(
            "https://files.example.org/requests-2.31.0-py3-none-any.whl"
                .parse()
                .unwrap(),
        );
        let local = WheelSource::Path("/opt/wheels/local_tool-0.1-py3-none-any.whl".into());
        // A relative path is the lock's neighbour, wherever envmod runs.
        let beside = WheelSource::Path(dir.path().join("wheels/beside-2.0-py3-none-any.whl"));
        assert_eq!(
            got,
            vec![
                ("beside", "2.0", &beside, hash("beside")),
                ("local-tool", "0.1", &local, hash("local-tool")),
                ("requests", "2.31.0", &requests, hash("requests")),
            ]
        );
    }

    /// Pip entries someone else wrote: each refused with its line and one-line error.
    #[test]
    fn pip_entries_that_are_not_hashed_wheels_are_refused_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(
            &["https://conda.example.org/forge".to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: Vec::new(),
                pip: vec![pip("tool", "1.0", Some("tool-1.0-py3-none-any.whl"), true)],
                provided: Vec::new(),
            }],
        )
        .unwrap();
        for (entry, extra, want) in [
            ("-e /srv/project", "", "is a pip option"),
            (
                "--index-url=http://127.0.0.1:9/simple",
                "",
                "is a pip option",
            ),
            ("tool==1.0", "strip-sha", "has no sha256"),
            ("dist/tool-1.0.tar.gz", "", "is not a wheel"),
            (
                "git+https://example.org/w/tool-1.0-py3-none-any.whl",
                "",
                "a git+https: URL",
            ),
        ] {
            let mut edited = text.replace("tool-1.0-py3-none-any.whl", entry);
            if extra == "strip-sha" {
                edited = edited
                    .lines()
                    .filter(|l| !l.trim_start().starts_with("sha256:"))
                    .map(|l| format!("{l}\n"))
                    .collect();
            }
            let path = write(dir.path(), &edited);
            let line = edited
                .lines()
                .enumerate()
                .filter(|(_, l)| l.contains(entry))
                .map(|(i, _)| i + 1)
                .last()
                .unwrap();
            let err = read(&path, Subdir::Linux64).unwrap_err();
            let message = message(&err);
            assert!(
                message.starts_with(&format!("lock file {}, line {line}: ", path.display())),
                "{entry}: {message}"
            );
            assert!(message.contains(want), "{entry}: {message}");
        }
    }

    #[test]
    fn two_platforms_share_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let channel = "https://conda.example.org/forge";
        let text = render(
            &[channel.to_string()],
            &[
                PlatformLock {
                    platform: Subdir::Linux64,
                    records: vec![
                        record("zlib", "1.3", "linux-64", channel),
                        record("tzdata", "2024a", "noarch", channel),
                    ],
                    pip: Vec::new(),
                    provided: Vec::new(),
                },
                PlatformLock {
                    platform: Subdir::OsxArm64,
                    records: vec![
                        record("libzlib", "1.3", "osx-arm64", channel),
                        record("tzdata", "2024a", "noarch", channel),
                    ],
                    pip: Vec::new(),
                    provided: Vec::new(),
                },
            ],
        )
        .unwrap();
        let path = write(dir.path(), &text);
        let names = |platform| {
            let read = read(&path, platform).unwrap();
            assert_eq!(read.platforms, vec![Subdir::Linux64, Subdir::OsxArm64]);
            let mut names: Vec<String> = read
                .records
                .iter()
                .map(|r| r.package_record.name.as_normalized().to_string())
                .collect();
            names.sort();
            names
        };
        assert_eq!(names(Subdir::Linux64), vec!["tzdata", "zlib"]);
        assert_eq!(names(Subdir::OsxArm64), vec!["libzlib", "tzdata"]);
    }

    #[test]
    fn a_missing_platform_is_named_with_the_ones_there() {
        let dir = tempfile::tempdir().unwrap();
        let channel = "https://conda.example.org/forge";
        let text = render(
            &[channel.to_string()],
            &[PlatformLock {
                platform: Subdir::OsxArm64,
                records: vec![record("libzlib", "1.3", "osx-arm64", channel)],
                pip: Vec::new(),
                provided: Vec::new(),
            }],
        )
        .unwrap();
        let path = write(dir.path(), &text);
        let err = read(&path, Subdir::Linux64).unwrap_err();
        assert_eq!(
            message(&err),
            format!(
                "lock file {} has no packages for linux-64 (it has: osx-arm64)",
                path.display()
            )
        );
    }

    #[test]
    fn broken_yaml_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            "version: 6\nenvironments:\n  default:\n    channels: [\n  - url: x\n",
        );
        let err = read(&path, Subdir::Linux64).unwrap_err();
        let message = message(&err);
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains("line "), "{message}");
    }

    #[test]
    fn a_record_without_sha256_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let channel = "https://conda.example.org/forge";
        let text = render(
            &[channel.to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: vec![record("zlib", "1.3", "linux-64", channel)],
                pip: Vec::new(),
                provided: Vec::new(),
            }],
        )
        .unwrap();
        let stripped: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("sha256:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let path = write(dir.path(), &stripped);
        let err = read(&path, Subdir::Linux64).unwrap_err();
        assert!(message(&err).contains("gives no sha256 for zlib-1.3-h1234_0.conda"));

        let mut unhashed = record("zlib", "1.3", "linux-64", channel);
        unhashed.package_record.sha256 = None;
        let err = render(
            &[channel.to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: vec![unhashed],
                pip: Vec::new(),
                provided: Vec::new(),
            }],
        )
        .unwrap_err();
        assert!(message(&err).contains("zlib-1.3-h1234_0.conda"));
    }

    #[test]
    fn a_file_without_environments_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "version: 6\nenvironments: {}\npackages: []\n");
        let err = read(&path, Subdir::Linux64).unwrap_err();
        assert!(message(&err).ends_with("is not valid: it has no environment"));
    }

    fn provisions(entries: &[(&str, &[&str])]) -> StandIns {
        let provisions: Vec<_> = entries
            .iter()
            .map(|(module, provides)| provides::ModuleProvision {
                module: (*module).into(),
                rule: "x/*".into(),
                provides: provides.iter().map(|p| (*p).to_owned()).collect(),
            })
            .collect();
        provides::stand_ins(&provisions, Subdir::Linux64).unwrap()
    }

    fn depending(name: &str, depends: &[&str]) -> RepoDataRecord {
        let mut r = record(name, "1.0", "linux-64", "https://conda.example.org/forge");
        r.package_record.depends = depends.iter().map(|d| (*d).to_owned()).collect();
        r
    }

    #[test]
    fn a_stand_in_is_marked_when_a_package_needs_it_and_a_module_virtual_always() {
        let stand_ins = provisions(&[
            ("openmpi/4.1.6", &["openmpi 4.1.6", "mpi 1.0 openmpi"]),
            ("cuda/12.2", &["__cuda 12.2", "cuda-version 12.2.*"]),
            // Nothing needs it: an unused module is no part of the lock.
            ("hwloc/2.9", &["hwloc 2.9"]),
            // The lock holds a zlib of its own, which is what it installs.
            ("zlib/1.3", &["zlib 1.3"]),
        ]);
        let records = [
            depending(
                "partool",
                &[
                    "__glibc >=2.17",
                    "openmpi >=4.1.6,<5.0a0",
                    "mpi 1.0 openmpi",
                ],
            ),
            depending("cupy", &["__cuda >=12", "cuda-version >=12.2,<13", "zlib"]),
            depending("zlib", &[]),
        ];
        assert_eq!(
            marks(&records, &stand_ins),
            [
                "openmpi=4.1.6=envmod_module",
                "mpi=1.0=openmpi",
                "__cuda=12.2=0"
            ]
        );
        assert!(marks(&records, &StandIns::default()).is_empty());
    }

    #[test]
    fn marks_are_written_read_back_and_no_stand_in_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let stand_ins = provisions(&[
            ("openmpi/4.1.6", &["openmpi 4.1.6", "mpi 1.0 openmpi"]),
            ("cuda/12.2", &["__cuda 12.2"]),
        ]);
        let partool = depending("partool", &["openmpi >=4.1.6,<5.0a0", "mpi 1.0 openmpi"]);
        // A stand-in among the records (as a solve returns them) is left out of the lock.
        let mut records = vec![partool.clone()];
        records.extend(stand_ins.records.iter().map(|s| s.value.clone()));
        let text = render(
            &["https://conda.example.org/forge".to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                provided: marks(&records, &stand_ins),
                records,
                pip: Vec::new(),
            }],
        )
        .unwrap();
        assert!(!text.contains("envmod:"), "{text}");
        assert!(
            text.contains(
                "virtual-packages:\n  - openmpi=4.1.6=envmod_module\n  - mpi=1.0=openmpi\n  - __cuda=12.2=0\n"
            ),
            "{text}"
        );
        let read = read(&write(dir.path(), &text), Subdir::Linux64).unwrap();
        let names: Vec<_> = read
            .records
            .iter()
            .map(|r| r.package_record.name.as_normalized())
            .collect();
        assert_eq!(names, ["partool"]);
        let got: Vec<_> = read
            .stand_ins
            .iter()
            .map(|(n, v, b)| format!("{} {v} {b}", n.as_normalized()))
            .collect();
        assert_eq!(got, ["openmpi 4.1.6 envmod_module", "mpi 1.0 openmpi"]);
        let virtuals: Vec<_> = read.virtuals.iter().map(|v| v.to_string()).collect();
        assert_eq!(virtuals, ["__cuda=12.2=0"]);
    }

    /// pixi and py-rattler write only virtual packages there, if anything.
    #[test]
    fn a_lock_with_only_virtual_packages_has_no_stand_ins() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(
            &["https://conda.example.org/forge".to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: vec![record(
                    "zlib",
                    "1.3",
                    "linux-64",
                    "https://conda.example.org/forge",
                )],
                pip: Vec::new(),
                provided: vec![
                    "__glibc=2.28=0".into(),
                    "__cuda=12.4".into(),
                    "__unix".into(),
                ],
            }],
        )
        .unwrap();
        let read = read(&write(dir.path(), &text), Subdir::Linux64).unwrap();
        assert!(read.stand_ins.is_empty());
        let virtuals: Vec<_> = read.virtuals.iter().map(|v| v.to_string()).collect();
        assert_eq!(virtuals, ["__glibc=2.28=0", "__cuda=12.4=0", "__unix=0=0"]);
    }

    #[test]
    fn a_mark_that_is_not_an_exact_package_is_refused_by_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(
            &["https://conda.example.org/forge".to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: vec![record(
                    "zlib",
                    "1.3",
                    "linux-64",
                    "https://conda.example.org/forge",
                )],
                pip: Vec::new(),
                provided: vec!["MARK".into()],
            }],
        )
        .unwrap();
        let line = text.lines().position(|l| l.contains("MARK")).unwrap() + 1;
        for (bad, why) in [
            ("openmpi=4.1.6", "is not `name=version=build`"),
            ("openmpi", "is not `name=version=build`"),
            ("openmpi=4.1.6=a=b", "is not `name=version=build`"),
            ("openmpi=4.*=x", "is not one exact package"),
            ("python=3.12.1=h0", "python cannot come from a module"),
            ("open*=4.1=x", "not a package name"),
            ("__cuda=not a version=0", "is not valid"),
        ] {
            let path = write(dir.path(), &text.replace("MARK", &format!("'{bad}'")));
            let err = read(&path, Subdir::Linux64).unwrap_err();
            let message = message(&err);
            assert!(
                message.starts_with(&format!(
                    "lock file {}, line {line}: the virtual package {bad:?} ",
                    path.display()
                )) && message.contains(why),
                "{bad}: {message}"
            );
        }
    }

    #[test]
    fn a_package_at_a_stand_in_url_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let channel = "https://conda.example.org/forge";
        let text = render(
            &[channel.to_string()],
            &[PlatformLock {
                platform: Subdir::Linux64,
                records: vec![record("openmpi", "4.1.6", "linux-64", channel)],
                pip: Vec::new(),
                provided: Vec::new(),
            }],
        )
        .unwrap();
        let url = format!("{channel}/linux-64/openmpi-4.1.6-h1234_0.conda");
        let planted = "envmod:module/openmpi%2F4.1.6/openmpi-4.1.6-h1234_0.conda";
        assert!(text.contains(&url), "{text}");
        let edited = text.replace(&url, planted);
        // The package's own entry, not its environment's.
        let line = edited
            .lines()
            .enumerate()
            .filter(|(_, l)| l.contains(planted))
            .last()
            .unwrap()
            .0
            + 1;
        let path = write(dir.path(), &edited);
        let err = read(&path, Subdir::Linux64).unwrap_err();
        assert_eq!(
            message(&err),
            format!(
                "lock file {}, line {line}: a conda package is at an envmod: URL, which names a module, not a package anyone can download",
                path.display()
            )
        );
        assert!(
            crate::error::hint_of(&err)
                .unwrap()
                .contains("virtual-packages")
        );
    }

    #[test]
    fn locks_are_told_from_environment_files() {
        assert!(looks_like_lock(
            "version: 6\nenvironments:\n  default: {}\npackages: []\n"
        ));
        assert!(!looks_like_lock(
            "name: demo\nchannels:\n  - conda-forge\ndependencies:\n  - numpy\n"
        ));
        assert!(!looks_like_lock(
            "name: demo\ndependencies:\n  - pip:\n    - version: 1\n"
        ));
        assert!(!looks_like_lock("version: one\npackages: []\n"));
    }
}

//! Lock files in the pixi.lock format, read and written with `rattler_lock`. Using the format
//! pixi and py-rattler already read means a lock envmod writes can be inspected, diffed and
//! installed by those tools too, and a lock they wrote can be installed by envmod.
//!
//! envmod promises that what it installs from a lock is what the lock names, byte for byte,
//! so every conda package in a lock must carry its sha256: writing and reading both refuse a
//! record without one. A pip package is read the same way: a wheel at a URL or a path
//! (relative to the lock), with its sha256; anything else is refused, naming its line.

use std::path::Path;

use anyhow::{Context, Result};
use rattler_conda_types::{RepoDataRecord, Subdir};
use rattler_digest::Sha256Hash;
use rattler_lock::{
    CondaPackageData, DEFAULT_ENVIRONMENT_NAME, LockFile, LockedPackage, PackageHashes,
    ParseCondaLockError, PlatformData, PlatformName, PypiDistributionData, PypiPackageData,
    UrlOrPath, Verbatim,
};

use crate::{
    conda::pip::{LockedWheel, WheelSource},
    error::UserError,
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
}

/// What a lock holds for one platform of its environment.
#[derive(Debug, Clone)]
pub(crate) struct ReadLock {
    pub(crate) channels: Vec<String>,
    /// Every platform the environment is locked for, the one read included.
    pub(crate) platforms: Vec<Subdir>,
    pub(crate) records: Vec<RepoDataRecord>,
    pub(crate) pip: Vec<LockedWheel>,
}

/// The lock text: one environment named `default` (which pixi and py-rattler find as the
/// default environment), its credential-free `channels`, and every platform.
pub(crate) fn render(channels: &[String], platforms: &[PlatformLock]) -> Result<String> {
    let platform_data = platforms
        .iter()
        .map(|p| PlatformData {
            name: PlatformName::from(&p.platform),
            subdir: p.platform,
            virtual_packages: Vec::new(),
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
        for record in &platform.records {
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

    let mut records = Vec::new();
    let mut pip = Vec::new();
    let mut local = Vec::new();
    for package in environment.packages(locked).into_iter().flatten() {
        match package {
            LockedPackage::Conda(CondaPackageData::Binary(data)) => {
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
    };
    Ok((read, local))
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
                },
                PlatformLock {
                    platform: Subdir::OsxArm64,
                    records: vec![
                        record("libzlib", "1.3", "osx-arm64", channel),
                        record("tzdata", "2024a", "noarch", channel),
                    ],
                    pip: Vec::new(),
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

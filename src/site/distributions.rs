//! The site Python's own distributions, as conda names. In site mode the environment sees the
//! site's packages at run time, so a conda dependency the site's numpy already satisfies
//! needs no second numpy. PyPI and conda mostly share names; where they do not (`torch` is
//! conda's `pytorch`, and conda's `graphviz` is the C tool, not the Python binding) the table
//! here says so, and the config can extend it.
//!
//! The distributions are read here, by `importlib.metadata`'s rules, rather than by asking
//! the interpreter: starting it and importing `importlib.metadata` costs some 50 ms at every
//! create, reading the headers takes a few, and `install` and `remove` never start the
//! interpreter at all.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    ffi::OsStr,
    fs::File,
    io::Read,
    path::{Path, PathBuf},
    str::FromStr,
    time::{Duration, Instant},
};

use anyhow::Result;
use rattler_conda_types::{PackageName, RepoDataRecord, Subdir, Version};
use serde::{Serialize, Serializer, ser::SerializeSeq};

use crate::{
    error::UserError,
    fs::Links,
    site::{
        RuleSource,
        provides::{STAND_IN_SCHEME, escape, stand_in_record},
    },
    yaml::ListMap,
};

/// PyPI names whose conda package has another name, from grayskull's map of the two
/// (`grayskull/strategy/config.yaml`), plus `tzdata` and `build`, whose conda packages of
/// the same name are something else.
const BUILT_IN: &[(&str, &[&str])] = &[
    ("torch", &["pytorch"]),
    ("tables", &["pytables"]),
    ("msgpack", &["msgpack-python"]),
    // conda's `matplotlib` is `matplotlib-base` plus a Qt backend.
    ("matplotlib", &["matplotlib-base", "matplotlib"]),
    ("dask", &["dask-core"]),
    ("graphviz", &["python-graphviz"]),
    ("flatbuffers", &["python-flatbuffers"]),
    ("kaleido", &["python-kaleido"]),
    ("xxhash", &["python-xxhash"]),
    ("opencv-python", &["opencv"]),
    ("pyqt5", &["pyqt"]),
    ("redis", &["redis-py"]),
    ("docker", &["docker-py"]),
    ("kubernetes", &["python-kubernetes"]),
    ("installer", &["python-installer"]),
    // conda's `tzdata` is the IANA database itself.
    ("tzdata", &["python-tzdata"]),
    ("build", &["python-build"]),
];

/// PEP 503's form of a PyPI name: lower case, each run of `-`, `_` and `.` one `-`.
pub(crate) fn normalize_pypi(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut in_run = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c.to_ascii_lowercase());
            in_run = false;
        }
    }
    out
}

/// Whether `name` is a PyPI project name (PEP 508): ASCII letters and digits, with `-`,
/// `_` and `.` inside.
fn is_pypi_name(name: &str) -> bool {
    let ok = |c: char| c.is_ascii_alphanumeric();
    name.starts_with(ok)
        && name.ends_with(ok)
        && name.chars().all(|c| ok(c) || matches!(c, '-' | '_' | '.'))
}

/// One entry: a PyPI name and the conda names its distribution counts as.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NameEntry {
    /// As written.
    pub(crate) pypi: String,
    /// Empty: never counts as installed.
    pub(crate) conda: Vec<String>,
    #[serde(skip)]
    names: Vec<PackageName>,
    pub(crate) source: RuleSource,
    /// The lower layer whose entry for the same name this one replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) replaces: Option<RuleSource>,
}

/// PyPI names to conda names: the built-in table, below the site file, below the user file.
#[derive(Debug, Clone)]
pub(crate) struct NameTable {
    /// By the PEP 503 form of the PyPI name.
    by_pypi: BTreeMap<String, NameEntry>,
}

impl Serialize for NameTable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.by_pypi.len()))?;
        for entry in self.by_pypi.values() {
            seq.serialize_element(entry)?;
        }
        seq.end()
    }
}

impl NameTable {
    /// The built-in table alone.
    #[cfg(test)]
    pub(crate) fn built_in() -> Self {
        Self::merge(&[]).expect("the built-in table is valid")
    }

    /// Every layer that sets `site_package_names`, highest first, over the built-in table;
    /// an entry replaces a lower one for the same (normalized) PyPI name.
    pub(crate) fn merge(layers: &[(RuleSource, &ListMap)]) -> Result<Self> {
        let mut by_pypi: BTreeMap<String, NameEntry> = BTreeMap::new();
        let built_in = ListMap {
            entries: BUILT_IN
                .iter()
                .map(|(pypi, conda)| crate::yaml::ListEntry {
                    key: (*pypi).to_owned(),
                    line: None,
                    values: conda.iter().map(|c| ((*c).to_owned(), None)).collect(),
                })
                .collect(),
        };
        let all = layers
            .iter()
            .map(|(s, m)| (s.clone(), *m))
            .chain(std::iter::once((RuleSource::Default, &built_in)));
        for (source, map) in all {
            let mut seen: BTreeMap<String, &str> = BTreeMap::new();
            for entry in &map.entries {
                let place = |line: Option<usize>| match line {
                    Some(line) => format!("{source}, line {line}"),
                    None => source.to_string(),
                };
                if !is_pypi_name(&entry.key) {
                    return Err(UserError::failure(format!(
                        "{}: site_package_names {:?} is not a PyPI name",
                        place(entry.line),
                        entry.key
                    ))
                    .with_hint("write the name as `pip show` gives it, e.g. `torch: pytorch`")
                    .into());
                }
                let key = normalize_pypi(&entry.key);
                if let Some(earlier) = seen.insert(key.clone(), &entry.key) {
                    return Err(UserError::failure(format!(
                        "{}: site_package_names {:?} is given twice (also as {earlier:?})",
                        place(entry.line),
                        entry.key
                    ))
                    .with_hint("keep one of them: PyPI names match ignoring case, `-`, `_` and `.`")
                    .into());
                }
                let names = entry
                    .values
                    .iter()
                    .map(|(conda, line)| {
                        PackageName::from_str(conda)
                            .ok()
                            .filter(|_| !conda.is_empty())
                            .ok_or_else(|| {
                                UserError::failure(format!(
                                    "{}: site_package_names {:?}: {conda:?} is not a conda package name",
                                    place(line.or(entry.line)),
                                    entry.key
                                ))
                                .with_hint(
                                    "give conda names (letters, digits, `-`, `_`, `.`), e.g. `torch: pytorch`, or `[]` for none",
                                )
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                match by_pypi.get_mut(&key) {
                    Some(higher) => {
                        higher.replaces.get_or_insert(source.clone());
                    }
                    None => {
                        by_pypi.insert(
                            key,
                            NameEntry {
                                pypi: entry.key.clone(),
                                conda: entry.values.iter().map(|(v, _)| v.clone()).collect(),
                                names,
                                source: source.clone(),
                                replaces: None,
                            },
                        );
                    }
                }
            }
        }
        Ok(Self { by_pypi })
    }

    /// The conda names a site distribution named `pypi` counts as: the table's, if it has
    /// the name (none for `[]`); otherwise the name in lower case as written (which keeps
    /// conda's `ruamel.yaml` and `typing_extensions`) and its PEP 503 form, if that differs.
    pub(crate) fn conda_names(&self, pypi: &str) -> Vec<PackageName> {
        let key = normalize_pypi(pypi);
        if let Some(entry) = self.by_pypi.get(&key) {
            return entry.names.clone();
        }
        if !is_pypi_name(pypi) {
            return Vec::new();
        }
        let lower = pypi.to_ascii_lowercase();
        let mut names = vec![lower.clone()];
        if key != lower {
            names.push(key);
        }
        names
            .iter()
            .filter_map(|n| PackageName::from_str(n).ok())
            .collect()
    }

    /// The entries, by normalized PyPI name.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = &NameEntry> {
        self.by_pypi.values()
    }
}

/// The build string of a record a site distribution stands for.
pub(crate) const SITE_BUILD: &str = "envmod_site";

/// The most of a `METADATA` or `PKG-INFO` file that is read. `Name` and `Version` are among
/// the first headers; what follows them (the long description, in the body or, in old
/// files, a `Description` header) can be large and is never needed.
const METADATA_HEAD: u64 = 64 << 10;

/// One distribution of the site Python.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SiteDist {
    /// As its metadata writes it (`PyYAML`).
    pub(crate) name: String,
    /// As its metadata writes it (`2.1.0+cu121`): what a report shows.
    pub(crate) version: String,
    /// The version the solver compares (see [`conda_version`]).
    pub(crate) conda_version: Version,
    /// The `.dist-info` or `.egg-info` it was read from.
    pub(crate) path: PathBuf,
}

/// What [`read`] found.
#[derive(Debug, Default)]
pub(crate) struct SiteRead {
    /// In path order, one per PEP 503 name.
    pub(crate) dists: Vec<SiteDist>,
    /// One line for each entry passed over and why, for `-v`.
    pub(crate) skipped: Vec<String>,
    pub(crate) elapsed: Duration,
}

/// The distributions in `dirs`, by `importlib.metadata`'s rules: each `*.dist-info` and
/// `*.egg-info` directory's `METADATA` (else `PKG-INFO`), and each `*.egg-info` file; the
/// `Name` and `Version` headers; the first directory in path order wins for a name. Nothing
/// here fails: an entry that cannot be read or makes no sense is passed over with a note,
/// because a site Python's odd corner must not stop a create.
///
/// The directories come from the probe or a manifest; a relative one is never read (it would
/// be relative to wherever envmod runs). Inside them, no link someone else made is followed,
/// and files are opened without following a link below the directory, so a planted link
/// cannot make envmod read a FIFO, a device or a file elsewhere.
pub(crate) fn read(dirs: &[PathBuf]) -> SiteRead {
    let started = Instant::now();
    let mut out = SiteRead::default();
    // PEP 503 name → where the one that counts was found.
    let mut first: HashMap<String, PathBuf> = HashMap::new();
    for dir in dirs {
        if !dir.is_absolute() {
            out.skipped.push(format!(
                "{} is not an absolute directory; not read",
                dir.display()
            ));
            continue;
        }
        let listing = match std::fs::read_dir(dir) {
            Ok(listing) => listing,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                continue;
            }
            Err(e) => {
                out.skipped
                    .push(format!("cannot list {}: {e}", dir.display()));
                continue;
            }
        };
        let mut entries: Vec<(std::ffi::OsString, std::fs::FileType)> = listing
            .filter_map(|e| e.ok())
            .filter(|e| is_metadata_entry(&e.file_name()))
            .filter_map(|e| Some((e.file_name(), e.file_type().ok()?)))
            .collect();
        // The listing's order is the filesystem's; sorted, two copies in one directory
        // (Debian's `cryptography-38.0.4.dist-info` and `cryptography.egg-info`) always
        // resolve the same way.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file_type) in entries {
            let path = dir.join(&name);
            let dist = match read_entry(dir, &name, file_type) {
                Ok(dist) => dist,
                Err(why) => {
                    out.skipped.push(why);
                    continue;
                }
            };
            let key = normalize_pypi(&dist.name);
            if let Some(earlier) = first.get(&key) {
                out.skipped.push(format!(
                    "{}: {} {} is hidden by {}, which comes first",
                    path.display(),
                    dist.name,
                    dist.version,
                    earlier.display()
                ));
                continue;
            }
            first.insert(key, path);
            out.dists.push(dist);
        }
    }
    out.elapsed = started.elapsed();
    out
}

/// `importlib.metadata` takes a name ending so, in any case, as a distribution's metadata.
fn is_metadata_entry(name: &OsStr) -> bool {
    let name = name.as_encoded_bytes();
    [&b".dist-info"[..], b".egg-info"].iter().any(|suffix| {
        name.len() > suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
    })
}

/// The distribution whose metadata is the entry `name` of `dir`, or why there is none.
fn read_entry(dir: &Path, name: &OsStr, file_type: std::fs::FileType) -> Result<SiteDist, String> {
    let path = dir.join(name);
    let (file, file_path) = open_metadata(dir, name, file_type)?;
    let mut head = Vec::new();
    file.take(METADATA_HEAD)
        .read_to_end(&mut head)
        .map_err(|e| format!("cannot read {}: {e}", file_path.display()))?;
    let cut = head.len() as u64 == METADATA_HEAD;
    let [dist_name, version] = headers(&head, cut);
    let text = |value: Vec<u8>, header: &str| {
        String::from_utf8(value)
            .map_err(|_| format!("{}: its {header} header is not UTF-8", file_path.display()))
    };
    let Some(dist_name) = dist_name else {
        return Err(format!("{} has no Name header", file_path.display()));
    };
    let dist_name = text(dist_name, "Name")?;
    if !is_pypi_name(&dist_name) {
        return Err(format!(
            "{}: {dist_name:?} is not a PyPI name",
            file_path.display()
        ));
    }
    let Some(version) = version else {
        let within = if cut { " in its first 64 KiB" } else { "" };
        return Err(format!(
            "{} names {dist_name} but has no Version header{within}",
            file_path.display()
        ));
    };
    let version = text(version, "Version")?;
    let conda_version = conda_version(&version)
        .map_err(|why| format!("{}: {dist_name} {version:?}: {why}", file_path.display()))?;
    Ok(SiteDist {
        name: dist_name,
        version,
        conda_version,
        path,
    })
}

/// The open metadata file of the entry `name` of `dir`, and its path. A link is followed
/// only when this user or root made it (a site installation that links its distributions
/// in); below the entry, no link is followed at all.
fn open_metadata(
    dir: &Path,
    name: &OsStr,
    file_type: std::fs::FileType,
) -> Result<(File, PathBuf), String> {
    use std::os::unix::fs::MetadataExt;
    let path = dir.join(name);
    let inside = |root: &Path, rel: &Path| -> Result<(File, PathBuf), String> {
        for file in ["METADATA", "PKG-INFO"] {
            let rel = rel.join(file);
            match crate::fs::open_regular_beneath(root, &rel) {
                Ok(f) => return Ok((f, root.join(rel))),
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
        Err(format!("{} has no METADATA or PKG-INFO", path.display()))
    };
    if file_type.is_symlink() {
        let meta = path
            .symlink_metadata()
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me && meta.uid() != 0 {
            let who = crate::fs::user_name(meta.uid()).unwrap_or_default();
            return Err(format!(
                "{} is a link that {who} made; not followed",
                path.display()
            ));
        }
        let target = std::fs::canonicalize(&path)
            .map_err(|e| format!("{} is a link that leads nowhere: {e}", path.display()))?;
        if target.is_dir() {
            return inside(&target, Path::new(""));
        }
        return crate::fs::open_regular(&target, Links::Refuse)
            .map(|f| (f, target))
            .map_err(|e| e.to_string());
    }
    if file_type.is_dir() {
        return inside(dir, Path::new(name));
    }
    crate::fs::open_regular_beneath(dir, Path::new(name))
        .map(|f| (f, path.clone()))
        .map_err(|e| e.to_string())
}

/// The values of the first `Name` and `Version` headers in `head`, as the `email` package
/// that `importlib.metadata` uses reads them: names in any case, continuation lines joined,
/// the headers ending at the first empty line or the first line that is not a header. When
/// `cut`, `head` is only the start of the file, and its last, partial line is not read.
fn headers(head: &[u8], cut: bool) -> [Option<Vec<u8>>; 2] {
    let mut lines: Vec<&[u8]> = head.split(|&b| b == b'\n').collect();
    if cut {
        lines.pop();
    }
    let mut found: [Option<Vec<u8>>; 2] = [None, None];
    let mut current = None;
    for line in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(&first) = line.first() else { break };
        if first == b' ' || first == b'\t' {
            if let Some(value) = current.and_then(|i: usize| found[i].as_mut()) {
                value.push(b' ');
                value.extend_from_slice(line.trim_ascii());
            }
            continue;
        }
        current = None;
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let key = &line[..colon];
        if !key.iter().all(|b| (0x21..=0x7e).contains(b)) {
            break;
        }
        let i = if key.eq_ignore_ascii_case(b"name") {
            0
        } else if key.eq_ignore_ascii_case(b"version") {
            1
        } else {
            continue;
        };
        if found[i].is_none() {
            found[i] = Some(line[colon + 1..].trim_ascii().to_vec());
            current = Some(i);
        }
    }
    found
}

/// The conda version a PEP 440 version counts as: its normalized public part (`1.0-1` is
/// `1.0.post1`, `2.1.0+cu121` is `2.1.0`), which is how conda-forge names the versions of
/// Python packages.
///
/// A local label (`+cu121`, a build's own mark) is dropped rather than skipped: no conda
/// package version carries one, so no conda dependency names one, and PEP 440 itself
/// ignores a candidate's local label when the specifier has none. Kept, conda would order
/// `2.1.0+cu121` after `2.1.0` and `==2.1.0` would not take it. The report still shows the
/// version as written.
fn conda_version(written: &str) -> Result<Version, String> {
    let pep =
        pep440_rs::Version::from_str(written).map_err(|_| "not a PEP 440 version".to_string())?;
    let public = pep.without_local().to_string();
    Version::from_str(&public).map_err(|e| format!("{public} is not a conda version: {e}"))
}

/// `envmod:site-python/<name>/<version>`, each %-escaped to one segment.
fn site_url(name: &PackageName, version: &Version) -> url::Url {
    let text = format!(
        "{STAND_IN_SCHEME}:site-python/{}/{}",
        escape(name.as_normalized()),
        escape(&version.to_string())
    );
    url::Url::parse(&text).expect("an escaped stand-in URL parses")
}

/// A site distribution as a record the solver sees, under one of its conda names.
#[derive(Debug, Clone)]
pub(crate) struct FromSite {
    pub(crate) record: RepoDataRecord,
    pub(crate) dist: SiteDist,
}

/// The records the site's distributions stand for: one per conda name each counts as (see
/// [`NameTable::conda_names`]; none for `[]`), the first distribution in path order winning
/// a name two of them give (the solver keeps only one favored record of a name).
pub(crate) fn site_records(
    dists: &[SiteDist],
    names: &NameTable,
    platform: Subdir,
) -> Vec<FromSite> {
    let mut taken = HashSet::new();
    let mut out = Vec::new();
    for dist in dists {
        for name in names.conda_names(&dist.name) {
            if !taken.insert(name.as_normalized().to_owned()) {
                continue;
            }
            let url = site_url(&name, &dist.conda_version);
            // Only a build string or a file name that does not parse fails, and both are
            // made of a PackageName, a Version and SITE_BUILD.
            if let Ok(record) =
                stand_in_record(&name, &dist.conda_version, SITE_BUILD, url, platform)
            {
                out.push(FromSite {
                    record,
                    dist: dist.clone(),
                });
            }
        }
    }
    out
}

/// [`python_packages_only`]'s answer.
#[derive(Debug)]
pub(crate) struct Guarded<T> {
    pub(crate) kept: Vec<T>,
    /// One line per record dropped, for `-v`.
    pub(crate) notes: Vec<String>,
}

/// The site records that can stand for the conda package of their name: those whose name
/// no record of `repodata` has, or at least one record of which is a Python package
/// (depends on `python`, or is `noarch: python`). A PyPI `zstd` binding is not conda's
/// `zstd`, the C library, and must not satisfy a dependency on it. One pass over `repodata`.
pub(crate) fn python_packages_only<'a, T>(
    site: Vec<T>,
    record: impl Fn(&T) -> &RepoDataRecord,
    repodata: impl IntoIterator<Item = &'a RepoDataRecord>,
) -> Guarded<T> {
    // Name → whether repodata has it, and whether as a Python package.
    let mut by_name: HashMap<String, (bool, bool)> = site
        .iter()
        .map(|s| {
            let name = record(s).package_record.name.as_normalized().to_owned();
            (name, (false, false))
        })
        .collect();
    for r in repodata {
        let p = &r.package_record;
        if let Some((named, python)) = by_name.get_mut(p.name.as_normalized()) {
            *named = true;
            *python =
                *python || p.noarch.is_python() || p.depends.iter().any(|d| depends_on_python(d));
        }
    }
    let mut out = Guarded {
        kept: Vec::new(),
        notes: Vec::new(),
    };
    for s in site {
        let p = &record(&s).package_record;
        let name = p.name.as_normalized();
        if by_name
            .get(name)
            .is_some_and(|(named, python)| *named && !*python)
        {
            out.notes.push(format!(
                "the site Python's {name} {} does not count as conda's {name}, which is not a Python package",
                p.version
            ));
        } else {
            out.kept.push(s);
        }
    }
    out
}

/// Whether a repodata dependency (`python >=3.9`, `python_abi 3.11.* *_cp311`) is on
/// `python` itself.
fn depends_on_python(spec: &str) -> bool {
    spec.split(|c: char| c.is_whitespace() || "<>=!~[;".contains(c))
        .next()
        .is_some_and(|name| name == "python")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::ListEntry;
    use std::os::unix::fs::symlink;

    /// `name version` of each distribution read, and the notes.
    fn found(dirs: &[&Path]) -> (Vec<String>, Vec<String>) {
        let dirs: Vec<PathBuf> = dirs.iter().map(|d| d.to_path_buf()).collect();
        let read = read(&dirs);
        let dists = read
            .dists
            .iter()
            .map(|d| format!("{} {}", d.name, d.version))
            .collect();
        (dists, read.skipped)
    }

    fn write(path: &Path, contents: impl AsRef<[u8]>) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }

    fn metadata(name: &str, version: &str) -> String {
        format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: s\n\nBody\n")
    }

    fn has_note(notes: &[String], path: &Path, needle: &str) -> bool {
        let path = path.display().to_string();
        notes
            .iter()
            .any(|n| n.contains(&path) && n.contains(needle))
    }

    #[test]
    fn the_site_pythons_distributions_are_those_importlib_metadata_finds() {
        let python = "/usr/bin/python3.11";
        let probed = crate::site::python::Probe::start(Path::new(python), None)
            .and_then(|p| p.wait())
            .expect("Debian's python3.11 is installed by tests/provision.sh");
        let read = read(&probed.library_dirs);
        let mut ours: Vec<(String, String)> = read
            .dists
            .iter()
            .map(|d| (normalize_pypi(&d.name), d.version.clone()))
            .collect();
        ours.sort();
        const ORACLE: &str = r#"import importlib.metadata as m, re
seen = {}
for d in m.distributions():
    seen.setdefault(re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(), d.version)
for k, v in sorted(seen.items()):
    print(k, v)
"#;
        let out = std::process::Command::new(python)
            .args(["-I", "-c", ORACLE])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let theirs: Vec<(String, String)> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (n, v) = l.split_once(' ').unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect();
        assert_eq!(ours, theirs, "notes: {:?}", read.skipped);
        assert!(
            ours.contains(&("numpy".into(), "1.24.2".into())),
            "Debian's python3-numpy is missing: apt-get install python3-numpy (tests/provision.sh)"
        );
    }

    #[test]
    fn dist_info_egg_info_and_the_first_on_the_path() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (a, b) = (a.path(), b.path());
        write(
            &a.join("foo-1.0.dist-info/METADATA"),
            metadata("foo", "1.0"),
        );
        // An egg-info file (distutils), an egg-info directory (setuptools), any case.
        write(&a.join("bar-2.0.egg-info"), metadata("bar", "2.0"));
        write(&a.join("baz-3.0.egg-info/PKG-INFO"), metadata("baz", "3.0"));
        write(
            &a.join("Up_Case-1.0.DIST-INFO/METADATA"),
            metadata("Up_Case", "1.0"),
        );
        // Headers in any case, CRLF, folded lines, the first of two, none after the body.
        write(
            &a.join("odd-1.dist-info/METADATA"),
            "name: odd\r\nSummary: a\r\n  b\r\nVERSION: 1.5\r\nVersion: 9\r\n\r\nVersion: 8\r\n",
        );
        write(&a.join("notes.txt"), "Name: x\nVersion: 1\n");
        // Hidden by a's `foo` (PEP 503: `Foo` is `foo`), and one only b has.
        write(
            &b.join("Foo-9.0.dist-info/METADATA"),
            metadata("Foo", "9.0"),
        );
        write(
            &b.join("qux-1.0.dist-info/METADATA"),
            metadata("qux", "1.0"),
        );
        let missing = a.join("does-not-exist");
        let (dists, notes) = found(&[a, &missing, b]);
        assert_eq!(
            dists,
            [
                "Up_Case 1.0",
                "bar 2.0",
                "baz 3.0",
                "foo 1.0",
                "odd 1.5",
                "qux 1.0"
            ],
            "{notes:?}"
        );
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(
            has_note(&notes, &b.join("Foo-9.0.dist-info"), "hidden by"),
            "{notes:?}"
        );
    }

    #[test]
    fn odd_metadata_is_passed_over_with_a_note() {
        let d = tempfile::tempdir().unwrap();
        let d = d.path();
        let mut bad_name = b"Name: caf\xe9\nVersion: 1.0\n".to_vec();
        write(&d.join("cafe-1.0.dist-info/METADATA"), &bad_name);
        // Bad bytes outside Name and Version do no harm.
        bad_name = b"Name: ok\nSummary: caf\xe9\nVersion: 1.0\n\n\xff\n".to_vec();
        write(&d.join("ok-1.0.dist-info/METADATA"), &bad_name);
        write(
            &d.join("nover-1.dist-info/METADATA"),
            "Name: nover\n\nVersion: 1\n",
        );
        write(&d.join("noname-1.dist-info/METADATA"), "Version: 1\n");
        write(
            &d.join("unknown-0.dist-info/METADATA"),
            metadata("unknown", "UNKNOWN"),
        );
        write(
            &d.join("sp-0.dist-info/METADATA"),
            metadata("sp", "1.0 beta"),
        );
        write(
            &d.join("bad name-0.dist-info/METADATA"),
            metadata("bad name", "1"),
        );
        std::fs::create_dir_all(d.join("empty-1.dist-info")).unwrap();
        // Beyond 64 KiB: a long body is never read; headers that long are not either.
        let body = "x".repeat(200 << 10);
        write(
            &d.join("big-1.0.dist-info/METADATA"),
            metadata("big", "1.0") + &body,
        );
        let long = format!("Name: long\nDescription: {body}\nVersion: 1.0\n");
        write(&d.join("long-1.0.dist-info/METADATA"), long);
        let fifo = d.join("fifo-1.dist-info/METADATA");
        std::fs::create_dir_all(fifo.parent().unwrap()).unwrap();
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let (dists, notes) = found(&[d]);
        assert_eq!(dists, ["big 1.0", "ok 1.0"], "{notes:?}");
        for (entry, needle) in [
            (
                "cafe-1.0.dist-info/METADATA",
                "its Name header is not UTF-8",
            ),
            (
                "nover-1.dist-info/METADATA",
                "names nover but has no Version header",
            ),
            ("noname-1.dist-info/METADATA", "has no Name header"),
            (
                "unknown-0.dist-info/METADATA",
                "unknown \"UNKNOWN\": not a PEP 440 version",
            ),
            ("sp-0.dist-info/METADATA", "not a PEP 440 version"),
            ("bad name-0.dist-info/METADATA", "is not a PyPI name"),
            ("empty-1.dist-info", "has no METADATA or PKG-INFO"),
            (
                "long-1.0.dist-info/METADATA",
                "no Version header in its first 64 KiB",
            ),
            ("fifo-1.dist-info/METADATA", "is a FIFO, not a regular file"),
        ] {
            assert!(
                has_note(&notes, &d.join(entry), needle),
                "{entry}: {notes:?}"
            );
        }
        assert_eq!(notes.len(), 9, "{notes:?}");
    }

    #[test]
    fn versions_count_as_conda_versions() {
        let v = |w: &str| conda_version(w).map(|v| v.to_string());
        assert_eq!(v("1.24.2").unwrap(), "1.24.2");
        assert_eq!(v("2.1.0+cu121").unwrap(), "2.1.0");
        assert_eq!(v("1.0-1").unwrap(), "1.0.post1");
        assert_eq!(v("2.0.0RC1").unwrap(), "2.0.0rc1");
        assert_eq!(v("1!2.0").unwrap(), "1!2.0");
        assert!(v("UNKNOWN").is_err());
        assert!(v("").is_err());
        let d = tempfile::tempdir().unwrap();
        write(
            &d.path().join("torch-2.1.0+cu121.dist-info/METADATA"),
            metadata("torch", "2.1.0+cu121"),
        );
        let read = read(&[d.path().to_path_buf()]);
        assert_eq!(read.dists[0].version, "2.1.0+cu121");
        assert_eq!(read.dists[0].conda_version.to_string(), "2.1.0");
        let spec = rattler_conda_types::VersionSpec::from_str(
            "==2.1.0",
            rattler_conda_types::ParseStrictness::Strict,
        )
        .unwrap();
        assert!(spec.matches(&read.dists[0].conda_version));
    }

    #[test]
    fn no_link_someone_else_made_is_followed_nor_a_relative_directory_read() {
        let (site, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (site, elsewhere) = (site.path(), elsewhere.path());
        write(&elsewhere.join("mine/METADATA"), metadata("mine", "1.0"));
        write(
            &elsewhere.join("theirs/METADATA"),
            metadata("theirs", "1.0"),
        );
        write(&elsewhere.join("file"), metadata("linkedfile", "1.0"));
        // A site installation that links its distributions in: this user's (or root's)
        // links are followed, to a directory or a file.
        symlink(elsewhere.join("mine"), site.join("mine-1.0.dist-info")).unwrap();
        symlink(elsewhere.join("file"), site.join("linkedfile-1.0.egg-info")).unwrap();
        let planted = site.join("theirs-1.0.dist-info");
        symlink(elsewhere.join("theirs"), &planted).unwrap();
        let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
        std::os::unix::fs::lchown(&planted, Some(nobody.uid.as_raw()), None)
            .expect("making a link that another user owns needs root: run the unit tests as root");
        // Below an entry, no link is followed at all.
        std::fs::create_dir(site.join("inner-1.0.dist-info")).unwrap();
        symlink(
            elsewhere.join("theirs/METADATA"),
            site.join("inner-1.0.dist-info/METADATA"),
        )
        .unwrap();
        let (dists, notes) = found(&[site]);
        assert_eq!(dists, ["linkedfile 1.0", "mine 1.0"], "{notes:?}");
        assert!(
            has_note(&notes, &planted, "is a link that nobody made; not followed"),
            "{notes:?}"
        );
        assert!(
            has_note(
                &notes,
                &site.join("inner-1.0.dist-info/METADATA"),
                "is a symbolic link"
            ),
            "{notes:?}"
        );

        // The same directory, named relative to where envmod runs, is never read.
        let cwd = std::env::current_dir().unwrap();
        let relative: PathBuf = cwd
            .components()
            .skip(1)
            .map(|_| Path::new(".."))
            .collect::<PathBuf>()
            .join(site.strip_prefix("/").unwrap());
        assert!(relative.is_relative() && relative.join("mine-1.0.dist-info").exists());
        let read = read(std::slice::from_ref(&relative));
        assert!(read.dists.is_empty(), "{:?}", read.dists);
        assert_eq!(
            read.skipped,
            [format!(
                "{} is not an absolute directory; not read",
                relative.display()
            )]
        );
    }

    fn dist(name: &str, version: &str) -> SiteDist {
        SiteDist {
            name: name.into(),
            version: version.into(),
            conda_version: conda_version(version).unwrap(),
            path: PathBuf::from(format!("/site/{name}-{version}.dist-info")),
        }
    }

    #[test]
    fn site_distributions_become_stand_ins_under_their_conda_names() {
        let none = map(&[("setuptools", &[])]);
        let table = NameTable::merge(&[(RuleSource::SiteFile("/s".into()), &none)]).unwrap();
        let dists = [
            dist("torch", "2.1.0+cu121"),
            dist("numpy", "1.24.2"),
            dist("setuptools", "66.1.1"),
            dist("matplotlib", "3.6.3"),
            dist("ruamel.yaml", "0.17.21"),
            dist("epoch", "1!2.0"),
            // A second distribution for a name already given: the first keeps it.
            dist("matplotlib-base", "9.9"),
        ];
        let records = site_records(&dists, &table, Subdir::Linux64);
        let shown: Vec<String> = records
            .iter()
            .map(|r| {
                let p = &r.record.package_record;
                format!(
                    "{}={}={} {}",
                    p.name.as_normalized(),
                    p.version,
                    p.build,
                    r.dist.name
                )
            })
            .collect();
        assert_eq!(
            shown,
            [
                "pytorch=2.1.0=envmod_site torch",
                "numpy=1.24.2=envmod_site numpy",
                "matplotlib-base=3.6.3=envmod_site matplotlib",
                "matplotlib=3.6.3=envmod_site matplotlib",
                "ruamel.yaml=0.17.21=envmod_site ruamel.yaml",
                "ruamel-yaml=0.17.21=envmod_site ruamel.yaml",
                "epoch=1!2.0=envmod_site epoch",
            ]
        );
        for r in &records {
            assert!(
                crate::site::provides::is_stand_in(&r.record.url),
                "{}",
                r.record.url
            );
            assert_eq!(r.record.package_record.subdir, "linux-64");
            assert!(r.record.package_record.depends.is_empty());
        }
        assert_eq!(
            records[0].record.url.as_str(),
            "envmod:site-python/pytorch/2.1.0"
        );
        assert_eq!(records[0].dist.version, "2.1.0+cu121");
        assert_eq!(
            records[6].record.url.as_str(),
            "envmod:site-python/epoch/1%212.0"
        );
    }

    fn repodata(name: &str, depends: &[&str], noarch_python: bool) -> RepoDataRecord {
        let url = url::Url::parse(&format!("file:///ch/linux-64/{name}-1-0.conda")).unwrap();
        let mut r = stand_in_record(
            &PackageName::from_str(name).unwrap(),
            &Version::from_str("1").unwrap(),
            "0",
            url,
            Subdir::Linux64,
        )
        .unwrap();
        r.package_record.depends = depends.iter().map(|d| (*d).to_owned()).collect();
        if noarch_python {
            r.package_record.noarch = rattler_conda_types::NoArchType::python();
        }
        r
    }

    #[test]
    fn a_site_distribution_never_stands_for_a_c_library_of_its_name() {
        let dists = ["zstd", "numpy", "six", "lz4", "fancy", "python-zz"].map(|n| dist(n, "1.0"));
        let site = site_records(&dists, &NameTable::built_in(), Subdir::Linux64);
        let channel = [
            repodata("zstd", &["libzlib >=1.2.13", "__glibc >=2.17"], false),
            repodata(
                "numpy",
                &["libblas >=3.9", "python >=3.11,<3.12.0a0"],
                false,
            ),
            repodata("numpy", &["python_abi 3.11.* *_cp311"], false),
            repodata("six", &[], true),
            // conda-forge has both a C `lz4` and, in another build, a binding of the name.
            repodata("lz4", &["lz4-c"], false),
            repodata("lz4", &["python>=3.9"], false),
            repodata("python-zz", &["python_abi"], false),
            repodata("unrelated", &["python"], false),
        ];
        let guarded = python_packages_only(site, |s: &FromSite| &s.record, &channel);
        let kept: Vec<&str> = guarded
            .kept
            .iter()
            .map(|s| s.record.package_record.name.as_normalized())
            .collect();
        assert_eq!(kept, ["numpy", "six", "lz4", "fancy"]);
        assert_eq!(
            guarded.notes,
            [
                "the site Python's zstd 1.0 does not count as conda's zstd, which is not a Python package",
                "the site Python's python-zz 1.0 does not count as conda's python-zz, which is not a Python package",
            ]
        );
    }

    fn names(t: &NameTable, pypi: &str) -> Vec<String> {
        t.conda_names(pypi)
            .iter()
            .map(|n| n.as_normalized().to_owned())
            .collect()
    }

    fn map(entries: &[(&str, &[&str])]) -> ListMap {
        ListMap {
            entries: entries
                .iter()
                .enumerate()
                .map(|(i, (k, v))| ListEntry {
                    key: (*k).into(),
                    line: Some(i + 1),
                    values: v.iter().map(|v| ((*v).to_owned(), Some(i + 1))).collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn pypi_names_become_conda_names() {
        let t = NameTable::built_in();
        assert_eq!(names(&t, "torch"), ["pytorch"]);
        assert_eq!(names(&t, "Torch"), ["pytorch"]);
        assert_eq!(names(&t, "matplotlib"), ["matplotlib-base", "matplotlib"]);
        assert_eq!(names(&t, "tzdata"), ["python-tzdata"]);
        assert_eq!(names(&t, "opencv_python"), ["opencv"]);
        assert_eq!(names(&t, "numpy"), ["numpy"]);
        assert_eq!(names(&t, "ruamel.yaml"), ["ruamel.yaml", "ruamel-yaml"]);
        assert_eq!(
            names(&t, "typing_extensions"),
            ["typing_extensions", "typing-extensions"]
        );
        assert_eq!(names(&t, "PyYAML"), ["pyyaml"]);
        assert!(names(&t, "../x").is_empty());
        assert_eq!(normalize_pypi("A__b.-C"), "a-b-c");
    }

    #[test]
    fn the_config_extends_and_replaces_the_table() {
        let user = map(&[("my_site.lib", &["my-site-lib", "my-site-lib-base"])]);
        let site = map(&[
            ("torch", &["pytorch-site"]),
            ("setuptools", &[]),
            ("My-Site-Lib", &["x"]),
        ]);
        let t = NameTable::merge(&[
            (RuleSource::UserFile("/u".into()), &user),
            (RuleSource::SiteFile("/s".into()), &site),
        ])
        .unwrap();
        assert_eq!(names(&t, "torch"), ["pytorch-site"]);
        assert!(names(&t, "setuptools").is_empty());
        assert_eq!(
            names(&t, "my-site-lib"),
            ["my-site-lib", "my-site-lib-base"]
        );
        let entry = |pypi: &str| t.entries().find(|e| e.pypi == pypi).unwrap().clone();
        assert_eq!(entry("torch").replaces, Some(RuleSource::Default));
        assert_eq!(
            entry("my_site.lib").replaces,
            Some(RuleSource::SiteFile("/s".into()))
        );
        assert_eq!(entry("dask").source, RuleSource::Default);
    }

    #[test]
    fn a_bad_entry_names_the_file_and_the_line() {
        for (entries, needle) in [
            (
                map(&[("ok", &[]), ("torch", &["py torch"])]),
                "line 2: site_package_names \"torch\": \"py torch\" is not a conda package name",
            ),
            (
                map(&[("bad name", &["x"])]),
                "line 1: site_package_names \"bad name\" is not a PyPI name",
            ),
            (
                map(&[("a-b", &[]), ("A_B", &[])]),
                "line 2: site_package_names \"A_B\" is given twice",
            ),
        ] {
            let err = NameTable::merge(&[(RuleSource::SiteFile("/s".into()), &entries)])
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with("site file /s, ") && err.contains(needle),
                "{err}"
            );
        }
    }
}

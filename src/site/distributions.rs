//! The site Python's own distributions, as conda names. In site mode the environment sees the
//! site's packages at run time, so a conda dependency the site's numpy already satisfies
//! needs no second numpy. PyPI and conda mostly share names; where they do not (`torch` is
//! conda's `pytorch`, and conda's `graphviz` is the C tool, not the Python binding) the table
//! here says so, and the config can extend it.

use std::{collections::BTreeMap, str::FromStr};

use anyhow::Result;
use rattler_conda_types::PackageName;
use serde::{Serialize, Serializer, ser::SerializeSeq};

use crate::{error::UserError, site::RuleSource, yaml::ListMap};

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
    pub(crate) fn entries(&self) -> impl Iterator<Item = &NameEntry> {
        self.by_pypi.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::ListEntry;

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

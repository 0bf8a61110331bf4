//! What `envmod show` reports about one environment: every package it has and where that
//! comes from, its recorded modules, its outputs and whether each is there, and whether it
//! is shared or frozen.
//!
//! A shared environment's files are its group's to write, so everything here is read as
//! input: the manifest, conda-meta and the pip metadata through bounded reads of regular
//! files, the pip tree with no link followed on the way, and no output path read that the
//! manifest could not have been given by envmod. Nothing is written and nothing is finished:
//! a report must not change what it reports on.

use std::{
    collections::HashSet,
    ffi::OsStr,
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::Result;
use serde::Serialize;

use crate::{
    conda,
    env::{ctx::Ctx, prefix::EnvTarget, record},
    manifest::{Manifest, PythonMode, Sharing},
    outputs::state::{OutputState, head_beneath},
    site::{
        distributions,
        provides::{MODULE_BUILD, StandIn},
    },
};

/// Where a package of the environment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Origin {
    /// Linked from a channel; conda-meta records it.
    Conda,
    /// Installed by pip into the environment's site-packages.
    Pip,
    /// The site Python, or one of its distributions, which the environment sees at run time.
    Site,
    /// Provided by a recorded module, as the manifest records it.
    Module,
}

impl Origin {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Origin::Conda => "conda",
            Origin::Pip => "pip",
            Origin::Site => "site",
            Origin::Module => "module",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Package {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) build: Option<String>,
    /// The channel a conda package came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) channel: Option<String>,
    /// The module that provides it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) module: Option<String>,
    /// Where pip installed it from, when pip recorded that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) location: Option<String>,
    /// Its metadata directory (pip, site), or the interpreter (the site's python).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<PathBuf>,
    /// A site distribution the environment has its own copy of, which comes first.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) shadowed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PythonShown {
    pub(crate) mode: PythonMode,
    pub(crate) version: String,
    pub(crate) executable: PathBuf,
}

/// The report on one environment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Shown {
    pub(crate) name: String,
    pub(crate) prefix: PathBuf,
    /// How a command line names it again: `-n NAME` or `-p PREFIX`.
    pub(crate) cli: String,
    pub(crate) python: PythonShown,
    /// Who owns its directory.
    pub(crate) owner: Option<String>,
    pub(crate) shared: Option<Sharing>,
    pub(crate) frozen: bool,
    pub(crate) modules: Vec<String>,
    pub(crate) packages: Vec<Package>,
    pub(crate) outputs: Vec<OutputState>,
    /// What the report could not read, or reads with doubt, one line each.
    pub(crate) warnings: Vec<String>,
}

/// The most of a pip `METADATA` file read: its `Name` and `Version` come first.
const METADATA_HEAD: u64 = 64 << 10;

/// Everything `envmod show` reports on `target`, under a shared lock.
pub(crate) fn show(target: &EnvTarget, ctx: &Ctx<'_>) -> Result<Shown> {
    let opened = crate::env::prefix::open_to_read(target)?;
    let (m, real) = (&opened.manifest, &opened.real);
    let mut warnings = Vec::new();
    if !record::agrees(ctx.environ, real, m) {
        warnings.push(format!(
            "the manifest of {} was changed since you last wrote its outputs; what it records is someone else's choice",
            m.name
        ));
    }
    let records = conda::prefix::installed_records(real)?;
    let mut packages: Vec<Package> = records.iter().map(conda_package).collect();
    packages.extend(pip_packages(real, &records, &mut warnings));
    packages.extend(site_packages(m, ctx));
    packages.extend(module_packages(m));
    mark_shadowed(&mut packages, ctx);
    packages.sort_by_key(|p| (p.name.to_lowercase(), p.origin));
    let outputs = crate::outputs::state::of(m, real, &target.cli());
    use std::os::unix::fs::MetadataExt;
    let owner = std::fs::symlink_metadata(real)
        .ok()
        .and_then(|meta| crate::fs::user_name(meta.uid()));
    Ok(Shown {
        name: m.name.to_string(),
        prefix: m.prefix.clone(),
        cli: target.cli(),
        python: PythonShown {
            mode: m.python.mode,
            version: m.python.site.version.clone(),
            executable: m.python.site.executable.clone(),
        },
        owner,
        shared: m.shared.clone(),
        frozen: m.frozen,
        modules: m.modules.iter().map(|l| l.full_name.clone()).collect(),
        packages,
        outputs,
        // Each names paths a group member chose (a `.dist-info` may be named with a line
        // break and a line of its own), so each stays one line.
        warnings: warnings
            .iter()
            .map(|w| crate::escape::shown(w).into_owned())
            .collect(),
    })
}

fn conda_package(r: &rattler_conda_types::PrefixRecord) -> Package {
    let p = &r.repodata_record.package_record;
    Package {
        name: p.name.as_normalized().to_owned(),
        version: p.version.to_string(),
        origin: Origin::Conda,
        build: Some(p.build.to_string()),
        channel: r.repodata_record.channel.clone(),
        module: None,
        location: None,
        path: None,
        shadowed: false,
    }
}

/// Every distribution in `lib/python*/site-packages` of `real` that no conda package owns
/// and whose installer is not conda: what pip installed. No link is followed on the way (a
/// group member could point `lib/python3.11` anywhere); what cannot be read is a warning.
fn pip_packages(
    real: &Path,
    records: &[rattler_conda_types::PrefixRecord],
    warnings: &mut Vec<String>,
) -> Vec<Package> {
    let files = conda::pip::conda_files(records);
    let owned: HashSet<&Path> = files.iter().filter_map(|p| p.parent()).collect();
    let mut out = Vec::new();
    let lib = Path::new("lib");
    let pythons = match crate::fs::list_beneath(real, lib) {
        Ok(names) => names,
        Err(e) => {
            warnings.push(format!("pip packages not read: {e}"));
            return out;
        }
    };
    for py in pythons
        .iter()
        .filter(|n| n.to_string_lossy().starts_with("python"))
    {
        let site = lib.join(py).join("site-packages");
        let names = match crate::fs::list_beneath(real, &site) {
            Ok(names) => names,
            // `lib/python3.11` may be a file or hold no site-packages.
            Err(e) => {
                let link = std::fs::symlink_metadata(real.join(&site))
                    .is_ok_and(|m| m.file_type().is_symlink());
                if link {
                    warnings.push(format!(
                        "pip packages not read: {} is a symbolic link, which envmod does not follow",
                        real.join(&site).display()
                    ));
                } else if !is_missing(&e) {
                    warnings.push(format!("pip packages not read: {e}"));
                }
                continue;
            }
        };
        for name in names.iter().filter(|n| has_suffix(n, ".dist-info")) {
            let dir = site.join(name);
            if owned.contains(dir.as_path()) {
                continue;
            }
            let installer = head_beneath(real, &dir.join("INSTALLER"), 256).unwrap_or_default();
            if installer.trim() == "conda" {
                continue;
            }
            let Some((name, version)) = head_beneath(real, &dir.join("METADATA"), METADATA_HEAD)
                .as_deref()
                .and_then(name_and_version)
            else {
                warnings.push(format!(
                    "{} has no readable METADATA; not listed",
                    real.join(&dir).display()
                ));
                continue;
            };
            let location = head_beneath(real, &dir.join("direct_url.json"), 64 << 10)
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v.get("url")?.as_str().map(str::to_owned));
            out.push(Package {
                name,
                version,
                origin: Origin::Pip,
                build: None,
                channel: None,
                module: None,
                location,
                path: Some(real.join(&dir)),
                shadowed: false,
            });
        }
    }
    out
}

/// Whether `list_beneath` failed because the directory is not there (or is no directory).
fn is_missing(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| {
            io.raw_os_error() == Some(libc::ENOTDIR) || io.kind() == std::io::ErrorKind::NotFound
        })
}

fn has_suffix(name: &OsStr, suffix: &str) -> bool {
    name.to_string_lossy().ends_with(suffix)
}

/// The `Name` and `Version` headers of a core metadata file.
fn name_and_version(text: &str) -> Option<(String, String)> {
    let (mut name, mut version) = (None, None);
    for line in text.lines().take_while(|l| !l.is_empty()) {
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_owned());
        } else if let Some(v) = line.strip_prefix("Version:") {
            version = Some(v.trim().to_owned());
        }
    }
    Some((name?, version?))
}

/// In site mode, the site Python itself and its distributions that count as installed (those
/// with a conda name), read from where the manifest recorded them, as a solve would.
fn site_packages(m: &Manifest, ctx: &Ctx<'_>) -> Vec<Package> {
    if m.python.mode != PythonMode::Site {
        return Vec::new();
    }
    let mut out = vec![Package {
        name: "python".into(),
        version: m.python.site.version.clone(),
        origin: Origin::Site,
        build: None,
        channel: None,
        module: None,
        location: None,
        path: Some(m.python.site.executable.clone()),
        shadowed: false,
    }];
    let Some(p) = m.provided.as_ref().filter(|p| !p.ignore_site_packages) else {
        return out;
    };
    let read = distributions::read(&p.site_packages);
    for dist in read.dists {
        // One row a distribution, under the first name it counts as.
        if let Some(name) = ctx.site.names.conda_names(&dist.name).first() {
            out.push(Package {
                name: name.as_normalized().to_owned(),
                version: dist.version.clone(),
                origin: Origin::Site,
                build: None,
                channel: None,
                module: None,
                location: None,
                path: Some(dist.path.clone()),
                shadowed: false,
            });
        }
    }
    out
}

/// What the recorded modules provide, as the manifest records it: its records and virtual
/// packages (a constraint is no package).
fn module_packages(m: &Manifest) -> Vec<Package> {
    let Some(p) = &m.provided else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for provision in &p.modules {
        for text in &provision.provides {
            let (name, version, build) = match StandIn::from_str(text) {
                Ok(StandIn::Record {
                    name,
                    version,
                    build,
                }) => (
                    name.as_normalized().to_owned(),
                    version.to_string(),
                    (build != MODULE_BUILD).then_some(build),
                ),
                Ok(StandIn::Virtual(v)) => (
                    v.name.as_normalized().to_owned(),
                    v.version.to_string(),
                    None,
                ),
                Ok(StandIn::Constraint(_)) | Err(_) => continue,
            };
            out.push(Package {
                name,
                version,
                origin: Origin::Module,
                build,
                channel: None,
                module: Some(provision.module.clone()),
                location: None,
                path: None,
                shadowed: false,
            });
        }
    }
    out
}

/// Mark each site distribution the environment has its own copy of (from conda or pip),
/// which comes first on `sys.path`.
fn mark_shadowed(packages: &mut [Package], ctx: &Ctx<'_>) {
    let own: HashSet<String> = packages
        .iter()
        .flat_map(|p| match p.origin {
            Origin::Conda => vec![p.name.clone()],
            Origin::Pip => ctx
                .site
                .names
                .conda_names(&p.name)
                .iter()
                .map(|n| n.as_normalized().to_owned())
                .collect(),
            Origin::Site | Origin::Module => Vec::new(),
        })
        .collect();
    for p in packages.iter_mut() {
        if p.origin == Origin::Site && p.name != "python" && own.contains(&p.name) {
            p.shadowed = true;
        }
    }
}

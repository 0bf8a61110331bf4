//! The packages a change names, checked against what the environment asked for and holds:
//! `remove` drops names from the requested specs, `update` lets named packages move while
//! the solver keeps the rest where they are.

use std::path::Path;

use anyhow::Result;
use rattler_conda_types::{PackageName, PrefixRecord, RepoDataRecord};

use crate::{
    conda::{self, specs::Spec},
    env::{plan::Change, prefix::EnvTarget},
    error::UserError,
    manifest::{Manifest, PythonMode},
    site::python::{self, Interpreter},
};

/// The requested specs once `names` are removed, refusing names that are not there.
pub(super) fn removed_specs(
    manifest: &Manifest,
    names: &[String],
    installed: &[PrefixRecord],
) -> Result<Vec<String>> {
    let mut parsed = Vec::new();
    for raw in names {
        let spec = Spec::parse(raw)?;
        if spec.is_python() {
            return Err(UserError::usage("python cannot be removed from an environment").into());
        }
        let name = spec.name().clone();
        if !has_package(manifest, installed, &name) {
            return Err(UserError::failure(format!(
                "package {raw} is not installed in {}",
                manifest.name
            ))
            .with_hint(format!(
                "`envmod list` and {} show what is there",
                manifest.prefix.join("conda-meta").display()
            ))
            .into());
        }
        parsed.push(name);
    }
    conda::specs::without(&manifest.specs, &parsed)
}

/// The specs an update solves: the requested ones, unchanged. Each name must be a package
/// the environment asked for or holds.
pub(super) fn updated_specs(
    manifest: &Manifest,
    names: &[String],
    installed: &[PrefixRecord],
) -> Result<Vec<String>> {
    for name in moving(names)? {
        if !has_package(manifest, installed, &name) {
            return Err(UserError::usage(format!(
                "package {} is not installed in {}",
                name.as_normalized(),
                manifest.name
            ))
            .with_hint(format!(
                "`envmod install -n {} {}` adds it; `envmod show` lists what is there",
                manifest.name,
                name.as_normalized()
            ))
            .into());
        }
    }
    Ok(manifest.specs.clone())
}

/// Whether the environment asked for `name` or holds it.
fn has_package(manifest: &Manifest, installed: &[PrefixRecord], name: &PackageName) -> bool {
    manifest
        .specs
        .iter()
        .any(|s| Spec::parse(s).is_ok_and(|s| s.name() == name))
        || installed
            .iter()
            .any(|r| r.repodata_record.package_record.name == *name)
}

/// The names an update lets move.
fn moving(names: &[String]) -> Result<Vec<PackageName>> {
    names
        .iter()
        .map(|raw| {
            PackageName::try_from(raw.as_str()).map_err(|e| {
                UserError::usage(format!("{raw} is not a package name: {e}"))
                    .with_hint("name packages only, as `envmod update -n ENV numpy`; the versions come from the requested specs")
                    .into()
            })
        })
        .collect()
}

/// The installed records the solver favors: all of them for a change that adds or removes
/// specs, so little else moves; for an update, those it does not let move (none with
/// `--all`), so that the solver picks the newest versions of the others.
pub(super) fn favored(change: &Change, installed: &[PrefixRecord]) -> Vec<RepoDataRecord> {
    let moves: Vec<PackageName> = match change {
        Change::Update(u) if u.names.is_empty() => return Vec::new(),
        Change::Update(u) => moving(&u.names).unwrap_or_default(),
        _ => Vec::new(),
    };
    installed
        .iter()
        .filter(|r| !moves.contains(&r.repodata_record.package_record.name))
        .map(|r| r.repodata_record.clone())
        .collect()
}

/// In site mode, the site Python the environment was made on, asked again: packages built
/// for one minor version do not import on another, so an update there would only hide a
/// broken environment. The rebuild is named instead.
pub(super) fn check_site_python(old: &Manifest, cache: &Path, target: &EnvTarget) -> Result<()> {
    if old.python.mode != PythonMode::Site {
        return Ok(());
    }
    let made_on = &old.python.site;
    let now = python::Probe::start(&made_on.executable, Some(cache)).and_then(|p| p.wait());
    match now {
        Ok(now) if same_minor(made_on, &now.python) => Ok(()),
        Ok(now) => Err(rebuild(
            old,
            target,
            format!(
                "the site Python {} is {} now; {} was made on {}",
                made_on.executable.display(),
                now.python.version,
                old.name,
                made_on.version
            ),
        )),
        Err(e) => Err(rebuild(
            old,
            target,
            format!(
                "the site Python {} that {} was made on does not run: {e:#}",
                made_on.executable.display(),
                old.name
            ),
        )),
    }
}

fn same_minor(made_on: &Interpreter, now: &Interpreter) -> bool {
    (made_on.major, made_on.minor) == (now.major, now.minor)
}

/// Refuse an update of `old`, naming the rebuild on the site's Python of today.
fn rebuild(old: &Manifest, target: &EnvTarget, why: String) -> anyhow::Error {
    let cli = target.cli();
    UserError::failure(format!("{why}; nothing was changed"))
        .with_hint(format!(
            "rebuild it: `envmod export {cli} -o {name}.yml`, `envmod delete {cli}`, then `envmod create -f {name}.yml`",
            name = old.name
        ))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: &str) -> Interpreter {
        let mut parts = version.split('.').map(|p| p.parse().unwrap());
        Interpreter {
            executable: "/usr/bin/python3".into(),
            version: version.into(),
            major: parts.next().unwrap(),
            minor: parts.next().unwrap(),
            pip: true,
        }
    }

    #[test]
    fn a_patch_release_is_the_same_python_and_a_minor_one_is_not() {
        assert!(same_minor(&at("3.11.2"), &at("3.11.9")));
        assert!(!same_minor(&at("3.11.9"), &at("3.12.0")));
        assert!(!same_minor(&at("3.11.9"), &at("4.11.0")));
    }
}

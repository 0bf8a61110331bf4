//! A lock is installed with no solve, so what its packages need of this site (the stand-ins
//! it marks, provided by a module where it was made, and the virtual packages) is checked
//! here before anything is installed; nothing else would notice.

use std::path::Path;

use anyhow::Result;
use rattler_conda_types::{
    GenericVirtualPackage, MatchSpec, Matches, PackageName, ParseStrictness, RepoDataRecord,
    Version,
};

use super::provisions::shown;
use crate::{error::UserError, site::provides::StandIns};

/// What a lock needs of this site's modules that they do not give, when the user asked for
/// conda's builds instead (`--skip-missing-modules`).
#[derive(Debug, Default)]
pub(crate) struct LockFit {
    /// The marked stand-ins no module here provides: a fill-in solve, with every locked
    /// record pinned, adds conda's builds of them.
    pub(crate) missing: Vec<PackageName>,
    /// One for each of them, for `warn`.
    pub(crate) warnings: Vec<String>,
}

/// Whether this site gives what a lock rests on, before anything is installed: every
/// stand-in it marks must be provided by a loaded module here (`here`, derived from this
/// site's rules) at a version and build every locked package's dependency on it accepts,
/// and every virtual package a locked package needs must be among `virtuals` (this
/// machine's, with the modules' merged in). A lock is installed with no solve, so nothing
/// else would notice.
pub(crate) fn check_lock_stand_ins(
    records: &[RepoDataRecord],
    marked: &[(PackageName, Version, String)],
    here: &StandIns,
    virtuals: &[GenericVirtualPackage],
    skip_missing: bool,
    file: &Path,
) -> Result<LockFit> {
    let needs = |name: &PackageName| dependencies_on(records, name);
    let mut fit = LockFit::default();
    for (name, version, build) in marked {
        let there = shown(name, version, build);
        let Some(stand_in) = here
            .records
            .iter()
            .find(|s| &s.value.package_record.name == name)
        else {
            let who = needs(name).first().map_or_else(String::new, |(r, dep, _)| {
                format!("{} needs {dep}; ", r.package_record.name.as_normalized())
            });
            let shown_name = name.as_normalized();
            if skip_missing {
                fit.warnings.push(format!(
                    "{}: {who}the lock was made where a module provided {there}, and no loaded module provides {shown_name} here, so conda's {shown_name} is installed instead",
                    file.display()
                ));
                fit.missing.push(name.clone());
                continue;
            }
            let name = shown_name;
            return Err(UserError::failure(format!(
                "{}: {who}the lock was made where a module provided {there}; no loaded module provides {name} here",
                file.display()
            ))
            .with_hint(format!(
                "load the module that provides {name} here (module_provides rules say which do), or pass --skip-missing-modules to install conda's {name}"
            ))
            .into());
        };
        let p = &stand_in.value.package_record;
        for (r, dep, spec) in needs(name) {
            if !spec.matches(p) {
                return Err(UserError::failure(format!(
                    "{}: {} needs {dep}; module {} provides {} here",
                    file.display(),
                    r.package_record.name.as_normalized(),
                    stand_in.module,
                    shown(&p.name, &p.version, p.build.as_str())
                ))
                .with_hint(format!(
                    "load a module that provides {dep} instead of {}, or export the lock again from an environment built on it",
                    stand_in.module
                ))
                .into());
            }
        }
    }
    for r in records {
        for dep in &r.package_record.depends {
            let Ok(spec) = MatchSpec::from_str(dep, ParseStrictness::Lenient) else {
                continue;
            };
            let Some(name) = spec
                .name
                .as_exact()
                .filter(|n| n.as_normalized().starts_with("__"))
            else {
                continue;
            };
            let found = virtuals.iter().find(|v| &v.name == name);
            if found.is_some_and(|v| spec.matches(v)) {
                continue;
            }
            let short = name.as_normalized();
            let needer = r.package_record.name.as_normalized();
            let override_var = override_variable(short);
            let message = match found {
                None if short == "__cuda" => format!(
                    "{needer} needs {dep}; no driver here and no loaded module provides __cuda"
                ),
                None => format!("{needer} needs {dep}, which this machine does not have"),
                Some(v) => {
                    let what = shown(&v.name, &v.version, v.build_string.as_str());
                    match here.virtuals.iter().find(|m| &m.value == v) {
                        Some(m) => format!(
                            "{needer} needs {dep}; module {} provides {what} here",
                            m.module
                        ),
                        None => format!("{needer} needs {dep}; this machine has {what}"),
                    }
                }
            };
            let hint = match (short, override_var) {
                ("__cuda", Some(var)) => format!(
                    "load the cuda module the package was built for, or set {var} to the CUDA version of the machines it will run on"
                ),
                (_, Some(var)) => format!(
                    "set {var} if the machines it will run on have it, or lock the environment for this machine"
                ),
                (_, None) => "lock the environment for this machine".to_owned(),
            };
            return Err(UserError::failure(format!("{}: {message}", file.display()))
                .with_hint(hint)
                .into());
        }
    }
    Ok(fit)
}

/// Every dependency of `records` on `name`: the record, the string and the spec.
fn dependencies_on<'a>(
    records: &'a [RepoDataRecord],
    name: &PackageName,
) -> Vec<(&'a RepoDataRecord, &'a str, MatchSpec)> {
    records
        .iter()
        .flat_map(|r| r.package_record.depends.iter().map(move |dep| (r, dep)))
        .filter_map(|(r, dep)| {
            let spec = MatchSpec::from_str(dep, ParseStrictness::Lenient).ok()?;
            (spec.name.as_exact() == Some(name)).then_some((r, dep.as_str(), spec))
        })
        .collect()
}

/// The variable that sets a virtual package by hand, where conda has one.
fn override_variable(virtual_name: &str) -> Option<String> {
    let short = virtual_name.strip_prefix("__")?;
    matches!(
        short,
        "cuda" | "glibc" | "linux" | "osx" | "win" | "archspec"
    )
    .then(|| format!("CONDA_OVERRIDE_{}", short.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use rattler_conda_types::{PackageRecord, Subdir, package::DistArchiveIdentifier};

    use super::*;
    use crate::{env::from_file::provisions::tests::loaded, site::provides};

    fn record(name: &str, version: &str, build: &str, depends: &[&str]) -> RepoDataRecord {
        let mut p = PackageRecord::new(
            PackageName::new_unchecked(name),
            Version::from_str(version).unwrap(),
            build.parse().unwrap(),
        );
        p.subdir = "linux-64".into();
        p.depends = depends.iter().map(|d| (*d).to_owned()).collect();
        let file_name = format!("{name}-{version}-{build}.conda");
        RepoDataRecord {
            url: url::Url::parse(&format!("https://conda.example.org/linux-64/{file_name}"))
                .unwrap(),
            identifier: DistArchiveIdentifier::from_str(&file_name).unwrap(),
            package_record: p,
            channel: Some("https://conda.example.org/".into()),
        }
    }

    fn here(modules: &[&str]) -> StandIns {
        let derived = provides::derive(&loaded(modules), &provides::default_rules()).provisions;
        provides::stand_ins(&derived, Subdir::Linux64).unwrap()
    }

    fn virtual_package(text: &str) -> GenericVirtualPackage {
        let (name, version) = text.split_once(' ').unwrap();
        GenericVirtualPackage {
            name: PackageName::new_unchecked(name),
            version: Version::from_str(version).unwrap(),
            build_string: "0".parse().unwrap(),
        }
    }

    fn mark(text: &str) -> (PackageName, Version, String) {
        let parts: Vec<&str> = text.split(' ').collect();
        (
            PackageName::new_unchecked(parts[0]),
            Version::from_str(parts[1]).unwrap(),
            parts[2].to_owned(),
        )
    }

    fn partool_lock() -> (Vec<RepoDataRecord>, Vec<(PackageName, Version, String)>) {
        (
            vec![record(
                "partool",
                "1.0",
                "mpi_openmpi_h0_0",
                &[
                    "__glibc >=2.17",
                    "openmpi >=4.1.6,<5.0a0",
                    "mpi 1.0 openmpi",
                ],
            )],
            vec![mark("openmpi 4.1.6 envmod_module"), mark("mpi 1.0 openmpi")],
        )
    }

    fn machine() -> Vec<GenericVirtualPackage> {
        vec![
            virtual_package("__unix 0"),
            virtual_package("__linux 6.1"),
            virtual_package("__glibc 2.36"),
        ]
    }

    #[test]
    fn a_locked_stand_in_must_be_provided_here_at_a_version_its_users_accept() {
        let (records, marked) = partool_lock();
        let file = Path::new("/home/alice/m.lock");
        let fit = check_lock_stand_ins(
            &records,
            &marked,
            &here(&["OpenMPI/4.1.6-GCC-12.3.0"]),
            &machine(),
            false,
            file,
        )
        .unwrap();
        assert!(fit.missing.is_empty() && fit.warnings.is_empty());

        let err = check_lock_stand_ins(
            &records,
            &marked,
            &here(&["openmpi/4.1"]),
            &machine(),
            true,
            file,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/alice/m.lock: partool needs openmpi >=4.1.6,<5.0a0; module openmpi/4.1 provides openmpi 4.1 here"
        );
        // The mutex of another MPI has the same name and the wrong build.
        let err = check_lock_stand_ins(
            &records,
            &[mark("mpi 1.0 openmpi")],
            &here(&["mpich/4.2.1"]),
            &machine(),
            false,
            file,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/alice/m.lock: partool needs mpi 1.0 openmpi; module mpich/4.2.1 provides mpi 1.0 mpich here"
        );
    }

    #[test]
    fn a_locked_stand_in_no_module_here_provides_is_refused_or_left_to_conda() {
        let (records, marked) = partool_lock();
        let file = Path::new("/home/alice/m.lock");
        let err = check_lock_stand_ins(&records, &marked, &here(&[]), &machine(), false, file)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/alice/m.lock: partool needs openmpi >=4.1.6,<5.0a0; the lock was made where a module provided openmpi 4.1.6; no loaded module provides openmpi here"
        );
        assert!(
            crate::error::hint_of(&err)
                .unwrap()
                .contains("--skip-missing-modules to install conda's openmpi")
        );
        let fit =
            check_lock_stand_ins(&records, &marked, &here(&[]), &machine(), true, file).unwrap();
        let missing: Vec<_> = fit.missing.iter().map(|n| n.as_normalized()).collect();
        assert_eq!(missing, ["openmpi", "mpi"]);
        assert_eq!(fit.warnings.len(), 2);
        assert!(
            fit.warnings[1].ends_with(
                "partool needs mpi 1.0 openmpi; the lock was made where a module provided mpi 1.0 openmpi, and no loaded module provides mpi here, so conda's mpi is installed instead"
            ),
            "{:?}",
            fit.warnings
        );
    }

    #[test]
    fn a_virtual_package_a_locked_record_needs_must_be_here() {
        let records = vec![record(
            "cupy",
            "13.0",
            "py311h0_0",
            &["__cuda >=12", "__glibc >=2.28"],
        )];
        let file = Path::new("/home/alice/m.lock");
        let run = |virtuals: &[GenericVirtualPackage], modules: &[&str]| {
            check_lock_stand_ins(&records, &[], &here(modules), virtuals, false, file)
        };
        let with = |extra: &str| {
            let mut v = machine();
            v.push(virtual_package(extra));
            v
        };
        assert!(run(&with("__cuda 12.4"), &[]).is_ok());
        let err = run(&machine(), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/alice/m.lock: cupy needs __cuda >=12; no driver here and no loaded module provides __cuda"
        );
        assert!(
            crate::error::hint_of(&err)
                .unwrap()
                .contains("load the cuda module")
                && crate::error::hint_of(&err)
                    .unwrap()
                    .contains("CONDA_OVERRIDE_CUDA")
        );
        // What the module gave: the solve's virtual packages hold it.
        let err = run(&with("__cuda 11.8"), &["cuda/11.8"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/alice/m.lock: cupy needs __cuda >=12; module cuda/11.8 provides __cuda 11.8 here"
        );
        let err = run(&with("__cuda 11.8"), &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/alice/m.lock: cupy needs __cuda >=12; this machine has __cuda 11.8"
        );
        let old = vec![
            virtual_package("__glibc 2.17"),
            virtual_package("__cuda 12.2"),
        ];
        let err = run(&old, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/home/alice/m.lock: cupy needs __glibc >=2.28; this machine has __glibc 2.17"
        );
        assert!(
            crate::error::hint_of(&err)
                .unwrap()
                .contains("CONDA_OVERRIDE_GLIBC")
        );
    }
}

//! What a module provided where the file was made (an `openmpi`, the `mpi` mutex, `__cuda`)
//! must be provided by a module here too: the packages beside it were built for it, and a
//! conda build put in its place would not use the site's network or drivers. So a file
//! or lock that rests on one is refused where none does, naming the package and the module,
//! unless the user asks for conda's builds.
//!
//! This part checks an environment.yml's `provided` entries against this site's modules.

use std::{collections::BTreeMap, str::FromStr};

use anyhow::Result;
use rattler_conda_types::{MatchSpec, PackageName, ParseMatchSpecOptions, Version};

use crate::{
    conda::{envfile::EnvFile, solve::Constraint},
    error::UserError,
    site::{
        modules::LoadedModule,
        provides::{MODULE_BUILD, ModuleProvision, StandIn},
    },
};

/// `name version [build]` as a user reads it: no build where a module gave none.
pub(super) fn shown(name: &PackageName, version: &Version, build: &str) -> String {
    if build == MODULE_BUILD || (build == "0" && name.as_normalized().starts_with("__")) {
        format!("{} {version}", name.as_normalized())
    } else {
        format!("{} {version} {build}", name.as_normalized())
    }
}

/// A record or virtual package a provision string stands for, as its name and how it reads;
/// a constraint is `None`: what it chose is a package the solve picks again.
fn exact_stand_in(text: &str) -> Option<(PackageName, String)> {
    match StandIn::from_str(text).ok()? {
        StandIn::Record {
            name,
            version,
            build,
        } => {
            let text = shown(&name, &version, &build);
            Some((name, text))
        }
        StandIn::Virtual(v) => {
            let text = shown(&v.name, &v.version, v.build_string.as_str());
            Some((v.name, text))
        }
        StandIn::Constraint(_) => None,
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String], last: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., tail] => format!("{} {last} {tail}", init.join(", ")),
    }
}

/// Whether this site's modules provide every package and virtual package a module provided
/// where `f` was made. `here` is what this site's rules derive from `recorded`, the modules
/// `file_modules` kept. A version that differs is the solve's to judge (its hint names the
/// module); only a name nothing here provides is refused, naming the file's line, the package
/// and the module. With `skip_missing`, or for a module `module_map` sends to `null` (the
/// user's own choice), conda's packages are solved for instead; the warnings say so.
pub(crate) fn check_provisions(
    file: &[ModuleProvision],
    here: &[ModuleProvision],
    recorded: &[LoadedModule],
    map: &BTreeMap<String, Option<String>>,
    skip_missing: bool,
    f: &EnvFile,
) -> Result<ProvisionFit> {
    let provided_here: std::collections::BTreeSet<PackageName> = here
        .iter()
        .flat_map(|p| &p.provides)
        .filter_map(|text| exact_stand_in(text).map(|(name, _)| name))
        .collect();
    let mut warnings = Vec::new();
    let mut constraints = Vec::new();
    for (i, p) in file.iter().enumerate() {
        // (index of the string, name, how it reads) of each that nothing here provides.
        let missing: Vec<(usize, PackageName, String)> = p
            .provides
            .iter()
            .enumerate()
            .filter_map(|(j, text)| {
                let (name, text) = exact_stand_in(text)?;
                (!provided_here.contains(&name)).then_some((j, name, text))
            })
            .collect();
        let Some((first, _, _)) = missing.first() else {
            continue;
        };
        let at = format!(
            "{}, line {}",
            f.path.display(),
            f.provision_line(i, Some(*first))
        );
        let names: Vec<String> = missing
            .iter()
            .map(|(_, n, _)| n.as_normalized().to_owned())
            .collect();
        let used = and_list(
            &missing
                .iter()
                .map(|(_, _, t)| t.clone())
                .collect::<Vec<_>>(),
            "and",
        );
        let module = &p.module;
        let target = match map.get(module) {
            Some(None) => {
                warnings.push(format!(
                    "{at}: module_map leaves out {module}, so {} come from conda's packages",
                    and_list(&names, "and")
                ));
                constraints.extend(
                    missing
                        .iter()
                        .filter_map(|(j, _, _)| variant(&p.provides[*j], module)),
                );
                continue;
            }
            Some(Some(to)) => Some(to),
            None => None,
        };
        let here_name = target.unwrap_or(module);
        let what = match here.iter().find(|h| &h.module == here_name) {
            Some(h) => format!("provides {}", h.provides.join(", ")),
            None if recorded.iter().any(|r| &r.full_name == here_name) => {
                "provides nothing here".to_owned()
            }
            None => "is not here".to_owned(),
        };
        let why = match target {
            Some(to) => format!("{module} is mapped to {to}, which {what}"),
            None => format!("module {module} {what}"),
        };
        if skip_missing {
            warnings.push(format!(
                "{at}: the environment used {used} from module {module}; no module here provides {} ({why}), so conda's packages are solved for instead",
                and_list(&names, "or")
            ));
            constraints.extend(
                missing
                    .iter()
                    .filter_map(|(j, _, _)| variant(&p.provides[*j], module)),
            );
            continue;
        }
        let real: Vec<String> = names
            .iter()
            .filter(|n| !n.starts_with("__"))
            .cloned()
            .collect();
        let instead = if real.is_empty() {
            format!("to build without {}", and_list(&names, "and"))
        } else {
            format!("to install conda's {}", and_list(&real, "and"))
        };
        return Err(UserError::failure(format!(
            "{at}: the environment used {used} from module {module}; no module here provides {} ({why})",
            and_list(&names, "or")
        ))
        .with_hint(format!(
            "map it to a module that provides {} (module_map), add a module_provides rule, or pass --skip-missing-modules {instead}",
            and_list(&names, "and")
        ))
        .into());
    }
    Ok(ProvisionFit {
        warnings,
        constraints,
    })
}

/// What [`check_provisions`] let through.
#[derive(Debug, Default)]
pub(crate) struct ProvisionFit {
    /// One for each module whose packages come from conda instead, for `warn`.
    pub(crate) warnings: Vec<String>,
    /// The variant the file's modules gave (`mpi * openmpi`), for the solve to keep where
    /// conda's builds stand in for them; they ask for nothing.
    pub(crate) constraints: Vec<Constraint>,
}

/// The constraint that keeps what a module's stand-in gave, where its build is the point
/// (the `mpi 1.0 openmpi` mutex). Nothing for a stand-in of `envmod_module` build, whose
/// version the site's own module set, or for a virtual package.
fn variant(text: &str, module: &str) -> Option<Constraint> {
    let StandIn::Record { name, build, .. } = StandIn::from_str(text).ok()? else {
        return None;
    };
    if build == MODULE_BUILD {
        return None;
    }
    let spec = MatchSpec::from_str(
        &format!("{} * {build}", name.as_normalized()),
        ParseMatchSpecOptions::lenient(),
    )
    .ok()?;
    Some(Constraint {
        spec,
        origin: format!("module {module} of the file"),
    })
}

#[cfg(test)]
pub(in crate::env::from_file) mod tests {
    use std::path::Path;

    use super::*;
    use crate::{conda, site::provides};

    const FILE: &str = "\
name: m
dependencies: [partool]
envmod:
  envmod_version: 0.1.0
  platform: linux-64
  python: {mode: site, version: 3.11.2}
  modules: [openmpi/4.1.6, cuda/12.2]
  provided:
  - module: openmpi/4.1.6
    rule: openmpi/*
    provides:
    - openmpi 4.1.6
    - mpi 1.0 openmpi
  - module: cuda/12.2
    rule: cuda/*
    provides:
    - __cuda 12.2
    - cuda-version 12.2.*
";
    const PATH: &str = "/home/alice/env.yml";

    fn file() -> EnvFile {
        conda::envfile::read(Path::new(PATH), FILE).unwrap()
    }

    pub(in crate::env::from_file) fn loaded(names: &[&str]) -> Vec<LoadedModule> {
        names
            .iter()
            .map(|n| LoadedModule {
                full_name: (*n).into(),
                file: None,
            })
            .collect()
    }

    /// The provisions this site's default rules derive from `here`, with the file's own.
    fn check(here: &[&str], map: &[(&str, Option<&str>)], skip: bool) -> Result<Vec<String>> {
        let f = file();
        let recorded = loaded(here);
        let derived = provides::derive(&recorded, &provides::default_rules()).provisions;
        let map: BTreeMap<String, Option<String>> = map
            .iter()
            .map(|(k, v)| ((*k).into(), v.map(str::to_owned)))
            .collect();
        let provided = &f.envmod.as_ref().unwrap().provided;
        check_provisions(provided, &derived, &recorded, &map, skip, &f).map(|fit| fit.warnings)
    }

    fn line(needle: &str) -> usize {
        FILE.lines().position(|l| l.ends_with(needle)).unwrap() + 1
    }

    #[test]
    fn the_same_names_here_pass_whatever_their_versions() {
        let got = check(&["openmpi/4.1.6", "cuda/12.2"], &[], false);
        assert!(got.unwrap().is_empty());
        // 4.1.5 and 12.4 here: the solve judges the versions, and its hint names the module.
        let got = check(
            &["OpenMPI/4.1.5-GCC-12.3.0", "cuda/12.4"],
            &[
                ("openmpi/4.1.6", Some("OpenMPI/4.1.5-GCC-12.3.0")),
                ("cuda/12.2", Some("cuda/12.4")),
            ],
            false,
        );
        assert!(got.unwrap().is_empty());
    }

    #[test]
    fn a_name_no_module_here_provides_is_refused_naming_the_line_package_and_module() {
        // Mapped to a module no rule here gives anything.
        let got = check(
            &["site/openmpi-5.0.2", "cuda/12.2"],
            &[("openmpi/4.1.6", Some("site/openmpi-5.0.2"))],
            false,
        );
        let err = got.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{PATH}, line {}: the environment used openmpi 4.1.6 and mpi 1.0 openmpi from module openmpi/4.1.6; no module here provides openmpi or mpi (openmpi/4.1.6 is mapped to site/openmpi-5.0.2, which provides nothing here)",
                line("- openmpi 4.1.6")
            )
        );
        assert_eq!(
            crate::error::hint_of(&err).unwrap(),
            "map it to a module that provides openmpi and mpi (module_map), add a module_provides rule, or pass --skip-missing-modules to install conda's openmpi and mpi"
        );
        // Mapped to another MPI: its mutex has the same name, its library does not.
        let got = check(
            &["mpich/4.2.1", "cuda/12.2"],
            &[("openmpi/4.1.6", Some("mpich/4.2.1"))],
            false,
        );
        assert_eq!(
            got.unwrap_err().to_string(),
            format!(
                "{PATH}, line {}: the environment used openmpi 4.1.6 from module openmpi/4.1.6; no module here provides openmpi (openmpi/4.1.6 is mapped to mpich/4.2.1, which provides mpich 4.2.1, mpi 1.0 mpich)",
                line("- openmpi 4.1.6")
            )
        );
        // A virtual package: nothing of conda's replaces it.
        let got = check(&["openmpi/4.1.6", "cuda/12.2"], &[], false);
        assert!(got.is_ok());
        let got = check(
            &["openmpi/4.1.6", "nvhpc/24.1"],
            &[("cuda/12.2", Some("nvhpc/24.1"))],
            false,
        );
        let err = got.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{PATH}, line {}: the environment used __cuda 12.2 from module cuda/12.2; no module here provides __cuda (cuda/12.2 is mapped to nvhpc/24.1, which provides nothing here)",
                line("- __cuda 12.2")
            )
        );
        assert!(
            crate::error::hint_of(&err)
                .unwrap()
                .ends_with("--skip-missing-modules to build without __cuda"),
            "{err:?}"
        );
    }

    #[test]
    fn skipped_or_mapped_to_null_the_packages_come_from_conda_with_a_warning() {
        // --skip-missing-modules: the module was not found, so file_modules left it out.
        let got = check(&["cuda/12.2"], &[], true);
        assert_eq!(
            got.unwrap(),
            [format!(
                "{PATH}, line {}: the environment used openmpi 4.1.6 and mpi 1.0 openmpi from module openmpi/4.1.6; no module here provides openmpi or mpi (module openmpi/4.1.6 is not here), so conda's packages are solved for instead",
                line("- openmpi 4.1.6")
            )]
        );
        let got = check(&["cuda/12.2"], &[], false);
        assert!(
            got.unwrap_err()
                .to_string()
                .ends_with("(module openmpi/4.1.6 is not here)")
        );
        // `null` in module_map is the user's own choice: no refusal, even without the flag.
        let got = check(&["cuda/12.2"], &[("openmpi/4.1.6", None)], false);
        assert_eq!(
            got.unwrap(),
            [format!(
                "{PATH}, line {}: module_map leaves out openmpi/4.1.6, so openmpi and mpi come from conda's packages",
                line("- openmpi 4.1.6")
            )]
        );
    }
}

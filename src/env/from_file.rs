//! What `create -f` and `install -f` build from: an environment.yml, a lock file or a
//! bundle, and the checks that run against this site before anything is built: the file's
//! modules (mapped with `module_map`, looked up through the module system), its Python,
//! and its channels. Errors name the file and, where there is one, the line.
//!
//! What a module provided where the file was made (an `openmpi`, the `mpi` mutex, `__cuda`)
//! must be provided by a module here too: the packages beside it were built for it, and a
//! conda build put in its place would not use the site's network or drivers. So a file
//! or lock that rests on one is refused where none does, naming the package and the module,
//! unless the user asks for conda's builds.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    str::FromStr,
};

use anyhow::Result;
use rattler_conda_types::{
    GenericVirtualPackage, MatchSpec, Matches, PackageName, ParseMatchSpecOptions, ParseStrictness,
    RepoDataRecord, Version,
};

use crate::{
    conda::{self, envfile::EnvFile, solve::Constraint},
    env::plan::Added,
    error::UserError,
    site::{
        modules::LoadedModule,
        provides::{MODULE_BUILD, ModuleProvision, StandIn, StandIns},
        python::Interpreter,
    },
};

/// What `-f` names, sniffed from its content rather than its extension.
pub(crate) enum Source {
    Yml(Box<EnvFile>),
    Lock(PathBuf),
    Bundle(PathBuf),
}

/// What `-f` reads as standard input, as conda does.
pub(crate) const STDIN: &str = "-";

/// How standard input is named in messages.
const STDIN_NAME: &str = "standard input";

impl Source {
    /// Read what `-f ARG` names: `-` is standard input, anything else a path from `cwd`.
    pub(crate) fn read_arg(arg: &Path, cwd: &Path) -> Result<Self> {
        if arg == Path::new(STDIN) {
            let text = read_stdin()?;
            return Ok(Source::Yml(Box::new(conda::envfile::read_in(
                Path::new(STDIN_NAME),
                cwd,
                &text,
                conda::PLATFORM,
            )?)));
        }
        Self::read(&cwd.join(arg))
    }

    /// Where the file is, or how standard input is named.
    pub(crate) fn shown(&self) -> std::path::Display<'_> {
        match self {
            Source::Yml(f) => f.path.display(),
            Source::Lock(p) | Source::Bundle(p) => p.display(),
        }
    }

    /// Read `path` (absolute) enough to know what it is; an environment.yml is parsed whole.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let unreadable = |e: crate::fs::ReadError| -> anyhow::Error {
            UserError::usage(e.to_string())
                .with_hint("give the path of an environment.yml, a lock file or a bundle")
                .into()
        };
        if conda::bundle::looks_like_bundle(path) {
            return Ok(Source::Bundle(path.to_path_buf()));
        }
        let bytes = crate::fs::read_regular(path, crate::fs::DOCUMENT, crate::fs::Links::Follow)
            .map_err(unreadable)?;
        let text = String::from_utf8(bytes).map_err(|_| {
            UserError::usage(format!(
                "{} is neither a text file (environment.yml, lock file) nor a bundle (.tar)",
                path.display()
            ))
        })?;
        if conda::lockfile::looks_like_lock(&text) {
            return Ok(Source::Lock(path.to_path_buf()));
        }
        Ok(Source::Yml(Box::new(conda::envfile::read(path, &text)?)))
    }

    /// The environment name the file gives, if any.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Source::Yml(f) => f.name.as_deref(),
            Source::Lock(_) | Source::Bundle(_) => None,
        }
    }
}

/// The environment.yml on standard input, read within the limit a file has. A lock or a
/// bundle is refused: its local packages are found beside it, and standard input is
/// beside nothing.
fn read_stdin() -> Result<String> {
    use std::io::{IsTerminal, Read};
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(UserError::usage(
            "-f - reads the environment file from standard input, which is a terminal",
        )
        .with_hint("pipe the file in (`envmod create -f - < environment.yml`), or give its path")
        .into());
    }
    let limit = crate::fs::DOCUMENT;
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| UserError::usage(format!("cannot read {STDIN_NAME}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(UserError::usage(
            crate::fs::ReadError::TooLarge {
                path: STDIN_NAME.into(),
                limit,
            }
            .to_string(),
        )
        .with_hint("give -f the path of the environment.yml")
        .into());
    }
    let from_a_file = |what: &str| -> anyhow::Error {
        UserError::usage(format!(
            "{STDIN_NAME} holds {what}; envmod reads one only from a file, beside which its local packages are"
        ))
        .with_hint("save it and give its path: envmod create -n NAME -f FILE")
        .into()
    };
    if bytes.get(257..262) == Some(b"ustar") {
        return Err(from_a_file("a bundle"));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        UserError::usage(format!(
            "{STDIN_NAME} is not text, so not an environment.yml"
        ))
        .with_hint("pipe in an environment.yml, or give -f the path of a lock file or a bundle")
    })?;
    if conda::lockfile::looks_like_lock(&text) {
        return Err(from_a_file("a lock file"));
    }
    Ok(text)
}

/// The file's channels, then the command line's; a file without channels uses the
/// configured ones. A `channel::pkg` spec brings its channel along.
pub(crate) fn file_channels(
    f: &EnvFile,
    specs: &[String],
    cli: &[String],
    configured: &[String],
) -> Vec<String> {
    let mut out = if f.channels.is_empty() && cli.is_empty() {
        configured.to_vec()
    } else {
        f.channels.clone()
    };
    for c in cli {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    for spec in specs {
        if let Some((channel, _)) = spec.split_once("::")
            && !out.iter().any(|c| c == channel)
        {
            out.push(channel.to_string());
        }
    }
    out
}

/// A solve error about a package the file asks for names the file and the line.
pub(crate) fn name_the_line(e: anyhow::Error, f: &EnvFile) -> anyhow::Error {
    let text = format!("{e:#}");
    let words: std::collections::HashSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'))
        .collect();
    for spec in &f.specs {
        if let Ok(name) = conda::specs::spec_package_name(&spec.value) {
            let name = name.as_normalized();
            if words.contains(name) {
                // The solver's line about this package, without its tree drawing.
                let detail = text
                    .lines()
                    .skip(1)
                    .find(|l| l.contains(name))
                    .or_else(|| text.lines().next())
                    .unwrap_or_default()
                    .trim_start_matches(|c: char| !c.is_alphanumeric())
                    .trim_end_matches(['.', ':']);
                // The solver's own hint points at specs "above", which this line replaces.
                let err = UserError::failure(format!(
                    "{}, line {}: cannot build `{}`: {detail}",
                    f.path.display(),
                    spec.line,
                    spec.value,
                ))
                .with_hint(
                    "fix that line of the file, or add a channel that has the package with -c",
                );
                return err.into();
            }
        }
    }
    e
}

/// In site mode, the file's Python must be the site Python's minor version: packages and pip
/// wheels were chosen for it.
pub(crate) fn check_site_python(
    found: &Interpreter,
    f: &EnvFile,
    site_python_flag: bool,
) -> Result<()> {
    let Some(section) = &f.envmod else {
        return Ok(());
    };
    let wanted = section.python.minor();
    if wanted == found.short_version() {
        return Ok(());
    }
    let how = if site_python_flag {
        "--site-python gives"
    } else {
        "the site Python here is"
    };
    Err(UserError::failure(format!(
        "{} was built for Python {wanted}, but {how} {} ({}); nothing was created",
        f.path.display(),
        found.version,
        found.executable.display()
    ))
    .with_hint(format!(
        "use --python {wanted} for a conda Python {wanted}, or --site-python PATH for a site Python {wanted}"
    ))
    .into())
}

/// In site mode, a `python` spec among the file's dependencies (`python=3.9`) must accept
/// the site Python: it cannot be installed over it, and the solve would only say that no
/// Python 3.9 was found.
pub(crate) fn check_python_pin(
    found: &Interpreter,
    f: &EnvFile,
    site_python_flag: bool,
) -> Result<()> {
    let Ok(version) = Version::from_str(&found.version) else {
        return Ok(());
    };
    for spec in &f.specs {
        let Ok(parsed) = MatchSpec::from_str(&spec.value, ParseStrictness::Lenient) else {
            continue;
        };
        if parsed
            .name
            .as_exact()
            .is_none_or(|n| n.as_normalized() != "python")
        {
            continue;
        }
        let Some(wanted) = parsed.version.as_ref().filter(|v| !v.matches(&version)) else {
            continue;
        };
        let how = if site_python_flag {
            "--site-python gives"
        } else {
            "the site Python here is"
        };
        // `3.9` of `3.9.11`, `=3.9` or `>=3.12`; no guess for a bound from above.
        let text = wanted.to_string();
        let minor = text
            .trim_start_matches(['=', '>', '~'])
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
            .filter(|v| v.contains('.') && !text.starts_with('<') && !text.starts_with('!'))
            .unwrap_or_else(|| "X.Y".to_string());
        return Err(UserError::failure(format!(
            "{}, line {}: `{}` does not accept the site Python: {how} {} ({}); nothing was created",
            f.path.display(),
            spec.line,
            spec.value,
            found.version,
            found.executable.display()
        ))
        .with_hint(format!(
            "use --python {minor} for a conda Python {minor}, or --site-python PATH for a site Python that fits"
        ))
            .into());
    }
    Ok(())
}

/// A lock built on another site's Python fits this one only if every package's `python`
/// requirement accepts this site's version (a cp311 build does not run on 3.12).
pub(crate) fn check_lock_python(
    records: &[rattler_conda_types::RepoDataRecord],
    found: &Interpreter,
    file: &Path,
) -> Result<()> {
    let Ok(version) = Version::from_str(&found.version) else {
        return Ok(());
    };
    for r in records {
        for dep in &r.package_record.depends {
            let Ok(spec) = MatchSpec::from_str(dep, ParseStrictness::Lenient) else {
                continue;
            };
            if spec
                .name
                .as_exact()
                .is_none_or(|n| n.as_normalized() != "python")
            {
                continue;
            }
            if spec.version.as_ref().is_some_and(|v| !v.matches(&version)) {
                return Err(UserError::failure(format!(
                    "{}: {} needs `{dep}`, but the site Python here is {} ({}); nothing was created",
                    file.display(),
                    r.package_record.name.as_normalized(),
                    found.version,
                    found.executable.display()
                ))
                .with_hint("use --site-python PATH for a site Python that fits, or export the lock again with a conda Python (`envmod create --python X.Y`)")
                .into());
            }
        }
    }
    Ok(())
}

/// `name version [build]` as a user reads it: no build where a module gave none.
fn shown(name: &PackageName, version: &Version, build: &str) -> String {
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

/// Unpack `bundle` for `platform` into a new `.envmod-bundle-XXXXXX` directory in `parent`,
/// which the returned guard removes when dropped, and which an interrupt removes too.
pub(crate) fn unpack_bundle(
    bundle: &Path,
    parent: &Path,
    platform: rattler_conda_types::Subdir,
) -> Result<(
    crate::env::cleanup::CleanupGuard,
    conda::bundle::Unpacked,
    conda::lockfile::ReadLock,
)> {
    let (guard, _) = tempfile::Builder::new()
        .prefix(".envmod-bundle-")
        .disable_cleanup(true)
        .make_in(parent, |p| {
            crate::env::cleanup::CleanupGuard::create_private(p).map(|(guard, _)| guard)
        })
        .map_err(|e| {
            UserError::failure(format!(
                "cannot unpack bundle {} in {}: {e}",
                bundle.display(),
                parent.display()
            ))
            .with_hint("check that you can write to that directory")
        })?
        .into_parts();
    let (unpacked, lock) = conda::bundle::unpack(bundle, guard.path(), platform)?;
    Ok((guard, unpacked, lock))
}

/// What `install -f FILE` adds: the file's specs before the command line's, its pip section
/// (run from the file's directory) and its channels.
pub(crate) fn additions(
    arg: &Path,
    cwd: &Path,
    specs: Vec<String>,
    printer: &crate::printer::Printer,
) -> Result<Added> {
    let Source::Yml(file) = Source::read_arg(arg, cwd)? else {
        return Err(UserError::usage(
            "install -f reads an environment.yml; a lock file or a bundle makes a new environment",
        )
        .with_hint("envmod create -n NAME -f FILE")
        .into());
    };
    for warning in &file.warnings {
        printer.warn(warning);
    }
    let file_specs: Vec<String> = file.specs.iter().map(|l| l.value.clone()).collect();
    Ok(Added {
        specs: conda::specs::with_added(&file_specs, &specs)?,
        pip: file.pip.clone(),
        pip_cwd: file.dir().to_path_buf(),
        channels: file.channels.clone(),
        ..Added::default()
    })
}

#[cfg(test)]
mod tests {
    use rattler_conda_types::{PackageRecord, Subdir, package::DistArchiveIdentifier};

    use super::*;
    use crate::site::provides;

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

    fn loaded(names: &[&str]) -> Vec<LoadedModule> {
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

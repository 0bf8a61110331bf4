//! Modules that stand in for conda packages. A cluster's Open MPI, MPICH or CUDA module is
//! built for its network, scheduler and drivers; a conda build of the same library next to
//! it runs, but runs wrong. So a loaded module that matches a rule enters the solve as what it
//! provides: an exact record the installer never links (`openmpi 4.1.6`, the `mpi 1.0 openmpi`
//! mutex), a virtual package (`__cuda 12.2`), or a constraint (`cuda-version 12.2.*`,
//! `libblas * *mkl`) the solution must satisfy.
//!
//! Rules come from the site and user files and from built-in defaults for the usual module
//! names; the first rule whose pattern matches a module decides what it provides. What a
//! module provided is recorded as plain strings, checked again whenever they are read back,
//! because a manifest is input too.

use std::{collections::BTreeMap, fmt, str::FromStr};

use anyhow::Result;
use rattler_conda_types::{
    GenericVirtualPackage, MatchSpec, PackageName, PackageNameMatcher, PackageRecord,
    ParseMatchSpecOptions, RepoDataRecord, Subdir, Version, package::BuildString,
    package::DistArchiveIdentifier,
};
use serde::{Deserialize, Serialize};

use crate::{
    error::UserError,
    site::{RuleSource, modules::LoadedModule},
    yaml::ListMap,
};

/// The build string of a record a module stands in for, when its rule gives none.
pub(crate) const MODULE_BUILD: &str = "envmod_module";

/// The scheme of every stand-in's URL: how the installer and the lock tell a stand-in from a
/// real package, since a file name such as `mpi-1.0-openmpi.conda` is also a real file.
pub(crate) const STAND_IN_SCHEME: &str = "envmod";

/// The hint of every rule error: what a template looks like.
const TEMPLATE_HINT: &str = "write `name version [build]`, e.g. `openmpi {version}` or `mpi 1.0 openmpi`, or a range such as `cuda-version {major}.{minor}.*`; placeholders {version} {major} {minor}";

/// Pattern matching ignores case (`OpenMPI/4.1.6-GCC-12.3.0` is EasyBuild's `openmpi`), and
/// `*` crosses `/` so that `intel/*` matches `intel/oneapi/2023.1`.
const MATCH: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: false,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

/// The built-in rules, below every file. conda-forge's MPI packages run-depend on the `mpi`
/// mutex (`mpi 1.0 <implementation>`), so every MPI default gives it too: without it, a
/// package built for another MPI could bring that MPI in beside the site's.
const DEFAULTS: &[(&str, &[&str])] = &[
    ("openmpi/*", &["openmpi {version}", "mpi 1.0 openmpi"]),
    ("mpich/*", &["mpich {version}", "mpi 1.0 mpich"]),
    // Cray MPICH 8 derives from MPICH 3.4 and keeps its ABI (libmpi.so.12); its own version
    // numbers say nothing about MPICH's.
    ("cray-mpich/*", &["mpich 3.4", "mpi 1.0 mpich"]),
    // RHEL's and Fedora's `mpi/openmpi-x86_64` name no version, so these never apply as they
    // stand: they make `-v` say why, and a site's own rule for the exact name (with the
    // version its packages have) replaces them.
    ("mpi/openmpi*", &["openmpi {version}", "mpi 1.0 openmpi"]),
    ("mpi/mpich*", &["mpich {version}", "mpi 1.0 mpich"]),
    ("mvapich2/*", &["mvapich {version}", "mpi 1.0 mvapich"]),
    ("mvapich/*", &["mvapich {version}", "mpi 1.0 mvapich"]),
    ("intel-mpi/*", &["impi_rt {version}", "mpi 1.0 impi"]),
    ("impi/*", &["impi_rt {version}", "mpi 1.0 impi"]),
    ("intel-oneapi-mpi/*", &["impi_rt {version}", "mpi 1.0 impi"]),
    // A constraint, not a record: the real `cuda-version` is installed and keeps its own
    // `constrains`, and a lock holds a package that can be downloaded.
    (
        "cuda/*",
        &["__cuda {version}", "cuda-version {major}.{minor}.*"],
    ),
];

/// The version in a module's name, as its rules' placeholders see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ModuleVersion {
    /// `4.1.6`.
    pub(crate) version: String,
    /// `4`.
    pub(crate) major: String,
    /// `1`; `None` for `cuda/12`.
    pub(crate) minor: Option<String>,
}

/// `4.1.6` from `OpenMPI/4.1.6-GCC-12.3.0`, `12.2.0` from `CUDA/12.2.0`: the leading dotted
/// number of the part after the last `/`. Module systems put the version there, and
/// EasyBuild and Spack append the toolchain or a hash after it.
pub(crate) fn module_version(full_name: &str) -> Option<ModuleVersion> {
    let (_, tail) = full_name.rsplit_once('/')?;
    let end = tail
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(tail.len());
    let parts: Vec<&str> = tail[..end]
        .split('.')
        .take_while(|p| !p.is_empty())
        .collect();
    let major = parts.first()?;
    Some(ModuleVersion {
        version: parts.join("."),
        major: (*major).to_owned(),
        minor: parts.get(1).map(|m| (*m).to_owned()),
    })
}

/// What one template, filled in, stands for in the solve.
#[derive(Debug, Clone)]
pub(crate) enum StandIn {
    /// An exact version and an exact or no build: the only candidate of its name, never
    /// linked.
    Record {
        name: PackageName,
        version: Version,
        /// As given, or [`MODULE_BUILD`].
        build: String,
    },
    /// `__name version`: a virtual package.
    Virtual(GenericVirtualPackage),
    /// Anything with a wildcard, an operator, `|` or `,`: the solution must satisfy it.
    /// Its name is exact: rattler's solver cannot take any other kind.
    Constraint(Box<MatchSpec>),
}

impl StandIn {
    /// The package name it is about.
    pub(crate) fn name(&self) -> &PackageName {
        match self {
            StandIn::Record { name, .. } => name,
            StandIn::Virtual(v) => &v.name,
            StandIn::Constraint(spec) => match &spec.name {
                PackageNameMatcher::Exact(name) => name,
                _ => unreachable!("constraints are parsed with exact names only"),
            },
        }
    }
}

impl fmt::Display for StandIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StandIn::Record {
                name,
                version,
                build,
            } => write!(f, "{} {version} {build}", name.as_source()),
            StandIn::Virtual(v) => write!(
                f,
                "{} {} {}",
                v.name.as_source(),
                v.version,
                v.build_string.as_str()
            ),
            StandIn::Constraint(spec) => write!(f, "{spec}"),
        }
    }
}

/// Characters that make a version or build a range or a pattern rather than one value.
fn is_inexact(token: &str) -> bool {
    token
        .chars()
        .any(|c| matches!(c, '*' | '<' | '>' | '=' | '!' | '~' | '|' | ','))
}

impl FromStr for StandIn {
    type Err = String;

    /// `name version [build]`, split on white space. conda's own spec parser would refuse
    /// `cuda-version 12.2` (it wants `==12.2` or `12.2.*`), yet an exact version is exactly
    /// what a module provides, so the split is envmod's and only ranges go to the parser.
    fn from_str(text: &str) -> Result<Self, String> {
        let tokens: Vec<&str> = text.split_whitespace().collect();
        let (name, version, build) = match tokens.as_slice() {
            [] => return Err("it is empty".into()),
            [name] => {
                return Err(format!(
                    "{name:?} has no version: a name alone provides nothing"
                ));
            }
            [name, version] => (*name, *version, None),
            [name, version, build] => (*name, *version, Some(*build)),
            _ => return Err("it has more than three parts (name, version, build)".into()),
        };
        let package = if name.is_empty() {
            Err(())
        } else {
            PackageName::from_str(name).map_err(|_| ())
        }
        .map_err(|()| {
            format!("{name:?} is not a package name (letters, digits, `-`, `_` and `.`)")
        })?;
        if package.as_normalized() == "python" {
            return Err(
                "python cannot come from a module: the env's Python is the site's or conda's"
                    .into(),
            );
        }
        let is_virtual = package.as_normalized().starts_with("__");
        let exact = !is_inexact(version) && !build.is_some_and(is_inexact);
        if exact && let Ok(parsed) = Version::from_str(version) {
            if is_virtual {
                let build = build.unwrap_or("0");
                let build_string = BuildString::from_str(build)
                    .map_err(|e| format!("build {build:?} is not a build string: {e}"))?;
                return Ok(StandIn::Virtual(GenericVirtualPackage {
                    name: package,
                    version: parsed,
                    build_string,
                }));
            }
            let build = build.unwrap_or(MODULE_BUILD);
            BuildString::from_str(build)
                .map_err(|e| format!("build {build:?} is not a build string: {e}"))?;
            return Ok(StandIn::Record {
                name: package,
                version: parsed,
                build: build.to_owned(),
            });
        }
        if is_virtual {
            return Err(format!(
                "a virtual package ({name}) takes one exact version, not {:?}",
                tokens[1..].join(" ")
            ));
        }
        let spec = MatchSpec::from_str(
            &tokens.join(" "),
            ParseMatchSpecOptions::lenient().with_exact_names_only(true),
        )
        .map_err(|e| e.to_string())?;
        match &spec.name {
            PackageNameMatcher::Exact(n) if n == &package => {
                Ok(StandIn::Constraint(Box::new(spec)))
            }
            _ => Err(format!("{name:?} is not an exact package name")),
        }
    }
}

/// Why a template could not be filled in for a module.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unfilled {
    /// A placeholder envmod does not know, or a stray brace: a config error.
    Unknown(String),
    /// `{version}` or `{major}` for a module with no version, `{minor}` without a minor.
    Missing(&'static str),
}

/// `template` with `{version}`, `{major}` and `{minor}` filled in from `v`.
fn expand(template: &str, v: Option<&ModuleVersion>) -> Result<String, Unfilled> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find(['{', '}']) {
        out.push_str(&rest[..open]);
        if rest[open..].starts_with('}') {
            return Err(Unfilled::Unknown("}".into()));
        }
        let Some(close) = rest[open..].find('}') else {
            return Err(Unfilled::Unknown(rest[open..].to_owned()));
        };
        let name = &rest[open + 1..open + close];
        let value = match name {
            "version" => v
                .map(|v| v.version.as_str())
                .ok_or(Unfilled::Missing("version")),
            "major" => v
                .map(|v| v.major.as_str())
                .ok_or(Unfilled::Missing("major")),
            "minor" => v
                .and_then(|v| v.minor.as_deref())
                .ok_or(Unfilled::Missing("minor")),
            other => Err(Unfilled::Unknown(format!("{{{other}}}"))),
        }?;
        out.push_str(value);
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A version every placeholder can take, to check a template before any module is seen:
/// what kind of stand-in a template gives does not depend on the digits. They are digits no
/// real template holds, so that an error can show the placeholders again.
const SAMPLE: (&str, &str, &str) = ("9990.9991.9992", "9990", "9991");

fn sample_version() -> ModuleVersion {
    ModuleVersion {
        version: SAMPLE.0.into(),
        major: SAMPLE.1.into(),
        minor: Some(SAMPLE.2.into()),
    }
}

/// `why` with the sample's digits back as the placeholders they filled.
fn unsample(why: &str) -> String {
    why.replace(SAMPLE.0, "{version}")
        .replace(SAMPLE.1, "{major}")
        .replace(SAMPLE.2, "{minor}")
}

/// One rule: the modules `pattern` matches provide `provides`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Rule {
    /// A glob, as written.
    pub(crate) pattern: String,
    #[serde(skip)]
    glob: glob::Pattern,
    /// Templates, as written; empty turns the pattern off.
    pub(crate) provides: Vec<String>,
    pub(crate) source: RuleSource,
    /// The lower layer whose rule of the same pattern this one replaces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) replaces: Option<RuleSource>,
}

/// What is wrong with a rule, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RuleError {
    Glob(String),
    Template { index: usize, why: String },
}

impl Rule {
    /// A rule whose pattern is a glob and whose every template gives a stand-in.
    pub(crate) fn new(
        pattern: &str,
        provides: Vec<String>,
        source: RuleSource,
    ) -> Result<Self, RuleError> {
        if pattern.trim().is_empty() {
            return Err(RuleError::Glob("the pattern is empty".into()));
        }
        let glob = glob::Pattern::new(pattern)
            .map_err(|e| RuleError::Glob(format!("is not a valid glob: {e}")))?;
        for (index, template) in provides.iter().enumerate() {
            let filled = expand(template, Some(&sample_version())).map_err(|e| {
                let why = match e {
                    Unfilled::Unknown(p) => format!(
                        "{p:?} is not a placeholder: the placeholders are {{version}}, {{major}} and {{minor}}"
                    ),
                    Unfilled::Missing(_) => unreachable!("the sample fills every placeholder"),
                };
                RuleError::Template { index, why }
            })?;
            StandIn::from_str(&filled).map_err(|why| RuleError::Template {
                index,
                why: format!("is not a stand-in: {}", unsample(&why)),
            })?;
        }
        Ok(Self {
            pattern: pattern.to_owned(),
            glob,
            provides,
            source,
            replaces: None,
        })
    }

    pub(crate) fn matches(&self, module: &str) -> bool {
        self.glob.matches_with(module, MATCH)
    }

    /// Whether `other` is the same pattern: patterns match ignoring case, so they are
    /// compared ignoring case too.
    fn same_pattern(&self, other: &str) -> bool {
        self.pattern.eq_ignore_ascii_case(other)
    }

    /// `rule openmpi/* (default)`, for notes.
    fn label(&self) -> String {
        format!("rule {} ({})", self.pattern, self.source)
    }

    /// The templates filled in for `module`, each checked again: a version the sample did
    /// not foresee (a number too large) makes the rule not apply.
    fn expand_for(&self, module: &str) -> Result<Vec<String>, String> {
        let version = module_version(module);
        self.provides
            .iter()
            .map(|template| {
                let filled = expand(template, version.as_ref()).map_err(|e| match e {
                    Unfilled::Missing("minor") => format!(
                        "module {module} has no minor version in its name, so {} does not apply",
                        self.label()
                    ),
                    Unfilled::Missing(_) => format!(
                        "module {module} has no version in its name, so {} does not apply",
                        self.label()
                    ),
                    Unfilled::Unknown(p) => {
                        format!("{} has an unknown placeholder {p:?}", self.label())
                    }
                })?;
                StandIn::from_str(&filled).map_err(|why| {
                    format!(
                        "module {module}: {} gives {filled:?}, which is not a stand-in ({why}), so it does not apply",
                        self.label()
                    )
                })?;
                Ok(filled)
            })
            .collect()
    }
}

/// The built-in rules, lowest of all layers.
pub(crate) fn default_rules() -> Vec<Rule> {
    DEFAULTS
        .iter()
        .map(|(pattern, provides)| {
            Rule::new(
                pattern,
                provides.iter().map(|p| (*p).to_owned()).collect(),
                RuleSource::Default,
            )
            .expect("the built-in rules are valid")
        })
        .collect()
}

/// The rules of every layer that sets `module_provides`, highest first, over the defaults:
/// the rules of the highest layer in file order, then those of the next layer whose pattern
/// no higher layer has, and so on down to the defaults. A bad pattern or template is an
/// error that names the file and the line.
pub(crate) fn merge_rules(layers: &[(RuleSource, &ListMap)]) -> Result<Vec<Rule>> {
    let mut rules: Vec<Rule> = Vec::new();
    for (source, map) in layers {
        let mut seen: Vec<&str> = Vec::new();
        for entry in &map.entries {
            let place = |line: Option<usize>| match line {
                Some(line) => format!("{source}, line {line}"),
                None => source.to_string(),
            };
            if let Some(earlier) = seen.iter().find(|p| p.eq_ignore_ascii_case(&entry.key)) {
                return Err(UserError::failure(format!(
                    "{}: module_provides {:?} is given twice (also as {earlier:?})",
                    place(entry.line),
                    entry.key,
                ))
                .with_hint("keep one of them: patterns match ignoring case")
                .into());
            }
            seen.push(&entry.key);
            let provides = entry.values.iter().map(|(v, _)| v.clone()).collect();
            let rule = Rule::new(&entry.key, provides, source.clone()).map_err(|e| match e {
                RuleError::Glob(why) => UserError::failure(format!(
                    "{}: module_provides {:?} {why}",
                    place(entry.line),
                    entry.key
                ))
                .with_hint("use `*` and `?` wildcards, e.g. `openmpi/*`"),
                RuleError::Template { index, why } => {
                    let (template, line) = &entry.values[index];
                    UserError::failure(format!(
                        "{}: module_provides {:?}: {template:?} {why}",
                        place(line.or(entry.line)),
                        entry.key
                    ))
                    .with_hint(TEMPLATE_HINT)
                }
            })?;
            add_below(&mut rules, rule);
        }
    }
    for rule in default_rules() {
        add_below(&mut rules, rule);
    }
    Ok(rules)
}

/// `rule`, from a lower layer than every rule in `rules`: kept unless a higher rule has its
/// pattern, which then records what it replaces.
fn add_below(rules: &mut Vec<Rule>, rule: Rule) {
    match rules.iter_mut().find(|r| r.same_pattern(&rule.pattern)) {
        Some(higher) => {
            higher.replaces.get_or_insert(rule.source);
        }
        None => rules.push(rule),
    }
}

/// What one recorded module provided, as the manifest and environment.yml keep it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ModuleProvision {
    /// `openmpi/4.1.6`.
    pub(crate) module: String,
    /// The pattern of the rule that matched: `openmpi/*`.
    pub(crate) rule: String,
    /// The templates filled in: `openmpi 4.1.6`, `mpi 1.0 openmpi`.
    pub(crate) provides: Vec<String>,
}

/// What the rules make of the recorded modules.
#[derive(Debug, Clone, Default)]
pub(crate) struct Derived {
    /// One per module that matched a rule with something to provide, in load order.
    pub(crate) provisions: Vec<ModuleProvision>,
    /// Why a matching rule did not apply, for `-v`.
    pub(crate) notes: Vec<String>,
}

/// Each recorded module takes the first matching rule that applies to it: a rule whose
/// placeholder the module cannot fill (`{version}` for `mpi/openmpi-x86_64`) is passed over,
/// with a note. Only recorded modules count: a sticky or ignored module is no dependency of
/// the environment, so nothing may rest on it.
pub(crate) fn derive(recorded: &[LoadedModule], rules: &[Rule]) -> Derived {
    let mut derived = Derived::default();
    for module in recorded {
        let name = &module.full_name;
        for rule in rules.iter().filter(|r| r.matches(name)) {
            if rule.provides.is_empty() {
                derived.notes.push(format!(
                    "module {name} matches {}, which provides nothing",
                    rule.label()
                ));
                break;
            }
            match rule.expand_for(name) {
                Ok(provides) => {
                    derived.provisions.push(ModuleProvision {
                        module: name.clone(),
                        rule: rule.pattern.clone(),
                        provides,
                    });
                    break;
                }
                Err(note) => derived.notes.push(note),
            }
        }
    }
    derived
}

/// A stand-in and the module it comes from.
#[derive(Debug, Clone)]
pub(crate) struct FromModule<T> {
    pub(crate) value: T,
    /// `openmpi/4.1.6`.
    pub(crate) module: String,
}

/// The provisions as the solver takes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct StandIns {
    /// Pinned: the only candidate of their name, never linked.
    pub(crate) records: Vec<FromModule<RepoDataRecord>>,
    pub(crate) virtuals: Vec<FromModule<GenericVirtualPackage>>,
    pub(crate) constraints: Vec<FromModule<MatchSpec>>,
}

/// The stand-ins of `provisions`, for `platform`. Each string is checked again (a manifest
/// can be edited). Two modules giving a record or virtual package of the same name is an
/// error: the solver would keep one of them in silence.
pub(crate) fn stand_ins(provisions: &[ModuleProvision], platform: Subdir) -> Result<StandIns> {
    let mut out = StandIns::default();
    // Name → (module, what it gave), for the records and virtual packages so far.
    let mut given: BTreeMap<String, (String, String)> = BTreeMap::new();
    for p in provisions {
        for text in &p.provides {
            let stand_in = StandIn::from_str(text).map_err(|why| {
                UserError::failure(format!(
                    "module {} provides {text:?}, which is not a stand-in: {why}",
                    p.module
                ))
                .with_hint(TEMPLATE_HINT)
            })?;
            let key = stand_in.name().as_normalized().to_owned();
            let shown = stand_in.to_string();
            if !matches!(stand_in, StandIn::Constraint(_)) {
                if let Some((other, before)) = given.get(&key) {
                    if before == &shown {
                        continue;
                    }
                    let (v1, v2) = (
                        before.split_once(' ').map_or("", |(_, v)| v),
                        shown.split_once(' ').map_or("", |(_, v)| v),
                    );
                    let modules = if other == &p.module {
                        format!("module {other} provides {key} twice ({v1}, {v2})")
                    } else {
                        format!(
                            "modules {other} and {} both provide {key} ({v1}, {v2})",
                            p.module
                        )
                    };
                    return Err(UserError::usage(modules)
                        .with_hint(
                            "unload one of them, or turn one rule off with an empty list in module_provides",
                        )
                        .into());
                }
                given.insert(key, (p.module.clone(), shown));
            }
            let module = p.module.clone();
            match stand_in {
                StandIn::Record {
                    name,
                    version,
                    build,
                } => {
                    let url = module_url(&p.module, &name, &version, &build);
                    let value = stand_in_record(&name, &version, &build, url, platform)?;
                    out.records.push(FromModule { value, module });
                }
                StandIn::Virtual(value) => out.virtuals.push(FromModule { value, module }),
                StandIn::Constraint(value) => out.constraints.push(FromModule {
                    value: *value,
                    module,
                }),
            }
        }
    }
    Ok(out)
}

/// `envmod:module/<module>/<name>-<version>-<build>`, the module %-escaped so that its `/`
/// stays one segment.
pub(crate) fn module_url(
    module: &str,
    name: &PackageName,
    version: &Version,
    build: &str,
) -> url::Url {
    let text = format!(
        "{STAND_IN_SCHEME}:module/{}/{}-{version}-{}",
        escape(module),
        escape(name.as_normalized()),
        escape(build)
    );
    url::Url::parse(&text).expect("an escaped stand-in URL parses")
}

/// Whether `url` is a stand-in's, which no installer may fetch.
pub(crate) fn is_stand_in(url: &url::Url) -> bool {
    url.scheme() == STAND_IN_SCHEME
}

/// Whether `url` is a module's stand-in, not the site Python's packages.
pub(crate) fn is_module_stand_in(url: &url::Url) -> bool {
    is_stand_in(url) && url.path().starts_with("module/")
}

/// Every byte but unreserved URL characters as `%XX`.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A record the solver sees and the installer never links: no dependencies, no files, no
/// channel.
pub(crate) fn stand_in_record(
    name: &PackageName,
    version: &Version,
    build: &str,
    url: url::Url,
    platform: Subdir,
) -> Result<RepoDataRecord> {
    let build_string =
        BuildString::from_str(build).map_err(|e| anyhow::anyhow!("build {build:?}: {e}"))?;
    let mut record = PackageRecord::new(name.clone(), version.clone(), build_string);
    record.subdir = platform.to_string();
    let file_name = format!("{}-{version}-{build}.conda", name.as_normalized());
    Ok(RepoDataRecord {
        package_record: record,
        identifier: DistArchiveIdentifier::from_str(&file_name)
            .map_err(|e| anyhow::anyhow!("{file_name}: {e:?}"))?,
        url,
        channel: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::ListEntry;

    fn module(name: &str) -> LoadedModule {
        LoadedModule {
            full_name: name.into(),
            file: None,
        }
    }

    fn rule(pattern: &str, provides: &[&str]) -> Rule {
        Rule::new(
            pattern,
            provides.iter().map(|p| (*p).to_owned()).collect(),
            RuleSource::UserFile("/u.yaml".into()),
        )
        .unwrap()
    }

    fn map(entries: &[(&str, usize, &[&str])]) -> ListMap {
        ListMap {
            entries: entries
                .iter()
                .map(|(key, line, values)| ListEntry {
                    key: (*key).into(),
                    line: Some(*line),
                    values: values
                        .iter()
                        .enumerate()
                        .map(|(i, v)| ((*v).to_owned(), Some(line + 1 + i)))
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn the_version_is_the_leading_number_after_the_last_slash() {
        let v = |name: &str| {
            module_version(name).map(|v| (v.version, v.major, v.minor.unwrap_or("-".into())))
        };
        let t = |a: &str, b: &str, c: &str| Some((a.into(), b.into(), c.into()));
        assert_eq!(v("openmpi/4.1.6"), t("4.1.6", "4", "1"));
        assert_eq!(v("OpenMPI/4.1.6-GCC-12.3.0"), t("4.1.6", "4", "1"));
        assert_eq!(v("openmpi/4.1.6-gcc-12.3.0-abc1234"), t("4.1.6", "4", "1"));
        assert_eq!(v("CUDA/12.2.0"), t("12.2.0", "12", "2"));
        assert_eq!(v("cuda/12"), t("12", "12", "-"));
        assert_eq!(
            v("impi/2021.9.0-intel-compilers-2023.1.0"),
            t("2021.9.0", "2021", "9")
        );
        assert_eq!(v("intel/oneapi/2023.1"), t("2023.1", "2023", "1"));
        assert_eq!(v("openmpi/4.1."), t("4.1", "4", "1"));
        assert_eq!(v("openmpi"), None);
        assert_eq!(v("mpi/openmpi-x86_64"), None);
        assert_eq!(v("openmpi/.5"), None);
        assert_eq!(v("openmpi/v4.1"), None);
    }

    #[test]
    fn a_template_becomes_a_record_a_virtual_package_or_a_constraint() {
        let kind = |text: &str| match StandIn::from_str(text) {
            Ok(StandIn::Record { build, .. }) => format!("record {build}"),
            Ok(StandIn::Virtual(v)) => format!("virtual {}", v.build_string.as_str()),
            Ok(StandIn::Constraint(spec)) => format!("constraint {spec}"),
            Err(e) => format!("error {e}"),
        };
        assert_eq!(kind("openmpi 4.1.6"), "record envmod_module");
        assert_eq!(kind("mpi 1.0 openmpi"), "record openmpi");
        assert_eq!(kind("  mpi\t1.0   openmpi "), "record openmpi");
        assert_eq!(kind("cuda-version 12.2"), "record envmod_module");
        assert_eq!(kind("__cuda 12.2"), "virtual 0");
        assert_eq!(kind("__cuda 12.2 sm90"), "virtual sm90");
        assert!(kind("libblas * *mkl").starts_with("constraint libblas"));
        assert!(kind("cuda-version 12.2.*").starts_with("constraint cuda-version"));
        assert!(kind("openmpi >=4.1,<5").starts_with("constraint openmpi"));
        assert!(kind("openmpi 4.1.6 h0_*").starts_with("constraint openmpi"));
        assert!(kind("openmpi ==4.1.6").starts_with("constraint openmpi"));
        for (bad, why) in [
            ("", "empty"),
            ("openmpi", "has no version"),
            ("a 1 b c", "more than three parts"),
            ("python 3.11.2", "python cannot come from a module"),
            ("Python >=3", "python cannot come from a module"),
            ("__cuda >=12", "takes one exact version"),
            ("__cuda 12.*", "takes one exact version"),
            ("open* 4.1", "not a package name"),
            ("^open.*$ 4.1", "not a package name"),
            ("conda-forge::openmpi 4.1", "not a package name"),
            ("openmpi[version=4] 4.1", "not a package name"),
            ("mpi 1.0 open-mpi", "not a build string"),
        ] {
            let got = kind(bad);
            assert!(
                got.starts_with("error") && got.contains(why),
                "{bad:?}: {got}"
            );
        }
    }

    #[test]
    fn stand_ins_display_as_they_were_written() {
        for text in [
            "openmpi 4.1.6 envmod_module",
            "mpi 1.0 openmpi",
            "__cuda 12.2 0",
        ] {
            assert_eq!(StandIn::from_str(text).unwrap().to_string(), text);
        }
        assert_eq!(
            StandIn::from_str("openmpi 4.1.6").unwrap().to_string(),
            "openmpi 4.1.6 envmod_module"
        );
    }

    #[test]
    fn placeholders_are_filled_and_unknown_ones_refused() {
        let v = module_version("CUDA/12.2.0");
        assert_eq!(
            expand("cuda-version {major}.{minor}.*", v.as_ref()).unwrap(),
            "cuda-version 12.2.*"
        );
        assert_eq!(
            expand("__cuda {version}", v.as_ref()).unwrap(),
            "__cuda 12.2.0"
        );
        assert_eq!(
            expand("x {minor}", module_version("cuda/12").as_ref()),
            Err(Unfilled::Missing("minor"))
        );
        assert_eq!(expand("x {major}", None), Err(Unfilled::Missing("major")));
        for (bad, shown) in [
            ("x {patch}", "{patch}"),
            ("x {Version}", "{Version}"),
            ("x {version", "{version"),
            ("x version}", "}"),
        ] {
            assert_eq!(
                expand(bad, v.as_ref()),
                Err(Unfilled::Unknown(shown.into())),
                "{bad}"
            );
            let err = Rule::new("x/*", vec![bad.into()], RuleSource::Default).unwrap_err();
            assert!(
                matches!(&err, RuleError::Template { index: 0, why } if why.contains("is not a placeholder")),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_rule_is_checked_when_it_is_read() {
        assert!(matches!(
            Rule::new("[openmpi/*", vec![], RuleSource::Default),
            Err(RuleError::Glob(_))
        ));
        assert!(matches!(
            Rule::new(" ", vec![], RuleSource::Default),
            Err(RuleError::Glob(_))
        ));
        let err = Rule::new(
            "openmpi/*",
            vec!["openmpi {version}".into(), "openmpi >=={version}".into()],
            RuleSource::Default,
        )
        .unwrap_err();
        assert!(
            matches!(&err, RuleError::Template { index: 1, why }
                if why.starts_with("is not a stand-in") && why.contains(">=={version}")),
            "{err:?}"
        );
        let err = Rule::new(
            "cuda/*",
            vec!["__cuda >={major}.{minor}".into()],
            RuleSource::Default,
        )
        .unwrap_err();
        assert!(
            matches!(&err, RuleError::Template { why, .. } if why.contains(">={major}.{minor}")),
            "{err:?}"
        );
    }

    #[test]
    fn the_first_rule_that_matches_and_applies_wins() {
        let rules = vec![
            rule("openmpi/4.1*", &["openmpi 4.1.99"]),
            rule("openmpi/*", &["openmpi {version}", "mpi 1.0 openmpi"]),
            rule(
                "cuda/*",
                &["__cuda {version}", "cuda-version {major}.{minor}.*"],
            ),
            rule("cuda/*", &["__cuda {version}"]),
            rule("mpi/openmpi-x86_64", &["openmpi 4.1.1", "mpi 1.0 openmpi"]),
            rule("xalt/*", &[]),
            rule("*", &["never-reached 1"]),
        ];
        let d = derive(
            &[
                module("OpenMPI/4.1.6-GCC-12.3.0"),
                module("openmpi/5.0.2"),
                module("cuda/12"),
                module("mpi/openmpi-x86_64"),
                module("xalt/2.10"),
            ],
            &rules,
        );
        let got: Vec<_> = d
            .provisions
            .iter()
            .map(|p| (p.module.as_str(), p.rule.as_str(), p.provides.join(", ")))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "OpenMPI/4.1.6-GCC-12.3.0",
                    "openmpi/4.1*",
                    "openmpi 4.1.99".into()
                ),
                (
                    "openmpi/5.0.2",
                    "openmpi/*",
                    "openmpi 5.0.2, mpi 1.0 openmpi".into()
                ),
                ("cuda/12", "cuda/*", "__cuda 12".into()),
                (
                    "mpi/openmpi-x86_64",
                    "mpi/openmpi-x86_64",
                    "openmpi 4.1.1, mpi 1.0 openmpi".into()
                ),
            ]
        );
        assert_eq!(
            d.notes,
            [
                "module cuda/12 has no minor version in its name, so rule cuda/* (user file /u.yaml) does not apply",
                "module xalt/2.10 matches rule xalt/* (user file /u.yaml), which provides nothing",
            ]
        );
    }

    #[test]
    fn a_version_too_large_to_parse_makes_the_rule_not_apply() {
        let rules = [rule("x/*", &["x {version}"])];
        let d = derive(&[module("x/123456789012345678901234567890")], &rules);
        assert!(d.provisions.is_empty());
        assert!(
            d.notes[0].contains("which is not a stand-in") && d.notes[0].contains("does not apply"),
            "{:?}",
            d.notes
        );
    }

    #[test]
    fn the_defaults_cover_the_usual_names() {
        let d = derive(
            &[
                module("OpenMPI/4.1.6-GCC-12.3.0"),
                module("CUDA/12.2.0"),
                module("cray-mpich/8.1.28"),
                module("impi/2021.9.0-intel-compilers-2023.1.0"),
                module("mvapich2/2.3.7"),
                module("mpi/openmpi-x86_64"),
                module("gcc/12.3.0"),
            ],
            &default_rules(),
        );
        let got: Vec<_> = d.provisions.iter().map(|p| p.provides.join(", ")).collect();
        assert_eq!(
            got,
            [
                "openmpi 4.1.6, mpi 1.0 openmpi",
                "__cuda 12.2.0, cuda-version 12.2.*",
                "mpich 3.4, mpi 1.0 mpich",
                "impi_rt 2021.9.0, mpi 1.0 impi",
                "mvapich 2.3.7, mpi 1.0 mvapich",
            ]
        );
        assert_eq!(
            d.notes,
            [
                "module mpi/openmpi-x86_64 has no version in its name, so rule mpi/openmpi* (default) does not apply"
            ]
        );
        let rhel = derive(&[module("openmpi/default")], &default_rules());
        assert!(rhel.provisions.is_empty());
        assert_eq!(
            rhel.notes,
            [
                "module openmpi/default has no version in its name, so rule openmpi/* (default) does not apply"
            ]
        );
    }

    #[test]
    fn a_higher_layer_replaces_a_rule_of_the_same_pattern() {
        let user = map(&[("XALT/*", 3, &[]), ("cuda/*", 5, &["__cuda {version}"])]);
        let site = map(&[
            ("xalt/*", 2, &["xalt 1"]),
            ("openmpi/*", 10, &["openmpi {version}"]),
            ("imkl/*", 12, &["libblas * *mkl"]),
        ]);
        let rules = merge_rules(&[
            (RuleSource::UserFile("/u".into()), &user),
            (RuleSource::SiteFile("/s".into()), &site),
        ])
        .unwrap();
        let got: Vec<_> = rules
            .iter()
            .map(|r| {
                (
                    r.pattern.as_str(),
                    r.source.to_string(),
                    r.replaces.as_ref().map(|s| s.to_string()),
                )
            })
            .collect();
        let s = |x: &str| x.to_owned();
        assert_eq!(
            got[..5],
            [
                ("XALT/*", s("user file /u"), Some(s("site file /s"))),
                ("cuda/*", s("user file /u"), Some(s("default"))),
                ("openmpi/*", s("site file /s"), Some(s("default"))),
                ("imkl/*", s("site file /s"), None),
                ("mpich/*", s("default"), None),
            ]
        );
        // xalt/* and imkl/* are new; cuda/* and openmpi/* replace defaults.
        assert_eq!(rules.len(), 2 + DEFAULTS.len());
        assert!(rules.iter().filter(|r| r.pattern == "cuda/*").count() == 1);
        let d = derive(&[module("xalt/2"), module("CUDA/12.2.0")], &rules);
        assert_eq!(d.provisions.len(), 1);
        assert_eq!(d.provisions[0].provides, ["__cuda 12.2.0"]);
        // An empty list turns a default off.
        let off = map(&[("openmpi/*", 1, &[])]);
        let rules = merge_rules(&[(RuleSource::SiteFile("/s".into()), &off)]).unwrap();
        assert!(
            derive(&[module("openmpi/4.1.6")], &rules)
                .provisions
                .is_empty()
        );
    }

    #[test]
    fn a_bad_rule_names_the_file_and_the_line() {
        let site = map(&[("openmpi/*", 13, &["openmpi >=={version}"])]);
        let err = merge_rules(&[(
            RuleSource::SiteFile("/etc/envmod/config.yaml".into()),
            &site,
        )])
        .unwrap_err();
        assert!(
            err.to_string().starts_with(
                r#"site file /etc/envmod/config.yaml, line 14: module_provides "openmpi/*": "openmpi >=={version}" is not a stand-in: "#
            ),
            "{err}"
        );
        assert!(
            crate::error::hint_of(&err)
                .unwrap()
                .contains("name version [build]")
        );
        let glob = map(&[("[mpi", 7, &[])]);
        let err = merge_rules(&[(RuleSource::UserFile("/u".into()), &glob)]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(r#"user file /u, line 7: module_provides "[mpi" is not a valid glob"#),
            "{err}"
        );
        let twice = map(&[("cuda/*", 1, &[]), ("CUDA/*", 2, &[])]);
        let err = merge_rules(&[(RuleSource::UserFile("/u".into()), &twice)]).unwrap_err();
        assert!(
            err.to_string().contains("line 2") && err.to_string().contains("twice"),
            "{err}"
        );
    }

    #[test]
    fn stand_ins_become_rattler_types() {
        let provisions = derive(
            &[module("openmpi/4.1.6"), module("cuda/12.2")],
            &default_rules(),
        )
        .provisions;
        let s = stand_ins(&provisions, Subdir::Linux64).unwrap();
        let records: Vec<_> = s
            .records
            .iter()
            .map(|r| {
                let p = &r.value.package_record;
                (
                    format!("{} {} {}", p.name.as_normalized(), p.version, p.build),
                    r.value.url.to_string(),
                    r.module.as_str(),
                )
            })
            .collect();
        assert_eq!(
            records,
            [
                (
                    "openmpi 4.1.6 envmod_module".into(),
                    "envmod:module/openmpi%2F4.1.6/openmpi-4.1.6-envmod_module".into(),
                    "openmpi/4.1.6"
                ),
                (
                    "mpi 1.0 openmpi".into(),
                    "envmod:module/openmpi%2F4.1.6/mpi-1.0-openmpi".into(),
                    "openmpi/4.1.6"
                ),
            ]
        );
        let r = &s.records[0].value;
        assert!(is_stand_in(&r.url) && r.channel.is_none());
        assert!(r.package_record.depends.is_empty());
        assert_eq!(r.package_record.subdir, "linux-64");
        assert_eq!(
            r.identifier.to_string(),
            "openmpi-4.1.6-envmod_module.conda"
        );
        assert_eq!(s.virtuals.len(), 1);
        assert_eq!(s.virtuals[0].value.to_string(), "__cuda=12.2=0");
        assert_eq!(s.virtuals[0].module, "cuda/12.2");
        assert_eq!(s.constraints.len(), 1);
        assert_eq!(s.constraints[0].value.to_string(), "cuda-version 12.2.*");
        assert!(!is_stand_in(
            &url::Url::parse("file:///x/mpi-1.0-openmpi.conda").unwrap()
        ));
    }

    #[test]
    fn two_modules_giving_the_same_name_is_an_error_naming_both() {
        let provisions = derive(
            &[module("openmpi/4.1.6"), module("mpich/4.2.1")],
            &default_rules(),
        )
        .provisions;
        let err = stand_ins(&provisions, Subdir::Linux64).unwrap_err();
        assert_eq!(
            err.to_string(),
            "modules openmpi/4.1.6 and mpich/4.2.1 both provide mpi (1.0 openmpi, 1.0 mpich)"
        );
        let twice = [ModuleProvision {
            module: "cuda/12.2".into(),
            rule: "cuda/*".into(),
            provides: vec!["__cuda 12.2".into(), "__cuda 12.4".into()],
        }];
        let err = stand_ins(&twice, Subdir::Linux64).unwrap_err();
        assert!(err.to_string().contains("provides __cuda twice"), "{err}");
        // The same record from two modules is no conflict, and constraints never are.
        let same = [
            ModuleProvision {
                module: "a/1".into(),
                rule: "a/*".into(),
                provides: vec!["mpi 1.0 openmpi".into(), "libblas * *mkl".into()],
            },
            ModuleProvision {
                module: "b/1".into(),
                rule: "b/*".into(),
                provides: vec!["mpi 1.0 openmpi".into(), "libblas * *openblas".into()],
            },
        ];
        let s = stand_ins(&same, Subdir::Linux64).unwrap();
        assert_eq!((s.records.len(), s.constraints.len()), (1, 2));
    }

    #[test]
    fn an_edited_provision_is_refused_when_read_back() {
        for bad in ["python 3.12", "open* 4.1", "__cuda >=12"] {
            let p = [ModuleProvision {
                module: "m/1".into(),
                rule: "m/*".into(),
                provides: vec![bad.into()],
            }];
            let err = stand_ins(&p, Subdir::Linux64).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with(&format!("module m/1 provides {bad:?}")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_provision_round_trips_through_yaml() {
        let p = ModuleProvision {
            module: "openmpi/4.1.6".into(),
            rule: "openmpi/*".into(),
            provides: vec!["openmpi 4.1.6".into(), "mpi 1.0 openmpi".into()],
        };
        let text = serde_yaml::to_string(&p).unwrap();
        assert_eq!(serde_yaml::from_str::<ModuleProvision>(&text).unwrap(), p);
    }
}

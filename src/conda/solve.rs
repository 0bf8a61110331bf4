//! Repodata and solving. The site's Python enters the solve as a pinned `python` record of
//! its exact version, so packages are chosen for it and no second Python is installed.
//!
//! A solve can also be for a platform envmod does not run on, to lock an environment for
//! another cluster; only the platform queried and the message of a failure differ.
//!
//! The solve reads nothing from the process: the virtual packages (`CONDA_OVERRIDE_*`
//! included) and everything else it sees come in its request, decided by the caller.

use std::{str::FromStr, time::Instant};

use anyhow::{Context, Result};

use rattler_conda_types::{
    Channel, GenericVirtualPackage, MatchSpec, Matches, PackageName, PackageRecord,
    ParseMatchSpecOptions, RepoDataRecord, Subdir, Version, package::DistArchiveIdentifier,
};
use rattler_repodata_gateway::{
    ChannelConfig, Gateway, GatewayError, SourceConfig, fetch::CacheAction,
};
use rattler_solve::{SolveError, SolverImpl, SolverTask, resolvo};

use crate::{
    conda::{CondaSettings, Network, PLATFORM, channels, specs::Spec},
    error::UserError,
    printer::Printer,
    site::{provides::is_stand_in, python::Interpreter},
};

/// The build string of the stand-in record for the site's Python.
pub const SITE_PYTHON_BUILD: &str = "envmod_site_python";

/// A record that stands for the site's interpreter: the solver sees it, the installer skips it.
pub fn site_python_record(python: &Interpreter) -> Result<RepoDataRecord> {
    let mut record = PackageRecord::new(
        PackageName::from_str("python")?,
        Version::from_str(&python.version).context("site Python version")?,
        SITE_PYTHON_BUILD
            .parse()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?,
    );
    record.subdir = PLATFORM.to_string();
    let file_name = format!("python-{}-{SITE_PYTHON_BUILD}.conda", python.version);
    Ok(RepoDataRecord {
        package_record: record,
        identifier: DistArchiveIdentifier::from_str(&file_name)
            .map_err(|e| anyhow::anyhow!("{e:?}"))?,
        url: url::Url::from_file_path(&python.executable)
            .unwrap_or_else(|()| url::Url::parse("file:///site-python").expect("valid url")),
        channel: None,
    })
}

pub fn gateway(settings: &CondaSettings, network: &Network) -> Result<Gateway> {
    let mut builder = Gateway::builder()
        .with_client(network.client()?)
        .with_cache_dir(settings.repodata_cache_dir())
        .with_package_cache(settings.package_cache(&[])?);
    if settings.offline {
        builder = builder.with_channel_config(ChannelConfig {
            default: SourceConfig {
                cache_action: CacheAction::ForceCacheOnly,
                ..SourceConfig::default()
            },
            per_channel: Default::default(),
        });
    }
    Ok(builder.finish())
}

/// A record the solve is given besides the repodata, and what gave it: `module
/// openmpi/4.1.6`, `the site Python`.
#[derive(Debug, Clone)]
pub struct Provided {
    pub record: RepoDataRecord,
    pub origin: String,
}

/// A spec the solution must satisfy without asking for the package (`libblas * *mkl`), and
/// what gave it.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub spec: MatchSpec,
    pub origin: String,
}

/// Everything a solve sees. `env::request::build` makes it; nothing here is detected or
/// read from the process.
pub struct SolveRequest<'a> {
    /// The platform to solve for; its subdir and `noarch` are queried.
    pub platform: Subdir,
    pub channels: &'a [Channel],
    /// The client for the channels, holding the credentials taken out of their URLs.
    pub network: &'a Network,
    pub specs: Vec<Spec>,
    /// Pinned, and kept in the solution: the installer skips it, yet needs it to know where
    /// noarch Python packages go.
    pub site_python: Option<RepoDataRecord>,
    /// Pinned: the only candidate of their name. Never linked, and left out of the
    /// solution's records.
    pub stand_ins: Vec<Provided>,
    /// Favored: preferred, but the solver may pass over one to satisfy a spec. Never linked.
    pub site_packages: Vec<Provided>,
    /// What the prefix holds now; favored after the site's packages, so that of two records
    /// of one name the environment's own wins and a change moves little else.
    pub installed: Vec<RepoDataRecord>,
    pub constraints: Vec<Constraint>,
    /// Final: nothing is detected here.
    pub virtual_packages: Vec<GenericVirtualPackage>,
}

/// What a solve chose.
#[derive(Debug)]
pub struct Solution {
    /// What to install: the site Python's record included, stand-ins and site packages not.
    pub records: Vec<RepoDataRecord>,
    /// The stand-ins and site packages the solution uses.
    pub provided: Vec<Provided>,
    /// Site packages a channel's record of the same name was chosen over.
    pub shadowed: Vec<Shadow>,
}

/// A channel's package chosen where the site Python has one of the same name: at run time
/// the environment's copy comes first on `sys.path`, so it hides the site's.
#[derive(Debug)]
pub struct Shadow {
    pub conda: RepoDataRecord,
    pub site: Provided,
}

/// The part of the request the solver itself takes, owned, to move onto a blocking thread.
struct Given {
    specs: Vec<MatchSpec>,
    site_python: Option<RepoDataRecord>,
    stand_ins: Vec<Provided>,
    site_packages: Vec<Provided>,
    installed: Vec<RepoDataRecord>,
    constraints: Vec<Constraint>,
    virtual_packages: Vec<GenericVirtualPackage>,
}

impl Given {
    /// Solve over `repodata`: the site Python and the stand-ins pinned, the site packages then
    /// the installed records favored (resolvo keeps the last favored record of each name),
    /// the constraints as the problem's constraints.
    fn solve<'r>(
        &'r self,
        mut available: Vec<Vec<&'r RepoDataRecord>>,
    ) -> Result<Vec<RepoDataRecord>, SolveError> {
        available.extend(self.site_python.as_ref().map(|p| vec![p]));
        let task = SolverTask {
            virtual_packages: self.virtual_packages.clone(),
            specs: self.specs.clone(),
            pinned_packages: self
                .site_python
                .iter()
                .chain(self.stand_ins.iter().map(|p| &p.record))
                .collect(),
            locked_packages: self
                .site_packages
                .iter()
                .map(|p| &p.record)
                .chain(&self.installed)
                .collect(),
            constraints: self.constraints.iter().map(|c| c.spec.clone()).collect(),
            ..SolverTask::from_iter(available)
        };
        resolvo::Solver.solve(task).map(|r| r.records)
    }

    /// `records` split into what to install and what the request provided, with the site
    /// packages a channel's record displaced.
    fn solution(self, records: Vec<RepoDataRecord>) -> Solution {
        let given: Vec<&Provided> = self.stand_ins.iter().chain(&self.site_packages).collect();
        let (provided, records): (Vec<RepoDataRecord>, Vec<RepoDataRecord>) =
            records.into_iter().partition(|r| is_stand_in(&r.url));
        // In the order given: a module's stand-ins together, as its rule lists them.
        let provided = given
            .into_iter()
            .filter(|p| provided.iter().any(|r| r.url == p.record.url))
            .cloned()
            .collect();
        let shadowed = self
            .site_packages
            .iter()
            .filter_map(|site| {
                let name = &site.record.package_record.name;
                let conda = records.iter().find(|r| &r.package_record.name == name)?;
                Some(Shadow {
                    conda: conda.clone(),
                    site: site.clone(),
                })
            })
            .collect();
        Solution {
            records,
            provided,
            shadowed,
        }
    }
}

/// rattler's solver can only take a constraint on one exact name; any other would stop the
/// process, so it is refused here, naming where it came from.
fn check_constraints(constraints: &[Constraint]) -> Result<()> {
    for c in constraints {
        if c.spec.name.as_exact().is_none() {
            return Err(UserError::failure(format!(
                "{} gives the constraint {}, which does not name one package",
                c.origin, c.spec
            ))
            .with_hint("a constraint names one package exactly, e.g. `libblas * *mkl`")
            .into());
        }
    }
    Ok(())
}

/// A line for `-v`: what the solve was given besides the specs.
fn given_lines(req: &SolveRequest<'_>) -> Vec<String> {
    let describe = |what: &str, items: Vec<String>| {
        (!items.is_empty()).then(|| format!("{what}: {}", items.join(", ")))
    };
    let record = |p: &Provided| {
        let r = &p.record.package_record;
        format!(
            "{} {} {} ({})",
            r.name.as_normalized(),
            r.version,
            r.build,
            p.origin
        )
    };
    [
        describe("pinned", req.stand_ins.iter().map(record).collect()),
        describe(
            &format!("site packages favored ({})", req.site_packages.len()),
            req.site_packages
                .iter()
                .map(|p| {
                    let r = &p.record.package_record;
                    format!("{} {}", r.name.as_normalized(), r.version)
                })
                .collect(),
        ),
        describe(
            "constraints",
            req.constraints
                .iter()
                .map(|c| format!("{} ({})", c.spec, c.origin))
                .collect(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

pub async fn solve(
    settings: &CondaSettings,
    mut req: SolveRequest<'_>,
    printer: &Printer,
) -> Result<Solution> {
    check_constraints(&req.constraints)?;
    let started = Instant::now();
    let mut query_specs: Vec<MatchSpec> =
        req.specs.iter().map(|s| s.match_spec().clone()).collect();
    if req.site_python.is_some() {
        query_specs.push(MatchSpec::from_str(
            "python",
            ParseMatchSpecOptions::strict(),
        )?);
    }
    let mut query = gateway(settings, req.network)?
        .query(
            req.channels.to_vec(),
            [req.platform, Subdir::NoArch],
            query_specs,
        )
        .recursive(true);
    if printer.wants_progress_bars() {
        query = query.with_reporter(
            rattler_repodata_gateway::IndicatifReporter::builder()
                .with_multi_progress(indicatif::MultiProgress::new())
                .clear_when_done(true)
                .finish(),
        );
    } else if printer.wants_progress_lines() {
        let names: Vec<String> = req.channels.iter().map(channels::display).collect();
        printer.info(format!("Loading repodata from {}", names.join(", ")));
    }
    let repodata = query
        .execute()
        .await
        .map_err(|e| gateway_error(e, req.channels, req.network))?;
    if req.site_python.is_none()
        && let Some(err) = no_python(
            &req,
            repodata.repodata.iter().flat_map(|r| r.iter()),
            req.platform,
        )
    {
        return Err(err);
    }
    let total: usize = repodata.repodata.iter().map(|r| r.len()).sum();
    printer.detail(format!(
        "loaded {total} records in {:.2?}",
        started.elapsed()
    ));

    printer.detail(format!(
        "virtual packages: {}",
        req.virtual_packages
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let guarded = crate::site::distributions::python_packages_only(
        std::mem::take(&mut req.site_packages),
        |p: &Provided| &p.record,
        repodata.repodata.iter().flat_map(|r| r.iter()),
    );
    for note in guarded.notes {
        printer.detail(note);
    }
    req.site_packages = guarded.kept;
    for line in given_lines(&req) {
        printer.detail(line);
    }
    let platform = req.platform;
    let given = Given {
        specs: req.specs.into_iter().map(Spec::into_match_spec).collect(),
        site_python: req.site_python,
        stand_ins: req.stand_ins,
        site_packages: req.site_packages,
        installed: req.installed,
        constraints: req.constraints,
        virtual_packages: req.virtual_packages,
    };
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let available: Vec<Vec<&RepoDataRecord>> = repodata
            .repodata
            .iter()
            .map(|r| r.iter().collect())
            .collect();
        match given.solve(available) {
            Ok(records) => Ok(given.solution(records)),
            Err(SolveError::Unsolvable(explanations)) => {
                let explanation = explanations.join("\n");
                let records: Vec<&RepoDataRecord> =
                    repodata.repodata.iter().flat_map(|r| r.iter()).collect();
                let conflicts = given.conflicts(&explanation, &records);
                Err(Failed::Unsolvable(explanation, conflicts))
            }
            Err(e) => Err(Failed::Other(e)),
        }
    })
    .await
    .context("the solver stopped unexpectedly")?;
    printer.detail(format!("solved in {:.2?}", started.elapsed()));
    match result {
        Ok(solution) => Ok(solution),
        Err(Failed::Unsolvable(explanation, conflicts)) => {
            Err(unsolvable(platform, &explanation, &conflicts))
        }
        Err(Failed::Other(e)) => Err(UserError::failure(format!("the solver failed: {e}")).into()),
    }
}

/// Whether any of `channels` has a package named `name` for `platform` or noarch: asked
/// before a package is added to a solve on the user's behalf, so that its absence is said
/// as such, not as a solver's conflict.
pub async fn has_package(
    settings: &CondaSettings,
    channels: &[Channel],
    network: &Network,
    platform: Subdir,
    name: &str,
) -> Result<bool> {
    let spec = MatchSpec::from_str(name, ParseMatchSpecOptions::strict())?;
    let found = gateway(settings, network)?
        .query(channels.to_vec(), [platform, Subdir::NoArch], [spec])
        .execute()
        .await
        .map_err(|e| gateway_error(e, channels, network))?;
    Ok(found.repodata.iter().any(|r| !r.is_empty()))
}

enum Failed {
    Unsolvable(String, Vec<StandInConflict>),
    Other(SolveError),
}

/// A package the solve needed that a module's stand-in could not satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandInConflict {
    /// `mpi4py`.
    pub dependent: String,
    /// `openmpi >=4.1.6,<5.0a0`.
    pub spec: String,
    /// The stand-in: `openmpi 4.1 envmod_module`.
    pub provided: (String, String, String),
    /// `module openmpi/4.1`.
    pub origin: String,
    /// The stand-in's version satisfies the spec and only its build does not (the `mpi`
    /// mutex of another MPI): no version of the module would do.
    pub build_only: bool,
}

impl StandInConflict {
    /// `mpi4py needs openmpi >=4.1.6,<5.0a0; module openmpi/4.1 provides 4.1: load
    /// openmpi/4.1.6, or unload openmpi/4.1 to use conda's openmpi`.
    pub fn hint(&self) -> String {
        let (name, version, build) = &self.provided;
        let module = self.origin.strip_prefix("module ").unwrap_or(&self.origin);
        let family = module.rsplit_once('/').map_or(module, |(f, _)| f);
        if self.build_only {
            // Another variant: no version of the module would do, a build made for it might.
            // A mutex's build names the implementation (`mpi 1.0 mpich`).
            let wanted = self.spec.split_whitespace().nth(2).unwrap_or(name);
            return format!(
                "{} needs {}; {} provides {name} {version} {build}: ask for the {build} build of {}, or unload {module} to use conda's {wanted}",
                self.dependent, self.spec, self.origin, self.dependent
            );
        }
        let load = lower_bound(&self.spec)
            .map(|v| format!("load {family}/{v}, or "))
            .unwrap_or_default();
        format!(
            "{} needs {}; {} provides {version}: {load}unload {module} to use conda's {name}",
            self.dependent, self.spec, self.origin
        )
    }
}

/// `4.1.6` of `openmpi >=4.1.6,<5.0a0`, the version a module would have to have.
fn lower_bound(spec: &str) -> Option<String> {
    let constraint = spec.split_whitespace().nth(1)?;
    constraint
        .split([',', '|'])
        .find_map(|part| {
            part.strip_prefix(">=")
                .or_else(|| part.strip_prefix("=="))
                .or_else(|| part.strip_prefix('>'))
                .or_else(|| (!part.starts_with(['<', '!', '~', '='])).then_some(part))
        })
        .map(|v| v.trim_end_matches(".*").to_owned())
        .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
}

impl Given {
    /// The stand-ins the explanation says were locked against another version, each with
    /// the package whose dependency it failed: of the packages asked for (else of those the
    /// explanation names), the newest whose dependency on the stand-in's name it does not
    /// match. A version that fails is told before a build that fails, for one package.
    fn conflicts(&self, explanation: &str, repodata: &[&RepoDataRecord]) -> Vec<StandInConflict> {
        let words: std::collections::BTreeSet<&str> = explanation
            .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | '\''))
            .map(|w| w.trim_start_matches(|c: char| !c.is_alphanumeric()))
            .collect();
        let asked: std::collections::BTreeSet<&str> = self
            .specs
            .iter()
            .filter_map(|s| s.name.as_exact().map(|n| n.as_normalized()))
            .collect();
        let locked: Vec<&Provided> = self
            .stand_ins
            .iter()
            .filter(|p| {
                let r = &p.record.package_record;
                let shown = format!("{} {}", r.name.as_normalized(), r.version);
                explanation
                    .lines()
                    .any(|l| l.contains(&shown) && l.contains("locked"))
            })
            .collect();
        let find = |among: &dyn Fn(&str) -> bool| {
            let mut out: Vec<StandInConflict> = Vec::new();
            for stand_in in &locked {
                let r = &stand_in.record.package_record;
                let name = r.name.as_normalized();
                let mut best: Option<(&PackageRecord, String, bool)> = None;
                for record in repodata {
                    let p = &record.package_record;
                    if !among(p.name.as_normalized()) {
                        continue;
                    }
                    let failed = p.depends.iter().find_map(|d| {
                        let spec = MatchSpec::from_str(d, ParseMatchSpecOptions::lenient()).ok()?;
                        (spec.name.as_exact()? == &r.name && !spec.matches(r)).then(|| {
                            let build_only =
                                spec.version.as_ref().is_none_or(|v| v.matches(&r.version));
                            (d.clone(), build_only)
                        })
                    });
                    let Some((spec, build_only)) = failed else {
                        continue;
                    };
                    if best.as_ref().is_none_or(|(b, _, _)| p.version > b.version) {
                        best = Some((p, spec, build_only));
                    }
                }
                if let Some((p, spec, build_only)) = best {
                    out.push(StandInConflict {
                        dependent: p.name.as_normalized().to_owned(),
                        spec,
                        provided: (name.to_owned(), r.version.to_string(), r.build.to_string()),
                        origin: stand_in.origin.clone(),
                        build_only,
                    });
                }
            }
            // Per package, a version that fails says more than a build that fails.
            let by_version: Vec<String> = out
                .iter()
                .filter(|c| !c.build_only)
                .map(|c| c.dependent.clone())
                .collect();
            out.retain(|c| !c.build_only || !by_version.contains(&c.dependent));
            out
        };
        let out = find(&|n| asked.contains(n));
        if out.is_empty() {
            find(&|n| words.contains(n))
        } else {
            out
        }
    }
}

/// The solver's explanation names the packages that cannot be installed; for a platform
/// other than this machine's, the message also says which platform, since the same specs
/// may well solve here.
fn unsolvable(platform: Subdir, explanation: &str, conflicts: &[StandInConflict]) -> anyhow::Error {
    let for_platform = if platform == PLATFORM {
        String::new()
    } else {
        format!(" for {platform}")
    };
    UserError::failure(format!(
        "the requested packages cannot be installed together{for_platform}:\n{}",
        explanation.trim_end()
    ))
    .with_hint(match conflicts {
        [] => "loosen or drop one of the specs above; nothing was changed".to_owned(),
        some => some
            .iter()
            .map(StandInConflict::hint)
            .collect::<Vec<_>>()
            .join("; "),
    })
    .into()
}

/// A conda Python the specs ask for that no channel has for `platform`. The solver would
/// call it a conflict between the specs ("No candidates were found for python 3.11.*") and
/// hint to loosen one; the fix is a channel that serves that platform, or another platform.
fn no_python<'r>(
    req: &'r SolveRequest<'_>,
    repodata: impl Iterator<Item = &'r RepoDataRecord>,
    platform: Subdir,
) -> Option<anyhow::Error> {
    let is_python = |r: &RepoDataRecord| r.package_record.name.as_normalized() == "python";
    let spec = req.specs.iter().find(|s| s.is_python())?.match_spec();
    // A module's Python, or the one the prefix holds, is a candidate the channels need not have.
    let given = req
        .stand_ins
        .iter()
        .chain(&req.site_packages)
        .map(|p| &p.record)
        .chain(&req.installed);
    let mut others = std::collections::BTreeSet::new();
    for record in repodata.chain(given).filter(|r| is_python(r)) {
        if spec.matches(record) {
            return None;
        }
        others.insert(record.package_record.version.clone());
    }
    let wanted = spec
        .version
        .as_ref()
        .map(|v| {
            format!(
                " {}",
                v.to_string()
                    .trim_start_matches("==")
                    .trim_end_matches(".*")
            )
        })
        .unwrap_or_default();
    let (what, have) = if others.is_empty() {
        (String::new(), String::new())
    } else {
        let have: Vec<String> = others.iter().map(ToString::to_string).collect();
        (wanted, format!(" (only {})", have.join(", ")))
    };
    let searched: Vec<String> = req.channels.iter().map(channels::display).collect();
    let hint = if platform == PLATFORM {
        format!(
            "add a channel that has Python{what} for {platform} with -c, or ask for a Python the channels have"
        )
    } else {
        format!(
            "add a channel that has Python{what} for {platform} to the environment's channels, or export for a platform the channels serve"
        )
    };
    Some(
        UserError::failure(format!(
            "the channels have no Python{what} for {platform}{have}; searched {}",
            searched.join(", ")
        ))
        .with_hint(hint)
        .into(),
    )
}

fn gateway_error(err: GatewayError, channels: &[Channel], network: &Network) -> anyhow::Error {
    let names: Vec<String> = channels.iter().map(channels::display).collect();
    let hint = "check the channel name or URL; for a local directory run `envmod index DIR`; with --offline only cached repodata is used";
    match err {
        GatewayError::SubdirNotFoundError(e) => UserError::failure(format!(
            "channel {} has no {}/ repodata",
            channels::display(&e.channel),
            e.subdir
        ))
        .with_hint(hint)
        .into(),
        other => UserError::failure(format!(
            "cannot load repodata from {}: {}",
            names.join(", "),
            // The HTTP stack quotes request URLs, a token put back by the middleware included.
            network.redact(&one_line(&other))
        ))
        .with_hint(hint)
        .into(),
    }
}

/// An error and its causes on one line.
fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything the solve sees comes through its request: the process environment is read
    /// once, into `Environ`, and `CONDA_OVERRIDE_*` reaches the solve as virtual packages.
    #[test]
    fn the_solve_reads_nothing_from_the_process() {
        let source = include_str!("solve.rs");
        // Spelled in pieces, so that this test does not find itself.
        for needle in [
            concat!("std", "::env"),
            concat!("env", "::var"),
            concat!("from", "_env"),
        ] {
            assert!(!source.contains(needle), "src/conda/solve.rs uses {needle}");
        }
    }

    #[test]
    fn an_unsolvable_spec_for_another_platform_names_both() {
        let mut record = PackageRecord::new(
            PackageName::from_str("newmac").unwrap(),
            Version::from_str("1.0").unwrap(),
            "0".parse().unwrap(),
        );
        record.subdir = "osx-arm64".to_string();
        record.depends = vec!["__osx >=13".to_string()];
        let record = RepoDataRecord {
            package_record: record,
            identifier: DistArchiveIdentifier::from_str("newmac-1.0-0.conda").unwrap(),
            url: url::Url::parse("https://example.org/osx-arm64/newmac-1.0-0.conda").unwrap(),
            channel: None,
        };
        let task = SolverTask {
            virtual_packages: crate::site::virtual_packages::for_platform(
                Subdir::OsxArm64,
                &Default::default(),
            )
            .unwrap(),
            specs: vec![MatchSpec::from_str("newmac", ParseMatchSpecOptions::strict()).unwrap()],
            ..SolverTask::from_iter([vec![&record]])
        };
        let Err(SolveError::Unsolvable(explanations)) = resolvo::Solver.solve(task) else {
            panic!("expected no solution");
        };
        let err = unsolvable(Subdir::OsxArm64, &explanations.join("\n"), &[]);
        let message = err.to_string();
        assert!(
            message
                .starts_with("the requested packages cannot be installed together for osx-arm64:"),
            "{message}"
        );
        assert!(message.contains("newmac"), "{message}");
        assert!(message.contains("__osx"), "{message}");
        assert!(
            !unsolvable(PLATFORM, "x", &[])
                .to_string()
                .contains(PLATFORM.as_str())
        );
    }

    fn record(name: &str, version: &str, build: &str, depends: &[&str]) -> RepoDataRecord {
        let mut record = PackageRecord::new(
            PackageName::from_str(name).unwrap(),
            Version::from_str(version).unwrap(),
            build.parse().unwrap(),
        );
        record.subdir = PLATFORM.to_string();
        record.depends = depends.iter().map(|d| (*d).to_owned()).collect();
        let file = format!("{name}-{version}-{build}.conda");
        RepoDataRecord {
            identifier: DistArchiveIdentifier::from_str(&file).unwrap(),
            url: url::Url::parse(&format!("file:///ch/linux-64/{file}")).unwrap(),
            package_record: record,
            channel: Some("file:///ch".into()),
        }
    }

    fn module_stand_in(module: &str, name: &str, version: &str, build: &str) -> Provided {
        let (n, v) = (
            PackageName::from_str(name).unwrap(),
            Version::from_str(version).unwrap(),
        );
        let url = crate::site::provides::module_url(module, &n, &v, build);
        Provided {
            record: crate::site::provides::stand_in_record(&n, &v, build, url, PLATFORM).unwrap(),
            origin: format!("module {module}"),
        }
    }

    /// conda-forge's shapes: an MPI library depending on the `mpi` mutex, and a package
    /// with an openmpi and an mpich build.
    fn mpi_repodata() -> Vec<RepoDataRecord> {
        vec![
            record("mpi", "1.0", "openmpi", &[]),
            record("mpi", "1.0", "mpich", &[]),
            record("openmpi", "4.1.6", "h0_101", &["mpi 1.0 openmpi"]),
            record("mpich", "4.2.1", "h0_101", &["mpi 1.0 mpich"]),
            record(
                "partool",
                "1.0",
                "mpi_openmpi_h0_0",
                &["openmpi >=4.1.6,<5.0a0", "mpi 1.0 openmpi"],
            ),
            record(
                "partool",
                "1.0",
                "mpi_mpich_h0_0",
                &["mpich >=4.2,<5.0a0", "mpi 1.0 mpich"],
            ),
        ]
    }

    fn given(specs: &[&str], stand_ins: Vec<Provided>) -> Given {
        Given {
            specs: specs
                .iter()
                .map(|s| MatchSpec::from_str(s, ParseMatchSpecOptions::lenient()).unwrap())
                .collect(),
            site_python: None,
            stand_ins,
            site_packages: Vec::new(),
            installed: Vec::new(),
            constraints: Vec::new(),
            virtual_packages: Vec::new(),
        }
    }

    fn names(records: &[RepoDataRecord]) -> Vec<String> {
        let mut out: Vec<String> = records
            .iter()
            .map(|r| {
                let p = &r.package_record;
                format!("{} {} {}", p.name.as_normalized(), p.version, p.build)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn a_module_stand_in_is_the_only_candidate_and_never_installed() {
        let repodata = mpi_repodata();
        let stand_ins = vec![
            module_stand_in("openmpi/4.1.6", "openmpi", "4.1.6", "envmod_module"),
            module_stand_in("openmpi/4.1.6", "mpi", "1.0", "openmpi"),
        ];
        let given = given(&["partool"], stand_ins);
        let records = given
            .solve(vec![repodata.iter().collect()])
            .expect("solves");
        let solution = given.solution(records);
        assert_eq!(
            names(&solution.records),
            ["partool 1.0 mpi_openmpi_h0_0"],
            "the openmpi build, and no MPI from the channel"
        );
        let provided: Vec<String> = solution
            .provided
            .iter()
            .map(|p| {
                format!(
                    "{} {}",
                    p.record.package_record.name.as_normalized(),
                    p.origin
                )
            })
            .collect();
        assert_eq!(
            provided,
            ["openmpi module openmpi/4.1.6", "mpi module openmpi/4.1.6"],
            "in the order the module's rule gives them"
        );
    }

    #[test]
    fn without_a_stand_in_the_channel_mpi_is_chosen() {
        let repodata = mpi_repodata();
        let given = given(&["partool"], Vec::new());
        let records = given
            .solve(vec![repodata.iter().collect()])
            .expect("solves");
        let solution = given.solution(records);
        let got = names(&solution.records);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(
            got.iter()
                .any(|r| r.starts_with("openmpi ") || r.starts_with("mpich ")),
            "{got:?}"
        );
    }

    #[test]
    fn a_stand_in_too_old_is_named_with_the_module_to_load() {
        let repodata = mpi_repodata();
        let stand_ins = vec![
            module_stand_in("openmpi/4.1", "openmpi", "4.1", "envmod_module"),
            module_stand_in("openmpi/4.1", "mpi", "1.0", "openmpi"),
        ];
        let given = given(&["partool"], stand_ins);
        let Err(SolveError::Unsolvable(explanations)) =
            given.solve(vec![repodata.iter().collect()])
        else {
            panic!("expected no solution");
        };
        let explanation = explanations.join("\n");
        let all: Vec<&RepoDataRecord> = repodata.iter().collect();
        let conflicts = given.conflicts(&explanation, &all);
        assert_eq!(
            conflicts
                .iter()
                .map(StandInConflict::hint)
                .collect::<Vec<_>>(),
            [
                "partool needs openmpi >=4.1.6,<5.0a0; module openmpi/4.1 provides 4.1: load openmpi/4.1.6, or unload openmpi/4.1 to use conda's openmpi"
            ],
            "{explanation}"
        );
        let err = unsolvable(PLATFORM, &explanation, &conflicts);
        let hint = crate::error::hint_of(&err).unwrap_or_default();
        assert!(hint.contains("load openmpi/4.1.6"), "{hint}");
    }

    #[test]
    fn a_stand_in_of_another_variant_names_the_build_and_no_module_to_load() {
        let repodata = mpi_repodata();
        let stand_ins = vec![
            module_stand_in("openmpi/4.1.6", "openmpi", "4.1.6", "envmod_module"),
            module_stand_in("openmpi/4.1.6", "mpi", "1.0", "openmpi"),
        ];
        let given = given(&["partool * mpi_mpich_*"], stand_ins);
        let Err(SolveError::Unsolvable(explanations)) =
            given.solve(vec![repodata.iter().collect()])
        else {
            panic!("expected no solution");
        };
        let explanation = explanations.join("\n");
        let all: Vec<&RepoDataRecord> = repodata.iter().collect();
        let hints: Vec<String> = given
            .conflicts(&explanation, &all)
            .iter()
            .map(StandInConflict::hint)
            .collect();
        assert_eq!(
            hints,
            [
                "partool needs mpi 1.0 mpich; module openmpi/4.1.6 provides mpi 1.0 openmpi: ask for the openmpi build of partool, or unload openmpi/4.1.6 to use conda's mpich"
            ],
            "{explanation}"
        );
    }

    #[test]
    fn the_lower_bound_of_a_spec_is_the_version_to_load() {
        for (spec, bound) in [
            ("openmpi >=4.1.6,<5.0a0", Some("4.1.6")),
            ("openmpi 4.1.*", Some("4.1")),
            ("openmpi <5", None),
            ("openmpi", None),
            ("cuda-version >=12.4", Some("12.4")),
            ("mpi 1.0 mpich", Some("1.0")),
        ] {
            assert_eq!(lower_bound(spec).as_deref(), bound, "{spec}");
        }
    }
}

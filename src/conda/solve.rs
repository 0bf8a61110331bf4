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
    Channel, GenericVirtualPackage, MatchSpec, PackageName, PackageRecord, ParseMatchSpecOptions,
    RepoDataRecord, Subdir, Version, package::DistArchiveIdentifier,
};
use rattler_repodata_gateway::{
    ChannelConfig, Gateway, GatewayError, SourceConfig, fetch::CacheAction,
};
use rattler_solve::{SolveError, SolverImpl, SolverTask, resolvo};

use crate::{
    conda::{CondaSettings, Network, PLATFORM, channels},
    error::UserError,
    printer::Printer,
    site::python::SitePython,
};

/// The build string of the stand-in record for the site's Python.
pub const SITE_PYTHON_BUILD: &str = "envmod_site_python";

/// A record that stands for the site's interpreter: the solver sees it, the installer skips it.
pub fn site_python_record(python: &SitePython) -> Result<RepoDataRecord> {
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

pub struct SolveRequest<'a> {
    /// The platform to solve for; its subdir and `noarch` are queried.
    pub platform: Subdir,
    pub channels: &'a [Channel],
    /// The client for the channels, holding the credentials taken out of their URLs.
    pub network: &'a Network,
    pub specs: Vec<MatchSpec>,
    /// Pinned into the solution and never installed.
    pub site_python: Option<RepoDataRecord>,
    /// What is installed now; preferred so that adding a package changes little else.
    pub locked: Vec<RepoDataRecord>,
    /// Final: nothing is detected here.
    pub virtual_packages: Vec<GenericVirtualPackage>,
}

pub async fn solve(
    settings: &CondaSettings,
    req: SolveRequest<'_>,
    printer: &Printer,
) -> Result<Vec<RepoDataRecord>> {
    let started = Instant::now();
    let mut query_specs = req.specs.clone();
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
    let total: usize = repodata.repodata.iter().map(|r| r.len()).sum();
    printer.detail(format!(
        "loaded {total} records in {:.2?}",
        started.elapsed()
    ));

    let virtual_packages = req.virtual_packages;
    printer.detail(format!(
        "virtual packages: {}",
        virtual_packages
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let platform = req.platform;
    let specs = req.specs;
    let site_python = req.site_python;
    let locked = req.locked;
    let started = Instant::now();
    let result = tokio::task::spawn_blocking(move || {
        let mut available: Vec<Vec<&RepoDataRecord>> = repodata
            .repodata
            .iter()
            .map(|r| r.iter().collect())
            .collect();
        available.extend(site_python.as_ref().map(|p| vec![p]));
        let task = SolverTask {
            virtual_packages,
            specs,
            pinned_packages: site_python.iter().collect(),
            locked_packages: locked.iter().collect(),
            ..SolverTask::from_iter(available)
        };
        resolvo::Solver.solve(task).map(|r| r.records)
    })
    .await
    .context("the solver stopped unexpectedly")?;
    printer.detail(format!("solved in {:.2?}", started.elapsed()));
    match result {
        Ok(records) => Ok(records),
        Err(SolveError::Unsolvable(explanations)) => {
            Err(unsolvable(platform, &explanations.join("\n")))
        }
        Err(e) => Err(UserError::failure(format!("the solver failed: {e}")).into()),
    }
}

/// The solver's explanation names the packages that cannot be installed; for a platform
/// other than this machine's, the message also says which platform, since the same specs
/// may well solve here.
fn unsolvable(platform: Subdir, explanation: &str) -> anyhow::Error {
    let for_platform = if platform == PLATFORM {
        String::new()
    } else {
        format!(" for {platform}")
    };
    UserError::failure(format!(
        "the requested packages cannot be installed together{for_platform}:\n{}",
        explanation.trim_end()
    ))
    .with_hint("loosen or drop one of the specs above; nothing was changed")
    .into()
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
        let err = unsolvable(Subdir::OsxArm64, &explanations.join("\n"));
        let message = err.to_string();
        assert!(
            message
                .starts_with("the requested packages cannot be installed together for osx-arm64:"),
            "{message}"
        );
        assert!(message.contains("newmac"), "{message}");
        assert!(message.contains("__osx"), "{message}");
        assert!(
            !unsolvable(PLATFORM, "x")
                .to_string()
                .contains(PLATFORM.as_str())
        );
    }
}

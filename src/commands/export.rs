//! `envmod export`: an environment written out so another site can build it again:
//! `environment.yml` (what conda, pixi and conda-lock read, plus envmod's own section), a
//! lock file with every package's URL and hashes, or a bundle holding the packages too.

use std::path::PathBuf;

use anyhow::Result;
use rattler_conda_types::Subdir;

use crate::{
    cli::ExportFormat,
    conda::{
        self,
        envfile::{EnvmodSection, Export, PythonSection},
        lockfile::{LockedPip, PlatformLock},
    },
    env::{
        ops::{self, Ctx, Snapshot},
        prefix::EnvTarget,
    },
    error::UserError,
    manifest::PythonMode,
};

pub(crate) struct ExportSettings {
    pub(crate) target: EnvTarget,
    pub(crate) output: Option<PathBuf>,
    pub(crate) format: ExportFormat,
    pub(crate) pinned: bool,
    pub(crate) platforms: Vec<String>,
}

pub(crate) async fn run(s: ExportSettings, ctx: &Ctx<'_>) -> Result<()> {
    if s.format == ExportFormat::Bundle && s.output.is_none() {
        return Err(
            UserError::usage("a bundle is a binary file: give -o FILE.tar")
                .with_hint(format!(
                    "envmod export {} --format bundle -o env.tar",
                    s.target.cli()
                ))
                .into(),
        );
    }
    if s.format == ExportFormat::Yml && !s.platforms.is_empty() {
        return Err(
            UserError::usage("--platform applies to --format lock and bundle")
                .with_hint("an environment.yml lists specs, which any platform can solve")
                .into(),
        );
    }
    let platforms = platforms(&s.platforms)?;
    // A device, FIFO or link at -o is refused before any work is done.
    let replaced = s
        .output
        .as_deref()
        .map(crate::fs::output_target)
        .transpose()?
        .flatten();
    let snap = ops::snapshot(&s.target, ctx)?;
    let text = match s.format {
        ExportFormat::Yml => conda::envfile::render(&yml(&snap, s.pinned))?,
        ExportFormat::Lock | ExportFormat::Bundle => {
            let (locked, network) = lock(&snap, &platforms, ctx).await?;
            let text = conda::lockfile::render(&snap.manifest.channels, &locked)?;
            if s.format == ExportFormat::Bundle {
                let out = s.output.as_deref().expect("checked above");
                let records: Vec<_> = locked.into_iter().flat_map(|p| p.records).collect();
                ctx.printer.info(format!(
                    "Bundling {} package archives into {}",
                    records.len(),
                    out.display()
                ));
                conda::bundle::write(out, &text, &records, &network.client()?).await?;
                if let Some(old) = replaced {
                    use std::os::unix::fs::{MetadataExt, PermissionsExt};
                    let mode = std::fs::Permissions::from_mode(old.mode() & 0o777);
                    std::fs::set_permissions(out, mode)?;
                }
                ctx.printer.info(format!(
                    "Exported {} to {}: `envmod create -n NAME -f {} --offline` builds it with no channel",
                    snap.manifest.name,
                    out.display(),
                    out.display()
                ));
                return Ok(());
            }
            text
        }
    };
    match &s.output {
        Some(path) => {
            crate::fs::write_output(path, text.as_bytes())?;
            ctx.printer.info(format!(
                "Exported {} to {}",
                snap.manifest.name,
                path.display()
            ));
        }
        None => ctx.printer.data(&text),
    }
    Ok(())
}

/// The environment.yml of `snap`: the requested specs (or every package, pinned), the pip
/// distributions, the variables, and envmod's section.
fn yml(snap: &Snapshot, pinned: bool) -> Export {
    let m = &snap.manifest;
    let mut specs: Vec<String> = if pinned {
        let mut records: Vec<_> = snap
            .records
            .iter()
            .map(|r| &r.repodata_record.package_record)
            .collect();
        records.sort_by(|a, b| a.name.as_normalized().cmp(b.name.as_normalized()));
        records
            .iter()
            .map(|p| format!("{}={}={}", p.name.as_normalized(), p.version, p.build))
            .collect()
    } else {
        m.specs.clone()
    };
    let has_python = specs
        .iter()
        .any(|s| conda::specs::spec_package_name(s).is_ok_and(|n| n.as_normalized() == "python"));
    if m.python.mode == PythonMode::Conda && !has_python {
        specs.insert(0, format!("python={}", m.python.site.short_version()));
    }
    Export {
        name: m.name.to_string(),
        channels: m.channels.clone(),
        specs,
        pip: snap
            .pip
            .iter()
            .map(|d| format!("{}=={}", d.name, d.version))
            .collect(),
        // A value naming this prefix comes from a package's activate.d script, which sets
        // it again, for the new prefix, wherever the environment is rebuilt.
        variables: snap
            .variables
            .iter()
            .filter(|v| !v.value.contains(&*m.prefix.to_string_lossy()))
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect(),
        envmod: EnvmodSection {
            envmod_version: env!("CARGO_PKG_VERSION").to_string(),
            platform: conda::PLATFORM.to_string(),
            python: PythonSection {
                mode: m.python.mode,
                version: m.python.site.version.clone(),
            },
            module_system: m.module.as_ref().map(|i| i.system),
            modules: m.modules.iter().map(|l| l.full_name.clone()).collect(),
            skipped_modules: m.skipped_modules.clone(),
            description: m.description.clone(),
        },
    }
}

/// `--platform` values, this platform when none is given.
fn platforms(raw: &[String]) -> Result<Vec<Subdir>> {
    if raw.is_empty() {
        return Ok(vec![conda::PLATFORM]);
    }
    let mut out = Vec::new();
    for p in raw {
        let platform: Subdir = p.parse().map_err(|_| {
            UserError::usage(format!("unknown platform {p:?}"))
                .with_hint("use a conda subdir: linux-64, linux-aarch64, linux-ppc64le, osx-64, osx-arm64, win-64")
        })?;
        if platform == Subdir::NoArch {
            return Err(
                UserError::usage("noarch is not a platform an environment runs on")
                    .with_hint("name the platform: linux-64, osx-arm64, …")
                    .into(),
            );
        }
        if !out.contains(&platform) {
            out.push(platform);
        }
    }
    Ok(out)
}

/// The lock of `snap` for each platform: what is installed, exactly, for this one; a fresh
/// solve of the requested specs for any other, with a conda Python of the same version.
async fn lock(
    snap: &Snapshot,
    platforms: &[Subdir],
    ctx: &Ctx<'_>,
) -> Result<(Vec<PlatformLock>, conda::Network)> {
    let m = &snap.manifest;
    let channels = ops::channels(&m.channels, ctx)?;
    let pip: Vec<LockedPip> = snap
        .pip
        .iter()
        .map(|d| LockedPip {
            name: d.name.clone(),
            version: d.version.clone(),
            location: d.location.clone(),
        })
        .collect();
    let mut out = Vec::new();
    for &platform in platforms {
        let records = if platform == conda::PLATFORM {
            snap.records
                .iter()
                .map(|r| r.repodata_record.clone())
                .collect()
        } else {
            let mut specs = m.specs.clone();
            let has_python = specs.iter().any(|s| {
                conda::specs::spec_package_name(s).is_ok_and(|n| n.as_normalized() == "python")
            });
            if !has_python {
                specs.push(match m.python.mode {
                    PythonMode::Conda => format!("python =={}", m.python.site.version),
                    PythonMode::Site => format!("python {}.*", m.python.site.short_version()),
                });
            }
            if channels.list.is_empty() {
                return Err(UserError::usage(format!(
                    "{} has no channels to solve for {platform} with",
                    m.name
                ))
                .into());
            }
            ctx.printer
                .info(format!("Solving {} for {platform}", specs.join(" ")));
            let parsed = conda::specs::parse_specs(&specs)?;
            ops::solve_for(platform, &channels, parsed, None, Vec::new(), ctx).await?
        };
        out.push(PlatformLock {
            platform,
            records,
            pip: pip.clone(),
        });
    }
    Ok((out, channels.network))
}

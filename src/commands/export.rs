//! `envmod export`: an environment written out so another site can build it again:
//! `environment.yml` (what conda, pixi and conda-lock read, plus envmod's own section), a
//! lock file with every package's URL and hashes, or a bundle holding the packages too.

use anyhow::Result;
use rattler_conda_types::Subdir;

use crate::{
    cli::ExportFormat,
    conda::{
        self,
        envfile::{EnvmodSection, Export, PythonSection},
        lockfile::{LockedPip, PlatformLock},
        specs::Spec,
    },
    env::{
        cleanup::PendingFile,
        ctx::{self, Ctx},
        request,
        snapshot::{self, Snapshot},
    },
    error::UserError,
    manifest::PythonMode,
    settings::ExportSettings,
    site,
};

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
    let snap = snapshot::snapshot(&s.target, ctx)?;
    let text = match s.format {
        ExportFormat::Yml => conda::envfile::render(&yml(&snap, s.pinned))?,
        ExportFormat::Bundle => {
            let out = s.output.as_deref().expect("checked above");
            bundle(&snap, &platforms, out, ctx).await?;
            if let Some(old) = replaced {
                use std::os::unix::fs::{MetadataExt, PermissionsExt};
                let mode = std::fs::Permissions::from_mode(old.mode() & 0o777);
                std::fs::set_permissions(out, mode)?;
            }
            return Ok(());
        }
        ExportFormat::Lock => {
            let pip = locked_pip(&snap, ctx);
            let (locked, _) = lock(&snap, &platforms, pip, ctx).await?;
            conda::lockfile::render(&snap.manifest.channels, &locked)?
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

/// The bundle `out` of `snap`: its lock, every conda package archive, and every pip package
/// as a wheel that the lock names by its path in the bundle.
async fn bundle(
    snap: &Snapshot,
    platforms: &[Subdir],
    out: &std::path::Path,
    ctx: &Ctx<'_>,
) -> Result<()> {
    let (mut locked, network) = lock(snap, platforms, Vec::new(), ctx).await?;
    let wheels = snap
        .pip
        .iter()
        .map(|d| conda::wheel::for_bundle(&snap.real, d))
        .collect::<Result<Vec<_>>>()?;
    let pip: Vec<LockedPip> = wheels
        .iter()
        .map(|w| LockedPip {
            name: w.name.clone(),
            version: w.version.clone(),
            location: Some(format!("{}/{}", conda::bundle::WHEELS_DIR, w.file_name)),
            sha256: Some(w.sha256),
        })
        .collect();
    for platform in &mut locked {
        platform.pip = pip.clone();
    }
    let text = conda::lockfile::render(&snap.manifest.channels, &locked)?;
    let records: Vec<_> = locked.into_iter().flat_map(|p| p.records).collect();
    ctx.printer.info(format!(
        "Bundling {} package archives and {} pip wheels into {}",
        records.len(),
        wheels.len(),
        out.display()
    ));
    let cannot = |e: std::io::Error| {
        UserError::failure(format!("cannot write bundle {}: {e}", out.display()))
            .with_hint("check that you can write to that directory")
    };
    // Removed if envmod is interrupted before it is renamed onto `out`.
    let mut tmp = PendingFile::beside(out).map_err(cannot)?;
    conda::bundle::write(
        tmp.file(),
        out,
        &text,
        &records,
        &wheels,
        &network.client()?,
    )
    .await?;
    tmp.persist(out).map_err(cannot)?;
    ctx.printer.info(format!(
        "Exported {} to {}: `envmod create -n NAME -f {} --offline` builds it with no channel",
        snap.manifest.name,
        out.display(),
        out.display()
    ));
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
        .any(|s| Spec::parse(s).is_ok_and(|s| s.is_python()));
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
            provided: m
                .provided
                .as_ref()
                .map(|p| p.modules.clone())
                .unwrap_or_default(),
            ignore_site_packages: m.provided.as_ref().is_some_and(|p| p.ignore_site_packages),
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

/// The pip packages of `snap` as a lock records them: where pip installed each from, with
/// the sha256 pip recorded, or else the sha256 of the local wheel still there. A package
/// with neither is written without a hash, which `create -f` refuses; the export says so.
fn locked_pip(snap: &Snapshot, ctx: &Ctx<'_>) -> Vec<LockedPip> {
    let mut unhashed = Vec::new();
    let pip = snap
        .pip
        .iter()
        .map(|d| {
            let local = d
                .location
                .as_deref()
                .and_then(|l| url::Url::parse(l).ok())
                .filter(|u| u.scheme() == "file")
                .and_then(|u| u.to_file_path().ok());
            let mut location = d.location.clone();
            let mut sha256 = d.sha256;
            if let Some(path) = local {
                if path.is_file() {
                    sha256 = sha256.or_else(|| {
                        rattler_digest::compute_file_digest::<rattler_digest::Sha256>(&path).ok()
                    });
                } else {
                    // Installed from a file that is gone (an unpacked bundle, say).
                    location = None;
                    sha256 = None;
                }
            }
            if sha256.is_none() {
                unhashed.push(format!("{}=={}", d.name, d.version));
            }
            LockedPip {
                name: d.name.clone(),
                version: d.version.clone(),
                location,
                sha256,
            }
        })
        .collect();
    if !unhashed.is_empty() {
        ctx.printer.warn(format!(
            "the lock gives no sha256 for the pip packages {}: pip did not record a wheel they came from, so `envmod create -f` will refuse them; a bundle (`--format bundle`) carries them",
            unhashed.join(" ")
        ));
    }
    pip
}

/// The lock of `snap` for each platform: what is installed, exactly, for this one; a fresh
/// solve of the requested specs for any other, with a conda Python of the same version.
async fn lock(
    snap: &Snapshot,
    platforms: &[Subdir],
    pip: Vec<LockedPip>,
    ctx: &Ctx<'_>,
) -> Result<(Vec<PlatformLock>, conda::Network)> {
    let m = &snap.manifest;
    // The specs' own channels (`chan::pkg`) resolve with the manifest's, through the alias.
    let mut requested = Spec::parse_all(&m.specs)?;
    let channels = ctx::channels_for(&m.channels, &mut requested, ctx)?;
    // What the modules provided, as recorded: the lock marks it instead of holding it.
    let provisions = m.provided.as_ref().map_or(&[][..], |p| &p.modules[..]);
    let mut out = Vec::new();
    for &platform in platforms {
        let mut records: Vec<_> = if platform == conda::PLATFORM {
            snap.records
                .iter()
                .map(|r| r.repodata_record.clone())
                .collect()
        } else {
            // This platform's `sel()` entries give way to the other platform's.
            let mut specs =
                conda::envfile::specs_for(&m.specs, &m.selected, conda::PLATFORM, platform);
            let mut parsed = Spec::parse_all(&specs)?;
            let channels = ctx::channels_for(&m.channels, &mut parsed, ctx)?;
            let has_python = parsed.iter().any(Spec::is_python);
            if !has_python {
                let python = match m.python.mode {
                    PythonMode::Conda => format!("python =={}", m.python.site.version),
                    PythonMode::Site => format!("python {}.*", m.python.site.short_version()),
                };
                parsed.push(Spec::parse(&python)?);
                specs.push(python);
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
            let solved = request::solve(
                request::Inputs {
                    platform,
                    channels: &channels,
                    specs: parsed,
                    site_python: None,
                    provisions: m.provided.as_ref(),
                    installed: Vec::new(),
                    constraints: Vec::new(),
                },
                ctx,
            )
            .await?;
            solved.into_records()
        };
        // No stand-in is a package to lock or to put in a bundle.
        records.retain(|r| !site::provides::is_stand_in(&r.url));
        let stand_ins = site::provides::stand_ins(provisions, platform)?;
        let provided = conda::lockfile::marks(&records, &stand_ins);
        out.push(PlatformLock {
            platform,
            records,
            pip: pip.clone(),
            provided,
        });
    }
    Ok((out, channels.network))
}

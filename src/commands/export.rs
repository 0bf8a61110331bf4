//! `envmod export`: an environment written out so another site can build it again:
//! `environment.yml` (what conda, pixi and conda-lock read, plus envmod's own section), a
//! lock file with every package's URL and hashes, or a bundle holding the packages too.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::{
    cli::ExportFormat,
    conda::{
        self,
        envfile::{EnvmodSection, Export, PythonSection},
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
    let snap = ops::snapshot(&s.target, ctx)?;
    let text = match s.format {
        ExportFormat::Yml => conda::envfile::render(&yml(&snap, s.pinned))?,
        ExportFormat::Lock | ExportFormat::Bundle => {
            return Err(UserError::usage("lock files are not available yet").into());
        }
    };
    match &s.output {
        Some(path) => {
            crate::fs::write_atomic(path, text.as_bytes())
                .with_context(|| format!("failed to write {}", path.display()))?;
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

//! `envmod kernel add|remove|list`: an environment's Jupyter kernel, whose launcher loads
//! the environment's modules before Python starts (see `outputs::kernel`). Adding and
//! removing go through the pipeline as an output change; `list` reads kernel directories.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::{
    env::{
        ctx::Ctx,
        plan::{self, Change},
        record::Replacing,
    },
    error::UserError,
    manifest::{Manifest, PythonMode},
    outputs::kernel::{self, kernel_name, kernels_dir, owner_of, plan_kernel, require_ipykernel},
    printer::Printer,
    settings::{KernelAddSettings, KernelListSettings, KernelRemoveSettings},
};

pub(crate) async fn add(s: KernelAddSettings, ctx: &Ctx<'_>) -> Result<()> {
    // Names first: a bad one costs nothing, not even a Python start.
    if let Some(name) = &s.name {
        kernel_name(name)?;
    }
    if let Some(shown) = &s.display_name {
        kernel::check_display_name(shown)?;
    }
    let real = s.target.real_path()?;
    let manifest = crate::env::prefix::read_manifest(&s.target, &real)?;
    // Before the modules are loaded to see what they set: loading runs them as this user.
    let manifest = crate::env::record::trusted(
        ctx.environ,
        &real,
        &manifest,
        Replacing {
            kernel: true,
            ..Replacing::NOTHING
        },
        &s.target.cli(),
    )?;
    let site = (manifest.python.mode == PythonMode::Site).then(|| {
        let exe = manifest.python.site.executable.as_path();
        crate::env::venv::may_run(ctx.environ, &real, exe).map(|()| exe)
    });
    require_ipykernel(&manifest, &real, site)?;
    let info = plan_kernel(
        &manifest,
        s.name.as_deref(),
        s.display_name.as_deref(),
        s.prefix.as_deref(),
        ctx.environ,
        ctx.printer,
    )?;
    let plan = plan::change(&s.target, Change::Kernel(Some(info)), &[], false, ctx).await?;
    let done = plan.apply(ctx).await?;
    if let Some(k) = &done.manifest.kernel {
        ctx.printer.info(format!(
            "Added the Jupyter kernel \"{}\" ({}) in {}",
            k.display_name,
            k.name,
            k.dir.display()
        ));
    }
    Ok(())
}

pub(crate) async fn remove(s: KernelRemoveSettings, ctx: &Ctx<'_>) -> Result<()> {
    if let Some(target) = &s.target {
        let plan = plan::change(target, Change::Kernel(None), &[], false, ctx).await?;
        let done = plan.apply(ctx).await?;
        match done.old_kernel {
            Some(k) => ctx.printer.info(format!(
                "Removed the kernel {} ({})",
                k.name,
                k.dir.display()
            )),
            None => ctx
                .printer
                .info(format!("{} has no kernel", done.manifest.name)),
        }
        return Ok(());
    }
    // A kernel whose environment is gone: only envmod's, and only then.
    let name = s
        .name
        .as_deref()
        .ok_or_else(|| UserError::usage("give -n NAME or -p PREFIX, or --name KERNEL"))?;
    let dir = kernels_dir(ctx.environ, s.prefix.as_deref()).join(kernel_name(name)?);
    let Some(owner) = owner_of(&dir.join("kernel.json")) else {
        return Err(UserError::failure(format!(
            "{} is not a kernel envmod wrote",
            dir.display()
        ))
        .with_hint("`envmod kernel list` shows envmod's kernels; remove others with `jupyter kernelspec remove`")
        .into());
    };
    if Manifest::path_in(&owner).exists() {
        return Err(UserError::usage(format!(
            "the kernel {} belongs to the environment at {}, which exists",
            dir.display(),
            owner.display()
        ))
        .with_hint(format!(
            "envmod kernel remove -p {}",
            crate::escape::sh_quote(&owner.to_string_lossy())
        ))
        .into());
    }
    let removed = kernel::remove_dir_if_ours(&dir, &owner)?;
    for f in removed {
        ctx.printer.info(format!("Removed {}", f.display()));
    }
    Ok(())
}

#[derive(Serialize)]
struct KernelRow {
    name: String,
    display_name: String,
    dir: PathBuf,
    prefix: PathBuf,
    /// `ok`, or `env gone` when the environment it starts no longer exists.
    state: &'static str,
}

/// The kernels in the user's data dir and in each `--prefix`, and every kernel an
/// environment records, each once.
pub(crate) fn list(s: KernelListSettings, ctx: &Ctx<'_>, printer: &Printer) -> Result<()> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut roots = vec![kernels_dir(ctx.environ, None)];
    roots.extend(s.prefixes.iter().map(|p| kernels_dir(ctx.environ, Some(p))));
    for root in roots {
        if let Ok(entries) = std::fs::read_dir(&root) {
            dirs.extend(entries.flatten().map(|e| e.path()));
        }
    }
    for m in s.registry.all(&s.envs_dir).into_iter().flatten() {
        if let Some(k) = m.kernel {
            dirs.push(k.dir);
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut rows = Vec::new();
    for dir in dirs {
        let json = dir.join("kernel.json");
        let Some(prefix) = owner_of(&json) else {
            continue;
        };
        let spec: serde_json::Value =
            crate::fs::read_text(&json, crate::fs::SMALL_FILE, crate::fs::Links::Refuse)
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
        rows.push(KernelRow {
            name: dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            display_name: spec["display_name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            state: if Manifest::path_in(&prefix).exists() {
                "ok"
            } else {
                "env gone"
            },
            dir,
            prefix,
        });
    }
    if s.json {
        printer.data(serde_json::to_string_pretty(&rows)? + "\n");
        return Ok(());
    }
    if rows.is_empty() {
        printer.info("no envmod kernels; add one with `envmod kernel add -n NAME`");
        return Ok(());
    }
    let mut out = String::new();
    for r in &rows {
        let state = match r.state {
            "ok" => String::new(),
            _ => format!(
                "  (environment gone: envmod kernel remove --name {})",
                r.name
            ),
        };
        out.push_str(&format!(
            "{}  \"{}\"  {}  -> {}{state}\n",
            r.name,
            r.display_name,
            r.dir.display(),
            r.prefix.display()
        ));
    }
    printer.data(out);
    Ok(())
}

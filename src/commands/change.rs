//! `envmod install` and `envmod remove`: a new set of requested specs, solved against what
//! is installed (`env::plan`), applied to a hard-linked clone and swapped in atomically
//! (`env::apply`); or, with `--dry-run`, the plan reported and nothing changed.

use anyhow::Result;

use crate::env::{
    ctx::Ctx,
    plan::{self, Change},
    prefix::EnvTarget,
};

pub(crate) async fn run(
    target: EnvTarget,
    change: Change,
    cli_channels: &[String],
    dry_run: bool,
    ctx: &Ctx<'_>,
) -> Result<()> {
    let plan = plan::change(&target, change, cli_channels, dry_run, ctx).await?;
    if dry_run {
        plan.report(ctx.printer);
        return Ok(());
    }
    let done = plan.apply(ctx).await?;
    let mut summary = Vec::new();
    if let Some(changes) = &done.packages {
        if !changes.installed.is_empty() {
            summary.push(format!("installed {}", changes.installed.join(", ")));
        }
        if !changes.removed.is_empty() {
            summary.push(format!("removed {}", changes.removed.join(", ")));
        }
    }
    if summary.is_empty() {
        summary.push("nothing to change".into());
    }
    ctx.printer
        .info(format!("{}: {}", done.manifest.name, summary.join("; ")));
    Ok(())
}

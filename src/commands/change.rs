//! `envmod install` and `envmod remove`: a new set of requested specs, solved against what
//! is installed, applied to a hard-linked clone and swapped in atomically (`env::ops`).

use anyhow::Result;

use crate::env::{
    ops::{self, Change, Ctx},
    prefix::EnvTarget,
};

pub(crate) async fn run(
    target: EnvTarget,
    change: Change,
    cli_channels: &[String],
    ctx: &Ctx<'_>,
) -> Result<()> {
    let done = ops::change(&target, change, cli_channels, ctx).await?;
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

//! `envmod install`, `envmod remove` and `envmod update`: a new set of requested specs (or,
//! for update, the same ones with newer versions allowed), solved against what is installed
//! (`env::plan`), applied to a hard-linked clone and swapped in atomically (`env::apply`);
//! or, with `--dry-run`, the plan reported and nothing changed.

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
    let updating = matches!(change, Change::Update(_));
    let plan = plan::change(&target, change, cli_channels, dry_run, ctx).await?;
    if updating && plan.changes.is_empty() {
        // Nothing to move: the tree and its manifest stay as they are (outputs an interrupted
        // command left pending were finished when the environment was opened).
        ctx.printer.info(format!(
            "{}: nothing to update; every package is the newest the requested specs and the channels allow",
            plan.build.next.name
        ));
        return Ok(());
    }
    if dry_run {
        plan.report(ctx.printer);
        return Ok(());
    }
    let done = plan.apply(ctx).await?;
    let mut summary = Vec::new();
    if let Some(changes) = &done.packages {
        // A package that moved is named once, with both versions.
        let moved = |entry: &String| {
            let name = entry.split(' ').next();
            changes.upgraded.iter().any(|u| u.split(' ').next() == name)
        };
        let installed: Vec<&str> = changes
            .installed
            .iter()
            .filter(|e| !moved(e))
            .map(String::as_str)
            .collect();
        let removed: Vec<&str> = changes
            .removed
            .iter()
            .filter(|e| !moved(e))
            .map(String::as_str)
            .collect();
        if !installed.is_empty() {
            summary.push(format!("installed {}", installed.join(", ")));
        }
        if !removed.is_empty() {
            summary.push(format!("removed {}", removed.join(", ")));
        }
        if !changes.upgraded.is_empty() {
            summary.push(format!("updated {}", changes.upgraded.join(", ")));
        }
    }
    if summary.is_empty() {
        summary.push("nothing to change".into());
    }
    ctx.printer
        .info(format!("{}: {}", done.manifest.name, summary.join("; ")));
    Ok(())
}

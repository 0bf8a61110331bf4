//! `envmod share`: make an existing environment readable by everyone (and changeable by a
//! group), whatever the umask it was built with; its modulefile and kernel too. The manifest
//! records it, so every later install or remove keeps the modes.

use anyhow::Result;

use crate::env::{
    ctx::Ctx,
    plan::{self, Change},
    prefix::EnvTarget,
};

pub(crate) async fn run(target: EnvTarget, change: Change, ctx: &Ctx<'_>) -> Result<()> {
    let plan = plan::change(&target, change, &[], false, ctx).await?;
    let done = plan.apply(ctx).await?;
    let m = &done.manifest;
    let who = match m.shared.as_ref().and_then(|s| s.group.as_deref()) {
        Some(g) => format!("readable by everyone, changeable by group {g}"),
        None => "readable by everyone, changeable by you".to_string(),
    };
    ctx.printer.info(format!("{} is shared: {who}", m.name));
    Ok(())
}

//! `envmod share`: make an existing environment readable by everyone (and changeable by a
//! group), whatever the umask it was built with; its modulefile and kernel too. The manifest
//! records it, so every later install or remove keeps the modes.

use anyhow::Result;

use crate::env::{
    ops::{self, Change, Ctx},
    prefix::EnvTarget,
};

pub(crate) async fn run(target: EnvTarget, change: Change, ctx: &Ctx<'_>) -> Result<()> {
    let done = ops::change(&target, change, &[], ctx).await?;
    let m = &done.manifest;
    let who = match m.shared.as_ref().and_then(|s| s.group.as_deref()) {
        Some(g) => format!("readable by everyone, changeable by group {g}"),
        None => "readable by everyone, changeable by you".to_string(),
    };
    ctx.printer.info(format!("{} is shared: {who}", m.name));
    Ok(())
}

//! `envmod module`: write an environment's modulefile again from its manifest, maybe for
//! another module system or root, or drop it (`--module-system none`), or re-point a copied
//! environment at its new place (`--relocate`). The writer is the one `create` uses, so the
//! result is byte for byte what `create` would write.

use anyhow::Result;

use crate::env::{
    ctx::Ctx,
    plan::{self, Change, OutputsChange},
    prefix::EnvTarget,
    registry::Registry,
};

pub(crate) async fn run(
    target: EnvTarget,
    change: OutputsChange,
    registry: &Registry,
    ctx: &Ctx<'_>,
) -> Result<()> {
    let relocated = change.relocated;
    let plan = plan::change(&target, Change::Outputs(change), &[], false, ctx).await?;
    let done = plan.apply(ctx).await?;
    if relocated && target.by_prefix {
        // A relocated copy made with -p is found by `list` like any other.
        registry.add(&target.prefix)?;
    }
    match (&done.manifest.module, &done.old_module) {
        (Some(info), _) => ctx.printer.info(format!("wrote {}", info.file.display())),
        (None, Some(old)) => ctx.printer.info(format!(
            "removed {}; {} has no modulefile now",
            old.file.display(),
            done.manifest.name
        )),
        (None, None) => ctx
            .printer
            .info(format!("{} has no modulefile", done.manifest.name)),
    }
    Ok(())
}

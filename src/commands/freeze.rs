//! `envmod freeze` / `envmod unfreeze`: keep an environment as it is (a course environment in
//! the middle of a term). A frozen environment refuses install, remove and delete; its
//! manifest records the state, so every envmod, and `list`, sees it.

use anyhow::Result;

use crate::env::{
    ctx::Ctx,
    plan::{self, Change},
    prefix::EnvTarget,
};

pub(crate) async fn run(target: EnvTarget, freeze: bool, ctx: &Ctx<'_>) -> Result<()> {
    let plan = plan::change(&target, Change::Freeze(freeze), &[], false, ctx).await?;
    let done = plan.apply(ctx).await?;
    let m = &done.manifest;
    match freeze {
        true => ctx.printer.info(format!(
            "{} is frozen: install, remove and delete are refused until `envmod unfreeze {}`",
            m.name,
            m.cli_target()
        )),
        false => ctx.printer.info(format!("{} is no longer frozen", m.name)),
    }
    Ok(())
}

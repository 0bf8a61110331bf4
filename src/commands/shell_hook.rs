//! `envmod shell-hook`: the environment's activation script on stdout, for
//! `eval "$(envmod shell-hook -n NAME)"` (or `| source` in fish), as pixi's shell-hook.

use anyhow::Result;

use crate::{
    env::{ctx::Ctx, prefix::EnvTarget, snapshot},
    outputs::activate::HookShell,
};

pub(crate) fn run(target: EnvTarget, shell: HookShell, ctx: &Ctx<'_>) -> Result<()> {
    let script = snapshot::activation_script(&target, shell, ctx)?;
    ctx.printer.data(script);
    Ok(())
}

//! `envmod delete`: remove an environment and its modulefile, and nothing else. Only a
//! directory with envmod's metadata is ever removed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

use crate::{
    env::{
        ctx::Ctx,
        delete,
        prefix::{self, EnvTarget},
        registry::Registry,
    },
    error::UserError,
};

fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

pub(crate) fn run(
    target: EnvTarget,
    yes: bool,
    force: bool,
    registry: &Registry,
    ctx: &Ctx<'_>,
) -> Result<()> {
    if !force {
        // Say what is wrong with the target before asking about it.
        prefix::read_manifest(&target, &target.real_path()?)?;
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(UserError::usage(format!(
                "refusing to delete {} without confirmation",
                target.prefix.display()
            ))
            .with_hint("pass --yes to delete from a script")
            .into());
        }
        if !confirm(&format!(
            "Delete environment {} at {}?",
            target.name,
            target.prefix.display()
        ))? {
            ctx.printer.info("nothing deleted");
            return Ok(());
        }
    }
    let deleted = delete::delete(&target, force, registry, ctx)?;
    ctx.printer.info(format!(
        "Deleted environment {} ({})",
        deleted.name,
        target.prefix.display()
    ));
    for file in &deleted.outputs {
        ctx.printer
            .info(format!("Removed modulefile {}", file.display()));
    }
    Ok(())
}

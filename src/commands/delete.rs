//! `envmod delete`: remove an environment and its modulefile, and nothing else. Only a
//! directory with envmod's metadata is ever removed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;

use crate::{
    env::{ctx::Ctx, delete, prefix},
    error::UserError,
    settings::DeleteSettings,
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

pub(crate) fn run(s: DeleteSettings, ctx: &Ctx<'_>) -> Result<()> {
    let DeleteSettings {
        target,
        yes,
        force,
        with_prefix,
        registry,
    } = s;
    let registry = &registry;
    let mut adopted = false;
    if !force {
        // Say what is wrong with the target before asking about it.
        let m = prefix::read_manifest(&target, &target.real_path()?)?;
        adopted = m.adopted.is_some() && !with_prefix;
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
        let question = match adopted {
            true => format!(
                "Remove what envmod wrote for {} (its packages at {} stay)?",
                target.name,
                target.prefix.display()
            ),
            false => format!(
                "Delete environment {} at {}?",
                target.name,
                target.prefix.display()
            ),
        };
        if !confirm(&question)? {
            ctx.printer.info("nothing deleted");
            return Ok(());
        }
    }
    let deleted = delete::delete(&target, force, with_prefix, registry, ctx)?;
    match deleted.released {
        true => ctx.printer.info(format!(
            "{} is no longer managed by envmod; its packages in {} were left as they were (`--with-prefix` removes them too)",
            deleted.name,
            target.prefix.display()
        )),
        false => ctx.printer.info(format!(
            "Deleted environment {} ({})",
            deleted.name,
            target.prefix.display()
        )),
    }
    for (what, file) in &deleted.outputs {
        ctx.printer
            .info(format!("Removed {what} {}", file.display()));
    }
    Ok(())
}

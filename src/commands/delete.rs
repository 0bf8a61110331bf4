//! `envmod delete`: remove an environment and its modulefile, and nothing else. Only a
//! directory with an envmod manifest is ever removed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context, Result};

use crate::{
    commands::module,
    env::{
        lock::{self, EnvLock},
        manifest::Manifest,
        registry::Registry,
    },
    error::UserError,
    printer::Printer,
    settings::EnvTarget,
};

pub struct DeleteSettings {
    pub target: EnvTarget,
    pub yes: bool,
    pub registry: Registry,
}

/// The manifest of an existing envmod environment, or an error that says why there is none.
pub fn read_manifest(target: &EnvTarget) -> Result<Manifest> {
    if target.prefix.symlink_metadata().is_err() {
        return Err(
            UserError::failure(format!("no environment at {}", target.prefix.display()))
                .with_hint("`envmod list` shows the environments envmod knows")
                .into(),
        );
    }
    match Manifest::read(&target.prefix)? {
        Some(m) => Ok(m),
        None => Err(UserError::failure(format!(
            "{} was not created by envmod (it has no {})",
            target.prefix.display(),
            Manifest::path_in(std::path::Path::new("")).display()
        ))
        .with_hint("envmod only changes environments it created; remove this directory yourself if you mean to")
        .into()),
    }
}

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

pub fn run(s: DeleteSettings, printer: &Printer) -> Result<()> {
    let manifest = read_manifest(&s.target)?;
    if !s.yes {
        if !std::io::stdin().is_terminal() {
            return Err(UserError::usage(format!(
                "refusing to delete {} without confirmation",
                manifest.prefix.display()
            ))
            .with_hint("pass --yes to delete from a script")
            .into());
        }
        if !confirm(&format!(
            "Delete environment {} at {}?",
            manifest.name,
            s.target.prefix.display()
        ))? {
            printer.info("nothing deleted");
            return Ok(());
        }
    }
    let _lock = EnvLock::acquire(&s.target.prefix, &s.target.name)?;
    // Read again under the lock: another process may have changed it meanwhile.
    let manifest = read_manifest(&s.target)?;
    if let Some(info) = &manifest.module {
        module::remove_file(&info.file)?;
    }
    // Move aside first so the env disappears at once, then remove at leisure.
    lock::clear_leftovers(&s.target.prefix, &s.target.name)?;
    let trash = lock::trash_dir(&s.target.prefix, &s.target.name);
    std::fs::rename(&s.target.prefix, &trash)
        .with_context(|| format!("failed to remove {}", s.target.prefix.display()))?;
    std::fs::remove_dir_all(&trash)
        .with_context(|| format!("failed to remove {}", trash.display()))?;
    s.registry.remove(&s.target.prefix)?;
    printer.info(format!(
        "Deleted environment {} ({})",
        manifest.name,
        s.target.prefix.display()
    ));
    if let Some(info) = &manifest.module {
        printer.info(format!("Removed modulefile {}", info.file.display()));
    }
    Ok(())
}

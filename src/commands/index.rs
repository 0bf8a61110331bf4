//! `envmod index DIR`: make a directory of packages usable as a channel.

use std::path::PathBuf;

use anyhow::Result;

use crate::{error::UserError, printer::Printer};

/// `dir` is absolute: the command line's, joined to the working directory.
pub(crate) async fn run(dir: PathBuf, printer: &Printer) -> Result<()> {
    let skipped = crate::conda::index::index_dir(&dir).await?;
    let shown = dir;
    for s in &skipped {
        printer.warn(format!("skipped {}: {}", s.path.display(), s.reason));
    }
    if !skipped.is_empty() {
        let (count, them) = match skipped.len() {
            1 => ("1 damaged package archive".to_string(), "it"),
            n => (format!("{n} damaged package archives"), "them"),
        };
        return Err(UserError::failure(format!(
            "skipped {count} while indexing {}; the other packages are indexed",
            shown.display()
        ))
        .with_hint(format!(
            "remove or rebuild the files named above (e.g. download {them} again), then run `envmod index` again"
        ))
        .into());
    }
    let quoted = crate::escape::sh_quote(&shown.to_string_lossy());
    printer.info(format!(
        "Indexed {}; use it with: envmod create -n NAME -c {quoted} <package>",
        shown.display()
    ));
    Ok(())
}

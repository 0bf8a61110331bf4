//! `envmod index DIR`: make a directory of packages usable as a channel.

use std::path::PathBuf;

use anyhow::Result;

use crate::printer::Printer;

pub(crate) async fn run(dir: PathBuf, printer: &Printer) -> Result<()> {
    crate::conda::index::index_dir(&dir).await?;
    let shown = std::path::absolute(&dir).unwrap_or(dir);
    let quoted = crate::render::escape::sh_quote(&shown.to_string_lossy());
    printer.info(format!(
        "Indexed {}; use it with: envmod create -n NAME -c {quoted} <package>",
        shown.display()
    ));
    Ok(())
}

//! `envmod create`: an environment on the site's Python (or a conda Python), its packages,
//! then its modulefile. The plan (`env::plan`) decides everything before the disk is
//! touched; the build (`env::apply`) makes the prefix in a staging directory beside its
//! final place, renames it in, and writes the modulefile last, so no failure leaves a
//! half-built env or a modulefile without an env.

use anyhow::Result;

use crate::{
    env::{ctx::Ctx, plan},
    environ::Environ,
    escape::sh_quote,
    manifest::{Manifest, PythonMode},
    settings::CreateSettings,
};

pub(crate) async fn run(s: CreateSettings, ctx: &Ctx<'_>) -> Result<()> {
    let dry_run = s.dry_run;
    let plan = plan::create(s, ctx).await?;
    if dry_run {
        plan.report(ctx.printer);
        return Ok(());
    }
    let done = plan.apply(ctx).await?;
    report(&done.manifest, ctx.environ, ctx.printer);
    Ok(())
}

fn report(m: &Manifest, env: &Environ, printer: &crate::printer::Printer) {
    let py = &m.python.site;
    let kind = match m.python.mode {
        PythonMode::Site => "the site's Python",
        PythonMode::Conda => "conda Python",
    };
    printer.info(format!(
        "Created environment {} on {kind} {} in {}",
        m.name,
        py.version,
        m.prefix.display()
    ));
    if !m.specs.is_empty() {
        printer.info(format!("Packages: {}", m.specs.join(" ")));
    }
    if !m.modules.is_empty() {
        let names: Vec<_> = m.modules.iter().map(|l| l.full_name.as_str()).collect();
        printer.info(format!("Recorded modules: {}", names.join(" ")));
    }
    let mut lines = Vec::new();
    match &m.module {
        Some(info) => {
            let root = info.root.to_string_lossy();
            let on_path = env
                .get("MODULEPATH")
                .is_some_and(|p| p.split(':').any(|d| d == root));
            if !on_path {
                lines.push(format!("module use {}", tilde(&info.root, env)));
            }
            lines.push(format!("module load {}", info.name));
        }
        None => lines.push(format!(
            ". {}        # bash, zsh, sh; `deactivate` undoes it",
            sh_quote(&m.prefix.join("bin/activate").to_string_lossy())
        )),
    }
    lines.push(format!(
        "envmod install {} <package>   # or: pip install <package>",
        m.cli_target()
    ));
    printer.boxed("To use it", &lines);
    if !py.pip && m.python.mode == PythonMode::Site {
        printer.warn(format!(
            "the site Python {} has no pip; `pip install` will not work until pip is available",
            py.executable.display()
        ));
    }
}

/// A path as users type it in a shell: `~/…` under HOME, quoted where needed.
fn tilde(p: &std::path::Path, env: &Environ) -> String {
    match env
        .home()
        .and_then(|h| p.strip_prefix(h).ok().map(|r| r.to_path_buf()))
    {
        Some(rest) if rest.as_os_str().is_empty() => "~".into(),
        Some(rest) => format!("~/{}", sh_quote(&rest.to_string_lossy())),
        None => sh_quote(&p.to_string_lossy()),
    }
}

//! `envmod adopt`: bring existing environments under envmod without touching their packages.

use anyhow::Result;

use crate::{
    env::{adopt, ctx::Ctx},
    manifest::Manifest,
    settings::{AdoptSettings, AdoptSource},
};

pub(crate) fn run(s: AdoptSettings, ctx: &Ctx<'_>) -> Result<()> {
    match s.source {
        AdoptSource::Prefix(target) => {
            let m = adopt::adopt(&target, Vec::new(), &s.options, ctx)?;
            report(&m, s.options.dry_run, ctx);
            Ok(())
        }
        AdoptSource::Modules {
            dir,
            only,
            envs_dir,
        } => adopt::from_modules(&dir, only.as_ref(), &envs_dir, &s.options, ctx),
    }
}

fn report(m: &Manifest, dry_run: bool, ctx: &Ctx<'_>) {
    let kind = m
        .adopted
        .as_ref()
        .map_or("environment", |a| adopt::kind_name(a.kind));
    let mut lines = vec![match dry_run {
        true => format!(
            "Dry run, nothing was changed: {} ({kind}, {} {}) would be adopted",
            m.prefix.display(),
            match m.python.mode {
                crate::manifest::PythonMode::Conda => "Python",
                crate::manifest::PythonMode::Site => "site Python",
            },
            m.python.site.version
        ),
        false => format!(
            "adopted {} ({kind}, Python {}) as {}",
            m.prefix.display(),
            m.python.site.version,
            m.name
        ),
    }];
    let list = |v: &[String]| match v {
        [] => "none".to_string(),
        v => v.join(", "),
    };
    lines.push(format!("  requested: {}", list(&m.specs)));
    if !m.pip.is_empty() {
        lines.push(format!("  pip: {}", list(&m.pip)));
    }
    let modules: Vec<String> = m.modules.iter().map(|x| x.full_name.clone()).collect();
    lines.push(format!("  modules: {}", list(&modules)));
    if let Some(info) = &m.module {
        lines.push(format!("  module {} in {}", info.name, info.file.display()));
    }
    lines.push(format!("  {}", m.prefix.join("bin/activate").display()));
    if let Some(took) = adopt::took_over(m, dry_run) {
        lines.push(format!("  {took}"));
    }
    if let (false, Some(info)) = (dry_run, &m.module) {
        lines.push(format!(
            "  next: module use {}; module load {}",
            crate::escape::sh_quote(&info.root.to_string_lossy()),
            info.name
        ));
    }
    ctx.printer
        .data(lines.iter().map(|l| format!("{l}\n")).collect::<String>());
}

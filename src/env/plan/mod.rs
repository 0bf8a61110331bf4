//! A request, turned into a plan: the manifest the environment will have and the packages
//! it will hold, decided (solved, checked against the site) before anything on disk changes.
//! Every command that changes an environment plans here and builds through `env::apply`, so
//! `--dry-run` is the plan, reported instead of built.

mod change;
mod clone;
mod create;
mod lock;
mod named;
mod new_env;

use std::path::Path;

use anyhow::Result;
use rattler_conda_types::{PrefixRecord, RepoDataRecord};

pub(crate) use change::{Added, Change, OutputsChange, Updating, change};
pub(crate) use create::create;
pub(crate) use new_env::CreateSettings;

use crate::{
    conda,
    env::{
        apply::{self, Build, Changed},
        ctx::Ctx,
    },
    error::UserError,
    manifest::PythonMode,
    printer::Printer,
    site::python::Interpreter,
};

/// What a command will do to an environment, and what it will change.
pub(crate) struct Plan {
    pub(crate) build: Build,
    /// What the packages change, for a dry run's report.
    pub(crate) changes: PackageChanges,
    /// Held until the build is done: what the plan unpacked for it (a bundle's packages).
    pub(crate) keep: Option<crate::env::cleanup::CleanupGuard>,
}

/// The conda packages a plan links and unlinks, as `name version build`.
#[derive(Default)]
pub(crate) struct PackageChanges {
    pub(crate) install: Vec<String>,
    pub(crate) remove: Vec<String>,
    /// Packages that stay but change version or build: `name old → new`.
    pub(crate) moved: Vec<String>,
}

impl PackageChanges {
    pub(crate) fn is_empty(&self) -> bool {
        self.install.is_empty() && self.remove.is_empty()
    }
}

impl Plan {
    /// Build what the plan says.
    pub(crate) async fn apply(self, ctx: &Ctx<'_>) -> Result<Changed> {
        let done = apply::apply(self.build, ctx).await;
        drop(self.keep);
        done
    }

    /// What the plan would do, for `--dry-run`, on stdout (it is the command's result, so
    /// `-q` keeps it).
    pub(crate) fn report(&self, printer: &Printer) {
        let next = &self.build.next;
        let list = |what: &[String]| match what {
            [] => "nothing".to_string(),
            names => names.join(", "),
        };
        let what = match &self.build.base {
            apply::Base::Fresh { .. } => "created",
            apply::Base::Existing(_) => "changed",
        };
        let mut lines = vec![format!(
            "Dry run, nothing was changed: {} in {} would be {what}",
            next.name,
            next.prefix.display()
        )];
        if self.build.packages.is_some() {
            // A package that moves is named once, on its own line, with both versions.
            let name = |entry: &String| entry.split(' ').next().unwrap_or_default().to_string();
            let moved: Vec<String> = self.changes.moved.iter().map(name).collect();
            let staying = |all: &[String]| -> Vec<String> {
                all.iter()
                    .filter(|e| !moved.contains(&name(e)))
                    .cloned()
                    .collect()
            };
            lines.push(format!(
                "would install: {}",
                list(&staying(&self.changes.install))
            ));
            lines.push(format!(
                "would remove: {}",
                list(&staying(&self.changes.remove))
            ));
            for moved in &self.changes.moved {
                lines.push(format!("would move: {moved}"));
            }
        }
        let modules: Vec<String> = next.modules.iter().map(|m| m.full_name.clone()).collect();
        lines.push(format!("modules: {}", list(&modules)));
        let mut outputs = Vec::new();
        if let Some(m) = &next.module {
            outputs.push(m.file.display().to_string());
        }
        outputs.push(next.prefix.join("bin/activate").display().to_string());
        if let Some(k) = &next.kernel {
            outputs.push(k.dir.display().to_string());
        }
        lines.push(format!("outputs: {}", list(&outputs)));
        printer.data(lines.iter().map(|l| format!("{l}\n")).collect::<String>());
    }
}

/// What going from `installed` to `solved` links and unlinks; a site Python's stand-in
/// record is never installed.
pub(crate) fn package_changes(
    installed: &[PrefixRecord],
    solved: &[RepoDataRecord],
    mode: PythonMode,
) -> PackageChanges {
    let shown = |r: &RepoDataRecord| {
        let p = &r.package_record;
        (p.name.as_normalized() != "python" || mode == PythonMode::Conda)
            .then(|| format!("{} {} {}", p.name.as_normalized(), p.version, p.build))
    };
    let before: Vec<String> = installed
        .iter()
        .filter_map(|r| shown(&r.repodata_record))
        .collect();
    let after: Vec<String> = solved.iter().filter_map(shown).collect();
    let moved = installed
        .iter()
        .map(|r| &r.repodata_record)
        .filter(|r| shown(r).is_some_and(|s| !after.contains(&s)))
        .filter_map(|old| {
            let (o, name) = (&old.package_record, &old.package_record.name);
            let new = &solved
                .iter()
                .find(|r| &r.package_record.name == name)?
                .package_record;
            Some(conda::install::moved(
                name.as_normalized(),
                (&o.version.to_string(), o.build.as_str()),
                (&new.version.to_string(), new.build.as_str()),
            ))
        })
        .collect();
    PackageChanges {
        moved,
        install: after
            .iter()
            .filter(|r| !before.contains(r))
            .cloned()
            .collect(),
        remove: before
            .iter()
            .filter(|r| !after.contains(r))
            .cloned()
            .collect(),
    }
}

/// The conda Python a solve chose, as the manifest records it.
pub(crate) fn conda_interpreter(records: &[RepoDataRecord], prefix: &Path) -> Result<Interpreter> {
    let python = records
        .iter()
        .find(|r| r.package_record.name.as_normalized() == "python")
        .ok_or_else(|| {
            UserError::failure("the solution has no python package").with_hint("check --python")
        })?;
    let pip = records
        .iter()
        .any(|r| r.package_record.name.as_normalized() == "pip");
    Ok(Interpreter::conda(
        prefix,
        python.package_record.version.to_string(),
        pip,
    ))
}

//! `envmod list`: every environment envmod can find, for people or (`--json`) for scripts.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::{
    env::registry::Registry,
    escape::{shown, tidy},
    printer::Printer,
    settings::ListSettings,
};

#[derive(Serialize)]
struct Row {
    /// `ok`; `damaged` for a directory whose manifest cannot be read; `copy` for a copy of
    /// an environment made elsewhere; `leftover` for what an interrupted envmod left beside
    /// one (its `prefix` is that directory, its `name` the environment's).
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    problem: Option<String>,
    name: String,
    python: String,
    python_mode: String,
    module: Option<String>,
    module_system: Option<String>,
    modulefile: Option<PathBuf>,
    prefix: PathBuf,
    modules: Vec<String>,
    specs: Vec<String>,
    /// `envmod freeze` was run on it.
    frozen: bool,
    /// Found in the site's `shared_envs_dirs` (a course environment, say).
    shared: bool,
    /// Who owns its directory, for shared environments.
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    /// Where its modulefile is: `module use` this, then `module load` the module.
    #[serde(skip_serializing_if = "Option::is_none")]
    module_root: Option<PathBuf>,
    /// The Jupyter kernel's directory, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<PathBuf>,
    created: String,
}

pub(crate) fn run(s: ListSettings, printer: &Printer) -> Result<()> {
    let mut rows: Vec<Row> = s
        .registry
        .all(&s.envs_dir)
        .into_iter()
        .map(|found| match found {
            Ok(m) => row(m),
            Err(d) => Row {
                state: if d.copy { "copy" } else { "damaged" },
                problem: Some(d.reason),
                name: d
                    .prefix
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                python: "?".into(),
                python_mode: String::new(),
                module: None,
                module_system: None,
                modulefile: None,
                prefix: d.prefix,
                modules: Vec::new(),
                specs: Vec::new(),
                frozen: false,
                shared: false,
                owner: None,
                module_root: None,
                kernel: None,
                created: String::new(),
            },
        })
        .collect();
    let leftovers: Vec<(Row, Option<String>)> = s
        .registry
        .dirs(&s.envs_dir)
        .iter()
        .flat_map(|d| crate::env::lock::leftovers_in(d))
        .map(leftover_row)
        .collect();
    for m in Registry::shared(&s.shared_envs_dirs) {
        if rows.iter().any(|r| r.prefix == m.prefix) {
            continue;
        }
        // Who owns the directory, not who the manifest (the group's to edit) says.
        let owner = dir_owner(&m.prefix);
        let mut r = row(m);
        r.shared = true;
        r.owner = owner;
        rows.push(r);
    }
    let mut blocked = Vec::new();
    for (row, why) in leftovers {
        if let Some(why) = why {
            blocked.push(format!("  {}: {why}\n", row.prefix.display()));
        }
        rows.push(row);
    }
    if s.json {
        printer.data(serde_json::to_string_pretty(&rows)? + "\n");
        return Ok(());
    }
    if rows.is_empty() {
        printer.info(format!(
            "no environments yet in {}; create one with `envmod create -n NAME`",
            s.envs_dir.display()
        ));
        return Ok(());
    }
    let table: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.python.clone(),
                match r.state {
                    "damaged" => "(damaged: envmod delete --force)".into(),
                    "copy" => "(a copy: envmod module --relocate)".into(),
                    "leftover" => format!(
                        "(left over by an interrupted envmod, owned by {})",
                        r.owner.as_deref().unwrap_or("?")
                    ),
                    _ => {
                        let mut module = r.module.clone().unwrap_or_else(|| "-".into());
                        if r.shared {
                            module.push_str(&format!(
                                " (shared by {})",
                                r.owner.as_deref().unwrap_or("?")
                            ));
                        }
                        if r.frozen {
                            module.push_str(" (frozen)");
                        }
                        module
                    }
                },
                r.prefix.display().to_string(),
                if r.modules.is_empty() {
                    "-".into()
                } else {
                    r.modules.join(" ")
                },
            ]
        })
        .collect();
    // Values from manifests others may write: one line each, no terminal control codes.
    let table: Vec<[String; 5]> = table
        .into_iter()
        .map(|row| row.map(|cell| shown(&cell).into_owned()))
        .collect();
    let header = ["NAME", "PYTHON", "MODULE", "PREFIX", "MODULES"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(console::measure_text_width(cell));
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&table) {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    // How to load the shared ones: their module roots are not on everyone's MODULEPATH.
    let mut roots: Vec<&PathBuf> = rows
        .iter()
        .filter(|r| r.shared && r.module.is_some())
        .filter_map(|r| r.module_root.as_ref())
        .collect();
    roots.sort();
    roots.dedup();
    if !roots.is_empty() {
        out.push_str("\nShared environments load after:\n");
        for root in roots {
            out.push_str(&format!(
                "  module use {}\n",
                crate::escape::sh_quote(&root.to_string_lossy())
            ));
        }
    }
    if !blocked.is_empty() {
        out.push_str("\nLeft over, and not removable by you:\n");
        out.extend(blocked);
    }
    printer.data(tidy(&out));
    Ok(())
}

/// The row of a leftover, and, when someone else's files keep it there, who and the fix.
fn leftover_row(left: crate::env::lock::Leftover) -> (Row, Option<String>) {
    let blockers = crate::fs::tree::blockers(&left.path).unwrap_or_default();
    let why = (!blockers.is_empty()).then(|| {
        let (problem, fix) = crate::fs::blocked::blocked_by(&blockers);
        format!("{problem}; {fix}")
    });
    let fix = format!(
        "rm -rf {}, or run any envmod command on {}",
        crate::escape::sh_quote(&left.path.to_string_lossy()),
        left.env
    );
    let row = Row {
        state: "leftover",
        problem: Some(match &why {
            Some(why) => format!("left by an interrupted envmod: {why}"),
            None => format!("left by an interrupted envmod: {fix}"),
        }),
        name: left.env,
        python: "-".into(),
        python_mode: String::new(),
        module: None,
        module_system: None,
        modulefile: None,
        owner: owner_name(&left.path),
        prefix: left.path,
        modules: Vec::new(),
        specs: Vec::new(),
        frozen: false,
        shared: false,
        module_root: None,
        kernel: None,
        created: String::new(),
    };
    (row, why)
}

/// The login name of the owner of the directory `path` names.
fn dir_owner(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    crate::fs::user_name(path.metadata().ok()?.uid())
}

/// The login name of the owner of `path`.
fn owner_name(path: &std::path::Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    crate::fs::user_name(path.symlink_metadata().ok()?.uid())
}

fn row(m: crate::manifest::Manifest) -> Row {
    Row {
        state: "ok",
        problem: None,
        name: m.name.to_string(),
        python: m.python.site.version.clone(),
        python_mode: serde_json::to_value(m.python.mode)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default(),
        module: m.module.as_ref().map(|i| i.name.to_string()),
        module_system: m.module.as_ref().map(|i| i.system.as_str().to_string()),
        modulefile: m.module.as_ref().map(|i| i.file.clone()),
        prefix: m.prefix.clone(),
        modules: m.modules.iter().map(|l| l.full_name.clone()).collect(),
        specs: m.specs.clone(),
        frozen: m.frozen,
        shared: false,
        owner: None,
        module_root: m.module.as_ref().map(|i| i.root.clone()),
        kernel: m.kernel.as_ref().map(|k| k.dir.clone()),
        created: m.created.to_rfc3339(),
    }
}

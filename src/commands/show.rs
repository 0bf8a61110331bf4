//! `envmod show`: what is in one environment and where each package comes from, for people
//! or (`--json`) for scripts.

use anyhow::Result;
use console::style;

use crate::{
    env::{
        ctx::Ctx,
        show::{Origin, Package, Shown},
    },
    escape::shown,
    manifest::PythonMode,
    outputs::state::State,
    settings::ShowSettings,
};

pub(crate) fn run(s: ShowSettings, ctx: &Ctx<'_>) -> Result<()> {
    let report = crate::env::show::show(&s.target, ctx)?;
    for w in &report.warnings {
        ctx.printer.warn(w);
    }
    if s.json {
        ctx.printer
            .data(serde_json::to_string_pretty(&report)? + "\n");
    } else {
        ctx.printer.data(human(&report));
    }
    Ok(())
}

/// The report for a terminal or a pipe: a few `key value` lines, the packages as a table,
/// the outputs. Every value may come from a file a group member wrote, so each is shown on
/// one line with its control characters escaped; styling is added after, and only where
/// stdout is a terminal.
fn human(r: &Shown) -> String {
    let mut out = String::new();
    let python = match r.python.mode {
        PythonMode::Site => format!(
            "site Python {}, {}",
            r.python.version,
            r.python.executable.display()
        ),
        PythonMode::Conda => format!("conda Python {}", r.python.version),
    };
    out.push_str(&format!(
        "{} ({})\n",
        style(shown(&r.name)).bold(),
        shown(&python)
    ));
    let shared = match &r.shared {
        None => "no".to_string(),
        Some(s) => match &s.group {
            Some(g) => format!("with the group {g}, whose members can change it"),
            None => "readable by everyone, changed by its owner".to_string(),
        },
    };
    let frozen = if r.frozen {
        format!(
            "yes: install, remove and delete are refused until `envmod unfreeze {}`",
            r.cli
        )
    } else {
        "no".to_string()
    };
    let modules = if r.modules.is_empty() {
        "none".to_string()
    } else {
        r.modules.join(" ")
    };
    let fields = [
        ("prefix", r.prefix.display().to_string()),
        ("owner", r.owner.clone().unwrap_or_else(|| "?".into())),
        ("shared", shared),
        ("frozen", frozen),
        ("modules", modules),
    ];
    for (key, value) in fields {
        out.push_str(&format!("  {key:<8} {}\n", shown(&value)));
    }

    let count = |o: Origin| r.packages.iter().filter(|p| p.origin == o).count();
    let counts: Vec<String> = [Origin::Conda, Origin::Pip, Origin::Site, Origin::Module]
        .into_iter()
        .filter(|o| count(*o) > 0)
        .map(|o| format!("{} {}", count(o), o.as_str()))
        .collect();
    out.push_str(&format!(
        "\n{} {} ({})\n",
        style("Packages:").bold(),
        r.packages.len(),
        counts.join(", ")
    ));
    let rows: Vec<[String; 4]> = r
        .packages
        .iter()
        .map(|p| {
            [p.name.clone(), p.version.clone(), origin_shown(p), from(p)]
                .map(|c| shown(&c).into_owned())
        })
        .collect();
    let header = ["NAME", "VERSION", "ORIGIN", "FROM"].map(String::from);
    out.push_str(&table(&header, &rows));

    out.push_str(&format!("\n{}\n", style("Outputs:").bold()));
    let rows: Vec<[String; 4]> = r
        .outputs
        .iter()
        .map(|o| {
            [
                o.kind.to_string(),
                o.state.as_str().to_string(),
                o.path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "-".into()),
                match (o.state, &o.detail) {
                    (State::Written, _) | (_, None) => String::new(),
                    (_, Some(d)) => format!("({d})"),
                },
            ]
            .map(|c| shown(&c).into_owned())
        })
        .collect();
    out.push_str(&table(&["", "", "", ""].map(String::from), &rows));
    out
}

fn origin_shown(p: &Package) -> String {
    if p.shadowed {
        format!("{} (shadowed by the env's)", p.origin.as_str())
    } else {
        p.origin.as_str().to_string()
    }
}

/// Where a package came from: its channel, the module, pip's source, the site's directory.
fn from(p: &Package) -> String {
    let text = match p.origin {
        Origin::Conda => p.channel.clone(),
        Origin::Module => p.module.clone(),
        Origin::Pip => p.location.clone(),
        Origin::Site => p.path.as_ref().map(|d| d.display().to_string()),
    };
    text.unwrap_or_else(|| "-".into())
}

/// `rows` in columns under `header` (left out when it is all blank), two spaces apart and
/// indented by two.
fn table(header: &[String; 4], rows: &[[String; 4]]) -> String {
    let with_header = header.iter().any(|h| !h.is_empty());
    let mut widths = header.clone().map(|h| h.len());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(console::measure_text_width(cell));
        }
    }
    let mut out = String::new();
    let all = with_header.then_some(header).into_iter().chain(rows);
    for row in all {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str("  ");
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

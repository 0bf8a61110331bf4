//! What a conda prefix says about itself: the specs its user asked for (conda's
//! `conda-meta/history`), its Python and the channels its packages came from. The files are
//! the prefix owner's, read bounded and never through a link.

use std::path::Path;

use anyhow::Result;
use rattler_conda_types::PrefixRecord;

use crate::{error::UserError, site::python::Interpreter};

/// conda's history is small; a larger one is read no further.
const MAX_HISTORY: u64 = 8 << 20;

/// The requested specs: the `# update specs:` lines of `conda-meta/history` (less what a
/// `# remove specs:` line took away), or else the installed packages nothing else needs.
pub(super) fn requested_specs(prefix: &Path, records: &[PrefixRecord]) -> Result<Vec<String>> {
    let history = prefix.join("conda-meta/history");
    let text = match crate::fs::read_text(&history, MAX_HISTORY, crate::fs::Links::Refuse) {
        Ok(t) => t,
        Err(e) if e.is_not_found() => String::new(),
        Err(e) => return Err(e.into()),
    };
    let specs = from_history(&text);
    if !specs.is_empty() {
        return Ok(specs);
    }
    Ok(leaves(records))
}

fn from_history(text: &str) -> Vec<String> {
    let mut specs: Vec<String> = Vec::new();
    for line in text.lines() {
        let (adding, list) = if let Some(rest) = line.strip_prefix("# update specs:") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("# install specs:") {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix("# remove specs:") {
            (false, rest)
        } else {
            continue;
        };
        for spec in python_list(list) {
            let name = spec_name(&spec).to_string();
            specs.retain(|s| spec_name(s) != name);
            if adding {
                specs.push(spec);
            }
        }
    }
    specs
}

/// The strings of a Python list literal as conda writes it: `['numpy', "python=3.11"]`.
fn python_list(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = list.chars();
    while let Some(c) = chars.next() {
        if c == '\'' || c == '"' {
            let item: String = chars.by_ref().take_while(|&d| d != c).collect();
            let item = item.trim();
            if !item.is_empty() {
                out.push(item.to_string());
            }
        }
    }
    out
}

fn spec_name(spec: &str) -> &str {
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        .unwrap_or(spec.len());
    &spec[..end]
}

/// The installed packages that no other installed package depends on, by name.
fn leaves(records: &[PrefixRecord]) -> Vec<String> {
    let needed: std::collections::HashSet<&str> = records
        .iter()
        .flat_map(|r| r.repodata_record.package_record.depends.iter())
        .map(|d| spec_name(d))
        .collect();
    let mut names: Vec<String> = records
        .iter()
        .map(|r| {
            r.repodata_record
                .package_record
                .name
                .as_normalized()
                .to_string()
        })
        .filter(|n| !needed.contains(n.as_str()))
        .collect();
    names.sort();
    names
}

/// The channels the packages came from, in the order first seen.
pub(super) fn channels(records: &[PrefixRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in records {
        if let Some(c) = &r.repodata_record.channel
            && !c.is_empty()
            && !out.contains(c)
        {
            out.push(c.clone());
        }
    }
    out
}

/// The prefix's own Python, from its record.
pub(super) fn interpreter(prefix: &Path, records: &[PrefixRecord]) -> Result<Interpreter> {
    let python = records
        .iter()
        .map(|r| &r.repodata_record.package_record)
        .find(|p| p.name.as_normalized() == "python")
        .ok_or_else(|| {
            UserError::usage(format!(
                "{} has no python package, so it has no Python to make a module for",
                prefix.display()
            ))
            .with_hint("install python into it with conda first, or adopt a Python environment")
        })?;
    let pip = records
        .iter()
        .any(|r| r.repodata_record.package_record.name.as_normalized() == "pip");
    Ok(Interpreter::conda(prefix, python.version.to_string(), pip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_gives_the_requested_specs_in_order() {
        let text = "==> 2024-01-01 <==\n# cmd: conda create -n x python=3.11 numpy\n# update specs: ['python=3.11', 'numpy']\n+defaults::numpy-1.26\n==> 2024-01-02 <==\n# update specs: [\"scipy>=1.10\", \"numpy 1.26.*\"]\n# remove specs: ['python']\n";
        assert_eq!(from_history(text), ["scipy>=1.10", "numpy 1.26.*"]);
    }

    #[test]
    fn no_history_lines_give_nothing() {
        assert!(from_history("==> 2024 <==\n+pkg\n").is_empty());
    }
}

//! The command reference (the options part of docs/cli.md, and the man pages under
//! share/man/man1) is generated from the clap definition, so it cannot drift from what the
//! binary accepts. The generated files are committed: `install.sh` copies the man pages
//! without building anything for them, and a review sees every change to the reference. The
//! tests below fail when a committed file differs from what clap says today;
//! `ENVMOD_UPDATE_REFERENCE=1 cargo test --lib cli::reference` rewrites them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, Command, CommandFactory};

use super::Cli;

const BEGIN: &str = "<!-- generated: cli reference -->";
const END: &str = "<!-- end generated: cli reference -->";

/// The command tree as the binary sees it, with bin names filled in
/// (`envmod kernel add`) and without clap's own `help` subcommand.
fn command() -> Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// Every visible command, parents before their subcommands.
fn walk(cmd: &Command, out: &mut Vec<Command>) {
    out.push(cmd.clone());
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        walk(sub, out);
    }
}

fn is_top(cmd: &Command) -> bool {
    !full_name(cmd).contains(' ')
}

fn commands() -> Vec<Command> {
    let mut all = Vec::new();
    walk(&command(), &mut all);
    all
}

fn full_name(cmd: &Command) -> String {
    cmd.get_bin_name().unwrap_or(cmd.get_name()).to_owned()
}

/// One line for a table cell: clap's help may span lines, `|` ends a cell, and outside
/// code spans `<envs_dir>` would be read as an HTML tag.
fn cell(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    line.split('`')
        .enumerate()
        .map(|(i, part)| {
            let part = part.replace('|', "\\|");
            if i % 2 == 0 {
                part.replace('<', "&lt;")
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("`")
}

fn arg_name(arg: &Arg) -> String {
    let value = arg
        .get_value_names()
        .map(|names| {
            names
                .iter()
                .map(|n| format!("<{n}>"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| format!("<{}>", arg.get_id().as_str().to_uppercase()));
    let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
    if arg.is_positional() {
        let dots = if matches!(arg.get_action(), ArgAction::Append) {
            "..."
        } else {
            ""
        };
        return format!("`{value}{dots}`");
    }
    let mut names = Vec::new();
    if let Some(short) = arg.get_short() {
        names.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        names.push(format!("--{long}"));
    }
    let mut text = names.join(", ");
    if takes_value {
        let _ = write!(text, " {value}");
    }
    format!("`{text}`")
}

fn arg_help(arg: &Arg) -> String {
    let mut help = arg
        .get_long_help()
        .or(arg.get_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let values: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| format!("`{}`", v.get_name()))
        .collect();
    let takes_value = matches!(arg.get_action(), ArgAction::Set | ArgAction::Append);
    let end_sentence = |help: &mut String| {
        if help.ends_with(|c: char| c.is_alphanumeric() || c == ']' || c == ')') {
            help.push('.');
        }
    };
    if takes_value && !values.is_empty() {
        end_sentence(&mut help);
        let _ = write!(help, " One of {}.", values.join(", "));
    }
    let defaults: Vec<String> = arg
        .get_default_values()
        .iter()
        .map(|v| format!("`{}`", v.to_string_lossy()))
        .collect();
    if takes_value
        && !defaults.is_empty()
        && !arg.is_hide_default_value_set()
        && !help.contains("[default")
    {
        end_sentence(&mut help);
        let _ = write!(help, " Default: {}.", defaults.join(", "));
    }
    cell(&help)
}

/// Arguments worth a row: the global ones (-q, -v, --help, --version) are listed once, at
/// the top, rather than under every command.
fn rows(cmd: &Command, top: bool) -> Vec<&Arg> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter(|a| {
            top || !(a.is_global_set() || matches!(a.get_id().as_str(), "help" | "version"))
        })
        .collect()
}

fn anchor(cmd: &Command) -> String {
    format!("{}-options", full_name(cmd).replace(' ', "-"))
}

/// The generated block of docs/cli.md, markers included.
fn markdown() -> String {
    let all = commands();
    let mut md = String::new();
    let _ = writeln!(md, "{BEGIN}");
    md.push_str(
        "<!-- Generated from envmod's command-line definition; do not edit by hand: \
         ENVMOD_UPDATE_REFERENCE=1 cargo test --lib cli::reference -->\n",
    );
    for cmd in &all {
        let top = is_top(cmd);
        let _ = writeln!(md, "\n### {}: options\n", full_name(cmd));
        if let Some(about) = cmd.get_long_about().or(cmd.get_about()) {
            let _ = writeln!(md, "{}\n", cell(&about.to_string()));
        }
        let usage = cmd.clone().render_usage().to_string();
        let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
        let _ = writeln!(md, "```\n{}\n```", usage.trim_end());
        let args = rows(cmd, top);
        if !args.is_empty() {
            md.push_str("\n| Option | Description |\n|---|---|\n");
            for arg in args {
                let _ = writeln!(md, "| {} | {} |", arg_name(arg), arg_help(arg));
            }
        }
        let subs: Vec<&Command> = cmd.get_subcommands().filter(|s| !s.is_hide_set()).collect();
        if !subs.is_empty() {
            md.push_str("\n| Command | What it does |\n|---|---|\n");
            for sub in subs {
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                let _ = writeln!(
                    md,
                    "| [`{}`](#{}) | {} |",
                    sub.get_name(),
                    anchor(sub),
                    cell(&about)
                );
            }
        }
    }
    let _ = writeln!(md, "\n{END}");
    md
}

/// docs/cli.md with its generated block replaced; the prose around it stays as written.
fn splice(doc: &str, block: &str) -> Result<String, String> {
    let start = doc
        .find(BEGIN)
        .ok_or_else(|| format!("docs/cli.md has no `{BEGIN}` line"))?;
    let end = doc[start..]
        .find(END)
        .map(|i| start + i + END.len())
        .ok_or_else(|| format!("docs/cli.md has `{BEGIN}` but no `{END}`"))?;
    let end = if doc[end..].starts_with('\n') {
        end + 1
    } else {
        end
    };
    Ok(format!("{}{}{}", &doc[..start], block, &doc[end..]))
}

/// One man page per visible command: envmod.1, envmod-create.1, envmod-kernel-add.1, ...
fn man_pages() -> Vec<(String, Vec<u8>)> {
    commands()
        .into_iter()
        .map(|cmd| {
            let man = clap_mangen::Man::new(cmd);
            let mut page = Vec::new();
            man.render(&mut page)
                .expect("rendering to memory cannot fail");
            (man.get_filename(), page)
        })
        .collect()
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn updating() -> bool {
    std::env::var_os("ENVMOD_UPDATE_REFERENCE").is_some_and(|v| v == "1")
}

const REGENERATE: &str =
    "run `ENVMOD_UPDATE_REFERENCE=1 cargo test --lib cli::reference` and commit the result";

#[test]
fn docs_cli_md_matches_the_command_line() {
    let path = repo("docs/cli.md");
    let doc = std::fs::read_to_string(&path).expect("docs/cli.md");
    let want = splice(&doc, &markdown()).unwrap_or_else(|e| panic!("{e}"));
    if updating() {
        if want != doc {
            std::fs::write(&path, &want).expect("write docs/cli.md");
        }
        return;
    }
    assert!(
        want == doc,
        "docs/cli.md's generated reference is out of date: {REGENERATE}"
    );
}

#[test]
fn man_pages_match_the_command_line() {
    let dir = repo("share/man/man1");
    let pages = man_pages();
    let names: std::collections::BTreeSet<String> = pages.iter().map(|(n, _)| n.clone()).collect();
    let committed: std::collections::BTreeSet<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    if updating() {
        std::fs::create_dir_all(&dir).expect("create share/man/man1");
        for stale in committed.difference(&names) {
            std::fs::remove_file(dir.join(stale)).expect("remove a page of a gone command");
        }
        for (name, page) in &pages {
            if std::fs::read(dir.join(name)).ok().as_deref() != Some(page) {
                std::fs::write(dir.join(name), page).expect("write a man page");
            }
        }
        return;
    }
    let missing: Vec<_> = names.difference(&committed).collect();
    let stale: Vec<_> = committed.difference(&names).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "share/man/man1 lacks {missing:?} and has pages of no command {stale:?}: {REGENERATE}"
    );
    for (name, page) in &pages {
        let have = std::fs::read(dir.join(name)).expect("read a man page");
        assert!(
            &have == page,
            "share/man/man1/{name} is out of date: {REGENERATE}"
        );
    }
}

#[test]
fn there_is_a_page_for_the_tool_and_for_every_command() {
    let names: Vec<String> = man_pages().into_iter().map(|(n, _)| n).collect();
    for want in ["envmod.1", "envmod-create.1", "envmod-kernel-add.1"] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "envmod-help.1"), "{names:?}");
}

#[test]
fn splice_keeps_the_prose_around_the_block() {
    let doc = format!("# title\n\nprose\n{BEGIN}\nold\n{END}\nmore prose\n");
    let got = splice(&doc, &format!("{BEGIN}\nnew\n{END}\n")).unwrap();
    assert_eq!(
        got,
        format!("# title\n\nprose\n{BEGIN}\nnew\n{END}\nmore prose\n")
    );
    assert!(splice("no markers\n", "x").is_err());
}

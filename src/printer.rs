//! All terminal output goes through `Printer`, so `-q`, `-v`, `--json` and piping behave the
//! same in every command. Data goes to stdout; messages, warnings and progress to stderr.
//! Messages often carry values someone else wrote (a shared environment's manifest); their
//! control characters are shown escaped, so none can move the cursor or draw fake output.

use std::io::{IsTerminal, Write};

use console::style;

use crate::escape::tidy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

#[derive(Debug, Clone)]
pub(crate) struct Printer {
    verbosity: Verbosity,
    stderr_tty: bool,
}

impl Printer {
    pub(crate) fn new(verbosity: Verbosity) -> Self {
        Self {
            verbosity,
            stderr_tty: std::io::stderr().is_terminal(),
        }
    }

    /// Whether progress bars may be drawn: a terminal, and not quiet.
    pub(crate) fn wants_progress_bars(&self) -> bool {
        self.stderr_tty && self.verbosity >= Verbosity::Normal
    }

    /// Whether plain progress lines should be printed instead of bars.
    pub(crate) fn wants_progress_lines(&self) -> bool {
        !self.stderr_tty && self.verbosity >= Verbosity::Normal
    }

    /// A status line for people, on stderr; silent with `-q`.
    pub(crate) fn info(&self, msg: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Normal {
            let _ = writeln!(std::io::stderr(), "{}", tidy(msg.as_ref()));
        }
    }

    /// Detail shown only with `-v`.
    pub(crate) fn detail(&self, msg: impl AsRef<str>) {
        if self.verbosity >= Verbosity::Verbose {
            let _ = writeln!(
                std::io::stderr(),
                "{} {}",
                style("debug:").dim(),
                tidy(msg.as_ref())
            );
        }
    }

    pub(crate) fn warn(&self, msg: impl AsRef<str>) {
        let _ = writeln!(
            std::io::stderr(),
            "{} {}",
            style("warning:").yellow().bold(),
            tidy(msg.as_ref())
        );
    }

    /// Machine- or pipe-readable output; printed even with `-q`.
    pub(crate) fn data(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_ref().as_bytes());
        let _ = out.flush();
    }

    /// A boxed block of next steps, like the one pixi and uv print after an install.
    pub(crate) fn boxed(&self, title: &str, lines: &[String]) {
        if self.verbosity < Verbosity::Normal {
            return;
        }
        let lines: Vec<_> = lines.iter().map(|l| tidy(l)).collect();
        let width = lines
            .iter()
            .map(|l| console::measure_text_width(l))
            .chain([console::measure_text_width(title) + 2])
            .max()
            .unwrap_or(0);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(
            err,
            "╭─ {title} {}╮",
            "─".repeat(width.saturating_sub(title.len() + 1))
        );
        for l in &lines {
            let pad = width - console::measure_text_width(l);
            let _ = writeln!(err, "│ {l}{} │", " ".repeat(pad));
        }
        let _ = writeln!(err, "╰{}╯", "─".repeat(width + 2));
    }

    /// Print an error chain the way uv does: `error:`, then `Caused by:`, then `hint:`.
    pub(crate) fn error(&self, err: &anyhow::Error) {
        let mut out = std::io::stderr().lock();
        let _ = writeln!(
            out,
            "{} {}",
            style("error:").red().bold(),
            tidy(&err.to_string())
        );
        let causes: Vec<String> = err
            .chain()
            .skip(1)
            .map(|c| c.to_string())
            .filter(|c| !err.to_string().contains(c.as_str()))
            .collect();
        if !causes.is_empty() {
            let _ = writeln!(out, "  {}", style("Caused by:").bold());
            for c in causes {
                let _ = writeln!(out, "    {}", tidy(&c));
            }
        }
        if let Some(hint) = crate::error::hint_of(err) {
            let _ = writeln!(out, "{} {}", style("hint:").cyan().bold(), tidy(hint));
        }
    }
}

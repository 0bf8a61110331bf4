//! `envmod doctor`: the first-day breakages, found and each given its fix, one line per
//! finding. Exit 0 when nothing is wrong, 1 otherwise, so a login script or a help-desk
//! macro can run it.

use anyhow::Result;

use crate::{
    env::health::{self, Checkup},
    environ::Environ,
    error::UserError,
    escape::shown,
    printer::Printer,
};

pub(crate) fn run(checkup: Checkup, json: bool, env: &Environ, printer: &Printer) -> Result<()> {
    let found = health::examine(&checkup, env);
    if json {
        printer.data(serde_json::to_string_pretty(&found)? + "\n");
    } else if found.is_empty() {
        printer.data("envmod doctor: no problems found\n");
    } else {
        let mut out = String::new();
        for f in &found {
            // A finding quotes manifests others may write: one line, no control codes.
            out.push_str(&format!(
                "problem: {}; fix: {}\n",
                shown(&f.problem),
                shown(&f.fix)
            ));
        }
        printer.data(out);
    }
    if found.is_empty() {
        Ok(())
    } else {
        Err(UserError::failure(format!(
            "envmod doctor found {} problem{}",
            found.len(),
            if found.len() == 1 { "" } else { "s" }
        ))
        .into())
    }
}

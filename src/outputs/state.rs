//! Whether each output of an environment is where it should be, for `envmod show`: the
//! modulefile, `bin/activate` and the kernel. The paths come from a manifest a group member
//! can write, so a path envmod could not have recorded is never looked at, and each file is
//! opened only as a regular file, within a size limit, through no link.

use std::{
    io::Read,
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::{
    manifest::Manifest,
    outputs::{kernel, modulefile},
    site::modules::GENERATED_MARKER,
};

/// The most of an output file read to tell whether envmod wrote it.
const OUTPUT_HEAD: u64 = 4096;

/// Whether an output is where it should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Written,
    /// The environment changed and the output was not brought up to date yet.
    Pending,
    Missing,
    /// The environment has none (no module system, no kernel added).
    None,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            State::Written => "written",
            State::Pending => "pending",
            State::Missing => "missing",
            State::None => "none",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct OutputState {
    /// `modulefile`, `activate` or `kernel`.
    pub(crate) kind: &'static str,
    pub(crate) path: Option<PathBuf>,
    pub(crate) state: State,
    /// Why it is not written, and the command that writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) detail: Option<String>,
}

/// The first `len` bytes of the regular file `rel` below `root`, reached without following
/// a link, as text; `None` if there is no such file.
pub(crate) fn head_beneath(root: &Path, rel: &Path, len: u64) -> Option<String> {
    let mut bytes = Vec::new();
    crate::fs::open_regular_beneath(root, rel)
        .ok()?
        .take(len)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The modulefile, `bin/activate` and the kernel, each with its state. A path the manifest
/// could not have got from envmod is not looked at.
pub(crate) fn of(m: &Manifest, real: &Path, cli: &str) -> Vec<OutputState> {
    let pending = |state: State| {
        if m.outputs_pending && state != State::None {
            (
                State::Pending,
                Some(format!(
                    "the environment changed after it was written: `envmod module {cli}` brings it up to date"
                )),
            )
        } else {
            (state, None)
        }
    };
    let write_it = format!("`envmod module {cli}` writes it");
    let modulefile = match (&m.module, modulefile::unsound(m)) {
        (None, _) => OutputState {
            kind: "modulefile",
            path: None,
            state: State::None,
            detail: Some(format!(
                "no module system; `envmod module {cli} --module-system lmod` writes one"
            )),
        },
        (Some(info), Some(u)) => OutputState {
            kind: "modulefile",
            path: Some(info.file.clone()),
            state: State::Missing,
            detail: Some(format!(
                "`{}` in the manifest {}: not looked at",
                u.field, u.detail
            )),
        },
        (Some(info), None) => {
            let (state, why) = match modulefile::owner_of(&info.file) {
                modulefile::Owner::Env(p) if crate::fs::same_dir(&p, real) => {
                    pending(State::Written)
                }
                modulefile::Owner::UnknownEnv => pending(State::Written),
                modulefile::Owner::Nobody => (State::Missing, Some(write_it.clone())),
                modulefile::Owner::Env(_) | modulefile::Owner::Foreign => (
                    State::Missing,
                    Some(format!(
                        "a file envmod did not write for this environment is there; {write_it} once it is moved away"
                    )),
                ),
            };
            OutputState {
                kind: "modulefile",
                path: Some(info.file.clone()),
                state,
                detail: why,
            }
        }
    };
    let activate_rel = Path::new("bin/activate");
    let (state, detail) = match head_beneath(real, activate_rel, OUTPUT_HEAD) {
        Some(head) if head.contains(GENERATED_MARKER) => pending(State::Written),
        Some(_) => (
            State::Missing,
            Some(format!("bin/activate is not envmod's; {write_it}")),
        ),
        None => (State::Missing, Some(write_it.clone())),
    };
    let activate = OutputState {
        kind: "activate",
        path: Some(m.prefix.join(activate_rel)),
        state,
        detail,
    };
    let kernel = match &m.kernel {
        None => OutputState {
            kind: "kernel",
            path: None,
            state: State::None,
            detail: Some(format!("`envmod kernel add {cli}` adds one")),
        },
        Some(k) => {
            let json = k.dir.join("kernel.json");
            let (state, detail) = if let Some(u) = kernel::unsound(k) {
                (
                    State::Missing,
                    Some(format!(
                        "`{}` in the manifest {}: not looked at",
                        u.field, u.detail
                    )),
                )
            } else {
                match kernel::owner_of(&json) {
                    Some(p) if crate::fs::same_dir(&p, real) => pending(State::Written),
                    _ => (
                        State::Missing,
                        Some(format!("`envmod kernel add {cli}` writes it again")),
                    ),
                }
            };
            OutputState {
                kind: "kernel",
                path: Some(k.dir.clone()),
                state,
                detail,
            }
        }
    };
    vec![modulefile, activate, kernel]
}

//! Error kinds and exit codes. Scripts rely on the codes: 0 success, 1 failure, 2 usage.

use std::process::ExitCode;

/// An error the user can act on: the message names what went wrong, the hint names the fix.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct UserError {
    pub(crate) message: String,
    pub(crate) hint: Option<String>,
    pub(crate) kind: ErrorKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Something failed while doing the work.
    Failure,
    /// The command line or its values were wrong.
    Usage,
}

impl ErrorKind {
    pub(crate) fn exit_code(self) -> ExitCode {
        match self {
            ErrorKind::Failure => ExitCode::from(1),
            ErrorKind::Usage => ExitCode::from(2),
        }
    }
}

impl UserError {
    pub(crate) fn failure(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            kind: ErrorKind::Failure,
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
            kind: ErrorKind::Usage,
        }
    }

    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Shorthand for `Err(UserError::failure(..).with_hint(..).into())`.
#[macro_export]
macro_rules! fail {
    ($($arg:tt)*) => {
        return Err($crate::error::UserError::failure(format!($($arg)*)).into())
    };
}

/// The exit code for any error that reached the top.
pub(crate) fn exit_code_of(err: &anyhow::Error) -> ExitCode {
    err.chain()
        .find_map(|e| e.downcast_ref::<UserError>())
        .map_or(ExitCode::from(1), |e| e.kind.exit_code())
}

/// The hint attached anywhere in the error chain.
pub(crate) fn hint_of(err: &anyhow::Error) -> Option<&str> {
    err.chain()
        .find_map(|e| e.downcast_ref::<UserError>())
        .and_then(|e| e.hint.as_deref())
}

/// A YAML error as envmod words it: `", line N"` to put after the file's name, and the
/// message without serde_yaml's own " at line L column C" tail.
pub(crate) fn yaml_place(e: &serde_yaml::Error) -> (String, String) {
    let message = e.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    let place = e
        .location()
        .map_or(String::new(), |l| format!(", line {}", l.line()));
    (place, message)
}

//! The process's variables and working directory, read once at start and passed down, so
//! everything downstream is a function of them (and tests can say what is read).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

/// The process environment, captured once so that everything downstream is a pure function
/// of it (and tests can reason about what is read).
#[derive(Debug, Clone, Default)]
pub(crate) struct Environ {
    vars: BTreeMap<String, String>,
    cwd: PathBuf,
}

impl Environ {
    pub(crate) fn capture() -> Self {
        Self {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            vars: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
        }
    }

    /// The working directory, read once: relative paths on the command line mean this.
    pub(crate) fn cwd(&self) -> &Path {
        &self.cwd
    }

    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    #[cfg(test)]
    /// The same environment with one variable set; used to build contexts in tests.
    pub(crate) fn with(mut self, key: &str, value: &str) -> Self {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    /// An XDG base directory: the variable when set, else its default under HOME.
    pub(crate) fn xdg_dir(&self, var: &str, default_under_home: &str) -> PathBuf {
        self.get(var)
            .map(PathBuf::from)
            .or_else(|| self.home().map(|h| h.join(default_under_home)))
            .unwrap_or_else(|| PathBuf::from(default_under_home))
    }

    pub(crate) fn home(&self) -> Option<PathBuf> {
        self.get("HOME").map(PathBuf::from).or_else(dirs::home_dir)
    }
}

//! The process's variables and working directory, read once at start-up and passed down.
//! Everything after that is a function of this value, so tests can build one by hand instead
//! of mutating the real process environment, and no two parts of a run can see different
//! working directories.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

#[derive(Debug, Clone)]
pub struct Environ {
    vars: BTreeMap<String, String>,
    cwd: PathBuf,
}

impl Environ {
    pub(crate) fn capture() -> Self {
        Self {
            vars: std::env::vars_os()
                .map(|(k, v)| {
                    (
                        k.to_string_lossy().into_owned(),
                        v.to_string_lossy().into_owned(),
                    )
                })
                .collect(),
            // A deleted working directory still lets commands that only use absolute paths run.
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }

    #[cfg(test)]
    pub(crate) fn from_pairs(pairs: &[(&str, &str)], cwd: impl Into<PathBuf>) -> Self {
        Self {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            cwd: cwd.into(),
        }
    }

    /// Another process's variables (a scratch shell's), with this working directory.
    pub(crate) fn from_vars(vars: BTreeMap<String, String>, cwd: &Path) -> Self {
        Self {
            vars,
            cwd: cwd.to_path_buf(),
        }
    }

    /// Every variable, for a child that must see exactly this environment.
    pub(crate) fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The same environment with one variable set.
    #[cfg(test)]
    pub(crate) fn with(mut self, key: &str, value: &str) -> Self {
        self.vars.insert(key.to_string(), value.to_string());
        self
    }

    /// A variable's value; empty counts as unset, as it does for most Unix tools.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A variable's value when it is set, even to the empty string: for a few variables
    /// empty means something (`CONDA_OVERRIDE_CUDA=` is "no CUDA").
    pub(crate) fn get_set(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// The set variables whose names start with `prefix`, without the prefix.
    pub(crate) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars.iter().filter_map(move |(k, v)| {
            let rest = k.strip_prefix(prefix)?;
            (!v.is_empty()).then_some((rest, v.as_str()))
        })
    }

    pub(crate) fn cwd(&self) -> &Path {
        &self.cwd
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

/// Tests that do not care about the working directory get `/`.
#[cfg(test)]
impl Default for Environ {
    fn default() -> Self {
        Self::from_pairs(&[], "/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_value_is_unset_to_get_but_set_to_get_set() {
        let env = Environ::from_pairs(&[("EMPTY", ""), ("FULL", "1")], "/");
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get_set("EMPTY"), Some(""));
        assert_eq!(
            (env.get("FULL"), env.get_set("FULL")),
            (Some("1"), Some("1"))
        );
        assert_eq!(env.get_set("UNSET"), None);
    }
}

//! Validated names. Environment names end up in file paths, modulefiles and shell code, so
//! they are checked once, at the edge, and carried as newtypes afterwards.

use std::{fmt, str::FromStr, sync::LazyLock};

use regex::Regex;
use serde::{Deserialize, Serialize};

static ENV_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$").expect("valid regex"));

const MAX_NAME_LEN: usize = 100;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum NameError {
    #[error("environment name is empty: give a name such as `myenv`")]
    Empty,
    #[error(
        "invalid environment name {0:?}: use letters, digits, '.', '_', '+' and '-', starting with a letter or digit (no '/', spaces or shell characters)"
    )]
    Invalid(String),
    #[error(
        "environment name {0:?} is longer than {MAX_NAME_LEN} characters: choose a shorter name"
    )]
    TooLong(String),
}

/// The name of an environment, also the first part of its module name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub(crate) struct EnvName(String);

impl EnvName {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            Err(NameError::Empty)
        } else if s.len() > MAX_NAME_LEN {
            Err(NameError::TooLong(s.to_string()))
        } else if !ENV_NAME.is_match(s) {
            Err(NameError::Invalid(s.to_string()))
        } else {
            Ok(Self(s.to_string()))
        }
    }
}

impl TryFrom<String> for EnvName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<EnvName> for String {
    fn from(n: EnvName) -> String {
        n.0
    }
}

impl fmt::Display for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `NAME/pyX.Y`: the module a user loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ModuleName {
    pub(crate) name: EnvName,
    /// The version part, `py3.11`.
    pub(crate) version: String,
}

/// The built-in module name, `NAME/pyX.Y`, as `module_name_template` spells it.
pub(crate) const DEFAULT_MODULE_TEMPLATE: &str = "{name}/py{python_short}";

impl ModuleName {
    /// `template` filled in for `name` on Python `version` (`3.11.7`); `None` unless it
    /// gives `DIR/VERSION`, each part a valid name, so it can never name a path elsewhere.
    pub(crate) fn from_template(template: &str, name: &EnvName, version: &str) -> Option<Self> {
        let short = version.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
        let filled = template
            .replace("{name}", name.as_str())
            .replace("{python_short}", &short)
            .replace("{python}", version);
        let (dir, leaf) = filled.split_once('/')?;
        let dir: EnvName = dir.parse().ok()?;
        leaf.parse::<EnvName>().ok()?;
        Some(Self {
            name: dir,
            version: leaf.to_string(),
        })
    }

    pub(crate) fn for_python(name: EnvName, major: u32, minor: u32) -> Self {
        Self {
            name,
            version: format!("py{major}.{minor}"),
        }
    }
}

impl fmt::Display for ModuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.name, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["myenv", "a", "proj-2024", "cs101_fall.v2", "x+y", "3d"] {
            assert_eq!(ok.parse::<EnvName>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_paths_spaces_and_shell_characters() {
        for bad in [
            "a/b",
            "..",
            ".hidden",
            "-rf",
            "my env",
            "$(touch x)",
            "a;b",
            "a`b`",
            "a\"b",
            "a'b",
            "a]]",
            "a}",
            "ä",
            "a\nb",
            "/abs",
            "~user",
        ] {
            assert!(bad.parse::<EnvName>().is_err(), "{bad:?} was accepted");
        }
        assert_eq!("".parse::<EnvName>(), Err(NameError::Empty));
    }

    #[test]
    fn module_name_carries_python_version() {
        let m = ModuleName::for_python("myenv".parse().unwrap(), 3, 11);
        assert_eq!(m.to_string(), "myenv/py3.11");
    }
}

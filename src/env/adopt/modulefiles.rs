//! conda-env-mod's modulefiles, read as data: `<dir>/<app>/NAME-pyX.Y.Z.lua` (Lmod) or
//! `NAME-pyX.Y.Z` (Tcl), each naming its environment's prefix (`modroot`) and the modules
//! it loads first. They are never run: a modulefile is a program, and someone else may have
//! written it. Only regular files are read, bounded, with no link followed on the way.

use std::path::{Path, PathBuf};

use anyhow::Result;

/// A conda-env-mod modulefile is a few dozen lines.
const MAX_MODULEFILE: u64 = 256 << 10;
/// Directories deeper than `<dir>/<app>/` are not conda-env-mod's.
const MAX_ENTRIES: usize = 100_000;

/// One modulefile of the tree, as far as it could be read.
pub(crate) struct Found {
    /// Relative to the tree's top.
    pub(crate) file: PathBuf,
    /// `NAME` of its file name.
    pub(crate) name: String,
    pub(crate) read: Result<Parsed, String>,
}

/// What a conda-env-mod modulefile says.
#[derive(Debug, PartialEq)]
pub(crate) struct Parsed {
    /// `NAME` of `NAME-pyX.Y.Z`.
    pub(crate) name: String,
    pub(crate) python: String,
    /// The module directory it sits in (conda-env-mod's `-a/--appname`), `""` at the top.
    pub(crate) app: String,
    pub(crate) prefix: PathBuf,
    pub(crate) modules: Vec<String>,
}

/// Every `NAME-pyX.Y.Z[.lua]` file in `dir` and one level below, sorted.
pub(crate) fn find(dir: &Path) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let mut seen = 0;
    let mut visit = |rel: PathBuf, app: &str, out: &mut Vec<Found>| -> Result<bool> {
        seen += 1;
        if seen > MAX_ENTRIES {
            return Ok(false);
        }
        let Some(fname) = rel.file_name().map(|f| f.to_string_lossy().into_owned()) else {
            return Ok(true);
        };
        let Some((name, python, lua)) = split_name(&fname) else {
            return Ok(true);
        };
        let read = match crate::fs::read_beneath(dir, &rel, MAX_MODULEFILE) {
            Ok(Some(bytes)) => {
                let text = String::from_utf8_lossy(&bytes);
                parse(&text, lua).map(|(prefix, modules)| Parsed {
                    name: name.to_string(),
                    python: python.to_string(),
                    app: app.to_string(),
                    prefix,
                    modules,
                })
            }
            Ok(None) => Err("it is gone".to_string()),
            Err(e) => Err(format!("{e:#}")),
        };
        out.push(Found {
            file: rel,
            name: name.to_string(),
            read,
        });
        Ok(true)
    };
    for top in crate::fs::list_beneath(dir, Path::new(""))? {
        let rel = PathBuf::from(&top);
        let meta = dir.join(&rel).symlink_metadata()?;
        if meta.is_dir() {
            let app = top.to_string_lossy().into_owned();
            for inner in crate::fs::list_beneath(dir, &rel)? {
                if !visit(rel.join(inner), &app, &mut out)? {
                    return Ok(out);
                }
            }
        } else if !visit(rel, "", &mut out)? {
            return Ok(out);
        }
    }
    Ok(out)
}

/// `NAME-py3.11.7.lua` → (`NAME`, `3.11.7`, Lua).
fn split_name(file: &str) -> Option<(&str, &str, bool)> {
    let (stem, lua) = match file.strip_suffix(".lua") {
        Some(stem) => (stem, true),
        None => (file, false),
    };
    let (name, python) = stem.rsplit_once("-py")?;
    let digits = python.split('.').collect::<Vec<_>>();
    (!name.is_empty()
        && digits.len() >= 2
        && digits
            .iter()
            .all(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())))
    .then_some((name, python, lua))
}

/// The prefix and the modules a modulefile's text names.
pub(crate) fn parse(text: &str, lua: bool) -> Result<(PathBuf, Vec<String>), String> {
    let mut prefix = None;
    let mut modules = Vec::new();
    for line in text.lines().map(str::trim) {
        if lua {
            if line.starts_with("--") {
                continue;
            }
            if let Some(rest) = line.strip_prefix("local modroot") {
                prefix = rest.trim_start().strip_prefix('=').and_then(lua_string);
            }
            for call in ["depends_on(", "load(", "prereq(", "always_load("] {
                if let Some(args) = line.strip_prefix(call) {
                    modules.extend(lua_strings(args));
                }
            }
        } else {
            if line.starts_with('#') {
                continue;
            }
            let words = tcl_words(line);
            match words
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice()
            {
                ["set", "modroot", value] => prefix = Some(value.to_string()),
                ["module", "load" | "add", rest @ ..] | ["prereq" | "depends-on", rest @ ..] => {
                    modules.extend(
                        rest.iter()
                            .filter(|w| !w.starts_with('-'))
                            .map(|w| w.to_string()),
                    )
                }
                _ => {}
            }
        }
    }
    let prefix = prefix.ok_or("it names no prefix (no modroot line)")?;
    if !prefix.starts_with('/') || prefix.contains(['$', '[', '\n']) {
        return Err(format!(
            "its prefix {prefix:?} is not a plain absolute path"
        ));
    }
    Ok((PathBuf::from(prefix), modules))
}

/// A double- or single-quoted Lua string at the start of `s`, with its simple escapes.
fn lua_string(s: &str) -> Option<String> {
    lua_string_at(s.trim_start()).map(|(value, _)| value)
}

/// The quoted string that `s` starts with, and the bytes of `s` it took.
fn lua_string_at(s: &str) -> Option<(String, usize)> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((_, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            c if c == quote => {
                let end = chars.next().map_or(s.len(), |(i, _)| i);
                return Some((out, end));
            }
            c => out.push(c),
        }
    }
    None
}

/// The string arguments of a Lua call: `"a", "b")`.
fn lua_strings(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = args;
    while let Some(i) = rest.find(['"', '\'']) {
        if rest[..i].contains(')') {
            break;
        }
        let Some((value, used)) = lua_string_at(&rest[i..]) else {
            break;
        };
        out.push(value);
        rest = &rest[i + used..];
    }
    out
}

/// A Tcl line's words, with `"…"` and `{…}` quoting taken off (no substitution is done: a
/// word with `$` or `[` is kept as written, and a prefix with one is refused).
fn tcl_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let close = match c {
            '"' => Some('"'),
            '{' => Some('}'),
            _ => None,
        };
        let mut word = String::new();
        if let Some(close) = close {
            chars.next();
            for d in chars.by_ref() {
                if d == close {
                    break;
                }
                word.push(d);
            }
        } else {
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                word.push(d);
                chars.next();
            }
        }
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_of_conda_env_mod() {
        let text = "-- created on Mon by u\n\ndepends_on(\"anaconda/2024.02-py311\")\nlocal modroot = \"/home/u/.conda/envs/proj\"\nlocal pyver   = \"3.11.7\"\n\npushenv(\"CONDA_PREFIX\",modroot)\n-- depends_on(\"ignored\")\nload(\"gcc/12\", \"cuda/12.1\")\n";
        let (prefix, modules) = parse(text, true).unwrap();
        assert_eq!(prefix, PathBuf::from("/home/u/.conda/envs/proj"));
        assert_eq!(modules, ["anaconda/2024.02-py311", "gcc/12", "cuda/12.1"]);
    }

    #[test]
    fn tcl_of_conda_env_mod() {
        let text = "#%Module\n# created on Mon by u\n\nmodule load \"anaconda/2024.02-py311\"\nprereq gcc/12\nset modroot \"/home/u/.conda/envs/proj\"\nset pyver \"3.11.7\"\n\npushenv CONDA_PREFIX \"$modroot\"\n";
        let (prefix, modules) = parse(text, false).unwrap();
        assert_eq!(prefix, PathBuf::from("/home/u/.conda/envs/proj"));
        assert_eq!(modules, ["anaconda/2024.02-py311", "gcc/12"]);
    }

    #[test]
    fn a_prefix_that_would_need_evaluating_is_refused() {
        assert!(parse("set modroot \"$env(HOME)/x\"\n", false).is_err());
        assert!(parse("set modroot [exec id]\n", false).is_err());
        assert!(parse("pushenv(\"A\",\"b\")\n", true).is_err());
    }

    #[test]
    fn odd_lua_never_panics() {
        for text in [
            "load(\"a\\\"é\", 'b')",
            "load(\"",
            "load(\"é",
            "depends_on(\"x\") load(\"y\")",
        ] {
            let _ = parse(&format!("local modroot = \"/p\"\n{text}\n"), true);
        }
        let (_, m) = parse("local modroot = \"/p\"\nload(\"a\\\"b\", 'c')\n", true).unwrap();
        assert_eq!(m, ["a\"b", "c"]);
    }

    #[test]
    fn names_are_name_dash_py_version() {
        assert_eq!(
            split_name("proj-py3.11.7.lua"),
            Some(("proj", "3.11.7", true))
        );
        assert_eq!(
            split_name("my-env-py3.10.4"),
            Some(("my-env", "3.10.4", false))
        );
        assert_eq!(split_name("README"), None);
        assert_eq!(split_name("x-py3"), None);
    }
}

//! Quoting for the three languages envmod writes. Each function turns any string into one
//! literal of its language, so a path such as `/x/$(rm -rf ~)/"]]}` comes out inert. And
//! the same for a terminal: a value someone else wrote (a manifest's module name) is shown
//! with its control characters escaped, so it cannot move the cursor or draw fake output.

use std::{borrow::Cow, fmt::Write};

/// A Lua string literal in double quotes. Control bytes use the decimal `\ddd` form, which
/// every Lua version reads; multi-byte UTF-8 passes through.
pub(crate) fn lua_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\{:03}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A Tcl word in double quotes. Every character Tcl substitutes or uses to group is
/// backslash-escaped; control characters use `\u00XX`, which is exactly four digits and so
/// cannot swallow a following hex digit.
pub(crate) fn tcl_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' | '"' | '$' | '[' | ']' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A POSIX shell word in single quotes; a single quote becomes `'\''`.
/// A fish single-quoted string: inside, only `\\` and `\'` are escapes.
pub(crate) fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

pub(crate) fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// `s` for a terminal, on one line: every control character (newlines too) as Rust writes
/// it in a string (`\n`, `\u{1b}`).
pub(crate) fn shown(s: &str) -> Cow<'_, str> {
    escape_controls(s, |_| false)
}

/// A message for a terminal: [`shown`], but its own line breaks and tabs kept.
pub(crate) fn tidy(s: &str) -> Cow<'_, str> {
    escape_controls(s, |c| c == '\n' || c == '\t')
}

fn escape_controls(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() && !keep(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_shown_not_sent() {
        let fake = "gcc/12\u{1b}[2K\r\u{1b}[32mALL OK\nnext";
        assert_eq!(shown(fake), "gcc/12\\u{1b}[2K\\r\\u{1b}[32mALL OK\\nnext");
        assert_eq!(tidy(fake), "gcc/12\\u{1b}[2K\\r\\u{1b}[32mALL OK\nnext");
        assert!(matches!(shown("gcc/12.2 ä"), Cow::Borrowed(_)));
    }

    const HOSTILE: &str =
        "/x/$(touch PWNED)/`id`/\"q\"/'s'/]]/}{/[x]/a;b/back\\slash/new\nline/\t/ä";

    #[test]
    fn lua_escapes_quotes_backslashes_and_controls() {
        assert_eq!(lua_quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(lua_quote("a\nb\x01"), r#""a\nb\001""#);
        assert_eq!(lua_quote("]]"), "\"]]\"");
    }

    #[test]
    fn tcl_escapes_substitution_and_grouping() {
        assert_eq!(tcl_quote("$a[b]{c}"), r#""\$a\[b\]\{c\}""#);
        assert_eq!(tcl_quote("a\x01b"), r#""a\u0001b""#);
    }

    #[test]
    fn sh_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(sh_quote("/apps/envs/my-env"), "/apps/envs/my-env");
        assert_eq!(sh_quote("it's $(x)"), r"'it'\''s $(x)'");
        assert_eq!(sh_quote(""), "''");
    }

    /// Round-trip through the real interpreters when they are installed (the integration
    /// suite requires them; here they only add confidence).
    #[test]
    fn real_interpreters_read_back_the_same_bytes() {
        let checks = [
            (
                "tclsh",
                format!("puts -nonewline {}\n", tcl_quote(HOSTILE)),
                ".tcl",
            ),
            (
                "lua5.3",
                format!("io.write({})\n", lua_quote(HOSTILE)),
                ".lua",
            ),
            ("sh", format!("printf %s {}\n", sh_quote(HOSTILE)), ".sh"),
        ];
        for (prog, script, ext) in checks {
            let Ok(path) = which::which(prog) else {
                continue;
            };
            let file = tempfile::Builder::new().suffix(ext).tempfile().unwrap();
            std::fs::write(file.path(), script).unwrap();
            let out = std::process::Command::new(path)
                .arg(file.path())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{prog}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                HOSTILE,
                "{prog} changed the string"
            );
        }
    }
}

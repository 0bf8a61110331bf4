//! Channel arguments as users write them: a name resolved through `channel_alias`, a URL,
//! or a local directory (relative or absolute) that becomes a `file://` URL.

use std::path::Path;

use anyhow::Result;
use rattler_conda_types::{Channel, ChannelConfig};

use crate::error::UserError;

/// Resolve one channel argument. A word without `/` is a channel name; anything that looks
/// like a path is a directory, which must exist.
pub fn resolve(raw: &str, alias: &url::Url, cwd: &Path) -> Result<Channel> {
    if raw.trim().is_empty() {
        return Err(UserError::usage("empty channel name")
            .with_hint("give a channel name (conda-forge), a URL, or a directory path; check for `-c ''` or an empty entry in the config's channels")
            .into());
    }
    if raw.chars().any(char::is_control) {
        // Shown escaped: a raw newline would split the one-line error, and other control
        // characters could rewrite the terminal.
        return Err(UserError::usage(format!(
            "invalid channel {:?}: it contains a control character",
            display_raw(raw)
        ))
        .with_hint("remove the newline or control character from the channel name or URL")
        .into());
    }
    // `https://mirror/conda` must mean the directory, or URL joining drops its last segment.
    let mut alias = alias.clone();
    if !alias.path().ends_with('/') {
        alias.set_path(&format!("{}/", alias.path()));
    }
    let config = ChannelConfig {
        channel_alias: alias,
        root_dir: cwd.to_path_buf(),
    };
    if raw.contains("://") {
        return Channel::from_str(raw, &config).map_err(|e| bad_channel(raw, e));
    }
    // `conda-forge/label/dev` is a channel name with a label; `chan/` or `./chan` is a path.
    let explicit_path = raw.starts_with('/') || raw.starts_with('.') || raw.starts_with('~');
    let existing_dir = raw.contains('/') && cwd.join(raw).is_dir();
    if explicit_path || existing_dir {
        let expanded = shellexpand::tilde(raw);
        let dir = cwd.join(expanded.as_ref());
        if !dir.is_dir() {
            return Err(UserError::failure(format!(
                "channel directory {} does not exist",
                dir.display()
            ))
            .with_hint("check the path, or run `envmod index DIR` on a directory of packages")
            .into());
        }
        let dir = dir.canonicalize()?;
        let url = url::Url::from_directory_path(&dir).map_err(|()| {
            UserError::failure(format!("cannot turn {} into a file:// URL", dir.display()))
        })?;
        return Ok(Channel::from_url(url));
    }
    Channel::from_str(raw, &config).map_err(|e| bad_channel(raw, e))
}

/// Every channel argument, in order. Solving against no channel at all would only fail later
/// with "package not found", which hides the real mistake.
pub(crate) fn resolve_all(raw: &[String], alias: &url::Url, cwd: &Path) -> Result<Vec<Channel>> {
    if raw.is_empty() {
        return Err(UserError::usage("no channels to install from")
            .with_hint("pass -c CHANNEL, or set `channels:` in ~/.config/envmod/config.yaml")
            .into());
    }
    raw.iter().map(|c| resolve(c, alias, cwd)).collect()
}

fn bad_channel(raw: &str, e: impl std::fmt::Display) -> anyhow::Error {
    let shown = redact_text(&e.to_string(), raw);
    UserError::usage(format!("invalid channel {:?}: {shown}", display_raw(raw)))
        .with_hint("give a channel name (conda-forge), a URL, or a directory path")
        .into()
}

/// How a channel is shown to users and stored in manifests: a password or `/t/TOKEN/` is
/// masked, so it never reaches a terminal, a log or a manifest that others can read.
pub fn display(channel: &Channel) -> String {
    redacted(channel.base_url.url())
        .trim_end_matches('/')
        .to_string()
}

fn redacted(url: &url::Url) -> String {
    rattler_redaction::redact_url_for_display(url, rattler_redaction::DEFAULT_REDACTION_STR)
        .unwrap_or_else(|| rattler_redaction::strip_url_for_serialization(url))
        .to_string()
}

/// A channel argument as typed, masked the same way when it is a URL with credentials.
fn display_raw(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(url) if url.password().is_some() || url.path().starts_with("/t/") => redacted(&url),
        _ => raw.to_string(),
    }
}

/// The secrets of a channel URL, as they may appear in text: the password (raw and
/// percent-decoded) and the `/t/TOKEN/` token.
fn secrets_of(raw: &str) -> Vec<String> {
    let Ok(url) = url::Url::parse(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(password) = url.password() {
        out.push(password.to_string());
        out.push(percent_decoded(password));
    }
    let mut segments = url.path_segments().into_iter().flatten();
    if segments.next() == Some("t")
        && let Some(token) = segments.next()
        && !token.is_empty()
    {
        out.push(token.to_string());
    }
    out.retain(|s| !s.is_empty());
    out
}

fn percent_decoded(s: &str) -> String {
    // form_urlencoded decodes `+` as a space; a password's `+` is a plus.
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// `text` with every secret of the channel URL `raw` masked: error messages from the HTTP
/// stack quote request URLs, credentials included.
pub(crate) fn redact_text(text: &str, raw: &str) -> String {
    let mut out = text.to_string();
    for secret in secrets_of(raw) {
        out = out.replace(&secret, rattler_redaction::DEFAULT_REDACTION_STR);
    }
    out
}

/// [`redact_text`] for every channel of a request.
pub(crate) fn redact_text_for(text: &str, channels: &[Channel]) -> String {
    channels.iter().fold(text.to_string(), |t, c| {
        redact_text(&t, c.base_url.url().as_str())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_urls_and_paths() {
        let alias = url::Url::parse("https://mirror.example.org/conda").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("local/noarch")).unwrap();
        let url = |raw: &str| display(&resolve(raw, &alias, dir.path()).unwrap());
        assert_eq!(
            url("conda-forge"),
            "https://mirror.example.org/conda/conda-forge"
        );
        assert_eq!(
            url("conda-forge/label/dev"),
            "https://mirror.example.org/conda/conda-forge/label/dev"
        );
        assert_eq!(
            url("https://other.example.org/chan"),
            "https://other.example.org/chan"
        );
        let local = format!(
            "file://{}",
            dir.path().canonicalize().unwrap().join("local").display()
        );
        assert_eq!(url("./local"), local);
        assert_eq!(url("local/"), local);
        assert!(resolve("./missing", &alias, dir.path()).is_err());
    }

    fn usage_message(err: anyhow::Error) -> String {
        let user = err.downcast_ref::<UserError>().expect("a UserError");
        assert_eq!(user.kind, crate::error::ErrorKind::Usage);
        assert!(!user.message.contains('\n'), "{}", user.message);
        assert!(user.hint.is_some());
        user.message.clone()
    }

    #[test]
    fn empty_and_control_character_channels_are_usage_errors() {
        let alias = url::Url::parse("https://mirror.example.org/conda").unwrap();
        let cwd = Path::new("/");
        for raw in [
            "",
            "  ",
            "conda-forge\n",
            "conda\rforge",
            "https://h.example/c\u{1b}[2J",
        ] {
            let msg = usage_message(resolve(raw, &alias, cwd).unwrap_err());
            assert!(!msg.contains('\u{1b}') && !msg.contains('\r'), "{msg:?}");
        }
        let msg = usage_message(resolve_all(&[], &alias, cwd).unwrap_err());
        assert!(msg.contains("no channels"), "{msg}");
        assert!(resolve_all(&["".to_string()], &alias, cwd).is_err());
        assert_eq!(
            resolve_all(&["conda-forge".to_string()], &alias, cwd)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn credentials_never_show() {
        let alias = url::Url::parse("https://mirror.example.org/conda").unwrap();
        let cwd = Path::new("/");
        let shown = display(&resolve("https://user:s3cret@h.example/chan", &alias, cwd).unwrap());
        assert_eq!(shown, "https://user:********@h.example/chan");
        let shown = display(&resolve("https://h.example/t/tk-42/chan", &alias, cwd).unwrap());
        assert_eq!(shown, "https://h.example/t/********/chan");
        assert_eq!(
            redact_text(
                "error sending request for url (https://user:s3cret@h.example/chan/noarch/repodata.json)",
                "https://user:s3cret@h.example/chan"
            ),
            "error sending request for url (https://user:********@h.example/chan/noarch/repodata.json)"
        );
        // A percent-encoded password is masked in both spellings.
        let raw = "https://user:p%40ss@h.example/chan";
        assert!(!redact_text("p%40ss and p@ss", raw).contains("ss"));
        assert_eq!(
            redact_text("nothing secret", "conda-forge"),
            "nothing secret"
        );
    }
}

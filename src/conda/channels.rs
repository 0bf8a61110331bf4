//! Channel arguments as users write them: a name resolved through `channel_alias`, a URL,
//! or a local directory (relative or absolute) that becomes a `file://` URL.
//!
//! [`resolve`] is the only place a channel name becomes a URL: `-c`, the configured
//! channels, an environment file's `channels:`, a lock's channels and a spec's `chan::pkg`
//! all go through it. A site mirror (`channel_alias`) then serves every one of them, and a
//! spec's channel is the very channel `-c` names, which the solver compares with each record's.

use std::path::Path;

use anyhow::Result;
use rattler_conda_types::{Channel, ChannelConfig};
use rattler_networking::Authentication;

use crate::{conda::Credentials, error::UserError};

/// Resolve one channel argument. A word without `/` is a channel name; anything that looks
/// like a path is a directory, which must exist. A password or `/t/TOKEN/` in the URL (or in
/// the channel alias) moves into `credentials`, and the channel returned has none.
pub fn resolve(
    raw: &str,
    alias: &url::Url,
    cwd: &Path,
    credentials: &mut Credentials,
) -> Result<Channel> {
    let channel = resolve_with_secrets(raw, alias, cwd)?;
    take_secrets(raw, channel, alias, cwd, credentials)
}

fn resolve_with_secrets(raw: &str, alias: &url::Url, cwd: &Path) -> Result<Channel> {
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

/// Every channel argument, in order, and the credentials taken out of them. Solving against
/// no channel at all would only fail later with "package not found", which hides the real
/// mistake.
pub(crate) fn resolve_all(
    raw: &[String],
    alias: &url::Url,
    cwd: &Path,
) -> Result<(Vec<Channel>, Credentials)> {
    if raw.is_empty() {
        return Err(UserError::usage("no channels to install from")
            .with_hint("pass -c CHANNEL, or set `channels:` in ~/.config/envmod/config.yaml")
            .into());
    }
    let mut credentials = Credentials::default();
    let channels = raw
        .iter()
        .map(|c| resolve(c, alias, cwd, &mut credentials))
        .collect::<Result<_>>()?;
    Ok((channels, credentials))
}

/// The channel argument a spec's channel was written as: rattler's spec parser resolves
/// names against its built-in alias (`chan::pkg` → `https://conda.anaconda.org/chan/`), so a
/// channel that is that alias plus its own name was written as the name, and is resolved
/// again through the site's alias by [`resolve`]; any other is the URL (or directory) it
/// names.
pub(crate) fn as_written(channel: &Channel) -> String {
    let builtin = ChannelConfig::default_with_root_dir(std::path::PathBuf::from("/"));
    if let Some(name) = &channel.name
        && !name.contains("://")
        && !name.starts_with(['/', '.', '~'])
        && Channel::from_str(name, &builtin).is_ok_and(|c| c.base_url == channel.base_url)
    {
        return name.clone();
    }
    channel.base_url.url().to_string()
}

/// `channel` without the secrets of its URL, which go into `credentials` under the URL's
/// host: rattler writes channel URLs into its repodata cache and into package records, and
/// its authentication middleware adds them back to each request instead.
fn take_secrets(
    raw: &str,
    channel: Channel,
    alias: &url::Url,
    cwd: &Path,
    credentials: &mut Credentials,
) -> Result<Channel> {
    let (clean, auth) = split_secrets(channel.base_url.url()).map_err(|e| bad_channel(raw, e))?;
    if clean.as_str() == channel.base_url.url().as_str() {
        return Ok(channel);
    }
    if let Some(auth) = auth {
        let host = clean
            .host_str()
            .ok_or_else(|| bad_channel(raw, "credentials need a URL with a host"))?;
        credentials.add(host, auth)?;
    }
    // The name must lose the secrets too: it is derived from the URL path, `/t/TOKEN/`
    // included, and rattler copies it into every package record.
    let (clean_alias, _) = split_secrets(alias).map_err(|e| bad_channel(raw, e))?;
    let config = ChannelConfig {
        channel_alias: clean_alias,
        root_dir: cwd.to_path_buf(),
    };
    let name = config
        .strip_channel_alias(&clean)
        .or_else(|| Channel::from_url(clean.clone()).name);
    Ok(Channel {
        platforms: channel.platforms,
        base_url: clean.into(),
        name,
    })
}

/// `url` without a password or `/t/TOKEN/` segment, and the credential they held. A secret
/// that is the redaction mask (a manifest written by an older envmod recorded channels so)
/// is dropped without a credential, so that the user's stored credentials apply.
fn split_secrets(
    url: &url::Url,
) -> std::result::Result<(url::Url, Option<Authentication>), &'static str> {
    let mask = rattler_redaction::DEFAULT_REDACTION_STR;
    let mut clean = url.clone();
    let mut auth = None;
    // A user name without a password is no secret and stays in the URL. With a password,
    // both go: a user name left behind would make reqwest send an Authorization header of
    // its own, and the middleware leaves requests that have one alone.
    if let Some(password) = url.password() {
        let _ = clean.set_username("");
        let _ = clean.set_password(None);
        if password != mask {
            auth = Some(Authentication::BasicHTTP {
                username: percent_decoded(url.username()),
                password: percent_decoded(password),
            });
        }
    }
    let segments: Vec<&str> = url.path_segments().into_iter().flatten().collect();
    if let ["t", token, rest @ ..] = segments.as_slice()
        && !token.is_empty()
    {
        clean.set_path(&format!("/{}", rest.join("/")));
        if *token != mask {
            if auth.is_some() {
                return Err("a URL with both a password and a /t/ token is not supported");
            }
            // As typed: the middleware puts it back into the path unchanged.
            auth = Some(Authentication::CondaToken((*token).to_string()));
        }
    }
    Ok((clean, auth))
}

fn bad_channel(raw: &str, e: impl std::fmt::Display) -> anyhow::Error {
    let shown = redact_text(&e.to_string(), raw);
    UserError::usage(format!("invalid channel {:?}: {shown}", display_raw(raw)))
        .with_hint("give a channel name (conda-forge), a URL, or a directory path")
        .into()
}

/// How a channel is shown to users and stored in manifests. Channels from [`resolve`] hold no
/// secrets; a password or `/t/TOKEN/` in any other is masked, so it never reaches a
/// terminal, a log or a manifest that others can read.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_labels_urls_and_paths() {
        let alias = url::Url::parse("https://mirror.example.org/conda").unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("local/noarch")).unwrap();
        let url = |raw: &str| {
            display(&resolve(raw, &alias, dir.path(), &mut Credentials::default()).unwrap())
        };
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
        assert!(resolve("./missing", &alias, dir.path(), &mut Credentials::default()).is_err());
    }

    #[test]
    fn a_spec_channel_resolves_as_it_was_written() {
        use rattler_conda_types::{MatchSpec, ParseMatchSpecOptions};
        let alias = url::Url::parse("file:///srv/mirror").unwrap();
        let cwd = Path::new("/");
        let via_spec = |spec: &str| {
            let parsed = MatchSpec::from_str(spec, ParseMatchSpecOptions::strict()).unwrap();
            let written = as_written(parsed.channel.as_deref().unwrap());
            display(&resolve(&written, &alias, cwd, &mut Credentials::default()).unwrap())
        };
        let via_c =
            |raw: &str| display(&resolve(raw, &alias, cwd, &mut Credentials::default()).unwrap());
        for chan in [
            "chan",
            "chan/label/dev",
            "https://other.example.org/chan",
            "file:///srv/elsewhere/chan",
        ] {
            assert_eq!(via_spec(&format!("{chan}::alpha")), via_c(chan), "{chan}");
        }
        assert_eq!(via_spec("chan::alpha"), "file:///srv/mirror/chan");
        assert_eq!(
            via_spec("alpha[channel=chan/label/dev]"),
            "file:///srv/mirror/chan/label/dev"
        );
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
            let msg =
                usage_message(resolve(raw, &alias, cwd, &mut Credentials::default()).unwrap_err());
            assert!(!msg.contains('\u{1b}') && !msg.contains('\r'), "{msg:?}");
        }
        let msg = usage_message(resolve_all(&[], &alias, cwd).unwrap_err());
        assert!(msg.contains("no channels"), "{msg}");
        assert!(resolve_all(&["".to_string()], &alias, cwd).is_err());
        assert_eq!(
            resolve_all(&["conda-forge".to_string()], &alias, cwd)
                .unwrap()
                .0
                .len(),
            1
        );
    }

    fn basic(username: &str, password: &str) -> Authentication {
        Authentication::BasicHTTP {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn credentials_leave_the_channel_for_the_client() {
        let alias = url::Url::parse("https://mirror.example.org/conda").unwrap();
        let cwd = Path::new("/");
        let raw = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (channels, creds) = resolve_all(
            &raw(&[
                "https://user:p%40ss@h.example/chan",
                "https://h.example/other",
                "https://t.example/t/tk-42/chan/label/dev",
                "conda-forge",
            ]),
            &alias,
            cwd,
        )
        .unwrap();
        let shown: Vec<String> = channels.iter().map(display).collect();
        assert_eq!(
            shown,
            [
                "https://h.example/chan",
                "https://h.example/other",
                "https://t.example/chan/label/dev",
                "https://mirror.example.org/conda/conda-forge",
            ]
        );
        // The name is copied into package records; it must not keep the token either.
        assert_eq!(channels[2].name.as_deref(), Some("chan/label/dev"));
        assert_eq!(creds.get("h.example"), Some(&basic("user", "p@ss")));
        assert_eq!(
            creds.get("t.example"),
            Some(&Authentication::CondaToken("tk-42".into()))
        );
        assert_eq!(
            creds.redact("GET https://t.example/t/tk-42/chan failed; p@ss"),
            "GET https://t.example/t/********/chan failed; ********"
        );

        // Credentials on the alias reach channels named through it.
        let secret_alias = url::Url::parse("https://u:pw@mirror.example.org/conda").unwrap();
        let (channels, creds) = resolve_all(&raw(&["conda-forge"]), &secret_alias, cwd).unwrap();
        assert_eq!(
            display(&channels[0]),
            "https://mirror.example.org/conda/conda-forge"
        );
        assert_eq!(channels[0].name.as_deref(), Some("conda-forge"));
        assert_eq!(creds.get("mirror.example.org"), Some(&basic("u", "pw")));

        // A masked secret, as older manifests recorded channels, is no credential: the
        // user's stored credentials apply instead of the mask.
        let (channels, creds) = resolve_all(
            &raw(&[
                "https://user:********@h.example/chan",
                "https://t.example/t/********/chan",
            ]),
            &alias,
            cwd,
        )
        .unwrap();
        assert_eq!(display(&channels[0]), "https://h.example/chan");
        assert_eq!(display(&channels[1]), "https://t.example/chan");
        assert_eq!(creds, Credentials::default());

        // A user name alone is no secret and stays.
        let (channels, creds) =
            resolve_all(&raw(&["https://user@h.example/chan"]), &alias, cwd).unwrap();
        assert_eq!(display(&channels[0]), "https://user@h.example/chan");
        assert_eq!(creds, Credentials::default());
    }

    #[test]
    fn credentials_that_cannot_be_sent_are_usage_errors() {
        let alias = url::Url::parse("https://mirror.example.org/conda").unwrap();
        let cwd = Path::new("/");
        let conflicting = [
            "https://a:pw-1@h.example/x".to_string(),
            "https://a:pw-2@h.example/y".to_string(),
        ];
        let msg = usage_message(resolve_all(&conflicting, &alias, cwd).unwrap_err());
        assert!(msg.contains("h.example") && !msg.contains("pw-"), "{msg}");
        let both = ["https://a:s3cret@h.example/t/tk-42/x".to_string()];
        let msg = usage_message(resolve_all(&both, &alias, cwd).unwrap_err());
        assert!(!msg.contains("s3cret") && !msg.contains("tk-42"), "{msg}");
        // The same credentials twice are fine.
        let same = [
            "https://a:one@h.example/x".to_string(),
            "https://a:one@h.example/y".to_string(),
        ];
        assert_eq!(resolve_all(&same, &alias, cwd).unwrap().0.len(), 2);
    }

    #[test]
    fn error_text_never_shows_credentials() {
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

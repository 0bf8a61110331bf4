//! The HTTP client for repodata and package downloads, with the credentials taken out of
//! channel URLs. A secret that stays in a channel URL ends up wherever rattler writes that
//! URL (the repodata cache records it); held here, it only travels in request headers.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
};

use anyhow::{Context, Result};
use rattler_networking::{
    Authentication, AuthenticationMiddleware, AuthenticationStorage,
    authentication_storage::{StorageBackend, backends::memory::MemoryStorage},
};
use reqwest_middleware::ClientWithMiddleware;

use crate::error::UserError;

/// Credentials from channel URLs, keyed by host: rattler's authentication middleware looks
/// them up by the host of each request, so every channel on one host shares them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    by_host: BTreeMap<String, Authentication>,
}

impl std::fmt::Debug for Credentials {
    // Hosts only: a debug print must not be a way for a secret to reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_host.keys()).finish()
    }
}

impl Credentials {
    /// Remember `auth` for `host`. Two different secrets for one host cannot both be sent,
    /// and silently using one of them would fail in a confusing way later.
    pub(crate) fn add(&mut self, host: &str, auth: Authentication) -> Result<()> {
        match self.by_host.get(host) {
            Some(known) if *known != auth => Err(UserError::usage(format!(
                "two channels on {host} carry different credentials"
            ))
            .with_hint("requests are authenticated per host: give every channel on that host the same user and password or token")
            .into()),
            _ => {
                self.by_host.insert(host.to_string(), auth);
                Ok(())
            }
        }
    }

    /// `text` with every secret masked: HTTP errors quote request URLs, and the middleware
    /// has put a `/t/TOKEN/` back into them.
    pub(crate) fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for auth in self.by_host.values() {
            let secret = match auth {
                Authentication::BasicHTTP { password, .. } => password,
                Authentication::CondaToken(token) => token,
                _ => continue,
            };
            if !secret.is_empty() {
                out = out.replace(secret.as_str(), rattler_redaction::DEFAULT_REDACTION_STR);
            }
        }
        out
    }

    #[cfg(test)]
    pub(crate) fn get(&self, host: &str) -> Option<&Authentication> {
        self.by_host.get(host)
    }
}

/// One HTTP client for a command, shared by the gateway and the installer. Built on first
/// use: a command that resolves no channel never reads the user's credential stores.
#[derive(Clone, Default)]
pub struct Network {
    credentials: Credentials,
    client: Arc<OnceLock<ClientWithMiddleware>>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl Network {
    pub(crate) fn new(credentials: Credentials) -> Self {
        Self {
            credentials,
            client: Arc::default(),
        }
    }

    /// [`Credentials::redact`] for this client's credentials.
    pub(crate) fn redact(&self, text: &str) -> String {
        self.credentials.redact(text)
    }

    pub(crate) fn client(&self) -> Result<ClientWithMiddleware> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let built = build_client(&self.credentials)?;
        Ok(self.client.get_or_init(|| built).clone())
    }
}

fn build_client(credentials: &Credentials) -> Result<ClientWithMiddleware> {
    // Credentials typed with the channel come first; after them rattler's own stores
    // (`$RATTLER_AUTH_FILE`, the keyring, ~/.rattler/credentials.json, ~/.netrc), so what
    // users set up with `pixi auth login` or netrc works for envmod too.
    let typed = MemoryStorage::new();
    for (host, auth) in &credentials.by_host {
        typed
            .store(host, auth)
            .with_context(|| format!("cannot hold the credentials for {host}"))?;
    }
    let mut storage = AuthenticationStorage::empty();
    storage.add_backend(Arc::new(typed));
    let stored = AuthenticationStorage::from_env_and_defaults().map_err(|e| {
        UserError::failure(format!("cannot read the stored channel credentials: {e}"))
            .with_hint("fix or remove the file named above ($RATTLER_AUTH_FILE, ~/.rattler/credentials.json or ~/.netrc)")
    })?;
    for backend in stored.backends {
        storage.add_backend(backend);
    }
    let client = reqwest::Client::builder()
        .user_agent(concat!("envmod/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot set up the HTTP client")?;
    Ok(reqwest_middleware::ClientBuilder::new(client)
        .with(AuthenticationMiddleware::from_auth_storage(storage))
        .build())
}

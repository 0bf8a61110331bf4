//! An environment on disk: its prefix, the manifest envmod keeps inside it, the staging and
//! locking that make creation atomic, and the registry that lets `list` find it again.

pub mod cleanup;
pub mod failpoint;
pub mod lock;
pub mod manifest;
pub mod registry;
pub mod swap;
pub mod venv;

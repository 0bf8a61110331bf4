//! An environment on disk: which directory a command names (`prefix`), the manifest envmod
//! keeps inside it, the locking, staging and swapping that make every change atomic, the
//! registry that lets `list` find it again, and the pipeline that ties them together: a
//! request becomes a plan (`plan`), which one build step carries out (`apply`); and what only
//! reads (`snapshot`, `show`) or removes (`delete`, `clean`) an environment.

pub(crate) mod adopt;
pub(crate) mod apply;
pub(crate) mod clean;
pub(crate) mod cleanup;
pub(crate) mod ctx;
pub(crate) mod delete;
pub(crate) mod from_file;
pub(crate) mod health;
pub(crate) mod lock;
pub(crate) mod plan;
pub(crate) mod prefix;
pub(crate) mod record;
pub(crate) mod registry;
pub(crate) mod request;
pub(crate) mod show;
pub(crate) mod snapshot;
pub(crate) mod stack;
pub(crate) mod swap;
pub(crate) mod undo;
pub(crate) mod venv;

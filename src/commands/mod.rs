//! One file per subcommand. Each takes its resolved settings and a printer, and nothing else.

pub(crate) mod adopt;
pub(crate) mod change;
pub(crate) mod clean;
pub(crate) mod completions;
pub(crate) mod config;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod doctor;
pub(crate) mod export;
pub(crate) mod freeze;
pub(crate) mod index;
pub(crate) mod kernel;
pub(crate) mod list;
pub(crate) mod module;
pub(crate) mod share;
pub(crate) mod shell_hook;
pub(crate) mod show;

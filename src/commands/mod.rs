//! One file per subcommand. Each takes its resolved settings and a printer, and nothing else.

pub mod change;
pub mod completions;
pub mod config;
pub mod create;
pub mod delete;
pub mod index;
pub mod list;
pub mod module;

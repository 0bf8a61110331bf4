//! envmod's integration tests, as one test binary with a module per area: every test binary
//! links rattler, so one binary links it once. Run one module with
//! `cargo test --features test-hooks --test it cli::` (tests/run runs them all).
//!
//! `common` is the shared harness (tests/common/); tests/data holds the fixture files and
//! tests/it/snapshots the insta snapshots.

#[path = "../common/mod.rs"]
mod common;

mod activate;
mod adopt;
mod channel;
mod clean;
mod cli;
mod cli_snapshots;
mod clone;
mod conda;
mod conda_hardening;
mod course;
mod envfiles;
mod group;
mod hardening;
mod hierarchy;
mod kernels;
mod loaded;
mod mirror;
mod module_names;
mod modules;
mod provides;
mod pyc;
mod settings;
mod sharing;
mod show;
mod strangers;
mod update;

//! Named points where the test suite can kill envmod with SIGKILL, to prove that a kill at
//! that exact moment leaves a consistent state. `ENVMOD_TEST_KILL_AT=<name>` (SIGKILL) or `ENVMOD_TEST_TERM_AT=<name>`
//! (SIGTERM) arms one point, and `ENVMOD_TEST_PAUSE_AT=<name>` makes envmod wait there
//! (`ENVMOD_TEST_PAUSE_MS`, 300 by default) so that a racing process surely gets its turn;
//! only in a build with the `test-hooks` feature: anywhere else every point is a no-op.

#[cfg(feature = "test-hooks")]
pub(crate) fn hit(name: &str) {
    if std::env::var_os("ENVMOD_TEST_KILL_AT").is_some_and(|v| v == name) {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGKILL);
    }
    // SIGTERM instead, and wait for the handler: what a user's Ctrl-C at this point prints.
    if std::env::var_os("ENVMOD_TEST_TERM_AT").is_some_and(|v| v == name) {
        let _ = nix::sys::signal::kill(nix::unistd::getpid(), nix::sys::signal::SIGTERM);
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
    if std::env::var_os("ENVMOD_TEST_PAUSE_AT").is_some_and(|v| v == name) {
        let ms = timeout_ms("PAUSE").unwrap_or(300);
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn hit(_name: &str) {}

/// A point reached once per file of a tree: armed as `<name>:<file name>`, so a test can stop
/// at one file among thousands.
#[cfg(feature = "test-hooks")]
pub(crate) fn hit_on(name: &str, file: &std::path::Path) {
    if let Some(f) = file.file_name() {
        hit(&format!("{name}:{}", f.to_string_lossy()));
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn hit_on(_name: &str, _file: &std::path::Path) {}

/// A test's override of a timeout, in milliseconds (`ENVMOD_TEST_<WHAT>_MS`); only in a
/// build with the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
pub(crate) fn timeout_ms(what: &str) -> Option<u64> {
    std::env::var(format!("ENVMOD_TEST_{what}_MS"))
        .ok()
        .and_then(|v| v.parse().ok())
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn timeout_ms(_what: &str) -> Option<u64> {
    None
}

/// A test's override of a size limit, in bytes (`ENVMOD_TEST_<WHAT>`); only in a build with
/// the `test-hooks` feature.
#[cfg(feature = "test-hooks")]
pub(crate) fn limit(what: &str) -> Option<u64> {
    std::env::var(format!("ENVMOD_TEST_{what}"))
        .ok()
        .and_then(|v| v.parse().ok())
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn limit(_what: &str) -> Option<u64> {
    None
}

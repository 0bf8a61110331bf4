//! Named points where the test suite can kill envmod with SIGKILL, to prove that a kill at
//! that exact moment leaves a consistent state. `ENVMOD_TEST_KILL_AT=<name>` (SIGKILL) or `ENVMOD_TEST_TERM_AT=<name>`
//! (SIGTERM) arms one point,
//! and only in a build with the `test-hooks` feature: anywhere else every point is a no-op.

#[cfg(feature = "test-hooks")]
pub(crate) fn hit(name: &str) {
    if std::env::var_os("ENVMOD_TEST_KILL_AT").is_some_and(|v| v == name) {
        // SAFETY: kill(2) on our own pid with a constant signal has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    // SIGTERM instead, and wait for the handler: what a user's Ctrl-C at this point prints.
    if std::env::var_os("ENVMOD_TEST_TERM_AT").is_some_and(|v| v == name) {
        // SAFETY: as above.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGTERM);
        }
        std::thread::sleep(std::time::Duration::from_secs(30));
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn hit(_name: &str) {}

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

//! Named points where the test suite can kill envmod with SIGKILL, to prove that a kill at
//! that exact moment leaves a consistent state. `ENVMOD_TEST_KILL_AT=<name>` arms one point;
//! unset (always, outside the tests) every point is a no-op.

pub fn hit(name: &str) {
    if std::env::var_os("ENVMOD_TEST_KILL_AT").is_some_and(|v| v == name) {
        // SAFETY: kill(2) on our own pid with a constant signal has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

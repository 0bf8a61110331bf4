//! Work that takes itself back when envmod is interrupted. Most work is made in a directory
//! of its own, which `cleanup` removes on an interrupt; an adoption writes into an
//! environment that was there before, so only the work itself knows what to take back. The
//! signal handler waits for it to do so before the process exits.

use std::{
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

/// Set by the signal handler first of all, so work that takes itself back (see
/// `TakesItselfBack`) knows a failure it meets, or a step it just finished, was interrupted.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// Held while work that takes itself back on an interrupt is under way: the handler waits for
/// it (see `cleanup::remove_pending`), so that work is either taken back or finished when the process
/// exits.
static SELF_UNDOING: Mutex<()> = Mutex::new(());

/// How long the handler waits for such work before it exits anyway: the work's programs were
/// stopped, so taking back what it wrote is a few file operations.
const UNDO_WAIT: Duration = Duration::from_secs(10);

pub(crate) fn set_interrupted() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

pub(crate) fn was_interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Work that cannot be a directory removed on an interrupt (an adoption writes into an
/// environment that was there before), and so takes itself back: it holds this while it
/// writes, checks `was_interrupted` after its last step and on a failure, and then, after
/// taking back what it wrote, `exit_after_undo`.
pub(crate) struct TakesItselfBack {
    _held: MutexGuard<'static, ()>,
}

impl TakesItselfBack {
    pub(crate) fn begin() -> Self {
        Self {
            _held: SELF_UNDOING.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Let the signal handler, waiting for this, say what was left and end the process.
    pub(crate) fn exit_after_undo(self) -> ! {
        drop(self);
        loop {
            std::thread::park();
        }
    }
}

/// The handler's wait for work that takes itself back; the lock stays held until the
/// process is gone, so no such work begins after it.
pub(super) fn wait_for_self_undoing() {
    // The handler runs on one of the runtime's workers, and the work it waits for may need
    // the runtime to see its stopped programs end.
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(wait_for_lock),
        _ => wait_for_lock(),
    }
}

fn wait_for_lock() {
    let until = Instant::now() + UNDO_WAIT;
    loop {
        match SELF_UNDOING.try_lock() {
            Ok(held) => return std::mem::forget(held),
            Err(std::sync::TryLockError::Poisoned(e)) => return std::mem::forget(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(std::sync::TryLockError::WouldBlock) => return,
        }
    }
}

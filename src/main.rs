use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};

/// Solving a large channel allocates millions of small records; jemalloc does that faster
/// and with less fragmentation than glibc's allocator (measured in docs/performance.md).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    // Registered here, before any work starts, so no interrupt can arrive between the first
    // directory envmod creates and the handler that removes it.
    if let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        tokio::spawn(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            envmod::interrupted();
        });
    }
    envmod::run().await
}

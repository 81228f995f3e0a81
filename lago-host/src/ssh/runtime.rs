//! The one tokio runtime behind the synchronous SSH API.
//!
//! Created on first use, multi-threaded, shared by every [`SshPool`](super::SshPool)
//! so that operations on many VMs run concurrently on a few threads.

use std::future::Future;
use std::sync::OnceLock;

static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();

pub(crate) fn runtime() -> &'static tokio::runtime::Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("lago-ssh")
            .enable_all()
            .build()
            .expect("cannot create the tokio runtime of the SSH layer")
    })
}

/// Runs `fut` on the SSH runtime and waits for it.
///
/// Works from any thread. From a thread that is itself inside a tokio
/// runtime (where `block_on` would panic) the future is spawned and the
/// thread blocks on a plain channel; calling the synchronous API from async
/// code still blocks that thread, so async callers should prefer
/// `spawn_blocking`.
pub(crate) fn block_on<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return runtime().block_on(fut);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let task = runtime().spawn(fut);
    runtime().spawn(async move {
        let _ = tx.send(task.await);
    });
    match rx.recv() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        _ => panic!("the SSH runtime dropped a task"),
    }
}

//! The bounded CPU pool: decode, warp and encode run here, never on async runtime threads.

use std::future::Future;
use std::sync::Arc;

use crate::EngineError;

/// A fixed-size rayon pool; `run` hands a closure to it and awaits the result.
#[derive(Debug, Clone)]
pub struct CpuPool {
    pool: Arc<rayon::ThreadPool>,
}

impl CpuPool {
    /// A pool of `threads` workers (0 = one per core).
    pub fn new(threads: usize) -> Result<Self, EngineError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("kiln-cpu-{i}"))
            .build()
            .map_err(|e| EngineError::Internal {
                reason: format!("cannot start CPU pool: {e}"),
            })?;
        Ok(Self {
            pool: Arc::new(pool),
        })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` on the pool and waits for it without blocking the async runtime.
    pub async fn run<T, F>(&self, f: F) -> Result<T, EngineError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        self.start(f).await
    }

    /// Hands `f` to the pool now (not when the future is first polled) and returns a future
    /// of its result, so the caller can start the next stage of a pipeline before awaiting
    /// this one.
    pub fn start<T, F>(
        &self,
        f: F,
    ) -> impl Future<Output = Result<T, EngineError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.pool.spawn(move || {
            // The receiver may be gone (request cancelled); nothing to do then.
            let _ = tx.send(f());
        });
        async move {
            rx.await.map_err(|_| EngineError::Internal {
                reason: "CPU task panicked or was dropped".into(),
            })
        }
    }

    /// Runs `f` inside the pool synchronously (for callers already off the async runtime).
    pub fn install<T: Send, F: FnOnce() -> T + Send>(&self, f: F) -> T {
        self.pool.install(f)
    }
}

//! The rendered-tile service: a byte-weighted cache, coalescing of identical concurrent
//! requests (one render, many waiters), admission control and per-stage timings.
//!
//! Admission: at most `max_queue` renders may be waiting or running; the next one is refused
//! at once with 503 + `Retry-After` instead of letting latency grow without bound. Of those,
//! `max_running` run at a time, admitted in arrival order (tokio's semaphore is fair), so
//! tiles finish in the order they were asked for and the tail latency stays close to the
//! queue length times the render time.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use tokio::sync::Semaphore;

use kiln_engine::{RenderKey, RenderOutput};

use crate::error::ApiError;

/// One encoded tile as cached and served.
#[derive(Debug, Clone)]
pub struct RenderedTile {
    pub bytes: Bytes,
    pub etag: Arc<str>,
    pub content_type: &'static str,
    /// `Server-Timing` of the render that produced it.
    pub timing: Arc<str>,
    /// Which sources of the first layer were read and filled pixels.
    pub sources: Arc<kiln_engine::SourceTrace>,
}

#[derive(Debug, Default)]
pub struct Counters {
    pub hits: AtomicU64,
    pub renders: AtomicU64,
    pub rejected: AtomicU64,
}

#[derive(Debug)]
pub struct TileService {
    cache: moka::future::Cache<RenderKey, RenderedTile>,
    queue: Arc<Semaphore>,
    running: Arc<Semaphore>,
    timeout: Duration,
    pub counters: Counters,
}

impl TileService {
    pub fn new(cache_bytes: u64, max_queue: usize, max_running: usize, timeout: Duration) -> Self {
        Self {
            cache: moka::future::Cache::builder()
                // What an entry keeps: the tile's bytes (shrunk to fit before insertion, so
                // length is allocation), the key, the ETag, the timing text and moka's entry.
                .weigher(|_k: &RenderKey, t: &RenderedTile| {
                    let kept = t.bytes.len()
                        + std::mem::size_of::<RenderKey>()
                        + t.etag.len()
                        + t.timing.len()
                        + 256;
                    u32::try_from(kept).unwrap_or(u32::MAX)
                })
                .max_capacity(cache_bytes)
                .build(),
            queue: Arc::new(Semaphore::new(max_queue.max(1))),
            running: Arc::new(Semaphore::new(max_running.max(1))),
            timeout,
            counters: Counters::default(),
        }
    }

    /// The cached tile for `key`, or the result of `render` (run once however many requests
    /// ask for `key` at the same time). Returns whether it came from the cache.
    pub async fn get_or_render<F>(
        &self,
        key: RenderKey,
        render: F,
    ) -> Result<(RenderedTile, bool), ApiError>
    where
        F: Future<Output = Result<RenderOutput, ApiError>> + Send,
    {
        if let Some(hit) = self.cache.get(&key).await {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((hit, true));
        }
        let queue = self.queue.clone();
        let running = self.running.clone();
        let timeout = self.timeout;
        let counters = &self.counters;
        let init = async move {
            let Ok(_queued) = queue.try_acquire_owned() else {
                counters.rejected.fetch_add(1, Ordering::Relaxed);
                return Err(ApiError::busy(1));
            };
            let arrived = Instant::now();
            let work = async {
                let _running = running
                    .acquire_owned()
                    .await
                    .map_err(|_| ApiError::internal("tile service closed"))?;
                let waited = arrived.elapsed();
                let out = render.await?;
                Ok::<_, ApiError>((out, waited))
            };
            let (out, waited) = tokio::time::timeout(timeout, work).await.map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the tile took longer than {} s to render",
                        timeout.as_secs_f64()
                    ),
                )
            })??;
            counters.renders.fetch_add(1, Ordering::Relaxed);
            let total = arrived.elapsed();
            let timing = format!(
                "queue;dur={:.2}, read;dur={:.2}, encode;dur={:.2}, total;dur={:.2}",
                ms(waited),
                ms(out.timings.read),
                ms(out.timings.encode),
                ms(total)
            );
            let (bytes, content_type, sources) = (out.bytes, out.content_type, out.sources);
            Ok(RenderedTile {
                etag: etag_of(&bytes).into(),
                // Encoders reserve generously; a cached tile must not keep that slack (an
                // entry weighed by its length held several times it, RSS grew past budget).
                bytes: {
                    let mut bytes = bytes;
                    bytes.shrink_to_fit();
                    Bytes::from(bytes)
                },
                content_type,
                timing: timing.into(),
                sources: Arc::new(sources),
            })
        };
        self.cache
            .try_get_with(key, init)
            .await
            .map(|t| (t, false))
            .map_err(|e: Arc<ApiError>| (*e).clone())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A strong ETag from the bytes (tiles are deterministic, so equal bytes mean equal tiles):
/// the first 128 bits of their SHA-256 and their length, the same in every process and
/// release, so several servers behind one cache agree.
pub fn etag_of(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{hex}-{:x}\"", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    use kiln_engine::Timings;

    fn key(name: &str) -> RenderKey {
        let mut k = [0u8; 16];
        k[..name.len()].copy_from_slice(name.as_bytes());
        RenderKey(k)
    }

    fn out(bytes: Vec<u8>) -> RenderOutput {
        RenderOutput {
            bytes,
            content_type: "image/png",
            timings: Timings::default(),
            sources: Default::default(),
        }
    }

    fn service(queue: usize) -> TileService {
        TileService::new(1 << 20, queue, 1, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn identical_concurrent_requests_render_once() {
        let svc = Arc::new(service(16));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (svc, calls) = (svc.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                svc.get_or_render(key("k"), async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(out(vec![1, 2, 3]))
                })
                .await
                .map(|(t, _)| t.bytes)
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().as_ref(), &[1, 2, 3]);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let (_, hit) = svc
            .get_or_render(key("k"), async { Err(ApiError::internal("must not run")) })
            .await
            .unwrap();
        assert!(hit);
    }

    #[tokio::test]
    async fn a_full_queue_answers_503_with_retry_after() {
        let svc = Arc::new(service(1));
        let slow = {
            let svc = svc.clone();
            tokio::spawn(async move {
                svc.get_or_render(key("a"), async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(out(vec![0]))
                })
                .await
                .is_ok()
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let refused = svc
            .get_or_render(key("b"), async { Ok(out(vec![1])) })
            .await
            .unwrap_err();
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(slow.await.unwrap());
        assert_eq!(svc.counters.rejected.load(Ordering::SeqCst), 1);
        // Errors are not cached: once the queue drains, "b" renders.
        assert!(svc
            .get_or_render(key("b"), async { Ok(out(vec![1])) })
            .await
            .is_ok());
    }

    #[test]
    fn etags_follow_the_bytes() {
        assert_eq!(etag_of(b"abc"), etag_of(b"abc"));
        assert_ne!(etag_of(b"abc"), etag_of(b"abd"));
        // SHA-256("abc") from FIPS 180-2's example: fixed across processes and releases.
        assert_eq!(etag_of(b"abc"), "\"ba7816bf8f01cfea414140de5dae2223-3\"");
    }
}

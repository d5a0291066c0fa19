//! Failure injection between the statements of a write transaction, so the conformance suite
//! can prove that a write failing midway leaves no trace. Production builds (neither `test`
//! nor the `conformance` feature) compile [`Faults::step`] to a no-op.

use crate::CatalogError;

#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// 0: disarmed; n > 0: the n-th step from now fails.
    #[cfg(any(test, feature = "conformance"))]
    remaining: std::sync::atomic::AtomicU32,
}

impl Faults {
    /// Called after each statement of a write transaction.
    pub(crate) fn step(&self, catalog: &str) -> Result<(), CatalogError> {
        #[cfg(any(test, feature = "conformance"))]
        {
            use std::sync::atomic::Ordering;
            let previous = self
                .remaining
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |r| r.checked_sub(1));
            if previous == Ok(1) {
                return Err(CatalogError::Backend {
                    catalog: catalog.to_owned(),
                    operation: "write",
                    source: "injected failure (test hook)".into(),
                });
            }
        }
        let _ = catalog;
        Ok(())
    }

    /// The next write lets `statements` statements succeed and then fails.
    #[cfg(any(test, feature = "conformance"))]
    pub(crate) fn fail_after(&self, statements: u32) {
        self.remaining.store(
            statements.saturating_add(1),
            std::sync::atomic::Ordering::SeqCst,
        );
    }
}

//! What the `serve` (real `kiln serve` processes) and `api` (the router in process) tests
//! share: the ingested test catalog, the two ways of asking the API, and expected pixels.
//! Each test binary uses part of it.
#![allow(dead_code)]

pub mod fixture;
pub mod http;
pub mod npy;
pub mod pixels;

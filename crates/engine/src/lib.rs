//! `kiln-engine`: the use cases.

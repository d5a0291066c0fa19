//! `kiln-storage`: where bytes come from.

//! GeoKey directory parsing and the mapping from GeoKeys to a [`kiln_core::Crs`].

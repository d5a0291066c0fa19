//! Writing GeoTIFFs (single tiles now; the COG writer of `kiln optimize` later).

//! Tile matrix sets (WebMercatorQuad first) and tile math.

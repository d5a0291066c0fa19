//! Warping source rasters into a destination grid (nearest, bilinear, cubic), mask-aware.

//! Products made from a warped tile: stretch, colormaps, RGB composition, image encoders.

//! Block decoding: decompression, predictors, byte order, sample layouts, colour models.
//!
//! CONTRACT (implemented here): `decode_block(header, ifd, block_index, bytes)` returns the
//! block as a [`Block`] with samples in band-sequential order (all of band 0, then band 1...),
//! `block_width` x `block_height` pixels (edge blocks keep the full block size; strips are
//! `width` x `rows_per_strip`, the last strip possibly shorter). Chunky blocks carry all
//! `samples_per_pixel` bands; separate-plane blocks carry one band. YCbCr JPEG decodes to RGB;
//! 1-bit masks decode to 0/255 `u8`.

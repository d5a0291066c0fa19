//! The TIFF structure of a COG: tag values, IFD plans and GDAL's COG layout (header, ghost
//! area, IFDs before data, data coarsest level first), serialised by [`crate::tiff_out`].

#[allow(clippy::wildcard_imports)]
use super::*;

pub(super) fn compression_code(c: Compression) -> Result<u16, CogError> {
    match c {
        Compression::None => Ok(1),
        Compression::Lzw => Ok(5),
        Compression::Deflate => Ok(8),
        Compression::Zstd => Ok(50000),
        Compression::Webp => Ok(50001),
        other => Err(unsupported(format!("writing {other:?} compression"))),
    }
}

pub(super) fn photometric_code(p: Photometric) -> u16 {
    match p {
        Photometric::MinIsWhite => 0,
        Photometric::MinIsBlack => 1,
        Photometric::Rgb => 2,
        Photometric::Palette => 3,
        Photometric::Mask => 4,
        Photometric::Separated => 5,
        Photometric::YCbCr => 6,
        Photometric::Other(v) => v,
    }
}

/// One IFD to write: tags (offsets as placeholders) and the blocks it points to.
pub(super) struct IfdPlan {
    pub(super) entries: Vec<(u16, Value)>,
    /// (level, kind) of the blocks of this IFD.
    pub(super) level: usize,
    pub(super) kind: usize,
}

pub(super) struct DataItem {
    pub(super) spool: Spooled,
    pub(super) file_offset: u64,
}

/// The serialised header (TIFF header, ghost area, IFDs) and the order of the data blocks.
pub(super) struct Plan {
    pub(super) head: Vec<u8>,
    pub(super) data: Vec<DataItem>,
    pub(super) leaders: bool,
}

pub(super) fn ghost_text(mask: bool) -> Vec<u8> {
    let mut body = String::from(
        "LAYOUT=IFDS_BEFORE_DATA\nBLOCK_ORDER=ROW_MAJOR\nBLOCK_LEADER=SIZE_AS_UINT4\n\
         BLOCK_TRAILER=LAST_4_BYTES_REPEATED\nKNOWN_INCOMPATIBLE_EDITION=NO\n ",
    );
    // Byte for byte what GDAL writes, including the space after the edition line.
    if mask {
        body.push_str("MASK_INTERLEAVED_WITH_IMAGERY=YES\n");
    }
    let mut out = format!("GDAL_STRUCTURAL_METADATA_SIZE={:06} bytes\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

impl Plan {
    pub(super) fn build(
        spec: &CogSpec,
        blocks: &[[Vec<Option<Spooled>>; 2]],
    ) -> Result<Self, CogError> {
        let ifds = ifd_plans(spec)?;
        let leaders = spec.ghost_area;
        let ghost = if spec.ghost_area {
            ghost_text(spec.mask)
        } else {
            Vec::new()
        };
        let mut bigtiff = spec.bigtiff == BigTiff::Always;
        loop {
            if let Some(plan) = Self::layout(&ifds, blocks, &ghost, leaders, bigtiff)? {
                return Ok(plan);
            }
            if bigtiff {
                return Err(CogError::TooLarge {
                    what: "COG",
                    reason: "layout does not fit BigTIFF".into(),
                });
            }
            bigtiff = true;
        }
    }

    /// Lays the file out; `None` when it does not fit classic TIFF (`bigtiff` false).
    pub(super) fn layout(
        ifds: &[IfdPlan],
        blocks: &[[Vec<Option<Spooled>>; 2]],
        ghost: &[u8],
        leaders: bool,
        bigtiff: bool,
    ) -> Result<Option<Self>, CogError> {
        let format = TiffFormat {
            order: ORDER,
            bigtiff,
        };
        // Every IFD's entries with tile offsets / byte counts of their final length (values
        // filled in below).
        let mut full = Vec::with_capacity(ifds.len());
        for ifd in ifds {
            let n = blocks[ifd.level][ifd.kind].len();
            let mut e = ifd.entries.clone();
            e.push((tag::TILE_OFFSETS, format.offsets(vec![0; n])?));
            e.push((tag::TILE_BYTE_COUNTS, format.offsets(vec![0; n])?));
            full.push(e);
        }
        let mut dirs = Directories::layout(format, ghost.to_vec(), full, 2);
        let data_start = dirs.data_start();
        // Data order: coarsest level first; per block, image then mask.
        let mut data = Vec::new();
        let mut placed: Vec<[Vec<(u64, u64)>; 2]> = blocks
            .iter()
            .map(|l| [vec![(0, 0); l[0].len()], vec![(0, 0); l[1].len()]])
            .collect();
        let mut pos = data_start;
        let lead = if leaders { 4 } else { 0 };
        for level in (0..blocks.len()).rev() {
            // Indexes three parallel tables (spool, image / mask, placement).
            #[allow(clippy::needless_range_loop)]
            for i in 0..blocks[level][0].len() {
                for k in 0..2 {
                    if let Some(Some(s)) = blocks[level][k].get(i) {
                        if s.len == 0 {
                            continue;
                        }
                        let off = pos + lead;
                        placed[level][k][i] = (off, s.len);
                        data.push(DataItem {
                            spool: *s,
                            file_offset: pos,
                        });
                        pos = off + s.len + lead;
                    }
                }
            }
        }
        if !bigtiff && pos > u64::from(u32::MAX) {
            return Ok(None);
        }
        for (n, ifd) in ifds.iter().enumerate() {
            let (offs, counts): (Vec<u64>, Vec<u64>) =
                placed[ifd.level][ifd.kind].iter().copied().unzip();
            dirs.set(n, tag::TILE_OFFSETS, format.offsets(offs)?)?;
            dirs.set(n, tag::TILE_BYTE_COUNTS, format.offsets(counts)?)?;
        }
        Ok(Some(Self {
            head: dirs.serialize()?,
            data,
            leaders,
        }))
    }
}

/// The tags of every IFD (without the tile offsets / byte counts), in file order.
pub(super) fn ifd_plans(spec: &CogSpec) -> Result<Vec<IfdPlan>, CogError> {
    let bands = usize::from(spec.bands);
    let bits = u16::try_from(spec.dtype.size_bytes() * 8).unwrap_or(8);
    let compression = compression_code(spec.encode.compression)?;
    let predictor = match spec.encode.compression {
        Compression::Deflate | Compression::Zstd | Compression::Lzw => {
            spec.encode.predictor_for(spec.dtype)
        }
        _ => Predictor::None,
    };
    let predictor_code = match predictor {
        Predictor::None => None,
        Predictor::Horizontal => Some(2u16),
        Predictor::FloatingPoint => Some(3),
    };
    let b = spec.block_size;
    let mut out = Vec::new();
    let mut overview_masks = Vec::new();
    for level in 0..spec.levels() {
        let (w, h) = spec.level_size(level).unwrap_or((0, 0));
        let mut e: Vec<(u16, Value)> = Vec::new();
        if level > 0 {
            e.push((tag::NEW_SUBFILE_TYPE, Value::Long(vec![1])));
        }
        e.push((tag::IMAGE_WIDTH, Value::Long(vec![w])));
        e.push((tag::IMAGE_LENGTH, Value::Long(vec![h])));
        e.push((tag::BITS_PER_SAMPLE, Value::Short(vec![bits; bands])));
        e.push((tag::COMPRESSION, Value::Short(vec![compression])));
        e.push((
            tag::PHOTOMETRIC,
            Value::Short(vec![photometric_code(spec.photometric)]),
        ));
        e.push((tag::SAMPLES_PER_PIXEL, Value::Short(vec![spec.bands])));
        e.push((tag::PLANAR_CONFIG, Value::Short(vec![1])));
        if let Some(p) = predictor_code {
            e.push((tag::PREDICTOR, Value::Short(vec![p])));
        }
        if let Some(pal) = &spec.palette {
            let mut v = Vec::with_capacity(pal.len() * 3);
            for c in 0..3 {
                v.extend(pal.iter().map(|rgb| rgb[c]));
            }
            e.push((tag::COLOR_MAP, Value::Short(v)));
        }
        e.push((tag::TILE_WIDTH, Value::Long(vec![b])));
        e.push((tag::TILE_LENGTH, Value::Long(vec![b])));
        if !spec.extra_samples.is_empty() {
            e.push((tag::EXTRA_SAMPLES, Value::Short(spec.extra_samples.clone())));
        }
        e.push((
            tag::SAMPLE_FORMAT,
            Value::Short(vec![sample_format(spec.dtype); bands]),
        ));
        if let Some(nd) = spec.nodata {
            e.push((tag::GDAL_NODATA, Value::ascii(&nodata_text(nd))));
        }
        if level == 0 {
            e.push((TAG_SOFTWARE, Value::ascii(&spec.software)));
            let g = &spec.geo;
            let geo: [(u16, Option<Value>); 6] = [
                (
                    tag::MODEL_PIXEL_SCALE,
                    g.pixel_scale.clone().map(Value::Double),
                ),
                (tag::MODEL_TIEPOINT, g.tiepoints.clone().map(Value::Double)),
                (
                    tag::MODEL_TRANSFORMATION,
                    g.transformation.clone().map(Value::Double),
                ),
                (
                    tag::GEO_KEY_DIRECTORY,
                    g.key_directory.clone().map(Value::Short),
                ),
                (
                    tag::GEO_DOUBLE_PARAMS,
                    g.double_params.clone().map(Value::Double),
                ),
                (
                    tag::GEO_ASCII_PARAMS,
                    g.ascii_params.clone().map(Value::Ascii),
                ),
            ];
            e.extend(geo.into_iter().filter_map(|(t, v)| v.map(|v| (t, v))));
            if let Some(md) = &spec.gdal_metadata {
                e.push((tag::GDAL_METADATA, Value::ascii(md)));
            }
        }
        out.push(IfdPlan {
            entries: e,
            level,
            kind: 0,
        });
        if spec.mask {
            let subfile = if level == 0 { 4 } else { 5 };
            let list = if level == 0 {
                &mut out
            } else {
                &mut overview_masks
            };
            list.push(IfdPlan {
                entries: vec![
                    (tag::NEW_SUBFILE_TYPE, Value::Long(vec![subfile])),
                    (tag::IMAGE_WIDTH, Value::Long(vec![w])),
                    (tag::IMAGE_LENGTH, Value::Long(vec![h])),
                    (tag::BITS_PER_SAMPLE, Value::Short(vec![1])),
                    (tag::COMPRESSION, Value::Short(vec![8])),
                    (tag::PHOTOMETRIC, Value::Short(vec![4])),
                    (tag::SAMPLES_PER_PIXEL, Value::Short(vec![1])),
                    (tag::PLANAR_CONFIG, Value::Short(vec![1])),
                    (tag::TILE_WIDTH, Value::Long(vec![b])),
                    (tag::TILE_LENGTH, Value::Long(vec![b])),
                    (tag::SAMPLE_FORMAT, Value::Short(vec![1])),
                ],
                level,
                kind: 1,
            });
        }
    }
    // GDAL's order: full resolution, its mask, the overviews, then the overview masks.
    out.extend(overview_masks);
    Ok(out)
}

/// Software (305), not read by the parser.
pub(super) const TAG_SOFTWARE: u16 = 305;

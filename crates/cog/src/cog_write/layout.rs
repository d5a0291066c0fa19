//! TIFF serialisation of a COG: field values, IFD plans and GDAL's COG layout (header,
//! ghost area, IFDs before data, data coarsest level first).

#[allow(clippy::wildcard_imports)]
use super::*;

/// A TIFF field value, by TIFF type.
#[derive(Debug, Clone)]
pub(super) enum Value {
    Ascii(Vec<u8>),
    Short(Vec<u16>),
    Long(Vec<u32>),
    Long8(Vec<u64>),
    Double(Vec<f64>),
}

impl Value {
    pub(super) fn type_code(&self) -> u16 {
        match self {
            Self::Ascii(_) => 2,
            Self::Short(_) => 3,
            Self::Long(_) => 4,
            Self::Long8(_) => 16,
            Self::Double(_) => 12,
        }
    }

    pub(super) fn count(&self) -> usize {
        match self {
            Self::Ascii(v) => v.len(),
            Self::Short(v) => v.len(),
            Self::Long(v) => v.len(),
            Self::Long8(v) => v.len(),
            Self::Double(v) => v.len(),
        }
    }

    pub(super) fn byte_len(&self) -> u64 {
        let size = match self {
            Self::Ascii(_) => 1,
            Self::Short(_) => 2,
            Self::Long(_) => 4,
            Self::Long8(_) | Self::Double(_) => 8,
        };
        (self.count() * size) as u64
    }

    pub(super) fn put(&self, out: &mut Vec<u8>) {
        match self {
            Self::Ascii(v) => out.extend_from_slice(v),
            Self::Short(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::Long(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::Long8(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
            Self::Double(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        }
    }
}

pub(super) fn ascii(s: &str) -> Value {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    Value::Ascii(b)
}

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
        let (head_len, entry_len, count_len, off_len): (u64, u64, u64, u64) = if bigtiff {
            (16, 20, 8, 8)
        } else {
            (8, 12, 2, 4)
        };
        let inline = off_len;
        // Every IFD's entries with tile offsets / byte counts of their final length (values
        // filled in below), sorted by tag.
        let mut full: Vec<Vec<(u16, Value)>> = ifds
            .iter()
            .map(|ifd| {
                let n = blocks[ifd.level][ifd.kind].len();
                let mut e = ifd.entries.clone();
                if bigtiff {
                    e.push((tag::TILE_OFFSETS, Value::Long8(vec![0; n])));
                    e.push((tag::TILE_BYTE_COUNTS, Value::Long8(vec![0; n])));
                } else {
                    e.push((tag::TILE_OFFSETS, Value::Long(vec![0; n])));
                    e.push((tag::TILE_BYTE_COUNTS, Value::Long(vec![0; n])));
                }
                e.sort_by_key(|(t, _)| *t);
                e
            })
            .collect();
        // Pass 1: where each IFD and each out-of-line value goes.
        let mut cursor = head_len + ghost.len() as u64;
        let mut ifd_offsets = Vec::with_capacity(full.len());
        let mut value_offsets: Vec<Vec<Option<u64>>> = Vec::with_capacity(full.len());
        for entries in &full {
            cursor = cursor.next_multiple_of(2);
            ifd_offsets.push(cursor);
            cursor += count_len + entries.len() as u64 * entry_len + off_len;
            let mut offs = Vec::with_capacity(entries.len());
            for (_, v) in entries {
                if v.byte_len() > inline {
                    cursor = cursor.next_multiple_of(2);
                    offs.push(Some(cursor));
                    cursor += v.byte_len();
                } else {
                    offs.push(None);
                }
            }
            value_offsets.push(offs);
        }
        let data_start = cursor.next_multiple_of(2);
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
        for (ifd, entries) in ifds.iter().zip(full.iter_mut()) {
            let (offs, counts): (Vec<u64>, Vec<u64>) =
                placed[ifd.level][ifd.kind].iter().copied().unzip();
            for (t, v) in entries.iter_mut() {
                let src = match *t {
                    tag::TILE_OFFSETS => &offs,
                    tag::TILE_BYTE_COUNTS => &counts,
                    _ => continue,
                };
                *v = if bigtiff {
                    Value::Long8(src.clone())
                } else {
                    // pos <= u32::MAX here, so every offset and count fits.
                    Value::Long(src.iter().map(|&x| x as u32).collect())
                };
            }
        }
        // Pass 2: serialise.
        let first = ifd_offsets.first().copied().unwrap_or(0);
        let mut head = Vec::with_capacity(data_start as usize);
        head.extend_from_slice(b"II");
        if bigtiff {
            head.extend_from_slice(&43u16.to_le_bytes());
            head.extend_from_slice(&8u16.to_le_bytes());
            head.extend_from_slice(&0u16.to_le_bytes());
            head.extend_from_slice(&first.to_le_bytes());
        } else {
            head.extend_from_slice(&42u16.to_le_bytes());
            head.extend_from_slice(&(first as u32).to_le_bytes());
        }
        head.extend_from_slice(ghost);
        let put_off = |head: &mut Vec<u8>, v: u64| {
            if bigtiff {
                head.extend_from_slice(&v.to_le_bytes());
            } else {
                head.extend_from_slice(&(v as u32).to_le_bytes());
            }
        };
        for (n, entries) in full.iter().enumerate() {
            head.resize(ifd_offsets[n] as usize, 0);
            put_off_count(&mut head, entries.len() as u64, bigtiff);
            for ((t, v), off) in entries.iter().zip(&value_offsets[n]) {
                head.extend_from_slice(&t.to_le_bytes());
                head.extend_from_slice(&v.type_code().to_le_bytes());
                put_off(&mut head, v.count() as u64);
                match off {
                    Some(off) => put_off(&mut head, *off),
                    None => {
                        let mut field = Vec::with_capacity(8);
                        v.put(&mut field);
                        field.resize(inline as usize, 0);
                        head.extend_from_slice(&field);
                    }
                }
            }
            put_off(&mut head, ifd_offsets.get(n + 1).copied().unwrap_or(0));
            for ((_, v), off) in entries.iter().zip(&value_offsets[n]) {
                if let Some(off) = off {
                    head.resize(*off as usize, 0);
                    v.put(&mut head);
                }
            }
        }
        if head.len() as u64 > data_start {
            return Err(invalid(format!(
                "internal layout error: header of {} bytes overruns data at {data_start}",
                head.len()
            )));
        }
        head.resize(data_start as usize, 0);
        Ok(Some(Self {
            head,
            data,
            leaders,
        }))
    }
}

/// The IFD entry count: 2 bytes in classic TIFF, 8 in BigTIFF.
pub(super) fn put_off_count(head: &mut Vec<u8>, n: u64, bigtiff: bool) {
    if bigtiff {
        head.extend_from_slice(&n.to_le_bytes());
    } else {
        head.extend_from_slice(&(n as u16).to_le_bytes());
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
            e.push((tag::GDAL_NODATA, ascii(&nodata_text(nd))));
        }
        if level == 0 {
            e.push((TAG_SOFTWARE, ascii(&spec.software)));
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
                e.push((tag::GDAL_METADATA, ascii(md)));
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

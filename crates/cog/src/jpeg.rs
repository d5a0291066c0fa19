//! Baseline JPEG decoding that reproduces GDAL's pixels exactly.
//!
//! GDAL reads JPEG-compressed TIFF blocks through libtiff, which hands each block's stream
//! (after the shared JPEGTables) to libjpeg. For Photometric=YCbCr, GDAL asks libtiff for RGB
//! (`JPEGCOLORMODE_RGB`), so libjpeg converts with its defaults; for every other photometric
//! libtiff turns libjpeg's colour handling off and the components come out as stored. The
//! GDAL builds Kiln is checked against (the rasterio/GDAL wheels) link IJG libjpeg 9, whose
//! defaults differ from libjpeg-turbo's in one way that shows: with fancy upsampling on (the
//! default) it rebuilds subsampled chroma with a 16-point inverse DCT (`jdmaster.c`, "scale
//! up the chroma components via IDCT scaling rather than upsampling"), not with the triangle
//! filter libjpeg-turbo and zune-jpeg use. That alone moved chroma edges by up to ~30 levels.
//!
//! This module decodes what GDAL-written and most other TIFF JPEG streams are: sequential
//! Huffman-coded 8-bit frames, all components in one scan, each component's sampling equal to
//! the largest or half of it. It does libjpeg 9's arithmetic step by step: Huffman decoding
//! (with its treatment of over-long runs), the ISLOW integer IDCTs including the 16-point
//! ones (`jpeg_idct` module), and the table-driven YCbCr -> RGB conversion of `jdcolor.c`.
//! Streams outside that scope (progressive, 12-bit, other sampling ratios, one scan per
//! component) are declined with `Ok(None)` so the caller can use a general decoder.

#[path = "jpeg_idct.rs"]
mod idct;

use std::cell::RefCell;

/// What to do with the decoded components.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Colour {
    /// Three components taken as YCbCr (whatever the markers say) and converted to RGB.
    YCbCrToRgb,
    /// Components returned as stored.
    AsStored,
}

/// The block's geometry in the TIFF: the decoded frame is cropped or zero-padded to it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target {
    pub width: usize,
    /// Rows of the block (the last strip of a striped image may have fewer).
    pub rows: usize,
    /// Rows of a full block: a last strip's stream may still be this tall.
    pub full_rows: usize,
    pub bands: usize,
}

/// Decodes one TIFF JPEG block: `tables` is the JPEGTables stream (or `None`), `stream` the
/// block's own. Returns band-sequential samples `width * rows * bands` long (bands beyond the
/// stream's components read 255, opaque alpha), or `Ok(None)` when the stream uses a feature
/// this decoder leaves to the general one.
pub(crate) fn decode(
    tables: Option<&[u8]>,
    stream: &[u8],
    colour: Colour,
    target: Target,
) -> Result<Option<Vec<u8>>, String> {
    let mut st = State::default();
    if let Some(t) = tables {
        match read_markers(&mut st, t, true)? {
            Parsed::Declined => return Ok(None),
            Parsed::Scan(_) | Parsed::End => {}
        }
    }
    let scan_at = match read_markers(&mut st, stream, false)? {
        Parsed::Declined => return Ok(None),
        Parsed::End => return Err("JPEG stream without image data".into()),
        Parsed::Scan(at) => at,
    };
    let Some(frame) = st.frame.take() else {
        return Err("JPEG scan before the frame header".into());
    };
    // As libtiff: a frame larger than the block is refused (it would write past the block),
    // except for the height of a last strip; a smaller one leaves the rest of the block 0.
    if frame.width > target.width || frame.height > target.rows.max(target.full_rows) {
        return Err(format!(
            "JPEG frame of {}x{} exceeds the block's {}x{}",
            frame.width, frame.height, target.width, target.rows
        ));
    }
    let entropy = stream.get(scan_at..).unwrap_or_default();
    let planes = decode_scan(&st, &frame, entropy)?;
    Ok(Some(to_block(&frame, &planes, colour, target)))
}

// ---------------------------------------------------------------------------------------------
// Markers
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, Default)]
struct Component {
    id: u8,
    h: usize,
    v: usize,
    quant: usize,
}

#[derive(Debug, Clone)]
struct Frame {
    width: usize,
    height: usize,
    comps: Vec<Component>,
    hmax: usize,
    vmax: usize,
    /// Per scan component (in scan order): index into `comps`, DC and AC table numbers.
    scan: Vec<(usize, usize, usize)>,
}

#[derive(Default)]
struct State {
    quant: [Option<[u16; 64]>; 4],
    dc: [Option<Huffman>; 4],
    ac: [Option<Huffman>; 4],
    restart_interval: usize,
    frame: Option<Frame>,
}

enum Parsed {
    /// Entropy-coded data starts at this offset.
    Scan(usize),
    /// EOI reached (expected for the tables stream).
    End,
    Declined,
}

/// JPEG zig-zag position -> natural (row-major) index, with 16 extra entries so a corrupt
/// run past the last coefficient lands on coefficient 63, as in libjpeg.
const NATURAL: [usize; 80] = {
    let zz: [usize; 64] = [
        0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27,
        20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
        58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
    ];
    let mut t = [63usize; 80];
    let mut i = 0;
    while i < 64 {
        t[i] = zz[i];
        i += 1;
    }
    t
};

/// Largest of row and column of each zig-zag position.
const EXTENT: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        let n = NATURAL[i];
        t[i] = if n / 8 > n % 8 {
            (n / 8) as u8
        } else {
            (n % 8) as u8
        };
        i += 1;
    }
    t
};

fn be16(b: &[u8], at: usize) -> Result<usize, String> {
    match b.get(at..at + 2) {
        Some(s) => Ok(usize::from(u16::from_be_bytes([s[0], s[1]]))),
        None => Err("JPEG marker segment cut short".into()),
    }
}

/// Reads markers from `b` until the start of a scan (or EOI), filling `st`.
fn read_markers(st: &mut State, b: &[u8], tables_only: bool) -> Result<Parsed, String> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return Err("JPEG stream does not start with SOI".into());
    }
    let mut at = 2;
    loop {
        // Fill bytes (0xFF runs) may precede a marker.
        while b.get(at) == Some(&0xFF) && b.get(at + 1) == Some(&0xFF) {
            at += 1;
        }
        let (Some(&0xFF), Some(&m)) = (b.get(at), b.get(at + 1)) else {
            return if tables_only && at >= b.len() {
                Ok(Parsed::End)
            } else {
                Err(format!("JPEG marker expected at byte {at}"))
            };
        };
        at += 2;
        match m {
            0xD9 => return Ok(Parsed::End),
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            _ => {}
        }
        let len = be16(b, at)?;
        if len < 2 {
            return Err("JPEG marker segment with a bad length".into());
        }
        let seg = b
            .get(at + 2..at + len)
            .ok_or("JPEG marker segment cut short")?;
        at += len;
        match m {
            0xDB => read_dqt(st, seg)?,
            0xC4 => read_dht(st, seg)?,
            0xDD => {
                st.restart_interval = be16(seg, 0)?;
            }
            // Baseline and extended sequential, Huffman.
            0xC0 | 0xC1 => {
                let in_scope = read_sof(st, seg)?;
                if !in_scope {
                    return Ok(Parsed::Declined);
                }
            }
            // Progressive, lossless, arithmetic-coded, hierarchical.
            0xC2 | 0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => return Ok(Parsed::Declined),
            0xDA => {
                if !read_sos(st, seg)? {
                    return Ok(Parsed::Declined);
                }
                return Ok(Parsed::Scan(at));
            }
            // DNL and anything else that changes the decoding process.
            0xDC | 0xDE | 0xDF => return Ok(Parsed::Declined),
            // APPn, COM, JPG extensions: not needed to decode.
            _ => {}
        }
    }
}

fn read_dqt(st: &mut State, mut seg: &[u8]) -> Result<(), String> {
    while let Some(&pq_tq) = seg.first() {
        let (precision, id) = (pq_tq >> 4, usize::from(pq_tq & 15));
        let size = if precision == 0 { 64 } else { 128 };
        let body = seg.get(1..1 + size).ok_or("JPEG DQT segment cut short")?;
        if id > 3 || precision > 1 {
            return Err("bad JPEG quantization table".into());
        }
        let mut t = [0u16; 64];
        for z in 0..64 {
            let q = if precision == 0 {
                u16::from(body[z])
            } else {
                u16::from_be_bytes([body[2 * z], body[2 * z + 1]])
            };
            t[NATURAL[z]] = q;
        }
        st.quant[id] = Some(t);
        seg = &seg[1 + size..];
    }
    Ok(())
}

fn read_dht(st: &mut State, mut seg: &[u8]) -> Result<(), String> {
    while let Some(&tc_th) = seg.first() {
        let (class, id) = (tc_th >> 4, usize::from(tc_th & 15));
        let counts: [u8; 16] = seg
            .get(1..17)
            .and_then(|s| s.try_into().ok())
            .ok_or("JPEG DHT segment cut short")?;
        let n: usize = counts.iter().map(|c| usize::from(*c)).sum();
        let values = seg.get(17..17 + n).ok_or("JPEG DHT segment cut short")?;
        if id > 3 || class > 1 || n > 256 {
            return Err("bad JPEG Huffman table".into());
        }
        // libjpeg rejects DC symbols above 15 (more bits than a DC difference can have).
        if class == 0 && values.iter().any(|v| *v > 15) {
            return Err("bad JPEG DC Huffman table".into());
        }
        let h = Huffman::new(&counts, values)?;
        if class == 0 {
            st.dc[id] = Some(h);
        } else {
            st.ac[id] = Some(h);
        }
        seg = &seg[17 + n..];
    }
    Ok(())
}

/// Parses SOF0/SOF1; `false` when the frame is outside this decoder's scope.
fn read_sof(st: &mut State, seg: &[u8]) -> Result<bool, String> {
    let precision = *seg.first().ok_or("JPEG frame header cut short")?;
    let height = be16(seg, 1)?;
    let width = be16(seg, 3)?;
    let n = usize::from(*seg.get(5).ok_or("JPEG frame header cut short")?);
    if precision != 8 || height == 0 || !(1..=4).contains(&n) {
        return Ok(false);
    }
    if width == 0 {
        return Err("JPEG frame of width 0".into());
    }
    let mut comps = Vec::with_capacity(n);
    for i in 0..n {
        let c = seg
            .get(6 + 3 * i..9 + 3 * i)
            .ok_or("JPEG frame header cut short")?;
        let (h, v) = (usize::from(c[1] >> 4), usize::from(c[1] & 15));
        if !(1..=4).contains(&h) || !(1..=4).contains(&v) || c[2] > 3 {
            return Err("bad JPEG sampling factors or table number".into());
        }
        comps.push(Component {
            id: c[0],
            h,
            v,
            quant: usize::from(c[2]),
        });
    }
    let hmax = comps.iter().map(|c| c.h).max().unwrap_or(1);
    let vmax = comps.iter().map(|c| c.v).max().unwrap_or(1);
    // libjpeg 9 rebuilds a component sampled at half the largest factor with a 16-point
    // IDCT; other ratios would need its upsampler too.
    if comps
        .iter()
        .any(|c| !(c.h == hmax || 2 * c.h == hmax) || !(c.v == vmax || 2 * c.v == vmax))
    {
        return Ok(false);
    }
    st.frame = Some(Frame {
        width,
        height,
        comps,
        hmax,
        vmax,
        scan: Vec::new(),
    });
    Ok(true)
}

/// Parses SOS; `false` when the scan does not hold every component (one scan per component).
fn read_sos(st: &mut State, seg: &[u8]) -> Result<bool, String> {
    let Some(frame) = st.frame.as_mut() else {
        return Err("JPEG scan before the frame header".into());
    };
    let n = usize::from(*seg.first().ok_or("JPEG scan header cut short")?);
    if n != frame.comps.len() {
        return Ok(false);
    }
    let mut scan = Vec::with_capacity(n);
    for i in 0..n {
        let s = seg
            .get(1 + 2 * i..3 + 2 * i)
            .ok_or("JPEG scan header cut short")?;
        let ci = frame
            .comps
            .iter()
            .position(|c| c.id == s[0])
            .ok_or("JPEG scan names an unknown component")?;
        let (td, ta) = (usize::from(s[1] >> 4), usize::from(s[1] & 15));
        if td > 3 || ta > 3 || scan.iter().any(|(c, _, _)| *c == ci) {
            return Err("bad JPEG scan header".into());
        }
        scan.push((ci, td, ta));
    }
    let tail = seg
        .get(1 + 2 * n..4 + 2 * n)
        .ok_or("JPEG scan header cut short")?;
    // Sequential scans cover coefficients 0..63 with no successive approximation.
    if tail != [0, 63, 0] {
        return Ok(false);
    }
    frame.scan = scan;
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// Huffman decoding
// ---------------------------------------------------------------------------------------------

/// Bits resolved by one table lookup.
const LOOKUP_BITS: u32 = 9;

struct Huffman {
    /// Indexed by the next `LOOKUP_BITS` bits: `length << 8 | symbol`, 0 for longer codes.
    lookup: [u16; 1 << LOOKUP_BITS],
    /// Largest code of each length (index = length), -1 when none.
    maxcode: [i32; 18],
    /// `values` index of the first code of each length, minus that code.
    offset: [i32; 17],
    values: [u8; 256],
    /// For AC tables: a run/size code and its value bits resolved at once when together
    /// they fit in `LOOKUP_BITS`: `value << 8 | run << 4 | bits used`, 0 otherwise.
    fast_ac: [i32; 1 << LOOKUP_BITS],
}

impl Huffman {
    fn new(counts: &[u8; 16], values: &[u8]) -> Result<Self, String> {
        let mut h = Huffman {
            lookup: [0; 1 << LOOKUP_BITS],
            maxcode: [-1; 18],
            offset: [0; 17],
            values: [0; 256],
            fast_ac: [0; 1 << LOOKUP_BITS],
        };
        h.values[..values.len()].copy_from_slice(values);
        let mut code = 0i32;
        let mut k = 0usize;
        for len in 1..=16usize {
            let n = usize::from(counts[len - 1]);
            if n > 0 {
                h.offset[len] = k as i32 - code;
                for _ in 0..n {
                    // Every code of this length must fit in `len` bits.
                    if code >= 1 << len {
                        return Err("bad JPEG Huffman table (code overflow)".into());
                    }
                    if len as u32 <= LOOKUP_BITS {
                        let pad = LOOKUP_BITS - len as u32;
                        let first = (code as usize) << pad;
                        let entry = (len as u16) << 8 | u16::from(values[k]);
                        h.lookup[first..first + (1 << pad)].fill(entry);
                    }
                    code += 1;
                    k += 1;
                }
                h.maxcode[len] = code - 1;
                // As libjpeg: no code may be all ones either.
                if code >= 1 << len {
                    return Err("bad JPEG Huffman table (code overflow)".into());
                }
            }
            code <<= 1;
        }
        // Sentinel: the search for a code length always stops.
        h.maxcode[17] = i32::MAX;
        for (idx, e) in h.lookup.iter().enumerate() {
            let (len, sym) = (u32::from(e >> 8), e & 0xFF);
            let (run, size) = (sym >> 4, u32::from(sym & 15));
            if len == 0 || size == 0 || len + size > LOOKUP_BITS {
                continue;
            }
            let v = (idx as u32 >> (LOOKUP_BITS - len - size)) & ((1 << size) - 1);
            h.fast_ac[idx] = extend(v, size) << 8 | i32::from(run) << 4 | (len + size) as i32;
        }
        Ok(h)
    }
}

/// MSB-first bit reader over entropy-coded data: removes stuffed zero bytes, stops at
/// markers and then supplies zero bits, counting them so running past the data is caught.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    n: u32,
    /// Zero bits appended after a marker or the end of the data.
    padding: u32,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Self {
        Bits {
            data,
            pos: 0,
            acc: 0,
            n: 0,
            padding: 0,
        }
    }

    #[inline(always)]
    fn refill(&mut self) {
        if self.n > 56 {
            return;
        }
        // Fast path: eight bytes without 0xFF need no unstuffing.
        if let Some(w) = self.data.get(self.pos..self.pos + 8) {
            let word = u64::from_be_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
            let inv = !word;
            let has_ff =
                (inv.wrapping_sub(0x0101_0101_0101_0101) & !inv & 0x8080_8080_8080_8080) != 0;
            if !has_ff {
                let k = (64 - self.n) / 8;
                let bits = 8 * k;
                let chunk = if bits == 64 {
                    word
                } else {
                    word >> (64 - bits)
                };
                self.acc |= chunk << (64 - self.n - bits);
                self.n += bits;
                self.pos += k as usize;
                return;
            }
        }
        while self.n <= 56 {
            let byte = match self.data.get(self.pos) {
                Some(&0xFF) => match self.data.get(self.pos + 1) {
                    Some(&0x00) => {
                        self.pos += 2;
                        0xFF
                    }
                    // A marker (or fill bytes before one): the data of this interval ends.
                    _ => {
                        self.padding = self.padding.saturating_add(8);
                        0
                    }
                },
                Some(&b) => {
                    self.pos += 1;
                    b
                }
                None => {
                    self.padding = self.padding.saturating_add(8);
                    0
                }
            };
            self.acc |= u64::from(byte) << (56 - self.n);
            self.n += 8;
        }
    }

    /// The next `LOOKUP_BITS` bits (call after `refill`).
    #[inline(always)]
    fn peek_lookup(&self) -> usize {
        (self.acc >> (64 - LOOKUP_BITS)) as usize
    }

    #[inline(always)]
    fn consume(&mut self, k: u32) {
        self.acc <<= k;
        self.n -= k;
    }

    /// `k` (1..=16) bits as an unsigned value.
    #[inline(always)]
    fn take(&mut self, k: u32) -> u32 {
        self.refill();
        let v = (self.acc >> (64 - k)) as u32;
        self.consume(k);
        v
    }

    /// The next Huffman symbol.
    #[inline(always)]
    fn symbol(&mut self, h: &Huffman) -> Result<u8, String> {
        self.refill();
        let e = h.lookup[(self.acc >> (64 - LOOKUP_BITS)) as usize];
        if e != 0 {
            self.consume(u32::from(e >> 8));
            return Ok(e as u8);
        }
        let word = (self.acc >> 48) as i32;
        let mut len = LOOKUP_BITS as usize + 1;
        while (word >> (16 - len.min(16))) > h.maxcode[len] {
            len += 1;
        }
        if len > 16 {
            return Err("corrupt JPEG data: bad Huffman code".into());
        }
        self.consume(len as u32);
        let code = word >> (16 - len);
        let idx = (code + h.offset[len]) as usize;
        h.values
            .get(idx)
            .copied()
            .ok_or_else(|| "corrupt JPEG data: bad Huffman code".to_string())
    }

    /// Whether the bits consumed so far all came from the data.
    fn within_data(&self) -> bool {
        self.padding <= self.n
    }

    /// Ends a restart interval: drops the buffered bits and expects marker RSTn.
    fn restart(&mut self, n: usize) -> Result<(), String> {
        if !self.within_data() {
            return Err("JPEG data cut short".into());
        }
        self.acc = 0;
        self.n = 0;
        self.padding = 0;
        // Skip to the next marker (libjpeg tolerates, with a warning, stray bytes).
        while let Some(&b) = self.data.get(self.pos) {
            if b == 0xFF && !matches!(self.data.get(self.pos + 1), Some(&0x00) | Some(&0xFF)) {
                break;
            }
            self.pos += 1;
        }
        match self.data.get(self.pos + 1) {
            Some(&m) if usize::from(m) == 0xD0 + n % 8 => {
                self.pos += 2;
                Ok(())
            }
            _ => Err("corrupt JPEG data: restart marker missing".into()),
        }
    }
}

/// Sign-extends a `s`-bit magnitude category value (JPEG's EXTEND).
#[inline(always)]
fn extend(v: u32, s: u32) -> i32 {
    let v = v as i32;
    if v < 1 << (s - 1) {
        v - (1 << s) + 1
    } else {
        v
    }
}

// ---------------------------------------------------------------------------------------------
// Scan decoding
// ---------------------------------------------------------------------------------------------

thread_local! {
    // Component planes are reused per thread: decoding overwrites every sample of a plane,
    // so a block needs neither a fresh allocation nor zeroing.
    static PLANE_POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A component decoded at output resolution: `len` samples of `samples` (which may be
/// longer, being reused), rows `stride` apart.
struct Plane {
    samples: Vec<u8>,
    len: usize,
    stride: usize,
}

impl Plane {
    fn new(len: usize, stride: usize) -> Self {
        let mut samples = PLANE_POOL
            .with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.pop()))
            .unwrap_or_default();
        if samples.len() < len {
            samples.resize(len, 0);
        }
        Plane {
            samples,
            len,
            stride,
        }
    }

    /// The first `n` samples of row `y` (fewer if the plane is smaller).
    fn row(&self, y: usize, n: usize) -> &[u8] {
        let start = y * self.stride;
        let end = (start + n.min(self.stride)).min(self.len);
        self.samples.get(start..end).unwrap_or_default()
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        let samples = std::mem::take(&mut self.samples);
        PLANE_POOL.with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                // Enough for one block of up to four components.
                if p.len() < 4 {
                    p.push(samples);
                }
            }
        });
    }
}

fn decode_scan(st: &State, f: &Frame, entropy: &[u8]) -> Result<Vec<Plane>, String> {
    struct Sc<'t> {
        comp: Component,
        /// Index of the component in the frame (and of its plane).
        plane: usize,
        dc: &'t Huffman,
        ac: &'t Huffman,
        quant: [i32; 64],
        /// IDCT output size is 16 (not 8) across / down.
        wide: bool,
        tall: bool,
        pred: i32,
    }
    let mut scs = Vec::with_capacity(f.scan.len());
    for &(ci, td, ta) in &f.scan {
        let comp = f.comps[ci];
        let q = st.quant[comp.quant]
            .as_ref()
            .ok_or("JPEG quantization table missing")?;
        scs.push(Sc {
            comp,
            plane: ci,
            dc: st.dc[td].as_ref().ok_or("JPEG Huffman table missing")?,
            ac: st.ac[ta].as_ref().ok_or("JPEG Huffman table missing")?,
            quant: std::array::from_fn(|i| i32::from(q[i])),
            wide: comp.h < f.hmax,
            tall: comp.v < f.vmax,
            pred: 0,
        });
    }
    // A scan of one component is not interleaved: its MCU is one block, and it covers the
    // component's own size rather than whole MCUs of the frame.
    let single = scs.len() == 1;
    let (mcu_w, mcu_h) = if single {
        (8, 8)
    } else {
        (8 * f.hmax, 8 * f.vmax)
    };
    let mcus_x = f.width.div_ceil(mcu_w);
    let mcus_y = f.height.div_ceil(mcu_h);
    let (pw, ph) = (mcus_x * mcu_w, mcus_y * mcu_h);
    let samples = pw.checked_mul(ph).ok_or("JPEG frame too large")?;
    let mut planes: Vec<Plane> = (0..f.comps.len())
        .map(|_| Plane::new(samples, pw))
        .collect();

    let mut bits = Bits::new(entropy);
    let total = mcus_x * mcus_y;
    let mut coef = [0i32; 64];
    for m in 0..total {
        // Past the end of the data (or a marker) only zero bits come: stop at once.
        if !bits.within_data() {
            return Err("JPEG data cut short".into());
        }
        if st.restart_interval > 0 && m > 0 && m % st.restart_interval == 0 {
            bits.restart(m / st.restart_interval - 1)?;
            for s in &mut scs {
                s.pred = 0;
            }
        }
        let (mx, my) = (m % mcus_x, m / mcus_x);
        for sc in &mut scs {
            let (bw, bh) = if single {
                (1, 1)
            } else {
                (sc.comp.h, sc.comp.v)
            };
            let ow = if sc.wide { 16 } else { 8 };
            let oh = if sc.tall { 16 } else { 8 };
            for by in 0..bh {
                for bx in 0..bw {
                    coef.fill(0);
                    // DC: a difference from the previous block of this component.
                    let s = u32::from(bits.symbol(sc.dc)?);
                    let diff = if s == 0 { 0 } else { extend(bits.take(s), s) };
                    sc.pred = sc.pred.wrapping_add(diff);
                    // Coefficients are 16-bit in libjpeg (JCOEF).
                    coef[0] = i32::from(sc.pred as i16).wrapping_mul(sc.quant[0]);
                    // AC: run/size symbols in zig-zag order.
                    let mut k = 1usize;
                    let mut ac = false;
                    // Largest row or column index of a non-zero coefficient.
                    let mut extent = 0;
                    while k < 64 {
                        bits.refill();
                        let f = sc.ac.fast_ac[bits.peek_lookup()];
                        if f != 0 {
                            bits.consume((f & 15) as u32);
                            k += ((f >> 4) & 15) as usize;
                            let at = NATURAL[k];
                            coef[at] = (f >> 8).wrapping_mul(sc.quant[at]);
                            ac = true;
                            extent = extent.max(EXTENT[k.min(63)]);
                            k += 1;
                            continue;
                        }
                        let rs = bits.symbol(sc.ac)?;
                        let (r, s) = (usize::from(rs >> 4), u32::from(rs & 15));
                        if s == 0 {
                            if r != 15 {
                                break;
                            }
                            k += 16;
                            continue;
                        }
                        k += r;
                        let v = extend(bits.take(s), s) as i16;
                        let at = NATURAL[k];
                        coef[at] = i32::from(v).wrapping_mul(sc.quant[at]);
                        ac = true;
                        extent = extent.max(EXTENT[k.min(63)]);
                        k += 1;
                    }
                    let x = (mx * bw + bx) * ow;
                    let y = (my * bh + by) * oh;
                    let Some(p) = planes.get_mut(sc.plane) else {
                        continue;
                    };
                    let stride = p.stride;
                    let Some(out) = p.samples.get_mut(y * stride + x..p.len) else {
                        continue;
                    };
                    if !ac {
                        let v = idct::dc_only_value(coef[0]);
                        for row in out.chunks_mut(stride).take(oh) {
                            if let Some(r) = row.get_mut(..ow) {
                                r.fill(v);
                            }
                        }
                        continue;
                    }
                    // Blocks whose coefficients stop early take a reduced transform.
                    match (sc.wide, sc.tall, extent) {
                        (false, false, 0..=1) => idct::idct::<false, false, 2>(&coef, out, stride),
                        (false, false, 2..=3) => idct::idct::<false, false, 4>(&coef, out, stride),
                        (false, false, _) => idct::idct::<false, false, 8>(&coef, out, stride),
                        (true, false, 0..=1) => idct::idct::<true, false, 2>(&coef, out, stride),
                        (true, false, 2..=3) => idct::idct::<true, false, 4>(&coef, out, stride),
                        (true, false, _) => idct::idct::<true, false, 8>(&coef, out, stride),
                        (false, true, 0..=1) => idct::idct::<false, true, 2>(&coef, out, stride),
                        (false, true, 2..=3) => idct::idct::<false, true, 4>(&coef, out, stride),
                        (false, true, _) => idct::idct::<false, true, 8>(&coef, out, stride),
                        (true, true, 0..=1) => idct::idct::<true, true, 2>(&coef, out, stride),
                        (true, true, 2..=3) => idct::idct::<true, true, 4>(&coef, out, stride),
                        (true, true, _) => idct::idct::<true, true, 8>(&coef, out, stride),
                    }
                }
            }
        }
    }
    if !bits.within_data() {
        return Err("JPEG data cut short".into());
    }
    Ok(planes)
}

// ---------------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------------

/// `(v * c + 2^15) >> 16` (a product rounded to 16 fractional bits) from the high and low
/// halves of the 32-bit product, so 16-bit SIMD lanes can compute it exactly.
#[inline(always)]
fn mul_round16(v: i16, c: i16) -> i16 {
    let hi = ((i32::from(v) * i32::from(c)) >> 16) as i16;
    let carry = (v.wrapping_mul(c) as u16 >> 15) as i16;
    hi + carry
}

/// libjpeg's YCbCr -> RGB (`jdcolor.c`): 16-bit fixed point, Cr->R and Cb->B rounded on
/// their own, the two G terms summed before rounding. The constants FIX(1.402) = 91881,
/// FIX(1.772) = 116130, FIX(0.344136286) = 22553 and FIX(0.714136286) = 46802 are split into
/// a whole multiple of 2^16 plus a 16-bit part, which keeps every step exact.
#[inline(always)]
fn ycc_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let (y, cb, cr) = (i16::from(y), i16::from(cb) - 128, i16::from(cr) - 128);
    // 91881 = 65536 + 26345; 116130 = 2 * 65536 - 14942; -46802 = -65536 + 18734.
    let r = y + cr + mul_round16(cr, 26345);
    let b = y + 2 * cb + mul_round16(cb, -14942);
    let g_frac = (i32::from(cb) * -22553 + i32::from(cr) * 18734 + (1 << 15)) >> 16;
    let g = y - cr + g_frac as i16;
    [
        r.clamp(0, 255) as u8,
        g.clamp(0, 255) as u8,
        b.clamp(0, 255) as u8,
    ]
}

/// Converts one row; fixed-size chunks let the compiler vectorise the arithmetic.
fn ycc_row(src: [&[u8]; 3], dst: [&mut [u8]; 3]) {
    const N: usize = 16;
    let [y, cb, cr] = src;
    let [r, g, b] = dst;
    let n = y
        .len()
        .min(cb.len())
        .min(cr.len())
        .min(r.len())
        .min(g.len())
        .min(b.len());
    let full = n / N * N;
    for i in (0..full).step_by(N) {
        let (ys, cbs, crs) = (&y[i..i + N], &cb[i..i + N], &cr[i..i + N]);
        let (rs, gs, bs) = (&mut r[i..i + N], &mut g[i..i + N], &mut b[i..i + N]);
        for k in 0..N {
            let [vr, vg, vb] = ycc_to_rgb(ys[k], cbs[k], crs[k]);
            rs[k] = vr;
            gs[k] = vg;
            bs[k] = vb;
        }
    }
    for i in full..n {
        [r[i], g[i], b[i]] = ycc_to_rgb(y[i], cb[i], cr[i]);
    }
}

fn to_block(f: &Frame, planes: &[Plane], colour: Colour, t: Target) -> Vec<u8> {
    let npix = t.width * t.rows;
    let mut out = vec![0u8; npix * t.bands];
    let (cw, ch) = (f.width.min(t.width), f.height.min(t.rows));
    if colour == Colour::YCbCrToRgb && planes.len() == 3 && t.bands >= 3 {
        let (o_r, rest) = out.split_at_mut(npix);
        let (o_g, rest) = rest.split_at_mut(npix);
        let (o_b, alpha) = rest.split_at_mut(npix);
        alpha.fill(255);
        for y in 0..ch {
            let (py, pcb, pcr) = (
                planes[0].row(y, cw),
                planes[1].row(y, cw),
                planes[2].row(y, cw),
            );
            let o = y * t.width..y * t.width + cw;
            let (dr, dg, db) = (&mut o_r[o.clone()], &mut o_g[o.clone()], &mut o_b[o]);
            ycc_row([py, pcb, pcr], [dr, dg, db]);
        }
        return out;
    }
    for (b, dst) in out.chunks_exact_mut(npix.max(1)).enumerate() {
        let Some(p) = planes.get(b) else {
            dst.fill(255);
            continue;
        };
        for y in 0..ch {
            let src = p.row(y, cw);
            dst[y * t.width..y * t.width + src.len()].copy_from_slice(src);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_conversion_matches_libjpeg_tables() {
        // jdcolor.c's tables, built as libjpeg builds them, for every (Y, Cb, Cr).
        let fix = |x: f64| (x * 65536.0 + 0.5) as i32;
        for cb in 0..=255u8 {
            for cr in 0..=255u8 {
                let (xb, xr) = (i32::from(cb) - 128, i32::from(cr) - 128);
                let cr_r = (fix(1.402) * xr + (1 << 15)) >> 16;
                let cb_b = (fix(1.772) * xb + (1 << 15)) >> 16;
                let g_sum = -fix(0.344136286) * xb + (1 << 15) - fix(0.714136286) * xr;
                for y in (0..=255u8).step_by(3) {
                    let yy = i32::from(y);
                    let want = [
                        (yy + cr_r).clamp(0, 255) as u8,
                        (yy + (g_sum >> 16)).clamp(0, 255) as u8,
                        (yy + cb_b).clamp(0, 255) as u8,
                    ];
                    assert_eq!(ycc_to_rgb(y, cb, cr), want, "{y} {cb} {cr}");
                }
            }
        }
    }
}

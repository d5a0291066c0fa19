//! Robustness of the GeoTIFF reader against damaged and hostile bytes.
//!
//! Every real file of `shared/data` is cut short at several offsets and has bytes of its header
//! structures (file header, IFD entry tables, out-of-line tag values such as the block offset
//! arrays) mutated by a deterministic PRNG. Each damaged copy is parsed and, when it parses, a
//! bounded sample of blocks of every image and mask is decoded. Every case runs under
//! `catch_unwind`, so one run lists every panicking input with its file, its damage and the
//! panic's message and location. The stored bytes of sample blocks are also cut short (which
//! must be an error) and damaged (which must not panic). Tiny hostile TIFFs built by hand check
//! that absurd sizes are refused (`TooLarge` / `Malformed`) before anything large is allocated.
//!
//! A panicking case also writes its input under `CARGO_TARGET_TMPDIR/corrupt-crashes/`, from
//! where small reproducers are copied into `tests/regressions/` (replayed by
//! `regression_inputs_do_not_panic`, together with the inputs `scripts/fuzz.sh` finds).

use std::backtrace::Backtrace;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, Instant};

use kiln_cog::{decode_block, CogError, Compression, ImageIfd, TiffHeader};

/// Header mutations per file; `KILN_CORRUPT_MUTATIONS=<n>` runs more for a deeper search.
const MUTATIONS_PER_FILE: u64 = 50;
/// Blocks decoded per image (and per mask) of a damaged file that still parses: evenly spread,
/// first and last included. Keeps a whole run well under a minute on two cores.
const BLOCKS_PER_IMAGE: usize = 8;
/// Only the first bytes of a long out-of-line value (offset arrays, metadata) are mutated.
const MAX_MUTATED_VALUE_BYTES: usize = 64 << 10;

fn data_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"))
}

fn regressions_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/regressions"))
}

/// Every `*.tif` of the shared data set, sorted by name, with its bytes.
fn tif_files() -> Vec<(String, Vec<u8>)> {
    let dir = data_dir();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tif"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 47,
        "expected the 47 shared GeoTIFFs, found {}",
        names.len()
    );
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, bytes)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Panic capture
// ---------------------------------------------------------------------------------------------

thread_local! {
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that, inside a case, records the message, location and the
/// reader's own stack frames instead of printing them; outside a case (the tests' final
/// assertions) it defers to the default hook so failures still print.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_CASE.with(Cell::get) {
                default(info);
                return;
            }
            let msg = payload_text(info.payload());
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let bt = Backtrace::force_capture().to_string();
            // The frames of the reader itself say where to look; std and test frames do not.
            // Frames of kiln-cog show as `./src/...` (the test runs from the crate's directory).
            let mut frames = Vec::new();
            let mut function = "";
            for line in bt.lines().map(str::trim) {
                if let Some(at) = line.strip_prefix("at ") {
                    if at.starts_with("./src/") || at.contains("crates/core/src/") {
                        frames.push(format!("{function} {at}"));
                    }
                } else if let Some((_, f)) = line.split_once(": ") {
                    function = f;
                }
            }
            frames.truncate(4);
            let text = format!("{msg} (at {at}; reader frames: [{}])", frames.join(" <- "));
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
        }));
    });
}

fn payload_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".into())
}

/// Collects the outcome of many cases so one report lists every failure.
#[derive(Default)]
struct Report {
    cases: usize,
    parsed: usize,
    decoded_ok: usize,
    decode_errors: usize,
    parse_errors: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
    slowest: (Duration, String),
}

impl Report {
    /// Runs one case on `input`; a panic becomes a failure naming `label`, and its input is
    /// saved for triage.
    fn run(&mut self, label: &str, input: &[u8], case: impl FnOnce(&mut Self) -> Vec<String>) {
        install_panic_hook();
        self.cases += 1;
        let start = Instant::now();
        IN_CASE.with(|c| c.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(|| case(self)));
        IN_CASE.with(|c| c.set(false));
        let took = start.elapsed();
        if took > self.slowest.0 {
            self.slowest = (took, label.to_string());
        }
        match result {
            Ok(problems) => self.failures.extend(
                problems
                    .into_iter()
                    .map(|p| format!("CONTRACT {label}: {p}")),
            ),
            Err(payload) => {
                let detail = LAST_PANIC
                    .with(|p| p.borrow_mut().take())
                    .unwrap_or_else(|| payload_text(payload.as_ref()));
                let saved = save_crash(label, input);
                self.failures
                    .push(format!("PANIC {label}: {detail} [input: {saved}]"));
            }
        }
    }

    fn summary(&self, what: &str) -> String {
        format!(
            "{what}: {} cases, {} parsed, {} blocks decoded, {} decode errors, parse errors {:?}, slowest case {:?} ({})",
            self.cases,
            self.parsed,
            self.decoded_ok,
            self.decode_errors,
            self.parse_errors,
            self.slowest.0,
            self.slowest.1
        )
    }

    fn assert_clean(&self, what: &str) {
        println!("{}", self.summary(what));
        assert!(
            self.failures.is_empty(),
            "{what}: {} of {} cases failed:\n{}",
            self.failures.len(),
            self.cases,
            self.failures.join("\n")
        );
    }
}

/// Writes a crashing input where the developer can pick it up; returns its path.
fn save_crash(label: &str, input: &[u8]) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("corrupt-crashes");
    let name: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(format!("{name}.bin"));
    match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, input)) {
        Ok(()) => path.display().to_string(),
        Err(e) => format!("not saved: {e}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Checks shared by all cases
// ---------------------------------------------------------------------------------------------

fn kind(e: &CogError) -> &'static str {
    match e {
        CogError::NeedBytes { .. } => "NeedBytes",
        CogError::Truncated { .. } => "Truncated",
        CogError::Malformed { .. } => "Malformed",
        CogError::Unsupported { .. } => "Unsupported",
        CogError::Decode { .. } => "Decode",
        CogError::TooLarge { .. } => "TooLarge",
    }
}

/// What is wrong with an error returned for a complete in-memory file, if anything.
fn error_problem(e: &CogError) -> Option<String> {
    let text = match e {
        // A `[u8]` is the whole file: a missing range is past its end, never "not fetched".
        CogError::NeedBytes { .. } => {
            return Some(format!("NeedBytes from an in-memory file: {e}"))
        }
        CogError::Truncated { reason }
        | CogError::Malformed { reason }
        | CogError::Decode { reason, .. }
        | CogError::TooLarge { reason, .. } => reason,
        CogError::Unsupported { feature } => feature,
    };
    text.trim()
        .is_empty()
        .then(|| format!("{} error with an empty message: {e:?}", kind(e)))
}

/// Up to `max` block indices out of `count`, evenly spread, first and last included.
fn sample_indices(count: usize, max: usize) -> Vec<usize> {
    if count <= max {
        (0..count).collect()
    } else {
        let mut v: Vec<usize> = (0..max).map(|k| k * (count - 1) / (max - 1)).collect();
        v.dedup();
        v
    }
}

/// Checks a decode result: an error must be well-formed, a success must have the shape the
/// IFD promises (callers index the samples with it).
fn check_decode(
    ifd: &ImageIfd,
    i: usize,
    result: &Result<kiln_cog::Block, CogError>,
    report: &mut Report,
) -> Option<String> {
    match result {
        Err(e) => {
            report.decode_errors += 1;
            error_problem(e).map(|p| format!("block {i}: {p}"))
        }
        Ok(b) => {
            report.decoded_ok += 1;
            let want = (
                ifd.block_width as usize,
                ifd.block_rows(i),
                ifd.block_bands(),
                ifd.dtype,
            );
            let got = (b.width, b.height, b.bands, b.samples.dtype());
            if got != want {
                Some(format!(
                    "block {i} decoded as {got:?}, the IFD says {want:?}"
                ))
            } else if b.samples.len() != b.width * b.height * b.bands {
                Some(format!(
                    "block {i} has {} samples for {}x{}x{}",
                    b.samples.len(),
                    b.width,
                    b.height,
                    b.bands
                ))
            } else {
                None
            }
        }
    }
}

/// Parses `data` and, when it parses, decodes a sample of the blocks of every image and mask.
/// `cut` is the length of the original file's prefix when `data` is a truncated copy (so
/// blocks that straddle or follow it are known to be incomplete). Returns contract violations.
fn exercise(data: &[u8], cut: Option<usize>, report: &mut Report) -> Vec<String> {
    let header = match TiffHeader::parse(&data) {
        Ok(h) => h,
        Err(e) => {
            *report.parse_errors.entry(kind(&e)).or_default() += 1;
            return error_problem(&e)
                .map(|p| format!("parse: {p}"))
                .into_iter()
                .collect();
        }
    };
    report.parsed += 1;
    let mut problems = Vec::new();
    let ifds = header.images.iter().chain(header.masks.iter().flatten());
    for (n, ifd) in ifds.enumerate() {
        // The parser promises every stored block lies inside the file: a reader that trusts
        // `block_range` must never be sent past the end (or past the cut of a truncated file).
        let outside = (0..ifd.block_offsets.len())
            .filter_map(|i| Some((i, ifd.block_range(i)?)))
            .find(|(_, (o, len))| o.checked_add(*len).is_none_or(|e| e > data.len() as u64));
        if let Some((i, (o, len))) = outside {
            problems.push(format!(
                "ifd #{n} parsed although block {i} at {o}+{len} lies past the end ({} bytes)",
                data.len()
            ));
        }
        for i in sample_indices(ifd.block_count(), BLOCKS_PER_IMAGE) {
            let Some((offset, len)) = ifd.block_range(i) else {
                continue;
            };
            let (Ok(start), Ok(len)) = (usize::try_from(offset), usize::try_from(len)) else {
                continue;
            };
            let end = start.saturating_add(len);
            if end <= data.len() {
                let result = decode_block(&header, ifd, i, &data[start..end]);
                if let Some(p) = check_decode(ifd, i, &result, report) {
                    problems.push(format!("ifd #{n}: {p}"));
                }
            } else if let (Some(cut), Some(partial)) = (cut, data.get(start..)) {
                // The block straddles the cut: what is left of it must not decode as a whole.
                let result = decode_block(&header, ifd, i, partial);
                if result.is_ok() {
                    problems.push(format!(
                        "ifd #{n} block {i} ({start}+{len}) decoded successfully from the {} bytes left before the cut at {cut}",
                        partial.len()
                    ));
                }
                if let Err(e) = &result {
                    problems.extend(error_problem(e));
                }
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Where the header structures of a valid file lie
// ---------------------------------------------------------------------------------------------

/// Byte ranges holding the structures the parser reads, found by a small walker independent
/// of the reader (so mutations land on the bytes that matter whatever the file's layout).
#[derive(Debug, Default)]
struct Layout {
    big_endian: bool,
    bigtiff: bool,
    /// The 8- or 16-byte file header.
    file_header: Range<usize>,
    /// Every IFD: entry count, entries and next-IFD pointer.
    tables: Vec<Range<usize>>,
    /// Out-of-line tag values (offset arrays, GeoKeys, metadata text...).
    values: Vec<Range<usize>>,
}

impl Layout {
    fn scan(b: &[u8]) -> Self {
        let big_endian = b.starts_with(b"MM");
        let rd = |pos: usize, n: usize| -> Option<u64> {
            let s = b.get(pos..pos.checked_add(n)?)?;
            let mut v = 0u64;
            for k in 0..n {
                let byte = if big_endian { s[k] } else { s[n - 1 - k] };
                v = (v << 8) | u64::from(byte);
            }
            Some(v)
        };
        let bigtiff = rd(2, 2) == Some(43);
        let (hdr, cl, es, nl, inline) = if bigtiff {
            (16, 8, 20, 8, 8)
        } else {
            (8, 2, 12, 4, 4)
        };
        let mut layout = Self {
            big_endian,
            bigtiff,
            file_header: 0..hdr,
            ..Self::default()
        };
        let first = if bigtiff { rd(8, 8) } else { rd(4, 4) };
        let mut next = first.and_then(|v| usize::try_from(v).ok()).unwrap_or(0);
        while next != 0
            && layout.tables.len() < 256
            && !layout.tables.iter().any(|t| t.start == next)
        {
            let Some(count) = rd(next, cl).and_then(|c| usize::try_from(c).ok()) else {
                break;
            };
            let end = next + cl + count * es + nl;
            if end > b.len() {
                break;
            }
            for k in 0..count {
                let e = next + cl + k * es;
                let (Some(typ), Some(n)) = (rd(e + 2, 2), rd(e + 4, if bigtiff { 8 } else { 4 }))
                else {
                    break;
                };
                let size = match typ {
                    1 | 2 | 6 | 7 => 1u64,
                    3 | 8 => 2,
                    4 | 9 | 11 | 13 => 4,
                    _ => 8,
                }
                .saturating_mul(n);
                if size > inline {
                    let at = rd(e + es - inline as usize, inline as usize).unwrap_or(0) as usize;
                    let len = usize::try_from(size).unwrap_or(usize::MAX);
                    let stop = at.saturating_add(len).min(b.len());
                    if at < stop {
                        layout.values.push(at..stop);
                    }
                }
            }
            layout.tables.push(next..end);
            next = rd(end - nl, nl)
                .and_then(|v| usize::try_from(v).ok())
                .unwrap_or(0);
        }
        layout
    }

    /// End of the last IFD table.
    fn ifds_end(&self) -> usize {
        self.tables.iter().map(|r| r.end).max().unwrap_or(0)
    }

    /// End of the header region: all tables and out-of-line values.
    fn header_end(&self) -> usize {
        self.values
            .iter()
            .map(|r| r.end)
            .max()
            .unwrap_or(0)
            .max(self.ifds_end())
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic damage
// ---------------------------------------------------------------------------------------------

/// xorshift64*: tiny, deterministic, good enough to pick positions and values.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> T {
        v[self.below(v.len())]
    }
}

/// FNV-1a, to derive a per-file seed from its name.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// Writes `value` as an `n`-byte integer in the file's byte order, clipped to the file.
fn put(data: &mut [u8], pos: usize, n: usize, value: u64, big_endian: bool) {
    for k in 0..n {
        let shift = if big_endian { 8 * (n - 1 - k) } else { 8 * k };
        if let Some(b) = data.get_mut(pos + k) {
            *b = (value >> shift) as u8;
        }
    }
}

/// Applies 1 to 3 random mutations to the header structures of `data`; returns what it did.
fn mutate(data: &mut [u8], layout: &Layout, rng: &mut Rng) -> String {
    let len = data.len() as u64;
    let words: [u64; 14] = [
        0,
        1,
        2,
        3,
        7,
        8,
        255,
        0x7FFF,
        0xFFFF,
        0x1_0000,
        0x8000_0000,
        0xFFFF_FFFF,
        len.saturating_sub(1),
        len + 1,
    ];
    let (cl, es, ow) = if layout.bigtiff {
        (8, 20, 8)
    } else {
        (2, 12, 4)
    };
    let mut done = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let roll = rng.below(100);
        let op = if roll < 10 {
            // File header: byte order, version, first IFD offset.
            let pos = layout.file_header.start + rng.below(layout.file_header.len());
            data[pos] ^= 1 << rng.below(8);
            format!("flip-bit@{pos}")
        } else if roll < 55 && !layout.tables.is_empty() {
            // One field of one IFD entry (tag, type, count, value), or the entry count.
            let t = &layout.tables[rng.below(layout.tables.len())];
            let entries = (t.len() - cl - ow) / es;
            if entries == 0 || rng.below(8) == 0 {
                let v = rng.pick(&words);
                put(data, t.start, cl, v, layout.big_endian);
                format!("ifd-count@{}={v:#x}", t.start)
            } else {
                let e = t.start + cl + rng.below(entries) * es;
                let (field, at, n) = match rng.below(4) {
                    0 => ("tag", e, 2),
                    1 => ("type", e + 2, 2),
                    2 => ("count", e + 4, ow),
                    _ => ("value", e + 4 + ow, ow),
                };
                let v = if field == "type" {
                    rng.below(20) as u64
                } else if rng.below(3) == 0 {
                    rng.next() >> rng.below(64)
                } else {
                    rng.pick(&words)
                };
                put(data, at, n, v, layout.big_endian);
                format!("{field}@{at}={v:#x}")
            }
        } else if !layout.values.is_empty() && roll < 90 {
            // Inside an out-of-line value: offset arrays, byte counts, GeoKeys, text.
            let r = &layout.values[rng.below(layout.values.len())];
            let pos = r.start + rng.below(r.len().min(MAX_MUTATED_VALUE_BYTES));
            if rng.below(2) == 0 {
                let v = rng.pick(&words);
                put(data, pos, ow, v, layout.big_endian);
                format!("value-word@{pos}={v:#x}")
            } else {
                let x = 1 + rng.below(255) as u8;
                data[pos] ^= x;
                format!("value-xor@{pos}^{x:#x}")
            }
        } else {
            // Anywhere in the first 64 KiB.
            let pos = rng.below(data.len().min(64 << 10));
            let x = 1 + rng.below(255) as u8;
            data[pos] ^= x;
            format!("xor@{pos}^{x:#x}")
        };
        done.push(op);
    }
    done.join(",")
}

/// Where a file is cut: the fixed small offsets, half the header region, inside and just after
/// the IFDs, just after all header values, mid-data and one byte short.
fn cut_points(len: usize, layout: &Layout, header: &TiffHeader) -> Vec<usize> {
    let (mut data_start, mut data_end) = (usize::MAX, 0usize);
    for ifd in header.images.iter().chain(header.masks.iter().flatten()) {
        for i in 0..ifd.block_offsets.len() {
            if let Some((o, n)) = ifd.block_range(i) {
                data_start = data_start.min(o as usize);
                data_end = data_end.max((o + n) as usize);
            }
        }
    }
    let mid_data = if data_end > data_start {
        data_start + (data_end - data_start) / 2
    } else {
        len / 2
    };
    let mut cuts = vec![
        0,
        1,
        7,
        8,
        15,
        100,
        layout.header_end() / 2,
        layout.ifds_end(),
        // Inside the last IFD's next pointer, and in the middle of the first IFD's entries.
        layout.ifds_end().saturating_sub(1),
        layout.tables.first().map_or(0, |t| t.start + t.len() / 2),
        layout.header_end(),
        mid_data,
        len.saturating_sub(1),
    ];
    cuts.retain(|&c| c < len);
    cuts.sort_unstable();
    cuts.dedup();
    cuts
}

// ---------------------------------------------------------------------------------------------
// Tests on the real files
// ---------------------------------------------------------------------------------------------

#[test]
fn truncated_files_fail_cleanly() {
    let mut report = Report::default();
    for (name, bytes) in tif_files() {
        let header = TiffHeader::parse(&bytes.as_slice())
            .unwrap_or_else(|e| panic!("{name}: the intact file must parse: {e}"));
        let layout = Layout::scan(&bytes);
        assert!(
            !layout.tables.is_empty(),
            "{name}: the layout walker found no IFD"
        );
        for cut in cut_points(bytes.len(), &layout, &header) {
            let prefix = &bytes[..cut];
            report.run(&format!("{name} cut@{cut}"), prefix, |r| {
                exercise(prefix, Some(cut), r)
            });
        }
    }
    report.assert_clean("truncated files");
}

#[test]
fn mutated_headers_never_panic() {
    let mutations = std::env::var("KILN_CORRUPT_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTATIONS_PER_FILE);
    let mut report = Report::default();
    for (name, bytes) in tif_files() {
        let layout = Layout::scan(&bytes);
        assert!(
            !layout.tables.is_empty(),
            "{name}: the layout walker found no IFD"
        );
        let seed = fnv(&name);
        for k in 0..mutations {
            let mut rng = Rng::new(seed ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut damaged = bytes.clone();
            let what = mutate(&mut damaged, &layout, &mut rng);
            report.run(&format!("{name} mutation#{k}[{what}]"), &damaged, |r| {
                exercise(&damaged, None, r)
            });
        }
    }
    // The damage must reach the decoder often enough to mean something.
    assert!(
        report.parsed * 4 >= report.cases,
        "{}",
        report.summary("mutated headers")
    );
    report.assert_clean("mutated headers");
}

/// Calls `each(name, header, image number, ifd, block index, block bytes)` for up to three
/// stored blocks of every image and mask of every intact file.
fn for_sample_blocks(mut each: impl FnMut(&str, &TiffHeader, usize, &ImageIfd, usize, &[u8])) {
    for (name, bytes) in tif_files() {
        let header = TiffHeader::parse(&bytes.as_slice())
            .unwrap_or_else(|e| panic!("{name}: the intact file must parse: {e}"));
        let ifds = header.images.iter().chain(header.masks.iter().flatten());
        for (n, ifd) in ifds.enumerate() {
            for i in sample_indices(ifd.block_count(), 3) {
                if let Some((o, len)) = ifd.block_range(i) {
                    each(
                        &name,
                        &header,
                        n,
                        ifd,
                        i,
                        &bytes[o as usize..(o + len) as usize],
                    );
                }
            }
        }
    }
}

/// Decodes `block` cut to nothing and cut short (half its bytes; for uncompressed blocks,
/// which may carry padding, one byte less than the pixels need): both must be errors.
fn cut_short_cases(
    report: &mut Report,
    name: &str,
    header: &TiffHeader,
    n: usize,
    ifd: &ImageIfd,
    i: usize,
    block: &[u8],
) {
    let short = if ifd.compression == Compression::None {
        let row = (ifd.block_width as usize * ifd.block_bands() * usize::from(ifd.bits_per_sample))
            .div_ceil(8);
        (row * ifd.block_rows(i)).saturating_sub(1)
    } else {
        block.len() / 2
    };
    for cut in [0, short] {
        let part = &block[..cut.min(block.len())];
        let label = format!(
            "{name} ifd#{n} {:?} block {i} cut to {cut} of {} bytes",
            ifd.compression,
            block.len()
        );
        report.run(&label, part, |r| {
            let result = decode_block(header, ifd, i, part);
            let mut p: Vec<String> = check_decode(ifd, i, &result, r).into_iter().collect();
            if result.is_ok() {
                p.push("a block cut short decoded successfully".into());
            }
            p
        });
    }
}

/// Block bytes cut short never decode as a whole block (JPEG apart, see below); block bytes
/// with random bytes changed never panic and, when they decode, have the promised shape.
#[test]
fn damaged_block_bytes_fail_cleanly() {
    let mut report = Report::default();
    for_sample_blocks(|name, header, n, ifd, i, block| {
        if ifd.compression != Compression::Jpeg {
            cut_short_cases(&mut report, name, header, n, ifd, i, block);
        }
        let mut rng = Rng::new(fnv(name) ^ ((n as u64) << 40) ^ ((i as u64) << 8));
        for _ in 0..4 {
            let mut damaged = block.to_vec();
            let mut what = Vec::new();
            for _ in 0..1 + rng.below(8) {
                let pos = rng.below(damaged.len());
                let x = 1 + rng.below(255) as u8;
                damaged[pos] ^= x;
                what.push(format!("{pos}^{x:#x}"));
            }
            let label = format!("{name} ifd#{n} block {i} bytes[{}]", what.join(","));
            report.run(&label, &damaged, |r| {
                let result = decode_block(header, ifd, i, &damaged);
                check_decode(ifd, i, &result, r).into_iter().collect()
            });
        }
    });
    report.assert_clean("damaged block bytes");
}

/// A JPEG block cut short must be an error, not a tile whose lower part is silently grey.
///
/// (This failed when the suite was written: zune-jpeg in non-strict mode accepted a stream
/// missing its second half and filled the missing MCUs; the decoder now runs it strict.)
#[test]
fn jpeg_blocks_cut_short_are_errors() {
    let mut report = Report::default();
    for_sample_blocks(|name, header, n, ifd, i, block| {
        if ifd.compression == Compression::Jpeg {
            cut_short_cases(&mut report, name, header, n, ifd, i, block);
        }
    });
    assert!(
        report.cases >= 20,
        "{}",
        report.summary("JPEG blocks cut short")
    );
    report.assert_clean("JPEG blocks cut short");
}

// ---------------------------------------------------------------------------------------------
// Hostile headers built by hand
// ---------------------------------------------------------------------------------------------

/// IFD entry: (tag, field type, count, value or offset).
type E = (u16, u16, u32, u32);

const SHORT: u16 = 3;
const LONG: u16 = 4;

/// A little-endian classic TIFF: header, then one IFD per `ifds` item at the offsets given,
/// each with its next pointer, zero-padded to `len` bytes.
fn classic(ifds: &[(u32, &[E], u32)], len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    v[..4].copy_from_slice(b"II*\0");
    v[4..8].copy_from_slice(&ifds.first().map_or(0, |i| i.0).to_le_bytes());
    for &(at, entries, next) in ifds {
        let mut p = at as usize;
        let mut w = |bytes: &[u8]| {
            v[p..p + bytes.len()].copy_from_slice(bytes);
            p += bytes.len();
        };
        w(&(entries.len() as u16).to_le_bytes());
        for &(tag, typ, count, value) in entries {
            w(&tag.to_le_bytes());
            w(&typ.to_le_bytes());
            w(&count.to_le_bytes());
            w(&value.to_le_bytes());
        }
        w(&next.to_le_bytes());
    }
    v
}

/// A sane 16x16 one-tile 8-bit image whose single tile sits at byte 200 (the file is 456 bytes).
fn sane_tile(width: u32, height: u32, tile: (u32, u32)) -> Vec<E> {
    vec![
        (256, LONG, 1, width),
        (257, LONG, 1, height),
        (258, SHORT, 1, 8),
        (259, SHORT, 1, 1),
        (262, SHORT, 1, 1),
        (277, SHORT, 1, 1),
        (322, LONG, 1, tile.0),
        (323, LONG, 1, tile.1),
        (324, LONG, 1, 200),
        (325, LONG, 1, 256),
    ]
}

fn with(mut entries: Vec<E>, replace: &[E]) -> Vec<E> {
    for r in replace {
        entries.retain(|e| e.0 != r.0);
        entries.push(*r);
    }
    entries.sort_by_key(|e| e.0);
    entries
}

/// Runs `parse` on a hostile input under `catch_unwind` and checks the error kind and that it
/// answered fast (a parser that walks or allocates what the header claims would not).
fn expect_rejected(report: &mut Report, label: &str, data: &[u8], kinds: &[&'static str]) {
    let kinds = kinds.to_vec();
    report.run(label, data, move |r| {
        let start = Instant::now();
        let result = TiffHeader::parse(&data);
        let took = start.elapsed();
        let mut p = Vec::new();
        match &result {
            Ok(h) => p.push(format!(
                "parsed, expected one of {kinds:?}: {:?}",
                h.images
                    .first()
                    .map(|i| (i.width, i.height, i.block_width, i.block_height))
            )),
            Err(e) if !kinds.contains(&kind(e)) => {
                p.push(format!("got {e:?}, expected one of {kinds:?}"));
            }
            Err(e) => p.extend(error_problem(e)),
        }
        if let Err(e) = &result {
            *r.parse_errors.entry(kind(e)).or_default() += 1;
        }
        if took > Duration::from_millis(500) {
            p.push(format!(
                "took {took:?} to reject a {}-byte file",
                data.len()
            ));
        }
        p
    });
}

#[test]
fn hostile_headers_are_rejected_without_big_allocations() {
    let mut report = Report::default();
    let limit = ["TooLarge", "Malformed"];
    let limit_or_eof = ["TooLarge", "Malformed", "Truncated"];

    // The control: the sane file parses, so rejections below are due to the one hostile field.
    let sane = classic(&[(8, &sane_tile(16, 16, (16, 16)), 0)], 456);
    let h = TiffHeader::parse(&sane.as_slice()).unwrap();
    assert_eq!((h.images[0].width, h.images[0].block_count()), (16, 1));

    let giant_tile = with(sane_tile(65535, 65535, (65535, 65535)), &[]);
    expect_rejected(
        &mut report,
        "tile 65535x65535",
        &classic(&[(8, &giant_tile, 0)], 456),
        &limit,
    );

    // Sides within the per-side limit, but 4096 float64 samples per pixel: a 64 TiB block.
    let fat = with(
        sane_tile(16384, 16384, (16384, 16384)),
        &[
            (258, SHORT, 1, 64),
            (277, SHORT, 1, 4096),
            (339, SHORT, 1, 3),
        ],
    );
    expect_rejected(
        &mut report,
        "tile 16384x16384x4096xf64",
        &classic(&[(8, &fat, 0)], 456),
        &limit,
    );

    // A striped image 4 billion pixels wide: one row is already gigabytes.
    let wide_strip: Vec<E> = vec![
        (256, LONG, 1, u32::MAX),
        (257, LONG, 1, u32::MAX),
        (258, SHORT, 1, 8),
        (273, LONG, 1, 200),
        (277, SHORT, 1, 1),
        (278, LONG, 1, 1),
        (279, LONG, 1, 256),
    ];
    expect_rejected(
        &mut report,
        "strip 4294967295 wide",
        &classic(&[(8, &wide_strip, 0)], 456),
        &limit,
    );

    // 2^28 x 2^28 tiles x 4096 separate planes = 2^68 blocks: the count itself overflows u64.
    // (This case panicked when the suite was written: `across * down * planes` overflowed in
    // `build_image`. The input is kept in tests/regressions/.)
    let planes = with(
        sane_tile(u32::MAX, u32::MAX, (16, 16)),
        &[(277, SHORT, 1, 4096), (284, SHORT, 1, 2)],
    );
    expect_rejected(
        &mut report,
        "2^68 blocks (separate planes)",
        &classic(&[(8, &planes, 0)], 456),
        &limit,
    );

    // 2^56 tiles of 16x16 in a single plane.
    let many = sane_tile(u32::MAX, u32::MAX, (16, 16));
    expect_rejected(
        &mut report,
        "2^56 tiles",
        &classic(&[(8, &many, 0)], 456),
        &limit,
    );

    // Offset arrays claiming 4 billion entries (the values would lie far past the end).
    let huge_offsets = with(
        sane_tile(16, 16, (16, 16)),
        &[(324, LONG, u32::MAX, 100), (325, LONG, u32::MAX, 100)],
    );
    expect_rejected(
        &mut report,
        "TileOffsets count 2^32-1",
        &classic(&[(8, &huge_offsets, 0)], 456),
        &limit_or_eof,
    );

    // TileOffsets claiming 2^30 values although the image needs one: refused before any
    // read or allocation of that size.
    let lying_count = with(sane_tile(16, 16, (16, 16)), &[(324, LONG, 1 << 30, 100)]);
    expect_rejected(
        &mut report,
        "TileOffsets count 2^30",
        &classic(&[(8, &lying_count, 0)], 456),
        &limit_or_eof,
    );

    // GDAL_METADATA text claiming 1 GiB.
    let text = with(sane_tile(16, 16, (16, 16)), &[(42112, 2, 1 << 30, 100)]);
    expect_rejected(
        &mut report,
        "GDAL_METADATA 1 GiB",
        &classic(&[(8, &text, 0)], 456),
        &limit_or_eof,
    );

    // GeoKeyDirectory claiming 65535 keys in a 456-byte file.
    let keys = with(
        sane_tile(16, 16, (16, 16)),
        &[(34735, SHORT, 4 * 65_536, 100)],
    );
    expect_rejected(
        &mut report,
        "GeoKeyDirectory 65536 keys",
        &classic(&[(8, &keys, 0)], 456),
        &limit_or_eof,
    );

    // IFD chains that loop: onto itself, and A -> B -> A.
    let one = sane_tile(16, 16, (16, 16));
    expect_rejected(
        &mut report,
        "IFD loop onto itself",
        &classic(&[(8, &one, 8)], 456),
        &limit,
    );
    let ov = with(sane_tile(8, 8, (16, 16)), &[(254, LONG, 1, 1)]);
    expect_rejected(
        &mut report,
        "IFD loop A->B->A",
        &classic(&[(8, &one, 150), (150, &ov, 8)], 456),
        &limit,
    );

    // IFD entry counts past the end of a tiny file.
    let mut count_ffff = classic(&[], 16);
    count_ffff[4..8].copy_from_slice(&8u32.to_le_bytes());
    count_ffff[8..10].copy_from_slice(&0xFFFFu16.to_le_bytes());
    expect_rejected(
        &mut report,
        "IFD count 0xFFFF past EOF",
        &count_ffff,
        &limit_or_eof,
    );
    let mut bigtiff = b"II+\0\x08\0\0\0\x10\0\0\0\0\0\0\0".to_vec();
    bigtiff.extend_from_slice(&u64::MAX.to_le_bytes());
    bigtiff.resize(64, 0);
    expect_rejected(
        &mut report,
        "BigTIFF IFD count 2^64-1",
        &bigtiff,
        &limit_or_eof,
    );

    // A chain of 100k IFDs, each pointing to the next 2-byte-count empty IFD: must stop at a
    // bound, not walk them all.
    let n = 100_000usize;
    let mut chain = vec![0u8; 8 + n * 6];
    chain[..8].copy_from_slice(b"II*\0\x08\0\0\0");
    for k in 0..n {
        let at = 8 + k * 6;
        let next = if k + 1 < n { (at + 6) as u32 } else { 0 };
        chain[at + 2..at + 6].copy_from_slice(&next.to_le_bytes());
    }
    expect_rejected(&mut report, "100k chained IFDs", &chain, &limit);

    report.assert_clean("hostile headers");
}

/// Inputs that once crashed, hung or exhausted the memory of the reader must now fail or
/// decode cleanly. Two kinds live in `tests/regressions/`:
/// - `*.tif`: whole files, parsed and decoded like the damaged files above;
/// - `block__<data file stem>__<image>__<block>__<what>.bin`: the stored bytes of one block,
///   decoded under the header of that shared file (`<image>` counts images, then masks).
#[test]
fn regression_inputs_do_not_panic() {
    let dir = std::fs::read_dir(regressions_dir()).unwrap();
    let mut paths: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
    paths.sort();
    let mut report = Report::default();
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        let label = path.file_name().unwrap().to_string_lossy().into_owned();
        if label.ends_with(".tif") {
            report.run(&label, &bytes, |r| exercise(&bytes, None, r));
        } else if let Some(spec) = label.strip_prefix("block__") {
            let fields: Vec<&str> = spec.split("__").collect();
            let [stem, image, block, _what] = fields[..] else {
                panic!("{label}: expected block__<stem>__<image>__<block>__<what>.bin");
            };
            let file = std::fs::read(data_dir().join(format!("{stem}.tif"))).unwrap();
            let header = TiffHeader::parse(&file.as_slice()).unwrap();
            let ifds: Vec<&ImageIfd> = header
                .images
                .iter()
                .chain(header.masks.iter().flatten())
                .collect();
            let ifd = ifds[image.parse::<usize>().unwrap()];
            let i: usize = block.parse().unwrap();
            report.run(&label, &bytes, |r| {
                let result = decode_block(&header, ifd, i, &bytes);
                check_decode(ifd, i, &result, r).into_iter().collect()
            });
        }
    }
    assert!(
        report.cases > 0,
        "no inputs in {}",
        regressions_dir().display()
    );
    report.assert_clean("regression inputs");
}

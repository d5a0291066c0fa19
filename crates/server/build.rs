//! Embeds the web viewer (`viewer/` at the workspace root) in the binary.
//!
//! The viewer's own files (`viewer/src`) are plain HTML, CSS and JavaScript. MapLibre GL JS
//! comes from npm, in the version `viewer/package-lock.json` pins; this script takes its
//! prebuilt `dist/` from the first of:
//! 1. `KILN_MAPLIBRE_DIST`, MapLibre's `dist` directory (`maplibre-gl.js`, `maplibre-gl.css`,
//!    `LICENSE.txt`);
//! 2. `viewer/node_modules/maplibre-gl/dist` (after `npm ci` in `viewer/`);
//! 3. `npm ci` run here, in a copy of `viewer/package*.json` under `OUT_DIR` (unless
//!    `KILN_VIEWER_NPM=0`).
//!
//! Without any of them the build still succeeds: the viewer page then explains what is missing
//! and how to get it, and the rest of the server works as before.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const OWN_FILES: &[(&str, &str)] = &[
    ("index.html", "text/html; charset=utf-8"),
    ("app.js", "text/javascript; charset=utf-8"),
    ("app.css", "text/css; charset=utf-8"),
];
/// MapLibre's files: name in `dist/`, name served under `/viewer/`, content type.
const MAPLIBRE_FILES: &[(&str, &str, &str)] = &[
    (
        "maplibre-gl.js",
        "maplibre-gl.js",
        "text/javascript; charset=utf-8",
    ),
    (
        "maplibre-gl.css",
        "maplibre-gl.css",
        "text/css; charset=utf-8",
    ),
    // BSD-3-Clause asks binaries to carry the notice.
    (
        "LICENSE.txt",
        "maplibre-gl-LICENSE.txt",
        "text/plain; charset=utf-8",
    ),
];

fn main() {
    if let Err(e) = run() {
        // Build scripts report through cargo; a failure here is a broken checkout.
        println!("cargo::error=embedding the web viewer failed: {e}");
    }
}

fn run() -> Result<(), String> {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR")?);
    let out = PathBuf::from(env("OUT_DIR")?);
    let viewer = manifest.join("../../viewer");
    let src = viewer.join("src");
    for watched in ["src", "package.json", "package-lock.json"] {
        println!("cargo::rerun-if-changed={}", viewer.join(watched).display());
    }
    println!("cargo::rerun-if-env-changed=KILN_MAPLIBRE_DIST");
    println!("cargo::rerun-if-env-changed=KILN_VIEWER_NPM");

    let embed = out.join("viewer");
    std::fs::create_dir_all(&embed).map_err(|e| format!("{}: {e}", embed.display()))?;
    let mut files: Vec<(String, &str)> = Vec::new();
    for (name, mime) in OWN_FILES {
        copy(&src.join(name), &embed.join(name))?;
        files.push(((*name).to_string(), mime));
    }
    let missing = match maplibre_dist(&viewer, &out) {
        Ok(dist) => {
            for (name, served, mime) in MAPLIBRE_FILES {
                copy(&dist.join(name), &embed.join(served))?;
                files.push(((*served).to_string(), mime));
            }
            None
        }
        Err(reason) => {
            println!("cargo::warning=the web viewer is built without MapLibre GL JS: {reason}");
            // A path that does not exist makes cargo rerun this script on every build, so the
            // viewer appears as soon as `npm ci` has run or npm is installed.
            println!(
                "cargo::rerun-if-changed={}",
                viewer
                    .join("node_modules/maplibre-gl/dist/maplibre-gl.js")
                    .display()
            );
            Some(reason)
        }
    };

    let mut code =
        String::from("/// The viewer's files: name, content type, bytes, the bytes gzipped.\n");
    code.push_str("pub static FILES: &[(&str, &str, &[u8], &[u8])] = &[\n");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (name, mime) in &files {
        let path = embed.join(name);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let gz_path = embed.join(format!("{name}.gz"));
        std::fs::write(&gz_path, gzip(&bytes)?)
            .map_err(|e| format!("{}: {e}", gz_path.display()))?;
        for b in name.bytes().chain(bytes) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let _ = writeln!(
            code,
            "    ({name:?}, {mime:?}, include_bytes!({:?}), include_bytes!({:?})),",
            path.display().to_string(),
            gz_path.display().to_string()
        );
    }
    code.push_str("];\n");
    let _ = writeln!(
        code,
        "/// Why MapLibre GL JS is not embedded, if it is not.\npub const MISSING: Option<&str> = {missing:?};"
    );
    let _ = writeln!(
        code,
        "/// A tag that changes whenever any embedded file does (for ETags).\npub const TAG: &str = \"{hash:016x}\";"
    );
    let target = out.join("viewer_files.rs");
    std::fs::write(&target, code).map_err(|e| format!("{}: {e}", target.display()))
}

fn gzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(bytes)
        .and_then(|()| encoder.finish())
        .map_err(|e| format!("gzip: {e}"))
}

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("{name} is not set"))
}

fn copy(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
}

fn has_dist(dir: &Path) -> bool {
    MAPLIBRE_FILES
        .iter()
        .all(|(name, _, _)| dir.join(name).is_file())
}

/// The directory with MapLibre's prebuilt files, or why there is none.
fn maplibre_dist(viewer: &Path, out: &Path) -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("KILN_MAPLIBRE_DIST") {
        let dir = PathBuf::from(dir);
        return if has_dist(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "KILN_MAPLIBRE_DIST={} lacks maplibre-gl.js, maplibre-gl.css or LICENSE.txt",
                dir.display()
            ))
        };
    }
    let local = viewer.join("node_modules/maplibre-gl/dist");
    if has_dist(&local) {
        for (name, _, _) in MAPLIBRE_FILES {
            println!("cargo::rerun-if-changed={}", local.join(name).display());
        }
        return Ok(local);
    }
    if std::env::var("KILN_VIEWER_NPM").is_ok_and(|v| v == "0") {
        return Err("KILN_VIEWER_NPM=0 and viewer/node_modules has no maplibre-gl".into());
    }
    let work = out.join("npm");
    std::fs::create_dir_all(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let dist = work.join("node_modules/maplibre-gl/dist");
    // An earlier `npm ci` here counts only if it installed the lock file we have now.
    let lock = std::fs::read(viewer.join("package-lock.json")).ok();
    let installed = std::fs::read(work.join("package-lock.json")).ok();
    if lock.is_some() && lock == installed && has_dist(&dist) {
        return Ok(dist);
    }
    for name in ["package.json", "package-lock.json"] {
        copy(&viewer.join(name), &work.join(name))?;
    }
    let output = Command::new("npm")
        .args([
            "ci",
            "--omit=dev",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefer-offline",
            "--fetch-retries=1",
            // npm waits 5 minutes per request by default; a closed network should not stall
            // a build that long.
            "--fetch-timeout=20000",
            "--fetch-retry-maxtimeout=20000",
            "--loglevel=error",
        ])
        .current_dir(&work)
        .output()
        .map_err(|e| format!("npm could not be started ({e}); install Node.js and npm"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!("`npm ci` failed: {}", tail.join(" / ")));
    }
    if has_dist(&dist) {
        Ok(dist)
    } else {
        Err("`npm ci` ran but installed no maplibre-gl/dist".into())
    }
}

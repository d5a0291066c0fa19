//! End-to-end tests of `kiln serve`: the real binary on a free port, asked through hyper's
//! HTTP client (`common::http`), for what needs a real process: the startup line and the
//! log (a 5xx's request id names the log line with the reason), configuration resolution and
//! startup failures, serving files by pattern (`-r`, `--regex`), concurrency and saturation
//! (503), and the web viewer served from the binary with the flags that configure it. The
//! catalog is the one `api.rs` uses (`common::fixture`), made by the real `kiln ingest`.
//!
//! The API itself (every endpoint, parameter, error and pixel) is tested in process, through
//! the same router, by `api.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::fixture::{data, fixture, kiln, kiln_cmd, stderr, temp_file, LUX};
use common::http::{url, Api, InProcess, Server};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Errors: the log line behind a 5xx
// ---------------------------------------------------------------------------------------------

#[test]
fn unreadable_source_is_502_and_the_server_stays_up() {
    let s = Server::catalog();
    assert!(
        s.banner
            .starts_with("Kiln serving 7 datasets at http://127.0.0.1:"),
        "{}",
        s.banner
    );
    for target in [
        "/metadata/gone/1",
        "/singleband/gone/1/8/132/86.png",
        "/singleband/gone/1/8/132/86.npy",
        "/point/gone/1?lon=6&lat=49.8",
    ] {
        let r = s.get(target);
        assert_eq!(r.status, 502, "GET {target}: {}", r.text());
        let body = r.json();
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("cannot be read"), "{message}");
        // No path in the body: the file name and the reason are in the log, under the id
        // the body and the X-Request-Id header carry.
        assert!(
            !r.text().contains("gone_1") && !r.text().contains('/'),
            "GET {target}: {}",
            r.text()
        );
        let id = body["request_id"].as_str().expect("a request id");
        assert_eq!(r.header("x-request-id"), Some(id));
        let log = std::fs::read_to_string(&s.log).unwrap();
        let line = log
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("no log line with {id}: {log}"));
        assert!(line.contains("gone_1.tif"), "{line}");
    }
    assert_eq!(s.json("/health")["status"], "ok");
    // Other datasets still render.
    assert!(!s.bytes("/singleband/lux/1/8/132/86.png").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[test]
fn concurrent_requests_all_succeed_and_identical_ones_agree() {
    let s = Server::catalog();
    let distinct: Vec<String> = (0..64)
        .map(|i| {
            format!(
                "/singleband/etopo/1/3/{}/{}.png?colormap=terrain",
                i % 8,
                i / 8
            )
        })
        .collect();
    let same = "/singleband/l8/b2/12/1427/2342.png?colormap=viridis&stretch_range=[5000,9000]";
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let health = {
        let stop = stop.clone();
        let client = s.client();
        std::thread::spawn(move || {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || answered == 0 {
                let r = client.get("/health");
                assert_eq!(r.status, 200);
                answered += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            answered
        })
    };
    let mut handles = Vec::new();
    for t in distinct {
        handles.push((t.clone(), {
            let client = s.client();
            std::thread::spawn(move || client.get(&t))
        }));
    }
    for _ in 0..64 {
        let t = same.to_string();
        handles.push((t.clone(), {
            let client = s.client();
            std::thread::spawn(move || client.get(&t))
        }));
    }
    let mut same_bodies = Vec::new();
    let mut distinct_bodies = std::collections::HashSet::new();
    for (t, h) in handles {
        let r = h.join().unwrap();
        assert_eq!(r.status, 200, "{t}: {}", r.text());
        assert!(r.body.starts_with(b"\x89PNG"), "{t}");
        if t == same {
            same_bodies.push(r.body);
        } else {
            distinct_bodies.insert(r.body);
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let health_answers = health.join().unwrap();
    assert!(health_answers > 0);
    assert_eq!(same_bodies.len(), 64);
    assert!(
        same_bodies.windows(2).all(|w| w[0] == w[1]),
        "identical requests, different bytes"
    );
    assert!(
        distinct_bodies.len() > 32,
        "{} different tiles",
        distinct_bodies.len()
    );
    // And a later sequential request gives the same bytes.
    assert_eq!(s.bytes(same), same_bodies[0]);
}

#[test]
fn a_saturated_server_answers_503_with_retry_after() {
    // A queue of one: concurrent renders beyond it are refused, never left waiting.
    let s = Server::start(&[
        "-d",
        fixture().catalog.to_str().unwrap(),
        "--max-queue",
        "1",
        "--cpu-threads",
        "1",
    ]);
    let handles: Vec<_> = (0..32)
        .map(|i| {
            let client = s.client();
            std::thread::spawn(move || {
                let t = format!("/singleband/etopo/1/4/{}/{}.png", i % 16, 4 + i / 16);
                client.get(&t)
            })
        })
        .collect();
    let (mut ok, mut busy) = (0, 0);
    for h in handles {
        let r = h.join().unwrap();
        match r.status {
            200 => ok += 1,
            503 => {
                busy += 1;
                assert!(r.header("retry-after").is_some(), "503 without Retry-After");
                let msg = r.json()["message"].as_str().unwrap().to_string();
                assert!(msg.contains("busy"), "{msg}");
            }
            other => panic!("status {other}: {}", r.text()),
        }
    }
    eprintln!("saturated server: {ok} rendered, {busy} refused");
    assert!(ok >= 1);
    assert_eq!(s.json("/health")["status"], "ok");
}

// ---------------------------------------------------------------------------------------------
// -r mode
// ---------------------------------------------------------------------------------------------

/// One dangling symbolic link among the files `-r` matches: the rest are served and the
/// broken one is named on stderr; a pattern matching only broken links is refused.
#[test]
fn raster_pattern_mode_skips_a_dangling_link() {
    let dir = fixture().dir.join("dangling");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink(data(LUX), dir.join("good.tif")).unwrap();
    std::os::unix::fs::symlink(dir.join("nowhere.tif"), dir.join("broken.tif")).unwrap();
    let pattern = format!("{}/{{name}}.tif", dir.display());
    let s = Server::start(&["-r", &pattern]);
    assert!(
        s.banner.starts_with("Kiln serving 1 datasets"),
        "{}",
        s.banner
    );
    assert_eq!(s.json("/datasets")["datasets"], json!([{ "name": "good" }]));
    drop(s);
    let log = std::fs::read_dir(fixture().dir.join("out"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .find(|text| text.contains("broken.tif"))
        .unwrap_or_default();
    assert!(
        log.contains("warning: not serving"),
        "no warning naming the link: {log}"
    );

    let only = fixture().dir.join("dangling-only");
    let _ = std::fs::remove_dir_all(&only);
    std::fs::create_dir_all(&only).unwrap();
    std::os::unix::fs::symlink(only.join("nowhere.tif"), only.join("broken.tif")).unwrap();
    let only_broken = format!("{}/{{name}}.tif", only.display());
    let out = kiln_cmd(&["serve", "-r", &only_broken, "--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none of the 1 files"), "{err}");
}

#[test]
fn raster_pattern_mode_computes_metadata_lazily() {
    let fx = fixture();
    let r = Server::start(&["-r", &fx.pattern()]);
    assert!(
        r.banner.starts_with("Kiln serving 6 datasets"),
        "{}",
        r.banner
    );
    assert_eq!(
        r.json("/keys"),
        json!({ "keys": [{ "key": "name" }, { "key": "band" }] })
    );
    assert_eq!(r.json("/datasets")["datasets"].as_array().unwrap().len(), 6);
    let d = InProcess::catalog();
    for keys in ["lux/1", "l8/b3", "ms/all"] {
        let lazy = r.json(&format!("/metadata/{keys}"));
        let ingested = d.json(&format!("/metadata/{keys}"));
        assert_eq!(lazy, ingested, "{keys}");
        // Asked again, the stored copy answers the same.
        assert_eq!(r.json(&format!("/metadata/{keys}")), ingested, "{keys}");
    }
    let t = "/singleband/lux/1/8/132/86.npy";
    assert_eq!(r.bytes(t), d.bytes(t));
    let t = "/singleband/etopo/1/2/3/3.png?stretch_range=[p2,p98]";
    assert_eq!(r.bytes(t), d.bytes(t));
}

#[test]
fn one_key_catalogs_pick_rgb_and_compute_datasets_without_keys_in_the_path() {
    // A single key: RGB and compute name whole datasets, so the path holds no keys at all.
    let pattern = format!(
        "{}/(?P<file>l8_b[0-9])\\.tif",
        regex::escape(fixture().dir.to_str().unwrap())
    );
    let s = Server::start(&["--regex", "-r", &pattern]);
    assert!(
        s.banner.starts_with("Kiln serving 3 datasets"),
        "{}",
        s.banner
    );
    let query = [("r", "l8_b4"), ("g", "l8_b3"), ("b", "l8_b2")];
    let tj = s.json(&url("/rgb/tilejson.json", &query));
    let template = tj["tiles"][0].as_str().unwrap();
    let origin = s.origin();
    assert!(
        template.starts_with(&format!("{origin}/rgb/{{z}}/{{x}}/{{y}}.png?")),
        "{template}"
    );
    let local = template.trim_start_matches(&origin);
    let tile = s.get(&local.replace("{z}/{x}/{y}", "9/178/293"));
    assert_eq!(tile.status, 200, "{}", tile.text());
    assert_eq!(tile.header("content-type"), Some("image/png"));
    let compute = [
        ("expression", "v1 - v2"),
        ("v1", "l8_b4"),
        ("v2", "l8_b2"),
        ("stretch_range", "[-500,500]"),
    ];
    let tj = s.json(&url("/compute/tilejson.json", &compute));
    assert!(
        tj["tiles"][0]
            .as_str()
            .unwrap()
            .contains(&format!("{origin}/compute/{{z}}/{{x}}/{{y}}.png?")),
        "{tj}"
    );
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn configuration_printing_and_startup_failures() {
    let out = kiln_cmd(&["serve", "--print-config"])
        .env("KILN_PORT", "9123")
        .env("KILN_TILE_CACHE_MB", "17")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let cfg: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(cfg["port"].as_integer(), Some(9123), "{text}");
    assert_eq!(cfg["tile_cache_mb"].as_integer(), Some(17), "{text}");
    assert_eq!(cfg["host"].as_str(), Some("127.0.0.1"), "{text}");
    // A flag beats the environment.
    let out = kiln_cmd(&["serve", "--print-config", "--port", "9200"])
        .env("KILN_PORT", "9123")
        .output()
        .unwrap();
    let cfg: toml::Table = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(cfg["port"].as_integer(), Some(9200));

    // The printed configuration is a valid config file.
    let file = temp_file("printed.toml");
    std::fs::write(&file, &text).unwrap();
    let out = kiln(&[
        "serve",
        "--print-config",
        "--config",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);

    let bad = temp_file("bad.toml");
    std::fs::write(&bad, "prot = 8080\n").unwrap();
    let out = kiln(&[
        "serve",
        "--config",
        bad.to_str().unwrap(),
        "-d",
        fixture().catalog.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("prot"), "{}", stderr(&out));

    let out = kiln_cmd(&["serve", "--print-config"])
        .env("KILN_PORT", "eighty")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("KILN_PORT"), "{}", stderr(&out));

    let missing = fixture().dir.join("no-such-catalog.sqlite");
    let out = kiln(&["serve", "-d", missing.to_str().unwrap(), "--port", "0"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no-such-catalog.sqlite") && err.contains("does not exist"),
        "{err}"
    );

    let out = kiln(&["serve", "--port", "0"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("nothing to serve"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn basemap_setting_is_checked() {
    for bad in [
        "tiles.example.org/{z}/{x}/{y}.png",
        "https://tiles.example.org/{z}/{x}.png",
    ] {
        let out = kiln(&[
            "serve",
            "--print-config",
            "--basemap",
            bad,
            "-d",
            fixture().catalog.to_str().unwrap(),
        ]);
        assert!(!out.status.success(), "{bad}");
        let err = stderr(&out);
        assert!(err.contains("basemap") && err.contains("{z}"), "{err}");
    }
    let out = kiln_cmd(&["serve", "--print-config"])
        .env("KILN_BASEMAP", "https://t.example.org/{z}/{x}/{y}.png")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg: toml::Table = toml::from_str(&String::from_utf8(out.stdout).unwrap()).unwrap();
    assert_eq!(
        cfg["basemap"].as_str(),
        Some("https://t.example.org/{z}/{x}/{y}.png")
    );
}

// ---------------------------------------------------------------------------------------------
// The web viewer's files (the browser test in viewer/e2e drives the page itself)
// ---------------------------------------------------------------------------------------------

#[test]
fn viewer_is_served_from_the_binary() {
    let basemap = "https://tiles.example.org/{z}/{x}/{y}.png";
    let s = Server::start(&[
        "-d",
        fixture().catalog.to_str().unwrap(),
        "--basemap",
        basemap,
        "--cors-origins",
        "http://good.example",
    ]);
    // The flags reach the server: CORS answers only the origin given.
    let ok = s.get_with("/keys", &[("Origin", "http://good.example")]);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("http://good.example")
    );
    let no = s.get_with("/keys", &[("Origin", "http://evil.example")]);
    assert_eq!(no.header("access-control-allow-origin"), None);
    let config = s.json("/viewer/config.json");
    assert_eq!(config["basemap"], basemap);
    let colormaps: Vec<&str> = config["colormaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(colormaps.contains(&"viridis") && colormaps.contains(&"terrain"));
    // Every colormap the viewer offers is one /colormap knows.
    for name in &colormaps {
        s.json(&url(
            "/colormap",
            &[("colormap", name), ("stretch_range", "[0,1]")],
        ));
    }

    let page = s.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    let viewer_root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../viewer");
    let maplibre = viewer_root.join("node_modules/maplibre-gl/dist/maplibre-gl.js");
    if config["maplibre"] == json!(false) {
        // Built without npm: the page says so and how to fix it.
        assert!(html.contains("not in this build"), "{html}");
        assert!(html.contains("npm"), "{html}");
        return;
    }
    assert_eq!(
        html,
        std::fs::read_to_string(viewer_root.join("src/index.html")).unwrap()
    );
    // Every file the page links is served, with its content type, revalidated by ETag.
    for (file, mime) in [
        ("viewer/maplibre-gl.js", "text/javascript; charset=utf-8"),
        ("viewer/maplibre-gl.css", "text/css; charset=utf-8"),
        ("viewer/app.js", "text/javascript; charset=utf-8"),
        ("viewer/app.css", "text/css; charset=utf-8"),
    ] {
        assert!(
            html.contains(&format!("\"{file}\"")),
            "index.html links {file}"
        );
        let r = s.get(&format!("/{file}"));
        assert_eq!(r.status, 200, "{file}");
        assert_eq!(r.header("content-type"), Some(mime), "{file}");
        assert_eq!(r.header("cache-control"), Some("no-cache"), "{file}");
        let etag = r.header("etag").unwrap().to_string();
        let again = s.get_with(&format!("/{file}"), &[("If-None-Match", &etag)]);
        assert_eq!(again.status, 304, "{file}");
        assert!(again.body.is_empty(), "{file}");
        if file == "viewer/app.js" {
            assert_eq!(
                r.body,
                std::fs::read(viewer_root.join("src/app.js")).unwrap()
            );
        }
        if file == "viewer/maplibre-gl.js" && maplibre.exists() {
            assert_eq!(r.body, std::fs::read(&maplibre).unwrap());
        }
        // Gzipped for clients that take it: same bytes once inflated, its own ETag.
        let gz = s.get_with(&format!("/{file}"), &[("Accept-Encoding", "gzip, br")]);
        assert_eq!(gz.status, 200, "{file}");
        assert_eq!(gz.header("content-encoding"), Some("gzip"), "{file}");
        assert!(
            gz.header("vary")
                .is_some_and(|v| v.to_ascii_lowercase().contains("accept-encoding")),
            "{file}: {:?}",
            gz.header("vary")
        );
        assert_ne!(gz.header("etag"), Some(etag.as_str()), "{file}");
        let mut inflated = Vec::new();
        flate2::read::GzDecoder::new(gz.body.as_slice())
            .read_to_end(&mut inflated)
            .unwrap();
        assert_eq!(inflated, r.body, "{file}");
        assert!(gz.body.len() < r.body.len() / 2, "{file}");
        assert!(r.header("content-encoding").is_none(), "{file}");
    }
    let license = s.get("/viewer/maplibre-gl-LICENSE.txt");
    assert_eq!(license.status, 200);
    assert!(license.text().contains("MapLibre"), "{}", license.text());

    // /viewer leads to the page; unknown files are 404 with a message.
    let r = s.get("/viewer");
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("./"));
    let r = s.get("/viewer/");
    assert_eq!(r.status, 308);
    assert_eq!(r.header("location"), Some("../"));
    s.error("/viewer/secrets.txt", 404, &["secrets.txt"]);
    s.error("/viewer/..%2FCargo.toml", 404, &["Cargo.toml"]);
}

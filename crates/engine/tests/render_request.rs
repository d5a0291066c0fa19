//! The render cache key follows every field of a `RenderRequest`: each field is changed in
//! turn and the key must change, while a request rebuilt from the same parts keeps its key.
//! The structs are destructured without `..`, so a field added later breaks this test's build
//! until it gets a case here (and a place in the key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use kiln_catalog::BandStats;
use kiln_core::product::{ExplicitColormap, ImageFormat};
use kiln_core::tms::TileCoord;
use kiln_core::warp::{GridSpec, Resampling};
use kiln_core::GeoTransform;
use kiln_engine::{
    Area, Bound, ColormapChoice, ComputeOutput, Engine, EngineConfig, ImageOutput, Layer,
    OpenSource, Product, RangeSpec, RawFormat, RenderRequest, Tms,
};
use kiln_storage::MemorySource;

fn data(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data")
        .join(name)
}

const DEM: &str = "dem_srtm30s_luxembourg_i16_lzw.tif";

async fn open_version(engine: &Engine, file: &str, version: &str) -> Arc<OpenSource> {
    let path = data(file);
    let bytes = std::fs::read(&path).unwrap();
    let src = MemorySource::new(path.display().to_string(), version, bytes);
    engine.open(Arc::new(src)).await.unwrap()
}

fn stats(min: f64) -> Arc<[BandStats]> {
    vec![BandStats {
        min,
        max: 500.0,
        mean: 300.0,
        stdev: 50.0,
        percentiles: (1..=99).map(f64::from).collect(),
    }]
    .into()
}

fn image(format: ImageFormat, quality: u8) -> ImageOutput {
    ImageOutput { format, quality }
}

fn base(src: &Arc<OpenSource>) -> RenderRequest {
    RenderRequest {
        layers: vec![Layer {
            sources: vec![src.clone()],
            bands: Some(vec![1]),
            stats: Some(stats(100.0)),
            blend_px: 0,
        }],
        area: Area::Tile {
            tms: Tms::WebMercatorQuad,
            tile: TileCoord::new(9, 264, 174).unwrap(),
            size: 256,
            buffer: 0,
        },
        resampling: Resampling::Nearest,
        product: Product::SingleBand {
            stretch: RangeSpec::values(200.0, 400.0),
            colormap: ColormapChoice::Named("terrain".into()),
            image: image(ImageFormat::Png, 85),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_a_render_request_changes_its_cache_key() {
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let src = open_version(&engine, DEM, "v1").await;
    let same_file_new_version = open_version(&engine, DEM, "v2").await;
    let other = open_version(&engine, "global_etopo5_i16_cog.tif", "v1").await;
    let start = base(&src);
    let key = start.cache_key();
    // The same parts, built again (the source opened again too), give the same key.
    let again = open_version(&engine, DEM, "v1").await;
    assert_eq!(
        base(&again).cache_key(),
        key,
        "a rebuilt request keeps its key"
    );

    let RenderRequest {
        layers,
        area,
        resampling,
        product,
    } = &start;
    let Layer {
        sources,
        bands,
        stats: layer_stats,
        blend_px,
    } = &layers[0];
    let Area::Tile {
        tms,
        tile,
        size,
        buffer,
    } = *area
    else {
        unreachable!()
    };
    let Product::SingleBand {
        stretch,
        colormap,
        image: img,
    } = product
    else {
        unreachable!()
    };
    let ImageOutput { format, quality } = *img;
    let RangeSpec { lo, hi } = *stretch;
    assert_eq!(sources.len(), 1);
    assert_eq!(bands.as_deref(), Some(&[1][..]));

    let mut cases: Vec<(&str, RenderRequest)> = Vec::new();
    let mut with = |name: &'static str, f: &dyn Fn(&mut RenderRequest)| {
        let mut r = start.clone();
        f(&mut r);
        cases.push((name, r));
    };
    // layers
    with("layers: another source", &|r| {
        r.layers[0].sources = vec![other.clone()]
    });
    with("layers: the same file at a new version", &|r| {
        r.layers[0].sources = vec![same_file_new_version.clone()]
    });
    assert_eq!(*blend_px, 0);
    with("layers: seam blending", &|r| r.layers[0].blend_px = 8);
    with("layers: a second source by precedence", &|r| {
        r.layers[0].sources.push(other.clone())
    });
    with("layers: a second layer", &|r| {
        let l = r.layers[0].clone();
        r.layers.push(l)
    });
    with("layers: bands", &|r| r.layers[0].bands = Some(vec![1, 1]));
    with("layers: bands unnamed", &|r| r.layers[0].bands = None);
    with("layers: statistics unknown", &|r| r.layers[0].stats = None);
    with("layers: statistics changed", &|r| {
        r.layers[0].stats = Some(stats(101.0))
    });
    assert!(layer_stats.is_some());
    // area
    with("area: tile", &|r| {
        r.area = Area::Tile {
            tms,
            tile: TileCoord::new(9, 264, 175).unwrap(),
            size,
            buffer,
        }
    });
    with("area: tile zoom", &|r| {
        r.area = Area::Tile {
            tms,
            tile: TileCoord::new(10, 264, 174).unwrap(),
            size,
            buffer,
        }
    });
    with("area: size", &|r| {
        r.area = Area::Tile {
            tms,
            tile,
            size: 512,
            buffer,
        }
    });
    with("area: buffer", &|r| {
        r.area = Area::Tile {
            tms,
            tile,
            size,
            buffer: 2,
        }
    });
    // Tms has one variant today; a second one must join this list.
    match tms {
        Tms::WebMercatorQuad => {}
    }
    let grid = GridSpec {
        transform: GeoTransform::north_up(600_000.0, 6_400_000.0, 100.0, 100.0),
        width: 300,
        height: 200,
    };
    with("area: a grid", &|r| r.area = Area::Grid(grid));
    cases.push(("area: grid transform", {
        let mut r = start.clone();
        let mut g = grid;
        g.transform.0[0] += 1e-6;
        r.area = Area::Grid(g);
        r
    }));
    cases.push(("area: grid width", {
        let mut r = start.clone();
        r.area = Area::Grid(GridSpec { width: 301, ..grid });
        r
    }));
    cases.push(("area: grid height", {
        let mut r = start.clone();
        r.area = Area::Grid(GridSpec {
            height: 201,
            ..grid
        });
        r
    }));
    // resampling
    assert_eq!(*resampling, Resampling::Nearest);
    let mut with = |name: &'static str, f: &dyn Fn(&mut RenderRequest)| {
        let mut r = start.clone();
        f(&mut r);
        cases.push((name, r));
    };
    with("resampling: bilinear", &|r| {
        r.resampling = Resampling::Bilinear
    });
    with("resampling: cubic", &|r| r.resampling = Resampling::Cubic);
    // product
    let single =
        |stretch: RangeSpec, colormap: ColormapChoice, image: ImageOutput| Product::SingleBand {
            stretch,
            colormap,
            image,
        };
    let cm = colormap.clone();
    let img0 = *img;
    with("stretch: lower value", &|r| {
        r.product = single(
            RangeSpec {
                lo: Bound::Value(201.0),
                hi,
            },
            cm.clone(),
            img0,
        )
    });
    with("stretch: upper value", &|r| {
        r.product = single(
            RangeSpec {
                lo,
                hi: Bound::Value(401.0),
            },
            cm.clone(),
            img0,
        )
    });
    with("stretch: a percentile", &|r| {
        r.product = single(
            RangeSpec {
                lo: Bound::Percentile(2),
                hi,
            },
            cm.clone(),
            img0,
        )
    });
    with("stretch: another percentile", &|r| {
        r.product = single(
            RangeSpec {
                lo: Bound::Percentile(3),
                hi,
            },
            cm.clone(),
            img0,
        )
    });
    with("stretch: the default", &|r| {
        r.product = single(
            RangeSpec {
                lo: Bound::Default,
                hi,
            },
            cm.clone(),
            img0,
        )
    });
    with("colormap: another name", &|r| {
        r.product = single(*stretch, ColormapChoice::Named("viridis".into()), img0)
    });
    with("colormap: default", &|r| {
        r.product = single(*stretch, ColormapChoice::Default, img0)
    });
    let explicit = |v: f64| {
        ColormapChoice::Explicit(ExplicitColormap::new(vec![(v, [255, 0, 0, 255])]).unwrap())
    };
    with("colormap: explicit", &|r| {
        r.product = single(*stretch, explicit(1.0), img0)
    });
    with("image: format", &|r| {
        r.product = single(*stretch, cm.clone(), image(ImageFormat::Webp, quality))
    });
    with("image: quality", &|r| {
        r.product = single(*stretch, cm.clone(), image(format, 90))
    });
    with("product: raw npy", &|r| {
        r.product = Product::Raw(RawFormat::Npy)
    });
    with("product: raw GeoTIFF", &|r| {
        r.product = Product::Raw(RawFormat::GeoTiff)
    });
    let rgb = |s: [RangeSpec; 3]| Product::Rgb {
        stretch: s,
        image: img0,
    };
    with("product: rgb", &|r| r.product = rgb([*stretch; 3]));
    let compute =
        |expression: &str, variables: Vec<usize>, output: ComputeOutput| Product::Compute {
            expression: expression.into(),
            variables,
            output,
        };
    let cimg = ComputeOutput::Image {
        stretch: *stretch,
        colormap: cm.clone(),
        image: img0,
    };
    with("product: compute", &|r| {
        r.product = compute("v1 * 2", vec![1], cimg.clone())
    });
    let mut keys: Vec<(&str, kiln_engine::RenderKey)> = cases
        .iter()
        .map(|(name, r)| (*name, r.cache_key()))
        .collect();

    // Fields inside the RGB and compute products, each against its own base.
    let rgb_base = {
        let mut r = start.clone();
        r.product = rgb([*stretch; 3]);
        r
    };
    for (i, name) in ["rgb: r range", "rgb: g range", "rgb: b range"]
        .into_iter()
        .enumerate()
    {
        let mut s = [*stretch; 3];
        s[i] = RangeSpec::values(0.0, 1.0);
        let mut r = rgb_base.clone();
        r.product = rgb(s);
        assert_ne!(r.cache_key(), rgb_base.cache_key(), "{name}");
    }
    let compute_base = {
        let mut r = start.clone();
        r.product = compute("v1 * 2", vec![1], cimg.clone());
        r
    };
    let compute_cases = [
        (
            "compute: expression",
            compute("v1 * 3", vec![1], cimg.clone()),
        ),
        (
            "compute: variables",
            compute("v1 * 2", vec![2], cimg.clone()),
        ),
        (
            "compute: raw output",
            compute("v1 * 2", vec![1], ComputeOutput::Raw(RawFormat::Npy)),
        ),
        (
            "compute: stretch",
            compute(
                "v1 * 2",
                vec![1],
                ComputeOutput::Image {
                    stretch: RangeSpec::values(0.0, 1.0),
                    colormap: cm.clone(),
                    image: img0,
                },
            ),
        ),
        (
            "compute: colormap",
            compute(
                "v1 * 2",
                vec![1],
                ComputeOutput::Image {
                    stretch: *stretch,
                    colormap: ColormapChoice::Default,
                    image: img0,
                },
            ),
        ),
        (
            "compute: image",
            compute(
                "v1 * 2",
                vec![1],
                ComputeOutput::Image {
                    stretch: *stretch,
                    colormap: cm.clone(),
                    image: image(ImageFormat::Jpeg, quality),
                },
            ),
        ),
    ];
    for (name, p) in compute_cases {
        let mut r = compute_base.clone();
        r.product = p;
        assert_ne!(r.cache_key(), compute_base.cache_key(), "{name}");
    }

    // Every single change moves the key away from the base and from every other change.
    keys.push(("base", key));
    keys.sort_by_key(|(_, k)| *k);
    for w in keys.windows(2) {
        assert_ne!(w[0].1, w[1].1, "{} and {} share a key", w[0].0, w[1].0);
    }
    assert!(keys.len() > 30, "{} cases", keys.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buffered_tile_holds_the_tile_in_its_middle() {
    // The buffer grows the grid around the tile: its inner 256 x 256 pixels are the tile's.
    let engine = Engine::new(&EngineConfig::default()).unwrap();
    let src = open_version(&engine, DEM, "v1").await;
    let mut req = base(&src);
    req.product = Product::Raw(RawFormat::Npy);
    let plain = engine.render_values(&req).await.unwrap();
    let tile = TileCoord::new(9, 264, 174).unwrap();
    req.area = Area::Tile {
        tms: Tms::WebMercatorQuad,
        tile,
        size: 256,
        buffer: 2,
    };
    let buffered = engine.render_values(&req).await.unwrap();
    assert_eq!((buffered.width(), buffered.height()), (260, 260));
    let mut differ = 0;
    for row in 0..256 {
        for col in 0..256 {
            let a = plain.samples().get_f64(row * 256 + col);
            let b = buffered.samples().get_f64((row + 2) * 260 + col + 2);
            let (ma, mb) = (
                plain.mask()[row * 256 + col],
                buffered.mask()[(row + 2) * 260 + col + 2],
            );
            if ma != mb || (ma != 0 && a != b) {
                differ += 1;
            }
        }
    }
    assert_eq!(
        differ, 0,
        "inner pixels of the buffered tile differ from the tile"
    );
    assert!(
        plain.valid_fraction() > 0.5,
        "the tile is over Luxembourg's data"
    );
}

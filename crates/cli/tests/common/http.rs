//! Asking the API, two ways, behind one trait ([`Api`]): in process, `kiln_server::router`
//! driven with `tower::ServiceExt::oneshot` ([`InProcess`]: what most tests use), or a real
//! `kiln serve` process on a free port ([`Server`]) through hyper's client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;
use tower::ServiceExt;

use super::fixture::{fixture, kiln_cmd, temp_file};
use super::npy::{parse_npy, NpyArray};

/// The longest one request may take.
const TIMEOUT: Duration = Duration::from_secs(120);

/// The runtime every request of a test binary runs on; tests call it from their own threads.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A whole answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

async fn collect(resp: axum::http::Response<Body>) -> Response {
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_else(|e| panic!("reading the body: {e}"));
    Response {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: body.to_vec(),
    }
}

/// The API, however it is reached.
pub trait Api {
    /// `scheme://host:port` as clients name this server (TileJSON URLs start with it).
    fn origin(&self) -> String;

    /// Sends `request` (its URI a path and query) and waits for the whole answer.
    fn send(&self, request: Request<Body>) -> Response;

    fn request(
        &self,
        method: Method,
        target: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Response {
        let mut builder = Request::builder().method(method).uri(target);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        self.send(builder.body(Body::from(body)).unwrap())
    }

    fn get(&self, target: &str) -> Response {
        self.request(Method::GET, target, &[], Vec::new())
    }

    fn get_with(&self, target: &str, headers: &[(&str, &str)]) -> Response {
        self.request(Method::GET, target, headers, Vec::new())
    }

    fn post(&self, target: &str, body: &Value) -> Response {
        self.request(
            Method::POST,
            target,
            &[("Content-Type", "application/json")],
            serde_json::to_vec(body).unwrap(),
        )
    }

    /// GET that must answer 200 with a JSON body.
    fn json(&self, target: &str) -> Value {
        let r = self.get(target);
        assert_eq!(r.status, 200, "GET {target}: {}", r.text());
        r.json()
    }

    /// GET that must answer 200; the body.
    fn bytes(&self, target: &str) -> Vec<u8> {
        let r = self.get(target);
        assert_eq!(r.status, 200, "GET {target}: {}", r.text());
        r.body
    }

    fn npy(&self, target: &str) -> NpyArray {
        let r = self.get(target);
        assert_eq!(r.status, 200, "GET {target}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("application/x-npy"));
        parse_npy(&r.body).unwrap()
    }

    /// GET that must fail with `status` and a JSON message containing every one of `needles`.
    fn error(&self, target: &str, status: u16, needles: &[&str]) -> String {
        let r = self.get(target);
        assert_eq!(r.status, status, "GET {target}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json"),
            "GET {target}"
        );
        let message = r.json()["message"]
            .as_str()
            .unwrap_or_else(|| panic!("GET {target}: no message in {}", r.text()))
            .to_string();
        for n in needles {
            assert!(
                message.contains(n),
                "GET {target}: message {message:?} lacks {n:?}"
            );
        }
        message
    }
}

// ---------------------------------------------------------------------------------------------
// In process: the router `kiln serve` runs, without a socket.
// ---------------------------------------------------------------------------------------------

/// The `Host` in-process requests carry, as a client of `kiln serve` on its default port would.
const IN_PROCESS_HOST: &str = "127.0.0.1:8080";

pub struct InProcess {
    router: axum::Router,
}

impl InProcess {
    /// The test catalog with `kiln serve`'s default settings.
    pub fn catalog() -> Self {
        Self::open(&fixture().catalog, kiln_server::ServerConfig::default())
    }

    /// The catalog at `path` with `config`; the engine as `kiln serve` sets it up by default.
    pub fn open(path: &Path, config: kiln_server::ServerConfig) -> Self {
        let location = kiln_catalog::CatalogLocation::Sqlite(path.to_path_buf());
        runtime().block_on(async move {
            let catalog = kiln_catalog::open(&location).await.unwrap();
            Self::with_catalog(Arc::from(catalog), config)
        })
    }

    pub fn with_catalog(
        catalog: Arc<dyn kiln_catalog::Catalog>,
        config: kiln_server::ServerConfig,
    ) -> Self {
        let engine = kiln_engine::Engine::new(&kiln_engine::EngineConfig::default()).unwrap();
        let state = kiln_server::AppState::new(engine, catalog, config);
        Self {
            router: kiln_server::router(state),
        }
    }
}

impl Api for InProcess {
    fn origin(&self) -> String {
        format!("http://{IN_PROCESS_HOST}")
    }

    fn send(&self, mut request: Request<Body>) -> Response {
        request
            .headers_mut()
            .entry(header::HOST)
            .or_insert(HeaderValue::from_static(IN_PROCESS_HOST));
        let what = format!("{} {}", request.method(), request.uri());
        let router = self.router.clone();
        runtime().block_on(async move {
            let answer = async { collect(router.oneshot(request).await.unwrap()).await };
            tokio::time::timeout(TIMEOUT, answer)
                .await
                .unwrap_or_else(|_| panic!("{what}: no answer in {TIMEOUT:?}"))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// A real `kiln serve`, killed when dropped, and a client of it.
// ---------------------------------------------------------------------------------------------

pub struct Server {
    child: Child,
    pub port: u16,
    pub banner: String,
    /// Where the server's stderr (its log) goes.
    pub log: PathBuf,
    client: Client,
    _stdout: BufReader<ChildStdout>,
}

impl Server {
    /// `kiln serve ARGS --host 127.0.0.1 --port 0`, once it has printed its address.
    pub fn start(args: &[&str]) -> Self {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = temp_file(&format!("server-{n}.log"));
        // Temporary files (the `-r` catalog) go under the fixture, removed with it.
        let tmp = fixture().dir.join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let mut cmd = kiln_cmd(&["serve"]);
        cmd.env("TMPDIR", &tmp)
            .args(args)
            .args(["--host", "127.0.0.1", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        stdout.read_line(&mut banner).unwrap();
        let port = banner
            .split("http://127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse::<u16>().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "kiln serve printed {banner:?}; stderr: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        Self {
            child,
            port,
            banner,
            log,
            client: Client::new(port),
            _stdout: stdout,
        }
    }

    /// `kiln serve -d` the test catalog.
    pub fn catalog() -> Self {
        Self::start(&["-d", fixture().catalog.to_str().unwrap()])
    }

    /// A client to send requests from other threads.
    pub fn client(&self) -> Client {
        self.client.clone()
    }
}

impl Api for Server {
    fn origin(&self) -> String {
        self.client.origin()
    }

    fn send(&self, request: Request<Body>) -> Response {
        self.client.send(request)
    }
}

impl Drop for Server {
    /// SIGTERM first, so a `-r` server removes its temporary catalog; SIGKILL if it lingers.
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let termed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .is_ok_and(|s| s.success());
        if termed {
            for _ in 0..100 {
                if matches!(self.child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP/1.1 to `127.0.0.1:port` (hyper's client; connections kept alive and reused).
#[derive(Clone)]
pub struct Client {
    port: u16,
    http: hyper_util::client::legacy::Client<HttpConnector, Body>,
}

impl Client {
    fn new(port: u16) -> Self {
        let _in_runtime = runtime().enter();
        let http = hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build_http();
        Self { port, http }
    }
}

impl Api for Client {
    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn send(&self, request: Request<Body>) -> Response {
        let (mut parts, body) = request.into_parts();
        let what = format!("{} {}", parts.method, parts.uri);
        parts.uri = format!("{}{}", self.origin(), parts.uri).parse().unwrap();
        let request = Request::from_parts(parts, body);
        let http = self.http.clone();
        runtime().block_on(async move {
            let answer = async {
                let resp = http
                    .request(request)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                collect(resp.map(Body::new)).await
            };
            tokio::time::timeout(TIMEOUT, answer)
                .await
                .unwrap_or_else(|_| panic!("{what}: no answer in {TIMEOUT:?}"))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// URLs
// ---------------------------------------------------------------------------------------------

/// Everything but unreserved characters is percent-encoded in query values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `path?k=v&...` with encoded values.
pub fn url(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = query
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, QUERY_VALUE)))
        .collect();
    format!("{path}?{}", q.join("&"))
}

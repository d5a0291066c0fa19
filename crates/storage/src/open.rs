//! Sources by URI: the one place that turns a catalog URI or a command-line path into a
//! [`ByteSource`]. Local paths and `file://` URIs today; `http(s)://` and `s3://` are
//! recognised and refused by name until their sources land here, and nowhere else.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use percent_encoding::percent_decode_str;

use crate::{ByteSource, FileSource, StorageError};

/// Where a source lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A local file (from a plain path or a `file://` URI).
    File(PathBuf),
}

impl Location {
    /// Parses a URI or a path. A string without a `scheme://` prefix is a path (relative
    /// paths stay relative: the process's working directory resolves them, as for any file
    /// argument). `file://` URIs take an absolute, percent-encoded path and an empty or
    /// `localhost` host.
    pub fn parse(uri: &str) -> Result<Self, StorageError> {
        let Some((scheme, rest)) = split_scheme(uri) else {
            if uri.is_empty() {
                return Err(StorageError::BadUri {
                    uri: uri.into(),
                    reason: "empty".into(),
                });
            }
            return Ok(Self::File(PathBuf::from(uri)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                // file://HOST/PATH: the host must be local.
                let (host, path) = match rest.find('/') {
                    Some(i) => rest.split_at(i),
                    None => (rest, ""),
                };
                if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                    return Err(StorageError::BadUri {
                        uri: uri.into(),
                        reason: format!(
                            "file URIs name local files; host {host:?} is not this one"
                        ),
                    });
                }
                if path.is_empty() {
                    return Err(StorageError::BadUri {
                        uri: uri.into(),
                        reason: "no path after file://".into(),
                    });
                }
                let decoded =
                    percent_decode_str(path)
                        .decode_utf8()
                        .map_err(|_| StorageError::BadUri {
                            uri: uri.into(),
                            reason: "the percent-encoded path is not UTF-8".into(),
                        })?;
                if decoded.contains('\0') {
                    return Err(StorageError::BadUri {
                        uri: uri.into(),
                        reason: "the path holds a NUL byte".into(),
                    });
                }
                Ok(Self::File(PathBuf::from(decoded.as_ref())))
            }
            "http" | "https" | "s3" => Err(StorageError::Unsupported {
                uri: uri.into(),
                reason: format!("{scheme}:// sources are not supported yet (local files only)"),
            }),
            other => Err(StorageError::Unsupported {
                uri: uri.into(),
                reason: format!("unknown URI scheme {other:?}"),
            }),
        }
    }
}

/// `(scheme, rest)` of `scheme://rest`, when the string starts with a URI scheme
/// (RFC 3986: a letter, then letters, digits, `+`, `-` or `.`).
fn split_scheme(uri: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = uri.split_once("://")?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
    .then_some((scheme, rest))
}

/// Opens the source a URI or path names.
pub async fn open(uri: &str) -> Result<Arc<dyn ByteSource>, StorageError> {
    match Location::parse(uri)? {
        Location::File(path) => Ok(Arc::new(FileSource::open(path).await?)),
    }
}

/// Opens a local file by path (for callers that hold a `Path`, such as command-line
/// arguments that need not be UTF-8).
pub async fn open_path(path: &Path) -> Result<Arc<dyn ByteSource>, StorageError> {
    Ok(Arc::new(FileSource::open(path).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_file_uris() {
        let f = |s: &str| Location::parse(s).map(|Location::File(p)| p);
        assert_eq!(f("data/a.tif").unwrap(), PathBuf::from("data/a.tif"));
        assert_eq!(f("/abs/a b.tif").unwrap(), PathBuf::from("/abs/a b.tif"));
        assert_eq!(
            f("file:///abs/a%20b.tif").unwrap(),
            PathBuf::from("/abs/a b.tif")
        );
        assert_eq!(
            f("FILE://localhost/abs/%C3%A9.tif").unwrap(),
            PathBuf::from("/abs/é.tif")
        );
        // A colon without `//` is part of a file name.
        assert_eq!(f("dem:v2.tif").unwrap(), PathBuf::from("dem:v2.tif"));
        for bad in [
            "",
            "file://other-host/a.tif",
            "file://",
            "file:///a%00b",
            "file:///%FF",
        ] {
            assert!(
                matches!(Location::parse(bad), Err(StorageError::BadUri { .. })),
                "{bad}"
            );
        }
        for later in [
            "https://example.com/a.tif",
            "s3://bucket/a.tif",
            "gopher://x/y",
        ] {
            match Location::parse(later) {
                Err(StorageError::Unsupported { reason, .. }) => {
                    assert!(!reason.is_empty(), "{later}");
                }
                other => panic!("{later}: {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn open_reads_a_file_by_uri_and_by_path() {
        let dir = std::env::temp_dir().join(format!("kiln-storage-open-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a b.bin");
        std::fs::write(&path, b"0123456789").unwrap();
        let uri = format!("file://{}", path.display().to_string().replace(' ', "%20"));
        let by_uri = open(&uri).await.unwrap();
        let by_path = open(path.to_str().unwrap()).await.unwrap();
        assert_eq!(by_uri.len(), 10);
        // One file, one identity, whichever way it was named.
        assert_eq!(by_uri.identity(), by_path.identity());
        let got = by_uri
            .read_range(crate::ByteRange::new(2, 3))
            .await
            .unwrap();
        assert_eq!(&got[..], b"234");
        assert!(matches!(
            open(dir.join("missing.bin").to_str().unwrap()).await,
            Err(StorageError::NotFound { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Downloads over HTTP(S) for what a registry only names by URL: icons (`icon=base64`) and
//! remote starter project zips. Every download has a timeout and a size limit, and is read
//! whole into memory.

use std::time::Duration;

use bytes::{Bytes, BytesMut};

/// Why a download failed, in words fit for a log line (never for a response body).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("cannot create an HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("{url}: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url}: HTTP {status}")]
    Status { url: String, status: reqwest::StatusCode },
    #[error("{url}: larger than {max_bytes} bytes")]
    TooLarge { url: String, max_bytes: usize },
}

/// A client whose requests give up after `timeout` (connecting included). Redirects are
/// followed (at most 10), as browsers do for the same URLs.
pub fn client(timeout: Duration) -> Result<reqwest::Client, DownloadError> {
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .user_agent(concat!("devfile-registry-index-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(DownloadError::Client)
}

/// The body of a successful (2xx) GET of `url`, refused as soon as it is known to exceed
/// `max_bytes` (from `Content-Length`, or while reading).
pub async fn get(client: &reqwest::Client, url: &str, max_bytes: usize) -> Result<Bytes, DownloadError> {
    let failed = |source| DownloadError::Request { url: url.to_string(), source };
    let too_large = || DownloadError::TooLarge { url: url.to_string(), max_bytes };
    let mut response = client.get(url).send().await.map_err(failed)?;
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::Status { url: url.to_string(), status });
    }
    if response.content_length().is_some_and(|len| len > max_bytes as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

//! The CSS and JavaScript of the pages, embedded in the binary. Pages link them with
//! `?v=<version>` (a hash of the files), so browsers may keep them for good.

use std::sync::LazyLock;

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSS: &str = include_str!("../assets/viewer.css");
const JS: &str = include_str!("../assets/viewer.js");

/// A hash of the assets (FNV-1a, 64 bits, hex): changes whenever one of them does.
pub fn version() -> &'static str {
    static VERSION: LazyLock<String> = LazyLock::new(|| {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in CSS.bytes().chain(JS.bytes()) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    });
    &VERSION
}

/// `GET /viewer/assets/{file}`.
pub async fn serve(Path(file): Path<String>, RawQuery(query): RawQuery) -> Response {
    let (body, content_type) = match file.as_str() {
        "viewer.css" => (CSS, "text/css; charset=utf-8"),
        "viewer.js" => (JS, "text/javascript; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    // Only the URL of this very version may be kept forever.
    let cache = if query.as_deref() == Some(&format!("v={}", version())) {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

//! Who may use the node's API (docs/web-app.md, "Security"). The server listens on loopback
//! only; every request must name it in `Host` (a page on another site cannot reach it through
//! DNS rebinding); an API request must carry the secret token that `pedals ui` printed, and
//! come from the page's own origin, if from a page at all. No CORS header is ever sent, so a
//! browser keeps other sites' scripts from reading any answer.

use std::net::SocketAddr;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use subtle::ConstantTimeEq;

use crate::api::error;

/// The token and the addresses the server answers to.
#[derive(Debug, Clone)]
pub struct Guard {
    token: String,
    hosts: Vec<String>,
}

impl Guard {
    /// A guard for a server bound to `addr` with a fresh random token.
    pub fn new(addr: SocketAddr) -> Self {
        let bytes: [u8; 32] = rand::random();
        Self::with_token(addr, alloy::hex::encode(bytes))
    }

    /// A guard with a given token (tests).
    pub fn with_token(addr: SocketAddr, token: String) -> Self {
        let port = addr.port();
        let mut hosts = vec![format!("localhost:{port}")];
        hosts.push(match addr {
            SocketAddr::V4(a) => format!("{}:{port}", a.ip()),
            SocketAddr::V6(a) => format!("[{}]:{port}", a.ip()),
        });
        Self { token, hosts }
    }

    /// The token a client must send.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Why `headers` may not use the API, or none.
    fn refuse_api(&self, headers: &HeaderMap) -> Option<(StatusCode, String)> {
        let text = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
        if let Some(origin) = text(header::ORIGIN)
            && !self.hosts.iter().any(|h| origin == format!("http://{h}"))
        {
            return Some((
                StatusCode::FORBIDDEN,
                format!(
                    "requests from {origin} are refused: only this node's own page may use its API"
                ),
            ));
        }
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return Some((
                StatusCode::FORBIDDEN,
                "cross-site requests are refused".into(),
            ));
        }
        let given = text(header::AUTHORIZATION)
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(self.token.as_bytes())) {
            return Some((
                StatusCode::UNAUTHORIZED,
                "no valid token: open the address that `pedals ui` printed (it ends with #token=…)"
                    .into(),
            ));
        }
        None
    }
}

/// Checks `Host` on every request and the API's rules on `/api/`; adds the headers that keep
/// the page from being framed or its addresses leaked.
pub async fn guard(State(g): State<std::sync::Arc<Guard>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let refused = if !g.hosts.iter().any(|h| h == host) {
        Some((
            StatusCode::FORBIDDEN,
            format!("this node answers only as {}", g.hosts.join(" or ")),
        ))
    } else if req.uri().path().starts_with("/api/") {
        g.refuse_api(headers)
    } else {
        None
    };
    let mut res = match refused {
        Some((status, message)) => error(status, &message).into_response(),
        None => next.run(req).await,
    };
    let h = res.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    res
}

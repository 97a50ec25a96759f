//! The HTTP API of a running pipeline: `/healthz`, `/readyz`, `/metrics` (Prometheus),
//! `/api/pipelines` and `/api/dead-letters` (JSON), and a dashboard page at `/`
//! (embedded, works offline). Bound to loopback unless configured otherwise, with an
//! optional bearer token (not needed for `/healthz`). A few GET routes answered
//! straight from [`Telemetry`] — small enough to serve without a web framework.

use penstock_pipeline::telemetry::Telemetry;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The web dashboard: one self-contained page (no CDN), polling the API.
const DASHBOARD: &str = include_str!("dashboard.html");

/// Largest request head read.
const MAX_HEAD: usize = 8 << 10;

/// Binds `addr` and serves until the process ends. A bind failure is reported and the
/// pipeline runs without the API.
pub(crate) async fn serve(addr: String, token: Option<String>, telemetry: Arc<Telemetry>) {
    let listener = match TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(%addr, error = %e, "cannot serve the HTTP API; the pipeline runs without it");
            return;
        }
    };
    let local = listener.local_addr().map(|a| a.to_string()).unwrap_or(addr);
    tracing::info!(addr = %local, "HTTP API and dashboard: / /metrics /healthz /readyz /api/pipelines /api/dead-letters");
    let token = Arc::new(token);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (t, token) = (telemetry.clone(), token.clone());
        tokio::spawn(async move {
            let _ = handle(stream, &t, token.as_deref()).await;
        });
    }
}

/// `/api/dead-letters?limit=N&pipeline=NAME`: recent dead letters, from ClickHouse.
async fn dead_letters(path: &str, t: &Telemetry) -> (u16, &'static str, String) {
    let query = path.split_once('?').map_or("", |(_, q)| q);
    let param = |name: &str| {
        query.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    };
    let limit = param("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let pipeline = param("pipeline").map(|p| percent_decode(&p));
    match t.dead_letters_json(limit, pipeline.as_deref()).await {
        Ok(body) => (200, "application/json", body),
        Err(e) => {
            (503, "application/json", format!("{{\"error\":\"ClickHouse unreachable: {}\"}}", e.replace('"', "'")))
        }
    }
}

/// Decodes `%XX` escapes and `+` in a query parameter.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The response to one request: status, content type, body.
pub(crate) fn route(
    path: &str,
    authorization: Option<&str>,
    token: Option<&str>,
    t: &Telemetry,
) -> (u16, &'static str, String) {
    let path = path.split('?').next().unwrap_or(path);
    if path == "/healthz" {
        return (200, "text/plain", "ok\n".into());
    }
    if let Some(token) = token {
        if authorization != Some(&format!("Bearer {token}")) {
            return (401, "text/plain", "a bearer token is required\n".into());
        }
    }
    match path {
        "/" | "/dashboard" => (200, "text/html; charset=utf-8", DASHBOARD.to_string()),
        "/readyz" if t.ready() => (200, "text/plain", "ready\n".into()),
        "/readyz" if !t.clickhouse_reachable() => (503, "text/plain", "not ready: ClickHouse unreachable\n".into()),
        "/readyz" => (503, "text/plain", "not ready: not consuming\n".into()),
        "/metrics" => (200, "text/plain; version=0.0.4", t.render_prometheus()),
        "/api/pipelines" => (200, "application/json", t.pipelines_json()),
        _ => (404, "text/plain", "not found; try /metrics, /healthz, /readyz, /api/pipelines\n".into()),
    }
}

async fn handle(mut stream: TcpStream, t: &Telemetry, token: Option<&str>) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let request = lines.next().unwrap_or_default();
    let mut parts = request.split(' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or("/"));
    let authorization = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.trim().to_string());
    let (status, content_type, body) = if method != "GET" {
        (405, "text/plain", "only GET\n".to_string())
    } else if path.split('?').next() == Some("/api/dead-letters")
        && route("/metrics", authorization.as_deref(), token, t).0 == 200
    {
        dead_letters(path, t).await
    } else {
        route(path, authorization.as_deref(), token, t)
    };
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_token() {
        let t = Telemetry::new("p", "d.t");
        assert_eq!(route("/healthz", None, Some("s3cret"), &t).0, 200, "health needs no token");
        assert_eq!(route("/metrics", None, Some("s3cret"), &t).0, 401);
        assert_eq!(route("/metrics", Some("Bearer s3cret"), Some("s3cret"), &t).0, 200);
        let (status, _, body) = route("/readyz", None, None, &t);
        assert_eq!((status, body.as_str()), (503, "not ready: ClickHouse unreachable\n"));
        assert_eq!(route("/api/pipelines?limit=1", None, None, &t).1, "application/json");
        assert_eq!(route("/nope", None, None, &t).0, 404);
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
    }
}

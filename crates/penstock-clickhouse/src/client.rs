//! A small ClickHouse HTTP client: queries in text, inserts of prepared binary bodies.
//!
//! It does no retrying itself; callers decide with [`ClickHouseError::retry_hint`]
//! (see `penstock-pipeline`). Credentials go in an `Authorization: Basic` header,
//! which every server version accepts, and never into logs or URLs.

use crate::error::{parse_exception, ClickHouseError, Result};
use crate::insert::InsertRequest;
use penstock_config::{ClickHouseSink, Secret};
use std::time::Duration;

/// Connection settings and a pooled HTTP client.
#[derive(Clone, Debug)]
pub struct ClickHouseClient {
    http: reqwest::Client,
    url: String,
    user: String,
    password: Option<Secret>,
    timeout: Duration,
}

impl ClickHouseClient {
    /// A client for `url` (e.g. `http://127.0.0.1:8123`).
    pub fn new(url: &str, user: &str, password: Option<Secret>, timeout: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5).min(timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client always builds");
        ClickHouseClient { http, url: url.trim_end_matches('/').to_string(), user: user.to_string(), password, timeout }
    }

    /// A client for a pipeline's sink.
    pub fn for_sink(sink: &ClickHouseSink) -> Self {
        Self::new(&sink.url, &sink.user, sink.password.clone(), sink.timeout)
    }

    /// Base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request(&self, params: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/", self.url))
            .query(params)
            .basic_auth(&self.user, self.password.as_ref().map(Secret::expose))
            .timeout(self.timeout)
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String> {
        let resp = req.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(parse_exception(status.as_u16(), &text))
        }
    }

    fn transport(&self, e: reqwest::Error) -> ClickHouseError {
        if e.is_timeout() {
            ClickHouseError::Timeout { url: self.url.clone(), timeout: self.timeout }
        } else {
            ClickHouseError::Transport { url: self.url.clone(), source: e }
        }
    }

    /// Runs a query (sent as the request body) and returns the response body (use a
    /// `FORMAT` clause to choose it).
    pub async fn query(&self, sql: &str) -> Result<String> {
        self.send(self.request(&[]).body(sql.to_string())).await
    }

    /// Runs a query with settings passed as URL parameters (they work on every server
    /// version, unlike `SETTINGS` clauses).
    pub async fn query_with(&self, sql: &str, settings: &[(&str, &str)]) -> Result<String> {
        self.send(self.request(settings).body(sql.to_string())).await
    }

    /// Runs a query with settings as URL parameters and returns the raw response body
    /// (for binary formats such as Native).
    pub async fn query_bytes(&self, sql: &str, settings: &[(&str, &str)]) -> Result<bytes::Bytes> {
        let resp = self.request(settings).body(sql.to_string()).send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        if status.is_success() {
            resp.bytes().await.map_err(|e| self.transport(e))
        } else {
            let text = resp.text().await.map_err(|e| self.transport(e))?;
            Err(parse_exception(status.as_u16(), &text))
        }
    }

    /// A client for a ClickHouse source.
    pub fn for_source(source: &penstock_config::ClickHouseSource) -> Self {
        Self::new(&source.url, &source.user, source.password.clone(), source.timeout)
    }

    /// Checks that the server answers and the credentials work.
    pub async fn ping(&self) -> Result<()> {
        self.query("SELECT 1").await.map(drop)
    }

    /// The server version, e.g. `18.16.1`.
    pub async fn server_version(&self) -> Result<String> {
        Ok(self.query("SELECT version()").await?.trim().to_string())
    }

    /// Sends a prepared insert.
    pub async fn insert(&self, req: &InsertRequest) -> Result<()> {
        let mut params: Vec<(&str, &str)> = vec![("query", &req.sql)];
        if req.compressed {
            params.push(("decompress", "1"));
        }
        params.extend(req.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let builder = self.request(&params).body(req.body.clone());
        self.send(builder).await.map(drop)
    }
}

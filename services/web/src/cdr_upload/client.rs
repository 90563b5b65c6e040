//! One HTTPS POST of a batch: TCP, TLS (the appliance's client trust), HTTP/1.1 through hyper.
//! Only a 2xx counts as accepted. Every step is bounded in time.
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HOST};
use rustls::pki_types::ServerName;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const TIMEOUT: Duration = Duration::from_secs(15);

/// `https://host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("{0:?}: call records go over HTTPS only (https://host[:port]/path)")]
    NotHttps(String),
    #[error("{0:?}: no host")]
    NoHost(String),
    #[error("{0:?}: bad port")]
    BadPort(String),
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, EndpointError> {
        let rest = url.strip_prefix("https://").ok_or_else(|| EndpointError::NotHttps(url.into()))?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| EndpointError::NoHost(url.into()))?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(['@', ' ']) {
            return Err(EndpointError::NoHost(url.into()));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| EndpointError::BadPort(url.into()))?,
            None => 443,
        };
        Ok(Endpoint { host: host.to_string(), port, path: path.to_string() })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("timed out")]
    Timeout,
    #[error("connecting: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("bad server name {0:?}")]
    Name(String),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("request: {0}")]
    Request(#[from] hyper::http::Error),
    #[error("the central site answered {0}")]
    Status(u16),
}

pub async fn post_json(to: &Endpoint, tls: &Arc<rustls::ClientConfig>, key: &str, body: Vec<u8>) -> Result<(), PostError> {
    tokio::time::timeout(TIMEOUT, post(to, tls, key, body)).await.map_err(|_| PostError::Timeout)?
}

async fn post(to: &Endpoint, tls: &Arc<rustls::ClientConfig>, key: &str, body: Vec<u8>) -> Result<(), PostError> {
    let tcp = TcpStream::connect((to.host.as_str(), to.port)).await.map_err(PostError::Connect)?;
    let name = ServerName::try_from(to.host.clone()).map_err(|_| PostError::Name(to.host.clone()))?;
    let stream = TlsConnector::from(tls.clone()).connect(name, tcp).await.map_err(PostError::Tls)?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        if let Err(e) = conn.await {
            log::debug!("call record upload connection: {e}");
        }
    });
    let request = hyper::Request::post(to.path.as_str())
        .header(HOST, format!("{}:{}", to.host, to.port))
        .header(CONTENT_TYPE, "application/json")
        .header("idempotency-key", key)
        .body(Full::new(Bytes::from(body)))?;
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    // Read the answer to the end so the connection closes cleanly.
    let _ = response.into_body().collect().await;
    driver.abort();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(PostError::Status(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("https://10.77.2.2:8443/cdr/batch").unwrap();
        assert_eq!(e, Endpoint { host: "10.77.2.2".into(), port: 8443, path: "/cdr/batch".into() });
        assert_eq!(Endpoint::parse("https://central.example").unwrap().port, 443);
        assert_eq!(Endpoint::parse("https://[::1]:9/x").unwrap().host, "::1");
        assert!(Endpoint::parse("http://central/cdr").is_err());
        assert!(Endpoint::parse("https://:9/").is_err());
        assert!(Endpoint::parse("https://h:port/").is_err());
    }
}

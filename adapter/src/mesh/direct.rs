//! Plain targets (`dns:///host:port`, `host:port`): round robin over the resolved addresses,
//! one HTTP/2 connection each, no control plane. The simplest honest version: names are
//! re-resolved every `resolve_interval` (and when every connection fails), a refused stream is
//! tried once more on the next address, the `grpc-timeout` header is enforced on the client,
//! and there are no retries, health checks or backoff.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, TE};
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri, Version};
use http_body::Body;
use hyper::client::conn::http2::SendRequest;

use super::body::{AttemptBody, RequestBody, ResponseBody};
use super::call::{GRPC_TIMEOUT, classify_send_error, status_response};
use super::subchannel::{ConnectSettings, open};
use super::{BoxError, MeshError};
use crate::connect::Endpoint;
use crate::grpc::{self, code};
use crate::runtime::{Rt, timeout, timeout_at};

#[derive(Debug, Default)]
struct PoolState {
    addrs: Vec<SocketAddr>,
    conns: Vec<Option<SendRequest<AttemptBody>>>,
    resolved_at: Option<std::time::Instant>,
}

/// The connections of one plain target.
#[derive(Debug)]
pub(crate) struct DirectPool {
    rt: Rt,
    target: String,
    host: String,
    port: u16,
    authority: Authority,
    settings: Arc<ConnectSettings>,
    resolve_interval: Duration,
    state: Mutex<PoolState>,
    next: AtomicUsize,
}

impl DirectPool {
    pub(crate) fn new(
        rt: Rt,
        target: &str,
        settings: Arc<ConnectSettings>,
        resolve_interval: Duration,
    ) -> Result<Self, MeshError> {
        let bad = |reason: String| MeshError::InvalidTarget {
            target: target.to_string(),
            reason,
        };
        let (host, port) = match Endpoint::parse(target) {
            Ok(Endpoint::Tcp { host, port }) => (host, port),
            Ok(Endpoint::Unix(_)) => {
                return Err(bad("unix sockets are not supported for RPC targets".into()));
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        let authority = Endpoint::Tcp {
            host: host.clone(),
            port,
        }
        .authority()
        .parse::<Authority>()
        .map_err(|e| bad(e.to_string()))?;
        Ok(DirectPool {
            rt,
            target: target.to_string(),
            host,
            port,
            authority,
            settings,
            resolve_interval,
            state: Mutex::new(PoolState::default()),
            next: AtomicUsize::new(0),
        })
    }

    pub(crate) fn target(&self) -> &str {
        &self.target
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn resolve(&self, force: bool) -> Result<(), String> {
        let fresh = {
            let st = self.lock();
            !force
                && !st.addrs.is_empty()
                && st
                    .resolved_at
                    .is_some_and(|t| t.elapsed() < self.resolve_interval)
        };
        if fresh {
            return Ok(());
        }
        let addrs: Vec<SocketAddr> = self
            .rt
            .resolve(&self.host, self.port)
            .await
            .map_err(|e| format!("resolving {}:{}: {e}", self.host, self.port))?;
        if addrs.is_empty() {
            return Err(format!(
                "{}:{} resolved to no address",
                self.host, self.port
            ));
        }
        let mut st = self.lock();
        if st.addrs != addrs {
            // Keep the connections of addresses that stay.
            let st = &mut *st;
            let old: Vec<(SocketAddr, Option<SendRequest<AttemptBody>>)> =
                st.addrs.drain(..).zip(st.conns.drain(..)).collect();
            st.conns = addrs
                .iter()
                .map(|a| {
                    old.iter()
                        .find(|(o, _)| o == a)
                        .and_then(|(_, c)| c.clone())
                })
                .collect();
            st.addrs = addrs;
        }
        st.resolved_at = Some(std::time::Instant::now());
        Ok(())
    }

    /// A connection to the next address in turn (connecting if needed).
    async fn pick(&self) -> Result<(usize, SocketAddr, SendRequest<AttemptBody>), String> {
        self.resolve(false).await?;
        let n = self.lock().addrs.len();
        let mut last_err = String::new();
        for _ in 0..n.max(1) {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let (i, addr, existing) = {
                let st = self.lock();
                if st.addrs.is_empty() {
                    break;
                }
                let i = i % st.addrs.len();
                (i, st.addrs[i], st.conns.get(i).cloned().flatten())
            };
            if let Some(c) = existing.filter(|c| !c.is_closed()) {
                return Ok((i, addr, c));
            }
            match self.connect(addr).await {
                Ok(c) => {
                    let mut st = self.lock();
                    if st.addrs.get(i) == Some(&addr)
                        && let Some(slot) = st.conns.get_mut(i)
                    {
                        *slot = Some(c.clone());
                    }
                    return Ok((i, addr, c));
                }
                Err(e) => last_err = e,
            }
        }
        // Every address failed: re-resolve next time.
        self.lock().resolved_at = None;
        Err(last_err)
    }

    async fn connect(&self, addr: SocketAddr) -> Result<SendRequest<AttemptBody>, String> {
        let connect = async {
            let (send, conn) = open(&self.rt, addr, None, None, &self.settings).await?;
            self.rt.spawn_detached(Box::pin(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(%addr, "connection ended: {e}");
                }
            }));
            Ok(send)
        };
        timeout(&*self.rt, self.settings.connect_timeout, connect)
            .await
            .unwrap_or_else(|| Err(format!("connecting to {addr} timed out")))
    }

    fn forget(&self, i: usize) {
        if let Some(slot) = self.lock().conns.get_mut(i) {
            *slot = None;
        }
    }

    pub(crate) async fn call<B>(
        self: Arc<Self>,
        req: Request<B>,
    ) -> Result<Response<ResponseBody>, BoxError>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        let report_served_by = parts.extensions.get::<super::ReportServedBy>().is_some();
        let mut body = RequestBody::prepare(body, 64 * 1024).await?;
        let deadline = parts
            .headers
            .get(GRPC_TIMEOUT)
            .and_then(|v| grpc::parse_timeout(v.as_bytes()))
            .and_then(|t| std::time::Instant::now().checked_add(t));
        parts
            .headers
            .insert(TE, HeaderValue::from_static("trailers"));
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(Scheme::HTTP);
        uri.authority = Some(self.authority.clone());
        uri.path_and_query = parts.uri.path_and_query().cloned();
        let uri = Uri::from_parts(uri)?;
        let attempt = async {
            // One more try on another connection when the first one refused the stream.
            for _ in 0..2 {
                let (i, addr, mut send) = match self.pick().await {
                    Ok(x) => x,
                    Err(e) => return Ok(status_response(code::UNAVAILABLE, &e)),
                };
                let Some(b) = body.for_attempt() else {
                    break;
                };
                let mut req = Request::new(b);
                *req.method_mut() = parts.method.clone();
                *req.uri_mut() = uri.clone();
                *req.version_mut() = Version::HTTP_2;
                *req.headers_mut() = parts.headers.clone();
                match send.send_request(req).await {
                    Ok(resp) => {
                        let (mut p, incoming) = resp.into_parts();
                        if report_served_by {
                            p.extensions.insert(super::ServedBy(addr));
                        }
                        return Ok(Response::from_parts(
                            p,
                            ResponseBody::direct(
                                incoming,
                                deadline.map(|d| self.rt.sleep_until(d)),
                            ),
                        ));
                    }
                    Err(e) => {
                        let f = classify_send_error(&e);
                        if f.connection_broken {
                            self.forget(i);
                        }
                        if !f.refused {
                            return Ok(status_response(f.code, &f.message));
                        }
                    }
                }
            }
            Ok(status_response(
                code::UNAVAILABLE,
                "the request was refused and cannot be sent again",
            ))
        };
        match deadline {
            None => attempt.await,
            Some(d) => match timeout_at(&*self.rt, d, attempt).await {
                Some(r) => r,
                None => Ok(status_response(
                    code::DEADLINE_EXCEEDED,
                    "deadline exceeded",
                )),
            },
        }
    }
}

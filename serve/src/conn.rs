//! The accept loop: hyper HTTP/1 connections with the limits `axum::serve` cannot set.
//!
//! - At most `max_connections` open at once: the loop accepts the next one only when
//!   one closes (the others wait in the kernel's backlog).
//! - A connection that has sent the start of a request head and not the end of it
//!   within `header_timeout` is closed (a slow client cannot hold a connection by
//!   trickling its headers).
//! - A keep-alive connection with no request for `idle_timeout` is closed (hyper's
//!   header-read timer, which runs while a connection waits for its next request).
//! - Request heads larger than `MAX_HEAD_BUFFER` are refused by hyper with 431.
//! - On shutdown the loop stops accepting, every connection finishes the request it is
//!   serving and closes, and `serve` returns when all have.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::metrics::Metrics;

/// The most bytes hyper buffers for a request head: larger heads get 431.
pub const MAX_HEAD_BUFFER: usize = 64 * 1024;

/// The connection limits of one server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// Whether a connection is between requests or serving one, and since when it has been
/// receiving the head of its next request.
#[derive(Debug, Default)]
struct HeadWatch {
    in_request: AtomicBool,
    head_started: Mutex<Option<Instant>>,
}

impl HeadWatch {
    fn bytes_read(&self) {
        if !self.in_request.load(Ordering::Relaxed) {
            let mut started = self.head_started.lock().expect("head watch");
            if started.is_none() {
                *started = Some(Instant::now());
            }
        }
    }

    fn request_started(&self) {
        self.in_request.store(true, Ordering::Relaxed);
        *self.head_started.lock().expect("head watch") = None;
    }

    fn request_done(&self) {
        self.in_request.store(false, Ordering::Relaxed);
    }

    /// Completes when a head has been arriving for longer than `timeout`.
    async fn expired(&self, timeout: Duration) {
        let tick = (timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::time::sleep(tick).await;
            let started = *self.head_started.lock().expect("head watch");
            if started.is_some_and(|t| t.elapsed() >= timeout)
                && !self.in_request.load(Ordering::Relaxed)
            {
                return;
            }
        }
    }
}

/// A connection's socket, telling its `HeadWatch` when bytes arrive.
struct WatchedIo {
    inner: TcpStream,
    watch: Arc<HeadWatch>,
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.watch.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets every connection
/// finish the request it is serving.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()>,
) {
    // Told to every connection at shutdown: finish the request in flight, then close.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.idle_timeout)
        .keep_alive(true)
        .max_buf_size(MAX_HEAD_BUFFER);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let watch = Arc::new(HeadWatch::default());
        let io = TokioIo::new(WatchedIo {
            inner: stream,
            watch: watch.clone(),
        });
        let service = {
            let (app, watch) = (app.clone(), watch.clone());
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                watch.request_started();
                let (app, watch) = (app.clone(), watch.clone());
                async move {
                    let response = app.oneshot(req.map(Body::new)).await;
                    watch.request_done();
                    response
                }
            })
        };
        let connection = builder.serve_connection(io, service);
        let metrics = metrics.clone();
        let mut stopping = stopping.clone();
        metrics.connections.inc();
        tokio::spawn(async move {
            tokio::pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(e) = served {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    _ = watch.expired(limits.header_timeout) => {
                        metrics.header_timeouts.inc();
                        tracing::debug!("connection closed: request head not complete within serve.header_timeout");
                        break;
                    }
                    _ = stopping.changed(), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
            metrics.connections.dec();
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it closes: all slots back, all closed.
    let _ = slots.acquire_many(limits.max_connections as u32).await;
}

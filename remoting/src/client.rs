//! [`RemotingClient`]: connections by address, request/response, one-way, and the handler
//! for broker→client requests (Java `NettyRemotingClient`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{OnceCell, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::codec::DEFAULT_MAX_FRAME_LEN;
use crate::connection::{Connection, ConnectionOptions, Inbound};
use crate::error::RemotingError;
use crate::protocol::{
    LanguageCode, RemotingCommand, RequestCode, ResponseCode, SerializeType, VERSION_V5_3_2,
};
use crate::tls::TlsConfig;

/// A connected socket, before its tasks start.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// A boxed, sendable future, as returned by [`RequestHandler::handle`].
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a broker→client request came from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InboundContext {
    /// The `host:port` of the connection the request arrived on.
    pub addr: Arc<str>,
}

/// Handles requests that a broker sends to the client (Java `NettyRequestProcessor`s
/// registered by `MQClientAPIImpl`: NOTIFY_CONSUMER_IDS_CHANGED, RESET_CONSUMER_CLIENT_OFFSET,
/// GET_CONSUMER_RUNNING_INFO…).
///
/// Called from the client's dispatch task, never from a connection task; up to
/// [`RemotingConfig::inbound_concurrency`] calls run at once. Return `Some(response)` to
/// answer (the client fills in the opaque and the response flag), `None` when the code is
/// not handled: a two-way request is then answered `REQUEST_CODE_NOT_SUPPORTED`. Whatever
/// is returned for a one-way request is discarded: one-way requests are never answered.
pub trait RequestHandler: Send + Sync + 'static {
    /// Handles one request.
    fn handle(
        &self,
        ctx: InboundContext,
        request: RemotingCommand,
    ) -> BoxFuture<'static, Option<RemotingCommand>>;
}

/// Settings of a [`RemotingClient`]. Built from [`Default`] with by-value setters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RemotingConfig {
    /// TCP connect timeout. Default 3 s (Java `NettyClientConfig.connectTimeoutMillis`).
    pub connect_timeout: Duration,
    /// Largest frame accepted or sent, bytes, length field included. Default 16 MiB
    /// (Java `com.rocketmq.remoting.frameMaxLength`).
    pub max_frame_len: usize,
    /// Header serialisation of outgoing requests. Default JSON, like Java; responses are
    /// decoded in whatever type they arrive in.
    pub serialize_type: SerializeType,
    /// `language` stamped on every request. Default [`LanguageCode::DEFAULT`] (`OTHER`);
    /// see there why not `RUST`.
    pub language: LanguageCode,
    /// `version` stamped on every request. Default 476 ([`VERSION_V5_3_2`]), which opts
    /// into `GO_AWAY`; 475 ([`VERSION_V5_3_1`](crate::protocol::VERSION_V5_3_1)) or lower
    /// opts out.
    pub version: i32,
    /// Frames queued per connection before senders wait. Default 1024.
    pub write_queue_capacity: usize,
    /// Broker→client requests queued before the client answers SYSTEM_BUSY. Default 256.
    pub inbound_queue_capacity: usize,
    /// Broker→client requests handled at once. Default 16.
    pub inbound_concurrency: usize,
    /// TLS on every connection, name servers and brokers alike, from the first byte (Java
    /// `ClientConfig.useTLS`). Default `None`: plaintext. Unlike Java, server certificates
    /// are verified by default; see [`TlsConfig`].
    pub tls: Option<TlsConfig>,
    /// On a `GO_AWAY` (1500) answer (a 5.x server shutting down gracefully, which did not
    /// process the request), retire that connection and send the request once more on a
    /// new one to the same address (Java `NettyClientConfig.enableReconnectForGoAway`,
    /// default true). The retired connection closes when its last request in flight has
    /// its answer. Every request is retried, idempotent or not: the server says it did not
    /// process it. A second `GO_AWAY` is [`RemotingError::GoAway`]. Off: the 1500 answer is
    /// returned like any other response. Default true.
    pub reconnect_on_go_away: bool,
    /// Longest a connection's reader waits for the responses it expects to arrive together
    /// before it reads what is there (receive coalescing, plain TCP on Linux 4.18 or later;
    /// see [`RemotingClient::invoke_expecting`]). A reader that waited this long stops
    /// expecting for its next 32 frames. Zero: the reader never waits for responses it
    /// expects, and wakes for each one as Java's does (it still sleeps until the rest of a
    /// frame it has begun is in, which delays nothing). Default 2 ms.
    pub coalesce_wait: Duration,
}

impl Default for RemotingConfig {
    fn default() -> Self {
        RemotingConfig {
            connect_timeout: Duration::from_millis(3000),
            max_frame_len: DEFAULT_MAX_FRAME_LEN,
            serialize_type: SerializeType::Json,
            language: LanguageCode::DEFAULT,
            version: VERSION_V5_3_2,
            write_queue_capacity: 1024,
            inbound_queue_capacity: 256,
            inbound_concurrency: 16,
            tls: None,
            reconnect_on_go_away: true,
            coalesce_wait: Duration::from_millis(2),
        }
    }
}

impl RemotingConfig {
    /// Sets [`RemotingConfig::coalesce_wait`].
    pub fn coalesce_wait(mut self, v: Duration) -> Self {
        self.coalesce_wait = v;
        self
    }

    /// Sets [`RemotingConfig::connect_timeout`].
    pub fn connect_timeout(mut self, v: Duration) -> Self {
        self.connect_timeout = v;
        self
    }
    /// Sets [`RemotingConfig::max_frame_len`] (bytes).
    pub fn max_frame_len(mut self, v: usize) -> Self {
        self.max_frame_len = v;
        self
    }
    /// Sets [`RemotingConfig::serialize_type`].
    pub fn serialize_type(mut self, v: SerializeType) -> Self {
        self.serialize_type = v;
        self
    }
    /// Sets [`RemotingConfig::language`].
    pub fn language(mut self, v: LanguageCode) -> Self {
        self.language = v;
        self
    }
    /// Sets [`RemotingConfig::version`].
    pub fn version(mut self, v: i32) -> Self {
        self.version = v;
        self
    }
    /// Sets [`RemotingConfig::write_queue_capacity`] (frames, at least 1).
    pub fn write_queue_capacity(mut self, v: usize) -> Self {
        self.write_queue_capacity = v.max(1);
        self
    }
    /// Sets [`RemotingConfig::inbound_queue_capacity`] (requests, at least 1).
    pub fn inbound_queue_capacity(mut self, v: usize) -> Self {
        self.inbound_queue_capacity = v.max(1);
        self
    }
    /// Sets [`RemotingConfig::tls`]: every connection uses TLS with `tls`.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }
    /// Sets [`RemotingConfig::reconnect_on_go_away`].
    pub fn reconnect_on_go_away(mut self, v: bool) -> Self {
        self.reconnect_on_go_away = v;
        self
    }
    /// Sets [`RemotingConfig::inbound_concurrency`] (at least 1).
    pub fn inbound_concurrency(mut self, v: usize) -> Self {
        self.inbound_concurrency = v.max(1);
        self
    }
}

type Slot = Arc<OnceCell<Connection>>;

/// Called with the address of every connection opened (see
/// [`RemotingClient::set_connect_hook`]).
pub type ConnectHook = dyn Fn(&str) + Send + Sync;

struct Inner {
    config: RemotingConfig,
    slots: Mutex<foldhash::HashMap<String, Slot>>,
    handler: RwLock<Option<Arc<dyn RequestHandler>>>,
    connect_hook: RwLock<Option<Arc<ConnectHook>>>,
    inbound_tx: mpsc::Sender<Inbound>,
    token: CancellationToken,
    tracker: TaskTracker,
}

impl Inner {
    fn slots(&self) -> MutexGuard<'_, foldhash::HashMap<String, Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The Remoting client: one TCP connection per address, opened lazily on first use and
/// re-opened on the next use after it failed; many requests in flight per connection,
/// correlated by opaque.
///
/// Cheap to clone (an `Arc`).
///
/// # Drop behavior
/// When the last clone is dropped, every connection task and the dispatch task stop;
/// requests still in flight fail with [`RemotingError::ConnectionClosed`]. Use
/// [`RemotingClient::shutdown`] to wait for the tasks.
#[derive(Clone)]
pub struct RemotingClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RemotingClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotingClient")
            .field("config", &self.inner.config)
            .field("connections", &self.inner.slots().len())
            .finish()
    }
}

impl RemotingClient {
    /// Creates a client and starts its dispatch task for broker→client requests.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn new(config: RemotingConfig) -> Self {
        if config.tls.as_ref().is_some_and(TlsConfig::is_insecure) {
            tracing::warn!(
                "TLS server certificates are NOT verified (insecure_skip_verify): connections \
                 are encrypted but anyone on the path can impersonate the servers"
            );
        }
        let (inbound_tx, inbound_rx) = mpsc::channel(config.inbound_queue_capacity);
        let inner = Arc::new(Inner {
            slots: Mutex::new(HashMap::default()),
            handler: RwLock::new(None),
            connect_hook: RwLock::new(None),
            inbound_tx,
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            config,
        });
        let weak = Arc::downgrade(&inner);
        let token = inner.token.clone();
        let tracker = inner.tracker.clone();
        let permits = Arc::new(Semaphore::new(inner.config.inbound_concurrency));
        inner
            .tracker
            .spawn(dispatch_loop(weak, inbound_rx, token, tracker, permits));
        RemotingClient { inner }
    }

    /// The configuration.
    pub fn config(&self) -> &RemotingConfig {
        &self.inner.config
    }

    /// Installs the handler for broker→client requests, replacing any previous one. Until
    /// one is installed every two-way broker request is answered REQUEST_CODE_NOT_SUPPORTED.
    pub fn set_request_handler(&self, handler: Arc<dyn RequestHandler>) {
        *self
            .inner
            .handler
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(handler);
    }

    /// Installs `hook`, called with the address of every connection this client opens
    /// from now on (the first one to an address and every reconnect), right after the TCP
    /// connect and before the request that caused it is sent. It runs on the caller's task:
    /// it must return at once (signal a task, never block). Java has no counterpart; rmq
    /// uses it to send heartbeats as soon as a broker is reachable again, so that a broker
    /// that lost the client's registration (restart, dropped connection) knows the group
    /// before the next scheduled heartbeat.
    pub fn set_connect_hook(&self, hook: Arc<ConnectHook>) {
        *self
            .inner
            .connect_hook
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(hook);
    }

    async fn connection(&self, addr: &str) -> Result<Connection, RemotingError> {
        if self.inner.token.is_cancelled() {
            return Err(RemotingError::Shutdown);
        }
        for _ in 0..2 {
            let slot = Arc::clone(
                self.inner
                    .slots()
                    .entry(addr.to_owned())
                    .or_insert_with(|| Arc::new(OnceCell::new())),
            );
            let conn = slot.get_or_try_init(|| self.connect(addr)).await?.clone();
            if !conn.is_closed() {
                return Ok(conn);
            }
            // Replace the dead connection, unless another caller already did.
            let mut slots = self.inner.slots();
            if slots.get(addr).is_some_and(|s| Arc::ptr_eq(s, &slot)) {
                slots.remove(addr);
            }
        }
        Err(RemotingError::ConnectionClosed {
            addr: addr.to_owned(),
            reason: Arc::new(crate::error::CloseReason::Eof),
        })
    }

    async fn connect(&self, addr: &str) -> Result<Connection, RemotingError> {
        let timeout = self.inner.config.connect_timeout;
        // The limit covers the TCP connect and the TLS handshake together.
        let connected = tokio::time::timeout(timeout, async {
            let stream =
                TcpStream::connect(addr)
                    .await
                    .map_err(|source| RemotingError::Connect {
                        addr: addr.to_owned(),
                        source,
                    })?;
            let _ = stream.set_nodelay(true);
            match &self.inner.config.tls {
                None => Ok(Stream::Plain(stream)),
                Some(tls) => tls
                    .handshake(stream, addr)
                    .await
                    .map(|s| Stream::Tls(Box::new(s)))
                    .map_err(|e| RemotingError::Tls {
                        addr: addr.to_owned(),
                        kind: e.kind,
                        source: e.source,
                    }),
            }
        })
        .await;
        let stream = match connected {
            Ok(result) => result?,
            Err(_) => {
                return Err(RemotingError::ConnectTimeout {
                    addr: addr.to_owned(),
                    timeout,
                });
            }
        };
        tracing::debug!(addr, tls = self.inner.config.tls.is_some(), "connected");
        let hook = self
            .inner
            .connect_hook
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(hook) = hook {
            hook(addr);
        }
        let opts = ConnectionOptions {
            max_frame_len: self.inner.config.max_frame_len,
            write_queue_capacity: self.inner.config.write_queue_capacity,
            coalesce_wait: self.inner.config.coalesce_wait,
        };
        let (inbound, tracker, token) = (
            self.inner.inbound_tx.clone(),
            &self.inner.tracker,
            &self.inner.token,
        );
        Ok(match stream {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                Connection::spawn(r, w, addr.to_owned(), &opts, inbound, tracker, token)
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                Connection::spawn(r, w, addr.to_owned(), &opts, inbound, tracker, token)
            }
        })
    }

    fn stamp(&self, cmd: &mut RemotingCommand) {
        cmd.language = self.inner.config.language;
        cmd.version = self.inner.config.version;
        cmd.serialize_type = self.inner.config.serialize_type;
    }

    /// Sends `request` to `addr` and waits for its response (Java `invokeSync`).
    ///
    /// The client sets the opaque, flag, language, version and header serialisation. The
    /// response is returned whatever its code; interpreting it is the caller's business.
    /// `timeout` covers connecting, queueing and waiting.
    ///
    /// Cancel safe: dropping the future abandons the request and its table entry.
    ///
    /// # Errors
    /// [`RemotingError::Connect`] / [`RemotingError::ConnectTimeout`] when the connection
    /// cannot be opened; [`RemotingError::Timeout`] when no response came in time;
    /// [`RemotingError::ConnectionClosed`] when the connection closed first (at once, not at
    /// the timeout); [`RemotingError::Encode`] when the request is too large;
    /// [`RemotingError::Shutdown`] after [`RemotingClient::shutdown`].
    pub async fn invoke(
        &self,
        addr: &str,
        request: RemotingCommand,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        self.invoke_expecting(addr, request, timeout, 0).await
    }

    /// [`RemotingClient::invoke`] for a request the caller expects to be answered at once
    /// with about `expected_bytes` bytes (a pull of a queue with a backlog: about what the
    /// last pull of that queue returned). While such requests are in flight, the
    /// connection's reader sleeps until three quarters of their bytes are in rather than
    /// waking for each response — fewer wake-ups, the same responses. A wrong guess costs
    /// at most [`RemotingConfig::coalesce_wait`] of latency. 0 is
    /// [`RemotingClient::invoke`]. No Java counterpart.
    ///
    /// # Errors
    /// As [`RemotingClient::invoke`].
    pub async fn invoke_expecting(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
        expected_bytes: usize,
    ) -> Result<RemotingCommand, RemotingError> {
        self.stamp(&mut request);
        let code = request.request_code();
        let started = tokio::time::Instant::now();
        let conn = self.connection_by(addr, code, started, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let response = match conn.request(&mut request, left, expected_bytes).await {
            Ok(r)
                if r.response_code() == ResponseCode::GO_AWAY
                    && self.inner.config.reconnect_on_go_away =>
            {
                self.retry_after_go_away(addr, &conn, request, started, timeout)
                    .await
            }
            other => other,
        };
        match response {
            Err(RemotingError::Timeout { addr, code, .. }) => Err(RemotingError::Timeout {
                addr,
                code,
                timeout,
            }),
            other => other,
        }
    }

    /// The connection to `addr` (opened if needed) within what is left of `timeout`, which
    /// began at `started`; a [`RemotingError::Timeout`] for `code` when it takes longer.
    async fn connection_by(
        &self,
        addr: &str,
        code: RequestCode,
        started: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<Connection, RemotingError> {
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, self.connection(addr)).await {
            Ok(conn) => conn,
            Err(_) => Err(RemotingError::Timeout {
                addr: addr.to_owned(),
                code,
                timeout,
            }),
        }
    }

    /// `request` was answered GO_AWAY on `old`: retires `old` (unless another request
    /// already replaced it) and sends `request` once more on a new connection, within what
    /// is left of `timeout` (Java `NettyRemotingClient.invokeImpl`).
    async fn retry_after_go_away(
        &self,
        addr: &str,
        old: &Connection,
        mut request: RemotingCommand,
        started: tokio::time::Instant,
        timeout: Duration,
    ) -> Result<RemotingCommand, RemotingError> {
        let code = request.request_code();
        {
            let mut slots = self.inner.slots();
            if slots
                .get(addr)
                .and_then(|s| s.get())
                .is_some_and(|c| c.same_as(old))
            {
                tracing::info!(
                    addr,
                    "server going away (GO_AWAY); new requests go to a new connection"
                );
                slots.remove(addr);
            }
        }
        let conn = self.connection_by(addr, code, started, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let response = conn.request(&mut request, left, 0).await?;
        if response.response_code() == ResponseCode::GO_AWAY {
            return Err(RemotingError::GoAway {
                addr: addr.to_owned(),
                code,
            });
        }
        Ok(response)
    }

    /// Sends `request` to `addr` as a one-way request (Java `invokeOneway`): no response is
    /// expected or awaited. Returns once the frame is queued for writing.
    ///
    /// # Errors
    /// As [`RemotingClient::invoke`], with [`RemotingError::Timeout`] meaning the write queue
    /// stayed full for `timeout`.
    pub async fn invoke_oneway(
        &self,
        addr: &str,
        mut request: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), RemotingError> {
        self.stamp(&mut request);
        let conn = self.connection(addr).await?;
        conn.oneway(request, timeout).await
    }

    /// Closes the connection to `addr`, if any (Java `closeChannel`). Requests in flight on
    /// it fail with [`RemotingError::ConnectionClosed`].
    pub fn close_connection(&self, addr: &str) {
        let slot = self.inner.slots().remove(addr);
        if let Some(conn) = slot.as_ref().and_then(|s| s.get()) {
            conn.close();
        }
    }

    /// Stops every connection and the dispatch task and waits for them, at most `grace`.
    /// Idempotent. Requests in flight fail with [`RemotingError::ConnectionClosed`].
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.token.cancel();
        self.inner.slots().clear();
        if !crate::task::stop_and_wait(&self.inner.token, &self.inner.tracker, grace).await {
            tracing::warn!(
                ?grace,
                "remoting tasks did not stop within the grace period"
            );
        }
    }
}

async fn dispatch_loop(
    inner: std::sync::Weak<Inner>,
    mut rx: mpsc::Receiver<Inbound>,
    token: CancellationToken,
    tracker: TaskTracker,
    permits: Arc<Semaphore>,
) {
    loop {
        let inbound = tokio::select! {
            _ = token.cancelled() => return,
            inbound = rx.recv() => match inbound {
                Some(i) => i,
                None => return,
            },
        };
        let handler = match inner.upgrade() {
            Some(inner) => inner
                .handler
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            None => return,
        };
        let permit = tokio::select! {
            _ = token.cancelled() => return,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        tracker.spawn(async move {
            let _permit = permit;
            let Inbound { request, responder } = inbound;
            let code = request.request_code();
            let oneway = request.is_oneway();
            let ctx = InboundContext {
                addr: Arc::clone(responder.addr()),
            };
            let response = match handler {
                Some(h) => h.handle(ctx, request).await,
                None => None,
            };
            if oneway {
                return;
            }
            let response = response.unwrap_or_else(|| {
                RemotingCommand::response(
                    ResponseCode::REQUEST_CODE_NOT_SUPPORTED,
                    format!(" request type {} not supported", code.0),
                )
            });
            responder.respond(response);
        });
    }
}

//! One connection (TCP, or TLS over TCP): a reader task, a writer task and the table of requests in flight.
//!
//! Callers register their opaque in the table, hand the encoded frame to the writer task
//! through a bounded queue, and await a oneshot. The reader task completes responses by
//! opaque and passes broker→client requests on. When either task ends, the connection is
//! closed and every waiter fails at once with the reason (never left to its timeout).
//! On plain TCP the reader coalesces its wake-ups ([`crate::coalesce`]).

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;
use tokio_util::sync::{CancellationToken, DropGuard};
use tokio_util::task::TaskTracker;

use crate::coalesce::{Coalescer, ReadHalf};
use crate::codec::{CodecError, RemotingCodec, encode_frame};
use crate::error::{CloseReason, RemotingError};
use crate::protocol::{FLAG_ONEWAY, FLAG_RESPONSE, RemotingCommand, ResponseCode};

type Waiter = oneshot::Sender<Result<RemotingCommand, Arc<CloseReason>>>;

#[derive(Default)]
struct Table {
    closed: Option<Arc<CloseReason>>,
    /// Each request in flight: its waiter and the response bytes expected (0: unknown).
    waiters: foldhash::HashMap<i32, (Waiter, usize)>,
}

struct Shared {
    addr: String,
    table: Mutex<Table>,
    /// The sum of the bytes expected in the table, kept with it (read by the coalescer).
    expected: AtomicUsize,
    next_opaque: AtomicI32,
    max_frame_len: usize,
}

impl Shared {
    fn table(&self) -> MutexGuard<'_, Table> {
        // A panic while holding this lock cannot leave the table inconsistent (every
        // critical section is a single map operation), so poisoning is ignored.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self, reason: CloseReason) {
        let waiters = {
            let mut table = self.table();
            if table.closed.is_some() {
                return;
            }
            let reason = Arc::new(reason);
            table.closed = Some(Arc::clone(&reason));
            self.expected.store(0, Ordering::Relaxed);
            std::mem::take(&mut table.waiters)
                .into_values()
                .map(move |(w, _)| (w, Arc::clone(&reason)))
                .collect::<Vec<_>>()
        };
        if !waiters.is_empty() {
            tracing::debug!(addr = %self.addr, in_flight = waiters.len(), "connection closed, failing requests in flight");
        }
        for (waiter, reason) in waiters {
            let _ = waiter.send(Err(reason));
        }
    }

    /// Takes the waiter of `opaque` out of the table.
    fn take_waiter(&self, opaque: i32) -> Option<Waiter> {
        let mut table = self.table();
        let (waiter, expected) = table.waiters.remove(&opaque)?;
        // Under the table's lock, as every change of `expected`.
        if expected > 0 {
            self.expected.fetch_sub(expected, Ordering::Relaxed);
        }
        Some(waiter)
    }

    fn closed_error(&self, reason: Arc<CloseReason>) -> RemotingError {
        RemotingError::ConnectionClosed {
            addr: self.addr.clone(),
            reason,
        }
    }
}

/// Removes a waiter when the request future is dropped or times out.
struct WaiterGuard<'a> {
    shared: &'a Shared,
    opaque: i32,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.shared.take_waiter(self.opaque);
    }
}

/// A broker→client request waiting for the client's handler.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) request: RemotingCommand,
    pub(crate) responder: Responder,
}

/// Sends the answer to one broker→client request back on the connection it came from.
#[derive(Debug, Clone)]
pub(crate) struct Responder {
    addr: Arc<str>,
    opaque: i32,
    write_tx: mpsc::Sender<Bytes>,
    max_frame_len: usize,
}

impl Responder {
    pub(crate) fn addr(&self) -> &Arc<str> {
        &self.addr
    }

    /// Sends `response` with the request's opaque and the response flag. Best effort: a
    /// closed connection or a full write queue drops the answer (the broker times out).
    pub(crate) fn respond(&self, mut response: RemotingCommand) {
        response.opaque = self.opaque;
        response.flag = (response.flag | FLAG_RESPONSE) & !FLAG_ONEWAY;
        let mut buf = BytesMut::new();
        match encode_frame(&response, &mut buf, self.max_frame_len) {
            Ok(()) => {
                if self.write_tx.try_send(buf.freeze()).is_err() {
                    tracing::warn!(addr = %self.addr, opaque = self.opaque, "write queue full or closed; response to broker request dropped");
                }
            }
            Err(e) => {
                tracing::warn!(addr = %self.addr, error = %e, "response to broker request could not be encoded");
            }
        }
    }
}

/// Settings a connection needs.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionOptions {
    pub(crate) max_frame_len: usize,
    pub(crate) write_queue_capacity: usize,
    /// [`crate::RemotingConfig::coalesce_wait`].
    pub(crate) coalesce_wait: Duration,
}

/// A handle to one live (or closed) connection. Cheap to clone; when the last clone is
/// dropped the connection's tasks stop.
#[derive(Clone)]
pub(crate) struct Connection {
    shared: Arc<Shared>,
    write_tx: mpsc::Sender<Bytes>,
    token: CancellationToken,
    _stop: Arc<DropGuard>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.shared.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Connection {
    /// Starts the reader and writer tasks of `stream` on `tracker`. Broker→client requests
    /// go to `inbound`; `parent` stops the connection when cancelled.
    pub(crate) fn spawn<R, W>(
        read_half: R,
        write_half: W,
        addr: String,
        opts: &ConnectionOptions,
        inbound: mpsc::Sender<Inbound>,
        tracker: &TaskTracker,
        parent: &CancellationToken,
    ) -> Connection
    where
        R: ReadHalf,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let shared = Arc::new(Shared {
            addr: addr.clone(),
            table: Mutex::new(Table::default()),
            expected: AtomicUsize::new(0),
            next_opaque: AtomicI32::new(0),
            max_frame_len: opts.max_frame_len,
        });
        let (write_tx, mut write_rx) = mpsc::channel::<Bytes>(opts.write_queue_capacity);
        let token = parent.child_token();
        let addr_arc: Arc<str> = Arc::from(addr.as_str());

        // Reader.
        {
            let shared = Arc::clone(&shared);
            let token = token.clone();
            let write_tx = write_tx.clone();
            let codec = RemotingCodec::new(opts.max_frame_len);
            let coalescer = read_half
                .plain_tcp()
                .map(|_| Coalescer::new(opts.coalesce_wait));
            tracker.spawn(async move {
                let reason = read_frames(
                    read_half, codec, coalescer, &shared, &addr_arc, &write_tx, &inbound, &token,
                )
                .await;
                if let CloseReason::Codec(e) = &reason {
                    tracing::warn!(addr = %shared.addr, error = %e, "closing connection after a malformed frame");
                }
                shared.close(reason);
                token.cancel();
            });
        }

        // Writer.
        {
            let shared = Arc::clone(&shared);
            let token = token.clone();
            let mut out = BufWriter::with_capacity(64 * 1024, write_half);
            tracker.spawn(async move {
                let result: std::io::Result<()> = async {
                    loop {
                        let first = tokio::select! {
                            _ = token.cancelled() => {
                                // Flush what was queued before the stop (a final one-way
                                // offset commit, say), for at most a second.
                                let flush = async {
                                    while let Ok(frame) = write_rx.try_recv() {
                                        out.write_all(&frame).await?;
                                    }
                                    out.flush().await
                                };
                                let _ = tokio::time::timeout(Duration::from_secs(1), flush).await;
                                return Ok(());
                            }
                            frame = write_rx.recv() => frame,
                        };
                        let Some(frame) = first else { return Ok(()) };
                        out.write_all(&frame).await?;
                        // Batch whatever is already queued into one flush.
                        while let Ok(frame) = write_rx.try_recv() {
                            out.write_all(&frame).await?;
                        }
                        out.flush().await?;
                    }
                }
                .await;
                match result {
                    Ok(()) => shared.close(CloseReason::Shutdown),
                    Err(e) => shared.close(CloseReason::from_io(e)),
                }
                let _ = out.shutdown().await;
                token.cancel();
            });
        }

        Connection {
            shared,
            write_tx,
            token: token.clone(),
            _stop: Arc::new(token.drop_guard()),
        }
    }

    /// Closes the connection now: its tasks stop and requests in flight fail.
    pub(crate) fn close(&self) {
        self.token.cancel();
    }

    /// `true` when `other` is a handle of this very connection.
    pub(crate) fn same_as(&self, other: &Connection) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// `true` once the connection has closed; it is then replaced on next use.
    pub(crate) fn is_closed(&self) -> bool {
        self.shared.table().closed.is_some()
    }

    fn encode(&self, cmd: &RemotingCommand) -> Result<Bytes, RemotingError> {
        let mut buf = BytesMut::new();
        encode_frame(cmd, &mut buf, self.shared.max_frame_len).map_err(RemotingError::Encode)?;
        Ok(buf.freeze())
    }

    /// Sends `cmd` as a request and waits up to `timeout` for its response.
    ///
    /// Cancel safe: dropping the future removes the request from the table.
    ///
    /// `expected_bytes` (0: unknown) is about how many bytes the response will have if it
    /// comes at once (see [`crate::coalesce`]).
    pub(crate) async fn request(
        &self,
        cmd: &mut RemotingCommand,
        timeout: Duration,
        expected_bytes: usize,
    ) -> Result<RemotingCommand, RemotingError> {
        let opaque = self.shared.next_opaque.fetch_add(1, Ordering::Relaxed);
        cmd.opaque = opaque;
        cmd.flag &= !(FLAG_RESPONSE | FLAG_ONEWAY);
        let code = cmd.request_code();
        let frame = self.encode(cmd)?;
        let (tx, rx) = oneshot::channel();
        {
            let mut table = self.shared.table();
            if let Some(reason) = &table.closed {
                return Err(self.shared.closed_error(Arc::clone(reason)));
            }
            // An opaque reused after the counter wrapped replaces a request still in flight
            // (which then times out); its expected bytes go with it.
            let replaced = table
                .waiters
                .insert(opaque, (tx, expected_bytes))
                .map_or(0, |(_, e)| e);
            if expected_bytes != replaced {
                self.shared
                    .expected
                    .fetch_add(expected_bytes, Ordering::Relaxed);
                self.shared.expected.fetch_sub(replaced, Ordering::Relaxed);
            }
        }
        let _guard = WaiterGuard {
            shared: &self.shared,
            opaque,
        };
        let exchange = async {
            if self.write_tx.send(frame).await.is_err() {
                return Err(self.closed_now());
            }
            match rx.await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(reason)) => Err(self.shared.closed_error(reason)),
                Err(_) => Err(self.closed_now()),
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(RemotingError::Timeout {
                addr: self.shared.addr.clone(),
                code,
                timeout,
            }),
        }
    }

    /// Queues `cmd` as a one-way request (no response expected), waiting up to `timeout`
    /// for room in the write queue.
    pub(crate) async fn oneway(
        &self,
        mut cmd: RemotingCommand,
        timeout: Duration,
    ) -> Result<(), RemotingError> {
        cmd.opaque = self.shared.next_opaque.fetch_add(1, Ordering::Relaxed);
        cmd.flag = (cmd.flag | FLAG_ONEWAY) & !FLAG_RESPONSE;
        let code = cmd.request_code();
        let frame = self.encode(&cmd)?;
        match tokio::time::timeout(timeout, self.write_tx.send(frame)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.closed_now()),
            Err(_) => Err(RemotingError::Timeout {
                addr: self.shared.addr.clone(),
                code,
                timeout,
            }),
        }
    }

    fn closed_now(&self) -> RemotingError {
        let reason = self
            .shared
            .table()
            .closed
            .clone()
            .unwrap_or_else(|| Arc::new(CloseReason::Shutdown));
        self.shared.closed_error(reason)
    }
}

/// The reader: dispatches every whole frame read, then (coalescing) sets the mark for
/// what is buffered now and reads once more, until the connection ends; returns why.
/// Planning before every read keeps the mark true to the buffer: a read that brought part
/// of a frame is followed by a new plan, never by a wait on a mark set before it.
#[allow(clippy::too_many_arguments)]
async fn read_frames<R: ReadHalf>(
    mut read_half: R,
    mut codec: RemotingCodec,
    mut coalescer: Option<Coalescer>,
    shared: &Shared,
    addr: &Arc<str>,
    write_tx: &mpsc::Sender<Bytes>,
    inbound: &mpsc::Sender<Inbound>,
    token: &CancellationToken,
) -> CloseReason {
    let mut buf = BytesMut::new();
    // Bounds a guessed wait (reset before each one).
    let mut give_up = std::pin::pin!(tokio::time::sleep(Duration::ZERO));
    loop {
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(cmd)) => {
                    if let Some(c) = coalescer.as_mut() {
                        c.frame_read();
                    }
                    dispatch(shared, addr, cmd, write_tx, inbound);
                }
                Ok(None) => break,
                Err(e) => return close_reason(e),
            }
        }
        let guessed = match coalescer.as_mut() {
            Some(c) => prepare_wait(c, &read_half, &buf, shared),
            None => false,
        };
        if guessed && let Some(c) = &coalescer {
            give_up.as_mut().reset(tokio::time::Instant::now() + c.wait);
        }
        let read = tokio::select! {
            biased;
            _ = token.cancelled() => return CloseReason::Shutdown,
            read = read_half.read_buf(&mut buf) => read,
            () = &mut give_up, if guessed => {
                if let Some(c) = coalescer.as_mut() {
                    c.gave_up();
                }
                continue;
            }
        };
        match read {
            Ok(0) => {
                // What `FramedRead` does at the end: a frame begun and not finished is an error.
                return match codec.decode_eof(&mut buf) {
                    Ok(_) => CloseReason::Eof,
                    Err(e) => close_reason(e),
                };
            }
            Ok(_) => {}
            Err(e) => return CloseReason::from_io(e),
        }
    }
}

fn close_reason(e: CodecError) -> CloseReason {
    match e {
        CodecError::Io(e) => CloseReason::from_io(e),
        e => CloseReason::Codec(e),
    }
}

/// Sets the socket's receive low-water mark for the reader's next wait (the coalescer's
/// plan for `buffered` and the bytes expected); `true` when the wait is a guess, to be
/// bounded. A socket whose options cannot be read or set is read without a mark from then
/// on (the mark put back to 1, best effort).
fn prepare_wait<R: ReadHalf>(
    coalescer: &mut Coalescer,
    read_half: &R,
    buffered: &[u8],
    shared: &Shared,
) -> bool {
    let Some(socket) = read_half.plain_tcp() else {
        return false;
    };
    let give_up = |coalescer: &mut Coalescer, e: std::io::Error| {
        tracing::debug!(addr = %shared.addr, error = %e, "socket options refused; reading without coalescing");
        coalescer.disable();
        if coalescer.current() != 1 {
            let _ = crate::coalesce::set_recv_low_water(socket, 1);
        }
        false
    };
    if coalescer.needs_recv_buffer_size() {
        match crate::coalesce::recv_buffer_size(socket) {
            Ok(n) => coalescer.set_recv_buffer(n),
            Err(e) => return give_up(coalescer, e),
        }
    }
    let Some(wait) = coalescer.plan(buffered, shared.expected.load(Ordering::Relaxed)) else {
        return false;
    };
    if coalescer.current() != wait.low_water {
        if let Err(e) = crate::coalesce::set_recv_low_water(socket, wait.low_water) {
            return give_up(coalescer, e);
        }
        coalescer.set(wait.low_water);
    }
    wait.guessed
}

fn dispatch(
    shared: &Shared,
    addr: &Arc<str>,
    cmd: RemotingCommand,
    write_tx: &mpsc::Sender<Bytes>,
    inbound: &mpsc::Sender<Inbound>,
) {
    // The response bit decides first: a broker request's opaque comes from the broker's
    // own counter and may equal one of ours (REMOTING.md §1.2).
    if cmd.is_response() {
        match shared.take_waiter(cmd.opaque) {
            Some(w) => {
                let _ = w.send(Ok(cmd));
            }
            None => {
                tracing::debug!(addr = %shared.addr, opaque = cmd.opaque, code = cmd.code, "response for no request in flight (timed out or cancelled)");
            }
        }
        return;
    }
    let oneway = cmd.is_oneway();
    let responder = Responder {
        addr: Arc::clone(addr),
        opaque: cmd.opaque,
        write_tx: write_tx.clone(),
        max_frame_len: shared.max_frame_len,
    };
    let code = cmd.request_code();
    if let Err(e) = inbound.try_send(Inbound {
        request: cmd,
        responder,
    }) {
        let (rejected, full) = match e {
            mpsc::error::TrySendError::Full(r) => (r, true),
            mpsc::error::TrySendError::Closed(r) => (r, false),
        };
        tracing::warn!(addr = %shared.addr, %code, full, "broker request not handled: inbound queue unavailable");
        if !oneway {
            let remark = if full {
                "[rmq] client busy: inbound request queue full"
            } else {
                "[rmq] client is shutting down"
            };
            rejected.responder.respond(RemotingCommand::response(
                ResponseCode::SYSTEM_BUSY,
                remark.to_owned(),
            ));
        }
    }
}

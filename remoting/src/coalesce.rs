//! Receive coalescing: a connection's reader sleeps until the bytes it expects are in,
//! instead of waking for every response (or every part of one).
//!
//! The reader sets the socket's receive low-water mark (`SO_RCVLOWAT`, Linux) before it
//! waits, so the kernel wakes it only once that many bytes are queued:
//!
//! - **The rest of the frame being received** — its length prefix says how much more is
//!   coming, so waiting for it delays nothing.
//! - **Three quarters of the bytes of the expected responses** — requests sent with
//!   [`RemotingClient::invoke_expecting`](crate::RemotingClient::invoke_expecting) (a pull
//!   of a queue with a backlog, which the broker answers at once with about as many bytes
//!   as last time). Not all of them, so that the broker always has the last quarter of
//!   those requests to work on while the reader sleeps (waiting for all of them made runs
//!   slower; half of them woke the reader ~15 % more often than three quarters). This
//!   wait is a guess, so it is bounded: when nothing woke the reader within
//!   [`coalesce_wait`](crate::RemotingConfig::coalesce_wait), it takes what is there and
//!   stops guessing for the next [`COOL_DOWN_FRAMES`] frames.
//!
//! Why: on a virtual machine each sleep and wake-up of the reader costs ~20 µs of CPU,
//! and a consumer draining a backlog is woken once per pull response otherwise (BENCHMARKS.md).
//! Java's client (Netty) wakes for every read. The mark is kept at most an eighth of the
//! socket's receive buffer: a mark the buffer cannot hold makes the kernel grow the buffer
//! and clamp the TCP window to the mark. TLS connections are not coalesced (the bytes on
//! the socket are not the frame's bytes), nor are connections on other systems or on
//! Linux before 4.18 (see [`kernel_wakes_on_lowered_mark`]).

use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::net::TcpStream;

/// Frames read after a wait that had to be cut short before the reader guesses again.
pub(crate) const COOL_DOWN_FRAMES: u32 = 32;

/// Frames read between two readings of the socket's receive buffer size (the kernel grows
/// it as the connection carries more).
const RECV_BUFFER_REFRESH_FRAMES: u32 = 64;

/// A connection's read half, and its TCP socket when the bytes read are the frames' own.
pub(crate) trait ReadHalf: AsyncRead + Send + Unpin + 'static {
    /// The socket to coalesce on: plain TCP on Linux 4.18 or later; `None` otherwise (TLS,
    /// other systems, older kernels).
    fn plain_tcp(&self) -> Option<&TcpStream> {
        None
    }
}

impl ReadHalf for tokio::net::tcp::OwnedReadHalf {
    fn plain_tcp(&self) -> Option<&TcpStream> {
        kernel_wakes_on_lowered_mark().then(|| self.as_ref())
    }
}

impl<T: AsyncRead + Send + 'static> ReadHalf for tokio::io::ReadHalf<T> {}

/// `true` on Linux 4.18 or later, whose TCP wakes a waiting reader when its mark is lowered
/// below what is queued (`tcp_set_rcvlowat`); an older kernel would leave the reader asleep
/// after a guessed wait ran out. Read once from `/proc/sys/kernel/osrelease`.
fn kernel_wakes_on_lowered_mark() -> bool {
    static KNOWN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *KNOWN.get_or_init(|| {
        cfg!(target_os = "linux")
            && std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .is_ok_and(|release| release_at_least(&release, (4, 18)))
    })
}

/// `true` when a kernel release string (`6.18.44-fc-v1147`) is at least `major.minor`.
fn release_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release.trim().split(['.', '-']);
    let mut next = || parts.next().and_then(|p| p.parse::<u32>().ok());
    match (next(), next()) {
        (Some(a), Some(b)) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// What the reader should wait for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Wait {
    /// Bytes to have queued before waking (1: any).
    pub(crate) low_water: usize,
    /// `true` when `low_water` includes a guess, which [`Coalescer::wait`] bounds.
    pub(crate) guessed: bool,
}

/// The reader's coalescing state (one per plain-TCP connection).
#[derive(Debug)]
pub(crate) struct Coalescer {
    /// Bound on a guessed wait; zero: never guess.
    pub(crate) wait: Duration,
    /// The socket's receive buffer size, bytes, as last read (0: not yet read, no mark set).
    recv_buffer: usize,
    /// Frames left before the buffer size is read again.
    refresh_in: u32,
    /// Frames left before guessing again.
    cool_down: u32,
    /// The mark the socket has now.
    current: usize,
    /// The socket refused an option: the reader waits as if there were no coalescer.
    disabled: bool,
}

impl Coalescer {
    pub(crate) fn new(wait: Duration) -> Self {
        Coalescer {
            wait,
            recv_buffer: 0,
            refresh_in: 0,
            cool_down: 0,
            current: 1,
            disabled: false,
        }
    }

    /// `true` when the socket's receive buffer size should be read (again) before planning
    /// ([`Coalescer::set_recv_buffer`]).
    pub(crate) fn needs_recv_buffer_size(&self) -> bool {
        !self.disabled && self.refresh_in == 0
    }

    /// What to wait for: `buffered` are the bytes read but not yet a whole frame,
    /// `expected` the sum of the expected bytes of the requests still unanswered. `None`
    /// when the reader will not wait (`buffered` holds a whole frame) or sets no mark.
    pub(crate) fn plan(&self, buffered: &[u8], expected: usize) -> Option<Wait> {
        if self.disabled || self.recv_buffer == 0 {
            return None;
        }
        let rest = match buffered {
            [a, b, c, d, ..] => {
                let frame = (u32::from_be_bytes([*a, *b, *c, *d]) as usize).saturating_add(4);
                if frame <= buffered.len() {
                    return None;
                }
                frame - buffered.len()
            }
            _ => 1,
        };
        let guess = if self.wait.is_zero() || self.cool_down > 0 {
            0
        } else {
            (expected / 4 * 3).saturating_sub(buffered.len())
        };
        let low_water = rest.max(guess).clamp(1, (self.recv_buffer / 8).max(1));
        Some(Wait {
            low_water,
            guessed: low_water > rest,
        })
    }

    /// The mark the socket has now (1 at first).
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Records that the socket's mark is now `low_water`.
    pub(crate) fn set(&mut self, low_water: usize) {
        self.current = low_water;
    }

    /// A frame was read.
    pub(crate) fn frame_read(&mut self) {
        self.cool_down = self.cool_down.saturating_sub(1);
        self.refresh_in = self.refresh_in.saturating_sub(1);
    }

    /// The socket's receive buffer size was read: `bytes`.
    pub(crate) fn set_recv_buffer(&mut self, bytes: usize) {
        self.recv_buffer = bytes;
        self.refresh_in = RECV_BUFFER_REFRESH_FRAMES;
    }

    /// The socket refused an option (the mark or the buffer size): no more planning.
    pub(crate) fn disable(&mut self) {
        self.disabled = true;
    }

    /// A guessed wait ran out: no guessing for a while.
    pub(crate) fn gave_up(&mut self) {
        self.cool_down = COOL_DOWN_FRAMES;
    }
}

/// Sets `SO_RCVLOWAT`: bytes queued before the socket reads as readable (Linux ≥ 4.18
/// wakes a waiting reader at once when the mark is lowered below what is queued).
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
pub(crate) fn set_recv_low_water(socket: &TcpStream, bytes: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: the descriptor is open while `socket` is borrowed; the option value is a
    // c_int that outlives the call, and its size is the length passed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere the coalescer is never built ([`ReadHalf::plain_tcp`] is `None`).
#[cfg(not(target_os = "linux"))]
pub(crate) fn set_recv_low_water(_: &TcpStream, _: usize) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// The socket's receive buffer size (`SO_RCVBUF`, bytes).
pub(crate) fn recv_buffer_size(socket: &TcpStream) -> std::io::Result<usize> {
    socket2::SockRef::from(socket).recv_buffer_size()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_start(len: u32, have: usize) -> Vec<u8> {
        let mut v = (len - 4).to_be_bytes().to_vec();
        v.resize(have, 0);
        v
    }

    fn coalescer(wait_ms: u64, recv_buffer: usize) -> Coalescer {
        let mut c = Coalescer::new(Duration::from_millis(wait_ms));
        c.set_recv_buffer(recv_buffer);
        c
    }

    const BIG: usize = 8 << 20;

    #[test]
    fn waits_for_the_rest_of_a_frame_begun() {
        let c = coalescer(0, BIG);
        let w = c.plan(&frame_start(40_000, 1_000), 0).unwrap();
        assert_eq!(
            w,
            Wait {
                low_water: 39_000,
                guessed: false
            }
        );
    }

    #[test]
    fn a_whole_frame_buffered_means_no_wait() {
        let c = coalescer(2, BIG);
        assert_eq!(c.plan(&frame_start(100, 100), 400_000), None);
        assert_eq!(c.plan(&frame_start(100, 150), 400_000), None);
    }

    #[test]
    fn without_a_length_prefix_any_byte_wakes() {
        let c = coalescer(0, BIG);
        assert_eq!(
            c.plan(&[], 0).unwrap(),
            Wait {
                low_water: 1,
                guessed: false
            }
        );
        assert_eq!(c.plan(&[0, 0], 0).unwrap().low_water, 1);
    }

    #[test]
    fn guesses_three_quarters_of_the_expected_bytes_less_what_is_buffered() {
        let c = coalescer(2, BIG);
        let w = c.plan(&[], 320_000).unwrap();
        assert_eq!(
            w,
            Wait {
                low_water: 240_000,
                guessed: true
            }
        );
        let w = c.plan(&frame_start(40_000, 10_000), 320_000).unwrap();
        assert_eq!(
            w,
            Wait {
                low_water: 230_000,
                guessed: true
            }
        );
        // The rest of the frame is more than the guess: no guess needed.
        let w = c.plan(&frame_start(400_000, 10_000), 320_000).unwrap();
        assert_eq!(
            w,
            Wait {
                low_water: 390_000,
                guessed: false
            }
        );
    }

    #[test]
    fn never_guesses_when_off_or_cooling_down() {
        let off = coalescer(0, BIG);
        assert_eq!(
            off.plan(&[], 320_000).unwrap(),
            Wait {
                low_water: 1,
                guessed: false
            }
        );
        let mut c = coalescer(2, BIG);
        c.gave_up();
        for _ in 0..COOL_DOWN_FRAMES {
            assert!(!c.plan(&[], 320_000).unwrap().guessed);
            c.frame_read();
        }
        assert!(c.plan(&[], 320_000).unwrap().guessed);
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(release_at_least("6.18.44-fc-v1147", (4, 18)));
        assert!(release_at_least("4.18.0-553.el8_10.x86_64", (4, 18)));
        assert!(release_at_least("5.4.0\n", (4, 18)));
        assert!(!release_at_least("4.17.19", (4, 18)));
        assert!(!release_at_least("3.10.0-1160.el7.x86_64", (4, 18)));
        assert!(!release_at_least("", (4, 18)));
        assert!(!release_at_least("6", (4, 18)));
    }

    #[test]
    fn the_mark_stays_within_an_eighth_of_the_receive_buffer() {
        let c = coalescer(2, 131_072);
        let w = c.plan(&[], 320_000).unwrap();
        assert_eq!(
            w,
            Wait {
                low_water: 16_384,
                guessed: true
            }
        );
        let w = c.plan(&frame_start(1 << 20, 100), 0).unwrap();
        assert_eq!(
            w,
            Wait {
                low_water: 16_384,
                guessed: false
            }
        );
        // A guess the cap cuts below the frame's rest is no guess.
        let w = c.plan(&frame_start(40_000, 100), 320_000).unwrap();
        assert_eq!(
            w,
            Wait {
                low_water: 16_384,
                guessed: false
            }
        );
    }

    #[test]
    fn no_mark_before_the_buffer_size_is_known_or_once_disabled() {
        let c = Coalescer::new(Duration::from_millis(2));
        assert!(c.needs_recv_buffer_size());
        assert_eq!(c.plan(&[], 320_000), None);
        let mut c = coalescer(2, BIG);
        assert!(!c.needs_recv_buffer_size());
        c.disable();
        assert_eq!(c.plan(&frame_start(40_000, 1_000), 320_000), None);
        assert!(!c.needs_recv_buffer_size());
    }

    #[test]
    fn the_buffer_size_is_read_again_every_so_many_frames() {
        let mut c = coalescer(2, BIG);
        for _ in 0..RECV_BUFFER_REFRESH_FRAMES {
            assert!(!c.needs_recv_buffer_size());
            c.frame_read();
        }
        assert!(c.needs_recv_buffer_size());
    }
}

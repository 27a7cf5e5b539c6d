//! A loopback TCP fault proxy: forwards a listening port to a target and, on command,
//! resets every connection (and refuses new ones with a reset), black-holes them (accepts,
//! never answers), or delays what the target sends back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// Forward both ways.
    Pass,
    /// Close every connection with a TCP reset; new connections are reset at once.
    Reset,
    /// Keep connections open but forward nothing either way; new ones are accepted and
    /// never answered.
    BlackHole,
    /// Forward, holding every chunk from the target back this long.
    Delay(Duration),
}

/// A running proxy; dropping it stops it and closes every connection.
pub(crate) struct Proxy {
    /// `127.0.0.1:port` clients dial.
    pub(crate) addr: String,
    fault: watch::Sender<Fault>,
    _tasks: Arc<Mutex<JoinSet<()>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `target`.
    pub(crate) async fn start(target: String) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let (fault, rx) = watch::channel(Fault::Pass);
        let tasks = Arc::new(Mutex::new(JoinSet::new()));
        let conns = Arc::clone(&tasks);
        tasks.lock().expect("not poisoned").spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                let rx = rx.clone();
                let target = target.clone();
                conns
                    .lock()
                    .expect("not poisoned")
                    .spawn(async move { serve(client, target, rx).await });
            }
        });
        Ok(Proxy {
            addr,
            fault,
            _tasks: tasks,
        })
    }

    /// Switches the fault; connections see it at once.
    pub(crate) fn set(&self, f: Fault) {
        self.fault.send_replace(f);
    }
}

/// Ends `s` with a TCP reset rather than a FIN.
fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn serve(client: TcpStream, target: String, mut fault: watch::Receiver<Fault>) {
    // Wait out a black hole before connecting; a reset refuses at once.
    loop {
        let f = *fault.borrow_and_update();
        match f {
            Fault::Reset => return reset(client),
            Fault::BlackHole => {
                if fault.changed().await.is_err() {
                    return;
                }
            }
            _ => break,
        }
    }
    let Ok(mut server) = TcpStream::connect(&target).await else {
        return reset(client);
    };
    let mut client = client;
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let was_reset = {
        let (mut cr, mut cw) = client.split();
        let (mut sr, mut sw) = server.split();
        let up = copy(&mut cr, &mut sw, fault.clone(), false);
        let down = copy(&mut sr, &mut cw, fault.clone(), true);
        let resets = async {
            loop {
                if *fault.borrow_and_update() == Fault::Reset {
                    return;
                }
                if fault.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        };
        tokio::select! {
            _ = up => false,
            _ = down => false,
            _ = resets => true,
        }
    };
    if was_reset {
        reset(client);
        reset(server);
    }
}

/// Copies `from` to `to` until either end closes, obeying the fault; `delayed` applies
/// [`Fault::Delay`] (the target-to-client direction).
#[allow(
    clippy::disallowed_methods,
    reason = "a proxy forwards whatever bytes arrive; there are no frames to read"
)]
async fn copy(
    from: &mut (impl AsyncReadExt + Unpin),
    to: &mut (impl AsyncWriteExt + Unpin),
    mut fault: watch::Receiver<Fault>,
    delayed: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let delay = match *fault.borrow() {
            Fault::Delay(d) if delayed => d,
            _ => Duration::ZERO,
        };
        if !pass(&mut fault, delay).await || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Waits until a chunk may pass (`delay` after it arrived unless the delay is lifted
/// first, and not while black-holed); `false` when the connection must end (reset, or the
/// proxy stopped).
async fn pass(fault: &mut watch::Receiver<Fault>, delay: Duration) -> bool {
    if !delay.is_zero() {
        let lifted = async {
            loop {
                if !matches!(*fault.borrow_and_update(), Fault::Delay(_)) {
                    return;
                }
                if fault.changed().await.is_err() {
                    return std::future::pending().await;
                }
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = lifted => {}
        }
    }
    loop {
        match *fault.borrow_and_update() {
            Fault::Reset => return false,
            Fault::BlackHole => {}
            _ => return true,
        }
        if fault.changed().await.is_err() {
            return false;
        }
    }
}

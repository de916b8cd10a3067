//! `BleStream`: a link's byte stream as `futures::AsyncRead + AsyncWrite`, the output of the transport.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use futures::{AsyncRead, AsyncWrite};

use crate::driver::LinkId;
use crate::engine::{lock, Core, StreamHandle};
use crate::frame::CloseReason;
use crate::session::{LinkError, Read};

/// One BLE link as a reliable byte stream. A swarm upgrades it with noise and yamux.
pub struct BleStream {
    core: Arc<Mutex<Core>>,
    link: LinkId,
    handle: Arc<StreamHandle>,
    engine_waker: Arc<AtomicWaker>,
}

impl std::fmt::Debug for BleStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BleStream").field("link", &self.link).finish()
    }
}

impl BleStream {
    pub(crate) fn new(
        core: Arc<Mutex<Core>>,
        link: LinkId,
        handle: Arc<StreamHandle>,
        engine_waker: Arc<AtomicWaker>,
    ) -> Self {
        Self { core, link, handle, engine_waker }
    }

    /// The driver's id of the link under this stream.
    pub fn link_id(&self) -> LinkId {
        self.link
    }
}

fn io_error(error: LinkError) -> io::Error {
    let kind = match &error {
        LinkError::LivenessTimeout(_) => io::ErrorKind::TimedOut,
        LinkError::Disconnected | LinkError::RemoteClosed(_) => io::ErrorKind::ConnectionReset,
        LinkError::Duplicate => io::ErrorKind::ConnectionAborted,
        LinkError::Closed => io::ErrorKind::BrokenPipe,
        LinkError::Frame(_)
        | LinkError::SeqGap { .. }
        | LinkError::FlowControl { .. }
        | LinkError::Protocol(_)
        | LinkError::UnsupportedVersion(_) => io::ErrorKind::InvalidData,
        LinkError::Platform(_) => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, LinkError::Disconnected)
}

impl AsyncRead for BleStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut core = lock(&self.core);
        let Some(entry) = core.links.get_mut(&self.link) else {
            return Poll::Ready(Err(gone()));
        };
        match entry.session.read(buf) {
            Ok(Read::Data(n)) => {
                drop(core);
                // Reading may have made a credit grant due.
                self.engine_waker.wake();
                Poll::Ready(Ok(n))
            }
            Ok(Read::Eof) => Poll::Ready(Ok(0)),
            Ok(Read::WouldBlock) => {
                entry.read_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Err(error) => Poll::Ready(Err(io_error(error))),
        }
    }
}

impl AsyncWrite for BleStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let mut core = lock(&self.core);
        let Some(entry) = core.links.get_mut(&self.link) else {
            return Poll::Ready(Err(gone()));
        };
        match entry.session.write(buf) {
            Ok(0) if !buf.is_empty() => {
                entry.write_waker = Some(cx.waker().clone());
                Poll::Pending
            }
            Ok(n) => {
                drop(core);
                self.engine_waker.wake();
                Poll::Ready(Ok(n))
            }
            Err(error) => Poll::Ready(Err(io_error(error))),
        }
    }

    /// Everything written is already queued for the radio; the engine sends it as the link allows.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Starts the close handshake; queued data still goes out first.
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut core = lock(&self.core);
        if let Some(entry) = core.links.get_mut(&self.link) {
            entry.session.close(tokio::time::Instant::now().into_std(), CloseReason::Normal);
        }
        drop(core);
        self.engine_waker.wake();
        Poll::Ready(Ok(()))
    }
}

impl Drop for BleStream {
    fn drop(&mut self) {
        self.handle.mark_dropped();
        self.engine_waker.wake();
    }
}

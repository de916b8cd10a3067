//! Yamux sized for BLE links.
//!
//! `libp2p-yamux` 0.48 exposes only the stream count, so this wraps the `yamux` crate directly with settings that
//! suit a link of 30–180 kB/s:
//! - data frames are split at 4 KiB instead of 16 KiB, so a small message on one stream waits behind at most 4 KiB
//!   (≈ 25 ms at 2M PHY, ≈ 140 ms at MTU 23) of another stream's bulk data;
//! - at most 32 streams, and a connection receive window of 32 × 256 KiB, the least yamux 0.14 allows (its per-stream
//!   window starts at the spec's 256 KiB and cannot be set lower).
//!
//! The window that actually bounds bytes in flight over the radio is the link session's credit window
//! ([`crate::session::SessionConfig::recv_window`]), which is sized to the link. It speaks `/yamux/1.0.0`, so the
//! remote side can use any yamux implementation.

use std::collections::VecDeque;
use std::io;
use std::iter;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures::{AsyncRead, AsyncWrite};
use libp2p_core::muxing::{StreamMuxer, StreamMuxerEvent};
use libp2p_core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};

/// Streams per connection.
pub const MAX_STREAMS: usize = 32;
/// Largest yamux data frame.
pub const SPLIT_SEND_SIZE: usize = 4 * 1024;
const PER_STREAM_WINDOW: usize = 256 * 1024;

/// The muxer upgrade: use it in `.multiplex(...)`.
#[derive(Debug, Clone)]
pub struct Config(yamux::Config);

impl Default for Config {
    fn default() -> Self {
        let mut c = yamux::Config::default();
        c.set_max_num_streams(MAX_STREAMS);
        c.set_max_connection_receive_window(Some(MAX_STREAMS * PER_STREAM_WINDOW));
        c.set_split_send_size(SPLIT_SEND_SIZE);
        Self(c)
    }
}

impl UpgradeInfo for Config {
    type Info = &'static str;
    type InfoIter = iter::Once<Self::Info>;

    fn protocol_info(&self) -> Self::InfoIter {
        iter::once("/yamux/1.0.0")
    }
}

impl<C> InboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = futures::future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_inbound(self, io: C, _: Self::Info) -> Self::Future {
        futures::future::ready(Ok(Muxer::new(yamux::Connection::new(io, self.0, yamux::Mode::Server))))
    }
}

impl<C> OutboundConnectionUpgrade<C> for Config
where
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    type Output = Muxer<C>;
    type Error = io::Error;
    type Future = futures::future::Ready<Result<Muxer<C>, io::Error>>;

    fn upgrade_outbound(self, io: C, _: Self::Info) -> Self::Future {
        futures::future::ready(Ok(Muxer::new(yamux::Connection::new(io, self.0, yamux::Mode::Client))))
    }
}

/// A yamux connection as a libp2p [`StreamMuxer`].
#[derive(Debug)]
pub struct Muxer<C> {
    connection: yamux::Connection<C>,
    /// Inbound streams that arrived while the swarm polled for other progress.
    inbound: VecDeque<yamux::Stream>,
    inbound_waker: Option<Waker>,
}

impl<C> Muxer<C> {
    fn new(connection: yamux::Connection<C>) -> Self {
        Self { connection, inbound: VecDeque::new(), inbound_waker: None }
    }
}

impl<C> Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    fn poll_next_inbound(&mut self, cx: &mut Context<'_>) -> Poll<Result<yamux::Stream, yamux::ConnectionError>> {
        match self.connection.poll_next_inbound(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result),
            Poll::Ready(None) => Poll::Ready(Err(yamux::ConnectionError::Closed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<C> StreamMuxer for Muxer<C>
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    type Substream = yamux::Stream;
    type Error = yamux::ConnectionError;

    fn poll_inbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<yamux::Stream, Self::Error>> {
        let this = self.get_mut();
        if let Some(stream) = this.inbound.pop_front() {
            return Poll::Ready(Ok(stream));
        }
        let polled = this.poll_next_inbound(cx);
        if polled.is_pending() {
            this.inbound_waker = Some(cx.waker().clone());
        }
        polled
    }

    fn poll_outbound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<yamux::Stream, Self::Error>> {
        self.get_mut().connection.poll_new_outbound(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().connection.poll_close(cx)
    }

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<StreamMuxerEvent, Self::Error>> {
        let this = self.get_mut();
        let stream = match this.poll_next_inbound(cx) {
            Poll::Ready(Ok(stream)) => stream,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        if this.inbound.len() >= MAX_STREAMS {
            tracing::warn!("dropping inbound yamux stream: {MAX_STREAMS} already wait to be accepted");
        } else {
            this.inbound.push_back(stream);
            if let Some(w) = this.inbound_waker.take() {
                w.wake();
            }
        }
        // Yamux progresses only through poll_next_inbound: come back at once to keep it moving.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

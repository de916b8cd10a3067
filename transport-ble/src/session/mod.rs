//! The BLE link session: a sans-IO state machine that turns one radio link (a GATT bearer, plus an optional L2CAP CoC
//! bearer) into a reliable, flow-controlled byte stream.
//!
//! It owns no socket, task, clock or RNG. The caller feeds it received values and the current time and pulls out the
//! bytes to send, the next deadline and events:
//!
//! ```
//! use std::time::Instant;
//! use pollen_ble::session::{Bearer, LinkSession, Role, SessionConfig};
//!
//! let now = Instant::now();
//! let mut central = LinkSession::new(Role::Central, 1, 247, SessionConfig::default(), now);
//! let mut peripheral = LinkSession::new(Role::Peripheral, 2, 247, SessionConfig::default(), now);
//! central.write(b"hello").unwrap();
//! while let Some(value) = central.poll_transmit(now, Bearer::Gatt) {
//!     peripheral.handle_received(now, Bearer::Gatt, &value);
//! }
//! let mut buf = [0u8; 16];
//! assert_eq!(peripheral.read(&mut buf), Ok(pollen_ble::session::Read::Data(5)));
//! ```

mod error;
mod rx;
mod tx;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
pub use error::{LinkError, ProtocolViolation};
pub use pollen_radio_model::ble::Bearer;

use crate::frame::{CloseReason, Control, FrameHeader, Hello, StreamDecoder, MIN_WINDOW};

/// Which end of the BLE connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The GATT client, which connected and writes to the peripheral.
    Central,
    /// The GATT server, which advertised and notifies the central.
    Peripheral,
}

/// Tunables of a link session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Send a PING when nothing was sent for this long.
    pub keepalive_interval: Duration,
    /// Declare the link dead when nothing arrived for this long. Owned here, not by the platform.
    pub liveness_timeout: Duration,
    /// Bytes of stream data this side buffers for the application (its credit window), at least 4096.
    pub recv_window: u32,
    /// Bytes of stream data accepted from the application before `write` pushes back.
    pub send_buffer: usize,
    /// How long a closing side waits for the peer's CLOSE before giving up.
    pub close_linger: Duration,
    /// Whether to move the stream to an L2CAP CoC when both sides can.
    pub l2cap: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            keepalive_interval: Duration::from_secs(2),
            liveness_timeout: Duration::from_secs(6),
            recv_window: 32 * 1024,
            send_buffer: 8 * 1024,
            close_linger: Duration::from_secs(1),
            l2cap: true,
        }
    }
}

/// What the session tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The peer's HELLO arrived: the link is a Pollen link, and this is the peer's tie-breaker nonce.
    PeerHello {
        /// The peer's ephemeral ID at connection time.
        nonce: u64,
        /// Whether the peer can use L2CAP.
        l2cap: bool,
    },
    /// (Central only) the peripheral listens on this L2CAP PSM; open a channel to move the stream there.
    L2capOffered {
        /// The PSM to connect to.
        psm: u16,
    },
    /// Stream bytes are ready to read.
    Readable,
    /// The send buffer has room again after a short write.
    Writable,
    /// The session is over. `Ok` after a normal close from either side.
    Closed(Result<(), LinkError>),
}

/// Outcome of [`LinkSession::read`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were copied.
    Data(usize),
    /// Nothing to read yet.
    WouldBlock,
    /// The peer closed normally and everything was read.
    Eof,
}

/// Counters for overhead accounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Stream bytes sent in data frames.
    pub data_bytes_sent: u64,
    /// Every byte handed to the driver, headers and control frames included.
    pub wire_bytes_sent: u64,
    /// Frames handed to the driver.
    pub frames_sent: u64,
    /// Stream bytes received.
    pub data_bytes_received: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Open,
    /// Waiting for our CLOSE to go out and the peer's CLOSE to come back.
    Closing {
        deadline: Instant,
    },
    Closed,
}

#[derive(Debug, Default)]
struct BearerSeq {
    tx_seq: u8,
    rx_seq: u8,
    hello_sent: bool,
    hello_received: bool,
}

#[derive(Debug)]
struct L2capBearer {
    max_sdu: usize,
    seq: BearerSeq,
    decoder: StreamDecoder,
    /// Frames that arrived on L2CAP before the peer's SWITCH on GATT, in order.
    early: VecDeque<(FrameHeader, Bytes)>,
    early_bytes: usize,
}

/// One BLE link's session. See the [module documentation](self).
#[derive(Debug)]
pub struct LinkSession {
    role: Role,
    config: SessionConfig,
    local_nonce: u64,
    local_mtu: u16,
    peer: Option<Hello>,
    peer_mtu: u16,
    gatt: BearerSeq,
    /// GATT frames that arrived ahead of their turn, by sequence number (at most the reorder window).
    gatt_reorder: std::collections::BTreeMap<u8, (FrameHeader, Bytes)>,
    /// When the oldest gap in `gatt_reorder` counts as a lost frame.
    reorder_deadline: Option<Instant>,
    l2cap: Option<L2capBearer>,
    tx_bearer: Bearer,
    rx_bearer: Bearer,
    switch_sent: bool,
    l2cap_offer: Option<u16>,
    send_credit: u64,
    recv_allowance: u64,
    consumed_unacked: u64,
    recv_buf: VecDeque<u8>,
    send_buf: VecDeque<u8>,
    ctrl: VecDeque<Control>,
    ping_queued: bool,
    write_blocked: bool,
    closing_after_data: Option<CloseReason>,
    close_sent: bool,
    close_received: Option<CloseReason>,
    /// CLOSE to send once after the session failed.
    final_close: Option<CloseReason>,
    last_sent: Instant,
    last_received: Instant,
    phase: Phase,
    outcome: Option<Result<(), LinkError>>,
    events: VecDeque<SessionEvent>,
    stats: SessionStats,
}

/// Decides the simultaneous-connect race deterministically: of two links between the same pair of nodes with opposite
/// roles, the one whose central has the larger nonce survives. Both ends compute the same answer from the same pair of
/// HELLO nonces, so exactly one link remains. Equal nonces (probability 2⁻⁶⁴) keep both.
pub fn survives_duplicate(local_role: Role, local_nonce: u64, remote_nonce: u64) -> bool {
    match local_role {
        Role::Central => local_nonce >= remote_nonce,
        Role::Peripheral => remote_nonce >= local_nonce,
    }
}

impl LinkSession {
    /// A session for a link that just came up. `local_nonce` is this node's ephemeral ID, `att_mtu` the ATT MTU the
    /// platform reports (≤ 23 means unknown).
    pub fn new(role: Role, local_nonce: u64, att_mtu: u16, config: SessionConfig, now: Instant) -> Self {
        let recv_window = config.recv_window.max(MIN_WINDOW);
        Self {
            role,
            config: SessionConfig { recv_window, ..config },
            local_nonce,
            local_mtu: att_mtu,
            peer: None,
            peer_mtu: u16::MAX,
            gatt: BearerSeq::default(),
            gatt_reorder: std::collections::BTreeMap::new(),
            reorder_deadline: None,
            l2cap: None,
            tx_bearer: Bearer::Gatt,
            rx_bearer: Bearer::Gatt,
            switch_sent: false,
            l2cap_offer: None,
            send_credit: u64::from(MIN_WINDOW),
            recv_allowance: u64::from(recv_window),
            consumed_unacked: 0,
            recv_buf: VecDeque::new(),
            send_buf: VecDeque::new(),
            ctrl: VecDeque::new(),
            ping_queued: false,
            write_blocked: false,
            closing_after_data: None,
            close_sent: false,
            close_received: None,
            final_close: None,
            last_sent: now,
            last_received: now,
            phase: Phase::Open,
            outcome: None,
            events: VecDeque::new(),
            stats: SessionStats::default(),
        }
    }

    /// This side's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer's HELLO nonce, once its HELLO arrived.
    pub fn peer_nonce(&self) -> Option<u64> {
        self.peer.map(|h| h.nonce)
    }

    /// The bearer this side's stream data currently leaves on.
    pub fn tx_bearer(&self) -> Bearer {
        self.tx_bearer
    }

    /// Counters.
    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Whether the session ended (a final CLOSE may still be waiting in [`Self::poll_transmit`]).
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// (Peripheral) announces an L2CAP listener on `psm` to the central after the HELLO.
    pub fn offer_l2cap(&mut self, psm: u16) {
        if self.role == Role::Peripheral && self.config.l2cap {
            self.l2cap_offer = Some(psm);
        }
    }

    /// The platform reports a new ATT MTU.
    pub fn handle_mtu(&mut self, att_mtu: u16) {
        if att_mtu != self.local_mtu {
            self.local_mtu = att_mtu;
            if self.gatt.hello_sent && self.phase == Phase::Open {
                self.ctrl.push_back(Control::Mtu { att_mtu });
            }
        }
    }

    /// An L2CAP CoC of this link is open and accepts SDUs of up to `max_sdu` bytes: the stream moves there.
    pub fn handle_l2cap_opened(&mut self, max_sdu: usize) {
        if self.l2cap.is_some() || self.phase != Phase::Open || !self.config.l2cap {
            return;
        }
        self.l2cap = Some(L2capBearer {
            max_sdu: max_sdu.max(crate::frame::HEADER_LEN + 21),
            seq: BearerSeq::default(),
            decoder: StreamDecoder::default(),
            early: VecDeque::new(),
            early_bytes: 0,
        });
        self.tx_bearer = Bearer::L2capCoc;
    }

    /// Appends stream bytes to the send buffer; returns how many fit (0 when full).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, LinkError> {
        if let Some(Err(e)) = &self.outcome {
            return Err(e.clone());
        }
        if self.phase != Phase::Open || self.closing_after_data.is_some() {
            return Err(LinkError::Closed);
        }
        let room = self.config.send_buffer.saturating_sub(self.send_buf.len());
        let n = room.min(data.len());
        self.send_buf.extend(&data[..n]);
        if n < data.len() {
            self.write_blocked = true;
        }
        Ok(n)
    }

    /// Bytes in the send buffer that have not been framed yet.
    pub fn unsent(&self) -> usize {
        self.send_buf.len()
    }

    /// Copies received stream bytes into `buf`, granting credit back to the peer as the window drains.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Read, LinkError> {
        if !self.recv_buf.is_empty() {
            let n = buf.len().min(self.recv_buf.len());
            for (dst, src) in buf.iter_mut().zip(self.recv_buf.drain(..n)) {
                *dst = src;
            }
            self.consumed_unacked += n as u64;
            if self.consumed_unacked >= u64::from(self.config.recv_window / 4) && self.phase == Phase::Open {
                let increment = self.consumed_unacked as u32;
                self.recv_allowance += self.consumed_unacked;
                self.consumed_unacked = 0;
                self.ctrl.push_back(Control::Credit { increment });
            }
            return Ok(Read::Data(n));
        }
        match &self.outcome {
            Some(Ok(())) => Ok(Read::Eof),
            Some(Err(e)) => Err(e.clone()),
            None if self.close_received.is_some() => Ok(Read::Eof),
            None => Ok(Read::WouldBlock),
        }
    }

    /// Starts a close: pending data is sent first (for [`CloseReason::Normal`]), then CLOSE, then the session waits up
    /// to `close_linger` for the peer's CLOSE.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        if self.phase != Phase::Open {
            return;
        }
        if reason != CloseReason::Normal {
            self.send_buf.clear();
        }
        self.closing_after_data = Some(reason);
        self.phase = Phase::Closing { deadline: now + self.config.close_linger };
    }

    /// Ends the session at once with `error` (for example [`LinkError::Duplicate`] or [`LinkError::Disconnected`]).
    pub fn abort(&mut self, error: LinkError) {
        self.fail(error);
    }

    /// The next instant [`Self::handle_timeout`] must be called at.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let liveness = self.last_received + self.config.liveness_timeout;
        let deadline = self.reorder_deadline.map_or(liveness, |r| r.min(liveness));
        match self.phase {
            Phase::Closed => None,
            Phase::Closing { deadline: linger } => Some(linger.min(deadline)),
            Phase::Open if self.ping_queued => Some(deadline),
            Phase::Open => Some(deadline.min(self.last_sent + self.config.keepalive_interval)),
        }
    }

    /// Runs the timers: liveness, keep-alive and the close linger.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if now >= self.last_received + self.config.liveness_timeout {
            self.fail(LinkError::LivenessTimeout(self.config.liveness_timeout));
            return;
        }
        if self.reorder_deadline.is_some_and(|t| now >= t) {
            let got = self.gatt_reorder.keys().next().copied().unwrap_or_default();
            self.fail(LinkError::SeqGap { bearer: Bearer::Gatt, expected: self.gatt.rx_seq, got });
            return;
        }
        match self.phase {
            Phase::Closing { deadline } if now >= deadline => self.finish(),
            Phase::Open if !self.ping_queued && now >= self.last_sent + self.config.keepalive_interval => {
                self.ping_queued = true;
                self.ctrl.push_back(Control::Ping);
            }
            _ => {}
        }
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    fn fail(&mut self, error: LinkError) {
        if self.phase == Phase::Closed {
            return;
        }
        tracing::debug!(%error, role = ?self.role, "link session failed");
        if !self.close_sent {
            self.final_close = error.close_reason();
        }
        self.ctrl.clear();
        self.send_buf.clear();
        self.phase = Phase::Closed;
        self.outcome = Some(Err(error.clone()));
        self.events.push_back(SessionEvent::Closed(Err(error)));
    }

    fn finish(&mut self) {
        let result = match self.close_received {
            Some(CloseReason::Normal) | None => Ok(()),
            Some(CloseReason::Duplicate) => Err(LinkError::Duplicate),
            Some(other) => Err(LinkError::RemoteClosed(other)),
        };
        self.phase = Phase::Closed;
        self.outcome = Some(result.clone());
        self.events.push_back(SessionEvent::Closed(result));
    }
}

#[cfg(test)]
mod tests;

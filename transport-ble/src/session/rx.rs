//! The receive half: frame checks, HELLO, credits, SWITCH and CLOSE.

use std::time::Instant;

use super::{Bearer, LinkError, LinkSession, Phase, ProtocolViolation, SessionEvent};
use crate::frame::{
    decode_gatt_value, CloseReason, Control, FrameHeader, FrameKind, Hello, LINK_VERSION, MIN_WINDOW, SEQ_MODULUS,
};

/// How far ahead of the expected sequence number a GATT frame may arrive and wait for its predecessors. BlueZ
/// spreads GATT traffic over several ATT bearers (EATT), which reorders it by 20 and more frames under load
/// (measured in the virtual lab). Frames are never duplicated, so nothing can be "behind": the whole 5-bit sequence
/// space but the expected number counts as ahead, and a lost frame is caught by the gap timer.
pub(crate) const GATT_REORDER_WINDOW: usize = 31;
/// How long a GATT frame ahead of its turn waits for the missing one before the gap counts as a lost frame. EATT
/// reordering spans milliseconds; a platform that dropped a write never fills the gap.
pub(crate) const GATT_REORDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Control frames a peer may park on L2CAP before SWITCH besides its window of data (credits, pings, MTU updates).
const EARLY_CONTROL_ALLOWANCE: usize = 4096;

impl LinkSession {
    /// Feeds one received value: a whole ATT value on [`Bearer::Gatt`], any chunk of the byte stream on
    /// [`Bearer::L2capCoc`]. Malformed input ends the session with a typed error; nothing here panics or grows
    /// without bound.
    pub fn handle_received(&mut self, now: Instant, bearer: Bearer, bytes: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.last_received = now;
        let result = match bearer {
            Bearer::Gatt => decode_gatt_value(bytes)
                .map_err(LinkError::from)
                .and_then(|(header, payload)| self.on_gatt_frame(now, header, payload)),
            Bearer::L2capCoc => self.on_l2cap_bytes(now, bytes),
        };
        if let Err(error) = result {
            self.fail(error);
        }
    }

    /// The platform reports the link gone. During a close handshake that is the expected end; otherwise an error.
    pub fn handle_disconnected(&mut self) {
        let handshake = self.close_sent || self.close_received.is_some();
        if matches!(self.phase, Phase::Closing { .. }) && handshake {
            self.finish();
        } else {
            self.fail(LinkError::Disconnected);
        }
    }

    fn on_l2cap_bytes(&mut self, now: Instant, bytes: &[u8]) -> Result<(), LinkError> {
        let l2cap = self.l2cap.as_mut().ok_or(ProtocolViolation::L2capWithoutChannel)?;
        for (header, payload) in l2cap.decoder.push(bytes) {
            self.on_frame(now, Bearer::L2capCoc, header, &payload)?;
            if self.phase == Phase::Closed {
                break;
            }
        }
        Ok(())
    }

    /// Orders GATT frames that several ATT bearers (EATT) delivered out of order, then processes them.
    fn on_gatt_frame(&mut self, now: Instant, header: FrameHeader, payload: &[u8]) -> Result<(), LinkError> {
        let ahead = header.seq.wrapping_sub(self.gatt.rx_seq) % SEQ_MODULUS;
        if ahead == 0 {
            self.on_frame(now, Bearer::Gatt, header, payload)?;
            while let Some((h, p)) = self.gatt_reorder.remove(&self.gatt.rx_seq) {
                self.on_frame(now, Bearer::Gatt, h, &p)?;
                if self.phase == Phase::Closed {
                    break;
                }
            }
            // Frames still held are now waiting for a new gap: give it the full time.
            self.reorder_deadline = (!self.gatt_reorder.is_empty()).then(|| now + GATT_REORDER_TIMEOUT);
            return Ok(());
        }
        if usize::from(ahead) > GATT_REORDER_WINDOW || self.gatt_reorder.contains_key(&header.seq) {
            return Err(LinkError::SeqGap { bearer: Bearer::Gatt, expected: self.gatt.rx_seq, got: header.seq });
        }
        if self.gatt_reorder.is_empty() {
            self.reorder_deadline = Some(now + GATT_REORDER_TIMEOUT);
        }
        self.gatt_reorder.insert(header.seq, (header, bytes::Bytes::copy_from_slice(payload)));
        Ok(())
    }

    fn on_frame(&mut self, now: Instant, bearer: Bearer, header: FrameHeader, payload: &[u8]) -> Result<(), LinkError> {
        let seq = match bearer {
            Bearer::Gatt => &mut self.gatt,
            Bearer::L2capCoc => &mut self.l2cap.as_mut().ok_or(ProtocolViolation::L2capWithoutChannel)?.seq,
        };
        if header.seq != seq.rx_seq {
            return Err(LinkError::SeqGap { bearer, expected: seq.rx_seq, got: header.seq });
        }
        seq.rx_seq = (seq.rx_seq + 1) % SEQ_MODULUS;
        if !seq.hello_received {
            return match (header.kind, Control::decode(payload)) {
                (FrameKind::Control, Ok(Control::Hello(hello))) => self.on_hello(bearer, hello),
                (FrameKind::Control, Err(e)) => Err(e.into()),
                _ => Err(ProtocolViolation::ExpectedHello.into()),
            };
        }
        match (bearer, self.rx_bearer) {
            (Bearer::Gatt, Bearer::L2capCoc) => Err(ProtocolViolation::FrameAfterSwitch.into()),
            (Bearer::L2capCoc, Bearer::Gatt) => self.park_early(header, payload),
            _ => self.apply(now, bearer, header.kind, payload),
        }
    }

    fn on_hello(&mut self, bearer: Bearer, hello: Hello) -> Result<(), LinkError> {
        if hello.version != LINK_VERSION {
            return Err(LinkError::UnsupportedVersion(hello.version));
        }
        match bearer {
            Bearer::Gatt => {
                if hello.window < MIN_WINDOW {
                    return Err(ProtocolViolation::WindowTooSmall(hello.window).into());
                }
                self.gatt.hello_received = true;
                self.peer = Some(hello);
                self.peer_mtu = hello.att_mtu;
                self.send_credit += u64::from(hello.window - MIN_WINDOW);
                let l2cap = hello.flags & Hello::FLAG_L2CAP != 0;
                self.events.push_back(SessionEvent::PeerHello { nonce: hello.nonce, l2cap });
            }
            Bearer::L2capCoc => {
                let peer = self.peer.ok_or(ProtocolViolation::ExpectedHello)?;
                if hello.nonce != peer.nonce {
                    return Err(ProtocolViolation::L2capHelloMismatch.into());
                }
                if let Some(l2cap) = self.l2cap.as_mut() {
                    l2cap.seq.hello_received = true;
                }
            }
        }
        Ok(())
    }

    fn park_early(&mut self, header: FrameHeader, payload: &[u8]) -> Result<(), LinkError> {
        let limit = self.config.recv_window as usize + EARLY_CONTROL_ALLOWANCE;
        let l2cap = self.l2cap.as_mut().ok_or(ProtocolViolation::L2capWithoutChannel)?;
        l2cap.early_bytes += payload.len() + crate::frame::HEADER_LEN;
        if l2cap.early_bytes > limit {
            return Err(ProtocolViolation::PreSwitchOverflow.into());
        }
        l2cap.early.push_back((header, bytes::Bytes::copy_from_slice(payload)));
        Ok(())
    }

    fn apply(&mut self, now: Instant, bearer: Bearer, kind: FrameKind, payload: &[u8]) -> Result<(), LinkError> {
        if kind == FrameKind::Data {
            return self.on_data(payload);
        }
        match Control::decode(payload)? {
            Control::Hello(_) => Err(ProtocolViolation::SecondHello.into()),
            Control::Credit { increment } => {
                self.send_credit = self.send_credit.saturating_add(u64::from(increment));
                Ok(())
            }
            Control::Ping => Ok(()),
            Control::Close { reason } => {
                self.on_remote_close(now, reason);
                Ok(())
            }
            Control::L2capOffer { psm } => {
                if self.role != super::Role::Central {
                    return Err(ProtocolViolation::UnexpectedOffer.into());
                }
                let peer_l2cap = self.peer.is_some_and(|h| h.flags & Hello::FLAG_L2CAP != 0);
                if self.config.l2cap && peer_l2cap && self.l2cap.is_none() {
                    self.events.push_back(SessionEvent::L2capOffered { psm });
                }
                Ok(())
            }
            Control::Switch => self.on_switch(now, bearer),
            Control::Mtu { att_mtu } => {
                self.peer_mtu = att_mtu;
                Ok(())
            }
        }
    }

    fn on_data(&mut self, payload: &[u8]) -> Result<(), LinkError> {
        let len = payload.len() as u64;
        if len > self.recv_allowance {
            return Err(LinkError::FlowControl { len: payload.len(), allowance: self.recv_allowance });
        }
        self.recv_allowance -= len;
        self.stats.data_bytes_received += len;
        if self.close_received.is_some() || len == 0 {
            return Ok(());
        }
        if self.recv_buf.is_empty() {
            self.events.push_back(SessionEvent::Readable);
        }
        self.recv_buf.extend(payload);
        Ok(())
    }

    fn on_switch(&mut self, now: Instant, bearer: Bearer) -> Result<(), LinkError> {
        if bearer != Bearer::Gatt || self.rx_bearer != Bearer::Gatt {
            return Err(ProtocolViolation::UnexpectedSwitch.into());
        }
        self.rx_bearer = Bearer::L2capCoc;
        // The channel may not be reported open on this side yet; its frames are handled as they arrive then.
        let early = match self.l2cap.as_mut() {
            Some(l2cap) => {
                l2cap.early_bytes = 0;
                std::mem::take(&mut l2cap.early)
            }
            None => Default::default(),
        };
        for (header, payload) in early {
            self.apply(now, Bearer::L2capCoc, header.kind, &payload)?;
        }
        Ok(())
    }

    fn on_remote_close(&mut self, now: Instant, reason: CloseReason) {
        self.close_received = Some(reason);
        self.send_buf.clear();
        if self.close_sent {
            self.finish();
            return;
        }
        // Echo a CLOSE so the peer can finish without waiting for its linger; pending data is moot now.
        self.closing_after_data = Some(CloseReason::Normal);
        if self.phase == Phase::Open {
            self.phase = Phase::Closing { deadline: now + self.config.close_linger };
        }
    }
}

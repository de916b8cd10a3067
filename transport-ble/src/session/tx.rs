//! The transmit half: what goes into the next GATT write / notification or L2CAP SDU.

use std::time::Instant;

use pollen_radio_model::ble::{ATT_HEADER, ATT_MTU_DEFAULT};

use super::{Bearer, LinkSession, Phase, SessionEvent};
use crate::frame::{
    put_control, put_frame, Control, FrameKind, Hello, HEADER_LEN, LINK_VERSION, MAX_PAYLOAD, SEQ_MODULUS,
};

impl LinkSession {
    /// The next value to hand to the platform on `bearer`: one ATT value (≤ ATT MTU − 3) for GATT, one SDU
    /// (≤ the channel's SDU size) for L2CAP. Call it whenever the platform can take a send on that bearer, until it
    /// returns `None`.
    pub fn poll_transmit(&mut self, now: Instant, bearer: Bearer) -> Option<Vec<u8>> {
        let out = if self.phase == Phase::Closed {
            self.final_close_frame(bearer)
        } else {
            match bearer {
                Bearer::Gatt => self.transmit_gatt(),
                Bearer::L2capCoc => self.transmit_l2cap(),
            }
        }?;
        self.last_sent = now;
        self.stats.wire_bytes_sent += out.len() as u64;
        if self.close_sent && self.close_received.is_some() && self.phase != Phase::Closed {
            self.finish();
        }
        Some(out)
    }

    /// Largest stream payload of one GATT frame: the smaller of both sides' ATT MTU views, less ATT and frame headers.
    pub fn gatt_frame_payload(&self) -> usize {
        let known = |mtu: u16| mtu.max(ATT_MTU_DEFAULT);
        let mtu = known(self.local_mtu).min(known(self.peer_mtu));
        usize::from(mtu) - ATT_HEADER - HEADER_LEN
    }

    fn hello(&self) -> Hello {
        Hello {
            version: LINK_VERSION,
            flags: if self.config.l2cap { Hello::FLAG_L2CAP } else { 0 },
            nonce: self.local_nonce,
            window: self.config.recv_window,
            att_mtu: self.local_mtu,
        }
    }

    fn transmit_gatt(&mut self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        if !self.gatt.hello_sent {
            self.gatt.hello_sent = true;
            let hello = Control::Hello(self.hello());
            self.push_control(&mut out, Bearer::Gatt, &hello);
            return Some(out);
        }
        if self.tx_bearer == Bearer::L2capCoc {
            if self.switch_sent {
                return None;
            }
            self.switch_sent = true;
            self.push_control(&mut out, Bearer::Gatt, &Control::Switch);
            return Some(out);
        }
        if let Some(control) = self.next_control() {
            self.push_control(&mut out, Bearer::Gatt, &control);
            return Some(out);
        }
        let max = self.gatt_frame_payload();
        self.push_data(&mut out, Bearer::Gatt, max).then_some(out)
    }

    /// L2CAP frames are coalesced: one SDU carries as many control and data frames as fit.
    fn transmit_l2cap(&mut self) -> Option<Vec<u8>> {
        let l2cap = self.l2cap.as_mut()?;
        let max_sdu = l2cap.max_sdu;
        let mut out = Vec::new();
        if !l2cap.seq.hello_sent {
            l2cap.seq.hello_sent = true;
            let hello = Control::Hello(self.hello());
            self.push_control(&mut out, Bearer::L2capCoc, &hello);
        }
        while self.tx_bearer == Bearer::L2capCoc {
            let room = max_sdu.saturating_sub(out.len());
            if room < HEADER_LEN + Control::MAX_ENCODED_LEN {
                break;
            }
            if let Some(control) = self.next_control() {
                self.push_control(&mut out, Bearer::L2capCoc, &control);
            } else if !self.push_data(&mut out, Bearer::L2capCoc, (room - HEADER_LEN).min(MAX_PAYLOAD)) {
                break;
            }
        }
        (!out.is_empty()).then_some(out)
    }

    fn close_due(&self) -> bool {
        self.closing_after_data.is_some() && !self.close_sent && self.send_buf.is_empty()
    }

    fn next_control(&mut self) -> Option<Control> {
        if let Some(psm) = self.l2cap_offer.take() {
            return Some(Control::L2capOffer { psm });
        }
        if let Some(control) = self.ctrl.pop_front() {
            if control == Control::Ping {
                self.ping_queued = false;
            }
            return Some(control);
        }
        if self.close_due() {
            self.close_sent = true;
            return self.closing_after_data.map(|reason| Control::Close { reason });
        }
        None
    }

    fn final_close_frame(&mut self, bearer: Bearer) -> Option<Vec<u8>> {
        if bearer != self.tx_bearer || !self.bearer_hello_sent(bearer) {
            return None;
        }
        let reason = self.final_close.take()?;
        self.close_sent = true;
        let mut out = Vec::new();
        self.push_control(&mut out, bearer, &Control::Close { reason });
        Some(out)
    }

    fn bearer_hello_sent(&self, bearer: Bearer) -> bool {
        match bearer {
            Bearer::Gatt => self.gatt.hello_sent,
            Bearer::L2capCoc => self.l2cap.as_ref().is_some_and(|l| l.seq.hello_sent),
        }
    }

    fn next_seq(&mut self, bearer: Bearer) -> u8 {
        let seq = match bearer {
            Bearer::Gatt => &mut self.gatt,
            Bearer::L2capCoc => match self.l2cap.as_mut() {
                Some(l2cap) => &mut l2cap.seq,
                None => &mut self.gatt,
            },
        };
        let current = seq.tx_seq;
        seq.tx_seq = (seq.tx_seq + 1) % SEQ_MODULUS;
        current
    }

    fn push_control(&mut self, out: &mut Vec<u8>, bearer: Bearer, control: &Control) {
        let seq = self.next_seq(bearer);
        put_control(out, seq, control);
        self.stats.frames_sent += 1;
    }

    /// Frames up to `max` bytes of buffered stream data within the peer's credit; false when nothing could be sent.
    fn push_data(&mut self, out: &mut Vec<u8>, bearer: Bearer, max: usize) -> bool {
        let credit = usize::try_from(self.send_credit).unwrap_or(usize::MAX);
        let n = self.send_buf.len().min(max).min(credit);
        if n == 0 {
            return false;
        }
        let (front, back) = self.send_buf.as_slices();
        let payload: Vec<u8> =
            if front.len() >= n { front[..n].to_vec() } else { front.iter().chain(back).take(n).copied().collect() };
        self.send_buf.drain(..n);
        self.send_credit -= n as u64;
        self.stats.data_bytes_sent += n as u64;
        self.stats.frames_sent += 1;
        let seq = self.next_seq(bearer);
        put_frame(out, FrameKind::Data, seq, &payload);
        if self.write_blocked && self.send_buf.len() <= self.config.send_buffer / 2 {
            self.write_blocked = false;
            self.events.push_back(SessionEvent::Writable);
        }
        true
    }
}

//! The link wire format (`docs/ble-link.md`): a 2-byte frame header, control frames, and the decoders for the GATT
//! bearer (one frame per ATT value) and the L2CAP bearer (frames in a byte stream).
//!
//! Header, big-endian `u16`: `K SSSSS LLLLLLLLLL`
//! - `K`: 0 = data (stream bytes), 1 = control;
//! - `S`: sequence number mod 32, per bearer and direction, counting every frame;
//! - `L`: payload length, 0..=1023.
//!
//! The length is the per-fragment integrity check: a write that a platform truncated (Android cuts writes longer than
//! the ATT MTU silently) arrives shorter than its header says and is rejected, never delivered. The sequence number
//! catches a write a platform dropped (iOS drops writes issued while its queue is full).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Link protocol version carried in every HELLO.
pub const LINK_VERSION: u8 = 1;
/// Length of the frame header.
pub const HEADER_LEN: usize = 2;
/// Largest payload a header can describe.
pub const MAX_PAYLOAD: usize = 0x3ff;
/// Sequence numbers count modulo this.
pub const SEQ_MODULUS: u8 = 32;
/// Bytes every receiver must accept before its HELLO reached the sender, so the first frames can be pipelined.
pub const MIN_WINDOW: u32 = 4096;

const KIND_BIT: u16 = 0x8000;
const SEQ_SHIFT: u16 = 10;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Bytes of the link's byte stream.
    Data,
    /// A [`Control`] message.
    Control,
}

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Data or control.
    pub kind: FrameKind,
    /// Sequence number, 0..32.
    pub seq: u8,
    /// Payload length, 0..=1023.
    pub len: u16,
}

impl FrameHeader {
    /// Encodes the header. `seq` is reduced mod 32; `len` must be at most [`MAX_PAYLOAD`].
    pub fn encode(self) -> [u8; HEADER_LEN] {
        debug_assert!(usize::from(self.len) <= MAX_PAYLOAD);
        let kind = if self.kind == FrameKind::Control { KIND_BIT } else { 0 };
        let seq = u16::from(self.seq % SEQ_MODULUS) << SEQ_SHIFT;
        (kind | seq | (self.len & MAX_PAYLOAD as u16)).to_be_bytes()
    }

    /// Decodes a header; every 16-bit value is a valid header.
    pub fn decode(raw: [u8; HEADER_LEN]) -> Self {
        let v = u16::from_be_bytes(raw);
        Self {
            kind: if v & KIND_BIT != 0 { FrameKind::Control } else { FrameKind::Data },
            seq: ((v >> SEQ_SHIFT) & 0x1f) as u8,
            len: v & MAX_PAYLOAD as u16,
        }
    }
}

/// Why a frame could not be decoded. Every variant closes the link that sent it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// Fewer bytes than a header.
    #[error("frame shorter than its 2-byte header ({0} bytes)")]
    ShortHeader(usize),
    /// The value ended before the length in its header: a truncated write.
    #[error("truncated write: header declares {declared} payload bytes, {actual} arrived")]
    Truncated {
        /// Payload length in the header.
        declared: u16,
        /// Payload bytes present.
        actual: usize,
    },
    /// Bytes after the frame in a GATT value, which carries exactly one frame.
    #[error("{extra} bytes after the frame in one GATT value")]
    TrailingBytes {
        /// Bytes beyond the declared frame.
        extra: usize,
    },
    /// A control frame with an unknown type.
    #[error("unknown control type 0x{0:02x}")]
    UnknownControl(u8),
    /// A control frame whose body has the wrong length for its type.
    #[error("control type 0x{kind:02x} with a {len}-byte body")]
    BadControlLength {
        /// The control type.
        kind: u8,
        /// The body length received.
        len: usize,
    },
    /// An empty control frame.
    #[error("control frame without a type byte")]
    EmptyControl,
}

/// Reason codes carried by CLOSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The application closed the link.
    Normal,
    /// Both sides connected at once and this link lost the tie-break.
    Duplicate,
    /// The peer violated the protocol.
    ProtocolError,
    /// The peer's HELLO carried a version this side does not speak.
    UnsupportedVersion,
    /// The peer sent more than its credit.
    FlowControl,
    /// The node is shutting down.
    Shutdown,
    /// A code this version does not know.
    Other(u8),
}

impl CloseReason {
    fn code(self) -> u8 {
        match self {
            CloseReason::Normal => 0,
            CloseReason::Duplicate => 1,
            CloseReason::ProtocolError => 2,
            CloseReason::UnsupportedVersion => 3,
            CloseReason::FlowControl => 4,
            CloseReason::Shutdown => 5,
            CloseReason::Other(c) => c,
        }
    }

    fn from_code(c: u8) -> Self {
        match c {
            0 => CloseReason::Normal,
            1 => CloseReason::Duplicate,
            2 => CloseReason::ProtocolError,
            3 => CloseReason::UnsupportedVersion,
            4 => CloseReason::FlowControl,
            5 => CloseReason::Shutdown,
            other => CloseReason::Other(other),
        }
    }
}

/// The link header: the first frame on each bearer, in each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// Link protocol version of the sender.
    pub version: u8,
    /// Capability flags ([`Hello::FLAG_L2CAP`]); unknown bits are ignored.
    pub flags: u8,
    /// The sender's current ephemeral ID: the duplicate-link tie-breaker.
    pub nonce: u64,
    /// Bytes of stream data the sender can buffer (its receive window), at least [`MIN_WINDOW`].
    pub window: u32,
    /// The ATT MTU as the sender's platform reports it (≤ 23 means unknown).
    pub att_mtu: u16,
}

impl Hello {
    /// The sender can use an L2CAP CoC (a central can open one, a peripheral listens on one).
    pub const FLAG_L2CAP: u8 = 0x01;
    const BODY_LEN: usize = 1 + 1 + 8 + 4 + 2;
}

/// A control message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// The link header.
    Hello(Hello),
    /// The receiver consumed `increment` more bytes; the sender may send that many more.
    Credit {
        /// Additional bytes of credit.
        increment: u32,
    },
    /// Keep-alive; carries nothing.
    Ping,
    /// The sender is tearing the link down.
    Close {
        /// Why.
        reason: CloseReason,
    },
    /// A peripheral listens for an L2CAP CoC on this PSM.
    L2capOffer {
        /// The protocol/service multiplexer to connect to.
        psm: u16,
    },
    /// Sent on GATT: every later frame of the sender travels on the L2CAP bearer.
    Switch,
    /// The sender's view of the ATT MTU changed after its HELLO.
    Mtu {
        /// The new ATT MTU.
        att_mtu: u16,
    },
}

const T_HELLO: u8 = 0x01;
const T_CREDIT: u8 = 0x02;
const T_PING: u8 = 0x03;
const T_CLOSE: u8 = 0x04;
const T_L2CAP_OFFER: u8 = 0x05;
const T_SWITCH: u8 = 0x06;
const T_MTU: u8 = 0x07;

impl Control {
    /// Encodes the control body (type byte and fields, without frame header).
    pub fn encode(&self, out: &mut impl BufMut) {
        match *self {
            Control::Hello(h) => {
                out.put_u8(T_HELLO);
                out.put_u8(h.version);
                out.put_u8(h.flags);
                out.put_u64(h.nonce);
                out.put_u32(h.window);
                out.put_u16(h.att_mtu);
            }
            Control::Credit { increment } => {
                out.put_u8(T_CREDIT);
                out.put_u32(increment);
            }
            Control::Ping => out.put_u8(T_PING),
            Control::Close { reason } => {
                out.put_u8(T_CLOSE);
                out.put_u8(reason.code());
            }
            Control::L2capOffer { psm } => {
                out.put_u8(T_L2CAP_OFFER);
                out.put_u16(psm);
            }
            Control::Switch => out.put_u8(T_SWITCH),
            Control::Mtu { att_mtu } => {
                out.put_u8(T_MTU);
                out.put_u16(att_mtu);
            }
        }
    }

    /// The longest encoding of any control message (a HELLO).
    pub const MAX_ENCODED_LEN: usize = 1 + Hello::BODY_LEN;

    /// Length of [`Self::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            Control::Hello(_) => Hello::BODY_LEN,
            Control::Credit { .. } => 4,
            Control::Ping | Control::Switch => 0,
            Control::Close { .. } => 1,
            Control::L2capOffer { .. } | Control::Mtu { .. } => 2,
        }
    }

    /// Decodes a control body. Versions are not judged here: the session decides what it speaks.
    pub fn decode(body: &[u8]) -> Result<Self, FrameError> {
        let (&kind, mut rest) = body.split_first().ok_or(FrameError::EmptyControl)?;
        let need = match kind {
            T_HELLO => Hello::BODY_LEN,
            T_CREDIT => 4,
            T_PING | T_SWITCH => 0,
            T_CLOSE => 1,
            T_L2CAP_OFFER | T_MTU => 2,
            other => return Err(FrameError::UnknownControl(other)),
        };
        if rest.len() != need {
            return Err(FrameError::BadControlLength { kind, len: rest.len() });
        }
        Ok(match kind {
            T_HELLO => Control::Hello(Hello {
                version: rest.get_u8(),
                flags: rest.get_u8(),
                nonce: rest.get_u64(),
                window: rest.get_u32(),
                att_mtu: rest.get_u16(),
            }),
            T_CREDIT => Control::Credit { increment: rest.get_u32() },
            T_PING => Control::Ping,
            T_CLOSE => Control::Close { reason: CloseReason::from_code(rest.get_u8()) },
            T_L2CAP_OFFER => Control::L2capOffer { psm: rest.get_u16() },
            T_SWITCH => Control::Switch,
            _ => Control::Mtu { att_mtu: rest.get_u16() },
        })
    }
}

/// Appends one encoded frame to `out`.
pub fn put_frame(out: &mut Vec<u8>, kind: FrameKind, seq: u8, payload: &[u8]) {
    debug_assert!(payload.len() <= MAX_PAYLOAD);
    let header = FrameHeader { kind, seq, len: payload.len() as u16 };
    out.extend_from_slice(&header.encode());
    out.extend_from_slice(payload);
}

/// Appends one encoded control frame to `out`.
pub fn put_control(out: &mut Vec<u8>, seq: u8, control: &Control) {
    let mut body = Vec::with_capacity(control.encoded_len());
    control.encode(&mut body);
    put_frame(out, FrameKind::Control, seq, &body);
}

/// Decodes the single frame a GATT value carries. The value must hold exactly one whole frame.
pub fn decode_gatt_value(value: &[u8]) -> Result<(FrameHeader, &[u8]), FrameError> {
    if value.len() < HEADER_LEN {
        return Err(FrameError::ShortHeader(value.len()));
    }
    let header = FrameHeader::decode([value[0], value[1]]);
    let payload = &value[HEADER_LEN..];
    let declared = usize::from(header.len);
    match payload.len().cmp(&declared) {
        std::cmp::Ordering::Less => Err(FrameError::Truncated { declared: header.len, actual: payload.len() }),
        std::cmp::Ordering::Greater => Err(FrameError::TrailingBytes { extra: payload.len() - declared }),
        std::cmp::Ordering::Equal => Ok((header, payload)),
    }
}

/// Reassembles frames from the L2CAP bearer's byte stream, however the platform chunks it. It holds at most one
/// partial frame (≤ 1025 bytes), so its memory is bounded whatever the peer sends.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    partial: BytesMut,
}

impl StreamDecoder {
    /// Appends received bytes and returns the frames they complete.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<(FrameHeader, Bytes)> {
        let mut frames = Vec::new();
        while !bytes.is_empty() {
            let want = match self.pending_header() {
                Some(h) => HEADER_LEN + usize::from(h.len) - self.partial.len(),
                None => HEADER_LEN - self.partial.len(),
            };
            let take = want.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if let Some(h) = self.pending_header() {
                if self.partial.len() == HEADER_LEN + usize::from(h.len) {
                    let mut frame = self.partial.split().freeze();
                    frame.advance(HEADER_LEN);
                    frames.push((h, frame));
                }
            }
        }
        frames
    }

    /// Bytes of an incomplete frame held back.
    pub fn buffered(&self) -> usize {
        self.partial.len()
    }

    fn pending_header(&self) -> Option<FrameHeader> {
        (self.partial.len() >= HEADER_LEN).then(|| FrameHeader::decode([self.partial[0], self.partial[1]]))
    }
}

#[cfg(test)]
mod tests;

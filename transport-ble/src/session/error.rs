use std::time::Duration;

use pollen_radio_model::ble::Bearer;
use thiserror::Error;

use crate::frame::{CloseReason, FrameError};

/// Why a link session ended with an error. Each variant is final for that one link only.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkError {
    /// The peer sent bytes that are not a frame (truncated, trailing bytes, unknown control type, …).
    #[error("malformed frame: {0}")]
    Frame(#[from] FrameError),
    /// A frame is missing or out of order: a platform dropped or reordered a write.
    #[error("frame lost or reordered on {bearer:?}: expected sequence {expected}, got {got}")]
    SeqGap {
        /// The bearer the gap appeared on.
        bearer: Bearer,
        /// The sequence number that was due.
        expected: u8,
        /// The sequence number that arrived.
        got: u8,
    },
    /// The peer sent more data than its credit allowed.
    #[error("peer sent {len} bytes with only {allowance} bytes of credit")]
    FlowControl {
        /// Bytes in the offending frame.
        len: usize,
        /// Credit the peer had left.
        allowance: u64,
    },
    /// The peer broke a rule of the link protocol.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolViolation),
    /// The peer's HELLO has a version this side does not speak.
    #[error("peer speaks link version {0}, this side speaks {v}", v = crate::frame::LINK_VERSION)]
    UnsupportedVersion(u8),
    /// Nothing arrived within the liveness deadline.
    #[error("nothing received for {0:?}")]
    LivenessTimeout(Duration),
    /// The peer closed the link for a reason other than a normal close.
    #[error("peer closed the link: {0:?}")]
    RemoteClosed(CloseReason),
    /// Both sides connected at once and this link lost the deterministic tie-break.
    #[error("duplicate link closed by the simultaneous-connect tie-break")]
    Duplicate,
    /// The platform reported the radio link gone.
    #[error("the radio link went down")]
    Disconnected,
    /// The local side closed the link.
    #[error("the link was closed locally")]
    Closed,
    /// The platform refused to carry the link's data.
    #[error("platform error: {0}")]
    Platform(String),
}

impl LinkError {
    /// The CLOSE reason to tell the peer, when the peer caused the error and can still hear it.
    pub(crate) fn close_reason(&self) -> Option<CloseReason> {
        match self {
            LinkError::Frame(_) | LinkError::SeqGap { .. } | LinkError::Protocol(_) => Some(CloseReason::ProtocolError),
            LinkError::FlowControl { .. } => Some(CloseReason::FlowControl),
            LinkError::UnsupportedVersion(_) => Some(CloseReason::UnsupportedVersion),
            LinkError::Duplicate => Some(CloseReason::Duplicate),
            LinkError::LivenessTimeout(_)
            | LinkError::RemoteClosed(_)
            | LinkError::Disconnected
            | LinkError::Closed
            | LinkError::Platform(_) => None,
        }
    }
}

/// The protocol rules a peer can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ProtocolViolation {
    /// The first frame on a bearer was not a HELLO.
    #[error("first frame on a bearer is not a HELLO")]
    ExpectedHello,
    /// A second HELLO on the same bearer.
    #[error("second HELLO on one bearer")]
    SecondHello,
    /// A HELLO announcing a receive window below the protocol minimum.
    #[error("HELLO window {0} is below the minimum of 4096")]
    WindowTooSmall(u32),
    /// A GATT frame after the peer switched to L2CAP.
    #[error("GATT frame after SWITCH")]
    FrameAfterSwitch,
    /// SWITCH on the L2CAP bearer, or twice.
    #[error("SWITCH out of place")]
    UnexpectedSwitch,
    /// L2CAP bytes on a link that has no L2CAP channel.
    #[error("L2CAP bytes without an open channel")]
    L2capWithoutChannel,
    /// The L2CAP HELLO names a different peer than the GATT HELLO.
    #[error("L2CAP HELLO nonce differs from the GATT HELLO")]
    L2capHelloMismatch,
    /// More L2CAP bytes before SWITCH than the window allows.
    #[error("too many L2CAP bytes before SWITCH")]
    PreSwitchOverflow,
    /// An L2CAP offer sent by a central.
    #[error("L2CAP offer from a central")]
    UnexpectedOffer,
}

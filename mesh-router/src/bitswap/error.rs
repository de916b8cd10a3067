//! Errors of the Bitswap codec. Any of them means the peer (or our caller)
//! produced something outside the protocol; the stream should be closed.

/// Everything that can go wrong encoding, framing or decoding a Bitswap
/// message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BitswapError {
    /// A message body is larger than [`MAX_MESSAGE_SIZE`](super::MAX_MESSAGE_SIZE).
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge {
        /// Length announced or produced.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The varint length prefix is not a valid minimal unsigned varint.
    #[error("bad length prefix: {0}")]
    LengthPrefix(#[source] unsigned_varint::decode::Error),
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame ({buffered} bytes buffered)")]
    TruncatedFrame {
        /// Bytes left without a complete frame.
        buffered: usize,
    },
    /// The body is not valid protobuf for the Bitswap schema.
    #[error("malformed protobuf: {0}")]
    Malformed(#[source] prost::DecodeError),
    /// The body's protobuf wire format is broken (found while counting
    /// fields, before the schema-aware decode).
    #[error("malformed protobuf wire format: {0}")]
    MalformedWire(&'static str),
    /// A repeated field has more items than the per-message cap.
    #[error("{count} {field} in one message, limit {max}")]
    TooManyItems {
        /// Which field ("wantlist entries", "blocks", "block presences").
        field: &'static str,
        /// How many were found or supplied.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// A CID field does not hold exactly one valid binary CID.
    #[error("invalid CID in {field} #{index}")]
    InvalidCid {
        /// Which field.
        field: &'static str,
        /// Position in that field.
        index: usize,
    },
    /// A payload prefix is not `version, codec, hash code, digest length` as
    /// four minimal varints forming a valid CID prefix.
    #[error("invalid CID prefix in payload block #{index}")]
    InvalidPrefix {
        /// Position in the payload.
        index: usize,
    },
    /// A block CID uses a hash we cannot compute, so its CID cannot be
    /// rebuilt from the data (decode) or by the peer (encode).
    #[error("unsupported multihash 0x{code:x} with {size}-byte digest")]
    UnsupportedHash {
        /// Multihash code.
        code: u64,
        /// Digest length.
        size: u64,
    },
    /// A want entry has a `wantType` outside `{Block, Have}`.
    #[error("unknown want type {0}")]
    UnknownWantType(i32),
    /// A presence has a type outside `{Have, DontHave}`.
    #[error("unknown block presence type {0}")]
    UnknownPresenceType(i32),
}

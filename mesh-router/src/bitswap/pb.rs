//! Hand-written prost types for the Bitswap wire message.
//!
//! Field numbers follow boxo's `bitswap/message/pb/message.proto` (the
//! canonical Go implementation used by kubo), which Helia's
//! `packages/bitswap/src/pb/message.proto` mirrors with the same numbers:
//!
//! ```protobuf
//! syntax = "proto3";
//! message Message {
//!   message Wantlist {
//!     enum WantType { Block = 0; Have = 1; }
//!     message Entry {
//!       bytes block = 1;          // binary CID
//!       int32 priority = 2;
//!       bool cancel = 3;
//!       WantType wantType = 4;
//!       bool sendDontHave = 5;
//!     }
//!     repeated Entry entries = 1;
//!     bool full = 2;
//!   }
//!   message Block { bytes prefix = 1; bytes data = 2; }
//!   enum BlockPresenceType { Have = 0; DontHave = 1; }
//!   message BlockPresence { bytes cid = 1; BlockPresenceType type = 2; }
//!   Wantlist wantlist = 1;
//!   repeated bytes blocks = 2;                 // Bitswap 1.0.0
//!   repeated Block payload = 3;                // Bitswap 1.1.0+
//!   repeated BlockPresence blockPresences = 4; // Bitswap 1.2.0
//!   int32 pendingBytes = 5;
//! }
//! ```
//!
//! proto3 semantics: default values are not serialised, which is what prost
//! does for these plain (non-`optional`) fields.

/// `Message.Wantlist.WantType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum WantType {
    /// Send me the block.
    Block = 0,
    /// Tell me whether you have the block.
    Have = 1,
}

/// `Message.BlockPresenceType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum BlockPresenceType {
    /// The sender has the block.
    Have = 0,
    /// The sender does not have the block.
    DontHave = 1,
}

/// `Message.Wantlist.Entry`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Entry {
    /// Binary CID of the wanted block.
    #[prost(bytes = "vec", tag = "1")]
    pub block: Vec<u8>,
    /// Priority; higher is more urgent.
    #[prost(int32, tag = "2")]
    pub priority: i32,
    /// Revokes an earlier want for this CID.
    #[prost(bool, tag = "3")]
    pub cancel: bool,
    /// [`WantType`] as its wire number.
    #[prost(enumeration = "WantType", tag = "4")]
    pub want_type: i32,
    /// Ask for an explicit DontHave if the peer lacks the block.
    #[prost(bool, tag = "5")]
    pub send_dont_have: bool,
}

/// `Message.Wantlist`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Wantlist {
    /// Entries.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    /// This is the sender's whole wantlist, replacing the previous one.
    #[prost(bool, tag = "2")]
    pub full: bool,
}

/// `Message.Block` (payload entry).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Block {
    /// CID prefix: varints of CID version, codec, multihash code and digest
    /// length.
    #[prost(bytes = "vec", tag = "1")]
    pub prefix: Vec<u8>,
    /// Block bytes.
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// `Message.BlockPresence`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct BlockPresence {
    /// Binary CID.
    #[prost(bytes = "vec", tag = "1")]
    pub cid: Vec<u8>,
    /// [`BlockPresenceType`] as its wire number.
    #[prost(enumeration = "BlockPresenceType", tag = "2")]
    pub r#type: i32,
}

/// `Message`.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Message {
    /// Wants and cancels.
    #[prost(message, optional, tag = "1")]
    pub wantlist: Option<Wantlist>,
    /// Bitswap 1.0.0 blocks: bare bytes, implicitly CIDv0 (dag-pb, sha2-256).
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub blocks: Vec<Vec<u8>>,
    /// Blocks with their CID prefix.
    #[prost(message, repeated, tag = "3")]
    pub payload: Vec<Block>,
    /// Have / DontHave answers.
    #[prost(message, repeated, tag = "4")]
    pub block_presences: Vec<BlockPresence>,
    /// Bytes the sender still has queued for the receiver.
    #[prost(int32, tag = "5")]
    pub pending_bytes: i32,
}

//! Hand-written protobuf types for dag-pb (`PBNode`/`PBLink`) and the UnixFS
//! `Data` message.
//!
//! Schemas, from the dag-pb and UnixFS specs:
//!
//! ```protobuf
//! message PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }
//! message PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }
//!
//! message Data {
//!   enum DataType { Raw = 0; Directory = 1; File = 2; Metadata = 3; Symlink = 4; HAMTShard = 5; }
//!   required DataType Type = 1;
//!   optional bytes Data = 2;
//!   optional uint64 filesize = 3;
//!   repeated uint64 blocksizes = 4;   // not packed: proto2 default, and what js/go emit
//!   optional uint64 hashType = 5;
//!   optional uint64 fanout = 6;
//!   optional uint32 mode = 7;
//!   optional UnixTime mtime = 8;
//! }
//! message UnixTime { required int64 Seconds = 1; optional fixed32 FractionalNanoseconds = 2; }
//! ```
//!
//! `PBNode` implements [`prost::Message`] by hand instead of deriving it:
//! prost-derive always serialises fields in tag order (Data = 1 first), but
//! canonical dag-pb puts every Link (tag 2) before Data, and CIDs are hashes of
//! these exact bytes.

use prost::bytes::{Buf, BufMut};
use prost::encoding::{self, DecodeContext, WireType};
use prost::DecodeError;

/// A dag-pb link (`PBLink`).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct PbLink {
    /// Binary CID of the target.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub hash: Option<Vec<u8>>,
    /// Link name; UnixFS file nodes use `Some("")`, which is encoded (two bytes)
    /// and so changes the CID compared with `None`.
    #[prost(string, optional, tag = "2")]
    pub name: Option<String>,
    /// Cumulative serialised size of the target DAG.
    #[prost(uint64, optional, tag = "3")]
    pub tsize: Option<u64>,
}

/// A dag-pb node (`PBNode`). Encodes canonically: Links, then Data.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    /// Links, in the order they are serialised.
    pub links: Vec<PbLink>,
    /// Opaque payload; UnixFS puts an encoded [`UnixfsData`] here.
    pub data: Option<Vec<u8>>,
}

impl std::fmt::Debug for PbNode {
    // Data can be a whole chunk; print its length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PbNode")
            .field("links", &self.links)
            .field("data_len", &self.data.as_ref().map(Vec::len))
            .finish()
    }
}

impl prost::Message for PbNode {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        for link in &self.links {
            encoding::message::encode(2, link, buf);
        }
        if let Some(data) = &self.data {
            encoding::bytes::encode(1, data, buf);
        }
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            1 => {
                let data = self.data.get_or_insert_with(Vec::new);
                encoding::bytes::merge(wire_type, data, buf, ctx)
            }
            2 => encoding::message::merge_repeated(wire_type, &mut self.links, buf, ctx),
            _ => encoding::skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        encoding::message::encoded_len_repeated(2, &self.links)
            + self.data.as_ref().map_or(0, |d| encoding::bytes::encoded_len(1, d))
    }

    fn clear(&mut self) {
        self.links.clear();
        self.data = None;
    }
}

/// UnixFS `Data.DataType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum DataType {
    /// A leaf holding raw file bytes inside dag-pb (pre-raw-leaves DAGs).
    Raw = 0,
    /// A plain directory.
    Directory = 1,
    /// A file, or a chunk of one.
    File = 2,
    /// Metadata wrapper (deprecated in the spec).
    Metadata = 3,
    /// A symbolic link.
    Symlink = 4,
    /// A HAMT-sharded directory.
    HamtShard = 5,
}

/// UnixFS `UnixTime`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct UnixTime {
    /// Seconds since the Unix epoch.
    #[prost(int64, required, tag = "1")]
    pub seconds: i64,
    /// Fraction of a second, in nanoseconds.
    #[prost(fixed32, optional, tag = "2")]
    pub fractional_nanoseconds: Option<u32>,
}

/// The UnixFS `Data` message carried in a dag-pb node's Data field.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct UnixfsData {
    /// Node type, see [`DataType`]; kept as `i32` so unknown values decode and
    /// can be reported as typed errors instead of failing inside prost.
    #[prost(enumeration = "DataType", required, tag = "1")]
    pub r#type: i32,
    /// Inline file bytes (leaf nodes) or symlink target.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub data: Option<Vec<u8>>,
    /// Total file size: `len(data) + sum(blocksizes)`.
    #[prost(uint64, optional, tag = "3")]
    pub filesize: Option<u64>,
    /// File bytes under each link, in link order.
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    pub blocksizes: Vec<u64>,
    /// HAMT hash function (sharded directories only).
    #[prost(uint64, optional, tag = "5")]
    pub hash_type: Option<u64>,
    /// HAMT fanout (sharded directories only).
    #[prost(uint64, optional, tag = "6")]
    pub fanout: Option<u64>,
    /// POSIX permission bits; absent means 0644 for files.
    #[prost(uint32, optional, tag = "7")]
    pub mode: Option<u32>,
    /// Modification time.
    #[prost(message, optional, tag = "8")]
    pub mtime: Option<UnixTime>,
}

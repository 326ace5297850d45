//! Node keys: a dedicated key struct per node → canonical JSON → blake3 → [`NodeKey`].
//!
//! A key covers everything that determines a node's output and nothing else: change a field that
//! matters and exactly the nodes depending on it get new keys; change a label and only the clips
//! that print it do. Canonical form: a `BTreeMap` of string fields (sorted keys, numbers written
//! as integers or fixed strings by the caller), the sorted keys of the node's inputs, the node
//! kind and [`KEY_FORMAT_VERSION`]. Bump the version whenever the meaning of an output changes.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeStruct};

/// Version of the key format and of the outputs' meaning. Changing it re-keys every node.
pub const KEY_FORMAT_VERSION: u32 = 1;

/// A node's content key: 32 bytes of blake3, shown as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeKey(pub [u8; 32]);

impl std::hash::Hash for NodeKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // A blake3 output is already uniformly random: eight of its bytes make a good hash.
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// A hasher for maps keyed by [`NodeKey`]: passes the key's own random bits through instead of
/// running SipHash over them again.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 ^= value;
    }
}

/// `HashMap` state for [`NodeKey`] keys.
pub type KeyHashState = std::hash::BuildHasherDefault<KeyHasher>;

impl NodeKey {
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// The first 12 hex digits, for text output.
    pub fn short(&self) -> String {
        self.to_hex()[..12].to_owned()
    }
}

impl fmt::Display for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeKey({})", self.short())
    }
}

impl Serialize for NodeKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

/// The hashed description of one node. Its canonical JSON is
/// `{"format_version":1,"kind":K,"fields":{sorted name: value},"inputs":[sorted hex keys]}`.
///
/// Values are borrowed where the caller has them (`Cow`), and input keys are kept as bytes until
/// serialization: planning 100,000 rows builds hundreds of thousands of these.
#[derive(Debug, Clone)]
pub struct KeyFields<'a> {
    kind: &'static str,
    fields: Vec<(&'static str, Cow<'a, str>)>,
    inputs: Vec<NodeKey>,
}

impl<'a> KeyFields<'a> {
    pub fn new(kind: &'static str) -> Self {
        Self {
            kind,
            fields: Vec::with_capacity(10),
            inputs: Vec::new(),
        }
    }

    /// Sets a field; setting the same name twice keeps the last value, as a map would. Fields
    /// are kept sorted by name, the order they are serialised in.
    pub fn field(mut self, name: &'static str, value: impl Into<Cow<'a, str>>) -> Self {
        match self
            .fields
            .binary_search_by(|(existing, _)| (*existing).cmp(name))
        {
            Ok(at) => self.fields[at].1 = value.into(),
            Err(at) => self.fields.insert(at, (name, value.into())),
        }
        self
    }

    /// Adds a map (such as `dpo_*` options) as one field in canonical JSON form.
    pub fn map_field(self, name: &'static str, map: &BTreeMap<String, String>) -> Self {
        let canonical = serde_json::to_string(map).unwrap_or_default();
        self.field(name, canonical)
    }

    pub fn inputs(mut self, inputs: impl IntoIterator<Item = NodeKey>) -> Self {
        let mut keys: Vec<NodeKey> = inputs.into_iter().collect();
        // Byte order is the order of the lowercase hex strings that get hashed.
        keys.sort();
        keys.dedup();
        self.inputs = keys;
        self
    }

    pub fn key(&self) -> NodeKey {
        thread_local! {
            // One buffer per thread, reused: serde_json writes many tiny pieces, and feeding
            // them to blake3 one by one (or allocating a buffer per node) cost more than the
            // hash itself when planning 100,000 rows.
            static BUFFER: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            // Writing to a Vec cannot fail, and strings always serialize.
            let _ = serde_json::to_writer(&mut *buffer, self);
            NodeKey(blake3::derive_key("onc-pipe node key", buffer))
        })
    }
}

impl Serialize for KeyFields<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct SortedFields<'f, 'a>(&'f [(&'static str, Cow<'a, str>)]);
        impl Serialize for SortedFields<'_, '_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                // Already sorted by name (see `field`).
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (name, value) in self.0 {
                    map.serialize_entry(name, value.as_ref())?;
                }
                map.end()
            }
        }
        let mut state = serializer.serialize_struct("KeyFields", 4)?;
        state.serialize_field("format_version", &KEY_FORMAT_VERSION)?;
        state.serialize_field("kind", self.kind)?;
        state.serialize_field("fields", &SortedFields(&self.fields))?;
        state.serialize_field("inputs", &self.inputs)?;
        state.end()
    }
}

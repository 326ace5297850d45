//! The split: a DAG → N parts, keeping together what shares source files.
//!
//! Input: the DAG, each device's sample rate (for the estimated bytes of a file) and N. Output:
//! a [`Split`] whose parts hold every ONC node (product request, archive listing) and clip node
//! exactly once. No errors.
//!
//! Groups: ONC nodes that fetch one file node (two requests whose windows meet at a file), and
//! the ONC nodes whose files one clip reads (a clip spanning two requests ties them), are one
//! connected component; a clip goes with the component of its sources. Were they split, two
//! shards would fetch the same file, or a clip would wait on another shard's download.
//!
//! Assignment: components by estimated bytes (largest first; then more files, more clips, and
//! the smallest node key), each to the part with the fewest bytes so far (then fewest nodes, then
//! the lowest index) — the longest-processing-time rule, within 4/3 of the best balance. The
//! weight comes from the DAG alone, never from the cache: shards starting at different moments
//! on different machines (one shard's downloads landing in a shared cache before another
//! starts) must agree on the split. Iteration follows the DAG's insertion order, itself fixed
//! by the manifest; no hash map is iterated.

use std::collections::HashMap;

use serde::Serialize;

use crate::dag::{Dag, Node, NodeDetail, NodeKey, NodeKind};
use crate::estimate::{SampleRates, file_cost};
use crate::shard::Phase;

/// One part of a split, its node keys in DAG order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Part {
    /// 1-based, as in `--shard k/N`.
    pub index: u32,
    pub product_requests: Vec<NodeKey>,
    pub archive_lists: Vec<NodeKey>,
    pub clips: Vec<NodeKey>,
    /// File nodes its ONC nodes fetch.
    pub files: u64,
    /// Their estimated bytes (the split's weight).
    pub estimated_bytes: u64,
    /// Connected components (groups sharing source files) it holds.
    pub components: usize,
}

impl Part {
    /// The node keys a run of this part executes in `phase`.
    pub fn selection(&self, phase: Phase) -> std::collections::BTreeSet<NodeKey> {
        let onc = self.product_requests.iter().chain(&self.archive_lists);
        match phase {
            Phase::All => onc.chain(&self.clips).copied().collect(),
            Phase::Fetch => onc.copied().collect(),
            Phase::Offline => self.clips.iter().copied().collect(),
        }
    }
}

/// Every part of the split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Split {
    pub count: u32,
    pub parts: Vec<Part>,
}

impl Split {
    /// The part of shard `index` (1-based).
    pub fn part(&self, index: u32) -> Option<&Part> {
        self.parts.get(usize::try_from(index.checked_sub(1)?).ok()?)
    }
}

/// A group of nodes that share source files.
#[derive(Debug, Default)]
struct Component {
    onc: Vec<usize>,
    clips: Vec<usize>,
    files: u64,
    bytes: u64,
    /// The smallest key among its nodes: a name for it that does not depend on DAG order.
    first: Option<NodeKey>,
}

/// Splits `dag` into `count` parts (at least one).
pub fn split(dag: &Dag, rates: &SampleRates, count: u32) -> Split {
    let count = count.max(1);
    let nodes: Vec<&Node> = dag.nodes().collect();
    // Position of each node in DAG order: lookups only, never iterated.
    let position: HashMap<NodeKey, usize> =
        nodes.iter().enumerate().map(|(i, n)| (n.key, i)).collect();
    let is_onc =
        |node: &Node| matches!(node.kind, NodeKind::ProductRequest | NodeKind::ArchiveList);
    let mut sets = DisjointSets::new(nodes.len());
    // The ONC nodes that fetch each file, in the file's input order.
    let onc_inputs = |node: &Node| -> Vec<usize> {
        node.inputs
            .iter()
            .filter_map(|key| position.get(key).copied())
            .filter(|&i| nodes.get(i).is_some_and(|n| is_onc(n)))
            .collect()
    };
    let mut file_sources: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, node) in nodes.iter().enumerate() {
        match node.kind {
            NodeKind::File => {
                let sources = onc_inputs(node);
                for pair in sources.windows(2) {
                    sets.union(pair[0], pair[1]);
                }
                file_sources.insert(i, sources);
            }
            NodeKind::Clip => {
                let sources: Vec<usize> = node
                    .inputs
                    .iter()
                    .filter_map(|key| position.get(key))
                    .filter_map(|file| file_sources.get(file))
                    .flatten()
                    .copied()
                    .collect();
                // A clip joins its sources' component (or stands alone without any).
                sets.union(i, sources.first().copied().unwrap_or(i));
                for pair in sources.windows(2) {
                    sets.union(pair[0], pair[1]);
                }
            }
            _ => {}
        }
    }
    // Components in order of their first node in the DAG.
    let mut index_of_root: HashMap<usize, usize> = HashMap::new();
    let mut components: Vec<Component> = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let member = match node.kind {
            NodeKind::ProductRequest | NodeKind::ArchiveList | NodeKind::Clip => true,
            NodeKind::File => false,
            NodeKind::Window => continue,
        };
        let root = match node.kind {
            // A file is weighed with the component of its first source.
            NodeKind::File => match file_sources.get(&i).and_then(|s| s.first()) {
                Some(&source) => sets.find(source),
                None => continue,
            },
            _ => sets.find(i),
        };
        let at = *index_of_root.entry(root).or_insert_with(|| {
            components.push(Component::default());
            components.len() - 1
        });
        let Some(component) = components.get_mut(at) else {
            continue;
        };
        if member {
            component.first = Some(component.first.map_or(node.key, |k| k.min(node.key)));
            if node.kind == NodeKind::Clip {
                component.clips.push(i);
            } else {
                component.onc.push(i);
            }
        } else {
            component.files += 1;
            component.bytes = component.bytes.saturating_add(file_bytes(dag, node, rates));
        }
    }
    components.sort_by(|a, b| {
        (b.bytes, b.files, b.clips.len(), a.first).cmp(&(a.bytes, a.files, a.clips.len(), b.first))
    });
    let mut parts: Vec<Part> = (1..=count)
        .map(|index| Part {
            index,
            ..Part::default()
        })
        .collect();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); parts.len()];
    for component in components {
        let Some(lightest) = (0..parts.len()).min_by_key(|&p| {
            let bytes = parts.get(p).map_or(0, |part| part.estimated_bytes);
            let nodes = members.get(p).map_or(0, Vec::len);
            (bytes, nodes, p)
        }) else {
            continue;
        };
        if let (Some(part), Some(member)) = (parts.get_mut(lightest), members.get_mut(lightest)) {
            part.files += component.files;
            part.estimated_bytes = part.estimated_bytes.saturating_add(component.bytes);
            part.components += 1;
            member.extend(component.onc.iter().chain(&component.clips));
        }
    }
    // Each part's keys in DAG order, whatever order its components came in.
    for (part, mut member) in parts.iter_mut().zip(members) {
        member.sort_unstable();
        for i in member {
            if let Some(node) = nodes.get(i) {
                match node.kind {
                    NodeKind::ProductRequest => part.product_requests.push(node.key),
                    NodeKind::ArchiveList => part.archive_lists.push(node.key),
                    _ => part.clips.push(node.key),
                }
            }
        }
    }
    Split { count, parts }
}

/// The estimated bytes of a file node, from the source of the first ONC node that fetches it.
fn file_bytes(dag: &Dag, file: &Node, rates: &SampleRates) -> u64 {
    file.inputs
        .iter()
        .filter_map(|key| dag.node(key))
        .find_map(|node| match &node.detail {
            NodeDetail::Request { query, .. } => {
                Some(file_cost(&query.source, rates.of(&query.device)).bytes)
            }
            _ => None,
        })
        .unwrap_or(0)
}

/// Union-find over node positions, with path halving; the smaller position becomes the root, so
/// roots do not depend on the order of unions.
struct DisjointSets {
    parent: Vec<usize>,
}

impl DisjointSets {
    fn new(len: usize) -> Self {
        DisjointSets {
            parent: (0..len).collect(),
        }
    }

    fn find(&mut self, mut at: usize) -> usize {
        while let Some(&parent) = self.parent.get(at) {
            if parent == at {
                break;
            }
            let grandparent = self.parent.get(parent).copied().unwrap_or(parent);
            if let Some(slot) = self.parent.get_mut(at) {
                *slot = grandparent;
            }
            at = grandparent;
        }
        at
    }

    fn union(&mut self, a: usize, b: usize) {
        let (a, b) = (self.find(a), self.find(b));
        let (root, child) = if a <= b { (a, b) } else { (b, a) };
        if let Some(slot) = self.parent.get_mut(child) {
            *slot = root;
        }
    }
}

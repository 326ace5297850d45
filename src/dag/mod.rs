//! The content-hashed DAG: a [`Plan`] → [`Dag`] of window, ONC request, archive listing, file and
//! clip nodes, each with a blake3 [`NodeKey`].
//!
//! Input: a validated plan. Output: a petgraph graph whose edges always run from an earlier kind
//! to a later one (window → request | listing → file → clip), so it is acyclic by construction,
//! plus the plan's window table. No errors: everything that could be wrong was checked by `plan`.
//!
//! Keys and what they cover (see `key.rs`):
//! * window: device, start, end — not its label or stage, which change no data;
//! * product request / archive listing: device, product, extension, every option, dateFrom,
//!   dateTo: exactly the query ONC receives, so two windows that need the same query share it;
//! * file: device, source (product + extension + options, or archive type) and the five-minute
//!   slot — not the request that fetches it, so a file is fetched once however requests change;
//! * clip: device, clip window, media, formats, gap policy, label, name and its input file keys.

pub mod key;
pub mod state;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use serde::Serialize;

use crate::plan::time::{add_ms, rfc3339};
use crate::plan::windows::{coalesce, slots};
use crate::plan::{ClipFormat, GapPolicy, Media, Plan, Source, Window};
pub use key::{KeyFields, NodeKey};
use onc_format::grid::FILE_MS;
use onc_format::query::OncQuery;
use onc_format::stamp::{onc_date, push_compact_span};

/// What a node stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    Window,
    ProductRequest,
    ArchiveList,
    File,
    Clip,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Window => "window",
            NodeKind::ProductRequest => "product_request",
            NodeKind::ArchiveList => "archive_list",
            NodeKind::File => "file",
            NodeKind::Clip => "clip",
        }
    }
}

/// Shared text: stage, device and tag names, labels and window times appear in many nodes (a
/// window's clips repeat its times); sharing them instead of copying per node halved the
/// allocations of planning 100,000 rows.
pub type Text = Arc<str>;

/// Kind-specific facts about a node, shown by `plan`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NodeDetail {
    Window {
        stage: Text,
        device: Text,
        /// ONC's location code of the device's deployment (shown, not keyed).
        #[serde(skip_serializing_if = "Option::is_none")]
        location: Option<Text>,
        #[serde(skip_serializing_if = "Option::is_none")]
        label: Option<Text>,
        start: Text,
        end: Text,
    },
    /// An ONC request; `plan` shows `query` as the exact parameters that would be sent (token
    /// excluded).
    Request {
        device: String,
        fetch: Vec<String>,
        #[serde(serialize_with = "query_parameters")]
        query: OncQuery,
        estimated_files: i64,
        windows: usize,
    },
    File {
        device: Text,
        source: Text,
        /// The nominal five-minute slot; ONC's real file starts somewhere near it.
        slot_start: String,
        slot_end: String,
    },
    Clip(ClipSpec),
}

/// What one clip node cuts, typed; `plan --format json` shows it with times as RFC 3339 text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClipSpec {
    pub stage: Text,
    pub fetch: Text,
    pub device: Text,
    /// ONC's location code of the device's deployment: recorded in sidecars, not keyed (the
    /// device and times say what the data is).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Text>,
    pub tag: Text,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<Text>,
    pub name: String,
    pub media: Media,
    pub formats: Arc<[ClipFormat]>,
    pub gaps: GapPolicy,
    /// Clips with data for less than this share of their padded window are skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_coverage: Option<f64>,
    /// The window as asked for (before padding); shown and written to sidecars, not keyed
    /// (the padded window is).
    #[serde(serialize_with = "instant_text")]
    pub window_start: DateTime<Utc>,
    #[serde(serialize_with = "instant_text")]
    pub window_end: DateTime<Utc>,
    /// The padded window `[clip_start, clip_end)` that is cut.
    #[serde(serialize_with = "instant_text")]
    pub clip_start: DateTime<Utc>,
    #[serde(serialize_with = "instant_text")]
    pub clip_end: DateTime<Utc>,
}

/// Serialises an instant as RFC 3339 UTC with milliseconds.
fn instant_text<S: serde::Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339(*time))
}

/// One node of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    pub key: NodeKey,
    pub kind: NodeKind,
    pub inputs: Vec<NodeKey>,
    #[serde(flatten)]
    pub detail: NodeDetail,
}

/// One row of the plan's window table (`plan --format json` → `windows`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowRow {
    pub stage: String,
    pub device: String,
    pub label: Option<String>,
    pub start: String,
    pub end: String,
    pub clip_start: String,
    pub clip_end: String,
}

/// The whole graph.
#[derive(Debug, Clone, Default)]
pub struct Dag {
    graph: StableDiGraph<Node, ()>,
    by_key: HashMap<NodeKey, NodeIndex, key::KeyHashState>,
}

impl Dag {
    /// Nodes in insertion order, which is a topological order (inputs before their users).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.graph
            .node_indices()
            .filter_map(|index| self.graph.node_weight(index))
    }

    pub fn node(&self, key: &NodeKey) -> Option<&Node> {
        self.by_key
            .get(key)
            .and_then(|index| self.graph.node_weight(*index))
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn count(&self, kind: NodeKind) -> usize {
        self.nodes().filter(|node| node.kind == kind).count()
    }

    /// Whether the graph has no cycle (always true by construction; checked in tests).
    pub fn is_acyclic(&self) -> bool {
        !petgraph::algo::is_cyclic_directed(&self.graph)
    }

    /// Adds a node, or returns the existing one with the same key (merging its inputs).
    fn add(&mut self, node: Node) -> NodeKey {
        let key = node.key;
        if let Some(&index) = self.by_key.get(&key) {
            let new_inputs: Vec<NodeKey> = match self.graph.node_weight_mut(index) {
                Some(existing) => {
                    let fresh: Vec<NodeKey> = node
                        .inputs
                        .iter()
                        .filter(|input| !existing.inputs.contains(input))
                        .copied()
                        .collect();
                    existing.inputs.extend(fresh.iter().copied());
                    fresh
                }
                None => Vec::new(),
            };
            self.connect(index, &new_inputs);
            return key;
        }
        let index = self.graph.add_node(node);
        self.by_key.insert(key, index);
        // Edges from each input, read back from the stored node (no copy of the input list).
        let input_count = self.graph.node_weight(index).map_or(0, |n| n.inputs.len());
        for position in 0..input_count {
            let input = self
                .graph
                .node_weight(index)
                .and_then(|n| n.inputs.get(position).copied());
            if let Some(from) = input.and_then(|input| self.by_key.get(&input).copied()) {
                self.graph.add_edge(from, index, ());
            }
        }
        key
    }

    fn connect(&mut self, index: NodeIndex, inputs: &[NodeKey]) {
        for input in inputs {
            if let Some(&from) = self.by_key.get(input) {
                self.graph.add_edge(from, index, ());
            }
        }
    }

    /// Graphviz DOT text: one box per node, labelled with kind, short key and what it is.
    pub fn to_dot(&self) -> String {
        let mut out = String::from(
            "digraph onc_pipe {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
        );
        for node in self.nodes() {
            let label = format!(
                "{} {}\\n{}",
                node.kind.as_str(),
                node.key.short(),
                describe(node)
            );
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{}\"];",
                node.key.short(),
                label.replace('"', "'")
            );
        }
        for node in self.nodes() {
            for input in &node.inputs {
                let _ = writeln!(out, "  \"{}\" -> \"{}\";", input.short(), node.key.short());
            }
        }
        out.push_str("}\n");
        out
    }
}

/// Serialises a query as the parameters ONC receives.
fn query_parameters<S: serde::Serializer>(
    query: &OncQuery,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(query.params())
}

/// A one-line description of a node for text and DOT output.
pub fn describe(node: &Node) -> String {
    match &node.detail {
        NodeDetail::Window {
            device, start, end, ..
        } => format!("{device} {start} .. {end}"),
        NodeDetail::Request {
            query,
            estimated_files,
            ..
        } => format!(
            "{} {} {}.{} {} .. {} (~{estimated_files} file{})",
            query.device,
            if query.is_archive() {
                "archive"
            } else {
                "product"
            },
            query.source.product_code().unwrap_or_default(),
            query.source.extension(),
            onc_date(query.from),
            onc_date(query.to),
            if *estimated_files == 1 { "" } else { "s" },
        ),
        NodeDetail::File {
            device,
            source,
            slot_start,
            ..
        } => format!("{device} {source} @ {slot_start}"),
        NodeDetail::Clip(clip) => {
            let formats: Vec<&str> = clip.formats.iter().map(|f| f.as_str()).collect();
            format!(
                "{} {} [{}] {} .. {}",
                clip.media.as_str(),
                clip.name,
                formats.join(","),
                rfc3339(clip.clip_start),
                rfc3339(clip.clip_end)
            )
        }
    }
}

fn source_description(source: &Source) -> String {
    match source {
        Source::Product {
            code,
            extension,
            options,
        } => {
            let options: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if options.is_empty() {
                format!("{code}.{extension}")
            } else {
                format!("{code}.{extension}?{}", options.join("&"))
            }
        }
        Source::Archive { extension } => format!("archive.{extension}"),
    }
}

fn source_key_fields<'a>(fields: KeyFields<'a>, source: &'a Source) -> KeyFields<'a> {
    match source {
        Source::Product {
            code,
            extension,
            options,
        } => fields
            .field("source", "product")
            .field("product", code.as_str())
            .field("extension", extension.as_str())
            .map_field("options", options),
        Source::Archive { extension } => fields
            .field("source", "archive")
            .field("extension", extension.as_str()),
    }
}

/// Nominal five-minute files a query returns: the grid slots it touches. ONC's real files start
/// off the grid, so the real count can be one more.
fn slot_count(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    let (first, last) = slots(from.timestamp_millis(), to.timestamp_millis());
    last - first + 1
}

fn ms_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// The default clip basename: device and padded window, safe as a file name.
pub fn default_clip_name(device: &str, start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    let mut name = String::with_capacity(device.len() + 42);
    push_compact_span(&mut name, device, start, end);
    name
}

/// Window node key: what data a window asks for (device and times), nothing descriptive.
pub fn window_key(window: &Window) -> NodeKey {
    window_key_of(
        &window.device,
        &onc_date(window.start),
        &onc_date(window.end),
    )
}

/// [`window_key`] from dates already formatted (`onc_date`, the same text as `rfc3339`).
fn window_key_of(device: &str, start: &str, end: &str) -> NodeKey {
    KeyFields::new("window")
        .field("device", device)
        .field("start", start)
        .field("end", end)
        .key()
}

/// The plan's window table (`plan --format json` → `windows`): each window with the clip
/// window of the first clip stage that clips it (a row's own padding first), or itself.
pub fn window_rows(plan: &Plan) -> Vec<WindowRow> {
    plan.windows
        .iter()
        .map(|window| {
            let clip = plan
                .clips
                .iter()
                .filter(|clip| clip.plan == window.stage)
                .find_map(|clip| clip.clip_window(window))
                .unwrap_or((window.start, window.end));
            WindowRow {
                stage: window.stage.clone(),
                device: window.device.clone(),
                label: window.label.clone(),
                start: rfc3339(window.start),
                end: rfc3339(window.end),
                clip_start: rfc3339(clip.0),
                clip_end: rfc3339(clip.1),
            }
        })
        .collect()
}

/// A window's formatted times and label, shared by its node and its clips' nodes.
struct WindowText {
    start: Text,
    end: Text,
    label: Option<Text>,
}

/// One shared copy of each distinct name (devices, stages, tags: a handful per manifest).
#[derive(Default)]
struct Interner<'p> {
    names: HashMap<&'p str, Text>,
}

impl<'p> Interner<'p> {
    fn get(&mut self, name: &'p str) -> Text {
        Arc::clone(self.names.entry(name).or_insert_with(|| Text::from(name)))
    }
}

/// Builds the DAG of a plan.
pub fn build(plan: &Plan) -> Dag {
    // Reserve up front: nodes are a few hundred bytes each, and growing a graph of hundreds of
    // thousands of them by doubling copied it over and over (BENCHMARKS.md).
    let clip_pairs: usize = plan.clips.iter().map(|clip| clip.fetches.len()).sum();
    let capacity = plan.windows.len() * (2 + clip_pairs + plan.fetches.len());
    let mut dag = Dag {
        graph: StableDiGraph::with_capacity(capacity, capacity),
        by_key: HashMap::with_capacity_and_hasher(capacity, key::KeyHashState::default()),
    };

    // 1. Windows. Each date is formatted once: the key, the node and its clips share the text
    //    (formatting was a tenth of the time of planning 100,000 rows).
    let mut names = Interner::default();
    let mut window_text: Vec<WindowText> = Vec::with_capacity(plan.windows.len());
    let window_keys: Vec<NodeKey> = plan
        .windows
        .iter()
        .map(|window| {
            let text = WindowText {
                start: rfc3339(window.start).into(),
                end: rfc3339(window.end).into(),
                label: window.label.as_deref().map(Text::from),
            };
            let key = window_key_of(&window.device, &text.start, &text.end);
            let detail = NodeDetail::Window {
                stage: names.get(&window.stage),
                device: names.get(&window.device),
                location: window.location.clone(),
                label: text.label.clone(),
                start: Arc::clone(&text.start),
                end: Arc::clone(&text.end),
            };
            window_text.push(text);
            dag.add(Node {
                key,
                kind: NodeKind::Window,
                inputs: Vec::new(),
                detail,
            })
        })
        .collect();
    // 2. Group what each fetch stage needs by (device, source): the same source file is fetched
    //    once however many stages or windows need it. A window's fetch span includes the padded
    //    clip windows of the clip stages that use it, so padding across a file boundary is fetched.
    struct Group {
        device: String,
        source: Source,
        fetches: Vec<String>,
        per_request: u32,
        spans: Vec<(i64, i64)>,
        windows: Vec<usize>,
        /// Five-minute slot → file node, filled in step 3.
        files: BTreeMap<i64, NodeKey>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of: HashMap<(String, Source), usize> = HashMap::new();
    // What `Fetch::source_for` reads: fetch stage, device, and the row's settings, if any.
    type SourceInputs<'p> = (
        usize,
        &'p str,
        Option<(
            bool,
            bool,
            Option<&'p str>,
            Option<&'p str>,
            &'p BTreeMap<String, String>,
        )>,
    );
    let mut group_memo: HashMap<SourceInputs, Option<usize>> = HashMap::new();
    // fetch index × windows + window index → group, so step 4 need not rebuild sources.
    let mut window_group: Vec<Option<usize>> = vec![None; plan.fetches.len() * plan.windows.len()];
    for (fetch_index, fetch) in plan.fetches.iter().enumerate() {
        for (index, window) in plan.windows.iter().enumerate() {
            if !fetch.plans.contains(&window.stage) {
                continue;
            }
            // Building a window's `Source` (options map and all) just to find its group cost
            // more than the rest of this loop; windows with the same inputs to `source_for`
            // (rows with equal settings) find it in the memo instead.
            let inputs: SourceInputs = (
                fetch_index,
                window.device.as_str(),
                window.row.as_ref().map(|row| {
                    (
                        row.download_audio,
                        row.download_spectrogram,
                        row.spectrogram_format.as_deref(),
                        row.audio_extension.as_deref(),
                        &row.options,
                    )
                }),
            );
            let group_index = match group_memo.get(&inputs) {
                Some(&known) => known,
                None => {
                    let group_index = fetch.source_for(window).map(|source| {
                        *group_of
                            .entry((window.device.clone(), source))
                            .or_insert_with_key(|(device, source)| {
                                groups.push(Group {
                                    device: device.clone(),
                                    source: source.clone(),
                                    fetches: Vec::new(),
                                    per_request: fetch.per_request,
                                    spans: Vec::new(),
                                    windows: Vec::new(),
                                    files: BTreeMap::new(),
                                });
                                groups.len() - 1
                            })
                    });
                    group_memo.insert(inputs, group_index);
                    group_index
                }
            };
            let Some(group_index) = group_index else {
                continue;
            };
            let (mut start, mut end) = (window.start, window.end);
            for clip in plan
                .clips
                .iter()
                .filter(|c| c.plan == window.stage && c.fetches.contains(&fetch.name))
            {
                if let Some((clip_start, clip_end)) = clip.clip_window(window) {
                    start = start.min(clip_start);
                    end = end.max(clip_end);
                }
            }
            window_group[fetch_index * plan.windows.len() + index] = Some(group_index);
            let group = &mut groups[group_index];
            if !group.fetches.contains(&fetch.name) {
                group.fetches.push(fetch.name.clone());
            }
            group.per_request = group.per_request.min(fetch.per_request);
            group
                .spans
                .push((start.timestamp_millis(), end.timestamp_millis()));
            group.windows.push(index);
        }
    }
    // Deterministic node order whatever the hash map did: by device, then source.
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| {
        (&groups[a].device, &groups[a].source).cmp(&(&groups[b].device, &groups[b].source))
    });

    // 3. Requests (coalesced, batched by per_request) and the nominal files they bring.
    for &group_index in &order {
        let group = &groups[group_index];
        let (device, source) = (&group.device, &group.source);
        let mut new_files = Vec::new();
        let file_fields =
            source_key_fields(KeyFields::new("file"), source).field("device", device.as_str());
        // Shared by the group's file nodes.
        let (file_device, file_source) = (
            Text::from(device.as_str()),
            Text::from(source_description(source)),
        );
        for span in coalesce(&group.spans, group.per_request) {
            // ONC wants dateFrom < dateTo: an instant asks for the second that contains it.
            let date_from = ms_time(span.start_ms);
            let date_to = if span.end_ms > span.start_ms {
                ms_time(span.end_ms)
            } else {
                add_ms(date_from, 1_000)
            };
            let kind = if source.is_archive() {
                NodeKind::ArchiveList
            } else {
                NodeKind::ProductRequest
            };
            let fields = KeyFields::new(kind.as_str());
            let query = OncQuery {
                device: device.clone(),
                source: source.clone(),
                from: date_from,
                to: date_to,
            };
            let key = source_key_fields(fields, source)
                .field("device", device.as_str())
                .field("dateFrom", onc_date(date_from))
                .field("dateTo", onc_date(date_to))
                .key();
            let inputs: Vec<NodeKey> = span
                .members
                .iter()
                .map(|&m| window_keys[group.windows[m]])
                .collect();
            let member_windows = span.members.len();
            let request_key = dag.add(Node {
                key,
                kind,
                inputs,
                detail: NodeDetail::Request {
                    device: device.clone(),
                    fetch: group.fetches.clone(),
                    query,
                    estimated_files: slot_count(date_from, date_to),
                    windows: member_windows,
                },
            });
            let (first, last) = slots(date_from.timestamp_millis(), date_to.timestamp_millis());
            for slot in first..=last {
                let slot_start = ms_time(slot * FILE_MS);
                let file_key = file_fields
                    .clone()
                    .field("slot", onc_date(slot_start))
                    .key();
                dag.add(Node {
                    key: file_key,
                    kind: NodeKind::File,
                    inputs: vec![request_key],
                    detail: NodeDetail::File {
                        device: Arc::clone(&file_device),
                        source: Arc::clone(&file_source),
                        slot_start: rfc3339(slot_start),
                        slot_end: rfc3339(ms_time((slot + 1) * FILE_MS)),
                    },
                });
                new_files.push((slot, file_key));
            }
        }
        groups[group_index].files.extend(new_files);
    }

    // 4. Clips: one per clip stage, window and fetch stage, fed by the files covering the clip.
    // Output names already taken (device, tag, media, name): a second stage cutting the same
    // window into the same folder gets its stage name appended, so no sidecar is overwritten.
    // Device and tag are borrowed from the plan: this set holds one entry per clip.
    // Reserved: growing a table this size step by step made glibc consolidate its free lists
    // again and again (a tenth of the build's time).
    let mut taken: HashSet<(&str, &str, Media, String)> =
        HashSet::with_capacity(plan.windows.len() * clip_pairs);
    for clip in &plan.clips {
        let stage = Text::from(clip.name.as_str());
        let spectrogram_formats: Arc<[ClipFormat]> = clip.spectrogram.iter().copied().collect();
        let audio_formats: Arc<[ClipFormat]> = Arc::new([clip.audio]);
        // The clip's fetch stages: their index in the plan and their name, found once per clip.
        let fetches: Vec<(usize, Text)> = clip
            .fetches
            .iter()
            .filter_map(|name| {
                let index = plan.fetches.iter().position(|f| &f.name == name)?;
                Some((index, Text::from(name.as_str())))
            })
            .collect();
        for (window_index, window) in plan.windows_of(&clip.plan) {
            let Some((clip_start, clip_end)) = clip.clip_window(window) else {
                continue;
            };
            // The same for every fetch stage of the window: named and formatted once.
            let (first, last) = slots(clip_start.timestamp_millis(), clip_end.timestamp_millis());
            let base_name = window
                .name
                .clone()
                .unwrap_or_else(|| default_clip_name(&window.device, clip_start, clip_end));
            let (clip_start_text, clip_end_text) = (rfc3339(clip_start), rfc3339(clip_end));
            for (fetch_index, fetch_text) in &fetches {
                let Some(&Some(group_index)) =
                    window_group.get(*fetch_index * plan.windows.len() + window_index)
                else {
                    continue;
                };
                let Group { source, files, .. } = &groups[group_index];
                let inputs: Vec<NodeKey> = files.range(first..=last).map(|(_, key)| *key).collect();
                let media = if source.is_spectrogram() {
                    Media::Spectrogram
                } else {
                    Media::Audio
                };
                let formats = Arc::clone(if source.is_spectrogram() {
                    &spectrogram_formats
                } else {
                    &audio_formats
                });
                let mut slot = (
                    window.device.as_str(),
                    window.tag.as_str(),
                    media,
                    base_name.clone(),
                );
                let mut attempt = 1;
                while taken.contains(&slot) {
                    slot.3 = match attempt {
                        1 => format!("{base_name}_{}", clip.name),
                        n => format!("{base_name}_{}_{n}", clip.name),
                    };
                    attempt += 1;
                }
                let name = slot.3.clone();
                taken.insert(slot);
                let format_list: Cow<str> = match &*formats {
                    [one] => Cow::Borrowed(one.as_str()),
                    many => Cow::Owned(
                        many.iter()
                            .map(|f| f.as_str())
                            .collect::<Vec<_>>()
                            .join(","),
                    ),
                };
                let mut fields = KeyFields::new("clip")
                    .field("device", window.device.as_str())
                    .field("clip_start", clip_start_text.as_str())
                    .field("clip_end", clip_end_text.as_str())
                    .field("media", media.as_str())
                    .field("formats", format_list)
                    .field("gaps", clip.gaps.as_str());
                // Keyed only when set, so clips of stages without it keep their keys.
                if let Some(share) = clip.min_coverage {
                    fields = fields.field("min_coverage", share.to_string());
                }
                let key = fields
                    .field("label", window.label.as_deref().unwrap_or_default())
                    .field("name", name.as_str())
                    .inputs(inputs.iter().copied())
                    .key();
                dag.add(Node {
                    key,
                    kind: NodeKind::Clip,
                    inputs,
                    detail: NodeDetail::Clip(ClipSpec {
                        stage: Arc::clone(&stage),
                        fetch: Arc::clone(fetch_text),
                        device: names.get(&window.device),
                        location: window.location.clone(),
                        tag: names.get(&window.tag),
                        label: window_text[window_index].label.clone(),
                        name,
                        media,
                        formats,
                        gaps: clip.gaps,
                        min_coverage: clip.min_coverage,
                        window_start: window.start,
                        window_end: window.end,
                        clip_start,
                        clip_end,
                    }),
                });
            }
        }
    }
    dag
}

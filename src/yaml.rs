//! YAML that someone else wrote. libyaml, under serde_yaml and rattler's readers, costs time
//! quadratic in the nesting depth of flow collections (it rechecks one saved key per open
//! `[` at every token), so a 200 KB file of `[` kept envmod busy for a minute. Every YAML
//! file from elsewhere goes through [`parse`] or [`check`] first: they walk the parser's
//! events, stop at [`MAX_DEPTH`], and so cost time linear in the file's size. [`parse`] also
//! keeps the line of every node, which envmod names in its errors; finding those lines by
//! searching the text was itself quadratic in the number of entries.

use std::mem::MaybeUninit;

use unsafe_libyaml as unsafe_sys;

/// Deeper than any environment, lock or config file is: environment.yml nests four levels.
pub(crate) const MAX_DEPTH: usize = 64;

/// A YAML node and the line (1-based) where it starts.
#[derive(Debug)]
pub(crate) enum Node {
    Scalar {
        value: String,
        line: usize,
    },
    Seq {
        items: Vec<Node>,
        line: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        line: usize,
    },
    Alias {
        line: usize,
    },
}

impl Node {
    pub(crate) fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. }
            | Node::Seq { line, .. }
            | Node::Map { line, .. }
            | Node::Alias { line } => *line,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// The key and value of the first entry named `key`, in a mapping.
    pub(crate) fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        self.entries()
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k, v))
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The items of a sequence; none for anything else.
    pub(crate) fn items(&self) -> &[Node] {
        match self {
            Node::Seq { items, .. } => items,
            _ => &[],
        }
    }

    /// The entries of a mapping; none for anything else.
    pub(crate) fn entries(&self) -> &[(Node, Node)] {
        match self {
            Node::Map { entries, .. } => entries,
            _ => &[],
        }
    }
}

/// A file nested deeper than [`MAX_DEPTH`].
#[derive(Debug, thiserror::Error)]
#[error("line {line}: nested more than {MAX_DEPTH} levels deep")]
pub(crate) struct TooDeep {
    pub(crate) line: usize,
}

/// The first document of `text`, with the line of every node; `None` when libyaml finds it
/// is not valid YAML (the reader that parses it for real then says why, with its words).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, TooDeep> {
    let mut stack: Vec<Node> = Vec::new();
    let mut keys: Vec<Option<Node>> = Vec::new();
    let mut root = None;
    let done = walk(text, |event, line| {
        let node = match event {
            Event::Scalar(value) => Node::Scalar { value, line },
            Event::Alias => Node::Alias { line },
            Event::SeqStart => {
                stack.push(Node::Seq {
                    items: Vec::new(),
                    line,
                });
                keys.push(None);
                return Walk::More;
            }
            Event::MapStart => {
                stack.push(Node::Map {
                    entries: Vec::new(),
                    line,
                });
                keys.push(None);
                return Walk::More;
            }
            Event::End => {
                keys.pop();
                match stack.pop() {
                    Some(node) => node,
                    None => return Walk::Stop,
                }
            }
            Event::DocumentEnd => return Walk::Stop,
        };
        match stack.last_mut() {
            None => {
                root = Some(node);
                return Walk::Stop;
            }
            Some(Node::Seq { items, .. }) => items.push(node),
            Some(Node::Map { entries, .. }) => {
                let key = keys.last_mut().expect("one key slot per open collection");
                match key.take() {
                    None => *key = Some(node),
                    Some(k) => entries.push((k, node)),
                }
            }
            Some(_) => unreachable!("only collections are pushed"),
        }
        Walk::More
    })?;
    Ok(if done { root } else { None })
}

/// Whether `text` is nested no deeper than [`MAX_DEPTH`], in time linear in its size.
pub(crate) fn check(text: &str) -> Result<(), TooDeep> {
    walk(text, |_, _| Walk::More).map(|_| ())
}

enum Event {
    Scalar(String),
    Alias,
    SeqStart,
    MapStart,
    /// The end of a sequence or mapping.
    End,
    DocumentEnd,
}

enum Walk {
    More,
    Stop,
}

/// Feed the events of `text` to `each` (with the line each starts on) until it says stop
/// or the stream ends: `Ok(true)`. `Ok(false)` when the text is not valid YAML.
fn walk(text: &str, mut each: impl FnMut(Event, usize) -> Walk) -> Result<bool, TooDeep> {
    // The parser points into itself once it has input, so it lives on the heap and never
    // moves.
    let mut parser: Box<MaybeUninit<unsafe_sys::yaml_parser_t>> = Box::new(MaybeUninit::uninit());
    let parser = parser.as_mut_ptr();
    // SAFETY: the parser is initialised before use and deleted at the end; its input is
    // `text`, which outlives it; every event is deleted after it is read, and scalar values
    // are copied out of it before that. This is libyaml's C interface, not libc: neither
    // nix nor std has a YAML parser, and serde_yaml, which wraps this one, gives no event
    // stream to stop early in.
    unsafe {
        if unsafe_sys::yaml_parser_initialize(parser).fail {
            return Ok(false);
        }
        unsafe_sys::yaml_parser_set_encoding(parser, unsafe_sys::YAML_UTF8_ENCODING);
        unsafe_sys::yaml_parser_set_input_string(parser, text.as_ptr(), text.len() as u64);
        let mut depth = 0usize;
        let result = loop {
            let mut event = MaybeUninit::<unsafe_sys::yaml_event_t>::uninit();
            if unsafe_sys::yaml_parser_parse(parser, event.as_mut_ptr()).fail {
                break Ok(false);
            }
            let event = event.as_mut_ptr();
            let line = (*event).start_mark.line as usize + 1;
            let step = match (*event).type_ {
                unsafe_sys::YAML_STREAM_END_EVENT => {
                    unsafe_sys::yaml_event_delete(event);
                    break Ok(true);
                }
                unsafe_sys::YAML_SCALAR_EVENT => {
                    let scalar = &(*event).data.scalar;
                    let bytes = std::slice::from_raw_parts(scalar.value, scalar.length as usize);
                    Some(Event::Scalar(String::from_utf8_lossy(bytes).into_owned()))
                }
                unsafe_sys::YAML_ALIAS_EVENT => Some(Event::Alias),
                unsafe_sys::YAML_SEQUENCE_START_EVENT | unsafe_sys::YAML_MAPPING_START_EVENT => {
                    depth += 1;
                    if depth > MAX_DEPTH {
                        unsafe_sys::yaml_event_delete(event);
                        break Err(TooDeep { line });
                    }
                    Some(if (*event).type_ == unsafe_sys::YAML_SEQUENCE_START_EVENT {
                        Event::SeqStart
                    } else {
                        Event::MapStart
                    })
                }
                unsafe_sys::YAML_SEQUENCE_END_EVENT | unsafe_sys::YAML_MAPPING_END_EVENT => {
                    depth = depth.saturating_sub(1);
                    Some(Event::End)
                }
                unsafe_sys::YAML_DOCUMENT_END_EVENT => Some(Event::DocumentEnd),
                _ => None,
            };
            unsafe_sys::yaml_event_delete(event);
            if let Some(step) = step
                && let Walk::Stop = each(step, line)
            {
                break Ok(true);
            }
        };
        unsafe_sys::yaml_parser_delete(parser);
        result
    }
}

/// A mapping of names to one name or a list of them (`torch: pytorch`,
/// `"openmpi/*": ["openmpi {version}", "mpi 1.0 openmpi"]`), in file order, which serde's
/// maps would lose, and with the line of every key and value once [`ListMap::locate`] has
/// seen the parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ListMap {
    pub(crate) entries: Vec<ListEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListEntry {
    pub(crate) key: String,
    pub(crate) line: Option<usize>,
    /// Each value and its line.
    pub(crate) values: Vec<(String, Option<usize>)>,
}

impl ListMap {
    /// Fill in the lines from `node`, the same mapping as [`parse`] read it. Entries are
    /// matched by position and checked by key, so an alias or a merge key that moved
    /// entries around leaves those entries without a line rather than with a wrong one.
    pub(crate) fn locate(&mut self, node: Option<&Node>) {
        let Some(node) = node else { return };
        let nodes = node.entries();
        for (i, entry) in self.entries.iter_mut().enumerate() {
            let Some((key, value)) = nodes
                .get(i)
                .filter(|(k, _)| k.as_str() == Some(entry.key.as_str()))
            else {
                continue;
            };
            entry.line = Some(key.line());
            match value {
                Node::Seq { items, .. } if items.len() == entry.values.len() => {
                    for ((v, line), item) in entry.values.iter_mut().zip(items) {
                        if item.as_str() == Some(v.as_str()) {
                            *line = Some(item.line());
                        }
                    }
                }
                Node::Scalar { line, .. } => {
                    for (_, l) in &mut entry.values {
                        *l = Some(*line);
                    }
                }
                _ => {}
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for ListMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Entries;
        impl<'de> serde::de::Visitor<'de> for Entries {
            type Value = ListMap;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of names to a name or a list of names")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ListMap, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, OneOrMany(values))) = map.next_entry::<String, OneOrMany>()? {
                    entries.push(ListEntry {
                        key,
                        line: None,
                        values: values.into_iter().map(|v| (v, None)).collect(),
                    });
                }
                Ok(ListMap { entries })
            }
        }
        d.deserialize_map(Entries)
    }
}

/// `name` or `[name, …]`.
struct OneOrMany(Vec<String>);

impl<'de> serde::Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Values;
        impl<'de> serde::de::Visitor<'de> for Values {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings (`[]` for none)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut values = Vec::new();
                while let Some(v) = seq.next_element::<String>()? {
                    values.push(v);
                }
                Ok(OneOrMany(values))
            }
        }
        d.deserialize_any(Values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_their_lines() {
        let doc = parse("name: x\ndependencies:\n  - a\n  - pip:\n    - b\nvars: {K: v}\n")
            .unwrap()
            .unwrap();
        let deps = doc.get("dependencies").unwrap().items();
        assert_eq!(deps[0].as_str(), Some("a"));
        assert_eq!(deps[0].line(), 3);
        let (key, pip) = &deps[1].entries()[0];
        assert_eq!((key.as_str(), key.line()), (Some("pip"), 4));
        assert_eq!(pip.items()[0].line(), 5);
        assert_eq!(doc.entry("vars").unwrap().0.line(), 6);
        assert_eq!(
            doc.get("vars").unwrap().get("K").unwrap().as_str(),
            Some("v")
        );
    }

    #[test]
    fn invalid_yaml_is_left_to_the_real_reader() {
        assert!(parse("a: [\n").unwrap().is_none());
        assert!(parse("").unwrap().is_none());
    }

    #[test]
    fn deep_nesting_stops_at_the_limit_in_no_time() {
        let started = std::time::Instant::now();
        for text in [
            format!("a: {}", "[".repeat(200_000)),
            format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000)),
            format!("a: {}", "{a: ".repeat(100_000)),
        ] {
            let err = check(&text).unwrap_err();
            assert_eq!(err.line, 1);
            assert!(
                err.to_string().contains("nested more than 64 levels"),
                "{err}"
            );
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let ok = format!(
            "a: {}{}\n",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        check(&ok).unwrap();
    }

    #[test]
    fn a_list_map_keeps_file_order_and_lines() {
        let text = "a: 1\nm:\n  zeta/*: [z 1, y 2]\n  alpha/*: one\n  off/*: []\n  list/*:\n    - p 1\n    - q 2\n";
        #[derive(serde::Deserialize)]
        struct Doc {
            m: ListMap,
        }
        let mut m = serde_yaml::from_str::<Doc>(text).unwrap().m;
        let doc = parse(text).unwrap().unwrap();
        m.locate(doc.get("m"));
        let got: Vec<_> = m
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.line, e.values.clone()))
            .collect();
        let v = |s: &str, l: usize| (s.to_owned(), Some(l));
        assert_eq!(
            got,
            [
                ("zeta/*", Some(3), vec![v("z 1", 3), v("y 2", 3)]),
                ("alpha/*", Some(4), vec![v("one", 4)]),
                ("off/*", Some(5), vec![]),
                ("list/*", Some(6), vec![v("p 1", 7), v("q 2", 8)]),
            ]
        );
        for bad in ["m: [a]\n", "m: {a: 1}\n", "m: {a: ~}\n", "m: {a: [[b]]}\n"] {
            assert!(serde_yaml::from_str::<Doc>(bad).is_err(), "{bad}");
        }
    }
}

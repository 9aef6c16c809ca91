//! XML bodies: a small writer for responses (byte-exact, in the element order AWS documents)
//! and a size-capped serde reader for requests.

use std::fmt::Write as _;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::error::{S3Error, S3ErrorCode};

pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// Appends `text` escaped for XML content. Control characters that XML 1.0 cannot carry
/// literally are written as character references, as S3 does.
pub fn escape_into(out: &mut String, text: &str) {
    // Everything that needs escaping is ASCII, so runs between such bytes are whole UTF-8
    // and are copied at once.
    let bytes = text.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escaped = match b {
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'&' => "&amp;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            b'\t' | b'\n' => continue,
            0..0x20 | 0x7f => "",
            _ => continue,
        };
        out.push_str(&text[run..i]);
        if escaped.is_empty() {
            let _ = write!(out, "&#x{b:X};");
        } else {
            out.push_str(escaped);
        }
        run = i + 1;
    }
    out.push_str(&text[run..]);
}

/// Builds an XML document element by element.
pub struct XmlWriter {
    out: String,
    stack: Vec<&'static str>,
}

impl XmlWriter {
    /// Starts a document whose root carries the S3 namespace.
    pub fn new(root: &'static str) -> Self {
        Self::with_root(root, Some(S3_NAMESPACE))
    }

    pub fn with_root(root: &'static str, namespace: Option<&str>) -> Self {
        let mut out = String::with_capacity(512);
        out.push_str(DECLARATION);
        out.push('\n');
        out.push('<');
        out.push_str(root);
        if let Some(ns) = namespace {
            out.push_str(" xmlns=\"");
            escape_into(&mut out, ns);
            out.push('"');
        }
        out.push('>');
        XmlWriter { out, stack: vec![root] }
    }

    /// Room for `additional` more bytes (a long listing is written without regrowing).
    pub fn reserve(&mut self, additional: usize) -> &mut Self {
        self.out.reserve(additional);
        self
    }

    pub fn start(&mut self, name: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.stack.push(name);
        self
    }

    /// An element with attributes (`xsi:type` of a grantee).
    pub fn start_with(&mut self, name: &'static str, attributes: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attributes {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('>');
        self.stack.push(name);
        self
    }

    pub fn end(&mut self) -> &mut Self {
        if let Some(name) = self.stack.pop() {
            self.out.push_str("</");
            self.out.push_str(name);
            self.out.push('>');
        }
        self
    }

    /// `<name>text</name>`; an empty text gives `<name></name>`, as S3 writes it.
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.elem_with(name, |out| escape_into(out, text))
    }

    /// `<name>…</name>` with the text `write` appends to the document: text that needs no
    /// escaping (numbers, times), or that `write` escapes with [`escape_into`]. Saves a
    /// string per element where thousands are written.
    pub fn elem_with(&mut self, name: &str, write: impl FnOnce(&mut String)) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        write(&mut self.out);
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Text content of the current element.
    pub fn text(&mut self, text: &str) -> &mut Self {
        escape_into(&mut self.out, text);
        self
    }

    pub fn opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.elem(name, t);
        }
        self
    }

    pub fn finish(mut self) -> Bytes {
        while !self.stack.is_empty() {
            self.end();
        }
        Bytes::from(self.out)
    }
}

/// A document without its XML declaration, to continue a response that already sent one.
pub fn strip_declaration(doc: &Bytes) -> Bytes {
    let prefix = DECLARATION.len() + 1;
    if doc.starts_with(DECLARATION.as_bytes()) && doc.len() >= prefix { doc.slice(prefix..) } else { doc.clone() }
}

/// How many elements a request document may hold, checked by a streaming pass before it is
/// deserialised, so that a body of millions of tiny elements never becomes millions of values.
#[derive(Clone, Copy, Debug)]
pub struct ElementLimits {
    /// Elements of any name, the root included.
    pub total: usize,
    /// Elements with this local name (`Part`, `Object`), at most `max` of them.
    pub repeated: Option<(&'static str, usize)>,
    /// Deepest nesting accepted.
    pub depth: usize,
}

impl ElementLimits {
    /// A small fixed document (a bucket configuration).
    pub const SMALL: ElementLimits = ElementLimits { total: 64, repeated: None, depth: 8 };

    /// A list of `max` `name` elements, each with at most `children` children.
    pub const fn list(name: &'static str, max: usize, children: usize) -> Self {
        ElementLimits { total: 1 + max * (1 + children) + 8, repeated: Some((name, max)), depth: 8 }
    }
}

/// Counts elements (and checks nesting) without building anything; `MalformedXML` when a
/// limit is crossed or the document is not well-formed.
fn check_elements(text: &str, limits: ElementLimits) -> Result<(), S3Error> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    let (mut total, mut repeated, mut depth) = (0usize, 0usize, 0usize);
    let too_many = |what: String| S3Error::new(S3ErrorCode::MalformedXML).source(what);
    loop {
        let event = reader.read_event().map_err(|e| S3Error::new(S3ErrorCode::MalformedXML).source(e))?;
        let name = match &event {
            Event::Start(e) => {
                depth += 1;
                e.local_name()
            }
            Event::Empty(e) => e.local_name(),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::Eof => return Ok(()),
            _ => continue,
        };
        total += 1;
        if total > limits.total {
            return Err(too_many(format!("more than {} elements", limits.total)));
        }
        if depth > limits.depth {
            return Err(too_many(format!("nested deeper than {}", limits.depth)));
        }
        if let Some((repeated_name, max)) = limits.repeated
            && name.as_ref() == repeated_name.as_bytes()
        {
            repeated += 1;
            if repeated > max {
                return Err(too_many(format!("more than {max} {repeated_name} elements")));
            }
        }
    }
}

/// Parses a request body within `limits`. Namespaces are ignored (s3cmd sends none),
/// entities and character references are decoded.
pub fn from_xml<T: DeserializeOwned>(body: &[u8], limits: ElementLimits) -> Result<T, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    check_elements(text, limits)?;
    quick_xml::de::from_str(text).map_err(|e| S3Error::new(S3ErrorCode::MalformedXML).source(e))
}

/// Generators shared by the property tests of every XML body.
#[cfg(test)]
pub mod fuzzing {
    use proptest::prelude::*;
    use proptest::test_runner::Config;

    /// Cases from `PROPTEST_CASES` (256 by default); failures are reported, not persisted in
    /// the source tree.
    pub fn config() -> Config {
        Config { failure_persistence: None, ..Config::default() }
    }

    /// Text nodes: plain words, numbers, entities, character references, stray markup.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 ._/-]{0,12}",
            Just("&quot;0a&quot;".to_string()),
            Just("&#34;x&#34;".to_string()),
            Just("&amp;&lt;&gt;".to_string()),
            Just("&bogus;".to_string()),
            Just("&#xFFFFFFFF;".to_string()),
            Just("<".to_string()),
            Just("]]>".to_string()),
            "-?[0-9]{1,25}",
            "\\PC{0,8}",
        ]
    }

    /// Documents built from `names` (and a few others), nested, with random text, broken
    /// now and then (unclosed or mismatched tags, a namespace, a declaration).
    pub fn arbitrary_document(names: &'static [&'static str]) -> impl Strategy<Value = String> {
        let name = prop_oneof![proptest::sample::select(names), Just("Bogus"), Just("x:Part")];
        let leaf = (name.clone(), text()).prop_map(|(n, t)| format!("<{n}>{t}</{n}>"));
        let tree = leaf.prop_recursive(4, 64, 8, move |inner| {
            (name.clone(), proptest::collection::vec(inner, 0..8), any::<u8>()).prop_map(|(n, kids, twist)| {
                let body = kids.concat();
                match twist % 16 {
                    0 => format!("<{n}>{body}"),
                    1 => format!("<{n}>{body}</Other>"),
                    2 => format!("<{n} xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">{body}</{n}>"),
                    3 => format!("<{n}/>{body}"),
                    _ => format!("<{n}>{body}</{n}>"),
                }
            })
        });
        prop_oneof![
            8 => tree.clone(),
            1 => tree.prop_map(|t| format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{t}")),
            1 => "\\PC{0,64}",
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct List {
        #[serde(rename = "Part", default)]
        parts: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Item {
        #[serde(rename = "N")]
        n: Option<String>,
    }

    /// 4 MiB of `<Part></Part>` once became ~300,000 values before any limit applied.
    #[test]
    fn element_counts_are_bounded_before_deserialising() {
        let limits = ElementLimits::list("Part", 3, 1);
        let doc = |n: usize| format!("<L>{}</L>", "<Part><N>1</N></Part>".repeat(n));
        let parsed: List = from_xml(doc(3).as_bytes(), limits).expect("within limits");
        assert_eq!(parsed.parts.len(), 3);
        assert_eq!(parsed.parts[0].n.as_deref(), Some("1"));
        let err = from_xml::<List>(doc(4).as_bytes(), limits).expect_err("too many parts");
        assert_eq!(err.code, S3ErrorCode::MalformedXML);
        let huge = format!("<L>{}</L>", "<Part></Part>".repeat(300_000));
        assert_eq!(from_xml::<List>(huge.as_bytes(), limits).expect_err("huge").code, S3ErrorCode::MalformedXML);
        // Other elements count towards the total; empty elements count too.
        let noise = format!("<L>{}</L>", "<X/>".repeat(20));
        assert_eq!(from_xml::<List>(noise.as_bytes(), limits).expect_err("noise").code, S3ErrorCode::MalformedXML);
        let deep = format!("{}{}", "<A>".repeat(20), "</A>".repeat(20));
        assert_eq!(from_xml::<List>(deep.as_bytes(), limits).expect_err("deep").code, S3ErrorCode::MalformedXML);
        assert_eq!(from_xml::<List>(b"<L><Part></L>", limits).expect_err("broken").code, S3ErrorCode::MalformedXML);
    }

    /// Character by character, as S3 escapes: the reference the fast escape is held to.
    fn escape_by_char(text: &str) -> String {
        let mut out = String::new();
        for c in text.chars() {
            match c {
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '&' => out.push_str("&amp;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&apos;"),
                '\t' | '\n' => out.push(c),
                c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("&#x{:X};", c as u32)),
                c => out.push(c),
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn escaping_matches_the_character_reference(text in "(?s).{0,64}", ascii in "[\\x00-\\x7f]{0,64}") {
            for t in [&text, &ascii] {
                let mut out = String::new();
                escape_into(&mut out, t);
                proptest::prop_assert_eq!(out, escape_by_char(t));
            }
        }
    }

    #[test]
    fn writes_declaration_namespace_and_escaped_text() {
        let mut w = XmlWriter::new("InitiateMultipartUploadResult");
        w.elem("Bucket", "b").elem("Key", "a&b<c>\"d\u{1}");
        w.start("Owner").elem("ID", "x").end();
        let xml = w.finish();
        assert_eq!(
            std::str::from_utf8(&xml).expect("utf-8"),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Bucket>b</Bucket><Key>a&amp;b&lt;c&gt;&quot;d&#x1;</Key><Owner><ID>x</ID></Owner></InitiateMultipartUploadResult>"
        );
    }
}

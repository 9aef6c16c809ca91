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
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            c => out.push(c),
        }
    }
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

    pub fn start(&mut self, name: &'static str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
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
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        escape_into(&mut self.out, text);
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

/// Parses a request body. Namespaces are ignored (s3cmd sends none), entities and character
/// references are decoded.
pub fn from_xml<T: DeserializeOwned>(body: &[u8]) -> Result<T, S3Error> {
    let text = std::str::from_utf8(body).map_err(|_| S3Error::new(S3ErrorCode::MalformedXML))?;
    quick_xml::de::from_str(text).map_err(|e| S3Error::new(S3ErrorCode::MalformedXML).source(e))
}

#[cfg(test)]
mod tests {
    use super::*;

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

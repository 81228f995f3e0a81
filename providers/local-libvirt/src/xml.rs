//! A small XML element builder for libvirt documents, and the conversion of
//! Lago's `cpu_custom` dict into XML.
//!
//! libvirt documents are small and written once, so a tree of owned strings
//! rendered with two-space indentation is all that is needed. Text and
//! attribute values are always escaped.

use serde_json::Value;

use crate::error::{ProviderError, Result};

/// An XML element: a name, attributes in insertion order, child nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    pub fn new(name: impl Into<String>) -> Self {
        Element {
            name: name.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds (or replaces) an attribute.
    pub fn attr(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.set_attr(key, value);
        self
    }

    pub fn set_attr(&mut self, key: impl Into<String>, value: impl ToString) {
        let key = key.into();
        let value = value.to_string();
        match self.attrs.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attrs.push((key, value)),
        }
    }

    /// Appends a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.push(child);
        self
    }

    /// Appends a child element when there is one.
    pub fn child_opt(mut self, child: Option<Element>) -> Self {
        if let Some(c) = child {
            self.push(c);
        }
        self
    }

    pub fn push(&mut self, child: Element) {
        self.children.push(Node::Element(child));
    }

    /// Appends text content.
    pub fn text(mut self, text: impl ToString) -> Self {
        self.push_text(text);
        self
    }

    pub fn push_text(&mut self, text: impl ToString) {
        self.children.push(Node::Text(text.to_string()));
    }

    /// Whether a direct child element of that name exists.
    pub fn has_child(&self, name: &str) -> bool {
        self.children
            .iter()
            .any(|n| matches!(n, Node::Element(e) if e.name == name))
    }

    /// The document, indented by two spaces, ending with a newline.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out, 0);
        out
    }

    fn render_into(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        out.push_str(&pad);
        out.push('<');
        out.push_str(&self.name);
        for (k, v) in &self.attrs {
            out.push(' ');
            out.push_str(k);
            out.push_str("='");
            out.push_str(&escape(v));
            out.push('\'');
        }
        if self.children.is_empty() {
            out.push_str("/>\n");
            return;
        }
        out.push('>');
        let only_text = self.children.iter().all(|n| matches!(n, Node::Text(_)));
        if only_text {
            for n in &self.children {
                if let Node::Text(t) = n {
                    out.push_str(&escape(t));
                }
            }
        } else {
            out.push('\n');
            for n in &self.children {
                match n {
                    Node::Element(e) => e.render_into(out, depth + 1),
                    Node::Text(t) => {
                        out.push_str(&"  ".repeat(depth + 1));
                        out.push_str(&escape(t));
                        out.push('\n');
                    }
                }
            }
            out.push_str(&pad);
        }
        out.push_str("</");
        out.push_str(&self.name);
        out.push_str(">\n");
    }
}

/// Escapes text for use in element content and in single- or double-quoted
/// attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out
}

/// Whether `s` is a plain XML name (what libvirt documents use).
fn is_xml_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some(String::new()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Converts a dict written in xmltodict's convention into an element named
/// `name`, as Lago's `cpu_custom` does:
///
/// - `@attr: value` → an attribute,
/// - `#text: value` → the element's text,
/// - `key: {..}` → a child element `<key>`,
/// - `key: [a, b]` → one `<key>` child per item,
/// - `key: scalar` → a child `<key>scalar</key>` (null gives an empty element).
///
/// Children come in the dict's key order. `what` names the setting in errors.
pub fn element_from_dict(name: &str, value: &Value, what: &str) -> Result<Element> {
    if !is_xml_name(name) {
        return Err(ProviderError::Spec(format!(
            "{what}: '{name}' is not a valid XML element name"
        )));
    }
    let mut el = Element::new(name);
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if let Some(attr) = k.strip_prefix('@') {
                    if !is_xml_name(attr) {
                        return Err(ProviderError::Spec(format!(
                            "{what}: '{k}' is not a valid XML attribute name"
                        )));
                    }
                    let text = scalar_text(v).ok_or_else(|| {
                        ProviderError::Spec(format!(
                            "{what}: attribute '{k}' of <{name}> must be a scalar, not {}",
                            kind_of(v)
                        ))
                    })?;
                    el.set_attr(attr, text);
                } else if k == "#text" {
                    let text = scalar_text(v).ok_or_else(|| {
                        ProviderError::Spec(format!(
                            "{what}: '#text' of <{name}> must be a scalar, not {}",
                            kind_of(v)
                        ))
                    })?;
                    el.push_text(text);
                } else if let Value::Array(items) = v {
                    for item in items {
                        if item.is_array() {
                            return Err(ProviderError::Spec(format!(
                                "{what}: <{k}> in <{name}>: a list inside a list has no XML form"
                            )));
                        }
                        el.push(element_from_dict(k, item, what)?);
                    }
                } else {
                    el.push(element_from_dict(k, v, what)?);
                }
            }
        }
        Value::Array(_) => {
            return Err(ProviderError::Spec(format!(
                "{what}: <{name}> must be a dict or a scalar, not a list"
            )))
        }
        scalar => {
            if let Some(t) = scalar_text(scalar) {
                if !t.is_empty() {
                    el.push_text(t);
                }
            }
        }
    }
    Ok(el)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
        _ => "a scalar",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_and_escapes() {
        let doc = Element::new("a")
            .attr("x", "it's <&>")
            .child(Element::new("b").text("1 < 2"))
            .child(Element::new("c"))
            .render();
        assert_eq!(
            doc,
            "<a x='it&apos;s &lt;&amp;&gt;'>\n  <b>1 &lt; 2</b>\n  <c/>\n</a>\n"
        );
        let parsed = roxmltree::Document::parse(&doc).expect("valid XML");
        assert_eq!(parsed.root_element().attribute("x"), Some("it's <&>"));
    }

    #[test]
    fn set_attr_replaces() {
        let e = Element::new("a").attr("k", 1).attr("k", 2);
        assert_eq!(e.render(), "<a k='2'/>\n");
    }

    #[test]
    fn dict_maps_attributes_text_children_and_lists() {
        let v = json!({
            "@mode": "custom",
            "@match": "exact",
            "model": {"@fallback": "allow", "#text": "Westmere"},
            "feature": {"@policy": "optional", "@name": "vmx"},
            "numa": {"cell": [
                {"@id": 0, "@cpus": "0", "@memory": 2048, "@unit": "MiB"},
                {"@id": 1, "@cpus": "1", "@memory": 2048, "@unit": "MiB"}
            ]},
            "vendor": "Intel",
            "empty": null
        });
        let xml = element_from_dict("cpu", &v, "cpu_custom")
            .expect("converts")
            .render();
        let doc = roxmltree::Document::parse(&xml).expect("valid XML");
        let cpu = doc.root_element();
        assert_eq!(cpu.tag_name().name(), "cpu");
        assert_eq!(cpu.attribute("mode"), Some("custom"));
        assert_eq!(cpu.attribute("match"), Some("exact"));
        let model = cpu
            .children()
            .find(|n| n.has_tag_name("model"))
            .expect("model");
        assert_eq!(model.attribute("fallback"), Some("allow"));
        assert_eq!(model.text(), Some("Westmere"));
        let cells: Vec<_> = cpu
            .descendants()
            .filter(|n| n.has_tag_name("cell"))
            .collect();
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[1].attribute("id"), Some("1"));
        assert_eq!(cells[1].attribute("memory"), Some("2048"));
        let vendor = cpu
            .children()
            .find(|n| n.has_tag_name("vendor"))
            .expect("vendor");
        assert_eq!(vendor.text(), Some("Intel"));
        assert!(cpu.children().any(|n| n.has_tag_name("empty")));
    }

    #[test]
    fn dict_rejects_bad_shapes() {
        for bad in [
            json!({"@mode": {"x": 1}}),
            json!({"#text": [1]}),
            json!({"bad name": 1}),
            json!({"a": [[1]]}),
            json!([1, 2]),
        ] {
            let err = element_from_dict("cpu", &bad, "cpu_custom").expect_err("refused");
            assert!(err.to_string().starts_with("cpu_custom: "), "{err}");
        }
    }
}

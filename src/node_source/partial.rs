//! A partial Node: only the fields the node source reads, deserialized leniently.
//!
//! Real Node objects reach 170 KB (images, managed fields, volumes). This type skips everything
//! but `metadata.{name, uid, resourceVersion, labels, annotations}` and `status.conditions`,
//! without building the skipped values. Deserialization never fails on the shape of a Node: a
//! field of the wrong JSON type reads as absent, so one malformed Node cannot fail a whole list
//! page or stop the watch. Only invalid JSON, or nesting deeper than
//! serde_json's limit of 128 levels, fails.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The fields of a Node the node source reads.
#[derive(Debug, Clone, Default)]
pub struct PartialNode {
    /// Only `name`, `uid`, `resource_version`, `labels` and `annotations` are filled.
    pub metadata: ObjectMeta,
    pub status: StatusField,
}

/// `status` as found in the object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StatusField {
    /// No `status` key, `status: null`, or a value that is not an object.
    #[default]
    Missing,
    Present(ConditionsField),
}

/// `status.conditions` as found in the object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ConditionsField {
    /// No `conditions` key.
    #[default]
    Missing,
    /// `conditions: null`.
    Null,
    /// A value that is not a list.
    NotList,
    List(Vec<RawCondition>),
}

/// One entry of `status.conditions`; a field of the wrong type reads as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawCondition {
    pub type_: Option<String>,
    pub status: Option<String>,
    pub reason: Option<String>,
    pub last_transition_time: Option<String>,
}

impl kube::Resource for PartialNode {
    type DynamicType = ();
    type Scope = k8s_openapi::ClusterResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("Node")
    }

    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1")
    }

    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("nodes")
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// Implements the visitor methods for every non-map, non-list JSON value, returning `$value`.
macro_rules! accept_scalars {
    ($value:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// Accepts a list by skipping its elements, returning `$value`.
macro_rules! skip_seq {
    ($value:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($value)
        }
    };
}

/// Accepts a map by skipping its entries, returning `$value`.
macro_rules! skip_map {
    ($value:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($value)
        }
    };
}

/// Accepts a string by skipping it, returning `$value`.
macro_rules! skip_str {
    ($value:expr) => {
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// A string, or `None` for any other JSON value.
struct LenientString(Option<String>);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientString;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_owned())))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v)))
            }

            accept_scalars!(LenientString(None));
            skip_seq!(LenientString(None));
            skip_map!(LenientString(None));
        }
        deserializer.deserialize_any(V)
    }
}

/// A string-to-string map; entries whose value is not a string are dropped.
struct LenientMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for LenientMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientMap;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((key, value)) = map.next_entry::<String, LenientString>()? {
                    if let Some(value) = value.0 {
                        out.insert(key, value);
                    }
                }
                Ok(LenientMap(out))
            }

            accept_scalars!(LenientMap(BTreeMap::new()));
            skip_str!(LenientMap(BTreeMap::new()));
            skip_seq!(LenientMap(BTreeMap::new()));
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for PartialNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PartialNode;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a Node object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut node = PartialNode::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "metadata" => node.metadata = map.next_value::<LenientMeta>()?.0,
                        "status" => node.status = map.next_value()?,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(node)
            }

            accept_scalars!(PartialNode::default());
            skip_str!(PartialNode::default());
            skip_seq!(PartialNode::default());
        }
        deserializer.deserialize_any(V)
    }
}

/// `metadata`, keeping only what the node source reads.
struct LenientMeta(ObjectMeta);

impl<'de> Deserialize<'de> for LenientMeta {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientMeta;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an ObjectMeta object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut meta = ObjectMeta::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    match key.as_ref() {
                        "name" => meta.name = map.next_value::<LenientString>()?.0,
                        "uid" => meta.uid = map.next_value::<LenientString>()?.0,
                        "resourceVersion" => {
                            meta.resource_version = map.next_value::<LenientString>()?.0;
                        }
                        "labels" => meta.labels = Some(map.next_value::<LenientMap>()?.0),
                        "annotations" => {
                            meta.annotations = Some(map.next_value::<LenientMap>()?.0);
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(LenientMeta(meta))
            }

            accept_scalars!(LenientMeta(ObjectMeta::default()));
            skip_str!(LenientMeta(ObjectMeta::default()));
            skip_seq!(LenientMeta(ObjectMeta::default()));
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for StatusField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusField;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a NodeStatus object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut conditions = ConditionsField::Missing;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "conditions" {
                        conditions = map.next_value()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(StatusField::Present(conditions))
            }

            accept_scalars!(StatusField::Missing);
            skip_str!(StatusField::Missing);
            skip_seq!(StatusField::Missing);
        }
        deserializer.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ConditionsField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ConditionsField;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of NodeCondition objects")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ConditionsField::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(ConditionsField::Null)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(condition) = seq.next_element::<LenientCondition>()? {
                    if let Some(condition) = condition.0 {
                        out.push(condition);
                    }
                }
                Ok(ConditionsField::List(out))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(ConditionsField::NotList)
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(ConditionsField::NotList)
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(ConditionsField::NotList)
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(ConditionsField::NotList)
            }

            skip_str!(ConditionsField::NotList);
            skip_map!(ConditionsField::NotList);
        }
        deserializer.deserialize_any(V)
    }
}

/// One condition; `None` when the list entry is not an object.
struct LenientCondition(Option<RawCondition>);

impl<'de> Deserialize<'de> for LenientCondition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientCondition;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a NodeCondition object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut condition = RawCondition::default();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "type" => &mut condition.type_,
                        "status" => &mut condition.status,
                        "reason" => &mut condition.reason,
                        "lastTransitionTime" => &mut condition.last_transition_time,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = map.next_value::<LenientString>()?.0;
                }
                Ok(LenientCondition(Some(condition)))
            }

            accept_scalars!(LenientCondition(None));
            skip_str!(LenientCondition(None));
            skip_seq!(LenientCondition(None));
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> PartialNode {
        serde_json::from_str(json).expect("valid JSON")
    }

    #[test]
    fn partial_node_reads_fields() {
        let node = parse(
            r#"{"metadata":{"name":"n","uid":"u","resourceVersion":"7","labels":{"a":"b"}},
                "spec":{"taints":[]},
                "status":{"images":[{"names":["x"]}],"conditions":[
                  {"type":"Ready","status":"True","reason":"KubeletReady",
                   "lastTransitionTime":"2026-01-01T00:00:00Z","message":"ok"}]}}"#,
        );
        assert_eq!(node.metadata.name.as_deref(), Some("n"));
        assert_eq!(node.metadata.uid.as_deref(), Some("u"));
        assert_eq!(node.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(
            node.metadata.labels.unwrap().get("a").map(String::as_str),
            Some("b")
        );
        let StatusField::Present(ConditionsField::List(conditions)) = node.status else {
            panic!("conditions not read");
        };
        assert_eq!(conditions.len(), 1);
        assert_eq!(conditions[0].type_.as_deref(), Some("Ready"));
        assert_eq!(conditions[0].reason.as_deref(), Some("KubeletReady"));
    }

    #[test]
    fn partial_node_tells_condition_shapes_apart() {
        let cases = [
            (
                r#"{"status":{}}"#,
                StatusField::Present(ConditionsField::Missing),
            ),
            (
                r#"{"status":{"conditions":null}}"#,
                StatusField::Present(ConditionsField::Null),
            ),
            (
                r#"{"status":{"conditions":[]}}"#,
                StatusField::Present(ConditionsField::List(vec![])),
            ),
            (
                r#"{"status":{"conditions":{"type":"Ready"}}}"#,
                StatusField::Present(ConditionsField::NotList),
            ),
            (r#"{"status":null}"#, StatusField::Missing),
            (r#"{}"#, StatusField::Missing),
        ];
        for (json, expected) in cases {
            assert_eq!(parse(json).status, expected, "{json}");
        }
    }

    #[test]
    fn partial_node_tolerates_wrong_types() {
        let node = parse(
            r#"{"metadata":{"name":5,"uid":"u","labels":{"a":1,"b":"c"},"annotations":[1]},
                "status":{"conditions":[7,"x",{"type":"Ready","status":true,
                  "lastTransitionTime":{"x":1},"reason":null},
                  {"type":"Ready","type":"Ready","status":"False"}]}}"#,
        );
        assert_eq!(node.metadata.name, None);
        let labels = node.metadata.labels.unwrap();
        assert_eq!(labels.len(), 1);
        assert_eq!(labels.get("b").map(String::as_str), Some("c"));
        assert_eq!(node.metadata.annotations, Some(BTreeMap::new()));
        let StatusField::Present(ConditionsField::List(conditions)) = node.status else {
            panic!("conditions not read");
        };
        assert_eq!(conditions.len(), 2);
        assert_eq!(conditions[0].status, None);
        assert_eq!(conditions[0].last_transition_time, None);
        assert_eq!(conditions[1].status.as_deref(), Some("False"));
    }

    #[test]
    fn partial_node_accepts_non_object() {
        let node = parse("[1,2]");
        assert_eq!(node.metadata.name, None);
        assert_eq!(node.status, StatusField::Missing);
    }
}

//! Subscriptions and tag filtering (REMOTING.md §6; Java `FilterAPI`, `SubscriptionData`).

use serde::{Deserialize, Serialize};

use crate::message::MessageExt;

/// The subscribe-all expression.
pub const SUB_ALL: &str = "*";

/// Java `String.hashCode()`: `h = 31*h + c` over UTF-16 code units with i32 wrap-around.
/// This is the tag code the broker filters by.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Orders items as a fresh `java.util.HashSet` filled in the given order iterates them:
/// by bucket `(h ^ (h >>> 16)) & (capacity - 1)` of the final capacity (16, doubled while
/// more than 3/4 full), insertion order within a bucket. Used so that our JSON bodies list
/// set elements exactly as Java's do (the broker itself does not care).
///
/// Duplicates must be removed by the caller. Buckets of 8+ entries in tables of 64+ (Java
/// treeifies those) are not modelled.
pub fn java_hash_set_order<T>(items: Vec<(i32, T)>) -> Vec<T> {
    let mut capacity = 16usize;
    while items.len() * 4 > capacity * 3 {
        capacity *= 2;
    }
    let mut keyed: Vec<(usize, usize, T)> = items
        .into_iter()
        .enumerate()
        .map(|(i, (h, t))| {
            let h = h as u32;
            ((h ^ (h >> 16)) as usize & (capacity - 1), i, t)
        })
        .collect();
    keyed.sort_by_key(|(bucket, i, _)| (*bucket, *i));
    keyed.into_iter().map(|(_, _, t)| t).collect()
}

/// How a subscription expression is interpreted (Java `ExpressionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ExpressionType {
    /// Tag expression: `*` or `TagA || TagB`.
    #[default]
    #[serde(rename = "TAG")]
    Tag,
    /// SQL92 property filter; needs broker `enablePropertyFilter=true`.
    #[serde(rename = "SQL92")]
    Sql92,
}

impl ExpressionType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpressionType::Tag => "TAG",
            ExpressionType::Sql92 => "SQL92",
        }
    }
}

/// A subscription expression Java would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubscriptionError {
    /// A tag expression that splits into nothing, such as `||` (Java: "subString split error").
    #[error("tag expression {expression:?} splits into no tags")]
    SplitError {
        /// The expression.
        expression: String,
    },
    /// An empty SQL92 expression (Java: "Expression can't be null! SQL92").
    #[error("SQL92 expression is empty")]
    EmptySql,
}

/// One topic's subscription as sent in heartbeats (Java `SubscriptionData`).
///
/// Fields are declared in fastjson's (alphabetical) order so the JSON matches Java's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionData {
    /// Legacy class filter; always false.
    pub class_filter_mode: bool,
    /// Java hash codes of the tags, in Java HashSet order.
    pub code_set: Vec<i32>,
    /// TAG or SQL92.
    pub expression_type: ExpressionType,
    /// The expression text.
    pub sub_string: String,
    /// Creation time, ms; pulls must not carry a newer one than the broker has (§3.4.2).
    pub sub_version: i64,
    /// Trimmed tags, in Java HashSet order; empty for `*` and SQL92.
    pub tags_set: Vec<String>,
    /// Topic.
    pub topic: String,
}

impl SubscriptionData {
    /// Builds a subscription as Java `FilterAPI.build(topic, expression, type)`, with
    /// `sub_version` = now in ms.
    ///
    /// Tags: `None`, `""` or exactly `"*"` subscribe to all; otherwise the text is split on
    /// `||`, parts trimmed, empty parts dropped. A `*` inside a longer expression is a
    /// literal tag, as in Java.
    ///
    /// # Errors
    /// [`SubscriptionError`] for what Java rejects: a tag expression with no parts (`||`) or
    /// an empty SQL92 expression.
    pub fn build(
        topic: &str,
        expression: Option<&str>,
        expression_type: ExpressionType,
    ) -> Result<Self, SubscriptionError> {
        Self::build_with_version(topic, expression, expression_type, crate::now_millis())
    }

    /// As [`SubscriptionData::build`] with an explicit `sub_version`.
    ///
    /// # Errors
    /// As [`SubscriptionData::build`].
    pub fn build_with_version(
        topic: &str,
        expression: Option<&str>,
        expression_type: ExpressionType,
        sub_version: i64,
    ) -> Result<Self, SubscriptionError> {
        let mut data = SubscriptionData {
            class_filter_mode: false,
            code_set: Vec::new(),
            expression_type,
            sub_string: SUB_ALL.to_owned(),
            sub_version,
            tags_set: Vec::new(),
            topic: topic.to_owned(),
        };
        let expression = expression.unwrap_or("");
        if expression_type == ExpressionType::Sql92 {
            if expression.is_empty() {
                return Err(SubscriptionError::EmptySql);
            }
            data.sub_string = expression.to_owned();
            return Ok(data);
        }
        if expression.is_empty() || expression == SUB_ALL {
            return Ok(data);
        }
        data.sub_string = expression.to_owned();
        // Java String.split drops trailing empty parts; nothing left is an error.
        let mut parts: Vec<&str> = expression.split("||").collect();
        while parts.last().is_some_and(|p| p.is_empty()) {
            parts.pop();
        }
        if parts.is_empty() {
            return Err(SubscriptionError::SplitError {
                expression: expression.to_owned(),
            });
        }
        let mut tags: Vec<String> = Vec::new();
        for part in parts {
            let tag = part.trim();
            if !tag.is_empty() && !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        let mut codes: Vec<i32> = Vec::new();
        for tag in &tags {
            let code = java_string_hash(tag);
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
        data.tags_set = java_hash_set_order(
            tags.into_iter()
                .map(|t| (java_string_hash(&t), t))
                .collect(),
        );
        data.code_set = java_hash_set_order(codes.into_iter().map(|c| (c, c)).collect());
        Ok(data)
    }

    /// `true` for the subscribe-all expression.
    pub fn is_sub_all(&self) -> bool {
        self.sub_string == SUB_ALL
    }

    /// The client-side re-filter of `PullAPIWrapper.processPullResult`: with a non-empty
    /// tag set, keep a message only if its `TAGS` equals one of the tags exactly (the broker
    /// filters by hash, which can collide). `*` and SQL92 keep everything.
    pub fn matches(&self, msg: &MessageExt) -> bool {
        if self.tags_set.is_empty() || self.class_filter_mode {
            return true;
        }
        msg.tags()
            .is_some_and(|t| self.tags_set.iter().any(|s| s == t))
    }

    /// Java `SubscriptionData.hashCode()`, which decides its place in a HashSet.
    pub fn java_hash_code(&self) -> i32 {
        let set_hash_i32 = |v: &[i32]| v.iter().fold(0i32, |h, c| h.wrapping_add(*c));
        let set_hash_str = |v: &[String]| {
            v.iter()
                .fold(0i32, |h, s| h.wrapping_add(java_string_hash(s)))
        };
        let mut r: i32 = 1;
        let step = |r: i32, v: i32| r.wrapping_mul(31).wrapping_add(v);
        r = step(r, if self.class_filter_mode { 1231 } else { 1237 });
        r = step(r, set_hash_i32(&self.code_set));
        r = step(r, java_string_hash(&self.sub_string));
        r = step(r, set_hash_str(&self.tags_set));
        r = step(r, java_string_hash(&self.topic));
        r = step(r, java_string_hash(self.expression_type.as_str()));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_from_the_reference() {
        assert_eq!(java_string_hash("TagA"), 2598919);
        assert_eq!(java_string_hash("*"), 42);
        assert_eq!(java_string_hash("中文"), 646394);
        assert_eq!(java_string_hash("😀"), 1772899);
        assert_eq!(java_string_hash("abcdefghij"), -634317659);
        assert_eq!(java_string_hash("payment.refund"), -1424678816);
    }

    #[test]
    fn hash_set_order_matches_java_for_three_tags() {
        let s = SubscriptionData::build_with_version(
            "T",
            Some("TagB || TagA || TagC"),
            ExpressionType::Tag,
            0,
        )
        .unwrap();
        assert_eq!(s.tags_set, ["TagA", "TagC", "TagB"]);
    }
}

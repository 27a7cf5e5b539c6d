//! Namespaces as the Java client applies them (Java `NamespaceUtil`, `ClientConfig.withNamespace`).
//!
//! A namespaced resource is `namespace%name`; retry and DLQ topics keep their prefix in
//! front: `%RETRY%namespace%group`. System topics and system groups are never wrapped.

/// `MixAll.RETRY_GROUP_TOPIC_PREFIX`.
pub const RETRY_PREFIX: &str = "%RETRY%";
/// `MixAll.DLQ_GROUP_TOPIC_PREFIX`.
pub const DLQ_PREFIX: &str = "%DLQ%";
/// `NamespaceUtil.NAMESPACE_SEPARATOR`.
pub const SEPARATOR: char = '%';

/// `TopicValidator` system topics (4.9.8 set plus 5.x `CHECKPOINT_TOPIC`).
const SYSTEM_TOPICS: [&str; 10] = [
    "TBW102",
    "SCHEDULE_TOPIC_XXXX",
    "BenchmarkTest",
    "RMQ_SYS_TRANS_HALF_TOPIC",
    "RMQ_SYS_TRACE_TOPIC",
    "RMQ_SYS_TRANS_OP_HALF_TOPIC",
    "TRANS_CHECK_MAX_TIME_TOPIC",
    "SELF_TEST_TOPIC",
    "OFFSET_MOVED_EVENT",
    "CHECKPOINT_TOPIC",
];

/// The retry topic of a consumer group (`MixAll.getRetryTopic`): `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_PREFIX}{group}")
}

/// The dead-letter topic of a consumer group (`MixAll.getDLQTopic`): `%DLQ%<group>`.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_PREFIX}{group}")
}

/// `true` for `%RETRY%…` topics.
pub fn is_retry_topic(topic: &str) -> bool {
    topic.starts_with(RETRY_PREFIX)
}

/// `true` for a system topic or system consumer group (never namespaced).
pub fn is_system_resource(resource: &str) -> bool {
    !resource.is_empty()
        && (SYSTEM_TOPICS.contains(&resource)
            || resource.starts_with("rmq_sys_")
            || resource.starts_with("CID_RMQ_SYS_"))
}

fn split_prefix(resource: &str) -> (&str, &str) {
    if let Some(rest) = resource.strip_prefix(RETRY_PREFIX) {
        (RETRY_PREFIX, rest)
    } else if let Some(rest) = resource.strip_prefix(DLQ_PREFIX) {
        (DLQ_PREFIX, rest)
    } else {
        ("", resource)
    }
}

fn is_already_wrapped(resource: &str, namespace: &str) -> bool {
    if namespace.is_empty() || resource.is_empty() || is_system_resource(resource) {
        return false;
    }
    let (_, bare) = split_prefix(resource);
    bare.strip_prefix(namespace)
        .is_some_and(|r| r.starts_with(SEPARATOR))
}

/// Java `NamespaceUtil.wrapNamespace`: `G` → `ns%G`, `%RETRY%G` → `%RETRY%ns%G`. An empty
/// namespace, a system resource or an already wrapped name is returned unchanged.
pub fn wrap(namespace: &str, resource: &str) -> String {
    if namespace.is_empty()
        || resource.is_empty()
        || is_system_resource(resource)
        || is_already_wrapped(resource, namespace)
    {
        return resource.to_owned();
    }
    let (prefix, bare) = split_prefix(resource);
    format!("{prefix}{namespace}{SEPARATOR}{bare}")
}

/// Java `NamespaceUtil.withoutNamespace(resource, namespace)`: strips `namespace%` if the
/// resource carries exactly that namespace, keeping a retry/DLQ prefix.
pub fn unwrap(namespace: &str, resource: &str) -> String {
    if namespace.is_empty() || resource.is_empty() || !is_already_wrapped(resource, namespace) {
        return resource.to_owned();
    }
    let (prefix, bare) = split_prefix(resource);
    format!("{prefix}{}", &bare[namespace.len() + 1..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_like_java() {
        assert_eq!(wrap("ns", "G"), "ns%G");
        assert_eq!(wrap("ns", "%RETRY%G"), "%RETRY%ns%G");
        assert_eq!(wrap("ns", "%DLQ%G"), "%DLQ%ns%G");
        assert_eq!(wrap("ns", "ns%G"), "ns%G");
        assert_eq!(wrap("ns", "%RETRY%ns%G"), "%RETRY%ns%G");
        assert_eq!(wrap("ns", "TBW102"), "TBW102");
        assert_eq!(wrap("ns", "rmq_sys_x"), "rmq_sys_x");
        assert_eq!(wrap("", "G"), "G");
        assert_eq!(retry_topic(&wrap("ns", "G")), "%RETRY%ns%G");
    }

    #[test]
    fn unwraps_like_java() {
        assert_eq!(unwrap("ns", "ns%T"), "T");
        assert_eq!(unwrap("ns", "%RETRY%ns%G"), "%RETRY%G");
        assert_eq!(unwrap("ns", "other%T"), "other%T");
        assert_eq!(unwrap("ns", "nsx%T"), "nsx%T");
        assert_eq!(unwrap("", "ns%T"), "ns%T");
        for r in ["T", "%RETRY%G", "%DLQ%G"] {
            assert_eq!(unwrap("ns", &wrap("ns", r)), r);
        }
    }
}

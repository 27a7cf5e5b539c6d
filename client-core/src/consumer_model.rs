//! The consumer's wire enums (Java `MessageModel`, `ConsumeFromWhere`, `ConsumeType`), as
//! heartbeats and running info carry them.

/// Clustering or broadcasting (Java `MessageModel`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageModel {
    /// Each queue is owned by one member of the group; offsets at the broker.
    #[default]
    Clustering,
    /// Every member consumes every queue; offsets in a local file.
    Broadcasting,
}

impl MessageModel {
    /// The wire name (`CLUSTERING` / `BROADCASTING`).
    pub fn as_str(self) -> &'static str {
        match self {
            MessageModel::Clustering => "CLUSTERING",
            MessageModel::Broadcasting => "BROADCASTING",
        }
    }
}

/// Where a queue with no stored offset starts (Java `ConsumeFromWhere`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ConsumeFromWhere {
    /// At the queue's max offset: only new messages. Retry topics start at 0.
    #[default]
    LastOffset,
    /// At offset 0 (the broker moves a too-small offset up to the min offset).
    FirstOffset,
    /// At the first message stored at or after the consume timestamp. Retry topics start
    /// at their max offset.
    Timestamp,
}

impl ConsumeFromWhere {
    /// The wire name used in heartbeats.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumeFromWhere::LastOffset => "CONSUME_FROM_LAST_OFFSET",
            ConsumeFromWhere::FirstOffset => "CONSUME_FROM_FIRST_OFFSET",
            ConsumeFromWhere::Timestamp => "CONSUME_FROM_TIMESTAMP",
        }
    }
}

/// How a consumer gets its messages (Java `ConsumeType`), as heartbeats name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConsumeType {
    /// The pull consumers: the application pulls (`CONSUME_ACTIVELY`).
    ConsumeActively,
    /// The push consumer: rmq pulls and calls a listener (`CONSUME_PASSIVELY`).
    ConsumePassively,
}

impl ConsumeType {
    /// The wire name used in heartbeats.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsumeType::ConsumeActively => "CONSUME_ACTIVELY",
            ConsumeType::ConsumePassively => "CONSUME_PASSIVELY",
        }
    }
}

//! # rmq-client-core
//!
//! Everything a consumer needs to talk to a RocketMQ cluster below any consume logic:
//!
//! - [`message`]: [`MessageExt`] and the decoder of pull bodies (REMOTING.md §5).
//! - [`filter`]: [`SubscriptionData`], Java tag hashing and the client-side re-filter (§6).
//! - [`route`]: [`MessageQueue`], [`TopicRouteData`] parsed leniently (§4).
//! - [`config`]: [`ClientConfig`] with the Java knob names and defaults, the client id.
//! - [`consumer_model`]: [`MessageModel`], [`ConsumeFromWhere`], [`ConsumeType`].
//! - [`namespace`]: `namespace%name` wrapping of topics and groups, retry and DLQ names.
//! - [`header`] and [`api`]: one typed header and one async function per request
//!   ([`ClientApi`]), signed with [`acl`] when credentials are set.
//! - [`instance`]: [`ClientInstance`], one per client id: route cache (`arc-swap`),
//!   heartbeats, scheduled jobs, and the [`ConsumerInner`] trait through which broker
//!   requests reach a consumer.
//! - [`pull_kernel`]: [`PullKernel`], one pull of one queue for every consumer: broker
//!   lookup with route refresh, header, suggested broker, result processing.
//! - [`SendBack`]: failed messages back to the broker for a retry (CONSUMER_SEND_MSG_BACK,
//!   with the `%RETRY%` producer fallback), used by the push and pull consumers.
//! - [`producer`]: a small [`Producer`] for retries, tests and the CLI.
//! - [`pop`]: pop consumption: [`PopKernel`](pop::PopKernel) pops, acknowledges and delays
//!   messages of a group; receipt handles, pop-retry topics, the batch-ack body both
//!   brokers accept.
//! - [`trace`] and [`trace_dispatcher`]: message trace records (Java's encoding) and their
//!   bounded background sender.
//! - [`admin`]: the read-only admin requests (members, running info, cluster, topics,
//!   messages by id or key) behind `rmq status` and `rmq doctor`.
//! - [`validators`]: Java's topic and group name rules.
//!
//! Java counterparts: `MessageExt`, `MessageDecoder`, `FilterAPI`, `SubscriptionData`,
//! `TopicRouteData`, `MQClientInstance`, `MQClientAPIImpl`.
//!
//! A subscription built and matched as the Java client would, and the names a consumer
//! group uses on the broker:
//!
//! ```
//! use rmq_client_core::filter::{ExpressionType, java_string_hash};
//! use rmq_client_core::{MessageExt, Properties, SubscriptionData, namespace};
//!
//! let sub = SubscriptionData::build("TopicTest", Some("TagA || TagB"), ExpressionType::Tag)?;
//! // The tag codes the broker filters on are Java `String.hashCode()` values.
//! assert!(sub.code_set.contains(&java_string_hash("TagB")));
//!
//! let mut properties = Properties::new();
//! properties.insert("TAGS", "TagB");
//! properties.insert("KEYS", "order-1 order-2");
//! let msg = MessageExt { properties, ..Default::default() };
//! assert!(sub.matches(&msg));
//! assert_eq!(msg.tags(), Some("TagB"));
//! assert_eq!(msg.keys().collect::<Vec<_>>(), ["order-1", "order-2"]);
//!
//! assert_eq!(namespace::retry_topic("my_group"), "%RETRY%my_group");
//! assert_eq!(namespace::dlq_topic("my_group"), "%DLQ%my_group");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod acl;
pub mod admin;
pub mod api;
pub mod config;
pub mod consumer_model;
mod error;
mod error_kind;
pub mod fastjson;
pub mod filter;
pub mod header;
pub mod instance;
pub mod message;
pub mod namespace;
pub mod pop;
pub mod producer;
mod properties;
pub mod pull_kernel;
pub mod route;
mod send_back;
mod shutdown_report;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing;
pub mod trace;
pub mod trace_dispatcher;
pub mod validators;

pub use api::{ClientApi, HeartbeatAnswer, PullResult, PullStatus, SendResult};
pub use config::{ClientConfig, Credentials};
pub use consumer_model::{ConsumeFromWhere, ConsumeType, MessageModel};
pub use error::{BoxError, ClientError};
pub use error_kind::ErrorKind;
pub use instance::{ClientInstance, ConsumerInner, FindBrokerResult, Weakly};
pub use producer::{Message, Producer};
pub use pull_kernel::{PullKernel, PullSpec};

pub use filter::{ExpressionType, SubscriptionData};
pub use message::{MessageExt, Properties};
pub use route::{MessageQueue, TopicRouteData};
pub use send_back::SendBack;
pub use shutdown_report::ShutdownReport;
pub use validators::{NameError, check_group, check_topic};

/// Milliseconds since the Unix epoch (Java `System.currentTimeMillis()`).
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
